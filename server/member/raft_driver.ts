/**
 * Drives the pure Raft state machine: ticks it, feeds it messages and proposals, and carries out each
 * Ready in the order Raft requires: persist (WAL + fsync), then send, then apply, then advance.
 *
 * Group commit falls out of the loop: while one Ready's fsync is in flight, new proposals pile up in
 * Raft's unstable log and the next Ready persists them all with a single write and a single fsync.
 * Committed entries are already durable, so they are applied while that fsync runs.
 *
 * Periodic snapshots do not hold the loop up: the applied state is captured at the snapshot index in
 * one synchronous step and written by a {@link SnapshotWriter} in the background. Snapshots for lagging
 * followers are not built on the loop either: Raft's message carries the metadata, and the transport
 * streams the image from a frozen view of that index ({@link SnapshotViews}). A
 * snapshot from the leader is then written to its file as it arrives ({@link RaftDriver.receiveSnapshot})
 * and is not written a second time when Raft hands it over.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { RawNode } from "../../raft/node.ts";
import { MemoryStorage } from "../../raft/storage.ts";
import {
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  MessageType,
  type NodeId,
  NONE,
  type ReadState,
  type Snapshot,
  type SoftState,
  StateType,
} from "../../raft/types.ts";
import { isNoSpace, type Wal } from "../../storage/wal.ts";
import type { Snapshotter } from "../../storage/snapshot.ts";
import type { Clock } from "../clock.ts";
import type { Logger } from "../logger.ts";
import { type SnapshotCapture, SnapshotWriter } from "./snapshot_writer.ts";
import { SnapshotViews } from "./snapshot_views.ts";

/**
 * The in-memory Raft log of a member. It keeps only a window of recent entries (the rest is in the WAL
 * and the state machine) and only the metadata of the newest snapshot: the image itself is on disk, and
 * holding it here would double the memory of a large key space. When a follower needs a snapshot, one is
 * made on demand from the applied state.
 */
export class ServerStorage extends MemoryStorage {
  /**
   * The applied state as a snapshot, without its image (the transport streams that from a view); set by
   * the driver.
   */
  snapshotSource: (() => { index: number; confState: ConfState; data: Uint8Array }) | undefined;

  override snapshot(): Snapshot {
    const held = super.snapshot();
    if (!this.snapshotSource) return held;
    const { index, confState, data } = this.snapshotSource();
    return { metadata: { index, term: this.term(index), confState }, data };
  }

  override createSnapshot(index: number, confState: ConfState | undefined, _data: Uint8Array): Snapshot {
    return super.createSnapshot(index, confState, NO_DATA);
  }

  override applySnapshot(snap: Snapshot): void {
    super.applySnapshot({ metadata: snap.metadata, data: NO_DATA });
  }

  /** Index of the newest snapshot held, without making one. */
  heldSnapshotIndex(): number {
    return super.snapshot().metadata.index;
  }
}

const NO_DATA = new Uint8Array(0);

/** How long a member whose disk is full waits before it tries its write again. */
export const NO_SPACE_RETRY_MS = 1000;
/** How long after a snapshot that failed for want of space the next one is tried. */
const SNAPSHOT_RETRY_MS = 10_000;

/** Thrown out of a write that was waiting for disk space when the member stopped. */
class StoppedWhileFull extends Error {
  constructor() {
    super("stopped while waiting for disk space");
  }
}

/** Messages a leader may send before its own write of the same Ready is durable. */
const LEADER_EARLY: ReadonlySet<MessageType> = new Set([
  MessageType.App,
  MessageType.Heartbeat,
  MessageType.Snap,
  MessageType.TimeoutNow,
]);

