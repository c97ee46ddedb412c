/**
 * Cluster membership as replicated state: changed only by applied conf-change and attribute entries.
 *
 * @module
 */

/** A member as the Cluster API shows it. */
export interface Member {
  id: bigint;
  /** Empty until the member has published its attributes (it has not started yet). */
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

/** The JSON carried in a conf change's context and kept in snapshots. */
export interface MemberJson {
  id: string;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

export function memberToJson(m: Member): MemberJson {
  return {
    id: m.id.toString(16),
    name: m.name,
    peerUrls: m.peerUrls,
    clientUrls: m.clientUrls,
    isLearner: m.isLearner,
  };
}

export function memberFromJson(j: MemberJson): Member {
  return {
    id: BigInt("0x" + j.id),
    name: j.name,
    peerUrls: [...j.peerUrls],
    clientUrls: [...j.clientUrls],
    isLearner: j.isLearner,
  };
}

/** Membership as snapshots keep it (snapshots written before the cluster version have none). */
export interface MembershipJson {
  clusterId: string;
  members: MemberJson[];
  removed: string[];
  clusterVersion?: string;
}

/** Members by ID plus the IDs removed from the cluster (a removed ID may never come back). */
export class Membership {
  readonly members: Map<bigint, Member> = new Map();
  readonly removed: Set<bigint> = new Set();
  /** The cluster version the leader decided ("3.5.0"); undefined until then (cluster_version.ts). */
  clusterVersion: string | undefined;

  constructor(public clusterId: bigint) {}

  add(m: Member): void {
    this.members.set(m.id, m);
  }

  remove(id: bigint): void {
    this.members.delete(id);
    this.removed.add(id);
  }

  get(id: bigint): Member | undefined {
    return this.members.get(id);
  }

  /** Members sorted by ID, as etcd lists them. */
  list(): Member[] {
    return [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  toJSON(): MembershipJson {
    return {
      clusterId: this.clusterId.toString(16),
      members: this.list().map(memberToJson),
      removed: [...this.removed].map((id) => id.toString(16)),
      ...(this.clusterVersion === undefined ? {} : { clusterVersion: this.clusterVersion }),
    };
  }

  static fromJSON(j: MembershipJson): Membership {
    const m = new Membership(BigInt("0x" + j.clusterId));
    for (const mj of j.members) m.add(memberFromJson(mj));
    for (const r of j.removed) m.removed.add(BigInt("0x" + r));
    m.clusterVersion = j.clusterVersion;
    return m;
  }
}
