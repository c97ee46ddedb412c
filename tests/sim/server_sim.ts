/**
 * Whole members under the simulator: each member is built from the production pieces, wired as
 * `server/member/server.ts` wires them — the production bootstrap (`openMember` of
 * `server/member/bootstrap.ts`: `Wal` + `Snapshotter` + `MvccStore` with its history file + `RawNode` +
 * `ServerStorage`, member IDs derived from `--initial-cluster`) + `RaftDriver` (the production Ready loop,
 * with its early sends and its applying while the fsync runs) + `Applier` — over a simulated disk per
 * member ({@link SimDisk}), the simulated clock ({@link SimClock}) and the faulty network of network.ts.
 * Only the peer transport and the gRPC front end are replaced: messages travel over the simulated
 * network; a snapshot is carried as the peer transport carries it (the sender reads the image from the
 * frozen view the driver pinned, `SnapshotViews`, and the receiver writes it to its file through
 * `RaftDriver.receiveSnapshot` before Raft sees the message); and clients call the member the way the KV
 * service does (a proposal encoded as `server/member/proposal.ts` encodes it, a ReadIndex round for a
 * linearizable read).
 *
 * A run has a chaos phase (message loss, delay, reordering, duplication, partitions; process crashes that
 * keep the page cache, some followed by a power loss right after the restart; power losses, some in the
 * middle of a member's writes, that keep only what was synced, a prefix of the rest, torn writes, and
 * unsynced directory entries; failing fsyncs, which make the member stop as the driver requires; slow
 * disks; leadership transfers), then heals: every member restarts, the network and disks are reliable,
 * and the members must converge. Recovery goes through the production code: `openMember`,
 * `Wal.snapshotMarks`, `Snapshotter.loadNewestAvailable`, `Wal.open` (torn-tail repair), the snapshot
 * image decoding of `server/member/app_state.ts`.
 *
 * Checked as it runs: one leader per term, no index applied as two different entries on two members,
 * no member granting two votes in one term (even across restarts), no member answering a client after
 * its driver stopped on a failed write or fsync, no MsgSnap carrying its image instead of leaving it to
 * be streamed from a view. Checked at the end: no snapshot view still held, every member holds the same
 * key space and history (`hashKV`), every acknowledged write is present at the revision it was
 * acknowledged with on every member, and the client history is linearizable.
 *
 * Determinism: time is virtual, randomness comes from one seeded {@link Prng} (Raft's election timeouts
 * and the WAL's segment salts included), and after each event the harness lets the asynchronous
 * production code run until it waits for the next event ({@link Settler}). A failing seed replays
 * exactly.
 *
 * @module
 */
import { V2Store } from "../../storage/v2store/store.ts";
import { ErrProposalDropped } from "../../raft/node.ts";
import { decodeConfChange } from "../../raft/conf_change.ts";
import {
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type NodeId,
  NONE,
  type ReadState,
  type Snapshot,
  StateType,
} from "../../raft/types.ts";
import { RaftDriver } from "../../server/member/raft_driver.ts";
import { openMember } from "../../server/member/bootstrap.ts";
import { SnapshotViews } from "../../server/member/snapshot_views.ts";
import { defaultConfig } from "../../server/config/mod.ts";
import type { Config } from "../../server/config/mod.ts";
import { staticBootstrap } from "../../discovery/static.ts";
import { Applier } from "../../server/member/apply.ts";
import { captureAppState, restoreAppState } from "../../server/member/app_state.ts";
import { Membership } from "../../server/member/membership.ts";
import {
  allProposedWith,
  decodeProposal,
  encodeProposal,
  memberTag,
  ProposalKind,
  proposerOf,
} from "../../server/member/proposal.ts";
import type { LogFields, Logger } from "../../server/logger.ts";
import {
  CompareResult,
  CompareTarget,
  decodeDeleteRangeRequest,
  decodePutRequest,
  decodeTxnRequest,
  encodeDeleteRangeRequest,
  encodePutRequest,
  encodeTxnRequest,
  type TxnRequest,
} from "../../server/pb/rpc.ts";
import type { MvccStore, MvccStoreOptions } from "../../storage/mvcc/store.ts";
import { LeaseStore } from "../../storage/lease.ts";
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
import { collectBytes } from "../../storage/byte_stream.ts";
import { type DiskStats, GOOD_DISK, isSimIoError, type ProcessFs, SimDisk } from "./sim_fs.ts";
import { Settler, SimClock } from "./sim_runtime.ts";

/**
 * Deliberately broken worlds, used only to prove that the checks catch what they claim to.
 * - `lying-fsync`: every disk acknowledges fsyncs without making anything durable, and every crash is
 *   a power loss.
 * - `stale-reads`: reads are answered from the member's applied state without a ReadIndex round.
 */
export type ServerSabotage = "lying-fsync" | "stale-reads";