/** What the driver needs from the rest of the server. */
export interface DriverHandler {
  /** Applies committed entries in order (state machine and membership). */
  applyEntries(entries: Entry[]): void;
  /** Replaces the whole state with a snapshot received from the leader. */
  restoreSnapshot(snapshot: Snapshot): void;
  /**
   * The state machine at the applied index, captured now and readable later while it moves on: cheap
   * enough to take on the loop (no value bytes are copied), for a snapshot written in the background.
   */
  captureSnapshot(confState: ConfState): SnapshotCapture;
  /** Sends messages to peers (never called with messages for this node). */
  send(messages: Message[]): void;
  /**
   * Whether every one of these committed entries was proposed by this member, so that only its own
   * clients wait for their results. A leader then writes those replies before it tells the followers
   * of the commit. Without it, the followers are told first.
   */
  proposedHere?(entries: Entry[]): boolean;
  /**
   * The member that proposed the last of these entries, whose client waits for it, if the entry says
   * (undefined otherwise). A leader sends that member its messages before the others'.
   */
  proposedBy?(entries: Entry[]): NodeId | undefined;
  onSoftState(state: SoftState, term: number): void;
  onReadStates(states: ReadState[]): void;
  /** The disk is full (this member's writes wait and new proposals are refused), or has room again. */
  onNoSpace?(full: boolean): void;
  /** The loop stopped for good (a write or fsync failed): the member cannot go on. */
  onFatal?(err: Error): void;
}

export interface DriverOptions {
  node: RawNode;
  storage: ServerStorage;
  wal: Wal;
  snapshotter: Snapshotter;
  clock: Clock;
  logger: Logger;
  tickMs: number;
  snapshotCount: number;
  /** Snapshot files to keep on disk (--max-snapshots); 0 keeps all. */
  maxSnapshots: number;
  /** Entries kept in memory behind a snapshot so that slow followers can catch up without one. */
  catchUpEntries: number;
  appliedIndex: number;
  snapshotIndex: number;
  confState: ConfState;
  handler: DriverHandler;
  /**
   * Where the images of snapshots sent to followers come from: Raft's request for a snapshot pins a
   * frozen view of the applied state and the message carries no image; the transport streams it from
   * the view (`SnapshotViews.open`). Default: a set of the driver's own, for a member that sends no
   * snapshots (one that does passes the set its transport opens streams from).
   */
  views?: SnapshotViews;
}

/** The image of a snapshot received from the leader, as the peer transport hands it over. */
export interface ReceivedImage {
  readonly size: number;
  chunks(): AsyncIterable<Uint8Array>;
}

/** Resolves once the tasks queued so far (and those they queue in turn) have run. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Moves the messages addressed to `to` ahead of the others, keeping the order within both groups. */
function moveToFront(messages: Message[], to: NodeId): void {
  let front = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (m.to !== to) continue;
    if (i !== front) {
      messages.copyWithin(front + 1, front, i);
      messages[front] = m;
    }
    front++;
  }
}

function snapKey(index: number, term: number): string {
  return `${index}/${term}`;
}

/** The Ready loop of one member. */
export class RaftDriver {
  readonly node: RawNode;
  appliedIndex: number;
  snapshotIndex: number;
  confState: ConfState;
  term = 0;
  lead: NodeId = NONE;
  state: StateType = StateType.Follower;
  private running = false;
  private again = false;
  private stopped = false;
  private ticker = 0;
  private failure: Error | undefined;
  /** Set while a write waits for disk space: see {@link noSpace}. */
  private diskFull = false;
  /** No snapshot is started before this time (one failed for want of space). */
  private snapshotNotBefore = 0;
  /** Settles when the pass of the loop in progress has ended. */
  private loopEnded: Promise<void> = Promise.resolve();
  private readonly appliedWaiters: { index: number; resolve: () => void }[] = [];
  private readonly snapshots: SnapshotWriter;
  /** Snapshots from the leader already in their files (key: index/term), by index. */
  private readonly received = new Map<string, number>();
  private readonly views: SnapshotViews;
  /**
   * Messages held until the replies of the entries applied with them are written: a leader's commit
   * indexes for its followers, a follower's acknowledgements that carry nothing new.
   */
  private held: Message[] = [];

