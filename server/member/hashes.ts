/**
 * The hashes the Maintenance service reports and the corruption checks compare.
 *
 * @module
 */
import { ErrCompacted, ErrFutureRev, type MvccStore } from "../../storage/mvcc/store.ts";
import type { LeaseStore } from "../../storage/lease.ts";
import { crc32c } from "../../storage/crc32c.ts";
import { Errors } from "../errors.ts";

/**
 * HashKV: the store's hash over the key space's revisions up to `revision` (0: current), computed as
 * etcd 3.4 does over its backend records (see `MvccStore.hashKV`): members with the same history agree,
 * with each other and with etcd. A compacted or future revision fails with etcd's error.
 */
export function keySpaceHash(
  mvcc: MvccStore,
  revision: number,
): { hash: number; revision: number; compactRevision: number } {
  try {
    return mvcc.hashKV(revision);
  } catch (err) {
    if (err instanceof ErrCompacted) throw Errors.compacted();
    if (err instanceof ErrFutureRev) throw Errors.futureRev();
    throw err;
  }
}

/**
 * Hash: etcd hashes its whole bbolt file; etcd-ts hashes its whole replicated state instead: the key
 * space's hash at the current revision, the current and compact revisions, and the leases (ID and TTL,
 * in ID order). Stable across restarts, equal on members at the same revision.
 */
export function stateHash(mvcc: MvccStore, leases: LeaseStore): number {
  const kv = mvcc.hashKV(0);
  const parts = [kv.hash, mvcc.currentRevision, mvcc.compactRevision];
  const sorted = [...leases.leases.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const text = JSON.stringify([parts, sorted.map((l) => [l.id.toString(16), l.ttl])]);
  return crc32c(0, new TextEncoder().encode(text)) >>> 0;
}
