/**
 * An append-only store for the values of superseded revisions, so that history lives in the page cache
 * instead of the process heap (etcd keeps it in bbolt's file for the same reason).
 *
 * The store is a cache, never a source of truth: the store's snapshot plus the WAL rebuild it. So its
 * files are created empty, nothing is ever synced, and each path is unlinked right after opening: the
 * open handle keeps the data reachable, the disk space goes back to the system when the handle closes or
 * the process dies, and a second store given the same path (a snapshot being installed while the old
 * store still serves) gets files of its own.
 *
 * **Segments.** Positions are offsets in one logical, append-only space, cut into segment files. The
 * last segment takes the appends; once it holds its share ({@link segmentLimit}), it is sealed and a new
 * one begins. A value is demoted here when its key is next written, so a segment holds the values
 * superseded within one stretch of revisions, and a compaction past that stretch frees all of them: the
 * segment is then closed whole ({@link releaseFreed}), with nothing read or copied. (A single file would
 * need its live values copied out to give its garbage back, synchronously, on the member's one thread.)
 * A released file is emptied by an asynchronous truncate before it is closed: giving back a file's disk
 * blocks and page cache takes the kernel milliseconds per 16 MiB, which a plain close of the last handle
 * would spend on the member's thread.
 * A sealed segment that keeps a live value keeps its garbage too; segments grow with the store, so there
 * are a few dozen at most.
 *
 * Appends go to a write buffer that is written out in large chunks; reads are served from that buffer
 * while it still holds the bytes, else from a read-ahead block, else with `seekSync` + `readSync`. The
 * block is filled only where reads go forward, as a snapshot image does (it reads the values in the order
 * they lie in the file); a read that lands far from the one before (an old revision read by a client)
 * reads just its own bytes, since filling the block would cost as much again as the read and nothing
 * after it would use the block. Freed bytes are counted per segment; the owner decides when segments may
 * go (never while a reader may still hold one of their positions).
 *
 * @module
 */
import { denoFs, type FileHandle, type FileSystem } from "../fs.ts";

/** Default size of the write buffer. */
export const DEFAULT_BUFFER_BYTES = 256 * 1024;
/** Default smallest segment. */
export const DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024;
/** Size of the read-ahead block. */
const READ_BLOCK = 64 * 1024;
/** A read that starts at most this far past the end of the one before fills the read-ahead block. */
const READ_GAP = 4 * 1024;

/** One file of the logical space: bytes [start, start + length) of it, plus the write buffer if last. */
interface Segment {
  file: FileHandle;
  readonly start: number;
  /** Bytes written to the file. */
  length: number;
  /** Bytes of values appended to it and not yet freed. */
  live: number;
}

/**
 * Closes a segment file no position refers to any more, after truncating it in the background (see the
 * module's notes); the file is closed whatever the truncate's outcome.
 */
function release(file: FileHandle): void {
  const close = () => {
    try {
      file.close();
    } catch {
      // already closed: nothing is held
    }
  };
  file.truncate(0).then(close, close);
}

/** Append-only value storage in unlinked segment files. */
export class HistoryFile {
  /** Segments by position; the last one takes appends. */
  private segments: Segment[] = [];
  private readonly buf: Uint8Array;
  private bufLen = 0;
  /** Bytes held in the files and the write buffer. */
  private held = 0;
  private readonly block = new Uint8Array(READ_BLOCK);
  private blockStart = 0;
  private blockLen = 0;
  /** Where the last read from a file ended (-1: none yet). */
  private lastEnd = -1;
  /** Bytes of values appended and not yet freed. */
  liveBytes = 0;

  /**
   * Creates (or truncates) the file at `path` and unlinks it at once. `bufferBytes` is the size of the
   * write buffer: values are written to the file in chunks of about that size. `fs` is the file system
   * the files live on (default: the real one). `segmentBytes` is the smallest size at which a segment is
   * sealed.
   */
  constructor(
    readonly path: string,
    readonly bufferBytes: number = DEFAULT_BUFFER_BYTES,
    readonly fs: FileSystem = denoFs,
    readonly segmentBytes: number = DEFAULT_SEGMENT_BYTES,
  ) {
    this.buf = new Uint8Array(bufferBytes);
    this.segments.push({ file: this.openFile(), start: 0, length: 0, live: 0 });
  }

  /** Bytes held in the segment files and the write buffer, freed values included. */
  get size(): number {
    return this.held;
  }

  /** Bytes of freed values still taking space. */
  get garbageBytes(): number {
    return this.held - this.liveBytes;
  }

  /** Number of segment files open. */
  get segmentCount(): number {
    return this.segments.length;
  }

  /** Bytes of memory held (write buffer and read block). */
  get memoryBytes(): number {
    return this.buf.length + this.block.length;
  }

  /**
   * Size at which the last segment is sealed: a quarter of what is held, and at least `segmentBytes`.
   * Segments so grow with the store: a few dozen of them hold any history etcd's quota allows.
   */
  get segmentLimit(): number {
    return Math.max(this.segmentBytes, Math.floor(this.held / 4));
  }

