/**
 * RawNode: the driver-facing surface of the Raft state machine. A driver feeds it ticks, messages and
 * proposals, and repeatedly takes a {@linkcode Ready} (what to persist, send and apply), does that, then
 * calls {@linkcode RawNode.advance}. Nothing here is asynchronous or reads a clock.
 *
 * Between `ready()` and `advance()` the driver may keep stepping messages and proposals (they are part of
 * the next Ready); it must not call `ready()` again before `advance()`.
 *
 * @module
 */
import { encodeConfChange, encodeConfChangeV2 } from "./conf_change.ts";
import { ErrProposalDropped, Raft, type RaftConfig } from "./raft.ts";
import {
  type ConfChange,
  ConfChangeType,
  type ConfChangeV2,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type NodeId,
  NONE,
  type Ready,
  type SoftState,
  StateType,
} from "./types.ts";
import { hardStateEqual, isLocalMessage, isResponseMessage, makeMessage } from "./util.ts";

export { ErrProposalDropped };
export type { RaftConfig };

/** A local-only message type arrived from the network. */
export class ErrStepLocalMsg extends Error {
  readonly code = "STEP_LOCAL_MSG";
  constructor() {
    super("raft: cannot step raft local message");
    this.name = "ErrStepLocalMsg";
  }
}

/** A response arrived from a node that is not in the configuration. */
export class ErrStepPeerNotFound extends Error {
  readonly code = "STEP_PEER_NOT_FOUND";
  constructor() {
    super("raft: cannot step as peer not found");
    this.name = "ErrStepPeerNotFound";
  }
}

/** A member of the initial configuration. */
export interface Peer {
  id: NodeId;
  /** Opaque to Raft; etcd puts the member's JSON here. */
  context: Uint8Array;
}

/** A snapshot of the node's state for observers. */
export interface Status {
  id: NodeId;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  leadTransferee: NodeId;
  /** Per-follower replication state; only on the leader. */
  progress?: Map<NodeId, { match: number; next: number; state: string; recentActive: boolean }>;
}

/** What a Ready handed out, so that `advance()` can acknowledge exactly that. */
interface InFlight {
  lastEntry?: { index: number; term: number };
  snapshotIndex: number;
  appliedTo: number;
}

