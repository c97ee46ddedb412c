/**
 * The rules of the Raft paper (§5), one test each, on Raft state machines wired by hand: elections
 * (timeouts from the injected randomness, vote rules, term bumps, stale terms), log replication
 * (appending, rejecting on mismatch and backing off, commitment only of the current term's entries)
 * and ReadIndex reads.
 */
import { assert, assertEquals } from "../tests/assert.ts";
import { encodeConfChange, encodeConfChangeV2 } from "./conf_change.ts";
import { Raft, type RaftConfig } from "./raft.ts";
import { MemoryStorage } from "./storage.ts";
import {
  ConfChangeTransition,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type NodeId,
  NONE,
  StateType,
} from "./types.ts";
import { emptyConfState, makeMessage } from "./util.ts";

/** Storage whose configuration is given up front, as if a snapshot had set it. */
class PeersStorage extends MemoryStorage {
  constructor(private readonly cs: ConfState) {
    super();
  }

  override initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: super.initialState().hardState, confState: this.cs };
  }
}

interface Opts extends Partial<Omit<RaftConfig, "id" | "storage">> {
  /** Log terms of the persisted entries 1, 2, ... */
  log?: number[];
  hardState?: HardState;
}

function newRaft(id: number, peers: number[], opts: Opts = {}): Raft {
  const storage = new PeersStorage({ ...emptyConfState(), voters: peers.map(BigInt) });
  if (opts.log) storage.append(opts.log.map((term, i) => entry(i + 1, term)));
  if (opts.hardState) storage.setHardState(opts.hardState);
  return new Raft({
    electionTick: 10,
    heartbeatTick: 1,
    random: () => 0,
    ...opts,
    id: BigInt(id),
    storage,
  });
}

function entry(index: number, term: number, data = ""): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(data) };
}

/** Does what a driver does with a Ready's entries: persist, then report them stable. */
function persist(r: Raft): void {
  const es = r.log.nextUnstableEntries();
  r.log.unstable.acceptInProgress();
  if (es.length === 0) return;
  (r.log.storage as MemoryStorage).append(es);
  const last = es[es.length - 1];
  r.log.stableTo(last.index, last.term);
  if (r.state === StateType.Leader && r.log.matchTerm(last.index, last.term)) {
    r.step(makeMessage({ type: MessageType.AppResp, from: r.id, term: r.term, index: last.index }));
  }
}

/** The messages a node has to send (persisting first, as a driver must). */
function take(r: Raft): Message[] {
  persist(r);
  const out = r.msgs;
  r.msgs = [];
  return out;
}

/** Several nodes and a network that delivers everything except what `drop` refuses. */
class Net {
  readonly nodes = new Map<NodeId, Raft>();
  drop: (m: Message) => boolean = () => false;
  /** Every message delivered, for tests that count them. */
  delivered: Message[] = [];

  constructor(...nodes: Raft[]) {
    for (const n of nodes) this.nodes.set(n.id, n);
  }

  get(id: number): Raft {
    return this.nodes.get(BigInt(id))!;
  }

  /** Delivers until no node has anything to send. */
  settle(): void {
    for (let round = 0; round < 200; round++) {
      let moved = false;
      for (const n of this.nodes.values()) {
        for (const m of take(n)) {
          moved = true;
          if (this.drop(m)) continue;
          this.delivered.push(m);
          this.nodes.get(m.to)?.step(m);
        }
      }
      if (!moved) return;
    }
    throw new Error("the network did not settle");
  }

  /** Node `id` campaigns and the network settles. */
  elect(id: number): Raft {
    const r = this.get(id);
    r.step(makeMessage({ type: MessageType.Hup }));
    this.settle();
    return r;
  }
}

function terms(r: Raft): number[] {
  return r.log.allEntries().map((e) => e.term);
}

// ---- elections (§5.2) ------------------------------------------------------------------------------

