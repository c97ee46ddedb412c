/**
 * The watch hub: etcd's watchable store on top of {@link MvccStore}. It hands every committed change to
 * the watchers whose key range it touches, in revision order, each event exactly once.
 *
 * A watcher is in one of four states:
 * - **synced**: it has been given every event up to the store's current revision and sits in the live
 *   index; {@link WatchHub.notify} delivers each new transaction's matching events to it directly.
 * - **pending** (etcd's "unsynced"): it still owes history, from `nextRev` on. Catch-up rounds, run
 *   through the injected `schedule` function, read that history from the store in bounded chunks; the
 *   chunk that reaches the current revision moves the watcher into the live index in the same
 *   synchronous step, so no write can slip between history and live delivery.
 * - **blocked** (etcd's "victim"): its sink refused a batch. The hub keeps that batch if it is small
 *   (else it rewinds `nextRev` to re-read it from history), stops delivering, and waits for
 *   {@link Watcher.resume}; then the watcher catches up as a pending one. A slow receiver therefore never
 *   holds up `notify` or other watchers, and nothing is dropped silently: if compaction overtakes a
 *   lagging watcher, it is canceled with the compact revision, as etcd does.
 * - **done**: canceled, or ended by compaction.
 *
 * `notify` costs O(matching watchers): single-key watchers are found with one map lookup per event,
 * range watchers (prefixes, `[key, end)`, from-key) with a stabbing query on an interval treap.
 *
 * Contract with the apply loop: call `notify` for every committed write transaction, right after
 * `WriteTxn.end()` and before control returns to the event loop. The hub reads the store's current
 * revision as "everything up to here has been notified".
 *
 * @module
 */
import { isFromKey, latin1 } from "../../storage/mvcc/bytes.ts";
import type { MvccEvent, TxnEnd } from "../../storage/mvcc/store.ts";

/** What the hub reads from the key space (an {@link MvccStore} fits). */
export interface WatchSource {
  /** Revision of the last committed change. */
  readonly currentRevision: number;
  /** Revision of the last compaction; 0 before the first. */
  readonly compactRevision: number;
  /** History of a key range, as `MvccStore.eventsBetween` documents it. */
  eventsBetween(
    key: Uint8Array,
    rangeEnd: Uint8Array | undefined,
    fromRevision: number,
    toRevision: number,
    limit: number,
    withPrevKv: boolean,
  ): MvccEvent[];
}

/** Events for one watcher, in revision order. */
export interface WatchBatch {
  /** The events (after the watcher's filters); never empty. */
  events: MvccEvent[];
  /** The watcher has now been given every event up to this revision (the response header revision). */
  revision: number;
}

/** Where a watcher's output goes. Called synchronously from `notify` or a catch-up round. */
export interface WatchSink {
  /**
   * One batch. Return true if it was taken; false to refuse it: the hub then keeps it (or re-reads it
   * later from history) and delivers nothing more until {@link Watcher.resume}.
   */
  deliver(batch: WatchBatch): boolean;
  /**
   * The history the watcher still needs is compacted: the watcher is over (etcd's response with
   * `compact_revision` set). Cannot be refused.
   */
  compacted(compactRevision: number): void;
  /** The watcher has caught up and joined the live set (optional; for deferred progress replies). */
  synced?(): void;
}

/** What to watch. */
export interface WatchOptions {
  /** First key of the range (the key itself for a single-key watch). */
  key: Uint8Array;
  /** Etcd range end: absent or empty for the single key, `[0x00]` for every key >= `key`, else `[key, rangeEnd)`. */
  rangeEnd?: Uint8Array;
  /** First revision to report; 0 or absent: changes after the current revision. */
  startRevision?: number;
  /** Leave out put events. */
  noPut?: boolean;
  /** Leave out delete events. */
  noDelete?: boolean;
  /** Include each event's previous key-value when known. */
  prevKv?: boolean;
  /** Receiver of the watcher's output. */
  sink: WatchSink;
}

/** A registered watcher. */
export interface Watcher {
  /** True while the watcher is live: it has been given every event up to the store's current revision. */
  readonly synced: boolean;
  /** True once canceled or ended by compaction. */
  readonly done: boolean;
  /**
   * The revision a progress notification may report for this watcher: the current revision when it is
   * synced, undefined while it still owes events (etcd only sends progress to synced watchers).
   */
  progressRevision(): number | undefined;
  /** After the sink refused a batch: deliver again (catch-up resumes in a scheduled round). */
  resume(): void;
  /** Removes the watcher; its sink hears nothing more. */
  cancel(): void;
}

