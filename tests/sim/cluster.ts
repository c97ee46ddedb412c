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
 *    compaction; persistence that takes time while messages keep arriving; and runtime
 *    reconfiguration as etcd does it, one simple conf change at a time: voters and learners added
 *    (fresh IDs, empty storage, sometimes cut off from everyone while they join, catching up later by
 *    snapshot), learners promoted (sometimes far behind), voters, learners and the leader itself
 *    removed, the leader crashing right after proposing a change, once it commits or once it applied
 *    it. A removed member stops ten ticks after applying its removal; its peers, once they applied it,
 *    neither send to it nor accept its messages (which tells it to stop), as etcd's transport does.
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
 * And for membership: every node's configuration is the one the committed conf changes up to its applied
 * index decide (configuration agreement, checked against an independent model, with at most one
 * learner); a new leader is a voter of its configuration elected by a durable majority of its voters;
 * a leader's commit is durable on a majority of its configuration's voters (so learners and removed
 * members never count); and a leader appends a conf change only once the earlier ones are applied (one
 * change in flight). At the end all members (learners included) hold the same data and configuration,
 * and the client history is checked for linearizability.
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
  commitViolation,
  confChangeInFlightViolation,
  describeMembership,
  digestOf,
  electionViolation,
  failureReason,
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

/**
 * Deliberately broken harness behaviours, used only to prove that the checks catch what they claim to.
 * - `stale-reads`: reads are answered from the local state machine without ReadIndex.
 * - `forget-vote`: a restarting node loses its persisted vote (as if the vote was never fsynced).
 * - `ack-on-propose`: a write is acknowledged as soon as it is proposed, before it commits.
 * - `stale-snapshot-conf`: a snapshot records the configuration of the previous snapshot instead of the
 *   current one (caught by configuration agreement).
 * - `unsynced-entries`: a Ready's messages leave before its entries are persisted (caught as a commit
 *   that a majority of voters does not hold durably).
 * - `unsynced-votes`: a Ready's messages leave before its vote is persisted (caught as an election won
 *   without a durable majority of votes).
 * - `unguarded-conf-change`: the driver clears raft's pendingConfIndex before proposing a conf change, so
 *   a second change goes in flight (caught by the one-change-in-flight check).
 * - `two-learners`: the driver ignores etcd's limit of one learner (caught by the configuration model).
 */
export type Sabotage =
  | "stale-reads"
  | "forget-vote"
  | "ack-on-propose"
  | "stale-snapshot-conf"
  | "unsynced-entries"
  | "unsynced-votes"
  | "unguarded-conf-change"
  | "two-learners";

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
   * Change membership during the chaos phase, as etcd's runtime reconfiguration does (see
   * `Simulation.reconfigure`): voters and learners added (fresh IDs, empty storage, sometimes cut off
   * while they join), learners promoted (even far behind), voters, learners and the leader removed, with
   * the leader sometimes crashing in the middle of a change.
   */
  membership: boolean;
  /** Mean virtual ms between membership operations when `membership` is on. */
  confChangeEveryMs: number;
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
    membership: true,
    confChangeEveryMs: rng.pick([80, 150, 300]),
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
  /** Membership changes proposed, and those raft turned into no-ops (another change was in flight). */
  confChangesProposed: number;
  confChangesRefused: number;
  /** Committed changes by kind. */
  votersAdded: number;
  learnersAdded: number;
  promotions: number;
  votersRemoved: number;
  learnersRemoved: number;
  leadersRemoved: number;
  /** Learners promoted although far behind the leader (what etcd's readiness check would refuse). */
  promotionsBehind: number;
  /** Joiners cut off from everyone when added. */
  isolatedJoiners: number;
  /** Snapshots installed by nodes that joined with empty storage. */
  joinerSnapshots: number;
  /** Leaders crashed right after proposing a change, once it committed, or once they applied it. */
  midChangeCrashes: number;
  /** Messages to or from removed members that their peers dropped (etcd's transport refuses them). */
  removedPeerDrops: number;
  /** Removed members that learned of their removal from a peer's refusal and stopped. */
  stoppedByPeers: number;
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
const MAX_ADDED_NODES = 5;

/** Most voters the membership changes grow the cluster to. */
const MAX_VOTERS = 6;

/** etcd's default limit on learners (--experimental-max-learners). */
const MAX_LEARNERS = 1;