Deno.test("election: a follower campaigns after its randomized election timeout", () => {
  // the timeout is electionTick + floor(random * electionTick), the random value coming from the config
  const table: [number, number][] = [[0, 10], [0.3, 13], [0.99, 19]];
  for (const [random, timeout] of table) {
    const r = newRaft(1, [1, 2, 3], { random: () => random });
    for (let i = 1; i < timeout; i++) r.tick();
    assertEquals(r.state, StateType.Follower, `random ${random}: not before ${timeout} ticks`);
    r.tick();
    assertEquals([r.state, r.term, r.vote], [StateType.Candidate, 1, 1n], `random ${random}`);
    const msgs = take(r);
    assertEquals(msgs.map((m) => [m.type, m.to, m.term]), [
      [MessageType.Vote, 2n, 1],
      [MessageType.Vote, 3n, 1],
    ]);
  }
});

Deno.test("election: a candidate that times out starts a new election in a new term", () => {
  const r = newRaft(1, [1, 2, 3]);
  for (let i = 0; i < 10; i++) r.tick();
  assertEquals([r.state, r.term], [StateType.Candidate, 1]);
  take(r);
  for (let i = 0; i < 10; i++) r.tick();
  assertEquals([r.state, r.term, r.vote], [StateType.Candidate, 2, 1n]);
});

Deno.test("election: the outcome of one round of votes", () => {
  // [cluster size, votes received (id -> granted), resulting state]
  const table: [number, Record<number, boolean>, StateType][] = [
    [1, {}, StateType.Leader], // a single voter elects itself
    [3, { 2: true, 3: true }, StateType.Leader],
    [3, { 2: true }, StateType.Leader], // itself plus one of three
    [5, { 2: true, 3: true, 4: true, 5: true }, StateType.Leader],
    [5, { 2: true, 3: true }, StateType.Leader],
    [5, { 2: true }, StateType.Candidate], // two of five: wait for more
    [5, { 2: true, 3: false, 4: false }, StateType.Candidate],
    [3, { 2: false, 3: false }, StateType.Follower], // a majority refused: step down
    [5, { 2: false, 3: false, 4: false }, StateType.Follower],
  ];
  for (const [size, votes, want] of table) {
    const peers = Array.from({ length: size }, (_, i) => i + 1);
    const r = newRaft(1, peers);
    r.step(makeMessage({ type: MessageType.Hup }));
    for (const [from, granted] of Object.entries(votes)) {
      r.step(makeMessage({ type: MessageType.VoteResp, from: BigInt(from), term: r.term, reject: !granted }));
    }
    assertEquals(r.state, want, `${size} nodes, votes ${JSON.stringify(votes)}`);
    assertEquals(r.term, 1);
  }
});

Deno.test("election: a node grants one vote per term, first come first served", () => {
  // [vote already cast in term 1, candidate asking, rejected]
  const table: [NodeId, NodeId, boolean][] = [
    [NONE, 2n, false],
    [NONE, 3n, false],
    [2n, 2n, false], // the same candidate asking again (a retransmission) gets the same answer
    [3n, 3n, false],
    [2n, 3n, true],
    [3n, 2n, true],
  ];
  for (const [vote, candidate, rejected] of table) {
    const r = newRaft(1, [1, 2, 3], { hardState: { term: 1, vote, commit: 0 } });
    r.step(makeMessage({ type: MessageType.Vote, from: candidate, term: 1 }));
    const msgs = take(r);
    assertEquals(msgs.length, 1);
    assertEquals([msgs[0].type, msgs[0].to, msgs[0].reject], [MessageType.VoteResp, candidate, rejected]);
    assertEquals(r.vote, rejected ? vote : candidate);
  }
});

Deno.test("election: votes go only to candidates whose log is at least as up to date (§5.4.1)", () => {
  // the voter's log ends with 2/2; [candidate's last index, last term, rejected]
  const table: [number, number, boolean][] = [
    [1, 1, true], // lower term, shorter
    [3, 1, true], // lower term, longer: the term decides
    [1, 2, true], // same term, shorter
    [2, 2, false],
    [3, 2, false],
    [1, 3, false], // higher term wins even with a shorter log
  ];
  for (const [index, logTerm, rejected] of table) {
    const r = newRaft(1, [1, 2, 3], { log: [1, 2], hardState: { term: 2, vote: NONE, commit: 0 } });
    r.step(makeMessage({ type: MessageType.Vote, from: 2n, term: 3, index, logTerm }));
    const [resp] = take(r);
    assertEquals(resp.reject, rejected, `candidate at ${index}/${logTerm}`);
    assertEquals(r.term, 3, "the higher term is adopted either way");
  }
});

