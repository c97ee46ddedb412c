/**
 * The Raft consensus state machine of one node: elections (with PreVote and CheckQuorum), log
 * replication with flow control, commitment by quorum, snapshots for lagging followers, leader transfer
 * and ReadIndex reads.
 *
 * It is pure: it never reads a clock, touches a socket or a file. Time arrives as {@linkcode Raft.tick},
 * messages as {@linkcode Raft.step}; messages to send collect in `msgs`, entries to persist in the
 * unstable part of the log. {@link RawNode} (node.ts) turns that into Ready batches for a driver.
 *
 * Durability rule: entries count for the leader's own quorum vote only after they are persisted. The
 * leader acknowledges its own entries when the driver reports them stable (RawNode.advance), and
 * committed entries are handed out for applying only once they are stable locally too.
 *
 * @module
 */
import {
  Changer,
  type ChangeResult,
  confChangeToV2,
  decodeConfChange,
  decodeConfChangeV2,
  jointEntry,
  leavesJoint,
  restoreConfig,
} from "./conf_change.ts";
import { RaftLog } from "./log.ts";
import { Progress, ProgressTracker } from "./progress.ts";
import { jointVoteResult, VoteResult } from "./quorum.ts";
import { ReadOnly, type ReadOnlyOption } from "./read_index.ts";
import { ErrCompacted, ErrSnapshotTemporarilyUnavailable, ErrUnavailable, type Storage } from "./storage.ts";
import {
  type ConfChange,
  type ConfChangeV2,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type NodeId,
  NONE,
  type ReadState,
  type Snapshot,
  StateType,
} from "./types.ts";
import {
  EMPTY_BYTES,
  isConfChangeEntry,
  isEmptyHardState,
  makeMessage,
  NO_LIMIT,
  type RaftLogger,
  SILENT_LOGGER,
  voteResponseType,
} from "./util.ts";

/** A proposal could not be accepted: no leader known, a leader transfer is running, or not a member. */
export class ErrProposalDropped extends Error {
  readonly code = "PROPOSAL_DROPPED";
  constructor() {
    super("raft proposal dropped");
    this.name = "ErrProposalDropped";
  }
}

/** Settings of one node. */
export interface RaftConfig {
  /** This node's ID, never 0. */
  id: NodeId;
  /** Ticks without hearing from a leader before a follower campaigns (randomized in [n, 2n)). */
  electionTick: number;
  /** Ticks between a leader's heartbeats; must be below electionTick. */
  heartbeatTick: number;
  /** The persisted log, hard state and snapshot. */
  storage: Storage;
  /** The last index the application has applied (on restart); 0 for none. */
  applied?: number;
  /** Most bytes of entries in one append message. */
  maxSizePerMsg?: number;
  /** Most bytes of committed entries handed out in one Ready. */
  maxCommittedSizePerReady?: number;
  /** Most append messages in flight to one follower while replicating. */
  maxInflightMsgs?: number;
  /** A leader steps down when it has not heard from a quorum within an election timeout. */
  checkQuorum?: boolean;
  /** Ask for votes without bumping the term first, so a partitioned node cannot disrupt the cluster. */
  preVote?: boolean;
  /** "safe" confirms leadership with a heartbeat round for every ReadIndex batch. */
  readOnlyOption?: ReadOnlyOption;
  /** Random numbers in [0, 1) for election timeouts; inject a seeded one for deterministic runs. */
  random?: () => number;
  logger?: RaftLogger;
}

/** Context of a vote started by a leader transfer: it may disturb a live leader. */
const CAMPAIGN_TRANSFER = new TextEncoder().encode("CampaignTransfer");

type CampaignType = "pre-election" | "election" | "transfer";

function isTransfer(ctx: Uint8Array): boolean {
  if (ctx.length !== CAMPAIGN_TRANSFER.length) return false;
  for (let i = 0; i < ctx.length; i++) if (ctx[i] !== CAMPAIGN_TRANSFER[i]) return false;
  return true;
}

