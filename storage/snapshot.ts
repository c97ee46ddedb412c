/**
 * Snapshot files: one file per snapshot, `<dir>/%016x-%016x.snap` (term, then index), as etcd names them.
 *
 * Content (little-endian):
 *
 * ```
 * 0   8 bytes  magic "ETSSNAP1"      24  u64 data length n
 * 8   u64      term                  32  n bytes of data
 * 16  u64      index                 32+n  u32 CRC-32C of bytes 0..32+n
 * ```
 *
 * A file is written under a temporary name, fsynced, renamed into place, and the directory fsynced, so a
 * crash leaves either the whole snapshot or none. The data is written and checksummed chunk by chunk and
 * is never needed whole in memory: from a stream the member produces (`save`), or as it arrives from a
 * peer (`saveStream`, where a cut upload leaves no file). On the way it is flushed every
 * {@link SNAPSHOT_FLUSH_BYTES}, so that it reaches the disk in steps the WAL's own fdatasyncs can pass
 * between, not in one flush at the end. A damaged newest snapshot is an error, never a reason to fall back
 * to an older one silently: the WAL may already have been released up to it.
 *
 * @module
 */

import { crc32c } from "./crc32c.ts";
import { type ByteStream, streamOf } from "./byte_stream.ts";
import { denoFs, type FileSystem } from "./fs.ts";
import { joinPath as join, removeIfExists, syncDir, writeAll } from "./fs_util.ts";

/** A snapshot as stored on disk: where it sits in the log, and the application's bytes. */
export interface SnapshotFile {
  index: number;
  term: number;
  data: Uint8Array;
}

/** What {@link Snapshotter.save} writes: the data in one buffer, or streamed chunk by chunk. */
export interface SnapshotToSave {
  index: number;
  term: number;
  data: Uint8Array | ByteStream;
}

/** What {@link Snapshotter.saveStream} writes: `size` bytes of data, arriving chunk by chunk. */
export interface StreamedSnapshot {
  index: number;
  term: number;
  size: number;
  /** The data in order; a chunk may be reused once the next one is asked for. */
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

/** Options of {@link Snapshotter}. */
export interface SnapshotterOptions {
  /** The file system the snapshots live on. Default: the real one ({@link denoFs}). */
  fs?: FileSystem;
}

/** A snapshot file does not verify. */
export class SnapshotCorruptError extends Error {
  readonly code = "SNAPSHOT_CORRUPT";
  /** Path of the damaged file. */
  readonly file: string;
  constructor(file: string, detail: string) {
    super(`snapshot: ${file} is corrupt: ${detail}`);
    this.name = "SnapshotCorruptError";
    this.file = file;
  }
}

const MAGIC = new TextEncoder().encode("ETSSNAP1");
const HEAD = 32;
/**
 * The data is flushed (fdatasync) after every this many bytes, so the final fsync has little left: one
 * flush of a whole 100 MB image held the WAL fdatasyncs of members sharing the disk for 128-256 ms. Since
 * images are made faster (values read in file order), three members' first 8 MiB steps, flushed at once,
 * still held requests for 127-154 ms; 2 MiB steps held them 103-128 ms, at a few hundred ms more per image.
 */
export const SNAPSHOT_FLUSH_BYTES = 2 * 1024 * 1024;
const TWO32 = 4294967296;
const SNAP_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
/** Temporary files: `<name>.snap.tmp` (save) and `<name>.snap.<n>.tmp` (saveStream). */
const TMP_NAME = /\.snap(\.\d+)?\.tmp$/;

interface SnapName {
  term: number;
  index: number;
  name: string;
}

function snapName(term: number, index: number): string {
  return `${term.toString(16).padStart(16, "0")}-${index.toString(16).padStart(16, "0")}.snap`;
}

function putU64(v: DataView, off: number, n: number): void {
  v.setUint32(off, n >>> 0, true);
  v.setUint32(off + 4, Math.floor(n / TWO32), true);
}

function getU64(v: DataView, off: number): number {
  return v.getUint32(off, true) + v.getUint32(off + 4, true) * TWO32;
}

/** Saves, loads and purges the snapshot files of one directory. */
export class Snapshotter {
  readonly #dir: string;
  readonly #fs: FileSystem;
  /** Temporary files this instance is writing right now (purge leaves them alone). */
  readonly #writing = new Set<string>();
  /** Numbers the temporary files of {@link saveStream}. */
  #seq = 0;

