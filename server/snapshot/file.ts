/**
 * A backup file, as `etcdctl snapshot save` writes it from the Maintenance.Snapshot stream: a member's
 * applied state at one moment (the same image Raft snapshots hold: configuration, membership, leases,
 * the v2 store and the key space), followed by the SHA-256 of everything before it, as etcd appends one to
 * its own snapshot files. `etcd-ts snapshot status` and `restore` check that digest first.
 *
 * Layout: the magic `ETCDTSBK`, the image's length (u64 big-endian), the image, zeros up to a multiple of
 * 512 bytes, then the digest. etcdctl checks that a snapshot is whole pages plus a 32-byte digest (etcd's
 * files are bbolt pages), so the padding keeps the file to that shape.
 *
 * @module
 */
import { type AppState, restoreAppState } from "../member/app_state.ts";

/** Bytes of the trailing digest. */
export const DIGEST_BYTES = 32;
const MAGIC = new TextEncoder().encode("ETCDTSBK");
const HEAD_BYTES = 16;
const PAGE_BYTES = 512;

/** The bytes before and after an image of `size` bytes in a backup file (the digest excluded). */
export function envelope(size: number): { head: Uint8Array; pad: Uint8Array } {
  const head = new Uint8Array(HEAD_BYTES);
  head.set(MAGIC);
  new DataView(head.buffer).setBigUint64(8, BigInt(size));
  return { head, pad: new Uint8Array((PAGE_BYTES - (HEAD_BYTES + size) % PAGE_BYTES) % PAGE_BYTES) };
}

/** The file is not a whole etcd-ts snapshot; the message says why, in etcd's words where it has them. */
export class SnapshotFileError extends Error {
  readonly code = "SNAPSHOT_FILE";
  constructor(message: string) {
    super(message);
    this.name = "SnapshotFileError";
  }
}

/**
 * SHA-256 of the chunks, computed as they go by, by `node:crypto`: loaded (synchronously) by the first
 * backup or restore rather than by every member, as it costs a few MB of resident memory.
 */
export class Digest {
  readonly #h = process.getBuiltinModule("node:crypto").createHash("sha256");
  update(chunk: Uint8Array): void {
    this.#h.update(chunk);
  }
  finish(): Uint8Array {
    return new Uint8Array(this.#h.digest());
  }
}

/**
 * The image inside a backup file, after checking its digest (unless `skipHashCheck`, etcd's flag for files
 * copied out of a data directory, which carry none).
 */
export function imageOf(file: Uint8Array, skipHashCheck = false): Uint8Array {
  if (file.length < HEAD_BYTES + DIGEST_BYTES || !MAGIC.every((b, i) => file[i] === b)) {
    throw new SnapshotFileError("snapshot file is not an etcd-ts snapshot, or is truncated");
  }
  const size = Number(new DataView(file.buffer, file.byteOffset + 8, 8).getBigUint64(0));
  if (HEAD_BYTES + size + envelope(size).pad.length + DIGEST_BYTES !== file.length) {
    throw new SnapshotFileError(
      `snapshot file has ${file.length} bytes, not what its header announces: it is truncated or corrupt`,
    );
  }
  if (!skipHashCheck) {
    const d = new Digest();
    d.update(file.subarray(0, file.length - DIGEST_BYTES));
    const want = file.subarray(file.length - DIGEST_BYTES);
    if (!d.finish().every((b, i) => b === want[i])) {
      throw new SnapshotFileError("expected sha256 does not match: the snapshot file is corrupt");
    }
  }
  return file.subarray(HEAD_BYTES, HEAD_BYTES + size);
}

/** The state a backup image holds, decoded; a malformed image is a {@link SnapshotFileError}. */
export function decodeImage(image: Uint8Array, historyFile?: string): AppState {
  try {
    return restoreAppState(image, historyFile === undefined ? {} : { historyFile });
  } catch (err) {
    throw new SnapshotFileError(`snapshot file is not an etcd-ts snapshot: ${(err as Error).message}`);
  }
}
