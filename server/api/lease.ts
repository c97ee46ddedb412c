/**
 * The etcdserverpb.Lease service: grant, revoke, keepalive stream, time-to-live and list, answered as
 * etcd 3.4 answers them.
 *
 * - LeaseKeepAlive handles one request at a time, in order: each `{ID}` is answered with `{header, ID,
 *   TTL}`, the header taken before the renew; an unknown (or meanwhile revoked) lease gets TTL 0 rather
 *   than an error, and clients treat TTL 0 as "lease not found". Any other error ends the stream. When
 *   the client half-closes, the stream ends OK once the requests already received are answered.
 * - LeaseTimeToLive for an unknown lease is not an error either: `{header, ID, TTL: -1}`.
 *
 * The service only decodes, calls a {@linkcode LeaseBackend} and encodes; the backend (the server)
 * proposes grants and revokes through Raft and serves renewals and TTLs from the leader's lessor.
 *
 * @module
 */
import type { GrpcRouter } from "../transport/grpc.ts";
import { GrpcError, Status, toGrpcError } from "../transport/status.ts";
import { decodeOrFail } from "./decode.ts";
import type { RequestAuth } from "./auth_checks.ts";
import { Errors } from "../errors.ts";
import type { LeaseTimeToLive } from "../lease/lessor.ts";
import { ProtobufDecodeError } from "../pb/wire.ts";
import {
  decodeLeaseGrantRequest,
  decodeLeaseKeepAliveRequest,
  decodeLeaseLeasesRequest,
  decodeLeaseRevokeRequest,
  decodeLeaseTimeToLiveRequest,
  encodeLeaseGrantResponse,
  encodeLeaseKeepAliveResponse,
  encodeLeaseLeasesResponse,
  encodeLeaseRevokeResponse,
  encodeLeaseTimeToLiveResponse,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  type LeaseRevokeRequest,
  type LeaseRevokeResponse,
  type ResponseHeader,
} from "../pb/rpc.ts";

/** What the Lease service needs from the server. Errors are thrown as {@linkcode GrpcError}s. */
export interface LeaseBackend {
  /**
   * Grants a lease through Raft: picks an ID when the request has none, proposes, and resolves with the
   * applied result (full header at the revision of the apply).
   */
  leaseGrant(r: LeaseGrantRequest): Promise<LeaseGrantResponse>;
  /**
   * Revokes a lease through Raft; `raw` is the request as received (the proposal payload),
   * `authRevision` the auth revision its permission check passed at while auth is on.
   */
  leaseRevoke(r: LeaseRevokeRequest, raw: Uint8Array, authRevision?: number): Promise<LeaseRevokeResponse>;
  /**
   * Renews a lease on the leader and resolves with its TTL; throws "requested lease not found" for an
   * unknown or revoked lease. `signal` aborts when the keepalive stream goes away.
   */
  leaseRenew(id: bigint, signal: AbortSignal): Promise<number>;
  /** The leader's view of a lease; throws "requested lease not found" for an unknown lease. */
  leaseTimeToLive(id: bigint, keys: boolean, signal: AbortSignal): Promise<LeaseTimeToLive>;
  /** Every lease's ID, in the order to list them. */
  leaseLeases(): bigint[] | Promise<bigint[]>;
  /** A response header at the current revision (cluster, member, raft term, revision). */
  currentHeader(): ResponseHeader;
}

const LEASE_NOT_FOUND = Errors.leaseNotFound();

function isLeaseNotFound(err: unknown): boolean {
  return err instanceof GrpcError && err.status === LEASE_NOT_FOUND.status &&
    err.message === LEASE_NOT_FOUND.message;
}

/** Decodes a stream message; a malformed one fails the stream as grpc-go's receive does. */
function decodeStreamMessage<T>(decode: (b: Uint8Array) => T, raw: Uint8Array): T {
  try {
    return decode(raw);
  } catch (err) {
    if (err instanceof ProtobufDecodeError) {
      throw new GrpcError(Status.INTERNAL, `grpc: failed to unmarshal the received message ${err.message}`);
    }
    throw err;
  }
}

/** Registers the Lease methods; `auth` checks revocations and lookups while auth is on. */
export function registerLease(router: GrpcRouter, backend: LeaseBackend, auth?: RequestAuth): void {
  router
    .unary("/etcdserverpb.Lease/LeaseGrant", async (raw) => {
      const r = decodeOrFail(decodeLeaseGrantRequest, raw);
      return encodeLeaseGrantResponse(await backend.leaseGrant(r));
    })
    .unary("/etcdserverpb.Lease/LeaseRevoke", async (raw, ctx) => {
      const r = decodeOrFail(decodeLeaseRevokeRequest, raw);
      const checkedAt = auth?.enabled ? await auth.leaseRevoke(ctx, r.ID) : undefined;
      return encodeLeaseRevokeResponse(await backend.leaseRevoke(r, raw, checkedAt));
    })
    .unary("/etcdserverpb.Lease/LeaseTimeToLive", async (raw, ctx) => {
      const r = decodeOrFail(decodeLeaseTimeToLiveRequest, raw);
      if (auth?.enabled) await auth.leaseTimeToLive(ctx, r.ID);
      let found: LeaseTimeToLive;
      try {
        found = await backend.leaseTimeToLive(r.ID, r.keys, ctx.signal);
      } catch (err) {
        if (!isLeaseNotFound(err)) throw err;
        found = { TTL: -1, grantedTTL: 0, keys: [] };
      }
      return encodeLeaseTimeToLiveResponse({ header: backend.currentHeader(), ID: r.ID, ...found });
    })
    .unary("/etcdserverpb.Lease/LeaseLeases", async (raw) => {
      decodeOrFail(decodeLeaseLeasesRequest, raw);
      const ids = await backend.leaseLeases();
      return encodeLeaseLeasesResponse({
        header: backend.currentHeader(),
        leases: ids.map((ID) => ({ ID })),
      });
    })
    .stream("/etcdserverpb.Lease/LeaseKeepAlive", (stream, ctx) => {
      const pending: bigint[] = [];
      let busy = false;
      let halfClosed = false;

      const answer = async (id: bigint): Promise<boolean> => {
        const header = backend.currentHeader();
        let TTL: number;
        try {
          TTL = await backend.leaseRenew(id, ctx.signal);
        } catch (err) {
          if (!isLeaseNotFound(err)) {
            stream.end(toGrpcError(err));
            return false;
          }
          TTL = 0;
        }
        if (stream.closed) return false;
        if (!stream.send(encodeLeaseKeepAliveResponse({ header, ID: id, TTL }))) await stream.waitDrain();
        return !stream.closed;
      };

      const drain = async (): Promise<void> => {
        busy = true;
        while (pending.length > 0) {
          if (!await answer(pending.shift()!)) {
            pending.length = 0;
            return;
          }
        }
        busy = false;
        if (halfClosed) stream.end();
      };

      return {
        onMessage(message) {
          pending.push(decodeStreamMessage(decodeLeaseKeepAliveRequest, message).ID);
          if (!busy) void drain();
        },
        onHalfClose() {
          halfClosed = true;
          if (!busy) stream.end();
        },
        onCancel() {
          pending.length = 0;
        },
      };
    });
}