/** One Raft node's state. */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  readStates: ReadState[] = [];
  readonly log: RaftLog;
  readonly trk: ProgressTracker;
  state: StateType = StateType.Follower;
  isLearner = false;
  /** Messages to send once what they promise is persisted. */
  msgs: Message[] = [];
  lead: NodeId = NONE;
  leadTransferee: NodeId = NONE;
  /** Index of the newest conf change proposed; a new one waits until it is applied. */
  pendingConfIndex = 0;
  readonly readOnly: ReadOnly;
  electionElapsed = 0;
  private heartbeatElapsed = 0;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  private readonly heartbeatTimeout: number;
  private readonly electionTimeout: number;
  private randomizedElectionTimeout = 0;
  private readonly maxMsgSize: number;
  private readonly maxInflight: number;
  private readonly random: () => number;
  private readonly logger: RaftLogger;
  /** ReadIndex requests waiting for the first commit of this leader's term. */
  private pendingReadIndexMessages: Message[] = [];

  constructor(c: RaftConfig) {
    if (c.id === NONE) throw new Error("cannot use none as id");
    if (c.heartbeatTick <= 0) throw new Error("heartbeat tick must be greater than 0");
    if (c.electionTick <= c.heartbeatTick) {
      throw new Error("election tick must be greater than heartbeat tick");
    }
    this.id = c.id;
    this.logger = c.logger ?? SILENT_LOGGER;
    this.log = new RaftLog(c.storage, this.logger, c.maxCommittedSizePerReady ?? NO_LIMIT);
    this.maxMsgSize = c.maxSizePerMsg ?? 1024 * 1024;
    this.maxInflight = c.maxInflightMsgs ?? 256;
    this.trk = new ProgressTracker(this.maxInflight);
    this.checkQuorum = c.checkQuorum ?? false;
    this.preVote = c.preVote ?? false;
    this.readOnly = new ReadOnly(c.readOnlyOption ?? "safe");
    this.heartbeatTimeout = c.heartbeatTick;
    this.electionTimeout = c.electionTick;
    this.random = c.random ?? Math.random;

    const { hardState, confState } = c.storage.initialState();
    this.applyChangeResult(restoreConfig(confState, this.maxInflight, this.log.lastIndex()));
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    if (c.applied && c.applied > 0) this.log.appliedTo(c.applied);
    this.becomeFollower(this.term, NONE);
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private loadState(hs: HardState): void {
    if (hs.commit < this.log.committed || hs.commit > this.log.lastIndex()) {
      throw new Error(
        `${this.id} state.commit ${hs.commit} is out of range [${this.log.committed}, ${this.log.lastIndex()}]`,
      );
    }
    this.log.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  // ---- sending -------------------------------------------------------------------------------------

  private send(m: Message): void {
    m.from = this.id;
    if (
      m.type === MessageType.Vote || m.type === MessageType.VoteResp || m.type === MessageType.PreVote ||
      m.type === MessageType.PreVoteResp
    ) {
      if (m.term === 0) throw new Error(`term should be set when sending ${MessageType[m.type]}`);
    } else {
      if (m.term !== 0) throw new Error(`term should not be set when sending ${MessageType[m.type]}`);
      // proposals and read requests forwarded to the leader travel as local messages (term 0)
      if (m.type !== MessageType.Prop && m.type !== MessageType.ReadIndex) m.term = this.term;
    }
    this.msgs.push(m);
  }

  /** Sends entries (or a snapshot) to a follower if its progress allows; true if something was sent. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    if (to === this.id) return false;
    const pr = this.trk.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let ents: Entry[];
    if (pr.next < this.log.firstIndex()) return this.maybeSendSnapshot(to, pr);
    try {
      prevTerm = this.log.term(prevIndex);
      ents = this.log.entries(pr.next, this.maxMsgSize);
    } catch (err) {
      if (err instanceof ErrCompacted || err instanceof ErrUnavailable) return this.maybeSendSnapshot(to, pr);
      throw err;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send(makeMessage({
      type: MessageType.App,
      to,
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: this.log.committed,
    }));
    if (pr.state === "replicate") {
      if (ents.length > 0) {
        const last = ents[ents.length - 1].index;
        pr.optimisticUpdate(last);
        pr.inflights.add(last);
      }
    } else if (pr.state === "probe") {
      pr.probeSent = true;
    }
    return true;
  }

  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    let snap: Snapshot;
    try {
      snap = this.log.snapshot();
    } catch (err) {
      if (err instanceof ErrSnapshotTemporarilyUnavailable) return false;
      throw err;
    }
    if (snap.metadata.index === 0) throw new Error("need non-empty snapshot");
    pr.becomeSnapshot(snap.metadata.index);
    this.logger.info("sending snapshot to a lagging follower", {
      to: String(to),
      index: snap.metadata.index,
    });
    this.send(makeMessage({ type: MessageType.Snap, to, snapshot: snap }));
    return true;
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  private sendHeartbeat(to: NodeId, ctx: Uint8Array): void {
    const pr = this.trk.progress.get(to);
    const commit = Math.min(pr ? pr.match : 0, this.log.committed);
    this.send(makeMessage({ type: MessageType.Heartbeat, to, commit, context: ctx }));
  }

  private bcastAppend(): void {
    for (const id of this.trk.progress.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx() ?? EMPTY_BYTES);
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array): void {
    for (const id of this.trk.progress.keys()) if (id !== this.id) this.sendHeartbeat(id, ctx);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(makeMessage({ type: MessageType.TimeoutNow, to }));
  }

  // ---- state transitions ---------------------------------------------------------------------------

  private maybeCommit(): boolean {
    return this.log.maybeCommit(this.trk.committed(), this.term);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const last = this.log.lastIndex();
    // what this node has persisted; entries still being written are acknowledged when they land
    const stable = Math.min(last, this.log.stableIndex());
    for (const [id, old] of this.trk.progress) {
      const pr = new Progress(last + 1, this.maxInflight, old.isLearner);
      if (id === this.id) pr.match = stable;
      this.trk.progress.set(id, pr);
    }
    this.pendingConfIndex = 0;
    this.readOnly.reset();
    this.pendingReadIndexMessages = [];
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(this.random() * this.electionTimeout);
  }

  private pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
  }

  private becomeCandidate(): void {
    if (this.state === StateType.Leader) throw new Error("invalid transition [leader -> candidate]");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
    this.logger.info("became candidate", { id: String(this.id), term: this.term });
  }

  private becomePreCandidate(): void {
    if (this.state === StateType.Leader) throw new Error("invalid transition [leader -> pre-candidate]");
    // a pre-candidate keeps its term and vote: the pre-vote round changes nothing durable
    this.trk.resetVotes();
    this.lead = NONE;
    this.state = StateType.PreCandidate;
  }

  private becomeLeader(): void {
    if (this.state === StateType.Follower) throw new Error("invalid transition [follower -> leader]");
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    const self = this.trk.progress.get(this.id);
    if (self) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    // conf changes proposed by earlier leaders may be uncommitted; wait for them before accepting more
    this.pendingConfIndex = this.log.lastIndex();
    this.appendEntry([{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY_BYTES }]);
    this.logger.info("became leader", { id: String(this.id), term: this.term });
  }

  private appendEntry(es: Entry[]): void {
    let li = this.log.lastIndex();
    for (const e of es) {
      e.term = this.term;
      e.index = ++li;
    }
    this.log.append(es);
  }

  // ---- time ----------------------------------------------------------------------------------------

  /** Advances the logical clock by one tick. */
  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(makeMessage({ type: MessageType.Hup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(makeMessage({ type: MessageType.CheckQuorum, from: this.id }));
      // a transfer that did not finish within an election timeout is given up
      if (this.state === StateType.Leader && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(makeMessage({ type: MessageType.Beat, from: this.id }));
    }
  }

  // ---- elections -----------------------------------------------------------------------------------

  /** Whether this node may become leader: a voter without a snapshot waiting to be applied. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && this.log.unstable.snapshot === undefined;
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    let ents: Entry[];
    try {
      ents = this.log.slice(this.log.applied + 1, this.log.committed + 1, NO_LIMIT);
    } catch (err) {
      // the applied index fell behind the log's start: a bug in how the driver reports what it applied
      this.logger.warn("cannot read unapplied entries; refusing to campaign", {
        id: String(this.id),
        applied: this.log.applied,
        error: String(err),
      });
      return true;
    }
    return ents.some(isConfChangeEntry);
  }

  private hup(t: CampaignType): void {
    if (this.state === StateType.Leader) return;
    if (!this.promotable()) {
      this.logger.warn("is unpromotable and can not campaign", { id: String(this.id) });
      return;
    }
    if (this.hasUnappliedConfChanges()) {
      this.logger.warn("cannot campaign: there are unapplied conf changes", { id: String(this.id) });
      return;
    }
    this.campaign(t);
  }

  private campaign(t: CampaignType): void {
    let voteMsg: MessageType;
    let term: number;
    if (t === "pre-election") {
      this.becomePreCandidate();
      voteMsg = MessageType.PreVote;
      term = this.term + 1; // the term this node would campaign for
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.Vote;
      term = this.term;
    }
    const voters = this.trk.voterNodes();
    if (voters.includes(this.id)) {
      const { result } = this.poll(this.id, voteResponseType(voteMsg), true);
      if (result === VoteResult.Won) {
        // won by its own vote alone: a single-voter cluster
        if (t === "pre-election") this.campaign("election");
        else this.becomeLeader();
        return;
      }
    }
    for (const id of voters) {
      if (id === this.id) continue;
      this.send(makeMessage({
        type: voteMsg,
        to: id,
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        context: t === "transfer" ? CAMPAIGN_TRANSFER : EMPTY_BYTES,
      }));
    }
  }

  private poll(id: NodeId, _t: MessageType, granted: boolean): { result: VoteResult } {
    this.trk.recordVote(id, granted);
    return { result: this.trk.tallyVotes().result };
  }

  // ---- stepping ------------------------------------------------------------------------------------

  /** Handles one message (local or from a peer). Throws ErrProposalDropped for a rejected proposal. */
  step(m: Message): void {
    if (m.term === 0) {
      // local message
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = isTransfer(m.context);
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // a leader is alive as far as this node knows: ignore the disruptive vote request
          return;
        }
      }
      if (m.type === MessageType.PreVote) {
        // a pre-vote never changes this node's term
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // the term is bumped when the pre-vote wins a quorum
      } else if (
        m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap
      ) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if (
        (this.checkQuorum || this.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)
      ) {
        // tell a stale leader (e.g. one that was partitioned) about the newer term so it steps down
        this.send(makeMessage({ type: MessageType.AppResp, to: m.from }));
      } else if (m.type === MessageType.PreVote) {
        this.send(makeMessage({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true }));
      }
      return;
    }

    switch (m.type) {
      case MessageType.Hup:
        this.hup(this.preVote ? "pre-election" : "election");
        return;
      case MessageType.Vote:
      case MessageType.PreVote: {
        const canVote = this.vote === m.from || (this.vote === NONE && this.lead === NONE) ||
          (m.type === MessageType.PreVote && m.term > this.term);
        if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
          this.send(makeMessage({ type: voteResponseType(m.type), to: m.from, term: m.term }));
          if (m.type === MessageType.Vote) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(
            makeMessage({ type: voteResponseType(m.type), to: m.from, term: this.term, reject: true }),
          );
        }
        return;
      }
    }
    switch (this.state) {
      case StateType.Leader:
        this.stepLeader(m);
        return;
      case StateType.Candidate:
      case StateType.PreCandidate:
        this.stepCandidate(m);
        return;
      default:
        this.stepFollower(m);
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat();
        return;
      case MessageType.CheckQuorum:
        if (!this.trk.quorumActive()) {
          this.logger.warn("stepped down to follower since quorum is not active", { id: String(this.id) });
          this.becomeFollower(this.term, NONE);
        }
        for (const [id, pr] of this.trk.progress) if (id !== this.id) pr.recentActive = false;
        return;
      case MessageType.Prop:
        this.propose(m);
        return;
      case MessageType.ReadIndex:
        if (this.trk.isSingleton()) {
          this.answerReadIndex(m, this.log.committed);
          return;
        }
        if (!this.committedEntryInCurrentTerm()) {
          this.pendingReadIndexMessages.push(m);
          return;
        }
        this.handleReadIndex(m);
        return;
    }

    const pr = this.trk.progress.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case MessageType.AppResp:
        this.handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp: {
        pr.recentActive = true;
        pr.probeSent = false;
        if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
        if (this.readOnly.option !== "safe" || m.context.length === 0) return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (!acks) return;
        let granted = 0;
        const votes = new Map<NodeId, boolean>();
        for (const [id, v] of acks) {
          votes.set(id, v);
          if (v) granted++;
        }
        if (granted === 0) return;
        if (jointVoteResult(this.trk.config.voters, votes) !== VoteResult.Won) return;
        for (const rs of this.readOnly.advance(m.context)) this.answerReadIndex(rs.req, rs.index);
        return;
      }
      case MessageType.SnapStatus:
        if (pr.state !== "snapshot") return;
        if (m.reject) pr.pendingSnapshot = 0;
        // on success wait for the follower's append response before sending more; on failure probe again
        pr.becomeProbe();
        pr.probeSent = true;
        return;
      case MessageType.Unreachable:
        if (pr.state === "replicate") pr.becomeProbe();
        return;
      case MessageType.TransferLeader: {
        if (pr.isLearner) return;
        const transferee = m.from;
        if (this.leadTransferee !== NONE) {
          if (this.leadTransferee === transferee) return;
          this.abortLeaderTransfer();
        }
        if (transferee === this.id) return;
        this.electionElapsed = 0; // the transfer must finish within one election timeout
        this.leadTransferee = transferee;
        if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(transferee);
        else this.sendAppend(transferee);
        return;
      }
    }
  }

  private propose(m: Message): void {
    if (m.entries.length === 0) throw new Error("stepped empty MsgProp");
    if (!this.trk.progress.has(this.id)) throw new ErrProposalDropped(); // removed from the configuration
    if (this.leadTransferee !== NONE) throw new ErrProposalDropped();
    for (let i = 0; i < m.entries.length; i++) {
      const e = m.entries[i];
      if (!isConfChangeEntry(e)) continue;
      const cc = e.type === EntryType.ConfChange
        ? confChangeToV2(decodeConfChange(e.data))
        : decodeConfChangeV2(e.data);
      const alreadyJoint = this.trk.config.voters.outgoing.size > 0;
      const wantsLeaveJoint = cc.changes.length === 0;
      let refused = "";
      if (this.pendingConfIndex > this.log.applied) refused = "a conf change may still be unapplied";
      else if (alreadyJoint && !wantsLeaveJoint) refused = "the joint configuration must be left first";
      else if (!alreadyJoint && wantsLeaveJoint) refused = "not in a joint configuration";
      if (refused !== "") {
        // the entry keeps its place in the log (the proposer's index stays right) but changes nothing
        this.logger.info("ignoring conf change", { id: String(this.id), reason: refused });
        m.entries[i] = { term: 0, index: 0, type: EntryType.Normal, data: EMPTY_BYTES };
      } else {
        this.pendingConfIndex = this.log.lastIndex() + i + 1;
      }
    }
    this.appendEntry(m.entries);
    this.bcastAppend();
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      let nextProbeIdx = m.rejectHint;
      if (m.logTerm > 0) nextProbeIdx = this.log.findConflictByTerm(m.rejectHint, m.logTerm);
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    // a probe answered at the match already known proves the follower's position just as well: without
    // this, an empty probe (e.g. one carrying only a new commit index) would leave it paused in probe
    // state until the next heartbeat response
    const probeAnswered = pr.state === "probe" && pr.match === m.index;
    if (!pr.maybeUpdate(m.index) && !probeAnswered) return;
    if (pr.state === "probe") {
      pr.becomeReplicate();
    } else if (pr.state === "snapshot" && pr.match + 1 >= this.log.firstIndex()) {
      // the follower can be caught up from the log now
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === "replicate") {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    } else if (oldPaused && m.from !== this.id) {
      this.sendAppend(m.from);
    }
    if (m.from !== this.id) {
      while (this.maybeSendAppend(m.from, false)) { /* keep the window full */ }
      if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
    }
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.zeroTermOnError(this.log.committed) === this.term;
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.handleReadIndex(m);
  }

  private handleReadIndex(m: Message): void {
    if (this.readOnly.option === "safe") {
      const ctx = m.entries[0].data;
      this.readOnly.addRequest(this.log.committed, m);
      this.readOnly.recvAck(this.id, ctx);
      this.bcastHeartbeatWithCtx(ctx);
    } else {
      this.answerReadIndex(m, this.log.committed);
    }
  }

  /** Answers a confirmed read: locally as a ReadState, or to the follower that forwarded it. */
  private answerReadIndex(req: Message, index: number): void {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index, requestCtx: req.entries[0].data });
      return;
    }
    this.send(makeMessage({ type: MessageType.ReadIndexResp, to: req.from, index, entries: req.entries }));
  }

  private stepCandidate(m: Message): void {
    const myVoteResp = this.state === StateType.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Prop:
        throw new ErrProposalDropped();
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myVoteResp: {
        const { result } = this.poll(m.from, m.type, !m.reject);
        if (result === VoteResult.Won) {
          if (this.state === StateType.PreCandidate) {
            this.campaign("election");
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === VoteResult.Lost) {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.Prop:
        if (this.lead === NONE) throw new ErrProposalDropped();
        m.to = this.lead;
        this.send(m);
        return;
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.TransferLeader:
        if (this.lead === NONE) return;
        m.to = this.lead;
        this.send(m);
        return;
      case MessageType.TimeoutNow:
        // the leader hands over: campaign at once, without a pre-vote, even though a leader is alive
        this.hup("transfer");
        return;
      case MessageType.ReadIndex:
        if (this.lead === NONE) return;
        m.to = this.lead;
        this.send(m);
        return;
      case MessageType.ReadIndexResp:
        if (m.entries.length !== 1) return;
        this.readStates.push({ index: m.index, requestCtx: m.entries[0].data });
        return;
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, index: this.log.committed }));
      return;
    }
    const last = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (last !== undefined) {
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, index: last }));
      return;
    }
    // reject, with a hint where this log may match so the leader skips a whole term per round trip
    let hintIndex = Math.min(m.index, this.log.lastIndex());
    hintIndex = this.log.findConflictByTerm(hintIndex, m.logTerm);
    const hintTerm = this.log.zeroTermOnError(hintIndex);
    this.send(makeMessage({
      type: MessageType.AppResp,
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint: hintIndex,
      logTerm: hintTerm,
    }));
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.send(makeMessage({ type: MessageType.HeartbeatResp, to: m.from, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const snap = m.snapshot;
    if (!snap) return;
    if (this.restore(snap)) {
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, index: this.log.lastIndex() }));
    } else {
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, index: this.log.committed }));
    }
  }

  /** Replaces the log with a snapshot; false when the snapshot is not newer than what is committed. */
  private restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.log.committed) return false;
    // committed entries handed to the application and not applied yet may hold configuration changes:
    // applied after the snapshot's configuration took over, they would change it wrongly (the leader
    // sends the snapshot again later)
    if (this.log.applying > this.log.applied) return false;
    if (this.state !== StateType.Follower) {
      // only a follower receives snapshots; anything else means a confused peer
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    const cs = s.metadata.confState;
    const inConfig = [cs.voters, cs.learners, cs.votersOutgoing].some((ids) => ids.includes(this.id));
    if (!inConfig) return false;
    if (this.log.matchTerm(s.metadata.index, s.metadata.term)) {
      // the log already has the snapshot's last entry: just move the commit index forward
      this.log.commitTo(s.metadata.index);
      return false;
    }
    this.log.restore(s);
    this.applyChangeResult(restoreConfig(cs, this.maxInflight, this.log.lastIndex()));
    return true;
  }

  /**
   * The application applied everything up to `index`. A leader in a joint configuration that Raft
   * leaves by itself proposes the leaving change once the change that entered it is applied.
   */
  appliedTo(index: number): void {
    this.log.appliedTo(Math.max(index, this.log.applied));
    const c = this.trk.config;
    if (!c.autoLeave || this.state !== StateType.Leader || this.log.applied < this.pendingConfIndex) return;
    try {
      // empty data is the empty ConfChangeV2
      this.step(makeMessage({
        type: MessageType.Prop,
        from: this.id,
        entries: [{ term: 0, index: 0, type: EntryType.ConfChangeV2, data: EMPTY_BYTES }],
      }));
      this.logger.info("leaving the joint configuration", { id: String(this.id) });
    } catch (err) {
      // a leader transfer is running: the next applied index tries again
      if (!(err instanceof ErrProposalDropped)) throw err;
    }
  }

  // ---- membership ----------------------------------------------------------------------------------

  private applyChangeResult(r: ChangeResult): ConfState {
    this.trk.config = r.config;
    this.trk.progress = r.progress;
    const pr = this.trk.progress.get(this.id);
    this.isLearner = pr?.isLearner ?? false;
    return this.trk.confState();
  }

  /**
   * Applies a committed conf change to the progress tracker; returns the new configuration. A V2 change
   * with several changes (or an explicit joint transition) enters a joint configuration; an empty one
   * leaves it.
   */
  applyConfChange(change: ConfChange | ConfChangeV2): ConfState {
    const cc = "changes" in change ? change : confChangeToV2(change);
    const changer = new Changer(this.trk.config, this.trk.progress, this.maxInflight, this.log.lastIndex());
    const joint = jointEntry(cc);
    let result: ChangeResult;
    if (leavesJoint(cc)) result = changer.leaveJoint();
    else if (joint) result = changer.enterJoint(joint.autoLeave, cc.changes);
    else result = changer.simple(cc.changes);
    const cs = this.applyChangeResult(result);
    if (this.state !== StateType.Leader || cs.voters.length === 0) return cs;
    if (this.maybeCommit()) {
      // the quorum shrank: entries may be committed now
      this.bcastAppend();
    } else {
      for (const id of this.trk.progress.keys()) this.maybeSendAppend(id, false);
    }
    if (this.leadTransferee !== NONE && !this.trk.progress.has(this.leadTransferee)) {
      this.abortLeaderTransfer();
    }
    return cs;
  }
}
