/**
 * Flow control: the in-flight window, a follower's progress states (probe, replicate, snapshot) and
 * their transitions, the rules for acknowledgements and rejections, and the tracker's quorum questions.
 */
import { assert, assertEquals, assertThrows } from "../tests/assert.ts";
import { Inflights, Progress, type ProgressState, ProgressTracker } from "./progress.ts";
import { VoteResult } from "./quorum.ts";
import type { NodeId } from "./types.ts";

Deno.test("inflights: a bounded window that frees up to an index", async (t) => {
  await t.step("fills up, then refuses more", () => {
    const w = new Inflights(3);
    for (const i of [5, 7, 9]) {
      assert(!w.full());
      w.add(i);
    }
    assert(w.full());
    assertEquals(w.length(), 3);
    assertThrows(() => w.add(10), Error, "full");
  });
  await t.step("freeLE frees every append ending at or below the index", () => {
    const w = new Inflights(10);
    for (let i = 1; i <= 5; i++) w.add(i * 10);
    w.freeLE(5); // below the oldest: nothing
    assertEquals(w.length(), 5);
    w.freeLE(30);
    assertEquals(w.length(), 2);
    w.freeLE(35); // between two appends: only the older goes
    assertEquals(w.length(), 2);
    w.freeLE(40);
    assertEquals(w.length(), 1);
    w.freeLE(1000);
    assertEquals(w.length(), 0);
    w.freeLE(2000); // freeing an empty window is harmless
    assertEquals(w.length(), 0);
  });
  await t.step("wraps around its ring buffer", () => {
    const w = new Inflights(4);
    for (let i = 1; i <= 4; i++) w.add(i);
    w.freeLE(2);
    w.add(5);
    w.add(6); // these two land in the slots 1 and 2 left free
    assert(w.full());
    w.freeLE(4);
    assertEquals(w.length(), 2);
    w.freeLE(5);
    assertEquals(w.length(), 1);
    w.add(7);
    w.add(8);
    w.add(9);
    assert(w.full());
    w.freeLE(8);
    assertEquals(w.length(), 1);
  });
  await t.step("freeFirstOne frees only the oldest; reset frees all", () => {
    const w = new Inflights(3);
    w.add(1);
    w.add(2);
    w.add(3);
    w.freeFirstOne();
    assertEquals(w.length(), 2);
    assert(!w.full());
    w.reset();
    assertEquals(w.length(), 0);
    w.freeFirstOne();
    assertEquals(w.length(), 0);
  });
});

function progress(state: ProgressState, match: number, next: number, maxInflight = 4): Progress {
  const pr = new Progress(next, maxInflight, false);
  pr.match = match;
  pr.state = state;
  return pr;
}

Deno.test("progress: state transitions set next from match", async (t) => {
  await t.step("probe and replicate restart right after match", () => {
    const pr = progress("replicate", 5, 10);
    pr.inflights.add(7);
    pr.becomeProbe();
    assertEquals([pr.state, pr.match, pr.next, pr.inflights.length()], ["probe", 5, 6, 0]);
    pr.probeSent = true;
    pr.becomeReplicate();
    assertEquals([pr.state, pr.next, pr.probeSent], ["replicate", 6, false]);
  });
  await t.step("leaving a snapshot resumes after the snapshot (or after match if further)", () => {
    const pr = progress("probe", 1, 2);
    pr.becomeSnapshot(10);
    assertEquals([pr.state, pr.pendingSnapshot], ["snapshot", 10]);
    pr.becomeProbe();
    assertEquals([pr.state, pr.next, pr.pendingSnapshot], ["probe", 11, 0]);
    const ahead = progress("probe", 20, 21);
    ahead.becomeSnapshot(10);
    ahead.becomeProbe();
    assertEquals(ahead.next, 21);
  });
});

Deno.test("progress: maybeUpdate moves match forward only", () => {
  // [update to, updated, match after, next after], starting from match 3, next 5
  const table: [number, boolean, number, number][] = [
    [2, false, 3, 5], // an old acknowledgement
    [3, false, 3, 5],
    [4, true, 4, 5], // next stays where replication already is
    [5, true, 5, 6],
    [8, true, 8, 9], // next follows an acknowledgement beyond it
  ];
  for (const [n, updated, match, next] of table) {
    const pr = progress("probe", 3, 5);
    pr.probeSent = true;
    assertEquals(pr.maybeUpdate(n), updated, `update ${n}`);
    assertEquals([pr.match, pr.next], [match, next], `update ${n}`);
    assertEquals(pr.probeSent, !updated, `update ${n}: an acknowledgement unpauses a probe`);
  }
});

