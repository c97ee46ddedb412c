/**
 * Unit tests of the Raft state machine through RawNode, with a hand-driven in-memory network.
 */
import { assert, assertEquals, assertThrows } from "../tests/assert.ts";
import { ErrProposalDropped, RawNode } from "./node.ts";
import { MemoryStorage } from "./storage.ts";
import { type Entry, EntryType, type Message, MessageType, type NodeId, StateType } from "./types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A node plus what it has persisted and applied. */
class TestNode {
  readonly storage = new MemoryStorage();
  node: RawNode;
  applied: Entry[] = [];
  readStates: { index: number; ctx: string }[] = [];

  constructor(readonly id: NodeId, peers: NodeId[], opts: { preVote?: boolean; seed?: number } = {}) {
    this.node = this.make(opts);
    this.node.bootstrap(peers.map((p) => ({ id: p, context: new Uint8Array() })));
  }

  make(opts: { preVote?: boolean; seed?: number } = {}): RawNode {
    let s = opts.seed ?? Number(this.id);
    return new RawNode({
      id: this.id,
      electionTick: 10,
      heartbeatTick: 1,
      storage: this.storage,
      checkQuorum: true,
      preVote: opts.preVote ?? true,
      maxInflightMsgs: 16,
      random: () => {
        s = (s * 1103515245 + 12345) % 2147483648;
        return s / 2147483648;
      },
    });
  }

  /** Handles one Ready: persist, collect messages, apply. */
  handle(): Message[] {
    const out: Message[] = [];
    while (this.node.hasReady()) out.push(...this.handleOne());
    return out;
  }

  handleOne(): Message[] {
    const rd = this.node.ready();
    if (rd.snapshot) this.storage.applySnapshot(rd.snapshot);
    this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) continue;
      if (e.data.length > 0) this.applied.push(e);
    }
    for (const r of rd.readStates) this.readStates.push({ index: r.index, ctx: dec.decode(r.requestCtx) });
    this.node.advance();
    return rd.messages;
  }

  values(): string[] {
    return this.applied.map((e) => dec.decode(e.data));
  }
}

/** Delivers messages until nothing moves; `cut` drops messages to or from those nodes. */
function settle(nodes: Map<NodeId, TestNode>, cut: Set<NodeId> = new Set()): void {
  for (let round = 0; round < 1000; round++) {
    let moved = false;
    for (const n of nodes.values()) {
      for (const m of n.handle()) {
        moved = true;
        if (cut.has(m.to) || cut.has(m.from)) continue;
        nodes.get(m.to)?.node.step(m);
      }
    }
    if (!moved) return;
  }
  throw new Error("network did not settle");
}

function cluster(n: number, opts: { preVote?: boolean } = {}): Map<NodeId, TestNode> {
  const ids = Array.from({ length: n }, (_, i) => BigInt(i + 1));
  const nodes = new Map<NodeId, TestNode>();
  for (const id of ids) nodes.set(id, new TestNode(id, ids, opts));
  settle(nodes);
  return nodes;
}

function leaderOf(nodes: Map<NodeId, TestNode>): TestNode[] {
  return [...nodes.values()].filter((n) => n.node.status().softState.raftState === StateType.Leader);
}

Deno.test("a single node elects itself and commits only what it has persisted", () => {
  const n = new TestNode(1n, [1n]);
  n.handle(); // bootstrap entries
  n.node.campaign();
  n.handle();
  assertEquals(n.node.status().softState.raftState, StateType.Leader);
  n.node.propose(enc.encode("a"));
  const rd = n.node.ready();
  assertEquals(rd.entries.map((e) => dec.decode(e.data)).filter((s) => s), ["a"]);
  // not persisted yet: nothing of it may be committed
  assertEquals(rd.committedEntries.filter((e) => dec.decode(e.data) === "a").length, 0);
  n.storage.append(rd.entries);
  if (rd.hardState) n.storage.setHardState(rd.hardState);
  n.node.advance();
  // the leader's own acknowledgement arrives with advance(): now it is committed and handed out
  n.handle();
  assertEquals(n.values(), ["a"]);
});

Deno.test("three nodes elect one leader and replicate in order", () => {
  const nodes = cluster(3);
  nodes.get(1n)!.node.campaign();
  settle(nodes);
  const leaders = leaderOf(nodes);
  assertEquals(leaders.length, 1);
  assertEquals(leaders[0].id, 1n);
  for (let i = 0; i < 20; i++) leaders[0].node.propose(enc.encode(`v${i}`));
  settle(nodes);
  const want = Array.from({ length: 20 }, (_, i) => `v${i}`);
  for (const n of nodes.values()) assertEquals(n.values(), want);
});

