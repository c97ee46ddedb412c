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

/** Registers the Maintenance methods. */
export function registerMaintenance(router: GrpcRouter, server: EtcdServer): void {
  router.unary("/etcdserverpb.Maintenance/Status", (raw) => {
    decodeOrFail(decodeStatusRequest, raw);
    return encodeStatusResponse(server.status());
  });
  router.unary("/etcdserverpb.Maintenance/MoveLeader", async (raw) => {
    const r = decodeOrFail(decodeMoveLeaderRequest, raw);
    return encodeMoveLeaderResponse({ header: await server.moveLeader(r.targetID) });
  });
  router.unary("/etcdserverpb.Maintenance/Alarm", async (raw) => {
    const r = decodeOrFail(decodeAlarmRequest, raw);
    return encodeAlarmResponse(await server.alarm(r, raw));
  });
  router.unary("/etcdserverpb.Maintenance/HashKV", (raw) => {
    const r = decodeOrFail(decodeHashKVRequest, raw);
    return encodeHashKVResponse(server.hashKV(r.revision));
  });
  router.unary("/etcdserverpb.Maintenance/Hash", (raw) => {
    decodeOrFail(decodeHashRequest, raw);
    return encodeHashResponse({ header: server.currentHeader(), hash: server.hash() });
  });
  router.unary("/etcdserverpb.Maintenance/Defragment", (raw) => {
    decodeOrFail(decodeDefragmentRequest, raw);
    return encodeDefragmentResponse({ header: server.defragment() });
  });
}