/** etcd promotes a learner only once its match reaches this fraction of the leader's (isLearnerReady). */
const LEARNER_READY = 0.9;

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
  /** Removed from the cluster and shut down for good (or about to: see `apply`). */
  retired = false;
  /**
   * Members whose removal this node applied (part of its applied state, as in etcd's membership store):
   * its transport neither sends to them nor accepts their messages.
   */
  removed = new Set<NodeId>();
  /** Started with empty storage to join the running cluster in this role (until it is a member). */
  joinAs: ConfChangeType.AddNode | ConfChangeType.AddLearnerNode | undefined;
  /** Crash as soon as the conf change at this index is committed, or applied, here. */
  crashAt: { index: number; on: "committed" | "applied" } | undefined;
  /** The applied index at the last check: the configurations applied since may have committed entries. */
  checkedApplied = 0;
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

/** A snapshot's data: the key-value state and the removed members (etcd's snapshot holds both). */
function encodeState(kv: Map<string, string>, removed: Set<NodeId>): Uint8Array {
  return enc.encode(JSON.stringify({
    kv: [...kv].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    removed: [...removed].sort((a, b) => (a < b ? -1 : 1)).map(String),
  }));
}

function decodeState(data: Uint8Array): { kv: Map<string, string>; removed: Set<NodeId> } {
  if (data.length === 0) return { kv: new Map(), removed: new Set() };
  const st = JSON.parse(dec.decode(data)) as { kv: [string, string][]; removed: string[] };
  return { kv: new Map(st.kv), removed: new Set(st.removed.map(BigInt)) };
}

