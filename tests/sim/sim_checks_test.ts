import { assert, assertEquals, assertMatch } from "../assert.ts";
import { type ConfChange, ConfChangeType, type NodeId } from "../../raft/types.ts";
import {
  applyChange,
  commitViolation,
  confChangeInFlightViolation,
  digestOf,
  electionViolation,
  failureReason,
  isQuorum,
  type Membership,
  MembershipHistory,
  membershipOf,
  sameMembership,
  SeededRunFailure,
  SimTrace,
  SimViolation,
  TermLeaders,
  TermVotes,
} from "./sim_checks.ts";

Deno.test("sim checks: a second leader of a term is a conflict, the same one is not", () => {
  const leaders = new TermLeaders();
  assertEquals(leaders.record(3, 1n), { kind: "first" });
  assertEquals(leaders.record(3, 1n), { kind: "known" });
  assertEquals(leaders.record(4, 2n), { kind: "first" });
  assertEquals(leaders.record(3, 2n), { kind: "conflict", other: 1n });
});

Deno.test("sim checks: a vote changed within a term is reported with the earlier one", () => {
  const votes = new TermVotes();
  assertEquals(votes.record(2, 1n), undefined);
  assertEquals(votes.record(2, 1n), undefined);
  assertEquals(votes.record(3, 2n), undefined);
  assertEquals(votes.record(2, 3n), 1n);
  assertEquals(votes.get(2), 3n);
  assertEquals(votes.get(9), undefined);
});

Deno.test("sim checks: a failure names the seed, the reason, the replay and the trace's tail", () => {
  const trace = Array.from({ length: 100 }, (_, i) => `line ${i}`);
  const f = new SeededRunFailure("a simulation", 7, 120, "something broke", trace, "REPLAY 7");
  assert(f.message.startsWith("a simulation failed: seed 7 at t=120ms: something broke\nreplay: REPLAY 7"));
  assert(f.message.includes("line 99") && f.message.includes("line 20") && !f.message.includes("line 19\n"));
  assertEquals(
    new SeededRunFailure("x", 1, 0, "r", [], "R").message,
    "x failed: seed 1 at t=0ms: r\nreplay: R",
  );
  assertEquals(failureReason(new SimViolation("two leaders")), "two leaders");
  assert(failureReason(new Error("boom")).startsWith("exception: Error: boom"));
});

Deno.test("sim checks: a trace keeps lines, with their time, only when enabled", () => {
  let now = 5;
  const on = new SimTrace(true, () => now);
  on.add(() => "a");
  now = 9;
  on.add(() => "b");
  assertEquals(on.lines, ["5 a", "9 b"]);
  const off = new SimTrace(false, () => now);
  off.add(() => {
    throw new Error("a line is not built when tracing is off");
  });
  assertEquals(off.lines, []);
});

Deno.test("sim checks: a digest is FNV-1a over the parts, as if they were one string", () => {
  assertEquals(digestOf([]), "811c9dc5");
  assertEquals(digestOf(["a"]), "e40c292c");
  assertEquals(digestOf(["ab", "c"]), digestOf(["abc"]));
  assert(digestOf(["abc"]) !== digestOf(["abd"]));
});

const cc = (type: ConfChangeType, nodeId: NodeId): ConfChange => ({
  type,
  nodeId,
  context: new Uint8Array(),
});
const m = (voters: NodeId[], learners: NodeId[] = []): Membership => ({ voters, learners });

Deno.test("sim checks: conf changes add voters and learners, promote, demote and remove", () => {
  const base = m([1n, 2n, 3n]);
  assertEquals(applyChange(base, cc(ConfChangeType.AddNode, 4n)), m([1n, 2n, 3n, 4n]));
  assertEquals(applyChange(base, cc(ConfChangeType.AddLearnerNode, 4n)), m([1n, 2n, 3n], [4n]));
  assertEquals(applyChange(m([1n, 2n], [4n]), cc(ConfChangeType.AddNode, 4n)), m([1n, 2n, 4n]));
  assertEquals(applyChange(base, cc(ConfChangeType.AddLearnerNode, 2n)), m([1n, 3n], [2n]));
  assertEquals(applyChange(m([1n, 2n], [4n]), cc(ConfChangeType.RemoveNode, 4n)), m([1n, 2n]));
  assertEquals(applyChange(base, cc(ConfChangeType.RemoveNode, 1n)), m([2n, 3n]));
  assertEquals(applyChange(base, cc(ConfChangeType.RemoveNode, 0n)), base);
  assertEquals(applyChange(base, cc(ConfChangeType.UpdateNode, 2n)), base);
  assert(sameMembership(
    m([1n, 2n]),
    membershipOf({
      voters: [2n, 1n],
      learners: [],
      votersOutgoing: [],
      learnersNext: [],
      autoLeave: false,
    }),
  ));
  assert(!sameMembership(m([1n, 2n]), m([1n], [2n])));
});

