/**
 * Leadership transfer: on request (Maintenance.MoveLeader) and, as etcd does, before a leader stops
 * gracefully, so the cluster does not wait out an election timeout to replace it.
 *
 * @module
 */
import { NONE, StateType } from "../../raft/types.ts";
import type { Clock } from "../clock.ts";
import type { Logger } from "../logger.ts";
import { hexId } from "../logger.ts";
import type { RaftDriver } from "./raft_driver.ts";

/** What a transfer needs. */
export interface LeadershipDeps {
  memberId: bigint;
  driver: RaftDriver;
  clock: Clock;
  logger: Logger;
  /** How often to look whether the transferee has taken over. */
  pollMs: number;
  /** When the peer stream to `id` came up; undefined while it is down (the peer transport's). */
  activeSince(id: bigint): number | undefined;
}

/** Asks Raft to transfer leadership and waits (bounded) until `target` leads; true if it does. */
export async function transferLeadership(
  d: LeadershipDeps,
  target: bigint,
  timeoutMs: number,
): Promise<boolean> {
  d.driver.node.transferLeader(target);
  d.driver.kick();
  const deadline = d.clock.now() + timeoutMs;
  while (d.clock.now() < deadline) {
    if (d.driver.lead === target) return true;
    await new Promise<void>((resolve) => d.clock.setTimeout(resolve, d.pollMs));
  }
  return d.driver.lead === target;
}

/**
 * On a graceful stop, a leader hands over to its most up-to-date voter whose peer stream is up (as etcd
 * picks among connected voters), waiting at most `timeoutMs`; a member that does not lead, or reaches no
 * voter, does nothing. The stream, not Raft's `recentActive`, says who is reachable: Raft clears that
 * mark at every quorum check, so a stop just after one would find nobody.
 */
export async function handOverLeadership(d: LeadershipDeps, timeoutMs: number): Promise<void> {
  const driver = d.driver;
  if (driver.state !== StateType.Leader) return;
  const progress = driver.node.status().progress;
  if (!progress) return;
  let best: bigint | undefined;
  let bestMatch = -1;
  for (const [id, pr] of progress) {
    if (id === d.memberId || d.activeSince(id) === undefined || !driver.confState.voters.includes(id)) {
      continue;
    }
    if (pr.match > bestMatch) {
      best = id;
      bestMatch = pr.match;
    }
  }
  if (best === undefined) return;
  const ok = await transferLeadership(d, best, timeoutMs);
  d.logger.info(ok ? "leadership transferred before stopping" : "leadership transfer timed out", {
    "member-id": hexId(d.memberId),
    transferee: hexId(best),
  });
}

/** Logs a change of the leader this member follows, in etcd's words. */
export function logLeaderChange(
  logger: Logger,
  memberId: bigint,
  previous: bigint,
  lead: bigint,
  term: number,
): void {
  if (lead !== NONE) {
    logger.info("elected leader", { "member-id": hexId(memberId), leader: hexId(lead), term });
  } else if (previous !== NONE) {
    logger.info("lost leader", { "member-id": hexId(memberId), "previous-leader": hexId(previous), term });
  }
}