/** Settings of a {@link WatchHub}. */
export interface WatchHubConfig {
  /** The key space; see {@link WatchHub.restore} for replacing it. */
  mvcc: WatchSource;
  /**
   * Largest refused batch a blocked watcher keeps in memory (default 1024 events); a larger one is
   * dropped and read again from history on resume.
   */
  maxHeldEvents?: number;
  /** Events read from history per catch-up step (default 1000; a revision is never split). */
  catchUpBatch?: number;
  /** Catch-up steps per scheduled round, so a round stays short (default 64). */
  stepsPerRound?: number;
  /** Runs a catch-up round later (default `setTimeout(fn, 0)`); tests inject a manual queue. */
  schedule?: (fn: () => void) => void;
}

/** The watched range is empty (`key` >= `rangeEnd`). */
export class ErrEmptyWatcherRange extends Error {
  /** Stable error code. */
  readonly code = "EMPTY_WATCHER_RANGE";
  constructor() {
    super("mvcc: watcher range is empty");
    this.name = "ErrEmptyWatcherRange";
  }
}

const SYNCED = 0;
const PENDING = 1;
const BLOCKED = 2;
const DONE = 3;

/** Internal state of one watcher; handed out as the {@link Watcher} interface. */
class WatcherState implements Watcher {
  state = PENDING;
  /** Every event below this revision has been delivered (or is held); exact only when not synced. */
  nextRev: number;
  /** A refused batch kept for redelivery; `nextRev` is already past it. */
  held: WatchBatch | undefined = undefined;
  /** Events gathered for this watcher during one `notify`. */
  gathered: MvccEvent[] | null = null;
  /** The index slot holding the watcher while synced. */
  slot: Set<WatcherState> | undefined = undefined;

  constructor(
    readonly hub: WatchHub,
    readonly key: Uint8Array,
    readonly rangeEnd: Uint8Array | undefined,
    /** Latin1 of the key. */
    readonly start: string,
    /** Latin1 of the range end; undefined for a single key, null for "to the end of the key space". */
    readonly end: string | null | undefined,
    readonly noPut: boolean,
    readonly noDelete: boolean,
    readonly prevKv: boolean,
    readonly sink: WatchSink,
    nextRev: number,
  ) {
    this.nextRev = nextRev;
  }

  get synced(): boolean {
    return this.state === SYNCED;
  }

  get done(): boolean {
    return this.state === DONE;
  }

  progressRevision(): number | undefined {
    return this.state === SYNCED ? this.hub.revision : undefined;
  }

  resume(): void {
    this.hub.resumeWatcher(this);
  }

  cancel(): void {
    this.hub.cancelWatcher(this);
  }

  accepts(ev: MvccEvent): boolean {
    return ev.type === "put" ? !this.noPut : !this.noDelete;
  }
}

/** A node of the interval treap: one distinct range and the synced watchers on it. */
class RangeNode {
  left: RangeNode | null = null;
  right: RangeNode | null = null;
  /** Largest `end` in the subtree; null is +infinity. */
  maxEnd: string | null;
  readonly watchers = new Set<WatcherState>();

  constructor(readonly start: string, readonly end: string | null, readonly priority: number) {
    this.maxEnd = end;
  }
}

/** Order of range nodes: by start, then end (null last). */
function compareRange(aStart: string, aEnd: string | null, b: RangeNode): number {
  if (aStart !== b.start) return aStart < b.start ? -1 : 1;
  if (aEnd === b.end) return 0;
  if (aEnd === null) return 1;
  if (b.end === null) return -1;
  return aEnd < b.end ? -1 : 1;
}

function maxOf(a: string | null, b: string | null): string | null {
  if (a === null || b === null) return null;
  return a > b ? a : b;
}

function update(n: RangeNode): void {
  let m = n.end;
  if (n.left !== null) m = maxOf(m, n.left.maxEnd);
  if (n.right !== null) m = maxOf(m, n.right.maxEnd);
  n.maxEnd = m;
}

/** Joins two treaps where every node of `a` sorts before every node of `b`. */
function merge(a: RangeNode | null, b: RangeNode | null): RangeNode | null {
  if (a === null) return b;
  if (b === null) return a;
  if (a.priority > b.priority) {
    a.right = merge(a.right, b);
    update(a);
    return a;
  }
  b.left = merge(a, b.left);
  update(b);
  return b;
}

