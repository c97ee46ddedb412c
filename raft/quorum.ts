/**
 * Quorum arithmetic as pure functions: the commit index a (joint) majority has acknowledged, and the
 * outcome of an election.
 *
 * @module
 */
import type { NodeId } from "./types.ts";

/** Outcome of a vote count. */
export enum VoteResult {
  /** Neither won nor lost yet: more votes may decide it. */
  Pending = 1,
  Lost = 2,
  Won = 3,
}

/** The value an empty majority "commits": anything, so that it never limits a joint quorum. */
export const UNBOUNDED_INDEX = Number.MAX_SAFE_INTEGER;

/**
 * The largest index acknowledged by a majority of `voters`. `acked` returns a voter's acknowledged
 * index (undefined counts as 0). An empty voter set returns UNBOUNDED_INDEX.
 */
export function majorityCommittedIndex(
  voters: ReadonlySet<NodeId>,
  acked: (id: NodeId) => number | undefined,
): number {
  const n = voters.size;
  if (n === 0) return UNBOUNDED_INDEX;
  const idx: number[] = [];
  for (const id of voters) idx.push(acked(id) ?? 0);
  idx.sort((a, b) => a - b);
  // with the indexes sorted ascending, the one at position n - (n/2 + 1) is held by a majority
  return idx[n - (Math.floor(n / 2) + 1)];
}

/** The election outcome among `voters` given the votes cast so far (true = granted). */
export function majorityVoteResult(
  voters: ReadonlySet<NodeId>,
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  if (voters.size === 0) return VoteResult.Won; // an empty config wins everything, for joint quorums
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = Math.floor(voters.size / 2) + 1;
  if (granted >= q) return VoteResult.Won;
  if (granted + missing >= q) return VoteResult.Pending;
  return VoteResult.Lost;
}

/**
 * A joint configuration: `incoming` is the new (or only) voter set, `outgoing` the old one while a
 * joint change is in flight (empty otherwise). Decisions need a majority in both.
 */
export interface JointConfig {
  incoming: Set<NodeId>;
  outgoing: Set<NodeId>;
}

/** Commit index of a joint configuration: the smaller of the two majorities' indexes. */
export function jointCommittedIndex(c: JointConfig, acked: (id: NodeId) => number | undefined): number {
  const a = majorityCommittedIndex(c.incoming, acked);
  const b = majorityCommittedIndex(c.outgoing, acked);
  return Math.min(a, b);
}

/** Election outcome of a joint configuration. */
export function jointVoteResult(c: JointConfig, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const r1 = majorityVoteResult(c.incoming, votes);
  const r2 = majorityVoteResult(c.outgoing, votes);
  if (r1 === r2) return r1;
  if (r1 === VoteResult.Lost || r2 === VoteResult.Lost) return VoteResult.Lost;
  return VoteResult.Pending; // one won, the other is pending
}

/** All voter IDs of a joint configuration. */
export function jointIds(c: JointConfig): Set<NodeId> {
  const s = new Set(c.incoming);
  for (const id of c.outgoing) s.add(id);
  return s;
}
