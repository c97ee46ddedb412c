/**
 * The v3lockpb.Lock service (Lock, Unlock), and the key-space recipes it shares with the election
 * service (election.ts).
 *
 * etcd 3.4 serves these services by running clientv3/concurrency against itself; we run the same
 * recipes directly on the server's KV, lease and watch entry points, so every step still goes through
 * Raft (writes) or a linearizable read, exactly as a client's would:
 *
 * - A contender for name N owns the key `N/<lease in hex>` (Go's `%x` of the int64 lease ID), written
 *   with that lease only if it does not exist yet, so locking twice with one lease is one acquisition.
 * - Contenders are ordered by the create revision of their keys. The owner is the oldest; every other
 *   contender waits until no key under `N/` created before its own is left: it reads the newest such
 *   key and waits for its deletion (a watch from the read's revision), then reads again.
 * - A request with lease 0 gets a fresh lease of 60 s (concurrency's default session TTL), never kept
 *   alive: etcd's server orphans the session it creates for the call.
 * - When a waiting Lock is abandoned (the client cancels or its deadline passes) its key is deleted, so
 *   it does not block the contenders behind it. Unlock is a plain delete of the key, owned or not.
 *
 * Errors keep etcd's texts. Errors of the KV calls come back to etcd's handlers through its in-process
 * client, which turns them into plain errors: clients see them with status UNKNOWN (for instance
 * UNKNOWN "etcdserver: requested lease not found" for a Lock with an unknown lease).
 *
 * @module
 */
import type { CallContext, GrpcRouter } from "../transport/grpc.ts";
import { GrpcError, Status } from "../transport/status.ts";
import { decodeOrFail } from "./decode.ts";
import { checkDeleteRequest } from "./validate.ts";
import { Errors } from "../errors.ts";
import { prefixRangeEnd } from "../../storage/mvcc/bytes.ts";
import type { WatchBatch, WatchHub } from "../watch/hub.ts";
import {
  CompareResult,
  CompareTarget,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  encodeDeleteRangeRequest,
  encodeTxnRequest,
  type KeyValue,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  type RangeRequest,
  type RangeResponse,
  type RequestOp,
  type ResponseHeader,
  SortOrder,
  SortTarget,
  type TxnRequest,
  type TxnResponse,
} from "../pb/rpc.ts";
import {
  decodeLockRequest,
  decodeUnlockRequest,
  encodeHeaderOnlyResponse,
  encodeLockResponse,
} from "../pb/v3lock.ts";

/** What the lock and election services need from the server ({@linkcode EtcdServer} fits). */
export interface RecipeBackend {
  range(r: RangeRequest): Promise<RangeResponse>;
  txn(r: TxnRequest, raw: Uint8Array): Promise<TxnResponse>;
  deleteRange(r: DeleteRangeRequest, raw: Uint8Array): Promise<DeleteRangeResponse>;
  leaseGrant(r: LeaseGrantRequest): Promise<LeaseGrantResponse>;
  readonly watchHub: WatchHub;
  header(revision: number): ResponseHeader;
}

/** concurrency.defaultSessionTTL: the TTL of the lease granted for a request without one. */
export const SESSION_TTL_SECONDS = 60;

const EMPTY = new Uint8Array(0);
const utf8 = new TextEncoder();

/** `a` followed by `b`. */
export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The contender key of `lease` under `prefix` (the prefix ends with "/"), as Go's `%s%x` writes it. */
export function contenderKey(prefix: Uint8Array, lease: bigint): Uint8Array {
  return concat(prefix, utf8.encode(lease.toString(16)));
}

/** The key prefix of a lock or election name: the name and a slash. */
export function prefixOf(name: Uint8Array): Uint8Array {
  return concat(name, utf8.encode("/"));
}

/** True when two byte strings are equal. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The lease a request asks for; 0 means "grant me one", as concurrency.NewSession does. */
export async function sessionLease(b: RecipeBackend, lease: bigint): Promise<bigint> {
  if (lease !== 0n) return lease;
  return (await b.leaseGrant({ TTL: SESSION_TTL_SECONDS, ID: 0n })).ID;
}