/** Splits a treap into the nodes before `n` and the rest. */
function split(t: RangeNode | null, n: RangeNode): [RangeNode | null, RangeNode | null] {
  if (t === null) return [null, null];
  if (compareRange(t.start, t.end, n) < 0) {
    const [l, r] = split(t.right, n);
    t.right = l;
    update(t);
    return [t, r];
  }
  const [l, r] = split(t.left, n);
  t.left = r;
  update(t);
  return [l, t];
}

function remove(t: RangeNode | null, n: RangeNode): RangeNode | null {
  if (t === null) return null;
  if (t === n) return merge(t.left, t.right);
  if (compareRange(n.start, n.end, t) < 0) t.left = remove(t.left, n);
  else t.right = remove(t.right, n);
  update(t);
  return t;
}

/**
 * Ranges with the synced watchers on them, stabbed by key: a treap ordered by range start, each node
 * carrying the largest range end below it, so subtrees ending at or before the key are skipped.
 */
class RangeIndex {
  private root: RangeNode | null = null;
  private readonly nodes = new Map<string, RangeNode>();
  /** xorshift32 state for treap priorities (fixed seed: the shape never affects results). */
  private seed = 0x9e3779b9;

  /** The watcher set of a range, created on first use. */
  slot(start: string, end: string | null): Set<WatcherState> {
    const id = end === null ? start : start + "\u0100" + end;
    let n = this.nodes.get(id);
    if (n === undefined) {
      n = new RangeNode(start, end, this.nextPriority());
      this.nodes.set(id, n);
      const [l, r] = split(this.root, n);
      this.root = merge(merge(l, n), r);
    }
    return n.watchers;
  }

  /** Drops a range whose watcher set became empty. */
  release(start: string, end: string | null): void {
    const id = end === null ? start : start + "\u0100" + end;
    const n = this.nodes.get(id);
    if (n === undefined || n.watchers.size > 0) return;
    this.nodes.delete(id);
    this.root = remove(this.root, n);
  }

  /** Calls `visit` with the watcher set of every range containing `key`. */
  stab(key: string, visit: (watchers: Set<WatcherState>) => void): void {
    stabNode(this.root, key, visit);
  }

  private nextPriority(): number {
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed;
  }
}

function stabNode(n: RangeNode | null, key: string, visit: (watchers: Set<WatcherState>) => void): void {
  while (n !== null) {
    if (n.maxEnd !== null && n.maxEnd <= key) return;
    if (n.left !== null) stabNode(n.left, key, visit);
    if (n.start > key) return; // the right subtree starts even later
    if (n.end === null || key < n.end) visit(n.watchers);
    n = n.right;
  }
}

const NO_EVENTS: MvccEvent[] = [];

/** Matching state of one `notify`: collects each synced watcher's events (no closure per event). */
class Gathering {
  events: MvccEvent[] = NO_EVENTS;
  revision = 0;
  index = 0;
  /** Events without `prevKv`, made once per event for the watchers that did not ask for it. */
  stripped: (MvccEvent | undefined)[] | undefined = undefined;
  /** Watchers with gathered events, in first-match order. */
  readonly touched: WatcherState[] = [];

  readonly gather = (set: Set<WatcherState>): void => {
    const i = this.index;
    const ev = this.events[i];
    for (const w of set) {
      if (w.nextRev > this.revision || !w.accepts(ev)) continue;
      let out = ev;
      if (!w.prevKv && ev.prevKv !== undefined) {
        this.stripped ??= new Array(this.events.length);
        out = this.stripped[i] ??= { type: ev.type, kv: ev.kv };
      }
      if (w.gathered === null) {
        w.gathered = [out];
        this.touched.push(w);
      } else w.gathered.push(out);
    }
  };
}

const defaultSchedule = (fn: () => void): void => {
  setTimeout(fn, 0);
};

/** Etcd's watchable store: see the module documentation. */
export class WatchHub {
  private source: WatchSource;
  private readonly maxHeld: number;
  private readonly batch: number;
  private readonly stepsPerRound: number;
  private readonly schedule: (fn: () => void) => void;

  /** Synced single-key watchers by latin1 key. */
  private readonly exact = new Map<string, Set<WatcherState>>();
  private readonly ranges = new RangeIndex();
  /** The watcher sets of all ranges with synced watchers. */
  private readonly rangeSlots = new Set<Set<WatcherState>>();
  private syncedCount = 0;
  /** Synced watchers that asked for `prevKv`. */
  private syncedPrevKvs = 0;
  /** Pending watchers in catch-up order. */
  private readonly pending = new Set<WatcherState>();
  private blockedCount = 0;
  private roundScheduled = false;
  private readonly gathering = new Gathering();

