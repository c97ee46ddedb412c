/**
 * The etcdserverpb.Cluster service (membership). Changes arrive with runtime reconfiguration.
 *
 * @module
 */
import type { GrpcRouter } from "../transport/grpc.ts";
import type { EtcdServer } from "../member/server.ts";
import { decodeMemberListRequest, encodeMemberListResponse } from "../pb/rpc.ts";
import { decodeOrFail } from "./decode.ts";

/** Registers the Cluster methods. */
export function registerCluster(router: GrpcRouter, server: EtcdServer): void {
  router.unary("/etcdserverpb.Cluster/MemberList", async (raw) => {
    const r = decodeOrFail(decodeMemberListRequest, raw);
    if (r.linearizable) await server.linearizableReadNotify();
    return encodeMemberListResponse({
      header: server.header(server.mvcc.currentRevision),
      members: server.memberList().map((m) => ({
        ID: m.id,
        name: m.name,
        peerURLs: m.peerUrls,
        clientURLs: m.clientUrls,
        isLearner: m.isLearner,
      })),
    });
  });
}