Deno.test("followers forward proposals; proposals without a leader are dropped", () => {
  const nodes = cluster(3);
  assertThrows(() => nodes.get(2n)!.node.propose(enc.encode("x")), ErrProposalDropped);
  nodes.get(1n)!.node.campaign();
  settle(nodes);
  nodes.get(3n)!.node.propose(enc.encode("from-3"));
  settle(nodes);
  for (const n of nodes.values()) assertEquals(n.values(), ["from-3"]);
});

Deno.test("a follower's proposals and read requests for the leader can be taken ahead of its Ready", () => {
  const nodes = cluster(3);
  nodes.get(1n)!.node.campaign();
  settle(nodes);
  const follower = nodes.get(3n)!;
  // the follower has an append to write (its Ready is being handled) when the proposal comes
  nodes.get(1n)!.node.propose(enc.encode("first"));
  for (const m of nodes.get(1n)!.handle()) if (m.to === 3n) follower.node.step(m);
  const rd = follower.node.ready();
  assert(rd.entries.length > 0, "the follower has entries to write");
  follower.node.propose(enc.encode("from-3"));
  follower.node.readIndex(enc.encode("read-3"));
  const forwarded = follower.node.takeForwarded();
  assertEquals(forwarded.map((m) => [m.type, m.to]), [[MessageType.Prop, 1n], [MessageType.ReadIndex, 1n]]);
  assertEquals(follower.node.takeForwarded(), [], "taken once");
  // the Ready in progress ends as usual; the next one no longer carries them
  follower.storage.append(rd.entries);
  if (rd.hardState) follower.storage.setHardState(rd.hardState);
  follower.node.advance();
  for (const m of rd.messages) nodes.get(m.to)!.node.step(m);
  const next = follower.handle();
  assertEquals(next.filter((m) => m.type === MessageType.Prop || m.type === MessageType.ReadIndex), []);
  for (const m of [...forwarded, ...next]) nodes.get(m.to)!.node.step(m);
  settle(nodes);
  for (const n of nodes.values()) assertEquals(n.values(), ["first", "from-3"]);
  assertEquals(follower.readStates.map((r) => r.ctx), ["read-3"]);
  // a leader forwards nothing
  nodes.get(1n)!.node.propose(enc.encode("at-leader"));
  assertEquals(nodes.get(1n)!.node.takeForwarded(), []);
});

Deno.test("a batch of proposals is one append message per follower", () => {
  const nodes = cluster(3);
  nodes.get(1n)!.node.campaign();
  settle(nodes);
  const leader = nodes.get(1n)!;
  leader.node.proposeBatch([enc.encode("a"), enc.encode("b"), enc.encode("c")]);
  const msgs = leader.handle();
  const apps = msgs.filter((m) => m.type === MessageType.App);
  assertEquals(apps.map((m) => m.to).sort(), [2n, 3n]);
  assert(apps.every((m) => m.entries.length === 3));
});

Deno.test("ReadIndex confirms leadership and answers locally and for a follower", () => {
  const nodes = cluster(3);
  nodes.get(1n)!.node.campaign();
  settle(nodes);
  nodes.get(1n)!.node.propose(enc.encode("w"));
  settle(nodes);
  nodes.get(1n)!.node.readIndex(enc.encode("r1"));
  nodes.get(2n)!.node.readIndex(enc.encode("r2"));
  settle(nodes);
  const commit = nodes.get(1n)!.node.status().hardState.commit;
  assertEquals(nodes.get(1n)!.readStates, [{ index: commit, ctx: "r1" }]);
  assertEquals(nodes.get(2n)!.readStates, [{ index: commit, ctx: "r2" }]);
});

Deno.test("an isolated leader cannot confirm a read and steps down (CheckQuorum)", () => {
  const nodes = cluster(3);
  nodes.get(1n)!.node.campaign();
  settle(nodes);
  const cut = new Set([1n]);
  nodes.get(1n)!.node.readIndex(enc.encode("stale?"));
  settle(nodes, cut);
  assertEquals(nodes.get(1n)!.readStates, []);
  for (let i = 0; i < 25; i++) {
    for (const n of nodes.values()) n.node.tick();
    settle(nodes, cut);
  }
  assertEquals(nodes.get(1n)!.node.status().softState.raftState, StateType.Follower);
  const leaders = leaderOf(nodes);
  assertEquals(leaders.length, 1);
  assert(leaders[0].id !== 1n);
});

Deno.test("PreVote: a partitioned follower does not bump its term nor disrupt the leader on return", () => {
  const nodes = cluster(3);
  nodes.get(1n)!.node.campaign();
  settle(nodes);
  const term = nodes.get(1n)!.node.status().hardState.term;
  const cut = new Set([3n]);
  for (let i = 0; i < 60; i++) {
    for (const n of nodes.values()) n.node.tick();
    settle(nodes, cut);
  }
  assertEquals(nodes.get(3n)!.node.status().hardState.term, term);
  settle(nodes);
  for (let i = 0; i < 5; i++) {
    for (const n of nodes.values()) n.node.tick();
    settle(nodes);
  }
  assertEquals(leaderOf(nodes).map((n) => n.id), [1n]);
  assertEquals(nodes.get(1n)!.node.status().hardState.term, term);
});

