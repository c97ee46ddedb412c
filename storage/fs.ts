/**
 * The file system as storage sees it: exactly the calls the WAL, the snapshotter and the MVCC history
 * file make, and nothing more. Production passes {@link denoFs}, which hands out `Deno.FsFile` handles
 * unwrapped (a `Deno.FsFile` already is a {@link FileHandle}), so the WAL's write + fdatasync path costs
 * no extra call, copy or promise. The simulator passes a file system of its own whose writes take
 * virtual time, whose fsync can fail, and whose unsynced data a crash loses, which is why everything
 * that touches a disk goes through this interface.
 *
 * Errors follow Deno's: a missing path throws `Deno.errors.NotFound`, an existing one where none may be
 * `Deno.errors.AlreadyExists`.
 *
 * @module
 */

/** How {@link FileSystem.open} opens a path (the subset of `Deno.OpenOptions` storage uses). */
export interface OpenOptions {
  read?: boolean;
  write?: boolean;
  /** Create the file if it does not exist. */
  create?: boolean;
  /** Empty the file on opening. */
  truncate?: boolean;
}

/** One entry of a directory listing. */
export interface DirEntry {
  name: string;
  isFile: boolean;
  isDirectory: boolean;
}

/**
 * An open file (or directory, for `sync` and `tryLock`) with a current position. Writes and reads go at
 * the position and advance it; a write may be partial and returns how many bytes it wrote.
 */
export interface FileHandle {
  write(p: Uint8Array): Promise<number>;
  seek(offset: number, whence: Deno.SeekMode): Promise<number>;
  /** fsync: data and metadata (size) durable. On a directory: its entries durable. */
  sync(): Promise<void>;
  /** fdatasync: data durable (and the size, when it changed). */
  syncData(): Promise<void>;
  /**
   * fdatasync on the calling thread, which waits for it. Optional: a file system without it is only
   * ever synced through {@link syncData}.
   */
  syncDataSync?(): void;
  truncate(len?: number): Promise<void>;
  /** An advisory lock on the whole file; false if someone else holds it. */
  tryLock(exclusive?: boolean): Promise<boolean>;
  writeSync(p: Uint8Array): number;
  /** Reads at the position; null at the end of the file. */
  readSync(p: Uint8Array): number | null;
  seekSync(offset: number, whence: Deno.SeekMode): number;
  truncateSync(len?: number): void;
  close(): void;
}

/** The file-system calls of storage/. */
export interface FileSystem {
  open(path: string, options: OpenOptions): Promise<FileHandle>;
  openSync(path: string, options: OpenOptions): FileHandle;
  readFile(path: string): Promise<Uint8Array>;
  readDir(path: string): AsyncIterable<DirEntry>;
  mkdir(path: string, options?: { recursive?: boolean }): Promise<void>;
  remove(path: string, options?: { recursive?: boolean }): Promise<void>;
  removeSync(path: string): void;
  /** Atomically replaces `to` by `from` (durable once the directory is synced). */
  rename(from: string, to: string): Promise<void>;
}

/** The real file system, through Deno's own calls. */
export const denoFs: FileSystem = {
  open: (path, options) => Deno.open(path, options),
  openSync: (path, options) => Deno.openSync(path, options),
  readFile: (path) => Deno.readFile(path),
  readDir: (path) => Deno.readDir(path),
  mkdir: (path, options) => Deno.mkdir(path, options),
  remove: (path, options) => Deno.remove(path, options),
  removeSync: (path) => Deno.removeSync(path),
  rename: (from, to) => Deno.rename(from, to),
};
