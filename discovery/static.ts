/**
 * Static bootstrap from `--initial-cluster`: every member of a new cluster derives the same member IDs
 * and cluster ID from the same flags (`--initial-cluster`, `--initial-cluster-token`), without talking
 * to the others. Discovery by an etcd discovery URL or DNS SRV records ends in the same shape.
 *
 * @module
 */
import { clusterId as computeClusterId, memberId as computeMemberId } from "./ids.ts";

/** One member of the initial cluster. */
export interface InitialMember {
  id: bigint;
  name: string;
  /** Peer URLs as etcd writes them (no trailing slash). */
  peerUrls: string[];
}

/** What a new member starts from. */
export interface Bootstrap {
  members: InitialMember[];
  /** This member's ID. */
  memberId: bigint;
  clusterId: bigint;
}

/** Thrown when the flags cannot describe a cluster this member belongs to; the message is etcd's. */
export class BootstrapError extends Error {
  readonly code = "BOOTSTRAP";
  constructor(message: string) {
    super(message);
    this.name = "BootstrapError";
  }
}

/**
 * The initial members, this member's ID and the cluster ID for `name` in `initialCluster`
 * (name -> peer URLs as etcd writes them, e.g. `http://10.0.0.1:2380`, from `--initial-cluster`).
 */
export function staticBootstrap(
  name: string,
  initialCluster: Map<string, string[]>,
  token: string,
): Bootstrap {
  const members: InitialMember[] = [];
  for (const [n, peerUrls] of initialCluster) {
    members.push({ id: computeMemberId(peerUrls, token), name: n, peerUrls: [...peerUrls] });
  }
  const self = initialCluster.get(name);
  if (!self) {
    throw new BootstrapError(`couldn't find local name "${name}" in the initial cluster configuration`);
  }
  const ids = new Set<bigint>();
  for (const m of members) {
    if (ids.has(m.id)) throw new BootstrapError(`member count is unequal`);
    ids.add(m.id);
  }
  return {
    members,
    memberId: computeMemberId(self, token),
    clusterId: computeClusterId(members.map((m) => m.id)),
  };
}