  /** A hub over `config.mvcc`. */
  constructor(config: WatchHubConfig) {
    this.source = config.mvcc;
    this.maxHeld = config.maxHeldEvents ?? 1024;
    this.batch = config.catchUpBatch ?? 1000;
    this.stepsPerRound = config.stepsPerRound ?? 64;
    this.schedule = config.schedule ?? defaultSchedule;
  }

  /** The store's current revision. */
  get revision(): number {
    return this.source.currentRevision;
  }

  /**
   * Whether a committed write's events would reach anyone: only synced watchers take them from
   * {@link notify}; the others catch up from the store's history.
   */
  get wantsEvents(): boolean {
    return this.syncedCount > 0;
  }

  /** Whether a synced watcher asked for `prevKv`: without one, a write's events need none. */
  get wantsPrevKvs(): boolean {
    return this.syncedPrevKvs > 0;
  }

  /** Watcher counts by state (for metrics and tests). */
  stats(): { synced: number; pending: number; blocked: number } {
    return { synced: this.syncedCount, pending: this.pending.size, blocked: this.blockedCount };
  }

  /**
   * Registers a watcher. With a start revision at or below the current one it first replays history
   * (in scheduled rounds, never inside this call); otherwise it is live at once. Throws
   * {@link ErrEmptyWatcherRange} when `key` >= `rangeEnd`.
   */
  watch(o: WatchOptions): Watcher {
    const start = latin1(o.key);
    let end: string | null | undefined;
    let rangeEnd: Uint8Array | undefined;
    if (o.rangeEnd !== undefined && o.rangeEnd.length > 0) {
      rangeEnd = o.rangeEnd.slice(); // the request's bytes may sit in a shared buffer: keep a copy of our own
      if (isFromKey(o.rangeEnd)) end = null;
      else {
        end = latin1(o.rangeEnd);
        if (start >= end) throw new ErrEmptyWatcherRange();
      }
    }
    const current = this.source.currentRevision;
    const startRev = o.startRevision ?? 0;
    const live = startRev === 0 || startRev > current;
    const w = new WatcherState(
      this,
      o.key.slice(),
      rangeEnd,
      start,
      end,
      o.noPut === true,
      o.noDelete === true,
      o.prevKv === true,
      o.sink,
      live ? Math.max(startRev, current + 1) : startRev,
    );
    if (live) this.addSynced(w);
    else this.addPending(w);
    return w;
  }

  /**
   * Hands a committed transaction's events to the synced watchers they concern: one batch per watcher,
   * in sub-revision order. A watcher whose sink refuses becomes blocked; nobody else waits for it.
   */
  notify(end: TxnEnd): void {
    const events = end.events;
    if (events.length === 0 || this.syncedCount === 0) return;
    const g = this.gathering;
    g.events = events;
    g.revision = end.revision;
    g.stripped = undefined;
    for (let i = 0; i < events.length; i++) {
      g.index = i;
      const key = latin1(events[i].kv.key);
      const single = this.exact.get(key);
      if (single !== undefined) g.gather(single);
      this.ranges.stab(key, g.gather);
    }
    g.events = NO_EVENTS;
    g.stripped = undefined;
    // deliver after matching: sinks may cancel or create watchers
    const touched = g.touched;
    for (let i = 0; i < touched.length; i++) {
      const w = touched[i];
      const batch: WatchBatch = { events: w.gathered!, revision: end.revision };
      w.gathered = null;
      if (w.state !== SYNCED) continue;
      if (!w.sink.deliver(batch)) {
        if (w.state !== SYNCED) continue;
        this.removeSynced(w);
        this.block(w, batch, end.revision + 1);
      }
    }
    touched.length = 0;
  }

  /**
   * Switches to another store (a restored snapshot) and makes every synced watcher catch up from it,
   * as etcd's `Restore` does: events it missed are replayed, or it is canceled if they are compacted.
   */
  restore(mvcc: WatchSource): void {
    const lastRev = this.source.currentRevision;
    this.source = mvcc;
    const moved: WatcherState[] = [];
    for (const set of this.exact.values()) for (const w of set) moved.push(w);
    for (const set of this.rangeSlots) for (const w of set) moved.push(w);
    for (const w of moved) {
      this.removeSynced(w);
      if (w.nextRev <= lastRev) w.nextRev = lastRev + 1;
      this.addPending(w);
    }
  }