  constructor(private readonly o: DriverOptions) {
    this.node = o.node;
    this.appliedIndex = o.appliedIndex;
    this.snapshotIndex = o.snapshotIndex;
    this.confState = o.confState;
    // a restarted member is at the term of its hard state until Raft says otherwise
    this.term = o.node.status().hardState.term;
    const views = this.views = o.views ?? new SnapshotViews();
    o.storage.snapshotSource = () => {
      // the view is of the applied index, which is the index the message reports: the image streamed
      // later is exactly the state at that index, however far the store has moved on by then
      const index = this.appliedIndex;
      const confState = this.confState;
      views.pin(index, () => o.handler.captureSnapshot(confState));
      return { index, confState, data: NO_DATA };
    };
    this.snapshots = new SnapshotWriter({
      wal: o.wal,
      snapshotter: o.snapshotter,
      storage: o.storage,
      logger: o.logger,
      maxSnapshots: o.maxSnapshots,
      onSaved: (index) => {
        this.snapshotIndex = Math.max(this.snapshotIndex, index);
        // entries applied while it was written may call for the next one already; mid-Ready, the
        // applied entries may not be in the in-memory log yet, and the Ready's end checks anyway
        if (!this.running) this.maybeSnapshot();
      },
      onFailed: (err) => {
        // a snapshot is an optimisation: without space it is tried again later, the WAL keeps everything
        if (isNoSpace(err)) {
          this.snapshotNotBefore = this.o.clock.now() + SNAPSHOT_RETRY_MS;
          this.o.logger.warn("cannot save snapshot: no space left on device; will try again", {
            error: err.message,
          });
          return;
        }
        this.fail(err);
      },
    });
  }

  start(): void {
    this.ticker = this.o.clock.setInterval(() => {
      this.node.tick();
      this.kick();
    }, this.o.tickMs);
    this.kick();
  }

  /** Stops ticking and waits for the Ready in progress and the snapshot being written to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.o.clock.clearInterval(this.ticker);
    await this.loopEnded;
    await this.snapshots.settle();
  }

  /** Closes the WAL; call after stop(). */
  async closeStorage(): Promise<void> {
    await this.o.wal.close();
  }

  /**
   * True while the disk is full: the Ready in progress waits to be written (nothing is lost or skipped;
   * its write is retried every {@link NO_SPACE_RETRY_MS}), and the member refuses new proposals.
   */
  get noSpace(): boolean {
    return this.diskFull;
  }

  /** The error that stopped the loop (a failed fsync is fatal: nothing after it may be acknowledged). */
  get fatalError(): Error | undefined {
    return this.failure;
  }

