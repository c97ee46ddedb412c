/**
 * The v3electionpb.Election service: Campaign, Proclaim, Leader, Observe (server-streaming), Resign,
 * with clientv3/concurrency's election recipe run on the server (see lock.ts for the shared recipe).
 *
 * - Campaign puts the campaigner's key `name/<lease hex>` with its value (or, when the key already
 *   exists for that lease, keeps its create revision and proclaims the new value), then waits until
 *   every older key under `name/` is gone: the campaigner is the leader. Answers
 *   `{header, leader: {name, key, rev (the key's create revision), lease}}`. A campaign abandoned while
 *   waiting deletes its key. Lease 0 gets a fresh 60 s lease, as for Lock.
 * - Proclaim and Resign act on a LeaderKey only while the key still has the create revision `rev`:
 *   Proclaim overwrites the value (else UNKNOWN "election: not leader"); Resign deletes the key (and
 *   succeeds anyway when it is gone). Without a leader key: UNKNOWN `"leader" field must be provided`.
 * - Leader answers the oldest key under `name/` (`{header, kv}`), or UNKNOWN "election: no leader".
 * - Observe sends the current leader's kv (or waits for the first campaigner's put), then every new
 *   value of that key until it is deleted, then the next leader, and so on until the client leaves. If
 *   a read fails, the stream ends with OK, as etcd's does (its observer channel just closes).
 *
 * @module
 */
import type { CallContext, GrpcRouter, ServerStream } from "../transport/grpc.ts";
import { isAuthError } from "../auth/errors.ts";
import { GrpcError, Status } from "../transport/status.ts";
import { decodeOrFail } from "./decode.ts";
import { prefixRangeEnd } from "../../storage/mvcc/bytes.ts";
import type { KeyValue, ResponseHeader } from "../pb/rpc.ts";
import {
  decodeCampaignRequest,
  decodeLeaderRequest,
  decodeProclaimRequest,
  decodeResignRequest,
  encodeCampaignResponse,
  encodeHeaderOnlyResponse,
  encodeLeaderResponse,
  type LeaderKey,
} from "../pb/v3lock.ts";
import {
  asClientError,
  contenderKey,
  createRevisionIs,
  deleteOp,
  EventQueue,
  firstCreated,
  getOp,
  prefixOf,
  putOp,
  rangeKvs,
  rangeRequest,
  type RecipeBackend,
  runTxn,
  sameBytes,
  sessionLease,
  waitDeletes,
} from "./lock.ts";

/** concurrency.ErrElectionNotLeader, as clients receive it. */
export const errNotLeader = (): GrpcError => new GrpcError(Status.UNKNOWN, "election: not leader");
/** concurrency.ErrElectionNoLeader, as clients receive it. */
export const errNoLeader = (): GrpcError => new GrpcError(Status.UNKNOWN, "election: no leader");
/** v3election.ErrMissingLeaderKey, as clients receive it. */
export const errMissingLeaderKey = (): GrpcError =>
  new GrpcError(Status.UNKNOWN, `"leader" field must be provided`);

/** Overwrites the leader's value if `leader` still holds the election; resolves with the txn's header. */
async function proclaim(b: RecipeBackend, leader: LeaderKey, value: Uint8Array): Promise<ResponseHeader> {
  const resp = await runTxn(b, {
    compare: [createRevisionIs(leader.key, leader.rev)],
    success: [putOp(leader.key, value, leader.lease)],
    failure: [],
  });
  if (!resp.succeeded) throw errNotLeader();
  return resp.header;
}

/** Deletes the leader's key if `leader` still holds it; resolves with the txn's header. */
async function resign(b: RecipeBackend, leader: LeaderKey): Promise<ResponseHeader> {
  const resp = await runTxn(b, {
    compare: [createRevisionIs(leader.key, leader.rev)],
    success: [deleteOp(leader.key)],
    failure: [],
  });
  return resp.header;
}

/** Campaigns until elected (concurrency.Election.Campaign). */
async function campaign(
  b: RecipeBackend,
  name: Uint8Array,
  lease: bigint,
  value: Uint8Array,
  signal: AbortSignal,
): Promise<{ header: ResponseHeader; leader: LeaderKey }> {
  const prefix = prefixOf(name);
  const key = contenderKey(prefix, lease);
  const resp = await runTxn(b, {
    compare: [createRevisionIs(key, 0)],
    success: [putOp(key, value, lease)],
    failure: [getOp(rangeRequest({ key }))],
  });
  const leader: LeaderKey = { name, key, rev: resp.header.revision, lease };
  if (!resp.succeeded) {
    const kv = rangeKvs(resp, 0)[0];
    leader.rev = kv.createRevision;
    if (!sameBytes(kv.value, value)) {
      try {
        await proclaim(b, leader, value);
      } catch (err) {
        await resign(b, leader).catch(() => {});
        throw err;
      }
    }
  }
  try {
    await waitDeletes(b, prefix, leader.rev - 1, signal);
  } catch (err) {
    // a campaign abandoned by its client leaves no candidate behind
    if (signal.aborted) await resign(b, leader).catch(() => {});
    throw err;
  }
  return { header: resp.header, leader };
}