  /** See {@link Watcher.resume}. @internal */
  resumeWatcher(w: WatcherState): void {
    if (w.state !== BLOCKED) return;
    this.blockedCount--;
    this.addPending(w);
  }

  /** See {@link Watcher.cancel}. @internal */
  cancelWatcher(w: WatcherState): void {
    switch (w.state) {
      case SYNCED:
        this.removeSynced(w);
        break;
      case PENDING:
        this.pending.delete(w);
        break;
      case BLOCKED:
        this.blockedCount--;
        break;
      default:
        return;
    }
    w.state = DONE;
    w.held = undefined;
  }

  private addSynced(w: WatcherState): void {
    w.state = SYNCED;
    let slot: Set<WatcherState>;
    if (w.end === undefined) {
      slot = this.exact.get(w.start) ?? new Set();
      if (slot.size === 0) this.exact.set(w.start, slot);
    } else {
      slot = this.ranges.slot(w.start, w.end);
      this.rangeSlots.add(slot);
    }
    slot.add(w);
    w.slot = slot;
    this.syncedCount++;
    if (w.prevKv) this.syncedPrevKvs++;
  }

  private removeSynced(w: WatcherState): void {
    const slot = w.slot!;
    w.slot = undefined;
    slot.delete(w);
    this.syncedCount--;
    if (w.prevKv) this.syncedPrevKvs--;
    if (slot.size > 0) return;
    if (w.end === undefined) this.exact.delete(w.start);
    else {
      this.rangeSlots.delete(slot);
      this.ranges.release(w.start, w.end);
    }
  }

  private addPending(w: WatcherState): void {
    w.state = PENDING;
    this.pending.add(w);
    this.scheduleRound();
  }

  /** The sink refused `batch`; the watcher had been given everything before it, and `after` is next. */
  private block(w: WatcherState, batch: WatchBatch, after: number): void {
    w.state = BLOCKED;
    this.blockedCount++;
    if (batch.events.length <= this.maxHeld) {
      w.held = batch;
      w.nextRev = after;
    } else {
      w.held = undefined;
      w.nextRev = batch.events[0].kv.modRevision;
    }
  }

  private scheduleRound(): void {
    if (this.roundScheduled || this.pending.size === 0) return;
    this.roundScheduled = true;
    this.schedule(() => this.round());
  }

  /** One catch-up round: a bounded number of steps over the pending watchers, in turn. */
  private round(): void {
    this.roundScheduled = false;
    for (let steps = 0; steps < this.stepsPerRound && this.pending.size > 0; steps++) {
      const w: WatcherState = this.pending.values().next().value!;
      this.pending.delete(w);
      this.step(w);
      if (w.state === PENDING) this.pending.add(w); // to the back of the queue
    }
    this.scheduleRound();
  }

  /**
   * One catch-up step for a pending watcher (not in `pending` while it runs): redeliver a held batch,
   * or cancel for compaction, or deliver the next chunk of history; join the synced set once the
   * current revision is reached. Synchronous, so no write can interleave.
   */
  private step(w: WatcherState): void {
    const held = w.held;
    if (held !== undefined) {
      w.held = undefined;
      if (!w.sink.deliver(held)) {
        if (w.state === PENDING) this.block(w, held, w.nextRev);
        return;
      }
      if (w.state !== PENDING) return;
    }
    const src = this.source;
    const current = src.currentRevision;
    if (w.nextRev > current) {
      this.joinSynced(w);
      return;
    }
    const compactRev = src.compactRevision;
    if (w.nextRev < compactRev) {
      w.state = DONE;
      w.sink.compacted(compactRev);
      return;
    }
    const history = src.eventsBetween(w.key, w.rangeEnd, w.nextRev, current, this.batch, w.prevKv);
    const covered = this.batch > 0 && history.length >= this.batch
      ? history[history.length - 1].kv.modRevision
      : current;
    let events = history;
    if (w.noPut || w.noDelete) events = history.filter((ev) => w.accepts(ev));
    w.nextRev = covered + 1;
    if (events.length > 0) {
      const batch: WatchBatch = { events, revision: covered };
      if (!w.sink.deliver(batch)) {
        if (w.state === PENDING) this.block(w, batch, covered + 1);
        return;
      }
      if (w.state !== PENDING) return;
    }
    if (w.nextRev > current) this.joinSynced(w);
  }

  private joinSynced(w: WatcherState): void {
    this.addSynced(w);
    w.sink.synced?.();
  }
}