/** The knobs of one run; {@link serverOptionsForSeed} derives varied ones from a seed. */
export interface ServerSimOptions {
  seed: number;
  members: number;
  /** Virtual ms of the fault phase. */
  chaosMs: number;
  /** Mean virtual ms between faults. */
  faultEveryMs: number;
  clients: number;
  keys: number;
  /** A client gives up on an operation after this long; it stays pending in the history. */
  opTimeoutMs: number;
  /** Clients keep working this long after the heal. */
  tailMs: number;
  /** After the clients stop, every member must have converged within this long. */
  convergeMs: number;
  /** The driver's --snapshot-count. */
  snapshotCount: number;
  /** Entries kept in memory behind a snapshot. */
  catchUpEntries: number;
  /** --max-snapshots. */
  maxSnapshots: number;
  /** WAL segment size (small: segments are cut and released often). */
  segmentBytes: number;
  preallocate: boolean;
  /** Probability per fault that one disk starts failing fsyncs for a while. */
  syncFailures: boolean;
  trace: boolean;
  sabotage?: ServerSabotage;
}

/** Run options that vary with the seed. */
export function serverOptionsForSeed(
  seed: number,
  overrides: Partial<ServerSimOptions> = {},
): ServerSimOptions {
  const rng = new Prng(seed ^ 0x5e7e55ed);
  return {
    seed,
    members: rng.chance(0.7) ? 3 : 5,
    chaosMs: rng.range(1500, 3000),
    faultEveryMs: rng.pick([80, 150, 300]),
    clients: rng.range(2, 4),
    keys: rng.range(1, 3),
    opTimeoutMs: 800,
    tailMs: 600,
    convergeMs: 8000,
    snapshotCount: rng.pick([5, 12, 30]),
    catchUpEntries: rng.pick([2, 10]),
    maxSnapshots: rng.pick([1, 2, 0]),
    segmentBytes: rng.pick([4096, 16384]),
    preallocate: rng.chance(0.5),
    syncFailures: rng.chance(0.5),
    trace: false,
    ...overrides,
  };
}

/** The command that replays a seed. */
export function serverReplayCommand(seed: number): string {
  return `SERVER_SIM_SEED=${seed} deno test -A tests/sim/server_sim_test.ts`;
}

/** A violation in a whole-member run. */
export class ServerSimFailure extends SeededRunFailure {
  constructor(seed: number, time: number, reason: string, trace: string[]) {
    super("server simulation", seed, time, reason, trace, serverReplayCommand(seed));
    this.name = "ServerSimFailure";
  }
}

/** What a run exercised. */
export interface ServerSimStats {
  virtualMs: number;
  events: number;
  leaders: number;
  processCrashes: number;
  powerLosses: number;
  /** Members stopped by a failed fsync (the driver's fatal error). */
  fatalStops: number;
  restarts: number;
  walRepairs: number;
  snapshotsSaved: number;
  snapshotsApplied: number;
  partitions: number;
  /** Leadership transfers asked for. */
  transfers: number;
  opsCompleted: number;
  opsPending: number;
  ackedWrites: number;
  disk: DiskStats;
  net: NetworkStats;
}

/** A successful run. */
export interface ServerSimReport {
  options: ServerSimOptions;
  stats: ServerSimStats;
  history: KvOperation[];
  /** Equal for equal seeds: proves exact replay. */
  digest: string;
  trace: string[];
}

const TICK_MS = 10;
const ELECTION_TICK = 10;
const READ_RETRY_MS = 500;
/** The data directory of every member, on its own simulated disk (the WAL is in /member/wal). */
const DATA_DIR = "/";
const HISTORY_BUFFER_BYTES = 1024;
const CLUSTER_TOKEN = "sim-cluster";
/** Snapshot images arrive in chunks of this size. */
const SNAPSHOT_CHUNK_BYTES = 4096;
const enc = new TextEncoder();
const dec = new TextDecoder();

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface Client {
  id: number;
  seq: number;
  seen: Map<string, string | null>;
}

interface ClientOp {
  id: string;
  client: Client;
  op: KvOperation;
  member: SimMember;
  /** The process that took the call. */
  proc: Proc;
  done: boolean;
}

/** A write acknowledged to a client: what must be found at `revision` on every member. */
interface Ack {
  op: string;
  key: string;
  /** null: the key was deleted. */
  value: string | null;
  revision: number;
}

/** One process of a member: everything that dies with it. */
class Proc {
  readonly clock: SimClock;
  driver!: RaftDriver;
  mvcc!: MvccStore;
  leases = new LeaseStore();
  membership = new Membership(0n);
  /** The frozen views snapshots for lagging followers are streamed from, as EtcdServer keeps them. */
  readonly views = new SnapshotViews();
  /** MsgSnaps whose images are being written: their senders hear of a failure if this process dies. */
  readonly receiving = new Set<Message>();
  applier!: Applier;
  running = false;
  dead = false;
  readonly tag: number;
  seq: number;
  readonly waiters = new Map<number, ClientOp>();
  readonly reads = new Map<number, ClientOp>();
  readSeq = 0;

  constructor(queue: EventQueue, readonly pfs: ProcessFs, id: bigint) {
    this.clock = new SimClock(queue);
    this.tag = memberTag(id);
    this.seq = queue.now * 1000; // as EtcdServer numbers its proposals: unique across restarts
  }
}

class SimMember {
  proc: Proc | undefined;
  /** Of the running process; 0 while down or starting. */
  incarnation = 0;
  /** Votes this member granted (sent), by term: must never change, even across restarts. */
  readonly votes = new TermVotes();
  restartPending = false;
  /** The power goes this long after the next start completes (a crash right after recovery). */
  powerLossAfterStart: number | undefined;
  /** The disk fails fsyncs until this virtual time. */
  failingUntil = 0;

  constructor(readonly id: NodeId, readonly disk: SimDisk, readonly rng: Prng) {}
}