Deno.test("election: a message of a higher term turns any node into a follower of that term", () => {
  const setups: [string, () => Raft][] = [
    ["follower", () => newRaft(1, [1, 2, 3])],
    ["candidate", () => {
      const r = newRaft(1, [1, 2, 3]);
      r.step(makeMessage({ type: MessageType.Hup }));
      return r;
    }],
    ["leader", () => new Net(newRaft(1, [1, 2, 3]), newRaft(2, [1, 2, 3]), newRaft(3, [1, 2, 3])).elect(1)],
  ];
  for (const [name, setup] of setups) {
    // from a leader: follow it at once
    let r = setup();
    r.step(makeMessage({ type: MessageType.App, from: 2n, term: 5 }));
    assertEquals([r.state, r.term, r.lead], [StateType.Follower, 5, 2n], `${name}, append`);
    // from a candidate: follow nobody yet
    r = setup();
    r.step(makeMessage({ type: MessageType.Vote, from: 3n, term: 5, index: 0, logTerm: 0 }));
    assertEquals([r.state, r.term, r.lead], [StateType.Follower, 5, NONE], `${name}, vote`);
  }
});

Deno.test("election: messages of an older term are ignored", async (t) => {
  await t.step("without check-quorum or pre-vote: dropped silently", () => {
    const r = newRaft(1, [1, 2, 3], { hardState: { term: 3, vote: NONE, commit: 0 } });
    for (const type of [MessageType.App, MessageType.Heartbeat, MessageType.Vote, MessageType.AppResp]) {
      r.step(makeMessage({ type, from: 2n, term: 2, index: 5, logTerm: 2, entries: [entry(6, 2)] }));
    }
    assertEquals([r.state, r.term, r.lead, r.log.lastIndex()], [StateType.Follower, 3, NONE, 0]);
    assertEquals(take(r), []);
  });
  await t.step("with check-quorum: a stale leader is told the newer term, nothing else changes", () => {
    const r = newRaft(1, [1, 2, 3], { checkQuorum: true, hardState: { term: 3, vote: NONE, commit: 0 } });
    r.step(makeMessage({ type: MessageType.App, from: 2n, term: 2 }));
    const msgs = take(r);
    assertEquals(msgs.map((m) => [m.type, m.to, m.term]), [[MessageType.AppResp, 2n, 3]]);
    assertEquals([r.term, r.lead], [3, NONE]);
  });
  await t.step("with pre-vote: a stale pre-vote is refused with the current term", () => {
    const r = newRaft(1, [1, 2, 3], { preVote: true, hardState: { term: 3, vote: NONE, commit: 0 } });
    r.step(makeMessage({ type: MessageType.PreVote, from: 2n, term: 2 }));
    const msgs = take(r);
    assertEquals(msgs.map((m) => [m.type, m.to, m.term, m.reject]), [[MessageType.PreVoteResp, 2n, 3, true]]);
  });
});

Deno.test("election: a candidate steps down for the leader of its own term", () => {
  const r = newRaft(1, [1, 2, 3]);
  r.step(makeMessage({ type: MessageType.Hup }));
  assertEquals(r.state, StateType.Candidate);
  r.step(makeMessage({ type: MessageType.App, from: 2n, term: 1 }));
  assertEquals([r.state, r.term, r.lead], [StateType.Follower, 1, 2n]);
});

Deno.test("election: a pre-candidate keeps its term until the pre-vote is won", () => {
  const r = newRaft(1, [1, 2, 3], { preVote: true, hardState: { term: 4, vote: 2n, commit: 0 } });
  r.step(makeMessage({ type: MessageType.Hup }));
  assertEquals([r.state, r.term, r.vote], [StateType.PreCandidate, 4, 2n]);
  assertEquals(take(r).map((m) => [m.type, m.term]), [[MessageType.PreVote, 5], [MessageType.PreVote, 5]]);
  r.step(makeMessage({ type: MessageType.PreVoteResp, from: 2n, term: 5 }));
  assertEquals([r.state, r.term, r.vote], [StateType.Candidate, 5, 1n]);
  assertEquals(take(r).map((m) => [m.type, m.term]), [[MessageType.Vote, 5], [MessageType.Vote, 5]]);
});