  /** `dir` is created on the first save if missing. */
  constructor(dir: string, options: SnapshotterOptions = {}) {
    this.#dir = dir;
    this.#fs = options.fs ?? denoFs;
  }

  /** Writes `snap` durably: temporary file, fsync, rename to its final name, fsync of the directory. */
  async save(snap: SnapshotToSave): Promise<void> {
    const data = snap.data instanceof Uint8Array ? streamOf(snap.data) : snap.data;
    await this.#write(
      snap.index,
      snap.term,
      data.size,
      () => data.chunks(),
      `${snapName(snap.term, snap.index)}.tmp`,
    );
  }

  /**
   * Writes a snapshot whose data arrives piece by piece (e.g. from a peer), durably as {@link save} does,
   * without holding it whole: each chunk is checksummed and written before the next is asked for, so a
   * chunk may reuse its buffer. The temporary file has a name of its own, so this may run beside another
   * save of the same snapshot. If `chunks` throws, or delivers other than `size` bytes, the temporary
   * file is removed, no snapshot file is left, and the error is rethrown.
   */
  async saveStream(snap: StreamedSnapshot): Promise<void> {
    const tmp = `${snapName(snap.term, snap.index)}.${++this.#seq}.tmp`;
    await this.#write(snap.index, snap.term, snap.size, () => snap.chunks, tmp);
  }

