/**
 * The replicated part of leases: which leases exist, their granted TTL, and which keys are attached.
 * Expiry deadlines are not replicated state: the leader keeps them (see server/lease/lessor.ts) and turns an
 * expiry into a revoke entry in the log, so every member applies the same change.
 *
 * @module
 */

/** Largest TTL etcd accepts, in seconds. */
export const MAX_LEASE_TTL = 9_000_000_000;

/** One lease as every member holds it. */
export interface Lease {
  id: bigint;
  /** TTL as granted (after raising it to the minimum), seconds. */
  ttl: number;
  /** Remaining TTL saved by a checkpoint, seconds; 0 when none was taken. */
  remainingTtl: number;
  /** Attached keys as latin1 strings (one char per byte). */
  keys: Set<string>;
}

/** Latin1 "binary string" form of a key: one char per byte, so string order is byte order. */
export function keyString(key: Uint8Array): string {
  let s = "";
  for (let i = 0; i < key.length; i += 4096) {
    s += String.fromCharCode.apply(null, key.subarray(i, i + 4096) as unknown as number[]);
  }
  return s;
}

/** Bytes of a latin1 key string. */
export function keyBytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

/** The set of leases and their keys; changed only by the apply loop. */
export class LeaseStore {
  readonly leases: Map<bigint, Lease> = new Map();

  /** The lease with this ID, if it exists. */
  lookup(id: bigint): Lease | undefined {
    return this.leases.get(id);
  }

  /** The keys attached to a lease in byte order (empty for an unknown lease). */
  keys(id: bigint): string[] {
    const lease = this.leases.get(id);
    return lease === undefined ? [] : [...lease.keys].sort();
  }

  /** Adds a lease (the caller has checked the ID is free and the TTL is in range). */
  grant(id: bigint, ttl: number): Lease {
    const lease: Lease = { id, ttl, remainingTtl: 0, keys: new Set() };
    this.leases.set(id, lease);
    return lease;
  }

  /** Removes the lease and returns the keys that were attached (the caller deletes them). */
  revoke(id: bigint): string[] {
    const keys = this.keys(id);
    this.leases.delete(id);
    return keys;
  }

  /** Records that a key now carries this lease. */
  attach(id: bigint, key: string): void {
    this.leases.get(id)?.keys.add(key);
  }

  /** Records that a key no longer carries this lease. */
  detach(id: bigint, key: string): void {
    this.leases.get(id)?.keys.delete(key);
  }

  /** Saves a lease's remaining TTL (0 clears it), so a new leader can resume from it. */
  checkpoint(id: bigint, remainingTtl: number): void {
    const lease = this.leases.get(id);
    if (lease) lease.remainingTtl = remainingTtl;
  }

  /** A compact JSON-able image for snapshots; keys are rebuilt from the key space on restore. */
  toJSON(): { id: string; ttl: number; remainingTtl: number }[] {
    return [...this.leases.values()].map((l) => ({
      id: l.id.toString(),
      ttl: l.ttl,
      remainingTtl: l.remainingTtl,
    }));
  }

  /** The inverse of {@linkcode LeaseStore.toJSON} (without keys). */
  static fromJSON(items: { id: string; ttl: number; remainingTtl: number }[]): LeaseStore {
    const store = new LeaseStore();
    for (const it of items) {
      const lease = store.grant(BigInt(it.id), it.ttl);
      lease.remainingTtl = it.remainingTtl;
    }
    return store;
  }
}
