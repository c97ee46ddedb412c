/**
 * The leader's view of each follower: how far its log matches (`match`), what to send next (`next`),
 * and the flow-control state (probe, replicate with a window of in-flight appends, or snapshot).
 * `ProgressTracker` holds the configuration and every peer's progress and answers quorum questions.
 *
 * @module
 */
import { jointCommittedIndex, type JointConfig, jointIds, jointVoteResult, VoteResult } from "./quorum.ts";
import type { ConfState, NodeId } from "./types.ts";
import { sortedIds } from "./util.ts";

/** Flow-control state of a follower. */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** A bounded window of in-flight append messages, identified by their last entry index. */
export class Inflights {
  private start = 0;
  private count = 0;
  private buffer: number[] = [];

  constructor(readonly size: number) {}

  /** Records an append whose last index is `inflight` (indexes must be increasing). */
  add(inflight: number): void {
    if (this.full()) throw new Error("cannot add into a full inflights");
    let next = this.start + this.count;
    if (next >= this.size) next -= this.size;
    if (next >= this.buffer.length) this.buffer.push(inflight);
    else this.buffer[next] = inflight;
    this.count++;
  }

  /** Frees every in-flight append whose last index is <= `to`. */
  freeLE(to: number): void {
    if (this.count === 0 || to < this.buffer[this.start]) return;
    let idx = this.start;
    let i = 0;
    for (; i < this.count; i++) {
      if (to < this.buffer[idx]) break;
      idx++;
      if (idx >= this.size) idx -= this.size;
    }
    this.count -= i;
    this.start = idx;
    if (this.count === 0) this.start = 0;
  }

  /** Frees the oldest in-flight append. */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.buffer[this.start]);
  }

  /** Whether no more appends may be sent. */
  full(): boolean {
    return this.count >= this.size;
  }

  /** Number of in-flight appends. */
  length(): number {
    return this.count;
  }

  /** Drops everything. */
  reset(): void {
    this.count = 0;
    this.start = 0;
  }
}

/** One follower's replication progress as tracked by the leader. */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** Index of the snapshot in flight while in state "snapshot". */
  pendingSnapshot = 0;
  /** Whether the peer was heard from since the last CheckQuorum round. */
  recentActive = false;
  /** In probe state: an append was sent and we wait for its answer (or a heartbeat answer). */
  probeSent = false;
  inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, maxInflight: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  /** Back to probing: one append at a time until the follower's log position is known. */
  becomeProbe(): void {
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.resetState("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState("probe");
      this.next = this.match + 1;
    }
  }

  /** Streaming appends optimistically. */
  becomeReplicate(): void {
    this.resetState("replicate");
    this.next = this.match + 1;
  }

  /** Waiting for a snapshot at `snapshotIndex` to be installed. */
  becomeSnapshot(snapshotIndex: number): void {
    this.resetState("snapshot");
    this.pendingSnapshot = snapshotIndex;
  }

  /** An append ending at `n` was acknowledged; returns whether `match` moved. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** Entries up to `n` were sent in replicate state. */
  optimisticUpdate(n: number): void {
    this.next = n + 1;
  }

  /**
   * The follower rejected an append at `rejected`, hinting its log may match at `matchHint`.
   * Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false; // stale
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false; // not the probe we sent last
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /** Whether sending appends to this peer is throttled. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }

  /** A compact description for logs and tests. */
  toString(): string {
    return `${this.state} match=${this.match} next=${this.next}` +
      (this.isLearner ? " learner" : "") +
      (this.state === "snapshot" ? ` pendingSnap=${this.pendingSnapshot}` : "") +
      (this.recentActive ? "" : " inactive") +
      (this.inflights.length() > 0 ? ` inflight=${this.inflights.length()}` : "") +
      (this.probeSent ? " paused" : "");
  }
}

/** Membership: voters (possibly joint), learners, and learners waiting for the joint change to end. */
export interface TrackerConfig {
  voters: JointConfig;
  learners: Set<NodeId>;
  /** Voters of the outgoing config being demoted to learners once the joint config is left. */
  learnersNext: Set<NodeId>;
  autoLeave: boolean;
}

/** An empty configuration. */
export function emptyTrackerConfig(): TrackerConfig {
  return {
    voters: { incoming: new Set(), outgoing: new Set() },
    learners: new Set(),
    learnersNext: new Set(),
    autoLeave: false,
  };
}

/** A deep copy of a configuration. */
export function cloneTrackerConfig(c: TrackerConfig): TrackerConfig {
  return {
    voters: { incoming: new Set(c.voters.incoming), outgoing: new Set(c.voters.outgoing) },
    learners: new Set(c.learners),
    learnersNext: new Set(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

/** Every peer's progress plus the configuration and the votes of the current election. */
export class ProgressTracker {
  config: TrackerConfig = emptyTrackerConfig();
  progress: Map<NodeId, Progress> = new Map();
  votes: Map<NodeId, boolean> = new Map();

  constructor(readonly maxInflight: number) {}

  /** The configuration as a ConfState. */
  confState(): ConfState {
    return {
      voters: sortedIds(this.config.voters.incoming),
      votersOutgoing: sortedIds(this.config.voters.outgoing),
      learners: sortedIds(this.config.learners),
      learnersNext: sortedIds(this.config.learnersNext),
      autoLeave: this.config.autoLeave,
    };
  }

  /** Whether the configuration has exactly one voter. */
  isSingleton(): boolean {
    return this.config.voters.incoming.size === 1 && this.config.voters.outgoing.size === 0;
  }

  /** The highest index acknowledged by a quorum of voters. */
  committed(): number {
    return jointCommittedIndex(this.config.voters, (id) => this.progress.get(id)?.match);
  }

  /** Calls `f` for every peer in ascending ID order (deterministic). */
  visit(f: (id: NodeId, pr: Progress) => void): void {
    for (const id of sortedIds(this.progress.keys())) {
      const pr = this.progress.get(id);
      if (pr) f(id, pr);
    }
  }

  /** Whether a quorum of voters was recently active. */
  quorumActive(): boolean {
    const votes = new Map<NodeId, boolean>();
    this.visit((id, pr) => {
      if (!pr.isLearner) votes.set(id, pr.recentActive);
    });
    return jointVoteResult(this.config.voters, votes) === VoteResult.Won;
  }

  /** Sorted voter IDs (both halves of a joint config). */
  voterNodes(): NodeId[] {
    return sortedIds(jointIds(this.config.voters));
  }

  /** Sorted learner IDs. */
  learnerNodes(): NodeId[] {
    return sortedIds([...this.config.learners, ...this.config.learnersNext]);
  }

  /** Forgets the votes of the last election. */
  resetVotes(): void {
    this.votes = new Map();
  }

  /** Records a vote (the first one from a voter counts). */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** Counts granted and rejected votes among voters and decides the election. */
  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      const v = this.votes.get(id);
      if (v === undefined) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: jointVoteResult(this.config.voters, this.votes) };
  }
}
