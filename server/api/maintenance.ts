/**
 * The etcdserverpb.Maintenance service: Status, MoveLeader, Alarm, Hash, HashKV and Defragment (Snapshot
 * is streamed elsewhere).
 *
 * - Alarm goes through Raft for every action, GET included, so the answer is the replicated set (see
 *   `member/alarms.ts` for what the alarms refuse).
 * - HashKV reads this member's applied state and computes etcd 3.4's own value: CRC-32C over the
 *   revisions in etcd's backend encoding (`MvccStore.hashKV`), so members with the same history agree
 *   with each other and with a real etcd (checked end to end), and the value is stable across restarts.
 * - Hash: etcd hashes its whole bbolt file, which etcd-ts does not have; etcd-ts hashes its replicated
 *   state instead (see `EtcdServer.hash`). Equal on members at the same revision, never equal to etcd's.
 * - Defragment acts on this member only, as in etcd.
 *
 * Database size and defragmentation are described in the README ("Maintenance").
 *
 * @module
 */
import type { GrpcRouter } from "../transport/grpc.ts";
import type { EtcdServer } from "../member/server.ts";
import {
  AlarmAction,
  decodeAlarmRequest,
  decodeDefragmentRequest,
  decodeHashKVRequest,
  decodeHashRequest,
  decodeMoveLeaderRequest,
  decodeStatusRequest,
  encodeAlarmResponse,
  encodeDefragmentResponse,
  encodeHashKVResponse,
  encodeHashResponse,
  encodeMoveLeaderResponse,
  encodeStatusResponse,
} from "../pb/rpc.ts";
import { decodeOrFail } from "./decode.ts";
import type { RequestAuth } from "./auth_checks.ts";

/**
 * Registers the Maintenance methods. While auth is on, as in etcd: Status and listing alarms need an
 * authenticated user, everything else the root role.
 */
export function registerMaintenance(router: GrpcRouter, server: EtcdServer, auth: RequestAuth): void {
  router.unary("/etcdserverpb.Maintenance/Status", async (raw, ctx) => {
    decodeOrFail(decodeStatusRequest, raw);
    if (auth.enabled) await auth.user(ctx);
    return encodeStatusResponse(server.status());
  });
  router.unary("/etcdserverpb.Maintenance/MoveLeader", async (raw, ctx) => {
    const r = decodeOrFail(decodeMoveLeaderRequest, raw);
    if (auth.enabled) await auth.admin(ctx);
    return encodeMoveLeaderResponse({ header: await server.moveLeader(r.targetID) });
  });
  router.unary("/etcdserverpb.Maintenance/Alarm", async (raw, ctx) => {
    const r = decodeOrFail(decodeAlarmRequest, raw);
    if (auth.enabled) await (r.action === AlarmAction.GET ? auth.user(ctx) : auth.admin(ctx));
    return encodeAlarmResponse(await server.alarm(r, raw));
  });
  router.unary("/etcdserverpb.Maintenance/HashKV", async (raw, ctx) => {
    const r = decodeOrFail(decodeHashKVRequest, raw);
    if (auth.enabled) await auth.admin(ctx);
    return encodeHashKVResponse(server.hashKV(r.revision));
  });
  router.unary("/etcdserverpb.Maintenance/Hash", async (raw, ctx) => {
    decodeOrFail(decodeHashRequest, raw);
    if (auth.enabled) await auth.admin(ctx);
    return encodeHashResponse({ header: server.currentHeader(), hash: server.hash() });
  });
  router.unary("/etcdserverpb.Maintenance/Defragment", async (raw, ctx) => {
    decodeOrFail(decodeDefragmentRequest, raw);
    if (auth.enabled) await auth.admin(ctx);
    return encodeDefragmentResponse({ header: server.defragment() });
  });
}
