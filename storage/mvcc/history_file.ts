/**
 * An append-only file for the values of superseded revisions, so that history lives in the page cache
 * instead of the process heap (etcd keeps it in bbolt's file for the same reason).
 *
 * The file is a cache, never a source of truth: the store's snapshot plus the WAL rebuild it. So it is
 * created empty, nothing is ever synced, and the path is unlinked right after opening: the open handle
 * keeps the data reachable, the disk space goes back to the system when the handle closes or the
 * process dies, and a second store given the same path (a snapshot being installed while the old store
 * still serves) gets a file of its own.
 *
 * Appends go to a write buffer that is written out in large chunks; reads are served from that buffer
 * while it still holds the bytes, else from a read-ahead block, else with `seekSync` + `readSync`. The
 * block is filled only where reads go forward through the file, as a snapshot image does (it reads the
 * values in the order they lie in the file); a read that lands far from the one before (an old revision
 * read by a client) reads just its own bytes, since filling the block would cost as much again as the read
 * and nothing after it would use the block. Freed bytes are only counted; the owner decides when to
 * {@link HistoryFile.reset} or rewrite the file.
 *
 * @module
 */
import { denoFs, type FileHandle, type FileSystem } from "../fs.ts";

/** Default size of the write buffer. */
export const DEFAULT_BUFFER_BYTES = 256 * 1024;
/** Size of the read-ahead block. */
const READ_BLOCK = 64 * 1024;
/** A read that starts at most this far past the end of the one before fills the read-ahead block. */
const READ_GAP = 4 * 1024;

/** Append-only value storage in an unlinked file. */
export class HistoryFile {
  private file: FileHandle;
  private readonly buf: Uint8Array;
  private bufLen = 0;
  /** Bytes written to the file (the write buffer continues from here). */
  private flushed = 0;
  private readonly block = new Uint8Array(READ_BLOCK);
  private blockStart = 0;
  private blockLen = 0;
  /** Where the last read from the file ended (-1: none yet). */
  private lastEnd = -1;
  /** Bytes of values appended and not yet freed. */
  liveBytes = 0;

  /**
   * Creates (or truncates) the file at `path` and unlinks it at once. `bufferBytes` is the size of the
   * write buffer: values are written to the file in chunks of about that size. `fs` is the file system
   * the file lives on (default: the real one).
   */
  constructor(
    readonly path: string,
    readonly bufferBytes: number = DEFAULT_BUFFER_BYTES,
    readonly fs: FileSystem = denoFs,
  ) {
    this.file = fs.openSync(path, { read: true, write: true, create: true, truncate: true });
    fs.removeSync(path);
    this.buf = new Uint8Array(bufferBytes);
  }

  /** Bytes appended since creation or the last {@link reset}, freed or not (the file's logical size). */
  get size(): number {
    return this.flushed + this.bufLen;
  }

  /** Bytes of freed values still taking file space. */
  get garbageBytes(): number {
    return this.size - this.liveBytes;
  }

  /** Bytes of memory held (write buffer and read block). */
  get memoryBytes(): number {
    return this.buf.length + this.block.length;
  }

  /** Appends `len` bytes of `src` at `off`; returns their position in the file. */
  append(src: Uint8Array, off: number, len: number): number {
    const pos = this.flushed + this.bufLen;
    if (this.bufLen + len <= this.buf.length) {
      const buf = this.buf;
      const at = this.bufLen;
      if (len <= 64) {
        for (let i = 0; i < len; i++) buf[at + i] = src[off + i];
      } else {
        buf.set(src.subarray(off, off + len), at);
      }
      this.bufLen = at + len;
      this.liveBytes += len;
      return pos;
    }
    // a write error leaves the file as it was: the caller's state must not change either
    this.flush();
    if (len <= this.buf.length) {
      this.buf.set(src.subarray(off, off + len), 0);
      this.bufLen = len;
    } else {
      this.writeAll(src.subarray(off, off + len));
    }
    this.liveBytes += len;
    return pos;
  }

  /** Copies the `len` bytes at `pos` into `dst` at `dstOff`. */
  read(pos: number, len: number, dst: Uint8Array, dstOff: number): void {
    if (pos >= this.flushed) {
      const at = pos - this.flushed;
      dst.set(this.buf.subarray(at, at + len), dstOff);
      return;
    }
    if (pos >= this.blockStart && pos + len <= this.blockStart + this.blockLen) {
      const at = pos - this.blockStart;
      dst.set(this.block.subarray(at, at + len), dstOff);
      this.lastEnd = pos + len;
      return;
    }
    const ahead = this.lastEnd >= 0 && pos >= this.lastEnd && pos - this.lastEnd <= READ_GAP;
    this.lastEnd = pos + len;
    if (len > READ_BLOCK || !ahead) {
      this.readAt(pos, dst.subarray(dstOff, dstOff + len));
      return;
    }
    const n = Math.min(READ_BLOCK, this.flushed - pos);
    this.blockLen = 0; // invalid until the read completes
    this.readAt(pos, this.block.subarray(0, n));
    this.blockStart = pos;
    this.blockLen = n;
    dst.set(this.block.subarray(0, len), dstOff);
  }

  /** Counts `len` bytes as freed. */
  free(len: number): void {
    this.liveBytes -= len;
  }

  /** Empties the file; every position handed out so far becomes invalid. */
  reset(): void {
    this.file.truncateSync(0);
    this.flushed = 0;
    this.bufLen = 0;
    this.blockLen = 0;
    this.lastEnd = -1;
    this.liveBytes = 0;
  }

  /** Closes the file (its space is released). Reads and appends are invalid afterwards. */
  close(): void {
    this.file.close();
  }

  private flush(): void {
    if (this.bufLen === 0) return;
    this.writeAll(this.buf.subarray(0, this.bufLen));
    this.bufLen = 0;
  }

  /** Writes `data` at the end of the file. */
  private writeAll(data: Uint8Array): void {
    this.file.seekSync(this.flushed, Deno.SeekMode.Start);
    let done = 0;
    while (done < data.length) done += this.file.writeSync(data.subarray(done));
    this.flushed += data.length;
  }

  private readAt(pos: number, dst: Uint8Array): void {
    this.file.seekSync(pos, Deno.SeekMode.Start);
    let done = 0;
    while (done < dst.length) {
      const n = this.file.readSync(dst.subarray(done));
      if (n === null || n === 0) throw new Error(`mvcc: history file ${this.path} is shorter than expected`);
      done += n;
    }
  }
}