  /**
   * Schedules a pass of the Ready loop after the current task. Proposals and read requests for the leader
   * leave at once: they need not wait for a write in progress (see `RawNode.takeForwarded`).
   */
  kick(): void {
    if (!this.stopped && !this.failure) {
      const forwarded = this.node.takeForwarded();
      if (forwarded.length > 0) this.send(forwarded);
    }
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.stopped || this.failure) return;
    this.running = true;
    const ended = Promise.withResolvers<void>();
    this.loopEnded = ended.promise;
    queueMicrotask(() => this.loop().then(ended.resolve));
  }

  /** Resolves once the applied index reached `index`. */
  waitApplied(index: number): Promise<void> {
    if (this.appliedIndex >= index) return Promise.resolve();
    return new Promise((resolve) => {
      this.appliedWaiters.push({ index, resolve });
    });
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false;
        while (!this.stopped && !this.failure && this.node.hasReady()) await this.handleReady();
      } while (this.again && !this.stopped && !this.failure);
    } catch (err) {
      if (!(err instanceof StoppedWhileFull)) this.fail(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.running = false;
    }
  }

  /** Sends messages to peers, after any held before them (each peer gets its messages in order). */
  private send(messages: Message[]): void {
    this.releaseHeld();
    this.o.handler.send(messages);
  }

  /**
   * Sends `messages` once the replies queued now are written: they go out in tasks queued by the apply
   * (the waiting request's promise chain), and a later task of the event loop runs after all of those.
   */
  private holdUntilReplied(messages: Message[]): void {
    const first = this.held.length === 0;
    for (const m of messages) this.held.push(m);
    if (first) setImmediate(() => this.releaseHeld());
  }

  private releaseHeld(): void {
    if (this.held.length === 0) return;
    const held = this.held;
    this.held = [];
    this.o.handler.send(held);
  }

  /** Stops the loop for good: after a failed write nothing more may be acknowledged. */
  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.o.logger.error("raft loop failed; the member stops serving writes", { error: err.message });
    this.o.handler.onFatal?.(err);
  }

  /**
   * Writes the image of a MsgSnap from the leader to its snapshot file as it arrives (durable before
   * this resolves; a cut upload leaves no file), and resolves to the message to step, whose image is
   * that file: {@link persistSnapshot} does not write it again.
   */
  async receiveSnapshot(m: Message, image: ReceivedImage): Promise<Message> {
    if (!m.snapshot) throw new Error("snapshot: a MsgSnap without snapshot metadata");
    const { index, term } = m.snapshot.metadata;
    await this.o.snapshotter.saveStream({ index, term, size: image.size, chunks: image.chunks() });
    this.received.set(snapKey(index, term), index);
    return { ...m, snapshot: { metadata: m.snapshot.metadata, data: NO_DATA } };
  }

  private async handleReady(): Promise<void> {
    const rd = this.node.ready();
    // the views pinned for this Ready's MsgSnaps: once these are handed to the transport, their uploads
    // hold the views themselves
    const sent = this.views.takePins();
    try {
      await this.carryOut(rd);
    } finally {
      sent();
    }
  }

  private async carryOut(rd: ReturnType<RawNode["ready"]>): Promise<void> {
    const { wal, storage } = this.o;
    if (rd.hardState) this.term = rd.hardState.term;
    if (rd.softState) {
      this.lead = rd.softState.lead;
      this.state = rd.softState.raftState;
      this.o.handler.onSoftState(rd.softState, this.term);
    }
    if (rd.readStates.length > 0) this.o.handler.onReadStates(rd.readStates);

    // A leader's appends and heartbeats may leave before its own write: it counts its own copy of new
    // entries only once they are durable (RawNode.advance), so followers can write in parallel with it.
    // Everything else (votes, acknowledgements) must wait until what it promises is on disk.
    // A leader whose own clients alone wait for the entries this Ready commits writes their replies
    // first, then sends the followers the new commit index (appends without entries): they need it only
    // to apply, and no client of theirs waits for it.
    let later = rd.messages;
    let sentEarly = false;
    if (this.state === StateType.Leader && rd.messages.length > 0) {
      const early: Message[] = [];
      const commits: Message[] = [];
      const hold = rd.committedEntries.length > 0 &&
        this.o.handler.proposedHere?.(rd.committedEntries) === true;
      later = [];
      for (const m of rd.messages) {
        if (hold && m.type === MessageType.App && m.entries.length === 0) commits.push(m);
        else (LEADER_EARLY.has(m.type) ? early : later).push(m);
      }
      if (early.length > 1) {
        // the member whose client waits reads its append or commit index one socket write sooner
        const waiting = this.o.handler.proposedBy?.(
          rd.committedEntries.length > 0 ? rd.committedEntries : rd.entries,
        );
        if (waiting !== undefined) moveToFront(early, waiting);
      }
      if (early.length > 0) this.send(early);
      sentEarly = early.length > 0;
      if (commits.length > 0) this.holdUntilReplied(commits);
    }
    // The transport writes what was just sent in a microtask it queued; the apply below would hold those
    // writes for as long as it runs, and a follower whose client waits for the commit index would wait too.
    if (sentEarly && rd.committedEntries.length > 0) await Promise.resolve();
    // 1. persist
    const snapshot = rd.snapshot ? await this.persistSnapshot(rd.snapshot) : undefined;
    if (rd.entries.length > 0 || rd.hardState) wal.append(rd.entries, rd.hardState as HardState | undefined);
    let synced: Promise<void> | undefined;
    if (rd.mustSync && wal.syncsInline && (sentEarly || snapshot || rd.committedEntries.length > 0)) {
      // This write will hold the thread until it is durable. The appends just sent and the replies of the
      // committed entries (durable already) leave first: both go out in tasks queued now, so the write
      // waits for them to run, and followers write in parallel with this member instead of after it.
      this.applyCommitted(snapshot, rd.committedEntries);
      await nextTurn();
      synced = wal.sync();
    } else {
      synced = rd.mustSync ? wal.sync() : undefined;
      // committed entries are durable already: apply them while the fsync of the new ones runs
      this.applyCommitted(snapshot, rd.committedEntries);
    }
    if (synced) await this.durable(synced);
    if (rd.hardState) storage.setHardState(rd.hardState);
    if (rd.entries.length > 0) storage.append(rd.entries);
    // 2. send, now that what the messages promise is durable. When a follower's Ready brings no new
    // entries and commits only proposals of its own clients, its acknowledgements tell the leader
    // nothing it needs to commit: they wait one turn of the event loop (Raft tolerates late messages)
    // and the replies of those entries leave first, as a leader's own do.
    if (later.length > 0) {
      if (
        this.state !== StateType.Leader && rd.entries.length === 0 && rd.committedEntries.length > 0 &&
        this.o.handler.proposedHere?.(rd.committedEntries) === true
      ) this.holdUntilReplied(later);
      else this.send(later);
    }
    this.node.advance();
    this.maybeSnapshot();
  }

  /**
   * Makes a snapshot from the leader durable before anything that depends on it (the entries after it,
   * a commit index past it, the acknowledgement): its file, then its mark in the WAL. Resolves to the
   * snapshot to restore, with its image.
   *
   * A snapshot that came through {@link receiveSnapshot} is in its file already (durable before Raft
   * saw the message), so the loop pauses only to read the file back and for a WAL fsync. The image is
   * then in memory once, as one buffer read from the file, because restoring decodes it from one buffer;
   * the buffer is dropped once restored. An image that came inside the message is written here in one
   * go instead (the loop pauses for its write and fsync, about 1 s per GB here). Ticks keep firing and
   * received heartbeats still reset the election timer meanwhile (they are stepped as they arrive), so
   * the pause delays this member's acknowledgements but starts no election; restoring the image
   * afterwards (applySnapshot) is synchronous and costs about as long as decoding it.
   */
  private async persistSnapshot(snap: Snapshot): Promise<Snapshot> {
    const { index, term } = snap.metadata;
    // an older snapshot of our own being written must neither finish after this one nor mark the WAL
    await this.snapshots.abandon();
    const inFile = snap.data.length === 0 && this.received.has(snapKey(index, term));
    let image = snap.data;
    if (inFile) image = (await this.o.snapshotter.load(index, term)).data;
    else {
      const save = () => this.o.snapshotter.save({ index, term, data: snap.data });
      await this.durable(save(), save);
    }
    for (const [k, i] of this.received) if (i <= index) this.received.delete(k);
    this.o.wal.saveSnapshotMark({ index, term });
    await this.durable(this.o.wal.sync());
    this.o.storage.applySnapshot(snap);
    return { metadata: snap.metadata, data: image };
  }

  /**
   * Waits for a WAL sync. When the disk is full the write stays buffered in the WAL (nothing of it was
   * written): the member says so, refuses new proposals, and tries again every second until it lands,
   * then goes on where it was. The loop waits meanwhile, so this member acknowledges nothing it has not
   * written; a leader stops sending heartbeats and the others elect another.
   */
  private async durable(
    sync: Promise<void>,
    again: () => Promise<void> = () => this.o.wal.sync(),
  ): Promise<void> {
    for (let attempt = sync;;) {
      try {
        await attempt;
        if (this.diskFull) {
          this.diskFull = false;
          this.o.logger.info("disk space available again; the member serves writes");
          this.o.handler.onNoSpace?.(false);
        }
        return;
      } catch (err) {
        if (!isNoSpace(err)) throw err;
        if (!this.diskFull) {
          this.diskFull = true;
          this.o.logger.warn("no space left on device; refusing writes until space is freed", {
            error: err instanceof Error ? err.message : String(err),
          });
          this.o.handler.onNoSpace?.(true);
        }
        await new Promise<void>((resolve) => this.o.clock.setTimeout(resolve, NO_SPACE_RETRY_MS));
        if (this.stopped) throw new StoppedWhileFull();
        attempt = again();
      }
    }
  }

  private applyCommitted(snapshot: Snapshot | undefined, entries: Entry[]): void {
    if (snapshot) this.applySnapshot(snapshot);
    if (entries.length > 0) this.apply(entries);
  }

  private applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.appliedIndex) return;
    this.o.handler.restoreSnapshot(snap);
    this.confState = snap.metadata.confState;
    this.appliedIndex = snap.metadata.index;
    this.snapshotIndex = snap.metadata.index;
    this.o.logger.info("applied snapshot", {
      "snapshot-index": snap.metadata.index,
      term: snap.metadata.term,
    });
    this.releaseAppliedWaiters();
  }

  private apply(entries: Entry[]): void {
    const fresh = entries[0].index <= this.appliedIndex
      ? entries.filter((e) => e.index > this.appliedIndex)
      : entries;
    if (fresh.length === 0) return;
    this.o.handler.applyEntries(fresh);
    this.appliedIndex = fresh[fresh.length - 1].index;
    this.releaseAppliedWaiters();
    this.trimLog();
  }

  private releaseAppliedWaiters(): void {
    const w = this.appliedWaiters;
    if (w.length === 0) return;
    let kept = 0;
    for (let i = 0; i < w.length; i++) {
      if (w[i].index <= this.appliedIndex) w[i].resolve();
      else w[kept++] = w[i];
    }
    w.length = kept;
  }

  /**
   * Keeps the in-memory log to about `catchUpEntries` applied entries (compacting in steps of a quarter
   * of that, so the copy is amortized). Entries there are persisted, so nothing is lost: the WAL keeps
   * them until the next snapshot, and a follower further behind gets a snapshot of the applied state.
   */
  private trimLog(): void {
    const storage = this.o.storage;
    const keep = this.o.catchUpEntries;
    const compactTo = Math.min(this.appliedIndex, storage.lastIndex()) - keep;
    if (compactTo - storage.firstIndex() < Math.max(1, keep >> 2)) return;
    storage.compact(compactTo);
  }

  /**
   * Every `snapshotCount` applied entries, captures the applied state and has it written in the
   * background (the WAL behind it is released once it is durable). One snapshot at a time: while one is
   * written, the next waits until it is done.
   */
  private maybeSnapshot(): void {
    if (this.stopped || this.failure || this.snapshots.busy || this.diskFull) return;
    if (this.o.clock.now() < this.snapshotNotBefore) return;
    if (this.appliedIndex - this.snapshotIndex < this.o.snapshotCount) return;
    const index = this.appliedIndex;
    const term = this.o.storage.term(index);
    const confState = this.confState;
    const capture = this.o.handler.captureSnapshot(confState);
    this.snapshots.start({ index, term, confState, capture });
  }
}