/** A range request with etcd's defaults for every field not given. */
export function rangeRequest(o: Partial<RangeRequest> & { key: Uint8Array }): RangeRequest {
  return {
    rangeEnd: EMPTY,
    limit: 0,
    revision: 0,
    sortOrder: SortOrder.NONE,
    sortTarget: SortTarget.KEY,
    serializable: false,
    keysOnly: false,
    countOnly: false,
    minModRevision: 0,
    maxModRevision: 0,
    minCreateRevision: 0,
    maxCreateRevision: 0,
    ...o,
  };
}

/** The oldest key under `prefix` (clientv3's `WithFirstCreate`). */
export function firstCreated(prefix: Uint8Array): RangeRequest {
  return rangeRequest({
    key: prefix,
    rangeEnd: prefixRangeEnd(prefix),
    sortOrder: SortOrder.ASCEND,
    sortTarget: SortTarget.CREATE,
    limit: 1,
  });
}

/** A put op. */
export function putOp(key: Uint8Array, value: Uint8Array, lease: bigint): RequestOp {
  return { requestPut: { key, value, lease, prevKv: false, ignoreValue: false, ignoreLease: false } };
}

/** A single-key get op. */
export function getOp(r: RangeRequest): RequestOp {
  return { requestRange: r };
}

/** A single-key delete op. */
export function deleteOp(key: Uint8Array): RequestOp {
  return { requestDeleteRange: { key, rangeEnd: EMPTY, prevKv: false } };
}

/** A compare of `key`'s create revision with `revision`. */
export function createRevisionIs(key: Uint8Array, revision: number): TxnRequest["compare"][number] {
  return {
    result: CompareResult.EQUAL,
    target: CompareTarget.CREATE,
    key,
    version: 0,
    createRevision: revision,
    modRevision: 0,
    value: EMPTY,
    lease: 0n,
    rangeEnd: EMPTY,
  };
}

/** Runs a transaction through the server (the request's encoding is the proposal). */
export function runTxn(b: RecipeBackend, r: TxnRequest): Promise<TxnResponse> {
  return b.txn(r, encodeTxnRequest(r));
}

/** Deletes one key through the server (an empty key is refused as the KV service refuses it). */
export async function deleteKey(b: RecipeBackend, key: Uint8Array): Promise<DeleteRangeResponse> {
  const r: DeleteRangeRequest = { key, rangeEnd: EMPTY, prevKv: false };
  checkDeleteRequest(r);
  return await b.deleteRange(r, encodeDeleteRangeRequest(r));
}

/** The kvs of the `i`th response of a transaction, which must be a range. */
export function rangeKvs(resp: TxnResponse, i: number): KeyValue[] {
  return resp.responses[i]?.responseRange?.kvs ?? [];
}

/** What an abandoned wait throws (the call is over by then; the client sees the transport's status). */
function canceled(): GrpcError {
  return new GrpcError(Status.CANCELLED, "context canceled");
}

/**
 * The watch batches of one key or prefix, from a revision on, as an async queue. Deliveries are always
 * taken (one key or one election's keys: little traffic); compaction of the history it still needs
 * fails the next read, as clientv3 reports a compacted watch.
 */
export class EventQueue {
  readonly #batches: WatchBatch[] = [];
  #failure: GrpcError | undefined;
  #wake: (() => void) | undefined;
  readonly #watcher;

