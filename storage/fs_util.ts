/**
 * Small file-system helpers shared by the WAL and the snapshotter: complete writes, zero fill, and
 * directory fsync (a rename or a new file is only durable once its directory is synced).
 *
 * @module
 */
import { denoFs, type FileHandle, type FileSystem } from "./fs.ts";

let zeros: Uint8Array | undefined;

/**
 * Writes all of `bytes` (a single `write` may be partial): at a file's current position, or to a
 * connection. The project's one complete-write helper; each write makes progress or throws.
 */
export async function writeAll(
  file: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(off === 0 ? bytes : bytes.subarray(off));
}

/** Writes `count` zero bytes at the file's current position. */
export async function writeZeros(file: FileHandle, count: number): Promise<void> {
  zeros ??= new Uint8Array(1 << 20);
  while (count > 0) {
    const n = Math.min(count, zeros.length);
    await writeAll(file, n === zeros.length ? zeros : zeros.subarray(0, n));
    count -= n;
  }
}

/** fsyncs the directory `dir`, making creations, renames and removals inside it durable. */
export async function syncDir(dir: string, fs: FileSystem = denoFs): Promise<void> {
  const handle = await fs.open(dir, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}

/** Removes `path`; a path that is already gone is not an error. */
export async function removeIfExists(
  path: string,
  recursive = false,
  fs: FileSystem = denoFs,
): Promise<void> {
  try {
    await fs.remove(path, { recursive });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/**
 * Joins path segments with "/" (what every OS Deno runs on accepts). Used instead of node:path, whose
 * import alone pulls in Node compatibility costing a few MB of resident memory.
 */
export function joinPath(...parts: string[]): string {
  return parts.filter((p) => p !== "").join("/").replace(/\/{2,}/g, "/");
}