/** The current leader's kv and the read's header. */
async function currentLeader(
  b: RecipeBackend,
  name: Uint8Array,
): Promise<{ header: ResponseHeader; kv: KeyValue }> {
  const resp = await b.range(firstCreated(prefixOf(name)));
  if (resp.kvs.length === 0) throw errNoLeader();
  return { header: resp.header, kv: resp.kvs[0] };
}

/** Sends one message, waiting for the transport to drain when it asks to; false once the call is over. */
async function send(stream: ServerStream, message: Uint8Array): Promise<boolean> {
  if (stream.closed) return false;
  if (!stream.send(message)) await stream.waitDrain();
  return !stream.closed;
}

/** Streams the leadership of `name` to `stream` until the call ends (concurrency.Election.Observe). */
async function observe(
  b: RecipeBackend,
  name: Uint8Array,
  stream: ServerStream,
  signal: AbortSignal,
): Promise<void> {
  const prefix = prefixOf(name);
  while (!signal.aborted) {
    const resp = await b.range(firstCreated(prefix));
    let header = resp.header;
    let kv: KeyValue | undefined = resp.kvs[0];
    if (kv === undefined) {
      // nobody campaigns: wait for the first put under the prefix
      const q = new EventQueue(b.watchHub, prefix, prefixRangeEnd(prefix), resp.header.revision);
      try {
        while (kv === undefined) {
          const batch = await q.next(signal);
          const put = batch.events.find((ev) => ev.type === "put");
          if (put !== undefined) {
            kv = put.kv;
            header = b.header(put.kv.modRevision);
          }
        }
      } finally {
        q.close();
      }
    }
    if (!await send(stream, encodeLeaderResponse({ header, kv }))) return;
    // follow that leader's key until it is deleted
    const q = new EventQueue(b.watchHub, kv.key, undefined, header.revision + 1);
    try {
      let deleted = false;
      while (!deleted) {
        const batch = await q.next(signal);
        for (const ev of batch.events) {
          if (ev.type === "delete") {
            deleted = true;
            break;
          }
          if (!await send(stream, encodeLeaderResponse({ header: b.header(batch.revision), kv: ev.kv }))) {
            return;
          }
        }
      }
    } finally {
      q.close();
    }
  }
}

/** Registers the Election methods. */
export function registerElection(
  router: GrpcRouter,
  backend: RecipeBackend,
  asCaller: (ctx: CallContext) => Promise<RecipeBackend> = () => Promise.resolve(backend),
): void {
  router
    .unary("/v3electionpb.Election/Campaign", async (raw, ctx) => {
      const server = await asCaller(ctx);
      const r = decodeOrFail(decodeCampaignRequest, raw);
      try {
        const lease = await sessionLease(server, r.lease);
        return encodeCampaignResponse(await campaign(server, r.name, lease, r.value, ctx.signal));
      } catch (err) {
        throw asClientError(err);
      }
    })
    .unary("/v3electionpb.Election/Proclaim", async (raw, ctx) => {
      const server = await asCaller(ctx);
      const r = decodeOrFail(decodeProclaimRequest, raw);
      if (r.leader === undefined) throw errMissingLeaderKey();
      try {
        const lease = await sessionLease(server, r.leader.lease);
        return encodeHeaderOnlyResponse({ header: await proclaim(server, { ...r.leader, lease }, r.value) });
      } catch (err) {
        throw asClientError(err);
      }
    })
    .unary("/v3electionpb.Election/Leader", async (raw, ctx) => {
      const server = await asCaller(ctx);
      const r = decodeOrFail(decodeLeaderRequest, raw);
      try {
        return encodeLeaderResponse(await currentLeader(server, r.name));
      } catch (err) {
        throw asClientError(err);
      }
    })
    .unary("/v3electionpb.Election/Resign", async (raw, ctx) => {
      const server = await asCaller(ctx);
      const r = decodeOrFail(decodeResignRequest, raw);
      if (r.leader === undefined) throw errMissingLeaderKey();
      try {
        await sessionLease(server, r.leader.lease);
        return encodeHeaderOnlyResponse({ header: await resign(server, r.leader) });
      } catch (err) {
        throw asClientError(err);
      }
    })
    .stream("/v3electionpb.Election/Observe", (stream, ctx) => {
      let started = false;
      const start = (raw: Uint8Array): void => {
        started = true;
        let name: Uint8Array;
        try {
          name = decodeLeaderRequest(raw).name;
        } catch (err) {
          // grpc-go's RecvMsg on a server stream
          const message = `grpc: failed to unmarshal the received message ${(err as Error).message}`;
          stream.end(new GrpcError(Status.INTERNAL, message));
          return;
        }
        // a failed read or a compacted watch ends the stream with OK, like etcd's closed observer channel
        asCaller(ctx).then((server) => observe(server, name, stream, ctx.signal)).then(
          () => stream.end(),
          (err) => stream.end(isAuthError(err) ? err : undefined),
        );
      };
      return {
        onMessage(message) {
          if (!started) start(message);
        },
        onHalfClose() {
          // the handler's RecvMsg sees io.EOF and returns it: UNKNOWN "EOF"
          if (!started) stream.end(new GrpcError(Status.UNKNOWN, "EOF"));
        },
        onCancel() {},
      };
    });
}