  /** Appends `len` bytes of `src` at `off`; returns their position. */
  append(src: Uint8Array, off: number, len: number): number {
    let last = this.segments[this.segments.length - 1];
    const used = last.length + this.bufLen;
    if (used > 0 && used + len > this.segmentLimit) last = this.seal();
    const pos = last.start + last.length + this.bufLen;
    if (this.bufLen + len <= this.buf.length) {
      const buf = this.buf;
      const at = this.bufLen;
      if (len <= 64) {
        for (let i = 0; i < len; i++) buf[at + i] = src[off + i];
      } else {
        buf.set(src.subarray(off, off + len), at);
      }
      this.bufLen = at + len;
    } else {
      // a write error leaves the files as they were: the caller's state must not change either
      this.flush();
      if (len <= this.buf.length) {
        this.buf.set(src.subarray(off, off + len), 0);
        this.bufLen = len;
      } else {
        this.writeAll(src.subarray(off, off + len));
      }
    }
    last.live += len;
    this.liveBytes += len;
    this.held += len;
    return pos;
  }

  /** Copies the `len` bytes at `pos` into `dst` at `dstOff`. */
  read(pos: number, len: number, dst: Uint8Array, dstOff: number): void {
    const last = this.segments[this.segments.length - 1];
    const flushed = last.start + last.length;
    if (pos >= flushed) {
      const at = pos - flushed;
      dst.set(this.buf.subarray(at, at + len), dstOff);
      return;
    }
    if (pos >= this.blockStart && pos + len <= this.blockStart + this.blockLen) {
      const at = pos - this.blockStart;
      dst.set(this.block.subarray(at, at + len), dstOff);
      this.lastEnd = pos + len;
      return;
    }
    const seg = this.segmentAt(pos);
    const ahead = this.lastEnd >= 0 && pos >= this.lastEnd && pos - this.lastEnd <= READ_GAP;
    this.lastEnd = pos + len;
    if (len > READ_BLOCK || !ahead) {
      this.readAt(seg, pos, dst.subarray(dstOff, dstOff + len));
      return;
    }
    const n = Math.min(READ_BLOCK, seg.start + seg.length - pos);
    this.blockLen = 0; // invalid until the read completes
    this.readAt(seg, pos, this.block.subarray(0, n));
    this.blockStart = pos;
    this.blockLen = n;
    dst.set(this.block.subarray(0, len), dstOff);
  }

  /** Counts the `len` bytes at `pos` as freed. */
  free(pos: number, len: number): void {
    this.segmentAt(pos).live -= len;
    this.liveBytes -= len;
  }

  /**
   * Closes every sealed segment whose values are all freed, or empties everything if no value is live.
   * Positions in the segments closed become invalid: call it only when no reader may still use one.
   * Returns the bytes given back.
   */
  releaseFreed(): number {
    const before = this.held;
    if (this.liveBytes === 0) {
      this.reset();
      return before;
    }
    const last = this.segments.length - 1;
    const kept: Segment[] = [];
    for (let i = 0; i < this.segments.length; i++) {
      const seg = this.segments[i];
      if (i < last && seg.live === 0) {
        release(seg.file);
        this.held -= seg.length;
      } else {
        kept.push(seg);
      }
    }
    if (kept.length < this.segments.length) {
      this.segments = kept;
      this.blockLen = 0;
      this.lastEnd = -1;
    }
    return before - this.held;
  }

  /** Empties the store; every position handed out so far becomes invalid. */
  reset(): void {
    const fresh = this.openFile();
    for (const seg of this.segments) release(seg.file);
    this.segments = [{ file: fresh, start: 0, length: 0, live: 0 }];
    this.bufLen = 0;
    this.held = 0;
    this.blockLen = 0;
    this.lastEnd = -1;
    this.liveBytes = 0;
  }

  /** Closes the files (their space is released). Reads and appends are invalid afterwards. */
  close(): void {
    for (const seg of this.segments) seg.file.close();
  }

  /** Opens a fresh file at the path and unlinks it. */
  private openFile(): FileHandle {
    const file = this.fs.openSync(this.path, { read: true, write: true, create: true, truncate: true });
    try {
      this.fs.removeSync(this.path);
    } catch (err) {
      file.close();
      throw err;
    }
    return file;
  }

  /** Writes out the last segment's buffer and starts a new segment after it. */
  private seal(): Segment {
    this.flush();
    const last = this.segments[this.segments.length - 1];
    const next: Segment = { file: this.openFile(), start: last.start + last.length, length: 0, live: 0 };
    this.segments.push(next);
    return next;
  }

  /** The segment holding position `pos` (which is below the write buffer's). */
  private segmentAt(pos: number): Segment {
    const segs = this.segments;
    let lo = 0;
    let hi = segs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (segs[mid].start <= pos) lo = mid;
      else hi = mid - 1;
    }
    return segs[lo];
  }

  private flush(): void {
    if (this.bufLen === 0) return;
    this.writeAll(this.buf.subarray(0, this.bufLen));
    this.bufLen = 0;
  }

  /** Writes `data` at the end of the last segment. */
  private writeAll(data: Uint8Array): void {
    const last = this.segments[this.segments.length - 1];
    last.file.seekSync(last.length, Deno.SeekMode.Start);
    let done = 0;
    while (done < data.length) done += last.file.writeSync(data.subarray(done));
    last.length += data.length;
  }

  private readAt(seg: Segment, pos: number, dst: Uint8Array): void {
    seg.file.seekSync(pos - seg.start, Deno.SeekMode.Start);
    let done = 0;
    while (done < dst.length) {
      const n = seg.file.readSync(dst.subarray(done));
      if (n === null || n === 0) throw new Error(`mvcc: history file ${this.path} is shorter than expected`);
      done += n;
    }
  }
}