Deno.test("progress: maybeDecrTo ignores stale rejections and backs off to the hint", () => {
  // [state, match, next, rejected, hint, accepted, next after]
  const table: [ProgressState, number, number, number, number, boolean, number][] = [
    // replicate: a rejection at or below match is stale; otherwise restart right after match
    ["replicate", 5, 10, 5, 5, false, 10],
    ["replicate", 5, 10, 4, 4, false, 10],
    ["replicate", 5, 10, 9, 9, true, 6],
    // probe: only the rejection of the last probe (next - 1) counts
    ["probe", 0, 0, 0, 0, false, 0],
    ["probe", 0, 10, 5, 5, false, 10],
    ["probe", 0, 10, 9, 9, true, 9],
    ["probe", 0, 2, 1, 1, true, 1],
    ["probe", 0, 1, 0, 0, true, 1], // never below 1
    ["probe", 0, 10, 9, 2, true, 3], // the hint says the follower's log ends at 2
    ["probe", 0, 10, 9, 0, true, 1],
    ["probe", 4, 10, 9, 2, true, 5], // never at or below match
  ];
  for (const [state, match, next, rejected, hint, accepted, nextAfter] of table) {
    const pr = progress(state, match, next);
    pr.probeSent = true;
    const name = `${state} m=${match} n=${next} rejected=${rejected} hint=${hint}`;
    assertEquals(pr.maybeDecrTo(rejected, hint), accepted, name);
    assertEquals(pr.next, nextAfter, name);
    if (accepted && state === "probe") assert(!pr.probeSent, `${name}: a new probe may go out`);
  }
});

Deno.test("progress: when sending is paused", () => {
  const probe = progress("probe", 0, 1);
  assert(!probe.isPaused());
  probe.probeSent = true;
  assert(probe.isPaused(), "a probe waits for its answer");

  const repl = progress("replicate", 0, 1, 2);
  repl.optimisticUpdate(5);
  repl.inflights.add(5);
  assertEquals(repl.next, 6);
  assert(!repl.isPaused());
  repl.optimisticUpdate(7);
  repl.inflights.add(7);
  assert(repl.isPaused(), "a full window pauses replication");
  repl.inflights.freeLE(5);
  assert(!repl.isPaused(), "an acknowledgement frees room");

  const snap = progress("probe", 0, 1);
  snap.becomeSnapshot(9);
  assert(snap.isPaused(), "nothing is sent while a snapshot is in flight");
});

Deno.test("progress tracker: committed index, activity and votes ignore learners", () => {
  const trk = new ProgressTracker(8);
  trk.config.voters.incoming = new Set([1n, 2n, 3n]);
  trk.config.learners = new Set([4n]);
  const matches: [NodeId, number, boolean][] = [[1n, 9, false], [2n, 4, false], [3n, 2, false], [
    4n,
    100,
    true,
  ]];
  for (const [id, match, learner] of matches) {
    const pr = new Progress(match + 1, 8, learner);
    pr.match = match;
    trk.progress.set(id, pr);
  }
  assertEquals(trk.committed(), 4);
  assertEquals(trk.voterNodes(), [1n, 2n, 3n]);
  assertEquals(trk.learnerNodes(), [4n]);
  assert(!trk.isSingleton());

  trk.progress.get(4n)!.recentActive = true;
  trk.progress.get(1n)!.recentActive = true;
  assert(!trk.quorumActive(), "an active learner does not make a quorum");
  trk.progress.get(3n)!.recentActive = true;
  assert(trk.quorumActive());

  trk.recordVote(1n, true);
  trk.recordVote(1n, false); // the first vote of a node counts
  trk.recordVote(4n, true);
  assertEquals(trk.tallyVotes().granted, 1);
  trk.recordVote(2n, false);
  assertEquals(trk.tallyVotes(), { granted: 1, rejected: 1, result: VoteResult.Pending });
  trk.recordVote(3n, true);
  assertEquals(trk.tallyVotes().granted, 2);
  trk.resetVotes();
  assertEquals(trk.tallyVotes().granted, 0);

  assertEquals(trk.confState(), {
    voters: [1n, 2n, 3n],
    votersOutgoing: [],
    learners: [4n],
    learnersNext: [],
    autoLeave: false,
  });
});