class ServerSimulation {
  private readonly rng: Prng;
  private readonly queue = new EventQueue();
  private readonly settler = new Settler();
  private readonly net: Network;
  private readonly members: SimMember[] = [];
  private readonly byId = new Map<NodeId, SimMember>();
  private readonly history: KvOperation[] = [];
  private readonly acks: Ack[] = [];
  private readonly tracing: SimTrace;
  private readonly leaders = new TermLeaders();
  private readonly applied: { term: number; data: Uint8Array; member: NodeId }[] = [];
  private incarnations = 0;
  /** A violation found inside asynchronous code, thrown by the main loop. */
  private failure: string | undefined;
  private healed = false;
  private clientsStopped = false;
  private converging = false;
  private finished = false;
  private outstanding = 0;
  readonly stats: ServerSimStats;

  constructor(readonly options: ServerSimOptions) {
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
      processCrashes: 0,
      powerLosses: 0,
      fatalStops: 0,
      restarts: 0,
      walRepairs: 0,
      snapshotsSaved: 0,
      snapshotsApplied: 0,
      partitions: 0,
      transfers: 0,
      opsCompleted: 0,
      opsPending: 0,
      ackedWrites: 0,
      disk: {
        writes: 0,
        syncs: 0,
        syncFailures: 0,
        crashes: 0,
        writesLost: 0,
        tornWrites: 0,
        metadataLost: 0,
      },
      net: this.net.stats,
    };
  }

  private trace(line: () => string): void {
    this.tracing.add(line);
  }

  private fail(reason: string): never {
    throw new SimViolation(reason);
  }

  /** Records a violation found in asynchronous code (the main loop throws it after the event). */
  private failLater(reason: string): void {
    this.failure ??= reason;
  }

  // ---- the run --------------------------------------------------------------------------------------

  async run(): Promise<ServerSimReport> {
    const o = this.options;
    const lying = o.sabotage === "lying-fsync";
    // member IDs as every member of a new cluster derives them from --initial-cluster
    const { members } = staticBootstrap("m1", this.initialCluster(), CLUSTER_TOKEN);
    for (const { id } of members) {
      const disk = new SimDisk(this.queue, this.rng.fork(), { ...GOOD_DISK, lyingFsync: lying });
      const m = new SimMember(id, disk, this.rng.fork());
      this.members.push(m);
      this.byId.set(id, m);
    }
    for (const m of this.members) this.start(m);
    for (let c = 0; c < o.clients; c++) {
      const client: Client = { id: c + 1, seq: 0, seen: new Map() };
      this.queue.at(this.rng.range(100, 300), () => this.issue(client));
    }
    this.queue.at(this.rng.range(200, 200 + o.faultEveryMs), () => this.fault());
    this.queue.at(o.chaosMs, () => this.heal());
    this.queue.at(o.chaosMs + o.tailMs, () => {
      this.clientsStopped = true;
      this.converging = true;
    });
    const deadline = o.chaosMs + o.tailMs + o.opTimeoutMs + o.convergeMs;
    try {
      await this.settler.settle();
      while (!this.finished) {
        if (!this.queue.runNext()) this.fail("the event queue ran dry");
        this.stats.events++;
        await this.settler.settle();
        if (this.failure !== undefined) this.fail(this.failure);
        this.afterEvent();
        if (this.queue.now > deadline) {
          this.fail(
            `liveness: the members did not converge within ${o.convergeMs}ms of the clients stopping\n` +
              this.describeMembers(),
          );
        }
      }
      this.finalChecks();
      this.stats.virtualMs = this.queue.now;
      for (const m of this.members) {
        for (const k of Object.keys(this.stats.disk) as (keyof DiskStats)[]) {
          this.stats.disk[k] += m.disk.stats[k];
        }
      }
      return {
        options: o,
        stats: this.stats,
        history: this.history,
        digest: this.digest(),
        trace: this.tracing.lines,
      };
    } finally {
      for (const m of this.members) if (m.proc) this.kill(m);
      this.settler.close();
    }
  }

  /** Checks after every event: fatal errors, leaders, convergence. */
  private afterEvent(): void {
    for (const m of this.members) {
      const p = m.proc;
      if (!p?.running) continue;
      if (p.driver.fatalError) {
        // A failed fsync: the member stops, and only its process restarts, on a page cache that still
        // holds the failed writes in pages Linux marked clean (never to be written back). The restarted
        // member reads them back; Wal.open must make them durable before the member acts on them. (A
        // reboot instead would be a power loss, which the faults cause at any time anyway.)
        this.stats.fatalStops++;
        this.trace(() => `member ${m.id} stopped: ${p.driver.fatalError!.message}`);
        this.kill(m);
        this.scheduleRestart(m, this.rng.range(20, 200));
        continue;
      }
      const r = p.driver.node.raft;
      if (r.state === StateType.Leader) {
        const claim = this.leaders.record(r.term, m.id);
        if (claim.kind === "first") {
          this.stats.leaders++;
          this.trace(() => `member ${m.id} leads term ${r.term}`);
        } else if (claim.kind === "conflict") {
          this.fail(`election safety: members ${claim.other} and ${m.id} both lead term ${r.term}`);
        }
      }
    }
    if (this.converging && this.outstanding === 0 && this.converged()) this.finished = true;
  }

  /** One line per member: what its driver and Raft state say (for liveness failures). */
  private describeMembers(): string {
    return this.members.map((m) => {
      const p = m.proc;
      if (!p) return `member ${m.id}: down`;
      if (!p.running) return `member ${m.id}: starting`;
      const r = p.driver.node.raft;
      return `member ${m.id}: ${
        StateType[r.state]
      } term ${r.term} lead ${r.lead} applied ${p.driver.appliedIndex} ` +
        `committed ${r.log.committed} last ${r.log.lastIndex()} snapshot ${p.driver.snapshotIndex}` +
        (p.driver.fatalError ? ` failed: ${p.driver.fatalError.message}` : "");
    }).join("\n");
  }

  private converged(): boolean {
    let leader: Proc | undefined;
    for (const m of this.members) {
      const p = m.proc;
      if (!p?.running || p.driver.fatalError) return false;
      if (p.driver.node.raft.state === StateType.Leader) {
        if (leader) return false;
        leader = p;
      }
    }
    if (!leader) return false;
    const log = leader.driver.node.raft.log;
    if (log.committed !== log.lastIndex() || leader.driver.appliedIndex !== log.committed) return false;
    for (const m of this.members) {
      const d = m.proc!.driver;
      if (d.appliedIndex !== log.committed || d.node.raft.log.lastIndex() !== log.committed) return false;
    }
    return true;
  }

  // ---- members --------------------------------------------------------------------------------------

  private start(m: SimMember): void {
    const proc = new Proc(this.queue, m.disk.openProcess(), m.id);
    m.proc = proc;
    m.incarnation = 0;
    this.boot(m, proc).then(
      () => {
        if (proc.dead) return;
        m.incarnation = ++this.incarnations;
        proc.running = true;
        proc.driver.start();
        this.trace(() => `member ${m.id} is up (incarnation ${m.incarnation})`);
        const after = m.powerLossAfterStart;
        m.powerLossAfterStart = undefined;
        if (after !== undefined && !this.healed) {
          this.queue.after(after, () => {
            if (m.proc === proc && !this.healed) this.powerLoss(m);
          });
        }
      },
      (err) => {
        if (proc.dead) return;
        if (isSimIoError(err)) {
          // an I/O error while starting: the process exits, and comes back after a reboot
          this.stats.fatalStops++;
          this.trace(() => `member ${m.id} failed to start: ${err.message}`);
          this.kill(m);
          m.disk.crash();
          this.scheduleRestart(m, this.rng.range(20, 200));
          return;
        }
        this.failLater(
          `member ${m.id} could not start from its disk: ${err instanceof Error ? err.stack : err}`,
        );
      },
    );
  }

  /**
   * Opens or creates the member's storage with the production bootstrap (`openMember`, as EtcdServer.start
   * calls it) on the member's simulated disk, and builds its driver.
   */
  private async boot(m: SimMember, proc: Proc): Promise<void> {
    const o = this.options;
    const fs = proc.pfs.fs;
    const init = await openMember(this.config(m), this.logger(m), () => m.rng.float(), {
      fs,
      wal: { segmentBytes: o.segmentBytes, preallocate: o.preallocate },
      historyBufferBytes: HISTORY_BUFFER_BYTES,
    });
    if (init.memberId !== m.id) {
      init.mvcc.close();
      throw new Error(`member ${m.id} opened the storage of member ${init.memberId}`);
    }
    const { node, storage, wal, snapshotter, confState } = init;
    const applied = init.appliedIndex;
    const history = { historyFile: init.historyFile, historyBufferBytes: HISTORY_BUFFER_BYTES, fs };
    proc.mvcc = init.mvcc;
    proc.leases = init.leases;
    proc.membership = init.membership;
    proc.applier = new Applier(proc.mvcc, proc.leases);
    proc.driver = new RaftDriver({
      node,
      storage,
      wal,
      snapshotter,
      clock: proc.clock,
      logger: this.logger(m),
      tickMs: TICK_MS,
      snapshotCount: o.snapshotCount,
      maxSnapshots: o.maxSnapshots,
      catchUpEntries: Math.min(o.catchUpEntries, o.snapshotCount),
      appliedIndex: applied,
      snapshotIndex: applied,
      confState,
      views: proc.views,
      handler: {
        applyEntries: (entries) => this.applyEntries(m, proc, entries),
        restoreSnapshot: (snap) => this.restoreSnapshot(proc, snap, history),
        captureSnapshot: (cs) =>
          captureAppState({
            confState: cs,
            membership: proc.membership,
            leases: proc.leases,
            mvcc: proc.mvcc,
            // the simulation proposes no v2 writes
            v2store: new V2Store(),
          }),
        send: (messages) => this.send(m, proc, messages),
        // as EtcdServer's proposer: a leader answers its own clients first and writes first to the
        // member whose client waits
        proposedHere: (entries) => allProposedWith(entries, proc.tag),
        proposedBy: (entries) => proposerOf(entries, proc.driver.confState),
        onSoftState: () => {},
        onReadStates: (states) => this.onReadStates(proc, states),
      },
    });
    // as EtcdServer.run: a restarted member of a multi-member cluster starts its election timer nearly
    // expired
    if (confState.voters.length > 1) { for (let i = 1; i < ELECTION_TICK; i++) node.tick(); }
  }

  /** `--initial-cluster` of the simulated cluster: members m1, m2, ... */
  private initialCluster(): Map<string, string[]> {
    const cluster = new Map<string, string[]>();
    for (let i = 1; i <= this.options.members; i++) cluster.set(`m${i}`, [`http://m${i}:2380`]);
    return cluster;
  }

  /** The configuration member `m` starts with (as `etcd --name mN --initial-cluster ...`). */
  private config(m: SimMember): Config {
    const name = `m${this.members.indexOf(m) + 1}`;
    return {
      ...defaultConfig(),
      name,
      dataDir: DATA_DIR,
      initialCluster: new Map(
        [...this.initialCluster()].map(([n, urls]) => [n, urls.map((u) => new URL(u))]),
      ),
      initialClusterToken: CLUSTER_TOKEN,
      heartbeatIntervalMs: TICK_MS,
      electionTimeoutMs: TICK_MS * ELECTION_TICK,
    };
  }

  private logger(m: SimMember): Logger {
    const line = (level: string) => (msg: string, fields?: LogFields) => {
      if (msg === "saved snapshot") this.stats.snapshotsSaved++;
      if (msg === "applied snapshot") this.stats.snapshotsApplied++;
      if (msg === "repaired the torn tail of the WAL") this.stats.walRepairs++;
      // durations measured in real time ("took") would make traces differ between replays
      const shown = fields && Object.fromEntries(Object.entries(fields).filter(([k]) => k !== "took"));
      this.trace(() => `member ${m.id} ${level}: ${msg}${shown ? " " + JSON.stringify(shown) : ""}`);
    };
    const logger: Logger = {
      debug: () => {},
      info: line("info"),
      warn: line("warn"),
      error: line("error"),
      child: () => logger,
    };
    return logger;
  }

  /** The process dies; the disk and its page cache stay. */
  private kill(m: SimMember): void {
    const p = m.proc;
    if (!p) return;
    p.dead = true;
    p.running = false;
    p.clock.kill();
    p.pfs.kill();
    m.proc = undefined;
    m.incarnation = 0;
    for (const op of [...p.waiters.values(), ...p.reads.values()]) this.giveUp(op);
    // the connections of the snapshots it was receiving break: their senders hear of it
    for (const msg of p.receiving) this.reportSnapshot(msg, false);
    p.receiving.clear();
  }

  private scheduleRestart(m: SimMember, delay: number): void {
    if (m.restartPending) return;
    m.restartPending = true;
    this.queue.after(delay, () => {
      m.restartPending = false;
      if (m.proc) return;
      this.stats.restarts++;
      this.start(m);
    });
  }

  private applyEntries(m: SimMember, proc: Proc, entries: Entry[]): void {
    for (const e of entries) {
      const rec = this.applied[e.index];
      if (rec === undefined) this.applied[e.index] = { term: e.term, data: e.data.slice(), member: m.id };
      else if (rec.term !== e.term || !bytesEqual(rec.data, e.data)) {
        this.failLater(
          `state machine safety: member ${m.id} applied index ${e.index} as an entry of term ${e.term}, ` +
            `member ${rec.member} as one of term ${rec.term}`,
        );
      }
      if (e.type === EntryType.ConfChange) {
        proc.driver.confState = proc.driver.node.applyConfChange(decodeConfChange(e.data));
        continue;
      }
      if (e.data.length === 0) continue;
      const p = decodeProposal(e.data);
      const op = p.tag === proc.tag ? proc.waiters.get(p.seq) : undefined;
      if (op) proc.waiters.delete(p.seq);
      let output: KvOutput;
      let ack: Ack | undefined;
      if (p.kind === ProposalKind.Put) {
        const r = decodePutRequest(p.payload);
        const { response } = proc.applier.put(r);
        output = {};
        ack = {
          op: "",
          key: dec.decode(r.key),
          value: dec.decode(r.value),
          revision: response.header.revision,
        };
      } else if (p.kind === ProposalKind.DeleteRange) {
        const r = decodeDeleteRangeRequest(p.payload);
        const { response } = proc.applier.deleteRange(r);
        output = { deleted: response.deleted };
        if (response.deleted > 0) {
          ack = { op: "", key: dec.decode(r.key), value: null, revision: response.header.revision };
        }
      } else if (p.kind === ProposalKind.Txn) {
        const r = decodeTxnRequest(p.payload);
        const { response } = proc.applier.txn(r);
        output = { succeeded: response.succeeded };
        const put = r.success[0]?.requestPut;
        if (response.succeeded) {
          ack = {
            op: "",
            key: dec.decode(r.compare[0].key),
            value: put ? dec.decode(put.value) : null,
            revision: response.header.revision,
          };
        }
      } else {
        this.failLater(`member ${m.id} applied a proposal of unexpected kind ${p.kind}`);
        continue;
      }
      if (op && !op.done) {
        if (ack) {
          ack.op = op.id;
          this.acks.push(ack);
          this.stats.ackedWrites++;
        }
        this.finish(op, output);
      }
    }
  }

  private restoreSnapshot(proc: Proc, snap: Snapshot, history: MvccStoreOptions): void {
    const state = restoreAppState(snap.data, history);
    const old = proc.mvcc;
    proc.mvcc = state.mvcc;
    proc.leases = state.leases;
    proc.membership = state.membership;
    old.close();
    proc.applier = new Applier(proc.mvcc, proc.leases);
    this.trace(() => `a member installed a snapshot at ${snap.metadata.index}`);
  }

  private send(m: SimMember, proc: Proc, messages: Message[]): void {
    for (let msg of messages) {
      if (msg.type === MessageType.VoteResp && !msg.reject) {
        const earlier = m.votes.record(msg.term, msg.to);
        if (earlier !== undefined) {
          this.failLater(`member ${m.id} voted for ${earlier} and then for ${msg.to} in term ${msg.term}`);
        }
      }
      if (msg.type === MessageType.Snap) msg = this.withImage(m, proc, msg);
      this.net.send(msg);
    }
  }

  /**
   * As the peer transport's snapshot sender: Raft's message carries only the metadata, and the image is
   * read from the stream over the frozen view of the snapshot's index, opened when the message is handed
   * over. Here the image then travels with the message.
   */
  private withImage(m: SimMember, proc: Proc, msg: Message): Message {
    const snap = msg.snapshot;
    if (!snap || snap.data.length > 0) {
      this.failLater(`member ${m.id} sent a MsgSnap with its image inside instead of a view to stream from`);
      return msg;
    }
    const data = collectBytes(proc.views.open(msg.to, snap.metadata.index));
    return { ...msg, snapshot: { metadata: snap.metadata, data } };
  }

  /**
   * As the peer transport's snapshot receiver: the image is written to its file through the driver's
   * `receiveSnapshot` (in chunks, as it arrives), and Raft is handed the message that path returns.
   */
  private deliverSnapshot(msg: Message, p: Proc): void {
    const image = msg.snapshot?.data ?? new Uint8Array(0);
    const chunks = async function* (): AsyncIterable<Uint8Array> {
      for (let at = 0; at < image.length; at += SNAPSHOT_CHUNK_BYTES) {
        yield image.subarray(at, at + SNAPSHOT_CHUNK_BYTES);
      }
    };
    p.receiving.add(msg);
    p.driver.receiveSnapshot(msg, { size: image.length, chunks }).then(
      (received) => {
        if (!p.receiving.delete(msg)) return; // the process died: the sender heard of it then
        if (!p.running) return this.reportSnapshot(msg, false);
        try {
          p.driver.node.step(received);
        } catch {
          return; // as EtcdServer.receive
        }
        p.driver.kick();
        this.reportSnapshot(msg, true);
      },
      (err) => {
        if (!p.receiving.delete(msg)) return;
        if (!p.dead && !isSimIoError(err)) {
          this.failLater(`receiving a snapshot failed: ${err instanceof Error ? err.stack : err}`);
        }
        this.reportSnapshot(msg, false);
      },
    );
  }

  private deliver(msg: Message): void {
    const p = this.byId.get(msg.to)?.proc;
    if (!p?.running) {
      // sent while the receiver was starting: the connection is refused, and the sender hears of it
      this.lost(msg, "receiver crashed");
      return;
    }
    if (msg.type === MessageType.Snap) return this.deliverSnapshot(msg, p);
    try {
      p.driver.node.step(msg);
    } catch {
      return; // as EtcdServer.receive: Raft refuses some messages (a removed peer's), and that is fine
    }
    p.driver.kick();
  }

  private lost(msg: Message, _reason: LossReason): void {
    if (msg.type === MessageType.Snap) this.reportSnapshot(msg, false);
  }

  /** What the peer transport tells the sender's Raft after it sent a snapshot. */
  private reportSnapshot(msg: Message, ok: boolean): void {
    const sender = this.byId.get(msg.from)?.proc;
    if (!sender?.running) return;
    sender.views.settled(msg.to);
    if (!ok) sender.driver.node.reportUnreachable(msg.to);
    sender.driver.node.reportSnapshot(msg.to, !ok);
    sender.driver.kick();
  }

  // ---- faults ---------------------------------------------------------------------------------------

  private fault(): void {
    if (this.healed) return;
    const o = this.options;
    const rng = this.rng;
    const m = rng.pick(this.members);
    const r = rng.int(100);
    if (r < 20) {
      this.net.faults = {
        dropRate: rng.pick([0, 0.05, 0.2]),
        duplicateRate: rng.pick([0, 0.02]),
        minDelay: 1,
        maxDelay: rng.pick([3, 10, 30]),
        slowRate: rng.pick([0, 0.05]),
      };
      this.trace(() => `network: ${JSON.stringify(this.net.faults)}`);
    } else if (r < 35) {
      this.net.heal();
      for (const other of this.members) {
        if (other === m) continue;
        this.net.block(m.id, other.id);
        if (rng.chance(0.7)) this.net.block(other.id, m.id);
      }
      this.stats.partitions++;
      this.trace(() => `partition: ${this.net.describePartitions()}`);
    } else if (r < 45) {
      this.net.heal();
      this.trace(() => "partitions healed");
    } else if (r < 62) {
      if (m.proc) {
        const power = o.sabotage === "lying-fsync" || rng.chance(0.6);
        if (power && rng.chance(0.6)) {
          // in the middle of the member's I/O: right after one of its next writes, before its fsync
          const writes = rng.range(1, 4);
          this.trace(() => `member ${m.id}: power loss armed for its ${writes}th next write`);
          m.disk.armCrash(writes, () => {
            if (!m.proc || this.healed) return;
            this.powerLoss(m);
          });
        } else if (power) {
          this.powerLoss(m);
        } else {
          this.trace(() => `member ${m.id}: process crash`);
          this.kill(m);
          this.stats.processCrashes++;
          if (rng.chance(0.3)) m.powerLossAfterStart = rng.range(0, 30);
          this.scheduleRestart(m, rng.range(10, 400));
        }
      }
    } else if (r < 72) {
      m.disk.faults = { ...m.disk.faults, slowRate: rng.pick([0, 0.1, 0.5]), slowDelay: rng.pick([20, 100]) };
      this.trace(() => `member ${m.id}: disk slowness ${m.disk.faults.slowRate}`);
    } else if (r < 80 && o.syncFailures) {
      m.disk.faults = { ...m.disk.faults, syncFailRate: rng.pick([0.05, 0.3]) };
      m.failingUntil = this.queue.now + rng.range(50, 300);
      this.queue.at(m.failingUntil, () => {
        if (this.queue.now >= m.failingUntil) m.disk.faults = { ...m.disk.faults, syncFailRate: 0 };
      });
      this.trace(() => `member ${m.id}: fsyncs fail for a while`);
    } else if (r < 86) {
      // a leadership transfer, as Maintenance.MoveLeader or a graceful stop asks for one
      const leader = this.members.find((x) => x.proc?.running && x.proc.driver.state === StateType.Leader);
      if (leader && leader !== m) {
        this.trace(() => `member ${leader.id}: transfers leadership to ${m.id}`);
        leader.proc!.driver.node.transferLeader(m.id);
        leader.proc!.driver.kick();
        this.stats.transfers++;
      }
    }
    this.queue.after(rng.range(1, 2 * o.faultEveryMs), () => this.fault());
  }

  private powerLoss(m: SimMember): void {
    this.trace(() => `member ${m.id}: power loss`);
    this.kill(m);
    m.disk.crash();
    this.stats.powerLosses++;
    this.scheduleRestart(m, this.rng.range(10, 400));
  }

  private heal(): void {
    this.healed = true;
    this.net.faults = { ...CALM };
    this.net.heal();
    for (const m of this.members) {
      m.disk.faults = { ...GOOD_DISK, lyingFsync: m.disk.faults.lyingFsync };
      m.failingUntil = 0;
      if (!m.proc) this.scheduleRestart(m, 0);
    }
    this.trace(() => "heal: reliable network and disks, every member restarts");
  }

  // ---- clients --------------------------------------------------------------------------------------

  private issue(client: Client): void {
    if (this.clientsStopped) return;
    const rng = this.rng;
    const retry = (): void => this.queue.after(rng.range(5, 30), () => this.issue(client));
    const m = rng.pick(this.members);
    const proc = m.proc;
    if (!proc?.running || proc.driver.fatalError) return retry(); // refused: the member is down
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
      member: m,
      proc,
      done: false,
      op: { client: client.id, input, call: this.queue.now },
    };
    if (input.kind === "get") {
      if (this.options.sabotage === "stale-reads") {
        this.record(op);
        this.finish(op, { value: this.readValue(proc, key) });
        return;
      }
      if (proc.driver.lead === NONE) return retry(); // etcd answers "no leader" at once
      const readId = ++proc.readSeq;
      const ctx = new Uint8Array(8);
      new DataView(ctx.buffer).setFloat64(0, readId);
      proc.reads.set(readId, op);
      proc.driver.node.readIndex(ctx);
      proc.driver.kick();
      const again = (): void => {
        if (!proc.reads.has(readId) || op.done) return;
        proc.driver.node.readIndex(ctx); // as EtcdServer: an unanswered ReadIndex is asked again
        proc.driver.kick();
        proc.clock.setTimeout(again, READ_RETRY_MS);
      };
      proc.clock.setTimeout(again, READ_RETRY_MS);
    } else {
      const seq = proc.seq++;
      try {
        const [kind, payload] = this.proposal(input);
        proc.driver.node.propose(encodeProposal(kind, proc.tag, seq, payload));
      } catch (err) {
        if (!(err instanceof ErrProposalDropped)) throw err;
        return retry(); // never entered the log: the client sees an error and tries again
      }
      proc.waiters.set(seq, op);
      proc.driver.kick();
    }
    this.record(op);
    this.queue.after(this.options.opTimeoutMs, () => this.giveUp(op));
  }

  /** The request a write becomes, as the KV service would propose it: kind and protobuf payload. */
  private proposal(input: KvInput): [ProposalKind, Uint8Array] {
    const key = enc.encode(input.key);
    const empty = new Uint8Array(0);
    if (input.kind === "put") {
      const r = {
        key,
        value: enc.encode(input.value),
        lease: 0n,
        prevKv: false,
        ignoreValue: false,
        ignoreLease: false,
      };
      return [ProposalKind.Put, encodePutRequest(r)];
    }
    if (input.kind === "delete") {
      return [ProposalKind.DeleteRange, encodeDeleteRangeRequest({ key, rangeEnd: empty, prevKv: false })];
    }
    if (input.kind !== "cas") throw new Error("reads are not proposed");
    const compare = input.expected === null
      ? { result: CompareResult.EQUAL, target: CompareTarget.VERSION, version: 0, value: empty }
      : {
        result: CompareResult.EQUAL,
        target: CompareTarget.VALUE,
        version: 0,
        value: enc.encode(input.expected),
      };
    const txn: TxnRequest = {
      compare: [{ ...compare, key, createRevision: 0, modRevision: 0, lease: 0n, rangeEnd: empty }],
      success: [
        input.value === null ? { requestDeleteRange: { key, rangeEnd: empty, prevKv: false } } : {
          requestPut: {
            key,
            value: enc.encode(input.value),
            lease: 0n,
            prevKv: false,
            ignoreValue: false,
            ignoreLease: false,
          },
        },
      ],
      failure: [],
    };
    return [ProposalKind.Txn, encodeTxnRequest(txn)];
  }

  private readValue(proc: Proc, key: string): string | null {
    const kv = proc.mvcc.range(enc.encode(key), undefined, {}).kvs[0];
    return kv === undefined ? null : dec.decode(kv.value);
  }

  private onReadStates(proc: Proc, states: ReadState[]): void {
    for (const rs of states) {
      if (rs.requestCtx.length !== 8) continue;
      const readId = new DataView(rs.requestCtx.buffer, rs.requestCtx.byteOffset, 8).getFloat64(0);
      const op = proc.reads.get(readId);
      if (!op) continue;
      proc.reads.delete(readId);
      proc.driver.waitApplied(rs.index).then(() => {
        if (proc.dead || op.done) return;
        this.finish(op, { value: this.readValue(proc, (op.op.input as { key: string }).key) });
      });
    }
  }

  private record(op: ClientOp): void {
    this.history.push(op.op);
    this.outstanding++;
    this.trace(() =>
      `client ${op.client.id} calls ${JSON.stringify(op.op.input)} on member ${op.member.id} (${op.id})`
    );
  }

  private finish(op: ClientOp, output: KvOutput): void {
    if (op.done) return;
    const fatal = op.proc.driver.fatalError;
    if (fatal) {
      this.failLater(`member ${op.member.id} answered ${op.id} after its fatal error (${fatal.message})`);
    }
    op.done = true;
    this.outstanding--;
    op.op.output = output;
    op.op.return = this.queue.now;
    this.stats.opsCompleted++;
    const input = op.op.input;
    if (input.kind === "get") op.client.seen.set(input.key, output.value ?? null);
    if (input.kind === "put") op.client.seen.set(input.key, input.value);
    this.trace(() => `client ${op.client.id} gets ${op.id} -> ${JSON.stringify(output)}`);
    this.queue.after(this.rng.range(0, 20), () => this.issue(op.client));
  }

  /** The client stops waiting: the operation stays pending (it may or may not have taken effect). */
  private giveUp(op: ClientOp): void {
    if (op.done) return;
    op.done = true;
    this.outstanding--;
    this.stats.opsPending++;
    this.trace(() => `client ${op.client.id} gives up on ${op.id}`);
    this.queue.after(this.rng.range(0, 20), () => this.issue(op.client));
  }

  // ---- final checks ---------------------------------------------------------------------------------

  private finalChecks(): void {
    const procs = this.members.map((m) => m.proc!);
    const first = procs[0].mvcc.hashKV(0);
    for (let i = 1; i < procs.length; i++) {
      const h = procs[i].mvcc.hashKV(0);
      if (h.hash !== first.hash || h.revision !== first.revision) {
        this.fail(
          `convergence: members 1 and ${i + 1} differ: revision ${first.revision} hash ${first.hash} vs ` +
            `revision ${h.revision} hash ${h.hash}`,
        );
      }
    }
    // every snapshot upload ended, so no frozen view may still hold store memory
    for (const m of this.members) {
      const held = m.proc!.views.indexes();
      if (held.length > 0) this.fail(`member ${m.id} still holds snapshot views at ${held.join(", ")}`);
    }
    for (const ack of this.acks) {
      for (const m of this.members) {
        const kv = m.proc!.mvcc.range(enc.encode(ack.key), undefined, { revision: ack.revision }).kvs[0];
        const ok = ack.value === null
          ? kv === undefined
          : kv !== undefined && kv.modRevision === ack.revision && dec.decode(kv.value) === ack.value;
        if (!ok) {
          this.fail(
            `acknowledged write lost: ${ack.op} (${ack.key} = ${ack.value}) acknowledged at revision ` +
              `${ack.revision}, member ${m.id} has ${
                kv ? `${dec.decode(kv.value)}@${kv.modRevision}` : "nothing"
              }`,
          );
        }
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
      JSON.stringify({ ...this.stats, net: this.net.stats }),
      ...this.members.map((m) => `${m.id}:${m.proc?.mvcc.hashKV(0).hash}:${m.proc?.driver.appliedIndex}`),
    ]);
  }

  static async run(options: ServerSimOptions): Promise<ServerSimReport> {
    const sim = new ServerSimulation(options);
    try {
      return await sim.run();
    } catch (err) {
      throw new ServerSimFailure(options.seed, sim.queue.now, failureReason(err), sim.tracing.lines);
    }
  }
}

/**
 * Runs one whole-member simulation. Throws {@link ServerSimFailure} on any violation; when tracing is
 * off, a failure is replayed with tracing on so that it carries the last trace lines.
 */
export async function runServerSimulation(options: ServerSimOptions): Promise<ServerSimReport> {
  try {
    return await ServerSimulation.run(options);
  } catch (err) {
    if (!(err instanceof ServerSimFailure) || options.trace) throw err;
    try {
      await ServerSimulation.run({ ...options, trace: true });
    } catch (again) {
      if (again instanceof ServerSimFailure) throw again;
    }
    throw err;
  }
}