/** A Raft node without goroutines or timers: the caller drives it. */
export class RawNode {
  readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private inFlight: InFlight | undefined;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoft = this.softState();
    this.prevHard = this.raft.hardState();
  }

  /**
   * Starts a brand-new cluster: the initial members become committed conf change entries at term 1.
   * Only on an empty log; a restarting node gets its configuration from its storage instead.
   */
  bootstrap(peers: Peer[]): void {
    if (peers.length === 0) throw new Error("must provide at least one peer to bootstrap");
    if (this.raft.log.lastIndex() !== 0) throw new Error("can't bootstrap a nonempty Storage");
    this.raft.becomeFollower(1, NONE);
    const ents: Entry[] = peers.map((p, i) => ({
      term: 1,
      index: i + 1,
      type: EntryType.ConfChange,
      data: encodeConfChange({ type: ConfChangeType.AddNode, nodeId: p.id, context: p.context }),
    }));
    this.raft.log.append(ents);
    // committed by definition: every member starts from the same entries. They are handed to the
    // application (after being persisted) like any other committed conf change.
    this.raft.log.committed = ents.length;
    for (const p of peers) {
      this.raft.applyConfChange({ type: ConfChangeType.AddNode, nodeId: p.id, context: p.context });
    }
  }

  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (with a pre-vote round when enabled). */
  campaign(): void {
    this.raft.step(makeMessage({ type: MessageType.Hup, from: this.raft.id }));
  }

  /** Proposes data to be appended to the log; throws {@linkcode ErrProposalDropped}. */
  propose(data: Uint8Array): void {
    this.raft.step(makeMessage({
      type: MessageType.Prop,
      from: this.raft.id,
      entries: [{ term: 0, index: 0, type: EntryType.Normal, data }],
    }));
  }

  /** Proposes several entries as one batch (one append, one message per follower). */
  proposeBatch(datas: Uint8Array[]): void {
    if (datas.length === 0) return;
    this.raft.step(makeMessage({
      type: MessageType.Prop,
      from: this.raft.id,
      entries: datas.map((data) => ({ term: 0, index: 0, type: EntryType.Normal, data })),
    }));
  }

  /**
   * Proposes a membership change, as an entry of type ConfChange or ConfChangeV2 (whose data are etcd's
   * raftpb messages); it takes effect when applied through {@linkcode applyConfChange}.
   */
  proposeConfChange(cc: ConfChange | ConfChangeV2): void {
    const entry = "changes" in cc
      ? { term: 0, index: 0, type: EntryType.ConfChangeV2, data: encodeConfChangeV2(cc) }
      : { term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) };
    this.raft.step(makeMessage({ type: MessageType.Prop, from: this.raft.id, entries: [entry] }));
  }

  /** Applies a committed conf change of either kind; call it when the entry is applied. */
  applyConfChange(cc: ConfChange | ConfChangeV2): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Steps a message received from a peer. */
  step(m: Message): void {
    if (isLocalMessage(m.type)) throw new ErrStepLocalMsg();
    if (isResponseMessage(m.type) && !this.raft.trk.progress.has(m.from)) throw new ErrStepPeerNotFound();
    this.raft.step(m);
  }

  /**
   * Asks for a linearizable read point. The answer comes later in `Ready.readStates` with the same `ctx`:
   * reads may be served once the applied index reaches its `index`. Unanswered requests (leader change,
   * lost message) simply never come back: the caller retries with a timeout.
   */
  readIndex(ctx: Uint8Array): void {
    this.raft.step(makeMessage({
      type: MessageType.ReadIndex,
      entries: [{ term: 0, index: 0, type: EntryType.Normal, data: ctx }],
    }));
  }

  /** Asks the leader to hand leadership to `transferee`. */
  transferLeader(transferee: NodeId): void {
    this.raft.step(makeMessage({ type: MessageType.TransferLeader, from: transferee }));
  }

  /** Tells the leader that the last message to `id` could not be delivered. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(makeMessage({ type: MessageType.Unreachable, from: id }));
  }

  /** Tells the leader whether a snapshot reached `id`. */
  reportSnapshot(id: NodeId, failed: boolean): void {
    this.raft.step(makeMessage({ type: MessageType.SnapStatus, from: id, reject: failed }));
  }

  private softState(): SoftState {
    return { lead: this.raft.lead, raftState: this.raft.state };
  }

  /** Whether there is anything to persist, send or apply (called on every turn of the driver's loop). */
  hasReady(): boolean {
    const r = this.raft;
    if (r.lead !== this.prevSoft.lead || r.state !== this.prevSoft.raftState) return true;
    const p = this.prevHard;
    if (r.term !== p.term || r.vote !== p.vote || r.log.committed !== p.commit) return true;
    const u = r.log.unstable;
    if (u.nextSnapshot()) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (u.offsetInProgress < u.offset + u.entries.length) return true;
    return r.log.hasNextCommittedEntries();
  }

  /**
   * Takes this node's proposals and read requests for the leader out of what the next Ready would send,
   * to be sent now. They promise nothing about this node's log or state, so unlike the Ready's other
   * messages they need not wait for its write (nor for the Ready in progress to end). Empty when there
   * are none, as on a leader, which forwards nothing.
   */
  takeForwarded(): Message[] {
    const r = this.raft;
    let forwarded: Message[] | undefined;
    for (const m of r.msgs) {
      if (isForwarded(m)) (forwarded ??= []).push(m);
    }
    if (forwarded === undefined) return [];
    r.msgs = r.msgs.filter((m) => !isForwarded(m));
    return forwarded;
  }

  /** Everything to do now; call {@linkcode advance} when done. */
  ready(): Ready {
    if (this.inFlight) throw new Error("ready() called again before advance()");
    const r = this.raft;
    const log = r.log;
    const entries = log.nextUnstableEntries();
    const committedEntries = log.nextCommittedEntries();
    const snapshot = log.unstable.nextSnapshot();
    const rd: Ready = {
      readStates: r.readStates,
      entries,
      committedEntries,
      messages: r.msgs,
      mustSync: false,
      snapshot,
    };
    const soft = this.softState();
    if (soft.lead !== this.prevSoft.lead || soft.raftState !== this.prevSoft.raftState) {
      rd.softState = soft;
      this.prevSoft = soft;
    }
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.prevHard)) {
      rd.hardState = hs;
      // a new term or vote must be on disk before any message that depends on it leaves
      rd.mustSync = entries.length > 0 || hs.term !== this.prevHard.term || hs.vote !== this.prevHard.vote;
      this.prevHard = hs;
    } else {
      rd.mustSync = entries.length > 0;
    }
    if (snapshot) rd.mustSync = true;
    r.msgs = [];
    r.readStates = [];
    log.unstable.acceptInProgress();
    const last = entries.length > 0 ? entries[entries.length - 1] : undefined;
    const appliedTo = committedEntries.length > 0 ? committedEntries[committedEntries.length - 1].index : 0;
    if (appliedTo > 0) log.applying = appliedTo;
    this.inFlight = {
      lastEntry: last ? { index: last.index, term: last.term } : undefined,
      snapshotIndex: snapshot ? snapshot.metadata.index : 0,
      appliedTo,
    };
    return rd;
  }

  /** Reports that the last Ready was handled: persisted, sent and applied. */
  advance(): void {
    const f = this.inFlight;
    if (!f) return;
    this.inFlight = undefined;
    const r = this.raft;
    if (f.snapshotIndex > 0) {
      r.log.stableSnapTo(f.snapshotIndex);
      // the application restored the snapshot: everything up to its index counts as applied
      if (r.log.applied < f.snapshotIndex) r.appliedTo(f.snapshotIndex);
    }
    if (f.lastEntry) {
      const { index, term } = f.lastEntry;
      r.log.stableTo(index, term);
      // the leader's own vote for its entries counts only now that they are durable
      if (r.state === StateType.Leader && r.log.matchTerm(index, term)) {
        r.step(makeMessage({ type: MessageType.AppResp, from: r.id, term: r.term, index }));
      }
    }
    if (f.appliedTo > 0) r.appliedTo(f.appliedTo);
  }

  /** The highest log index known to be committed (cheaper than {@link status}). */
  commitIndex(): number {
    return this.raft.log.committed;
  }

  status(): Status {
    const r = this.raft;
    const s: Status = {
      id: r.id,
      hardState: r.hardState(),
      softState: this.softState(),
      applied: r.log.applied,
      leadTransferee: r.leadTransferee,
    };
    if (r.state === StateType.Leader) {
      s.progress = new Map();
      for (const [id, pr] of r.trk.progress) {
        s.progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          recentActive: pr.recentActive,
        });
      }
    }
    return s;
  }
}

/** A proposal or read request on its way to the leader: it travels as a local message (term 0). */
function isForwarded(m: Message): boolean {
  return m.term === 0 && (m.type === MessageType.Prop || m.type === MessageType.ReadIndex);
}
