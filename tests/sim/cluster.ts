/**
 * A deterministic simulation of a Raft cluster: N `RawNode`s driven over a faulty virtual network with
 * crashes and restarts, a key-value state machine applied from committed entries, clients issuing
 * writes (proposals) and linearizable reads (ReadIndex), and checks of Raft's safety properties after
 * every event.
 *
 * Everything random comes from one seeded {@linkcode Prng}, and time is virtual ({@linkcode EventQueue}),
 * so a seed replays exactly. A run has two phases:
 *
 * 1. Chaos: message loss, delay, reordering and duplication; symmetric and asymmetric partitions; node
 *    crashes (losing whatever was not persisted, and messages in flight) and restarts from persisted
 *    storage; frozen processes (long pauses); forced elections and leader transfers; snapshots and log
 *    compaction; persistence that takes time while messages keep arriving; and, in some runs,
 *    membership changes (fresh members added, members removed).
 * 2. Heal: the network becomes reliable and crashed nodes restart. A stable leader must emerge within a
 *    bound; after that every write a client issues must commit, and every read complete, within a
 *    bound; and all members must converge to the same state.
 *
 * Checked after every event: at most one leader per term (election safety), a leader never drops or
 * rewrites its own entries (append-only), entries with the same index and term are the same entry and
 * follow the same term (log matching), a new leader of term T holds every entry committed before T
 * (leader completeness), no index is ever committed or applied as two different entries (state machine
 * safety), commit indexes never go back, persisted terms never go back, a node never persists two
 * different votes in one term (even across restarts), a persisted commit index never exceeds the
 * persisted log, entries are applied in order, and the core's applied index follows the application's.
 * At the end all members must hold the same data, and the client history is checked for
 * linearizability.
 *
 * A violation throws {@linkcode SimFailure}, which names the seed and how to replay it.
 *
 * @module
 */
import { decodeConfChange } from "../../raft/conf_change.ts";
import { ErrProposalDropped, ErrStepPeerNotFound, RawNode } from "../../raft/node.ts";
import { MemoryStorage } from "../../raft/storage.ts";
import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type NodeId,
  NONE,
  type ReadState,
  type Ready,
  type Snapshot,
  StateType,
} from "../../raft/types.ts";
import { NO_LIMIT } from "../../raft/util.ts";
import { checkKv, type KvInput, type KvOperation, type KvOutput } from "./linearizability.ts";
import { CALM, EventQueue, type LossReason, Network, type NetworkStats } from "./network.ts";
import { Prng } from "./prng.ts";
import {
  digestOf,
  failureReason,
  SeededRunFailure,
  SimTrace,
  SimViolation,
  TermLeaders,
  TermVotes,
} from "./sim_checks.ts";

/**
 * Deliberately broken harness behaviours, used only to prove that the checks catch what they claim to.
 * - `stale-reads`: reads are answered from the local state machine without ReadIndex.
 * - `forget-vote`: a restarting node loses its persisted vote (as if the vote was never fsynced).
 * - `ack-on-propose`: a write is acknowledged as soon as it is proposed, before it commits.
 */
export type Sabotage = "stale-reads" | "forget-vote" | "ack-on-propose";

/** The knobs of one run; {@linkcode optionsForSeed} derives varied ones from a seed. */
export interface SimOptions {
  seed: number;
  /** Cluster size. */
  nodes: number;
  /** Virtual ms of the fault phase. */
  chaosMs: number;
  /** Mean virtual ms between fault changes during the chaos phase. */
  faultEveryMs: number;
  /** Concurrent clients. */
  clients: number;
  /** Number of distinct keys (fewer keys, more contention). */
  keys: number;
  /** A client gives up on an operation after this long; it stays pending in the history. */
  opTimeoutMs: number;
  /** After healing, a stable leader must exist within this long. */
  settleMs: number;
  /** How long clients keep working once the stable leader exists. */
  livenessMs: number;
  /** Once the stable leader exists, every write must commit and every read complete within this long. */
  commitBoundMs: number;
  /** A node snapshots and compacts its log after this many applied entries; 0 never. */
  snapshotEvery: number;
  /** Probability that persisting a Ready takes virtual time (messages keep arriving meanwhile). */
  asyncPersistRate: number;
  maxSizePerMsg: number;
  maxInflightMsgs: number;
  /** Most bytes of committed entries handed out in one Ready (small values split applying). */
  maxCommittedSizePerReady: number;
  /** Virtual ms between ticks of each node (each node drifts by up to ±1). */
  tickMs: number;
  /**
   * Change membership during the chaos phase: new members (fresh IDs, empty storage) are added and
   * members removed, one conf change at a time. A removed member shuts down once it applies its removal.
   */
  membership: boolean;
  /** Keep a readable trace (slower; a failing run is replayed with it to explain the failure). */
  trace: boolean;
  sabotage?: Sabotage;
}

/** Run options that vary with the seed: cluster size, fault rate, snapshot policy, batching. */
export function optionsForSeed(seed: number, overrides: Partial<SimOptions> = {}): SimOptions {
  const rng = new Prng(seed ^ 0x5eed5eed);
  return {
    seed,
    nodes: rng.chance(0.5) ? 3 : 5,
    chaosMs: rng.range(1500, 3000),
    faultEveryMs: rng.pick([60, 120, 250]),
    clients: rng.range(2, 4),
    keys: rng.range(1, 3),
    opTimeoutMs: 600,
    settleMs: 4000,
    livenessMs: 400,
    commitBoundMs: 500,
    snapshotEvery: rng.pick([0, 8, 20, 50]),
    asyncPersistRate: rng.pick([0, 0.3, 1]),
    maxSizePerMsg: rng.pick([200, 1 << 20]),
    maxInflightMsgs: rng.pick([2, 256]),
    maxCommittedSizePerReady: rng.pick([150, NO_LIMIT]),
    tickMs: 10,
    membership: rng.chance(0.3),
    trace: false,
    ...overrides,
  };
}