  constructor(hub: WatchHub, key: Uint8Array, rangeEnd: Uint8Array | undefined, startRevision: number) {
    this.#watcher = hub.watch({
      key,
      rangeEnd,
      startRevision,
      sink: {
        deliver: (batch) => {
          this.#batches.push(batch);
          this.#wakeUp();
          return true;
        },
        compacted: () => {
          this.#failure = Errors.compacted();
          this.#wakeUp();
        },
      },
    });
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** The next batch; rejects when `signal` aborts or the history was compacted. */
  async next(signal: AbortSignal): Promise<WatchBatch> {
    for (;;) {
      const batch = this.#batches.shift();
      if (batch !== undefined) return batch;
      if (this.#failure !== undefined) throw this.#failure;
      if (signal.aborted) throw canceled();
      await new Promise<void>((resolve) => {
        const onAbort = () => resolve();
        signal.addEventListener("abort", onAbort, { once: true });
        this.#wake = () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** Stops watching. */
  close(): void {
    this.#watcher.cancel();
  }
}

/** Resolves once `key` is deleted at or after `revision` (concurrency's waitDelete). */
async function waitDelete(
  b: RecipeBackend,
  key: Uint8Array,
  revision: number,
  signal: AbortSignal,
): Promise<void> {
  const q = new EventQueue(b.watchHub, key, undefined, revision);
  try {
    for (;;) {
      const batch = await q.next(signal);
      if (batch.events.some((ev) => ev.type === "delete")) return;
    }
  } finally {
    q.close();
  }
}

/**
 * Waits until no key under `prefix` created at or before `maxCreateRevision` is left (concurrency's
 * waitDeletes); resolves with the header of the read that found none.
 */
export async function waitDeletes(
  b: RecipeBackend,
  prefix: Uint8Array,
  maxCreateRevision: number,
  signal: AbortSignal,
): Promise<ResponseHeader> {
  for (;;) {
    if (signal.aborted) throw canceled();
    const resp = await b.range(rangeRequest({
      key: prefix,
      rangeEnd: prefixRangeEnd(prefix),
      sortOrder: SortOrder.DESCEND,
      sortTarget: SortTarget.CREATE,
      limit: 1,
      maxCreateRevision,
    }));
    if (resp.kvs.length === 0) return resp.header;
    await waitDelete(b, resp.kvs[0].key, resp.header.revision, signal);
  }
}

/** Acquires the lock `name` for `lease` (concurrency.Mutex.Lock); resolves with its key and header. */
export async function acquireLock(
  b: RecipeBackend,
  name: Uint8Array,
  lease: bigint,
  signal: AbortSignal,
): Promise<{ key: Uint8Array; header: ResponseHeader }> {
  const prefix = prefixOf(name);
  const key = contenderKey(prefix, lease);
  const owner = getOp(firstCreated(prefix));
  const resp = await runTxn(b, {
    compare: [createRevisionIs(key, 0)],
    success: [putOp(key, EMPTY, lease), owner],
    failure: [getOp(rangeRequest({ key })), owner],
  });
  const myRev = resp.succeeded ? resp.header.revision : rangeKvs(resp, 0)[0].createRevision;
  const first = rangeKvs(resp, 1);
  if (first.length === 0 || first[0].createRevision === myRev) return { key, header: resp.header };
  try {
    return { key, header: await waitDeletes(b, prefix, myRev - 1, signal) };
  } catch (err) {
    // give up our place in the queue so the contenders behind us are not stuck on it
    await deleteKey(b, key).catch(() => {});
    throw err;
  }
}

/** An error as etcd's handlers return the errors of their in-process client: status UNKNOWN, same text. */
export function asClientError(err: unknown): unknown {
  if (
    err instanceof GrpcError && err.status !== Status.CANCELLED && err.status !== Status.DEADLINE_EXCEEDED
  ) {
    return new GrpcError(Status.UNKNOWN, err.message);
  }
  return err;
}

/** Registers the Lock methods. */
export function registerLock(
  router: GrpcRouter,
  backend: RecipeBackend,
  asCaller: (ctx: CallContext) => Promise<RecipeBackend> = () => Promise.resolve(backend),
): void {
  router
    .unary("/v3lockpb.Lock/Lock", async (raw, ctx) => {
      const server = await asCaller(ctx);
      const r = decodeOrFail(decodeLockRequest, raw);
      try {
        const lease = await sessionLease(server, r.lease);
        return encodeLockResponse(await acquireLock(server, r.name, lease, ctx.signal));
      } catch (err) {
        throw asClientError(err);
      }
    })
    .unary("/v3lockpb.Lock/Unlock", async (raw, ctx) => {
      const server = await asCaller(ctx);
      const r = decodeOrFail(decodeUnlockRequest, raw);
      try {
        return encodeHeaderOnlyResponse({ header: (await deleteKey(server, r.key)).header });
      } catch (err) {
        throw asClientError(err);
      }
    });
}