// ---- replication (§5.3, §5.4.2) -------------------------------------------------------------------

function cluster(size: number, opts: Opts = {}): Net {
  const peers = Array.from({ length: size }, (_, i) => i + 1);
  return new Net(...peers.map((id) => newRaft(id, peers, opts)));
}

Deno.test("replication: a new leader appends an empty entry of its term and commits it with a quorum", () => {
  const net = cluster(3);
  const r = net.elect(1);
  assertEquals(r.state, StateType.Leader);
  assertEquals(r.log.allEntries().map((e) => [e.index, e.term, e.data.length]), [[1, 1, 0]]);
  assertEquals(r.log.committed, 1);
  for (const id of [2, 3]) assertEquals([net.get(id).log.committed, net.get(id).lead], [1, 1n]);
});

Deno.test("replication: the leader appends a proposal in its term and sends it to every follower", () => {
  const net = cluster(3);
  const r = net.elect(1);
  r.step(makeMessage({ type: MessageType.Prop, from: 1n, entries: [entry(0, 0, "x")] }));
  assertEquals(r.log.lastIndex(), 2);
  assertEquals(r.log.term(2), 1);
  const msgs = take(r);
  assertEquals(msgs.map((m) => [m.type, m.to, m.index, m.logTerm, m.commit, m.entries.map((e) => e.index)]), [
    [MessageType.App, 2n, 1, 1, 1, [2]],
    [MessageType.App, 3n, 1, 1, 1, [2]],
  ]);
});

Deno.test("replication: an entry commits once a majority holds it; followers learn it next", () => {
  const net = cluster(5);
  const r = net.elect(1);
  r.step(makeMessage({ type: MessageType.Prop, from: 1n, entries: [entry(0, 0, "x")] }));
  const reached = new Set<NodeId>([2n]);
  net.drop = (m) => m.type === MessageType.App && !reached.has(m.to);
  net.settle();
  assertEquals(r.log.committed, 1, "the leader and one follower are two of five");
  reached.add(3n);
  r.step(makeMessage({ type: MessageType.Beat })); // heartbeats bring the append to 3 again
  net.settle();
  assertEquals(r.log.committed, 2, "three of five");
  assertEquals(net.get(4).log.lastIndex(), 1, "4 never got the entry");
  // the followers that hold the entry learn its commitment from the leader
  net.drop = () => false;
  r.step(makeMessage({ type: MessageType.Beat }));
  net.settle();
  for (const id of [2, 3, 4, 5]) assertEquals(net.get(id).log.committed, 2, `node ${id}`);
});

Deno.test("replication: a follower refuses an append that does not follow its log", () => {
  const r = newRaft(2, [1, 2, 3], { log: [1, 1, 2], hardState: { term: 3, vote: NONE, commit: 1 } });
  // [previous index, previous term, rejected, hint index, hint term]
  const table: [number, number, boolean, number, number][] = [
    [3, 2, false, 0, 0],
    [3, 3, true, 3, 2], // the term at 3 differs: hint at the last entry of a term not above 3
    [5, 3, true, 3, 2], // beyond the log: hint at its end
    [2, 2, true, 2, 1], // 2 holds term 1, which may be the leader's at 2
  ];
  for (const [index, logTerm, rejected, hintIndex, hintTerm] of table) {
    r.step(makeMessage({ type: MessageType.App, from: 1n, term: 3, index, logTerm, commit: 1 }));
    const [resp] = take(r);
    assertEquals(resp.type, MessageType.AppResp);
    const got = [resp.reject, resp.reject ? resp.rejectHint : 0, resp.reject ? resp.logTerm : 0];
    assertEquals(got, [rejected, hintIndex, hintTerm], `append after ${index}/${logTerm}`);
  }
  assertEquals(terms(r), [1, 1, 2], "rejections change nothing");
});

