/**
 * The etcdserverpb.Cluster service: the member list, and runtime reconfiguration (add, remove, update,
 * promote), each change one Raft configuration entry.
 *
 * @module
 */
import type { GrpcRouter } from "../transport/grpc.ts";
import type { EtcdServer } from "../member/server.ts";
import type { Member } from "../member/membership.ts";
import {
  decodeMemberAddRequest,
  decodeMemberListRequest,
  decodeMemberPromoteRequest,
  decodeMemberRemoveRequest,
  decodeMemberUpdateRequest,
  encodeMemberAddResponse,
  encodeMemberListResponse,
  encodeMemberPromoteResponse,
  encodeMemberRemoveResponse,
  encodeMemberUpdateResponse,
  type Member as PbMember,
} from "../pb/rpc.ts";
import { decodeOrFail } from "./decode.ts";
import { GrpcError } from "../transport/status.ts";
import type { RequestAuth } from "./auth_checks.ts";

function toPb(m: Member): PbMember {
  return { ID: m.id, name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls, isLearner: m.isLearner };
}

/** Registers the Cluster methods; while auth is on, changes need the root role (listing does not). */
export function registerCluster(router: GrpcRouter, server: EtcdServer, auth: RequestAuth): void {
  const members = () => server.memberList().map(toPb);
  const header = () => server.header(server.mvcc.currentRevision);

  router.unary("/etcdserverpb.Cluster/MemberList", async (raw) => {
    const r = decodeOrFail(decodeMemberListRequest, raw);
    if (r.linearizable) await server.linearizableReadNotify();
    return encodeMemberListResponse({ header: header(), members: members() });
  });

  router.unary("/etcdserverpb.Cluster/MemberAdd", async (raw, ctx) => {
    const r = decodeOrFail(decodeMemberAddRequest, raw);
    if (auth.enabled) await auth.admin(ctx);
    const added = await server.reconfig.add(r.peerURLs, r.isLearner);
    return encodeMemberAddResponse({ header: header(), member: toPb(added), members: members() });
  });

  router.unary("/etcdserverpb.Cluster/MemberRemove", async (raw, ctx) => {
    const r = decodeOrFail(decodeMemberRemoveRequest, raw);
    if (auth.enabled) await auth.admin(ctx);
    await server.reconfig.remove(r.ID);
    return encodeMemberRemoveResponse({ header: header(), members: members() });
  });

  router.unary("/etcdserverpb.Cluster/MemberUpdate", async (raw, ctx) => {
    const r = decodeOrFail(decodeMemberUpdateRequest, raw);
    if (auth.enabled) await auth.admin(ctx);
    await server.reconfig.update(r.ID, r.peerURLs);
    return encodeMemberUpdateResponse({ header: header(), members: members() });
  });

  router.unary("/etcdserverpb.Cluster/MemberPromote", async (raw, ctx) => {
    const r = decodeOrFail(decodeMemberPromoteRequest, raw);
    if (auth.enabled) await auth.admin(ctx);
    try {
      await server.reconfig.promote(r.ID);
    } catch (err) {
      // only the leader knows how far a learner is: a follower asks it, as etcd does
      if (err instanceof GrpcError && err.message === "etcdserver: not leader") {
        return await server.forwardToLeader("/etcdserverpb.Cluster/MemberPromote", raw, ctx);
      }
      throw err;
    }
    return encodeMemberPromoteResponse({ header: header(), members: members() });
  });
}