function isConfChange(e: Entry): boolean {
  return e.type === EntryType.ConfChange || e.type === EntryType.ConfChangeV2;
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
  /** The configuration history decided by committed conf changes (the model members must agree with). */
  private confHistory = new MembershipHistory({ voters: [], learners: [] }, 0);
  /** Nodes created to join (beyond the initial members). */
  private addedNodes = 0;
  /** Members whose removal was proposed: never added again (etcd refuses a removed ID). */
  private readonly removalProposed = new Set<NodeId>();
  /** Leaders that proposed their own removal (to count leader removals once committed). */
  private readonly selfRemovals = new Set<NodeId>();
  /** Joiners cut off from everyone until the given virtual time (or the heal). */
  private readonly cutOffs = new Map<NodeId, number>();

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
      confChangesProposed: 0,
      confChangesRefused: 0,
      votersAdded: 0,
      learnersAdded: 0,
      promotions: 0,
      votersRemoved: 0,
      learnersRemoved: 0,
      leadersRemoved: 0,
      promotionsBehind: 0,
      isolatedJoiners: 0,
      joinerSnapshots: 0,
      midChangeCrashes: 0,
      removedPeerDrops: 0,
      stoppedByPeers: 0,
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
    this.confHistory = new MembershipHistory(
      { voters: this.nodes.map((n) => n.id), learners: [] },
      this.bootstrapEntries,
    );
    for (let c = 0; c < o.clients; c++) {
      const client: Client = { id: c + 1, seq: 0, seen: new Map() };
      this.queue.at(this.rng.range(0, 50), () => this.issue(client));
    }
    this.queue.at(this.rng.range(0, o.faultEveryMs), () => this.fault());
    if (o.membership) this.queue.at(this.rng.range(0, o.confChangeEveryMs), () => this.reconfigure());
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
    const state = decodeState(snap.data);
    node.kv = state.kv;
    node.removed = state.removed;
    node.crashAt = undefined;
    node.applied = snap.metadata.index;
    node.checkedApplied = node.applied;
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
    if (restart) this.checkConfiguration(node, "restarted from its snapshot");
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
    if (r < 15) {
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
        this.restartLater(victim);
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

  /**
   * One step of runtime reconfiguration, as an operator drives etcd (member add, member add --learner,
   * member promote, member remove). The current leader proposes one simple conf change, validated against
   * the configuration it has applied the way etcd's server validates it: a fresh ID (a removed one is never
   * reused), at most one learner, never the last voter; a learner is promoted sometimes only once it is
   * nearly caught up (etcd's readiness check), sometimes however far behind it is. Raft itself keeps one
   * change in flight: a change proposed while another is unapplied becomes an empty entry, and a joiner
   * whose addition did not make it is proposed again later. A joiner is started at once, sometimes cut off
   * from everyone for a while (it catches up later, by snapshot when the log was compacted meanwhile). The
   * leader may remove itself, and sometimes crashes in the middle of a change: right after proposing it,
   * as soon as it commits, or once it has applied it (before the followers have).
   */
  private reconfigure(): void {
    if (this.healed) return;
    const o = this.options;
    const rng = this.rng;
    const every = o.confChangeEveryMs;
    this.queue.after(rng.range(every >> 1, (3 * every) >> 1), () => this.reconfigure());
    const l = this.leader();
    if (!l?.raw || l.retired || l.pausedUntil > this.queue.now) return;
    const raft = l.raw.raft;
    const voters = raft.trk.voterNodes();
    const learners = raft.trk.learnerNodes();
    const isMember = (id: NodeId): boolean => voters.includes(id) || learners.includes(id);
    const learnerRoom = learners.length < MAX_LEARNERS || o.sabotage === "two-learners";
    const pending = this.nodes.filter((n) =>
      n.joinAs !== undefined && !n.retired && !isMember(n.id) && !this.removalProposed.has(n.id) &&
      (n.joinAs === ConfChangeType.AddNode || learnerRoom)
    );
    const canAdd = this.addedNodes < MAX_ADDED_NODES;
    const ops: [string, number][] = [];
    if (pending.length > 0) ops.push(["retry", 3]);
    if (canAdd && voters.length < MAX_VOTERS) ops.push(["add-voter", voters.length <= 2 ? 4 : 2]);
    if (canAdd && learnerRoom) ops.push(["add-learner", 3]);
    if (learners.length > 0) ops.push(["promote", 4], ["remove-learner", 1]);
    // A voter is removed only from three or more: the others are then a majority of the configuration the
    // removal is committed in, so they can always elect a leader and learn of it, even if the removed node
    // (the only one that knew it was committed, say) stops for good. Removing one of two voters can leave
    // the last one unable to ever win an election, in etcd as here.
    if (voters.length >= 3) ops.push(["remove-voter", 2]);
    if (voters.length >= 3 && voters.includes(l.id)) ops.push(["remove-leader", 2]);
    if (ops.length === 0) return;
    let x = rng.float() * ops.reduce((sum, [, w]) => sum + w, 0);
    let op = ops[ops.length - 1][0];
    for (const [name, w] of ops) {
      if ((x -= w) < 0) {
        op = name;
        break;
      }
    }
    let type: ConfChangeType;
    let target: NodeId;
    let behind = false;
    switch (op) {
      case "retry": {
        const n = rng.pick(pending);
        type = n.joinAs!;
        target = n.id;
        break;
      }
      case "add-voter":
      case "add-learner":
        type = op === "add-voter" ? ConfChangeType.AddNode : ConfChangeType.AddLearnerNode;
        target = this.addNode(type).id;
        break;
      case "promote": {
        target = rng.pick(learners);
        const match = raft.trk.progress.get(target)?.match ?? 0;
        const ready = match >= LEARNER_READY * (raft.trk.progress.get(l.id)?.match ?? 0);
        // etcd refuses to promote a learner that is not ready; the raft layer does not care.
        if (!ready && rng.chance(0.5)) {
          this.trace(() => `reconfigure: learner ${target} is not ready to be promoted (match ${match})`);
          return;
        }
        behind = !ready;
        type = ConfChangeType.AddNode;
        break;
      }
      case "remove-learner":
        type = ConfChangeType.RemoveNode;
        target = rng.pick(learners);
        break;
      case "remove-voter":
        type = ConfChangeType.RemoveNode;
        target = rng.pick(voters.filter((id) => id !== l.id));
        break;
      default:
        type = ConfChangeType.RemoveNode;
        target = l.id;
        this.selfRemovals.add(l.id);
    }
    if (type === ConfChangeType.RemoveNode) this.removalProposed.add(target);
    const cc: ConfChange = { type, nodeId: target, context: new Uint8Array() };
    this.trace(() => `reconfigure: leader ${l.id} proposes ${ConfChangeType[type]} ${target} (${op})`);
    this.stats.confChangesProposed++;
    this.dirty.add(l);
    if (o.sabotage === "unguarded-conf-change") raft.pendingConfIndex = 0;
    try {
      l.raw.proposeConfChange(cc);
    } catch (err) {
      if (!(err instanceof ErrProposalDropped)) throw err;
      this.trace(() => `reconfigure: the proposal was dropped`);
      return;
    }
    const last = raft.log.lastIndex();
    if (!isConfChange(raft.log.slice(last, last + 1, NO_LIMIT)[0])) {
      this.stats.confChangesRefused++;
      this.trace(() => `reconfigure: raft refused it (a change is in flight), entry ${last} is empty`);
      return;
    }
    if (behind) this.stats.promotionsBehind++;
    if (!rng.chance(0.3)) return;
    const on = rng.pick(["proposed", "committed", "applied"] as const);
    this.trace(() => `reconfigure: leader ${l.id} will crash once entry ${last} is ${on}`);
    if (on !== "proposed") {
      l.crashAt = { index: last, on };
      return;
    }
    const inc = l.incarnation;
    this.queue.after(rng.range(0, 3), () => {
      if (this.healed || l.incarnation !== inc) return;
      this.stats.midChangeCrashes++;
      this.crash(l);
      this.restartLater(l);
    });
  }

  /** Crashes a node whose conf change reached the point it was to crash at; true if it crashed. */
  private crashMidChange(node: SimNode): boolean {
    const at = node.crashAt;
    if (!at || !node.raw) return false;
    const reached = at.on === "committed"
      ? node.raw.raft.log.committed >= at.index
      : node.applied >= at.index;
    if (!reached) return false;
    node.crashAt = undefined;
    if (this.healed) return false;
    this.stats.midChangeCrashes++;
    this.trace(() => `node ${node.id} crashes: the conf change at ${at.index} is ${at.on} here`);
    this.crash(node);
    this.restartLater(node);
    return true;
  }

  /** Creates and starts a node with a new ID and empty storage; it learns the cluster from the leader. */
  private addNode(joinAs: ConfChangeType.AddNode | ConfChangeType.AddLearnerNode): SimNode {
    const node = new SimNode(
      BigInt(this.nodes.length + 1),
      this.options.tickMs + this.rng.range(-1, 1),
      this.rng.fork(),
    );
    node.joinAs = joinAs;
    this.addedNodes++;
    this.nodes.push(node);
    this.byId.set(node.id, node);
    this.start(node, false);
    this.dirty.add(node);
    this.queue.after(this.rng.int(node.tickMs), () => this.tick(node));
    if (this.rng.chance(joinAs === ConfChangeType.AddLearnerNode ? 0.5 : 0.3)) {
      const until = this.queue.now + this.rng.range(100, 1500);
      this.cutOffs.set(node.id, until);
      this.stats.isolatedJoiners++;
      this.trace(() => `node ${node.id} joins cut off from everyone until ${until}`);
    }
    return node;
  }

  private isCutOff(id: NodeId): boolean {
    const until = this.cutOffs.get(id);
    return until !== undefined && until > this.queue.now;
  }

  /** Restarts a crashed node after a while (unless the run healed meanwhile, which restarts it). */
  private restartLater(node: SimNode): void {
    this.queue.after(this.rng.range(20, 800), () => {
      if (!this.healed && !node.raw && !node.retired) this.restart(node);
    });
  }

  /** A removed member learns it was removed from a peer's refusal (etcd's 410 Gone) and stops. */
  private stopRemoved(node: SimNode): void {
    if (!node.raw || node.retired) return;
    node.retired = true;
    this.stats.stoppedByPeers++;
    this.trace(() => `node ${node.id} learns from a peer that it was removed and stops`);
    this.crash(node);
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

  /** The stable leader's voters and learners as nodes. */
  private leaderMembers(l: SimNode): SimNode[] {
    const trk = l.raw!.raft.trk;
    return [...trk.voterNodes(), ...trk.learnerNodes()].map((id) => this.byId.get(id)!);
  }

  private crash(node: SimNode): void {
    this.stats.crashes++;
    this.trace(() => `crash node ${node.id} (unpersisted state and messages in flight are lost)`);
    node.raw = undefined;
    node.leaderMark = undefined;
    node.crashAt = undefined;
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
    this.cutOffs.clear();
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
    return this.leaderMembers(l).every((n) =>
      n.raw !== undefined && n.applied === commit && !n.persisting && !n.raw.hasReady()
    );
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
    if (this.isCutOff(m.from) || this.isCutOff(m.to)) {
      this.lost(m, "partitioned");
      return;
    }
    if (node.removed.has(m.from)) {
      // etcd's peer handler refuses a removed member (410 Gone); the sender learns it and stops.
      this.stats.removedPeerDrops++;
      this.trace(() => `refused (sender removed) ${describeMessage(m)}`);
      const sender = this.byId.get(m.from)!;
      const inc = sender.incarnation;
      this.queue.after(this.rng.range(1, 5), () => {
        if (sender.incarnation === inc) this.stopRemoved(sender);
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
      if (this.crashMidChange(node)) continue;
      if (node.persisting || node.pausedUntil > this.queue.now || !node.raw.hasReady()) continue;
      const rd = node.raw.ready();
      const inc = node.incarnation;
      node.persisting = true;
      const early = this.sendsEarly(node, rd);
      if (early) this.send(node, rd.messages);
      const done = (): void => {
        if (node.incarnation !== inc) return; // crashed meanwhile: the Ready is lost
        node.persisting = false;
        this.handleReady(node, rd, early);
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

  /** Under the unsynced-* sabotages: whether this Ready's messages leave before it is persisted. */
  private sendsEarly(node: SimNode, rd: Ready): boolean {
    const sabotage = this.options.sabotage;
    if (sabotage !== "unsynced-entries" && sabotage !== "unsynced-votes") return false;
    const hs = node.storage.getHardState();
    const vote = rd.hardState !== undefined &&
      (rd.hardState.term !== hs.term || rd.hardState.vote !== hs.vote);
    return sabotage === "unsynced-entries" ? rd.entries.length > 0 && !vote : rd.entries.length === 0 && vote;
  }

  /** Hands messages to the network, except those to members this node applied the removal of. */
  private send(node: SimNode, messages: Message[]): void {
    for (const m of messages) {
      if (node.removed.has(m.to)) {
        this.stats.removedPeerDrops++; // etcd's transport no longer knows the peer
        continue;
      }
      if (m.type === MessageType.Snap) this.stats.snapshotsSent++;
      if (this.options.trace && m.type !== MessageType.Heartbeat && m.type !== MessageType.HeartbeatResp) {
        this.trace(() => `send ${describeMessage(m)}`);
      }
      this.net.send(m);
    }
  }

  private handleReady(node: SimNode, rd: Ready, sent: boolean): void {
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
    if (!sent) this.send(node, rd.messages);
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
    this.checkConfiguration(node, `applied up to ${node.applied}`);
    this.maybeCompact(node);
    this.serveReads(node);
  }

  private installSnapshot(node: SimNode, snap: Snapshot): void {
    const index = snap.metadata.index;
    if (index <= node.applied) {
      this.fail(`node ${node.id} was handed snapshot ${index} although it applied up to ${node.applied}`);
    }
    this.stats.snapshotsInstalled++;
    if (node.joinAs !== undefined) this.stats.joinerSnapshots++;
    this.trace(() => `node ${node.id} installs snapshot ${index}/${snap.metadata.term}`);
    const state = decodeState(snap.data);
    node.kv = state.kv;
    node.removed = state.removed;
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
      if (cc.type === ConfChangeType.RemoveNode && cc.nodeId !== node.id) node.removed.add(cc.nodeId);
      if (cc.type === ConfChangeType.RemoveNode && cc.nodeId === node.id && !node.retired) {
        // Like an etcd member that applies its own removal: it stops for good after ten ticks (etcd's
        // stopWithDelay, so that the commit reaches the others), still leading meanwhile if it led.
        node.retired = true;
        const delay = 10 * node.tickMs;
        this.trace(() => `node ${node.id} applied its own removal and shuts down in ${delay}ms`);
        const inc = node.incarnation;
        this.queue.after(delay, () => {
          if (node.raw && node.incarnation === inc) this.crash(node);
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
    const confState = this.options.sabotage === "stale-snapshot-conf"
      ? s.snapshot().metadata.confState
      : node.confState;
    s.createSnapshot(node.applied, confState, encodeState(node.kv, node.removed));
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
      if (r.state === StateType.Leader) this.checkCommitQuorum(node, committed);
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
        this.checkElectionQuorum(node);
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
      if (!mark || mark.term !== r.term || r.log.lastIndex() > mark.index) {
        this.checkConfChangesInFlight(node);
      }
      node.leaderMark = { term: r.term, index: r.log.lastIndex(), entryTerm: r.log.lastTerm() };
    } else {
      node.leaderMark = undefined;
    }
    node.checkedApplied = node.applied;
  }

  /**
   * Configuration agreement: once a node has applied up to index i (by entries or a snapshot, or on
   * restart), the configuration its Raft core uses, and the one the application tracks (and puts in its
   * snapshots), are the one decided by the committed conf changes up to i. So every node applying the
   * conf change at i ends up with the same configuration.
   */
  private checkConfiguration(node: SimNode, when: string): void {
    if (!node.raw || node.applied < this.bootstrapEntries) return;
    // A snapshot the core accepted switches its configuration at once, before the application installs it.
    const incoming = node.raw.raft.log.unstable.snapshot?.metadata.index;
    const views = [
      ["its raft core uses", membershipOf(node.raw.raft.trk.confState()), incoming ?? node.applied],
      ["it tracks", membershipOf(node.confState), node.applied],
    ] as const;
    for (const [what, got, index] of views) {
      const want = this.confHistory.at(index);
      if (!sameMembership(got, want)) {
        this.fail(
          `configuration agreement: node ${node.id} ${when}: ${what} ${describeMembership(got)}, but the ` +
            `committed conf changes up to ${index} give ${describeMembership(want)}`,
        );
      }
    }
  }

  /**
   * A leader's new commit index is durable on a majority of the voters of a configuration it held since
   * the last check (learners and removed members never count).
   */
  private checkCommitQuorum(node: SimNode, index: number): void {
    const term = this.committed[index].term;
    const configs: Membership[] = this.confHistory.between(
      Math.min(node.checkedApplied, node.applied),
      node.applied,
    );
    const v = commitViolation(node.id, index, configs, (id) => {
      const n = this.byId.get(id);
      if (!n) return false;
      const s = n.storage;
      if (index <= s.snapshot().metadata.index) return true;
      return index <= s.lastIndex() && s.term(index) === term;
    });
    if (v !== undefined) this.fail(`commit quorum: ${v}`);
  }

  /** A new leader is a voter of its configuration, elected by a durable majority of its voters. */
  private checkElectionQuorum(node: SimNode): void {
    const r = node.raw!.raft;
    const config = this.confHistory.at(node.applied);
    const v = electionViolation(
      node.id,
      r.term,
      config,
      (id) => (id === node.id ? r.vote : this.byId.get(id)?.votes.get(r.term)),
    );
    if (v !== undefined) this.fail(`election quorum: ${v}`);
  }

  /** A leader appends a conf change only once every earlier one in its log is applied. */
  private checkConfChangesInFlight(node: SimNode): void {
    const log = node.raw!.raft.log;
    const lo = Math.max(node.applied + 1, log.firstIndex());
    if (lo > log.lastIndex()) return;
    const unapplied = log.slice(lo, log.lastIndex() + 1, NO_LIMIT).map((e) => ({
      index: e.index,
      term: e.term,
      confChange: isConfChange(e),
    }));
    const v = confChangeInFlightViolation(node.id, node.raw!.raft.term, unapplied);
    if (v !== undefined) this.fail(`one conf change in flight: ${v}`);
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
      if (e.type === EntryType.ConfChange && e.index > this.bootstrapEntries) this.recordConfChange(e);
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

  /** Adds a newly committed conf change to the configuration history and counts it by kind. */
  private recordConfChange(e: Entry): void {
    this.stats.confChanges++;
    const cc = decodeConfChange(e.data);
    const before = this.confHistory.at(e.index - 1);
    const problem = this.confHistory.record(e.index, cc, MAX_LEARNERS);
    if (problem !== undefined) this.fail(`configuration: ${problem}`);
    const wasVoter = before.voters.includes(cc.nodeId);
    const wasLearner = before.learners.includes(cc.nodeId);
    if (cc.type === ConfChangeType.AddNode) {
      if (wasLearner) this.stats.promotions++;
      else if (!wasVoter) this.stats.votersAdded++;
    } else if (cc.type === ConfChangeType.AddLearnerNode) {
      if (!wasLearner) this.stats.learnersAdded++;
    } else if (cc.type === ConfChangeType.RemoveNode) {
      if (wasLearner) this.stats.learnersRemoved++;
      if (wasVoter) this.stats.votersRemoved++;
      if (wasVoter && this.selfRemovals.has(cc.nodeId)) this.stats.leadersRemoved++;
    }
    this.trace(() =>
      `conf change ${ConfChangeType[cc.type]} ${cc.nodeId} committed at ${e.index}: ` +
      describeMembership(this.confHistory.at(e.index))
    );
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
    // All members, learners included, hold the same state machine and configuration.
    const members = this.leaderMembers(this.leader()!);
    const states = members.map((n) => dec.decode(encodeKv(n.kv)));
    for (let i = 1; i < states.length; i++) {
      if (states[i] !== states[0]) {
        this.fail(
          `state machine safety: nodes ${members[0].id} and ${members[i].id} applied up to ` +
            `${members[0].applied} but hold different data: ${states[0]} vs ${states[i]}`,
        );
      }
    }
    for (const n of members) this.checkConfiguration(n, "at the end");
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
