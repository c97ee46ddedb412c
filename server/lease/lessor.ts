/**
 * Lease expiry, kept by the leader only, and the deterministic apply side of lease entries.
 *
 * What leases exist is replicated state ({@linkcode LeaseStore}), changed only by applying committed
 * LeaseGrant, LeaseRevoke and LeaseCheckpoint entries with the pure functions below. When a lease expires
 * is not: the {@linkcode Lessor} of the current leader ("primary") holds a deadline per lease in memory,
 * pushes it forward on keepalives, and when one passes asks the server to propose a revoke, which then
 * reaches every member through the log. A member that becomes leader gives every lease its full TTL (or
 * its checkpointed remainder) plus the election timeout; a member that steps down forgets all deadlines.
 *
 * The lessor reads time only through the injected {@linkcode Clock}, so tests drive it with a fake one.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { Errors } from "../errors.ts";
import type { ApplyResult } from "../member/apply.ts";
import { keyBytes, type Lease, type LeaseStore, MAX_LEASE_TTL } from "../../storage/lease.ts";
import type { LeaseCheckpoint, LeaseCheckpointRequest, LeaseGrantRequest } from "../pb/rpc.ts";

/** How often the primary looks for expired leases, like etcd's lessor loop. */
const DEFAULT_CHECK_INTERVAL_MS = 500;
/** Leases revoked per second at most, etcd's default revoke rate. */
const DEFAULT_REVOKE_RATE = 1000;
/** How long an expired lease whose revoke is in flight waits before its revoke is asked for again. */
const DEFAULT_REVOKE_RETRY_MS = 3000;
/** Interval between checkpoints of one lease, when checkpointing is on (etcd's default: 5 minutes). */
const DEFAULT_CHECKPOINT_INTERVAL_MS = 5 * 60_000;
/** Most checkpoints handed over in one batch (one log entry). */
const MAX_CHECKPOINT_BATCH = 1000;

/**
 * Thrown when a request needs the primary lessor and this member is not it: the caller forwards the
 * request to the leader, or retries once a leader is known.
 */
export class NotPrimaryError extends Error {
  /** Stable error code of this class. */
  readonly code = "LESSOR_NOT_PRIMARY";
  constructor() {
    super("not a primary lessor");
    this.name = "NotPrimaryError";
  }
}

/**
 * The smallest TTL a lease gets, in seconds: one and a half election timeouts rounded up to a second, so
 * a lease outlives a leader change (etcd: `ceil((3 * electionTicks / 2) * heartbeat)`, 2 s by default).
 * `electionTicks` is the election timeout in whole heartbeats, as etcd counts it.
 */
export function minLeaseTtlSeconds(electionTimeoutMs: number, heartbeatIntervalMs: number): number {
  const electionTicks = Math.floor(electionTimeoutMs / heartbeatIntervalMs);
  return Math.ceil((Math.floor((3 * electionTicks) / 2) * heartbeatIntervalMs) / 1000);
}

/**
 * A lease ID for a grant that did not ask for one: a random positive, non-zero int64. The proposing
 * member picks it before proposing, so every member applies the same ID.
 */
export function newLeaseId(random: () => number): bigint {
  for (let attempt = 0; attempt < 64; attempt++) {
    const high = BigInt(Math.floor(random() * 0x80000000));
    const low = BigInt(Math.floor(random() * 0x100000000));
    const id = (high << 32n) | low;
    if (id !== 0n) return id;
  }
  throw new Error("the random source returned only zeros");
}

// ---- apply: deterministic, the same on every member ---------------------------------------------

/**
 * Applies a committed LeaseGrant entry: the ID must be set and free, the TTL at most
 * {@linkcode MAX_LEASE_TTL}; a TTL under the minimum is raised to it. Returns the new lease (its `ttl` is
 * what the response carries). Throws etcd's errors: "requested lease not found" for ID 0, "too large lease
 * TTL", "lease already exists".
 */
export function applyLeaseGrant(store: LeaseStore, r: LeaseGrantRequest, minTtlSeconds: number): Lease {
  if (r.ID === 0n) throw Errors.leaseNotFound();
  if (r.TTL > MAX_LEASE_TTL) throw Errors.leaseTtlTooLarge();
  if (store.lookup(r.ID) !== undefined) throw Errors.leaseExist();
  return store.grant(r.ID, Math.max(r.TTL, minTtlSeconds));
}