/** The command that replays a seed. */
export function replayCommand(seed: number): string {
  return `SIM_SEED=${seed} deno test -A tests/sim/raft_sim_test.ts`;
}

/** A safety or liveness violation (or an exception from the Raft core) in a simulated run. */
export class SimFailure extends SeededRunFailure {
  constructor(seed: number, time: number, reason: string, trace: string[]) {
    super("raft simulation", seed, time, reason, trace, replayCommand(seed));
    this.name = "SimFailure";
  }
}

/** Counters describing what a run exercised. */
export interface SimStats {
  virtualMs: number;
  events: number;
  leaders: number;
  maxTerm: number;
  maxCommit: number;
  crashes: number;
  partitions: number;
  snapshotsCreated: number;
  snapshotsSent: number;
  snapshotsInstalled: number;
  pauses: number;
  /** Membership changes committed (beyond the bootstrap configuration). */
  confChanges: number;
  readyAsync: number;
  proposalsDropped: number;
  opsCompleted: number;
  opsPending: number;
  net: NetworkStats;
}

/** What a successful run returns. */
export interface SimReport {
  options: SimOptions;
  stats: SimStats;
  history: KvOperation[];
  /** A digest of the history and final state: equal digests for equal seeds prove exact replay. */
  digest: string;
  trace: string[];
}

/** Ticks without a leader before a follower campaigns (as in etcd's defaults: 10 heartbeats). */
const ELECTION_TICK = 10;

/** At most this many members are added in one run. */
const MAX_ADDED_NODES = 3;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A client operation in the log: the key-value input plus a unique ID. */
interface LoggedOp {
  id: string;
  input: KvInput;
}

interface ClientOp {
  id: string;
  client: Client;
  op: KvOperation;
  node: SimNode;
  done: boolean;
  /** For reads: the read index once known, else -1. */
  readIndex: number;
  /** For writes: when its entry was first seen committed. */
  committedAt?: number;
}

interface Client {
  id: number;
  seq: number;
  /** Values this client saw per key (to make compare-and-set plausible). */
  seen: Map<string, string | null>;
}

interface CommittedRecord {
  term: number;
  type: EntryType;
  data: Uint8Array;
  /** The node that first saw the entry committed. */
  node: NodeId;
  /**
   * That node's term at that moment. The leader that commits an entry is the first to know, so this is
   * the term in which the entry was committed (or, if seen first elsewhere, a later one).
   */
  commitTerm: number;
}