Deno.test("sim checks: the configuration history answers the membership at any index", () => {
  const h = new MembershipHistory(m([1n, 2n, 3n]), 3);
  assertEquals(h.record(2, cc(ConfChangeType.AddNode, 2n), 1), undefined); // bootstrap: ignored
  assertEquals(h.size, 0);
  assertEquals(h.record(5, cc(ConfChangeType.AddLearnerNode, 4n), 1), undefined);
  assertEquals(h.record(9, cc(ConfChangeType.AddNode, 4n), 1), undefined);
  assertEquals(h.record(12, cc(ConfChangeType.RemoveNode, 1n), 1), undefined);
  assertEquals(h.at(0), m([1n, 2n, 3n]));
  assertEquals(h.at(4), m([1n, 2n, 3n]));
  assertEquals(h.at(5), m([1n, 2n, 3n], [4n]));
  assertEquals(h.at(11), m([1n, 2n, 3n, 4n]));
  assertEquals(h.at(100), m([2n, 3n, 4n]));
  assertEquals(h.between(4, 12), [
    m([1n, 2n, 3n]),
    m([1n, 2n, 3n], [4n]),
    m([1n, 2n, 3n, 4n]),
    m([2n, 3n, 4n]),
  ]);
  assertEquals(h.between(9, 11), [m([1n, 2n, 3n, 4n])]);
  // A change recorded out of order is slotted in and the later memberships follow from it.
  assertEquals(h.record(7, cc(ConfChangeType.AddNode, 5n), 1), undefined);
  assertEquals(h.at(8), m([1n, 2n, 3n, 5n], [4n]));
  assertEquals(h.at(12), m([2n, 3n, 4n, 5n]));
  assertEquals(h.record(7, cc(ConfChangeType.AddNode, 5n), 1), undefined); // known already
  assertEquals(h.size, 4);
});

Deno.test("sim checks: the configuration history refuses a second learner and the last voter's removal", () => {
  const h = new MembershipHistory(m([1n, 2n]), 2);
  assertEquals(h.record(3, cc(ConfChangeType.AddLearnerNode, 3n), 1), undefined);
  assertMatch(h.record(4, cc(ConfChangeType.AddLearnerNode, 4n), 1)!, /more than 1 learner\(s\).* index 4/);
  const g = new MembershipHistory(m([1n]), 1);
  assertMatch(
    g.record(2, cc(ConfChangeType.RemoveNode, 1n), 1)!,
    /no voter left after the conf change at index 2/,
  );
});

Deno.test("sim checks: a quorum is a strict majority of the voters", () => {
  const yes = (ids: NodeId[]) => (id: NodeId) => ids.includes(id);
  assert(isQuorum([1n, 2n, 3n], yes([1n, 3n])));
  assert(!isQuorum([1n, 2n, 3n, 4n], yes([1n, 3n])));
  assert(isQuorum([1n], yes([1n])));
  assert(!isQuorum([], yes([1n])));
});

Deno.test("sim checks: a leader needs a durable majority of its configuration's voters", () => {
  const votes = new Map<NodeId, NodeId>([[1n, 1n], [2n, 1n], [4n, 1n], [5n, 1n]]);
  const votedFor = (id: NodeId) => votes.get(id);
  assertEquals(electionViolation(1n, 7, m([1n, 2n, 3n]), votedFor), undefined);
  // A learner's and a removed member's votes do not count.
  assertMatch(
    electionViolation(1n, 7, m([1n, 3n, 6n], [4n]), votedFor)!,
    /node 1 leads term 7 with durable votes from 1 only, not a majority of voters 1,3,6 learners 4/,
  );
  // A member that is not a voter (a learner, or a removed member) never leads.
  assertMatch(
    electionViolation(4n, 7, m([1n, 2n, 3n], [4n]), votedFor)!,
    /node 4 leads term 7 but is not a voter of its configuration \(voters 1,2,3 learners 4\)/,
  );
});

Deno.test("sim checks: a commit needs a durable majority of the voters of a configuration held", () => {
  const durable = (id: NodeId) => [1n, 2n, 5n].includes(id);
  assertEquals(commitViolation(1n, 9, [m([1n, 2n, 3n])], durable), undefined);
  assertMatch(
    commitViolation(1n, 9, [m([1n, 3n, 4n], [5n])], durable)!,
    /leader 1 committed index 9, durable only on 1: not a majority of voters 1,3,4 learners 5/,
  );
  // Any of the configurations the leader held while applying a batch may have committed it.
  assertEquals(commitViolation(1n, 9, [m([1n, 3n, 4n]), m([1n, 2n, 4n])], durable), undefined);
  assertMatch(commitViolation(1n, 9, [m([3n, 4n]), m([3n, 6n])], durable)!, /durable only on nobody/);
});

Deno.test("sim checks: a leader appends a conf change only once the earlier ones are applied", () => {
  const e = (index: number, term: number, confChange = false) => ({ index, term, confChange });
  // Changes of earlier terms may wait unapplied; this leader's own change comes after they are applied.
  assertEquals(confChangeInFlightViolation(1n, 5, [e(10, 3, true), e(11, 4, true), e(12, 5)]), undefined);
  assertEquals(confChangeInFlightViolation(1n, 5, [e(12, 5), e(13, 5, true), e(14, 5)]), undefined);
  assertMatch(
    confChangeInFlightViolation(1n, 5, [e(10, 3, true), e(12, 5), e(13, 5, true)])!,
    /leader 1 of term 5 appended the conf change at index 13 while the one at index 10 \(term 3\) was not applied/,
  );
  assertMatch(
    confChangeInFlightViolation(2n, 5, [e(13, 5, true), e(14, 5, true)])!,
    /index 14 while the one at index 13/,
  );
});