/** What {@linkcode applyLeaseRevoke} needs of the apply loop: the lease set and the key deletion. */
export interface LeaseRevoker {
  readonly leases: LeaseStore;
  /** Deletes the lease's keys in one revision and forgets the lease (server/apply.ts `Applier`). */
  revokeLease(id: bigint): ApplyResult<number>;
}

/**
 * Applies a committed LeaseRevoke entry: deletes the attached keys in one revision and removes the lease.
 * The result is the revision after the change and the delete events. Throws "requested lease not found".
 */
export function applyLeaseRevoke(applier: LeaseRevoker, id: bigint): ApplyResult<number> {
  if (applier.leases.lookup(id) === undefined) throw Errors.leaseNotFound();
  return applier.revokeLease(id);
}

/** Applies a committed LeaseCheckpoint entry: saves each lease's remaining TTL; unknown leases are skipped. */
export function applyLeaseCheckpoint(store: LeaseStore, r: LeaseCheckpointRequest): void {
  for (const cp of r.checkpoints) store.checkpoint(cp.ID, cp.remainingTTL);
}

// ---- the lessor ---------------------------------------------------------------------------------

/** How the lessor is set up. */
export interface LessorOptions {
  clock: Clock;
  /** The replicated lease set; replace it with {@linkcode Lessor.recover} after a snapshot. */
  store: LeaseStore;
  /**
   * Asks the server to propose a LeaseRevoke for an expired lease. Called on the primary only, from the
   * check timer; it must not throw (a failed proposal is simply asked for again after the retry delay).
   */
  revoke: (id: bigint) => void;
  /** Period of the expiry check, ms (default {@linkcode DEFAULT_CHECK_INTERVAL_MS}). */
  checkIntervalMs?: number;
  /** Leases revoked per second at most (default {@linkcode DEFAULT_REVOKE_RATE}). */
  revokeRate?: number;
  /** Wait before asking again to revoke a lease that is still there, ms (etcd: the request timeout). */
  revokeRetryMs?: number;
  /**
   * Turns checkpointing on: asks the server to propose a LeaseCheckpoint entry with these remaining TTLs
   * (etcd's --experimental-enable-lease-checkpoint). Must not throw.
   */
  checkpoint?: (checkpoints: LeaseCheckpoint[]) => void;
  /** Interval between checkpoints of one lease, ms (default {@linkcode DEFAULT_CHECKPOINT_INTERVAL_MS}). */
  checkpointIntervalMs?: number;
}

/** A lease's remaining and granted TTL, and optionally its keys: LeaseTimeToLive's answer. */
export interface LeaseTimeToLive {
  /** Remaining whole seconds (truncated, as etcd reports them). */
  TTL: number;
  grantedTTL: number;
  /** The attached keys in byte order; empty unless asked for. */
  keys: Uint8Array[];
}

/** The primary's view of one lease. */
interface Tracked {
  id: bigint;
  /** When the lease expires, clock ms. */
  expiry: number;
  /** When the expiry check looks at it next: the expiry, or a revoke retry time after it. */
  due: number;
  /** Index in the heap. */
  pos: number;
  /** When its next checkpoint is due; 0 for none. */
  checkpointAt: number;
}

/** A renew that waits for an expired lease to be revoked (or for this member to step down): how it fails. */
type RenewWaiter = (err: Error) => void;

/**
 * Lease deadlines on the leader. Apply calls {@linkcode onGranted} / {@linkcode onRevoked} after each
 * grant and revoke; leadership changes call {@linkcode promote} / {@linkcode demote}. While primary, a
 * timer (or a direct {@linkcode tick}) hands expired leases to `revoke`, at most `revokeRate` per second,
 * and does not ask again for the same lease before `revokeRetryMs`.
 */
export class Lessor {
  #store: LeaseStore;
  readonly #clock: Clock;
  readonly #revoke: (id: bigint) => void;
  readonly #checkIntervalMs: number;
  readonly #revokeRate: number;
  readonly #revokeRetryMs: number;
  readonly #checkpoint: ((checkpoints: LeaseCheckpoint[]) => void) | undefined;
  readonly #checkpointIntervalMs: number;
  #primary = false;
  #timer: number | undefined = undefined;
  readonly #tracked = new Map<bigint, Tracked>();
  /** Min-heap of tracked leases by `due`. */
  #heap: Tracked[] = [];
  /** Checkpoints in the order they fall due (all are scheduled one interval after "now"). */
  #checkpointQueue: { id: bigint; at: number }[] = [];
  #checkpointHead = 0;
  readonly #waiters = new Map<bigint, RenewWaiter[]>();

