/**
 * The cluster version: the lowest server version among the members, as etcd keeps it. The leader asks
 * every member for its version (`GET /version` on the peer port) and, once all have answered, proposes
 * the cluster version through Raft; every member records it when the entry is applied. Until then the
 * cluster version is undecided: `/version` says `not_decided`, as etcd's does.
 *
 * Only major.minor counts ("3.5.0" for any 3.5.x), and the version only rises: a member with an older
 * release that joins later does not lower it (etcd refuses such a member at join time instead).
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { Logger } from "../logger.ts";
import { hexId } from "../logger.ts";
import type { Membership } from "./membership.ts";
import { ProposalKind } from "./proposal.ts";

/** What `/version` reports while the leader has not decided the cluster version yet. */
export const VERSION_NOT_DECIDED = "not_decided";

/** The version etcd sets when the members' versions cannot all be learnt (3.0, the oldest v3 cluster). */
export const MIN_CLUSTER_VERSION = "3.0.0";

/** How often the leader looks at the members' versions (etcd: every 4 s; sooner while undecided). */
export const MONITOR_INTERVAL_MS = 4000;
const UNDECIDED_INTERVAL_MS = 500;

/** major.minor of a version string ("3.5.2" -> [3, 5]); undefined if it is not one. */
export function majorMinor(version: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$/.exec(version.trim());
  return m === null ? undefined : [Number(m[1]), Number(m[2])];
}

/** The cluster version for a server version: "3.5.2" -> "3.5.0". */
export function clusterVersionOf(version: string): string | undefined {
  const mm = majorMinor(version);
  return mm === undefined ? undefined : `${mm[0]}.${mm[1]}.0`;
}

/** Whether version `a` is lower than `b` by major.minor. */
export function lowerVersion(a: string, b: string): boolean {
  const x = majorMinor(a), y = majorMinor(b);
  if (x === undefined || y === undefined) return false;
  return x[0] < y[0] || (x[0] === y[0] && x[1] < y[1]);
}

/** major.minor as etcd prints it in its log lines ("3.5"). */
function short(version: string): string {
  const mm = majorMinor(version);
  return mm === undefined ? version : `${mm[0]}.${mm[1]}`;
}

/**
 * The cluster version the members' server versions call for: the lowest, as major.minor.0; undefined
 * when a member's version is unknown (not reachable, or not answering in time).
 */
export function decideClusterVersion(versions: (string | undefined)[]): string | undefined {
  let lowest: string | undefined;
  for (const v of versions) {
    if (v === undefined || majorMinor(v) === undefined) return undefined;
    if (lowest === undefined || lowerVersion(v, lowest)) lowest = v;
  }
  return lowest === undefined ? undefined : clusterVersionOf(lowest);
}

/**
 * Records an applied cluster version in the membership, logging as etcd does; a version that is not
 * higher than the current one changes nothing.
 */
export function applyClusterVersion(
  membership: Membership,
  version: string,
  logger: Logger,
  memberId: bigint,
): void {
  const next = clusterVersionOf(version);
  if (next === undefined) return;
  const current = membership.clusterVersion;
  if (current !== undefined && !lowerVersion(current, next)) return;
  membership.clusterVersion = next;
  if (current === undefined) {
    logger.info("set initial cluster version", {
      "cluster-id": hexId(membership.clusterId),
      "local-member-id": hexId(memberId),
      "cluster-version": short(next),
    });
  } else {
    logger.info("updated cluster version", {
      "cluster-id": hexId(membership.clusterId),
      "local-member-id": hexId(memberId),
      from: short(current),
      to: short(next),
    });
  }
  logger.info("enabled capabilities for version", { "cluster-version": short(next) });
}

/** What the monitor needs of the member. */
export interface ClusterVersionDeps {
  memberId: bigint;
  /** This member's own server version. */
  serverVersion: string;
  membership: Membership;
  isLeader(): boolean;
  /** A member's server version from its peer port, or undefined if it does not answer in time. */
  fetchVersion(peerUrls: string[]): Promise<string | undefined>;
  propose(kind: ProposalKind, payload: Uint8Array, decoded: unknown): Promise<unknown>;
  clock: Clock;
  logger: Logger;
}

/** The leader's watch over the members' versions. */
export class ClusterVersionMonitor {
  private timer: number | undefined;
  private running = false;
  private stopped = false;

  constructor(private readonly d: ClusterVersionDeps) {}

  /** Starts looking, first soon, then every {@link MONITOR_INTERVAL_MS}. */
  start(): void {
    this.schedule(UNDECIDED_INTERVAL_MS);
  }

  /** Stops looking; a check under way ends without proposing. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.d.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = this.d.clock.setTimeout(() => {
      this.timer = undefined;
      this.check().finally(() => {
        const decided = this.d.membership.clusterVersion !== undefined;
        this.schedule(decided ? MONITOR_INTERVAL_MS : UNDECIDED_INTERVAL_MS);
      });
    }, ms);
  }

  /** One look: on the leader, proposes the cluster version when it is unset or lower than the members'. */
  async check(): Promise<void> {
    const d = this.d;
    if (this.running || this.stopped || !d.isLeader()) return;
    this.running = true;
    try {
      const members = d.membership.list();
      const versions = await Promise.all(
        members.map((m) =>
          m.id === d.memberId ? Promise.resolve(d.serverVersion) : d.fetchVersion(m.peerUrls)
        ),
      );
      if (this.stopped || !d.isLeader()) return;
      const decided = decideClusterVersion(versions);
      const current = d.membership.clusterVersion;
      let target: string | undefined;
      if (current === undefined) {
        target = decided ?? MIN_CLUSTER_VERSION;
        d.logger.info("setting up initial cluster version", { "cluster-version": short(target) });
      } else if (decided !== undefined && lowerVersion(current, decided)) {
        target = decided;
        d.logger.info("updating cluster version", { from: short(current), to: short(target) });
      }
      if (target === undefined) return;
      await d.propose(ProposalKind.ClusterVersion, new TextEncoder().encode(target), target);
      d.logger.info("cluster version is updated", { "cluster-version": short(target) });
    } catch (err) {
      if (!this.stopped) {
        d.logger.warn("failed to update cluster version", {
          error: err instanceof Error ? err.message : String(err),
        });
      }
    } finally {
      this.running = false;
    }
  }
}
