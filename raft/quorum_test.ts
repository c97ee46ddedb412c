/**
 * Quorum arithmetic: the commit index of a majority and of a joint majority, and election outcomes,
 * as tables plus a comparison with a brute-force definition over random configurations.
 */
import { assertEquals } from "../tests/assert.ts";
import { Prng } from "../tests/sim/prng.ts";
import {
  jointCommittedIndex,
  jointIds,
  jointVoteResult,
  majorityCommittedIndex,
  majorityVoteResult,
  UNBOUNDED_INDEX,
  VoteResult,
} from "./quorum.ts";
import type { NodeId } from "./types.ts";

const ids = (...xs: number[]): Set<NodeId> => new Set(xs.map(BigInt));

/** Acknowledged indexes by node, written as `{1: 5, 2: 3}`. */
function acks(m: Record<number, number>): (id: NodeId) => number | undefined {
  return (id) => m[Number(id)];
}

/** Votes by node, written as `{1: true, 2: false}`. */
function votes(m: Record<number, boolean>): Map<NodeId, boolean> {
  return new Map(Object.entries(m).map(([k, v]) => [BigInt(k), v]));
}

Deno.test("quorum: majority commit index", () => {
  // [voters, acknowledged indexes, expected commit index]
  const table: [number[], Record<number, number>, number][] = [
    [[], {}, UNBOUNDED_INDEX], // an empty config never limits (it is the other half of a joint config)
    [[1], {}, 0],
    [[1], { 1: 12 }, 12],
    [[1, 2], { 1: 12 }, 0], // two voters need both
    [[1, 2], { 1: 12, 2: 5 }, 5],
    [[1, 2, 3], { 1: 12, 2: 5 }, 5],
    [[1, 2, 3], { 1: 12 }, 0], // a missing acknowledgement counts as 0
    [[1, 2, 3], { 1: 12, 2: 12, 3: 12 }, 12],
    [[1, 2, 3], { 1: 3, 2: 9, 3: 7 }, 7],
    [[1, 2, 3, 4], { 1: 10, 2: 9, 3: 8, 4: 7 }, 8], // four voters need three
    [[1, 2, 3, 4, 5], { 1: 5, 2: 4, 3: 3 }, 3],
    [[1, 2, 3, 4, 5], { 1: 5, 2: 4 }, 0],
    [[1, 2, 3], { 1: 1, 4: 100, 5: 100 }, 0], // non-voters (learners) do not count
  ];
  for (const [voters, acked, want] of table) {
    assertEquals(
      majorityCommittedIndex(ids(...voters), acks(acked)),
      want,
      `${voters} ${JSON.stringify(acked)}`,
    );
  }
});

Deno.test("quorum: joint commit index is the smaller of both majorities", () => {
  // [incoming, outgoing, acknowledged, expected]
  const table: [number[], number[], Record<number, number>, number][] = [
    [[1, 2, 3], [], { 1: 5, 2: 5 }, 5], // not joint: the incoming majority alone
    [[], [], {}, UNBOUNDED_INDEX],
    [[1, 2, 3], [1, 2, 3], { 1: 5, 2: 7, 3: 6 }, 6], // the same set twice
    [[1, 2, 3], [4, 5, 6], { 1: 9, 2: 9, 4: 3, 5: 2 }, 2], // the old config lags
    [[1, 2, 3], [4, 5, 6], { 1: 1, 4: 9, 5: 9, 6: 9 }, 0], // the new config lags
    [[1, 2, 3], [2, 3, 4], { 2: 7, 3: 7 }, 7], // the shared voters form a majority in both
    [[1, 2], [3], { 1: 4, 2: 6, 3: 8 }, 4],
  ];
  for (const [inc, out, acked, want] of table) {
    const c = { incoming: ids(...inc), outgoing: ids(...out) };
    assertEquals(jointCommittedIndex(c, acks(acked)), want, `${inc} && ${out} ${JSON.stringify(acked)}`);
  }
  assertEquals(jointIds({ incoming: ids(1, 2), outgoing: ids(2, 3) }), ids(1, 2, 3));
});