  constructor(options: LessorOptions) {
    this.#clock = options.clock;
    this.#store = options.store;
    this.#revoke = options.revoke;
    this.#checkIntervalMs = options.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS;
    this.#revokeRate = Math.max(1, options.revokeRate ?? DEFAULT_REVOKE_RATE);
    this.#revokeRetryMs = options.revokeRetryMs ?? DEFAULT_REVOKE_RETRY_MS;
    this.#checkpoint = options.checkpoint;
    this.#checkpointIntervalMs = options.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS;
  }

  /** True while this member is the leader's lessor and keeps deadlines. */
  get isPrimary(): boolean {
    return this.#primary;
  }

  /**
   * Becomes primary: every lease expires `extendMs` (the election timeout) plus its checkpointed remaining
   * TTL, or its full TTL, from now. When there are at least as many leases as the revoke rate, expiries
   * that pile up are spread so no more than three quarters of the rate fall in any second. Renews still
   * waiting from an earlier term fail with {@linkcode NotPrimaryError}, so their callers ask again.
   */
  promote(extendMs: number): void {
    const now = this.#clock.now();
    this.#primary = true;
    this.#reset();
    this.#failWaiters(() => new NotPrimaryError());
    const all: Tracked[] = [];
    for (const lease of this.#store.leases.values()) {
      const expiry = now + extendMs + 1000 * (lease.remainingTtl > 0 ? lease.remainingTtl : lease.ttl);
      all.push({ id: lease.id, expiry, due: expiry, pos: 0, checkpointAt: 0 });
    }
    if (all.length >= this.#revokeRate) this.#spread(all);
    for (const t of all) {
      this.#tracked.set(t.id, t);
      this.#scheduleCheckpoint(t, now);
    }
    this.#heap = all;
    for (let i = 0; i < all.length; i++) all[i].pos = i;
    for (let i = (all.length >> 1) - 1; i >= 0; i--) this.#down(i);
    this.#timer ??= this.#clock.setInterval(() => this.tick(), this.#checkIntervalMs);
  }

  /** Stops being primary: all deadlines are forgotten, waiting renews fail with {@linkcode NotPrimaryError}. */
  demote(): void {
    this.#primary = false;
    this.#reset();
    this.#stopTimer();
    this.#failWaiters(() => new NotPrimaryError());
  }

  /** Call after applying a grant: a primary starts the lease's clock. */
  onGranted(id: bigint): void {
    if (!this.#primary) return;
    const lease = this.#store.lookup(id);
    if (lease === undefined) return;
    this.#refresh(lease, this.#clock.now());
  }

  /** Call after applying a revoke: forgets the deadline; renews waiting on it fail with "lease not found". */
  onRevoked(id: bigint): void {
    const t = this.#tracked.get(id);
    if (t !== undefined) this.#untrack(t);
    const waiting = this.#waiters.get(id);
    if (waiting === undefined) return;
    this.#waiters.delete(id);
    for (const fail of waiting) fail(Errors.leaseNotFound());
  }

  /**
   * Renews a lease (a keepalive): its deadline becomes now plus its TTL, which is returned. Rejects with
   * {@linkcode NotPrimaryError} off the primary and "requested lease not found" for an unknown lease. An
   * expired lease is not renewed: the answer waits until its revoke is applied (then "not found") or this
   * member steps down (then {@linkcode NotPrimaryError}), or until `signal` aborts (then "request canceled").
   */
  renew(id: bigint, signal?: AbortSignal): Promise<number> {
    if (!this.#primary) return Promise.reject(new NotPrimaryError());
    const lease = this.#store.lookup(id);
    if (lease === undefined) return Promise.reject(Errors.leaseNotFound());
    const now = this.#clock.now();
    const t = this.#tracked.get(id);
    if (t !== undefined && t.expiry <= now) return this.#waitRevoked(id, signal);
    if (this.#checkpoint !== undefined && lease.remainingTtl > 0) {
      this.#checkpoint([{ ID: id, remainingTTL: 0 }]);
    }
    this.#refresh(lease, now);
    return Promise.resolve(lease.ttl);
  }

  /**
   * Whole seconds until the lease expires, truncated. Throws {@linkcode NotPrimaryError} off the primary,
   * "requested lease not found" for an unknown lease.
   */
  remainingTtl(id: bigint): number {
    if (!this.#primary) throw new NotPrimaryError();
    const lease = this.#store.lookup(id);
    if (lease === undefined) throw Errors.leaseNotFound();
    return Math.trunc((this.#trackedOf(lease).expiry - this.#clock.now()) / 1000);
  }

  /** LeaseTimeToLive on the primary: remaining and granted TTL, and the keys when asked for. */
  timeToLive(id: bigint, withKeys: boolean): LeaseTimeToLive {
    const TTL = this.remainingTtl(id);
    const lease = this.#store.lookup(id)!;
    return { TTL, grantedTTL: lease.ttl, keys: withKeys ? this.#store.keys(id).map(keyBytes) : [] };
  }

  /** Every lease's ID: soonest expiry first on the primary, in ID order elsewhere (and among ties). */
  leases(): bigint[] {
    const ids = [...this.#store.leases.keys()];
    const expiry = (id: bigint): number => this.#tracked.get(id)?.expiry ?? Infinity;
    return ids.sort((a, b) => (expiry(a) - expiry(b)) || (a < b ? -1 : a > b ? 1 : 0));
  }

  /**
   * Takes over a new lease set (after a snapshot was installed). A primary restarts every lease's full
   * TTL; renews waiting on leases that are gone fail with "requested lease not found".
   */
  recover(store: LeaseStore): void {
    this.#store = store;
    this.#reset();
    for (const [id, waiting] of this.#waiters) {
      if (store.lookup(id) !== undefined) continue;
      this.#waiters.delete(id);
      for (const fail of waiting) fail(Errors.leaseNotFound());
    }
    if (!this.#primary) return;
    const now = this.#clock.now();
    for (const lease of store.leases.values()) this.#refresh(lease, now);
  }

  /**
   * One expiry check (the timer runs it every `checkIntervalMs` while primary): hands up to the rate
   * limit's share of expired leases to `revoke`, and due checkpoints to `checkpoint`.
   */
  tick(): void {
    if (!this.#primary) return;
    const now = this.#clock.now();
    const limit = Math.max(1, Math.floor((this.#revokeRate * this.#checkIntervalMs) / 1000));
    const expired: bigint[] = [];
    while (this.#heap.length > 0 && expired.length < limit) {
      const t = this.#heap[0];
      if (this.#store.lookup(t.id) === undefined) {
        this.#untrack(t);
        continue;
      }
      if (t.due > now) break;
      t.due = now + this.#revokeRetryMs;
      this.#down(0);
      expired.push(t.id);
    }
    const checkpoints = this.#dueCheckpoints(now);
    for (const id of expired) this.#revoke(id);
    if (checkpoints.length > 0) this.#checkpoint!(checkpoints);
  }

  /** Stops the timer and fails waiting renews; the lessor is no longer primary. */
  close(): void {
    this.demote();
  }

  // ---- internals ----

  #reset(): void {
    this.#tracked.clear();
    this.#heap = [];
    this.#checkpointQueue = [];
    this.#checkpointHead = 0;
  }

  #stopTimer(): void {
    if (this.#timer === undefined) return;
    this.#clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #failWaiters(error: () => Error): void {
    const all = [...this.#waiters.values()];
    this.#waiters.clear();
    for (const waiting of all) for (const fail of waiting) fail(error());
  }

  #waitRevoked(id: bigint, signal: AbortSignal | undefined): Promise<number> {
    if (signal?.aborted) return Promise.reject(Errors.canceled());
    return new Promise<number>((_resolve, reject) => {
      const onAbort = (): void => {
        const waiting = this.#waiters.get(id);
        const i = waiting?.indexOf(waiter) ?? -1;
        if (i >= 0) waiting!.splice(i, 1);
        if (waiting?.length === 0) this.#waiters.delete(id);
        reject(Errors.canceled());
      };
      const waiter: RenewWaiter = (err) => {
        signal?.removeEventListener("abort", onAbort);
        reject(err);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const waiting = this.#waiters.get(id);
      if (waiting === undefined) this.#waiters.set(id, [waiter]);
      else waiting.push(waiter);
    });
  }

  /** The tracked entry of a lease the store has, created at its full TTL if apply never announced it. */
  #trackedOf(lease: Lease): Tracked {
    return this.#tracked.get(lease.id) ?? this.#refresh(lease, this.#clock.now());
  }

  /** Sets the lease's deadline to `now` plus its full TTL. */
  #refresh(lease: Lease, now: number): Tracked {
    const expiry = now + 1000 * lease.ttl;
    let t = this.#tracked.get(lease.id);
    if (t === undefined) {
      t = { id: lease.id, expiry, due: expiry, pos: this.#heap.length, checkpointAt: 0 };
      this.#tracked.set(lease.id, t);
      this.#heap.push(t);
      this.#up(t.pos);
      this.#scheduleCheckpoint(t, now);
      return t;
    }
    t.expiry = expiry;
    t.due = expiry;
    this.#fix(t.pos);
    return t;
  }

  #untrack(t: Tracked): void {
    this.#tracked.delete(t.id);
    const last = this.#heap.pop()!;
    if (last !== t) {
      this.#heap[t.pos] = last;
      last.pos = t.pos;
      this.#fix(last.pos);
    }
  }

  /**
   * Spreads piled-up expiries: walking leases in expiry order, once more than three quarters of the revoke
   * rate fall within one second of a window's first expiry, each further lease moves to the next free
   * slot, one slot per 1/target second.
   */
  #spread(all: Tracked[]): void {
    all.sort((a, b) => (a.expiry - b.expiry) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const target = Math.max(1, Math.floor((3 * this.#revokeRate) / 4));
    let windowStart = all[0].expiry;
    let windowEnd = windowStart + 1000;
    let count = 0;
    for (const t of all) {
      if (t.expiry > windowEnd) {
        windowStart = t.expiry;
        windowEnd = windowStart + 1000;
        count = 1;
        continue;
      }
      count++;
      if (count <= target) continue;
      const slot = windowStart + Math.floor((1000 * count) / target);
      if (slot > t.expiry) {
        t.expiry = slot;
        t.due = slot;
      }
      windowEnd = t.expiry;
    }
  }

  #scheduleCheckpoint(t: Tracked, now: number): void {
    if (this.#checkpoint === undefined) return;
    const lease = this.#store.lookup(t.id);
    if (lease === undefined) return;
    const remaining = lease.remainingTtl > 0 ? lease.remainingTtl : lease.ttl;
    if (remaining * 1000 <= this.#checkpointIntervalMs) return;
    t.checkpointAt = now + this.#checkpointIntervalMs;
    this.#checkpointQueue.push({ id: t.id, at: t.checkpointAt });
  }

  /** Checkpoints due now, one batch at most; each checked lease is scheduled again. */
  #dueCheckpoints(now: number): LeaseCheckpoint[] {
    const out: LeaseCheckpoint[] = [];
    const queue = this.#checkpointQueue;
    while (this.#checkpointHead < queue.length && out.length < MAX_CHECKPOINT_BATCH) {
      const { id, at } = queue[this.#checkpointHead];
      if (at > now) break;
      this.#checkpointHead++;
      const t = this.#tracked.get(id);
      const lease = this.#store.lookup(id);
      if (t === undefined || lease === undefined || t.checkpointAt !== at) continue;
      t.checkpointAt = 0;
      if (t.expiry <= now) continue;
      const remaining = Math.ceil((t.expiry - now) / 1000);
      if (remaining < lease.ttl) out.push({ ID: id, remainingTTL: remaining });
      this.#scheduleCheckpoint(t, now);
    }
    if (this.#checkpointHead > 1024 && this.#checkpointHead * 2 > queue.length) {
      this.#checkpointQueue = queue.slice(this.#checkpointHead);
      this.#checkpointHead = 0;
    }
    return out;
  }

  // ---- the heap of deadlines ----

  #fix(i: number): void {
    if (!this.#up(i)) this.#down(i);
  }

  /** Moves entry i towards the root; true if it moved. */
  #up(i: number): boolean {
    const h = this.#heap;
    const t = h[i];
    const start = i;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent].due <= t.due) break;
      h[i] = h[parent];
      h[i].pos = i;
      i = parent;
    }
    h[i] = t;
    t.pos = i;
    return i !== start;
  }

  #down(i: number): void {
    const h = this.#heap;
    const n = h.length;
    const t = h[i];
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && h[child + 1].due < h[child].due) child++;
      if (h[child].due >= t.due) break;
      h[i] = h[child];
      h[i].pos = i;
      i = child;
    }
    h[i] = t;
    t.pos = i;
  }
}
