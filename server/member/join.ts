/**
 * Joining a running cluster (`--initial-cluster-state existing`), as etcd does: the new member asks the
 * other members' peer ports for the cluster's member list (`GET /members`), checks that its
 * `--initial-cluster` lists the same members (what `etcdctl member add` printed), and takes the IDs the
 * cluster assigned, its own included. Its log then comes from the leader, from the first entry or as a
 * snapshot.
 *
 * @module
 */
import { dialPeer, type PeerTls } from "../peer/net.ts";
import { ConnReader, formatHead } from "../peer/http.ts";
import { writeAll } from "../../storage/fs_util.ts";
import { type Member, memberFromJson, type MemberJson } from "./membership.ts";

/** The path and JSON body of a peer port's member list. */
export const MEMBERS_PATH = "/members";

/** What `GET /members` answers. */
export interface MembersJson {
  clusterId: string;
  members: MemberJson[];
}

/** A running cluster as one of its members describes it. */
export interface RemoteCluster {
  clusterId: bigint;
  members: Member[];
}

/** The join failed; the message is etcd's where etcd has one. */
export class JoinError extends Error {
  readonly code = "JOIN";
  constructor(message: string) {
    super(message);
    this.name = "JoinError";
  }
}

/** Asks each peer URL in turn for the member list; the first answer wins. */
export async function fetchRemoteCluster(
  urls: string[],
  tls: PeerTls | undefined,
  timeoutMs = 10_000,
): Promise<
  RemoteCluster
> {
  const errors: string[] = [];
  for (const u of urls) {
    try {
      const j = await getMembers(new URL(u), tls, timeoutMs);
      return { clusterId: BigInt("0x" + j.clusterId), members: j.members.map(memberFromJson) };
    } catch (err) {
      errors.push(`${u}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new JoinError(
    `cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs` +
      (errors.length > 0 ? ` (${errors.join("; ")})` : ""),
  );
}

async function getMembers(url: URL, tls: PeerTls | undefined, timeoutMs: number): Promise<MembersJson> {
  const signal = AbortSignal.timeout(timeoutMs);
  const conn = await dialPeer(url, signal, tls);
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const host = url.host;
    const req = formatHead(`GET ${MEMBERS_PATH} HTTP/1.1`, { Host: host, Connection: "close" });
    await writeAll(conn, req);
    const reader = new ConnReader(conn);
    const head = await reader.readHead(16 * 1024);
    if (head === null) throw new Error("connection closed before an answer");
    const len = Number(head.headers.get("content-length") ?? "-1");
    if (head.b !== "200" || !Number.isSafeInteger(len) || len < 0 || len > 16 * 1024 * 1024) {
      throw new Error(`unexpected answer ${head.b} ${head.c}`);
    }
    const body = new TextDecoder().decode(await reader.readBody(len));
    return JSON.parse(body) as MembersJson;
  } finally {
    clearTimeout(timer);
    conn.close();
  }
}

/**
 * etcd's ValidateClusterAndAssignIDs: every member of the running cluster must appear in `local` (the
 * `--initial-cluster` of the joining member) with the same peer URLs, and the counts must agree. Returns
 * each local name's ID as the cluster assigned it.
 */
export function assignIds(local: Map<string, string[]>, remote: RemoteCluster): Map<string, bigint> {
  if (local.size !== remote.members.length) throw new JoinError("member count is unequal");
  const ids = new Map<string, bigint>();
  for (const m of remote.members) {
    const want = [...m.peerUrls].sort().join(",");
    const match = [...local].find(([, urls]) => [...urls].sort().join(",") === want);
    if (match === undefined) {
      throw new JoinError(
        `error validating peerURLs ${
          remote.members.map((x) => `${x.id.toString(16)}=${x.peerUrls.join(",")}`).join(",")
        }: PeerURLs: no match found for existing member (${m.id.toString(16)}, [${m.peerUrls.join(" ")}])`,
      );
    }
    ids.set(match[0], m.id);
  }
  return ids;
}
