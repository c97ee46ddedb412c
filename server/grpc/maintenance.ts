/**
 * The etcdserverpb.Maintenance service: status for now; snapshot, defrag, alarms and hashes follow.
 *
 * @module
 */
import type { GrpcRouter } from "./server.ts";
import type { EtcdServer } from "../etcd.ts";
import { decodeStatusRequest, encodeStatusResponse } from "../pb/rpc.ts";
import { decodeOrFail } from "./decode.ts";

/** Registers the Maintenance methods. */
export function registerMaintenance(router: GrpcRouter, server: EtcdServer): void {
  router.unary("/etcdserverpb.Maintenance/Status", (raw) => {
    decodeOrFail(decodeStatusRequest, raw);
    return encodeStatusResponse(server.status());
  });
}