Deno.test("replication: the leader backs off until each follower's log matches, then overwrites the rest", () => {
  // the leader's log (Figure 7 of the paper); each follower diverges in another way
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const followers: [string, number[]][] = [
    ["missing the last entry", [1, 1, 1, 4, 4, 5, 5, 6, 6]],
    ["missing many entries", [1, 1, 1, 4]],
    ["an extra entry of the current leader's old term", [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]],
    ["extra entries of a term the leader never saw", [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]],
    ["uncommitted entries of an older term", [1, 1, 1, 4, 4, 4, 4]],
    ["many entries of terms the leader never saw", [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]],
    ["an empty log", []],
  ];
  for (const [name, log] of followers) {
    const hs = { term: 8, vote: NONE, commit: 0 };
    // node 3 has the leader's log, so 1 wins the election even when 2 refuses its vote
    const net = new Net(
      newRaft(1, [1, 2, 3], { log: leaderLog, hardState: hs }),
      newRaft(2, [1, 2, 3], { log, hardState: hs }),
      newRaft(3, [1, 2, 3], { log: leaderLog, hardState: hs }),
    );
    const r = net.elect(1);
    assertEquals([r.state, r.term], [StateType.Leader, 9], name);
    assertEquals(terms(net.get(2)), [...leaderLog, 9], name);
    assertEquals(net.get(2).log.committed, 11, name);
    const rejections = net.delivered.filter((m) =>
      m.type === MessageType.AppResp && m.reject && m.from === 2n
    );
    assert(rejections.length <= 3, `${name}: ${rejections.length} round trips; hints skip whole terms`);
  }
});

Deno.test("replication: a leader counts replicas only for entries of its own term (§5.4.2)", () => {
  // node 1 and 2 hold 2/2 from an earlier term, node 3 does not; nothing beyond 1 is committed
  const hs = { term: 2, vote: NONE, commit: 1 };
  const net = new Net(
    newRaft(1, [1, 2, 3], { log: [1, 2], hardState: hs }),
    newRaft(2, [1, 2, 3], { log: [1, 2], hardState: hs }),
    newRaft(3, [1, 2, 3], { log: [1], hardState: hs }),
  );
  // 1 becomes leader of term 3 with 3's vote, then appends 3/3; the appends are held back
  const r = net.get(1);
  net.drop = (m) => m.type === MessageType.App;
  net.elect(1);
  assertEquals([r.state, r.term, r.log.lastIndex()], [StateType.Leader, 3, 3]);
  // 2 reports that it holds entry 2: a majority (1 and 2) holds it, but it is of term 2
  r.step(makeMessage({ type: MessageType.AppResp, from: 2n, term: 3, index: 2 }));
  assertEquals(r.log.committed, 1, "an old-term entry is not committed by counting replicas");
  // once an entry of term 3 is on a majority, it and everything before it commit
  r.step(makeMessage({ type: MessageType.AppResp, from: 2n, term: 3, index: 3 }));
  assertEquals(r.log.committed, 3);
});

Deno.test("replication: heartbeats carry the commit index, capped by what the follower holds", () => {
  const net = cluster(3);
  const r = net.elect(1);
  r.step(makeMessage({ type: MessageType.Prop, from: 1n, entries: [entry(0, 0, "x")] }));
  net.drop = (m) => m.type === MessageType.App && m.to === 3n;
  net.settle();
  assertEquals(r.log.committed, 2);
  r.tick(); // heartbeatTick is 1
  const beats = take(r).filter((m) => m.type === MessageType.Heartbeat);
  assertEquals(beats.map((m) => [m.to, m.commit]), [[2n, 2], [3n, 1]]);
});

// ---- ReadIndex (§6.4 of the thesis) ----------------------------------------------------------------

const ctx = (s: string): Entry[] => [entry(0, 0, s)];
const dec = new TextDecoder();

Deno.test("read index: the leader answers once a quorum confirmed its leadership", () => {
  const net = cluster(3);
  const r = net.elect(1);
  net.drop = (m) => m.type === MessageType.HeartbeatResp;
  r.step(makeMessage({ type: MessageType.ReadIndex, from: 1n, entries: ctx("a") }));
  net.settle();
  assertEquals(r.readStates, [], "no follower acknowledged the heartbeat yet");
  net.drop = () => false;
  r.step(makeMessage({ type: MessageType.HeartbeatResp, from: 2n, term: 1, context: ctx("a")[0].data }));
  assertEquals(r.readStates.map((s) => [s.index, dec.decode(s.requestCtx)]), [[1, "a"]]);
});