Deno.test("leader transfer hands leadership to an up-to-date follower", () => {
  const nodes = cluster(3);
  nodes.get(1n)!.node.campaign();
  settle(nodes);
  nodes.get(1n)!.node.propose(enc.encode("x"));
  settle(nodes);
  nodes.get(1n)!.node.transferLeader(2n);
  settle(nodes);
  assertEquals(leaderOf(nodes).map((n) => n.id), [2n]);
  nodes.get(2n)!.node.propose(enc.encode("after"));
  settle(nodes);
  for (const n of nodes.values()) assertEquals(n.values(), ["x", "after"]);
});

Deno.test("a follower behind the leader's compacted log catches up through a snapshot", () => {
  const nodes = cluster(3);
  nodes.get(1n)!.node.campaign();
  settle(nodes);
  const cut = new Set([3n]);
  const leader = nodes.get(1n)!;
  for (let i = 0; i < 30; i++) leader.node.propose(enc.encode(`k${i}`));
  settle(nodes, cut);
  const applied = leader.node.status().applied;
  leader.storage.createSnapshot(applied, {
    voters: [1n, 2n, 3n],
    learners: [],
    votersOutgoing: [],
    learnersNext: [],
    autoLeave: false,
  }, enc.encode(JSON.stringify(leader.values())));
  leader.storage.compact(applied);
  // heal and let heartbeats find the lagging follower
  for (let i = 0; i < 5; i++) {
    leader.node.tick();
    const msgs = leader.handle();
    for (const m of msgs) nodes.get(m.to)?.node.step(m);
    settle(nodes);
  }
  const follower = nodes.get(3n)!;
  assertEquals(follower.storage.snapshot().metadata.index, applied);
  assertEquals(follower.node.status().applied, applied); // restoring the snapshot counts as applying it
  assertEquals(JSON.parse(dec.decode(follower.storage.snapshot().data)).length, 30);
  leader.node.propose(enc.encode("later"));
  settle(nodes);
  assertEquals(follower.values(), ["later"]); // entries before the snapshot came inside it
  assertEquals(leader.storage.lastIndex(), follower.storage.lastIndex());
});

Deno.test("a restarted node recovers its term, vote and log from storage", () => {
  const nodes = cluster(3);
  nodes.get(1n)!.node.campaign();
  settle(nodes);
  nodes.get(1n)!.node.propose(enc.encode("durable"));
  settle(nodes);
  const n2 = nodes.get(2n)!;
  const before = n2.node.status().hardState;
  n2.node = n2.make();
  assertEquals(n2.node.status().hardState, before);
  assertEquals(n2.storage.lastIndex(), nodes.get(1n)!.storage.lastIndex());
});

Deno.test("a snapshot is refused while committed entries are handed out but not applied", () => {
  const nodes = cluster(3);
  nodes.get(1n)!.node.campaign();
  settle(nodes);
  const leader = nodes.get(1n)!;
  const follower = nodes.get(2n)!;
  leader.node.propose(enc.encode("a"));
  settle(nodes);
  // the follower takes a Ready holding a newly committed entry, and has not applied it yet
  leader.node.propose(enc.encode("b"));
  for (const m of leader.handle()) if (m.to === 2n) follower.node.step(m);
  for (const m of follower.handle()) leader.node.step(m);
  for (const m of leader.handle()) if (m.to === 2n) follower.node.step(m);
  const rd = follower.node.ready();
  assert(
    rd.committedEntries.some((e) => dec.decode(e.data) === "b"),
    "the entry is committed and handed out",
  );
  const term = follower.node.status().hardState.term;
  const snapshot = {
    metadata: {
      index: 100,
      term,
      confState: { voters: [1n, 2n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    },
    data: new Uint8Array(),
  };
  const snap: Message = {
    ...rd.messages[0],
    type: MessageType.Snap,
    from: 1n,
    to: 2n,
    term,
    snapshot,
    entries: [],
  };
  follower.node.step(snap);
  // refused: a configuration change among the handed-out entries would be applied over the snapshot's
  assertEquals(follower.node.status().hardState.commit < 100, true);
  follower.storage.append(rd.entries);
  if (rd.hardState) follower.storage.setHardState(rd.hardState);
  follower.node.advance();
  // once applied, the same snapshot is taken
  follower.node.step(snap);
  const after = follower.node.ready();
  assertEquals(after.snapshot?.metadata.index, 100);
});