  async #write(
    index: number,
    term: number,
    size: number,
    chunks: () => Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
    tmpName: string,
  ): Promise<void> {
    if (!Number.isSafeInteger(index) || index < 0 || !Number.isSafeInteger(term) || term < 0) {
      throw new RangeError(`snapshot: bad index ${index} or term ${term}`);
    }
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`snapshot: bad data size ${size}`);
    const fs = this.#fs;
    await fs.mkdir(this.#dir, { recursive: true });
    const head = new Uint8Array(HEAD);
    const v = new DataView(head.buffer);
    head.set(MAGIC, 0);
    putU64(v, 8, term);
    putU64(v, 16, index);
    putU64(v, 24, size);
    const path = join(this.#dir, snapName(term, index));
    const tmp = join(this.#dir, tmpName);
    this.#writing.add(tmp);
    try {
      const file = await fs.open(tmp, { write: true, create: true, truncate: true });
      try {
        await writeAll(file, head);
        // one pass: each chunk is checksummed and written before the next is asked for
        let crc = crc32c(0, head);
        let written = 0;
        let flushed = 0;
        for await (const c of chunks()) {
          if (written + c.length > size) throw new Error(`snapshot: more than the announced ${size} bytes`);
          crc = crc32c(crc, c);
          written += c.length;
          await writeAll(file, c);
          if (written - flushed >= SNAPSHOT_FLUSH_BYTES) {
            await file.syncData();
            flushed = written;
          }
        }
        if (written !== size) {
          throw new Error(`snapshot: wrote ${written} bytes, ${size} announced`);
        }
        const tail = new Uint8Array(4);
        new DataView(tail.buffer).setUint32(0, crc, true);
        await writeAll(file, tail);
        await file.sync();
      } finally {
        file.close();
      }
      await fs.rename(tmp, path);
      await syncDir(this.#dir, fs);
    } catch (err) {
      await removeIfExists(tmp, false, fs).catch(() => {});
      throw err;
    } finally {
      this.#writing.delete(tmp);
    }
  }

  /**
   * Loads the snapshot file of exactly `index` and `term`. Throws `Deno.errors.NotFound` if there is none,
   * {@link SnapshotCorruptError} if it does not verify.
   */
  load(index: number, term: number): Promise<SnapshotFile> {
    return this.#load({ index, term, name: snapName(term, index) });
  }

  /**
   * Loads the snapshot with the highest index (undefined if there is none). Throws
   * {@link SnapshotCorruptError} naming the file if that snapshot does not verify.
   */
  async loadNewest(): Promise<SnapshotFile | undefined> {
    const names = await this.#list();
    return names.length === 0 ? undefined : await this.#load(names[names.length - 1]);
  }

  /**
   * Loads the newest snapshot whose index and term are among `marks` (the WAL's snapshot marks, see
   * `Wal.snapshotMarks`); newer files without a mark are skipped. A snapshot that does not verify is passed
   * over for the next older one, as etcd does, when something older can still be started from: an older
   * snapshot that verifies, or the WAL itself when it still holds its beginning (a mark at index 0, and
   * then the result is undefined). The files passed over are then renamed `<name>.broken` and reported to
   * `onBroken`. When nothing older can be used, nothing is renamed and the newest snapshot's
   * {@link SnapshotCorruptError} is thrown.
   */
  async loadNewestAvailable(
    marks: { index: number; term: number }[],
    onBroken?: (err: SnapshotCorruptError, movedTo: string) => void,
  ): Promise<SnapshotFile | undefined> {
    const known = new Set(marks.map((m) => `${m.term}/${m.index}`));
    const names = (await this.#list()).filter((n) => known.has(`${n.term}/${n.index}`));
    const broken: { name: SnapName; err: SnapshotCorruptError }[] = [];
    let found: SnapshotFile | undefined;
    for (let i = names.length - 1; i >= 0 && found === undefined; i--) {
      try {
        found = await this.#load(names[i]);
      } catch (err) {
        if (!(err instanceof SnapshotCorruptError)) throw err;
        broken.push({ name: names[i], err });
      }
    }
    if (broken.length === 0) return found;
    if (found === undefined && !marks.some((m) => m.index === 0)) throw broken[0].err;
    for (const b of broken) {
      const path = join(this.#dir, b.name.name);
      await this.#fs.rename(path, `${path}.broken`);
      onBroken?.(b.err, `${path}.broken`);
    }
    await syncDir(this.#dir, this.#fs);
    return found;
  }

  async #load(newest: SnapName): Promise<SnapshotFile> {
    const path = join(this.#dir, newest.name);
    const b = await this.#fs.readFile(path);
    if (b.length < HEAD + 4) throw new SnapshotCorruptError(path, `only ${b.length} bytes`);
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < MAGIC.length; i++) {
      if (b[i] !== MAGIC[i]) throw new SnapshotCorruptError(path, "not a snapshot file (bad magic)");
    }
    const term = getU64(v, 8);
    const index = getU64(v, 16);
    const n = getU64(v, 24);
    if (n !== b.length - HEAD - 4) {
      throw new SnapshotCorruptError(path, `header says ${n} data bytes, file holds ${b.length - HEAD - 4}`);
    }
    const want = v.getUint32(HEAD + n, true);
    const got = crc32c(0, b, 0, HEAD + n);
    if (got !== want) {
      throw new SnapshotCorruptError(
        path,
        `checksum mismatch (stored ${want.toString(16)}, computed ${got.toString(16)})`,
      );
    }
    if (term !== newest.term || index !== newest.index) {
      throw new SnapshotCorruptError(path, `content is term ${term} index ${index}, not what the name says`);
    }
    return { index, term, data: b.subarray(HEAD, HEAD + n) };
  }

  /** Deletes all but the newest `keep` snapshots, and temporary files left by interrupted saves. */
  async purge(keep: number): Promise<void> {
    const names = await this.#list();
    const doomed = names.slice(0, Math.max(0, names.length - Math.max(0, keep)));
    const fs = this.#fs;
    for (const s of doomed) await removeIfExists(join(this.#dir, s.name), false, fs);
    let removed = doomed.length;
    for await (const e of fs.readDir(this.#dir)) {
      const path = join(this.#dir, e.name);
      if (TMP_NAME.test(e.name) && !this.#writing.has(path)) {
        await removeIfExists(path, false, fs);
        removed++;
      }
    }
    if (removed > 0) await syncDir(this.#dir, fs);
  }

  /** Snapshot files, oldest first (by index, then term). */
  async #list(): Promise<SnapName[]> {
    const out: SnapName[] = [];
    try {
      for await (const e of this.#fs.readDir(this.#dir)) {
        const m = SNAP_NAME.exec(e.name);
        if (m && e.isFile) out.push({ term: parseInt(m[1], 16), index: parseInt(m[2], 16), name: e.name });
      }
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
    return out.sort((a, b) => a.index - b.index || a.term - b.term);
  }
}