class SimNode {
  readonly storage = new MemoryStorage();
  raw: RawNode | undefined;
  /** Bumped on every restart; 0 while the node is down. */
  incarnation = 0;
  persisting = false;
  kv = new Map<string, string>();
  applied = 0;
  confState: ConfState = { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  /** The in-memory commit index last seen in this incarnation. */
  lastCommit = 0;
  /** The process is frozen (a long GC pause, say) until this virtual time. */
  pausedUntil = 0;
  /** Removed from the cluster and shut down for good. */
  retired = false;
  /** A conf change was applied since the last snapshot: the next one must carry the new membership. */
  snapshotDue = false;
  /** While leader: the last entry seen in its log, which must stay (a leader only appends). */
  leaderMark: { term: number; index: number; entryTerm: number } | undefined;
  /** Every vote this node ever persisted, by term (kept by the checker, outside the node's storage). */
  readonly votes = new TermVotes();
  writes = new Map<string, ClientOp>();
  reads = new Map<string, ClientOp>();

  constructor(readonly id: NodeId, readonly tickMs: number, readonly rng: Prng) {}
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function encodeKv(kv: Map<string, string>): Uint8Array {
  return enc.encode(JSON.stringify([...kv].sort((a, b) => (a[0] < b[0] ? -1 : 1))));
}

function decodeKv(data: Uint8Array): Map<string, string> {
  return data.length === 0 ? new Map() : new Map(JSON.parse(dec.decode(data)));
}

function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${MessageType[m.type]} term=${m.term}`;
  if (m.type === MessageType.App || m.type === MessageType.Vote || m.type === MessageType.PreVote) {
    s += ` idx=${m.index} logTerm=${m.logTerm}`;
  }
  if (m.type === MessageType.App) s += ` ents=${m.entries.length} commit=${m.commit}`;
  if (m.type === MessageType.AppResp) s += ` idx=${m.index}${m.reject ? ` reject hint=${m.rejectHint}` : ""}`;
  if (m.type === MessageType.Heartbeat) s += ` commit=${m.commit}`;
  if (m.type === MessageType.ReadIndexResp) s += ` idx=${m.index}`;
  if (m.type === MessageType.VoteResp || m.type === MessageType.PreVoteResp) {
    s += m.reject ? " reject" : " grant";
  }
  if (m.type === MessageType.Snap && m.snapshot) {
    s += ` snap=${m.snapshot.metadata.index}/${m.snapshot.metadata.term}`;
  }
  return s;
}

function describeInput(i: KvInput): string {
  switch (i.kind) {
    case "put":
      return `put ${i.key}=${i.value}`;
    case "get":
      return `get ${i.key}`;
    case "delete":
      return `delete ${i.key}`;
    case "cas":
      return `cas ${i.key} ${i.expected}->${i.value}`;
  }
}

/** One simulated run. */
class Simulation {
  private readonly rng: Prng;
  private readonly queue = new EventQueue();
  private readonly net: Network;
  private readonly nodes: SimNode[] = [];
  private readonly byId = new Map<NodeId, SimNode>();
  private readonly history: KvOperation[] = [];
  private readonly ops: ClientOp[] = [];
  private readonly opsById = new Map<string, ClientOp>();
  private readonly dirty = new Set<SimNode>();
  private readonly tracing: SimTrace;
  private incarnations = 0;
  /** Conf change entries of the bootstrap (not counted as membership changes). */
  private bootstrapEntries = 0;

  // Safety bookkeeping.
  private readonly leaders = new TermLeaders();
  private readonly committed: CommittedRecord[] = [];
  private maxCommitted = 0;
  private readonly logRecords = new Map<
    string,
    { data: Uint8Array; type: EntryType; prevTerm: number | undefined }
  >();

  // Phases.
  private healed = false;
  private stableAt: number | undefined;
  private clientsStopped = false;
  private finished = false;

  readonly stats: SimStats;

  constructor(readonly options: SimOptions) {
    this.rng = new Prng(options.seed);
    this.tracing = new SimTrace(options.trace, () => this.queue.now);
    this.net = new Network(this.queue, this.rng.fork(), {
      deliver: (m) => this.deliver(m),
      lost: (m, reason) => this.lost(m, reason),
      incarnation: (id) => this.byId.get(id)?.incarnation ?? 0,
    });
    this.stats = {
      virtualMs: 0,
      events: 0,
      leaders: 0,
      maxTerm: 0,
      maxCommit: 0,
      crashes: 0,
      partitions: 0,
      snapshotsCreated: 0,
      snapshotsSent: 0,
      snapshotsInstalled: 0,
      pauses: 0,
      confChanges: 0,
      readyAsync: 0,
      proposalsDropped: 0,
      opsCompleted: 0,
      opsPending: 0,
      net: this.net.stats,
    };
  }

  private trace(line: () => string): void {
    this.tracing.add(line);
  }

  private fail(reason: string): never {
    throw new SimViolation(reason);
  }

  // ---- setup ---------------------------------------------------------------------------------------

  run(): SimReport {
    const o = this.options;
    for (let i = 1; i <= o.nodes; i++) {
      const tickMs = o.tickMs + this.rng.range(-1, 1);
      const node = new SimNode(BigInt(i), tickMs, this.rng.fork());
      this.nodes.push(node);
      this.byId.set(node.id, node);
    }
    const peers = this.nodes.map((n) => ({ id: n.id, context: new Uint8Array() }));
    for (const node of this.nodes) {
      this.start(node, false);
      node.raw!.bootstrap(peers);
      this.dirty.add(node);
      this.queue.at(this.rng.int(node.tickMs), () => this.tick(node));
    }
    this.bootstrapEntries = peers.length;
    for (let c = 0; c < o.clients; c++) {
      const client: Client = { id: c + 1, seq: 0, seen: new Map() };
      this.queue.at(this.rng.range(0, 50), () => this.issue(client));
    }
    this.queue.at(this.rng.range(0, o.faultEveryMs), () => this.fault());
    this.queue.at(o.chaosMs, () => this.heal());
    this.flush();
    const hardLimit = o.chaosMs + o.settleMs + o.livenessMs + o.opTimeoutMs + 5000;
    while (!this.finished) {
      if (!this.queue.runNext()) this.fail("the event queue ran dry");
      this.stats.events++;
      this.flush();
      if (this.queue.now > hardLimit) this.fail("the run did not finish in time");
    }
    this.finalChecks();
    this.stats.virtualMs = this.queue.now;
    return {
      options: o,
      stats: this.stats,
      history: this.history,
      digest: this.digest(),
      trace: this.tracing.lines,
    };
  }

  /** Starts (or restarts) a node from its persisted storage. */
  private start(node: SimNode, restart: boolean): void {
    const o = this.options;
    const snap = node.storage.snapshot();
    if (restart && o.sabotage === "forget-vote") {
      node.storage.setHardState({ ...node.storage.getHardState(), vote: NONE });
    }
    node.kv = decodeKv(snap.data);
    node.applied = snap.metadata.index;
    node.confState = snap.metadata.confState;
    node.incarnation = ++this.incarnations;
    node.persisting = false;
    node.pausedUntil = 0;
    node.raw = new RawNode({
      id: node.id,
      electionTick: ELECTION_TICK,
      heartbeatTick: 1,
      storage: node.storage,
      applied: node.applied,
      checkQuorum: true,
      preVote: true,
      maxSizePerMsg: o.maxSizePerMsg,
      maxInflightMsgs: o.maxInflightMsgs,
      maxCommittedSizePerReady: o.maxCommittedSizePerReady,
      random: () => node.rng.float(),
    });
    node.lastCommit = node.raw.raft.log.committed;
    const hs = node.storage.getHardState();
    if (node.lastCommit < hs.commit) {
      this.fail(
        `node ${node.id} restarted with commit ${node.lastCommit} below its persisted commit ${hs.commit}`,
      );
    }
    this.trace(() =>
      `${
        restart ? "restart" : "start"
      } node ${node.id}: term=${hs.term} vote=${hs.vote} commit=${hs.commit} ` +
      `snap=${snap.metadata.index} last=${node.storage.lastIndex()}`
    );
  }

  private tick(node: SimNode): void {
    if (node.raw && node.pausedUntil <= this.queue.now) {
      node.raw.tick();
      this.dirty.add(node);
    }
    if (!this.finished) this.queue.after(node.tickMs, () => this.tick(node));
  }

  // ---- faults --------------------------------------------------------------------------------------

  private alive(): SimNode[] {
    return this.nodes.filter((n) => n.raw !== undefined);
  }

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes) {
      if (n.raw?.raft.state === StateType.Leader && (!best || n.raw.raft.term > best.raw!.raft.term)) {
        best = n;
      }
    }
    return best;
  }

  private fault(): void {
    if (this.healed) return;
    const rng = this.rng;
    const o = this.options;
    const ids = this.nodes.filter((n) => !n.retired).map((n) => n.id);
    const r = rng.int(100);
    if (o.membership && rng.chance(0.2)) {
      this.changeMembership();
    } else if (r < 15) {
      this.net.heal();
      this.trace(() => "fault: heal partitions");
    } else if (r < 30) {
      // A symmetric split into two groups.
      const order = rng.shuffle([...ids]);
      const cut = rng.range(1, ids.length - 1);
      const a = new Set(order.slice(0, cut));
      this.net.heal();
      for (const x of ids) for (const y of ids) if (a.has(x) !== a.has(y)) this.net.block(x, y);
      this.stats.partitions++;
      this.trace(() => `fault: partition ${[...a].join(",")} | ${order.slice(cut).join(",")}`);
    } else if (r < 40) {
      // Isolate the leader (or a random node), possibly in one direction only.
      const victim = (rng.chance(0.7) ? this.leader()?.id : undefined) ?? rng.pick(ids);
      const mode = rng.int(3);
      this.net.heal();
      for (const y of ids) {
        if (y === victim) continue;
        if (mode !== 1) this.net.block(victim, y);
        if (mode !== 2) this.net.block(y, victim);
      }
      this.stats.partitions++;
      this.trace(() => `fault: isolate ${victim} (${["both ways", "cannot send", "cannot receive"][mode]})`);
    } else if (r < 50) {
      // Random one-way link failures.
      this.net.heal();
      for (const x of ids) for (const y of ids) if (x !== y && rng.chance(0.3)) this.net.block(x, y);
      this.stats.partitions++;
      this.trace(() => `fault: links ${this.net.describePartitions()}`);
    } else if (r < 60) {
      const victims = this.alive();
      if (victims.length > 0) {
        const victim = rng.chance(0.4) ? (this.leader() ?? rng.pick(victims)) : rng.pick(victims);
        this.crash(victim);
        const downFor = rng.range(20, 800);
        this.queue.after(downFor, () => {
          if (!this.healed && !victim.raw && !victim.retired) this.restart(victim);
        });
      }
    } else if (r < 66) {
      const victims = this.alive();
      if (victims.length > 0) {
        const victim = rng.chance(0.5) ? (this.leader() ?? rng.pick(victims)) : rng.pick(victims);
        const pause = rng.range(50, 600);
        this.stats.pauses++;
        victim.pausedUntil = Math.max(victim.pausedUntil, this.queue.now + pause);
        this.trace(() => `fault: node ${victim.id} freezes for ${pause}ms`);
        this.queue.at(victim.pausedUntil, () => this.dirty.add(victim));
      }
    } else if (r < 80) {
      const f = this.net.faults;
      f.dropRate = rng.pick([0, 0.05, 0.2, 0.4]);
      f.duplicateRate = rng.pick([0, 0.05, 0.2]);
      f.minDelay = rng.range(0, 3);
      f.maxDelay = f.minDelay + rng.pick([2, 10, 40]);
      f.slowRate = rng.pick([0, 0.02, 0.1]);
      this.trace(() => `fault: network ${JSON.stringify(f)}`);
    } else if (r < 88) {
      const l = this.leader();
      if (l?.raw) {
        const to = rng.pick(ids.filter((id) => id !== l.id));
        this.trace(() => `fault: transfer leadership ${l.id} -> ${to}`);
        l.raw.transferLeader(to);
        this.dirty.add(l);
      }
    } else {
      const alive = this.alive();
      if (alive.length > 0) {
        const n = rng.pick(alive);
        this.trace(() => `fault: node ${n.id} campaigns`);
        n.raw!.campaign();
        this.dirty.add(n);
      }
    }
    this.queue.after(rng.range(1, 2 * o.faultEveryMs), () => this.fault());
  }

  /** Proposes adding a fresh member (started at once, as an operator would) or removing one. */
  private changeMembership(): void {
    const l = this.leader();
    if (!l?.raw) return;
    const voters = l.raw.raft.trk.voterNodes();
    let cc: ConfChange;
    if (
      this.nodes.length < this.options.nodes + MAX_ADDED_NODES && (voters.length <= 2 || this.rng.chance(0.5))
    ) {
      const node = this.addNode();
      cc = { type: ConfChangeType.AddNode, nodeId: node.id, context: new Uint8Array() };
    } else if (voters.length > 2) {
      cc = { type: ConfChangeType.RemoveNode, nodeId: this.rng.pick(voters), context: new Uint8Array() };
    } else {
      return;
    }
    this.trace(() => `fault: leader ${l.id} proposes ${ConfChangeType[cc.type]} ${cc.nodeId}`);
    try {
      l.raw.proposeConfChange(cc);
    } catch (err) {
      if (!(err instanceof ErrProposalDropped)) throw err;
    }
    this.dirty.add(l);
  }

  /** Creates and starts a node with a new ID and empty storage; it learns the cluster from the leader. */
  private addNode(): SimNode {
    const node = new SimNode(
      BigInt(this.nodes.length + 1),
      this.options.tickMs + this.rng.range(-1, 1),
      this.rng.fork(),
    );
    this.nodes.push(node);
    this.byId.set(node.id, node);
    this.start(node, false);
    this.dirty.add(node);
    this.queue.after(this.rng.int(node.tickMs), () => this.tick(node));
    return node;
  }

  /** The voters as the most advanced node has applied them (what an operator would list). */
  private members(): NodeId[] {
    let best: SimNode | undefined;
    for (const n of this.nodes) if (n.raw && (!best || n.applied > best.applied)) best = n;
    return best ? best.confState.voters : [];
  }

  /** The stable leader's voters as nodes. */
  private leaderVoters(l: SimNode): SimNode[] {
    return l.raw!.raft.trk.voterNodes().map((id) => this.byId.get(id)!);
  }

  private crash(node: SimNode): void {
    this.stats.crashes++;
    this.trace(() => `crash node ${node.id} (unpersisted state and messages in flight are lost)`);
    node.raw = undefined;
    node.leaderMark = undefined;
    node.incarnation = 0;
    node.persisting = false;
    for (const op of [...node.writes.values(), ...node.reads.values()]) this.finish(op, undefined);
    node.writes.clear();
    node.reads.clear();
  }

  private restart(node: SimNode): void {
    this.start(node, true);
    this.dirty.add(node);
  }

  private heal(): void {
    this.healed = true;
    this.net.heal();
    this.net.faults = { ...CALM };
    for (const n of this.nodes) if (!n.raw && !n.retired) this.restart(n);
    this.trace(() => "heal: network reliable, every node up");
    const deadline = this.queue.now + this.options.settleMs;
    // A leader elected during the chaos may still step down (its quorum check covers the time before the
    // heal), so the leader must hold for two election timeouts before it counts as stable.
    const hold = 2 * ELECTION_TICK * this.options.tickMs + 50;
    let since: { time: number; leader: NodeId; term: number } | undefined;
    const watch = (): void => {
      const l = this.isStable() ? this.leader()! : undefined;
      if (!l) since = undefined;
      else if (!since || since.leader !== l.id || since.term !== l.raw!.raft.term) {
        since = { time: this.queue.now, leader: l.id, term: l.raw!.raft.term };
      } else if (this.queue.now - since.time >= hold) {
        this.stableAt = this.queue.now;
        this.trace(() => `stable leader ${l.id}`);
        this.queue.after(this.options.livenessMs, () => this.stopClients());
        return;
      }
      if (this.queue.now > deadline) {
        const states = this.nodes.map((n) =>
          n.raw
            ? `${n.id}:${StateType[n.raw.raft.state]}/term ${n.raw.raft.term}/lead ${n.raw.raft.lead}`
            : `${n.id}:down`
        );
        this.fail(
          `liveness: no stable leader ${this.options.settleMs}ms after healing (${states.join(", ")})`,
        );
      }
      this.queue.after(5, watch);
    };
    // Messages of the chaos phase that are still in flight (a late TimeoutNow, say) may legitimately
    // change the leader: judge stability only once they are gone and no node is frozen.
    const frozen = Math.max(0, ...this.nodes.map((n) => n.pausedUntil));
    this.queue.at(Math.max(this.net.drainedBy, frozen), watch);
  }

  /** One leader, not handing over leadership, a voter itself, every voter up and following it in its term. */
  private isStable(): boolean {
    const l = this.leader();
    if (!l || l.raw!.raft.leadTransferee !== NONE) return false;
    const term = l.raw!.raft.term;
    const voters = this.leaderVoters(l);
    return voters.includes(l) &&
      voters.every((n) => n.raw && n.raw.raft.term === term && n.raw.raft.lead === l.id);
  }

  private stopClients(): void {
    this.clientsStopped = true;
    this.trace(() => "clients stop issuing operations");
    const deadline = this.queue.now + this.options.opTimeoutMs + 2000;
    const watch = (): void => {
      if (this.ops.every((op) => op.done) && this.converged()) {
        this.finished = true;
        return;
      }
      if (this.queue.now > deadline) {
        const applied = this.nodes.map((n) =>
          `${n.id}:applied ${n.applied}/commit ${n.raw?.raft.log.committed}`
        );
        this.fail(`liveness: the cluster did not converge (${applied.join(", ")})`);
      }
      this.queue.after(5, watch);
    };
    this.queue.after(0, watch);
  }

  private converged(): boolean {
    const l = this.leader();
    if (!l || !this.isStable()) return false;
    const commit = l.raw!.raft.log.committed;
    return this.leaderVoters(l).every((n) => n.applied === commit && !n.persisting && !n.raw!.hasReady());
  }

  // ---- network -------------------------------------------------------------------------------------

  private deliver(m: Message): void {
    const node = this.byId.get(m.to)!;
    if (!node.raw) return;
    if (node.pausedUntil > this.queue.now) {
      // A frozen process reads its socket only when it wakes up.
      const inc = node.incarnation;
      this.queue.at(node.pausedUntil, () => {
        if (node.incarnation === inc) this.deliver(m);
      });
      return;
    }
    this.trace(() => `deliver ${describeMessage(m)}`);
    try {
      node.raw.step(m);
    } catch (err) {
      // A forwarded proposal that reaches a node without a leader, or a response from a removed peer.
      if (!(err instanceof ErrProposalDropped) && !(err instanceof ErrStepPeerNotFound)) throw err;
    }
    this.dirty.add(node);
    if (m.type === MessageType.Snap) this.reportSnapshot(m, false);
  }

  private lost(m: Message, reason: LossReason): void {
    if (this.options.trace && m.type !== MessageType.Heartbeat && m.type !== MessageType.HeartbeatResp) {
      this.trace(() => `lost (${reason}) ${describeMessage(m)}`);
    }
    // The sender's transport notices a failed snapshot transfer (unless the sender itself went down).
    if (reason === "sender crashed") return;
    if (m.type === MessageType.Snap) this.reportSnapshot(m, true);
    const sender = this.byId.get(m.from)!;
    if (reason === "partitioned" && sender.raw && this.rng.chance(0.5)) {
      sender.raw.reportUnreachable(m.to);
      this.dirty.add(sender);
    }
  }

  private reportSnapshot(m: Message, failed: boolean): void {
    const sender = this.byId.get(m.from)!;
    if (!sender.raw) return;
    sender.raw.reportSnapshot(m.to, failed);
    this.dirty.add(sender);
  }

  // ---- the Ready loop ------------------------------------------------------------------------------

  private flush(): void {
    while (this.dirty.size > 0) {
      const node: SimNode = this.dirty.values().next().value!;
      this.dirty.delete(node);
      if (!node.raw) continue;
      this.checkNode(node);
      if (node.persisting || node.pausedUntil > this.queue.now || !node.raw.hasReady()) continue;
      const rd = node.raw.ready();
      const inc = node.incarnation;
      node.persisting = true;
      const done = (): void => {
        if (node.incarnation !== inc) return; // crashed meanwhile: the Ready is lost
        node.persisting = false;
        this.handleReady(node, rd);
        this.dirty.add(node);
      };
      if (this.rng.chance(this.options.asyncPersistRate)) {
        this.stats.readyAsync++;
        this.queue.after(this.rng.range(1, 4), done);
      } else {
        done();
      }
    }
  }

  private handleReady(node: SimNode, rd: Ready): void {
    const raw = node.raw!;
    const s = node.storage;
    this.trace(() => {
      const span = (
        es: Entry[],
      ): string => (es.length === 0 ? "-" : `${es[0].index}..${es[es.length - 1].index}`);
      const hs = rd.hardState ? ` hs=${rd.hardState.term}/${rd.hardState.vote}/${rd.hardState.commit}` : "";
      const soft = rd.softState ? ` ${StateType[rd.softState.raftState]} lead=${rd.softState.lead}` : "";
      const rs = rd.readStates.map((r) => `${dec.decode(r.requestCtx)}@${r.index}`).join(",");
      return `node ${node.id} ready:${soft}${hs} persist ${span(rd.entries)} apply ${
        span(rd.committedEntries)
      }` +
        (rd.snapshot ? ` snap ${rd.snapshot.metadata.index}` : "") + (rs ? ` reads ${rs}` : "");
    });
    if (rd.snapshot) s.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) {
      s.append(rd.entries);
      this.checkLogMatching(node, rd.entries);
    }
    if (rd.hardState) {
      this.checkHardState(node, s.getHardState(), rd.hardState);
      s.setHardState(rd.hardState);
    }
    const persisted = s.getHardState();
    if (persisted.commit > s.lastIndex()) {
      this.fail(
        `node ${node.id} persisted commit ${persisted.commit} beyond its persisted log (${s.lastIndex()})`,
      );
    }
    for (const m of rd.messages) {
      if (m.type === MessageType.Snap) this.stats.snapshotsSent++;
      if (this.options.trace && m.type !== MessageType.Heartbeat && m.type !== MessageType.HeartbeatResp) {
        this.trace(() => `send ${describeMessage(m)}`);
      }
      this.net.send(m);
    }
    if (rd.snapshot) this.installSnapshot(node, rd.snapshot);
    for (const e of rd.committedEntries) this.apply(node, e);
    for (const rs of rd.readStates) this.readState(node, rs);
    raw.advance();
    // The core's applied index must follow the application's, snapshots included (the core relies on it,
    // e.g. to decide whether conf changes are still unapplied before campaigning).
    const coreApplied = raw.status().applied;
    if (coreApplied !== node.applied) {
      this.fail(
        `node ${node.id}: raft reports applied index ${coreApplied} after advance(), but the application ` +
          `applied up to ${node.applied}${rd.snapshot ? ` (snapshot ${rd.snapshot.metadata.index})` : ""}`,
      );
    }
    this.maybeCompact(node);
    this.serveReads(node);
  }

  private installSnapshot(node: SimNode, snap: Snapshot): void {
    const index = snap.metadata.index;
    if (index <= node.applied) {
      this.fail(`node ${node.id} was handed snapshot ${index} although it applied up to ${node.applied}`);
    }
    this.stats.snapshotsInstalled++;
    this.trace(() => `node ${node.id} installs snapshot ${index}/${snap.metadata.term}`);
    node.kv = decodeKv(snap.data);
    node.applied = index;
    node.confState = snap.metadata.confState;
  }

  private apply(node: SimNode, e: Entry): void {
    if (e.index !== node.applied + 1) {
      this.fail(`node ${node.id} applies entry ${e.index} after ${node.applied}: not contiguous`);
    }
    this.recordCommitted(node, e);
    node.applied = e.index;
    if (e.type === EntryType.ConfChange) {
      const cc = decodeConfChange(e.data);
      node.confState = node.raw!.applyConfChange(cc);
      node.snapshotDue = true;
      if (cc.type === ConfChangeType.RemoveNode && cc.nodeId === node.id && !node.retired) {
        // Like an etcd member that learns it was removed: it stops for good (after this Ready).
        node.retired = true;
        this.trace(() => `node ${node.id} applied its own removal and shuts down`);
        this.queue.after(0, () => {
          if (node.raw) this.crash(node);
        });
      }
      return;
    }
    if (e.data.length === 0) return; // a new leader's empty entry
    const logged = JSON.parse(dec.decode(e.data)) as LoggedOp;
    const output = this.execute(node.kv, logged.input);
    const op = node.writes.get(logged.id);
    if (op) {
      node.writes.delete(logged.id);
      this.finish(op, output);
    }
  }

  private execute(kv: Map<string, string>, input: KvInput): KvOutput {
    const before = kv.get(input.key) ?? null;
    switch (input.kind) {
      case "put":
        kv.set(input.key, input.value);
        return {};
      case "delete":
        kv.delete(input.key);
        return { deleted: before === null ? 0 : 1 };
      case "cas": {
        if (before !== input.expected) return { succeeded: false };
        if (input.value === null) kv.delete(input.key);
        else kv.set(input.key, input.value);
        return { succeeded: true };
      }
      case "get":
        return { value: before };
    }
  }

  private maybeCompact(node: SimNode): void {
    const every = this.options.snapshotEvery;
    const s = node.storage;
    if (every === 0 || (node.applied - s.snapshot().metadata.index < every && !node.snapshotDue)) return;
    if (node.applied <= s.snapshot().metadata.index) return;
    node.snapshotDue = false;
    s.createSnapshot(node.applied, node.confState, encodeKv(node.kv));
    // Keep a few entries so that slightly lagging followers can still be caught up from the log.
    const compactTo = node.applied - this.rng.range(0, 3);
    if (compactTo >= s.firstIndex()) s.compact(compactTo);
    this.stats.snapshotsCreated++;
    this.trace(() => `node ${node.id} snapshots at ${node.applied}, log now starts at ${s.firstIndex()}`);
  }

  // ---- clients -------------------------------------------------------------------------------------

  private issue(client: Client): void {
    if (this.clientsStopped) return;
    const rng = this.rng;
    const retry = (): void => this.queue.after(rng.range(5, 30), () => this.issue(client));
    const members = this.members();
    if (members.length === 0) return retry();
    const node = this.byId.get(rng.pick(members))!;
    if (!node.raw || node.pausedUntil > this.queue.now) return retry(); // refused, or no answer
    const key = `k${rng.int(this.options.keys)}`;
    const id = `${client.id}.${++client.seq}`;
    const r = rng.int(100);
    let input: KvInput;
    if (r < 40) input = { kind: "get", key };
    else if (r < 70) input = { kind: "put", key, value: id };
    else if (r < 80) input = { kind: "delete", key };
    else {
      const expected = rng.chance(0.8)
        ? (client.seen.get(key) ?? null)
        : `${rng.range(1, 3)}.${rng.range(1, 20)}`;
      input = { kind: "cas", key, expected, value: rng.chance(0.9) ? id : null };
    }
    const op: ClientOp = {
      id,
      client,
      node,
      done: false,
      readIndex: -1,
      op: { client: client.id, input, call: this.queue.now },
    };
    if (input.kind === "get") {
      if (this.options.sabotage === "stale-reads") {
        this.record(op);
        this.finish(op, { value: node.kv.get(key) ?? null });
        return;
      }
      // etcd answers "no leader" at once rather than queueing the read.
      if (node.raw.raft.lead === NONE) return retry();
      node.raw.readIndex(enc.encode(id));
      node.reads.set(id, op);
    } else {
      try {
        node.raw.propose(enc.encode(JSON.stringify({ id, input } satisfies LoggedOp)));
      } catch (err) {
        if (!(err instanceof ErrProposalDropped)) throw err;
        this.stats.proposalsDropped++;
        if (this.stableAt !== undefined) {
          this.fail(
            `liveness: node ${node.id} dropped a proposal although leader ${this.leader()?.id} is stable`,
          );
        }
        return retry();
      }
      if (this.options.sabotage === "ack-on-propose") {
        this.record(op);
        this.finish(op, this.execute(new Map(node.kv), input));
        this.dirty.add(node);
        return;
      }
      node.writes.set(id, op);
    }
    this.record(op);
    this.dirty.add(node);
    this.queue.after(this.options.opTimeoutMs, () => {
      if (op.done) return;
      op.node.writes.delete(id);
      op.node.reads.delete(id);
      this.finish(op, undefined);
    });
  }

  private record(op: ClientOp): void {
    this.history.push(op.op);
    this.ops.push(op);
    this.opsById.set(op.id, op);
    this.trace(() =>
      `client ${op.client.id} calls ${describeInput(op.op.input)} on node ${op.node.id} (op ${op.id})`
    );
  }

  /** Completes an operation with its output, or gives up on it (`undefined`: it stays pending). */
  private finish(op: ClientOp, output: KvOutput | undefined): void {
    if (op.done) return;
    op.done = true;
    const input = op.op.input;
    if (output !== undefined) {
      op.op.output = output;
      op.op.return = this.queue.now;
      this.stats.opsCompleted++;
      if (input.kind === "get") op.client.seen.set(input.key, output.value ?? null);
      if (input.kind === "put") op.client.seen.set(input.key, input.value);
    } else {
      this.stats.opsPending++;
    }
    this.trace(() =>
      `client ${op.client.id} ${output === undefined ? "gives up on" : "gets"} op ${op.id}` +
      (output === undefined ? "" : ` -> ${JSON.stringify(output)}`)
    );
    this.queue.after(this.rng.range(0, 20), () => this.issue(op.client));
  }

  private readState(node: SimNode, rs: ReadState): void {
    const op = node.reads.get(dec.decode(rs.requestCtx));
    if (op && op.readIndex < 0) op.readIndex = rs.index;
  }

  private serveReads(node: SimNode): void {
    for (const [id, op] of node.reads) {
      if (op.readIndex < 0 || node.applied < op.readIndex) continue;
      node.reads.delete(id);
      this.finish(op, { value: node.kv.get(op.op.input.key) ?? null });
    }
  }

  // ---- safety checks -------------------------------------------------------------------------------

  /** Checks run whenever a node may have changed. */
  private checkNode(node: SimNode): void {
    const r = node.raw!.raft;
    const committed = r.log.committed;
    if (committed < node.lastCommit) {
      this.fail(`node ${node.id}: commit index went back from ${node.lastCommit} to ${committed}`);
    }
    if (committed > node.lastCommit) {
      // Every entry a node holds at or below its commit index is committed.
      const lo = Math.max(node.lastCommit + 1, r.log.firstIndex());
      if (lo <= committed) {
        for (const e of r.log.slice(lo, committed + 1, NO_LIMIT)) this.recordCommitted(node, e);
      }
      node.lastCommit = committed;
      if (committed > this.stats.maxCommit) this.stats.maxCommit = committed;
    }
    if (r.term > this.stats.maxTerm) this.stats.maxTerm = r.term;
    if (r.state === StateType.Leader) {
      const claim = this.leaders.record(r.term, node.id);
      if (claim.kind === "first") {
        this.stats.leaders++;
        this.trace(() => `node ${node.id} is leader of term ${r.term}`);
        this.checkLeaderCompleteness(node);
      } else if (claim.kind === "conflict") {
        this.fail(`election safety: nodes ${claim.other} and ${node.id} are both leaders of term ${r.term}`);
      }
      const mark = node.leaderMark;
      if (
        mark && mark.term === r.term && mark.index >= r.log.firstIndex() - 1 &&
        !r.log.matchTerm(mark.index, mark.entryTerm)
      ) {
        this.fail(
          `leader append-only: leader ${node.id} of term ${r.term} lost or replaced entry ${mark.index}`,
        );
      }
      node.leaderMark = { term: r.term, index: r.log.lastIndex(), entryTerm: r.log.lastTerm() };
    } else {
      node.leaderMark = undefined;
    }
  }

  private recordCommitted(node: SimNode, e: Entry): void {
    const rec = this.committed[e.index];
    if (rec === undefined) {
      this.committed[e.index] = {
        term: e.term,
        type: e.type,
        data: e.data,
        node: node.id,
        commitTerm: node.raw!.raft.term,
      };
      if (e.index > this.maxCommitted) this.maxCommitted = e.index;
      if (e.type === EntryType.ConfChange && e.index > this.bootstrapEntries) this.stats.confChanges++;
      if (e.type === EntryType.Normal && e.data.length > 0) {
        const op = this.opsById.get((JSON.parse(dec.decode(e.data)) as LoggedOp).id);
        if (op) op.committedAt = this.queue.now;
      }
    } else if (rec.term !== e.term || rec.type !== e.type || !bytesEqual(rec.data, e.data)) {
      this.fail(
        `state machine safety: index ${e.index} is committed as an entry of term ${rec.term} on node ${rec.node} ` +
          `but as a different entry of term ${e.term} on node ${node.id}`,
      );
    }
  }

  /**
   * A leader of term T holds every entry committed in a term before T. (A leader of an older term can
   * still be around, unaware of newer terms: it need not hold what newer leaders committed.)
   */
  private checkLeaderCompleteness(node: SimNode): void {
    const r = node.raw!.raft;
    const log = r.log;
    for (let i = this.maxCommitted; i >= 1; i--) {
      const rec = this.committed[i];
      if (rec === undefined || rec.commitTerm >= r.term) continue;
      if (i < log.firstIndex()) break; // covered by this node's snapshot
      if (i > log.lastIndex()) {
        this.fail(
          `leader completeness: node ${node.id} leads term ${r.term} with log ending at ${log.lastIndex()}, ` +
            `but index ${i} was committed in term ${rec.commitTerm}`,
        );
      }
      const t = log.term(i);
      if (t !== rec.term) {
        this.fail(
          `leader completeness: node ${node.id} leads term ${r.term} with term ${t} at index ${i}, where an ` +
            `entry of term ${rec.term} was committed in term ${rec.commitTerm}`,
        );
      }
    }
  }

  private checkLogMatching(node: SimNode, entries: Entry[]): void {
    const s = node.storage;
    for (const e of entries) {
      if (e.index < s.firstIndex()) continue;
      const prev = e.index - 1 >= s.firstIndex() - 1 ? s.term(e.index - 1) : undefined;
      const key = `${e.index}:${e.term}`;
      const rec = this.logRecords.get(key);
      if (rec === undefined) {
        this.logRecords.set(key, { data: e.data, type: e.type, prevTerm: prev });
        continue;
      }
      if (rec.type !== e.type || !bytesEqual(rec.data, e.data)) {
        this.fail(`log matching: node ${node.id} holds a different entry at index ${e.index} term ${e.term}`);
      }
      if (rec.prevTerm !== undefined && prev !== undefined && rec.prevTerm !== prev) {
        this.fail(
          `log matching: entry ${e.index}/${e.term} follows term ${prev} on node ${node.id} but term ${rec.prevTerm} ` +
            `elsewhere`,
        );
      }
    }
  }

  private checkHardState(node: SimNode, prev: HardState, next: HardState): void {
    if (next.term < prev.term) {
      this.fail(`node ${node.id}: persisted term went back from ${prev.term} to ${next.term}`);
    }
    if (next.commit < prev.commit) {
      this.fail(`node ${node.id}: persisted commit went back from ${prev.commit} to ${next.commit}`);
    }
    if (next.vote !== NONE) {
      const earlier = node.votes.record(next.term, next.vote);
      if (earlier !== undefined) {
        this.fail(`node ${node.id}: changed its vote in term ${next.term} from ${earlier} to ${next.vote}`);
      }
    }
  }

  private finalChecks(): void {
    // All nodes hold the same state machine.
    const voters = this.leaderVoters(this.leader()!);
    const states = voters.map((n) => dec.decode(encodeKv(n.kv)));
    for (let i = 1; i < states.length; i++) {
      if (states[i] !== states[0]) {
        this.fail(
          `state machine safety: nodes ${voters[0].id} and ${voters[i].id} applied up to ` +
            `${voters[0].applied} but hold different data: ${states[0]} vs ${states[i]}`,
        );
      }
    }
    // Liveness: every write issued once the leader was stable committed, and every read completed, within
    // the bound. (A write's client may still time out: its node can skip the entry by installing a
    // snapshot, and then never learns the result, just as in etcd.)
    const since = this.stableAt!;
    const bound = this.options.commitBoundMs;
    for (const op of this.ops) {
      if (op.op.call < since) continue;
      const what = `op ${op.id} (${describeInput(op.op.input)}) issued at ${op.op.call}`;
      const end = op.op.input.kind === "get" ? op.op.return : op.committedAt;
      if (end === undefined) {
        this.fail(`liveness: ${what} never ${op.op.input.kind === "get" ? "completed" : "committed"}`);
      }
      if (end - op.op.call > bound) {
        this.fail(`liveness: ${what} took ${end - op.op.call}ms (bound ${bound}ms)`);
      }
    }
    const lin = checkKv(this.history);
    if (!lin.ok) {
      this.fail(`linearizability: ${lin.inconclusive ? "no verdict" : "violation"}\n${lin.explanation}`);
    }
  }

  private digest(): string {
    return digestOf([
      JSON.stringify(this.history),
      JSON.stringify({ ...this.stats, net: undefined }),
      JSON.stringify(this.net.stats),
      ...this.nodes.map((n) => {
        const hs = n.storage.getHardState();
        return `${n.id}:${hs.term}:${hs.vote}:${hs.commit}:${n.applied}`;
      }),
    ]);
  }

  /** Wraps a run, turning violations and exceptions from the core into a SimFailure. */
  static run(options: SimOptions): SimReport {
    const sim = new Simulation(options);
    try {
      return sim.run();
    } catch (err) {
      throw new SimFailure(options.seed, sim.queue.now, failureReason(err), sim.tracing.lines);
    }
  }
}

/**
 * Runs one simulation. Throws {@linkcode SimFailure} on any violation; when `options.trace` is off, the
 * failure is replayed once with tracing on so that it carries the last trace lines.
 */
export function runSimulation(options: SimOptions): SimReport {
  try {
    return Simulation.run(options);
  } catch (err) {
    if (!(err instanceof SimFailure) || options.trace) throw err;
    try {
      Simulation.run({ ...options, trace: true });
    } catch (again) {
      if (again instanceof SimFailure) throw again;
    }
    throw err;
  }
}
