/**
 * The etcdserverpb.Maintenance service: Status and MoveLeader for now; snapshot, defrag, alarms and hashes
 * follow.
 *
 * @module
 */
import type { GrpcRouter } from "../transport/grpc.ts";
import type { EtcdServer } from "../member/server.ts";
import {
  decodeMoveLeaderRequest,
  decodeStatusRequest,
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
}