Deno.test("read index: a new leader waits for an entry of its term to commit first", () => {
  const net = cluster(3);
  const r = net.get(1);
  net.drop = (m) => m.type === MessageType.AppResp;
  net.elect(1);
  assertEquals([r.state, r.log.committed], [StateType.Leader, 0]);
  r.step(makeMessage({ type: MessageType.ReadIndex, from: 1n, entries: ctx("b") }));
  net.settle();
  assertEquals(r.readStates, [], "the commit index of an earlier leader may be stale");
  net.drop = () => false;
  r.step(makeMessage({ type: MessageType.Beat }));
  net.settle();
  assertEquals(r.log.committed, 1);
  assertEquals(r.readStates.map((s) => [s.index, dec.decode(s.requestCtx)]), [[1, "b"]]);
});

Deno.test("read index: a follower forwards the request and gets the leader's index back", () => {
  const net = cluster(3);
  net.elect(1);
  const f = net.get(2);
  f.step(makeMessage({ type: MessageType.ReadIndex, entries: ctx("c") }));
  assertEquals(f.msgs.map((m) => [m.type, m.to]), [[MessageType.ReadIndex, 1n]]);
  net.settle();
  assertEquals(f.readStates.map((s) => [s.index, dec.decode(s.requestCtx)]), [[1, "c"]]);
  // without a leader there is nobody to ask: the request is dropped (the caller retries)
  const lone = newRaft(1, [1, 2, 3]);
  lone.step(makeMessage({ type: MessageType.ReadIndex, entries: ctx("d") }));
  assertEquals(take(lone), []);
});

Deno.test("membership: a leader accepts one conf change at a time, of either entry type", () => {
  for (const type of [EntryType.ConfChange, EntryType.ConfChangeV2]) {
    const net = cluster(3);
    const r = net.elect(1);
    const data = type === EntryType.ConfChange
      ? encodeConfChange({ type: ConfChangeType.AddNode, nodeId: 4n, context: new Uint8Array() })
      : encodeConfChangeV2({
        transition: ConfChangeTransition.Auto,
        changes: [{ type: ConfChangeType.AddNode, nodeId: 4n }],
        context: new Uint8Array(),
      });
    const cc = (): Entry => ({ index: 0, term: 0, type, data });
    r.step(makeMessage({ type: MessageType.Prop, from: 1n, entries: [cc()] }));
    r.step(makeMessage({ type: MessageType.Prop, from: 1n, entries: [cc()] }));
    const appended = r.log.allEntries().slice(1).map((e) => e.type);
    // the second one is turned into an empty normal entry: the first is not applied yet
    assertEquals(appended, [type, EntryType.Normal], EntryType[type]);
  }
});

Deno.test("flow control: a probe answered at the known match resumes replication at once", () => {
  const net = cluster(5);
  const r = net.elect(1);
  // 3 acknowledges "x" first (with the leader, two of five: not committed yet)
  r.step(makeMessage({ type: MessageType.Prop, from: 1n, entries: [entry(0, 0, "x")] }));
  const held: Message[] = [];
  net.drop = (m) => {
    const hold = m.type === MessageType.AppResp && m.from !== 3n;
    if (hold) held.push(m);
    return hold;
  };
  net.settle();
  assertEquals(r.log.committed, 1);
  // the leader is told 3 is unreachable: it probes 3 again, from what 3 is known to hold
  r.step(makeMessage({ type: MessageType.Unreachable, from: 3n }));
  const pr3 = r.trk.progress.get(3n)!;
  assertEquals([pr3.state, pr3.match], ["probe", 2]);
  // 2's acknowledgement commits "x"; the new commit index goes to 3 as an empty probe, answered at match
  net.drop = () => false;
  r.step(held.find((m) => m.from === 2n)!);
  net.settle();
  assertEquals(r.log.committed, 2);
  assertEquals([pr3.state, pr3.isPaused()], ["replicate", false], "the answered probe ends probing");
  // so the next proposal goes to 3 right away, without waiting for a heartbeat response
  r.step(makeMessage({ type: MessageType.Prop, from: 1n, entries: [entry(0, 0, "y")] }));
  assertEquals(take(r).filter((m) => m.type === MessageType.App).map((m) => m.to).includes(3n), true);
});