Deno.test("quorum: majority vote results", () => {
  const { Won, Lost, Pending } = VoteResult;
  const table: [number[], Record<number, boolean>, VoteResult][] = [
    [[], {}, Won], // an empty config agrees to anything
    [[1], {}, Pending],
    [[1], { 1: true }, Won],
    [[1], { 1: false }, Lost],
    [[1, 2], { 1: true }, Pending],
    [[1, 2], { 1: true, 2: false }, Lost],
    [[1, 2, 3], { 1: true }, Pending],
    [[1, 2, 3], { 1: true, 2: false }, Pending], // 3 may still decide
    [[1, 2, 3], { 1: true, 2: true }, Won],
    [[1, 2, 3], { 1: false, 2: false }, Lost],
    [[1, 2, 3, 4], { 1: true, 2: true }, Pending], // four voters need three
    [[1, 2, 3, 4], { 1: true, 2: true, 3: false, 4: false }, Lost],
    [[1, 2, 3, 4, 5], { 1: true, 2: true, 3: true }, Won],
    [[1, 2, 3], { 1: true, 4: true, 5: true }, Pending], // votes of non-voters do not count
  ];
  for (const [voters, v, want] of table) {
    assertEquals(majorityVoteResult(ids(...voters), votes(v)), want, `${voters} ${JSON.stringify(v)}`);
  }
});

Deno.test("quorum: joint vote results need both halves", () => {
  const { Won, Lost, Pending } = VoteResult;
  const table: [number[], number[], Record<number, boolean>, VoteResult][] = [
    [[1, 2, 3], [], { 1: true, 2: true }, Won],
    [[1, 2, 3], [4, 5, 6], { 1: true, 2: true }, Pending], // won the new, pending in the old
    [[1, 2, 3], [4, 5, 6], { 1: true, 2: true, 4: true, 5: true }, Won],
    [[1, 2, 3], [4, 5, 6], { 1: true, 2: true, 4: false, 5: false }, Lost], // won and lost: lost
    [[1, 2, 3], [4, 5, 6], { 1: false, 2: false }, Lost], // lost and pending: lost
    [[1, 2, 3], [4, 5, 6], { 1: true }, Pending],
    [[1, 2, 3], [2, 3, 4], { 2: true, 3: true }, Won],
    [[1, 2, 3], [2, 3, 4], { 1: true, 2: true, 3: false, 4: false }, Lost],
  ];
  for (const [inc, out, v, want] of table) {
    const c = { incoming: ids(...inc), outgoing: ids(...out) };
    assertEquals(jointVoteResult(c, votes(v)), want, `${inc} && ${out} ${JSON.stringify(v)}`);
  }
});

/** Floats in [0, 1) from the project's seeded generator, so a failing case replays. */
function prng(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.float();
}

Deno.test("quorum: commit index and votes agree with their definitions on random configs", () => {
  const rand = prng(42);
  const randomSet = (): Set<NodeId> => {
    const s = new Set<NodeId>();
    for (let id = 1; id <= 7; id++) if (rand() < 0.5) s.add(BigInt(id));
    return s;
  };
  /** The largest index that more than half of `voters` acknowledged (by definition). */
  const naiveCommit = (voters: Set<NodeId>, acked: Map<NodeId, number>): number => {
    if (voters.size === 0) return UNBOUNDED_INDEX;
    let best = 0;
    for (let i = 1; i <= 10; i++) {
      let n = 0;
      for (const id of voters) if ((acked.get(id) ?? 0) >= i) n++;
      if (n > voters.size / 2) best = i;
    }
    return best;
  };
  const naiveVote = (voters: Set<NodeId>, v: Map<NodeId, boolean>): VoteResult => {
    if (voters.size === 0) return VoteResult.Won;
    let yes = 0;
    let no = 0;
    for (const id of voters) {
      if (v.get(id) === true) yes++;
      if (v.get(id) === false) no++;
    }
    if (yes > voters.size / 2) return VoteResult.Won;
    if (no >= voters.size / 2) return VoteResult.Lost; // a majority of yes is out of reach
    return VoteResult.Pending;
  };
  for (let i = 0; i < 500; i++) {
    const c = { incoming: randomSet(), outgoing: randomSet() };
    const acked = new Map<NodeId, number>();
    const v = new Map<NodeId, boolean>();
    for (let id = 1n; id <= 7n; id++) {
      if (rand() < 0.8) acked.set(id, Math.floor(rand() * 11));
      if (rand() < 0.7) v.set(id, rand() < 0.5);
    }
    const commit = jointCommittedIndex(c, (id) => acked.get(id));
    assertEquals(
      commit,
      Math.min(naiveCommit(c.incoming, acked), naiveCommit(c.outgoing, acked)),
      `case ${i}`,
    );
    const r1 = naiveVote(c.incoming, v);
    const r2 = naiveVote(c.outgoing, v);
    const want = r1 === VoteResult.Lost || r2 === VoteResult.Lost
      ? VoteResult.Lost
      : r1 === VoteResult.Won && r2 === VoteResult.Won
      ? VoteResult.Won
      : VoteResult.Pending;
    assertEquals(jointVoteResult(c, v), want, `case ${i}`);
  }
});
