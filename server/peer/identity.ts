/**
 * Who is talking: the identity headers every stream and snapshot request carries, their checks on the
 * receiving side, and how a refusal reads on the sending side.
 *
 * Each request names the cluster (`X-Etcd-Cluster-ID`), its sender (`X-Server-From`), its recipient
 * (`X-Raft-To`) and the sender's version (`X-Server-Version`), all IDs in etcd's hex form. The receiver
 * checks them in etcd's order before it reads anything of the body: another cluster is answered 412
 * (`cluster ID mismatch`), another recipient 412 (`to field mismatch`), a sender it does not know 404
 * (`error sender not found`). A sender seeing 412 with `cluster ID mismatch` reports a
 * {@linkcode ClusterIdMismatchError}, any other refusal a {@linkcode PeerRefusedError}.
 *
 * @module
 */
import type { PeerContext } from "./context.ts";
import { ClusterIdMismatchError, PeerRefusedError } from "./errors.ts";
import { type ConnReader, type HttpHead, MAX_ERROR_BODY_BYTES } from "./http.ts";
import type { PeerConn } from "./net.ts";

/** What a removed member is told by its former peers (HTTP 410), in etcd's words. */
export const MEMBER_REMOVED = "the member has been permanently removed from the cluster";

/** Parses etcd's hex ID form (1-16 hex digits); undefined when malformed. */
export function parseHexId(s: string | undefined): bigint | undefined {
  if (s === undefined || !/^[0-9a-fA-F]{1,16}$/.test(s)) return undefined;
  return BigInt("0x" + s);
}

/** The identity headers of a request from this member to the member `toHex`. */
export function identityHeaders(ctx: PeerContext, toHex: string): Record<string, string> {
  return {
    "X-Server-From": ctx.idHex,
    "X-Raft-To": toHex,
    "X-Etcd-Cluster-ID": ctx.cidHex,
    "X-Server-Version": ctx.serverVersion,
  };
}

/**
 * Checks the identity headers of a stream or snapshot request. When the request is refused it answers,
 * logs in etcd's words and resolves to undefined; otherwise it resolves to the sender's ID.
 *
 * @param isPeer whether a member ID is a peer this transport knows.
 */
export async function checkIdentity(
  ctx: PeerContext,
  conn: PeerConn,
  head: HttpHead,
  isPeer: (id: bigint) => boolean,
): Promise<bigint | undefined> {
  const h = head.headers;
  const remoteCid = h.get("x-etcd-cluster-id") ?? "";
  const fromHex = h.get("x-server-from") ?? "";
  if (parseHexId(remoteCid) !== ctx.clusterId) {
    ctx.stats.refused++;
    ctx.logger.warn("request cluster ID mismatch", {
      "local-member-id": ctx.idHex,
      "local-member-cluster-id": ctx.cidHex,
      "remote-peer-server-name": fromHex,
      "remote-peer-cluster-id": remoteCid,
    });
    await ctx.respond(conn, 412, "Precondition Failed", "cluster ID mismatch\n");
    return undefined;
  }
  const to = h.get("x-raft-to");
  if (parseHexId(to) !== ctx.memberId) {
    ctx.stats.refused++;
    ctx.logger.warn("ignored request; ID mismatch", {
      "local-member-id": ctx.idHex,
      "remote-peer-server-name": fromHex,
      "remote-peer-id-header": to ?? "",
    });
    await ctx.respond(conn, 412, "Precondition Failed", "to field mismatch\n");
    return undefined;
  }
  const from = parseHexId(fromHex);
  if (from !== undefined && ctx.o.isRemoved?.(from)) {
    ctx.stats.refused++;
    ctx.logger.warn("rejected stream from remote peer because it was removed", {
      "local-member-id": ctx.idHex,
      "remote-peer-id-stream-handler": fromHex,
    });
    await ctx.respond(conn, 410, "Gone", `${MEMBER_REMOVED}\n`);
    return undefined;
  }
  if (from === undefined || !isPeer(from)) {
    ctx.stats.refused++;
    ctx.logger.warn("failed to find remote peer in cluster", {
      "local-member-id": ctx.idHex,
      "remote-peer-id": fromHex,
    });
    await ctx.respond(conn, 404, "Not Found", "error sender not found\n");
    return undefined;
  }
  return from;
}

/** The error for a peer's non-success answer `head`, reading its (small) body from `reader`. */
export async function refusal(ctx: PeerContext, head: HttpHead, reader: ConnReader): Promise<Error> {
  const status = Number(head.b);
  let reason = head.c;
  const len = Number(head.headers.get("content-length") ?? "0");
  if (Number.isSafeInteger(len) && len > 0 && len <= MAX_ERROR_BODY_BYTES) {
    try {
      reason = new TextDecoder().decode(await reader.readBody(len)).trim();
    } catch {
      // keep the reason phrase
    }
  }
  if (status === 412 && reason.includes("cluster ID mismatch")) {
    return new ClusterIdMismatchError(ctx.cidHex, head.headers.get("x-etcd-cluster-id") ?? "");
  }
  return new PeerRefusedError(status, reason);
}
