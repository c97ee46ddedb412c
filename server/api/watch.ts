/**
 * The etcdserverpb.Watch service: one bidirectional stream carries any number of watchers, each fed
 * by the {@link WatchHub}. What clients see follows etcd 3.4 (checked against the real etcd 3.4.23):
 *
 * - create: `watch_id` 0 asks for an id (the stream's next unused one, from 0 up); any other id is
 *   taken as given. The answer is `created` with the id and the current revision in the header. A
 *   taken id, or a range with `key` >= `range_end`, is answered `created` + `canceled` with watch id -1
 *   and the reason ("mvcc: duplicate watch ID provided on the WatchStream", "mvcc: watcher range is
 *   empty"). An empty key means "\0"; `range_end` "\0" means every key from `key` on.
 * - events: one response per batch, header revision = the revision the watcher has now seen up to.
 *   With `fragment` set, a response over the request size limit (max-request-bytes + 512 KiB, as etcd
 *   counts) is split into responses flagged `fragment`, the last one unflagged.
 * - cancel: `canceled` with the id; an unknown id gets no answer.
 * - progress request: a response with watch id -1 and the current revision once every watcher of the
 *   stream is synced (immediately when none lags), so the revision never promises events still owed.
 * - progress_notify: every interval (default 10 minutes plus up to 10% jitter) a synced watcher that got
 *   no events since the last tick receives an empty response with its id and the current revision.
 * - compaction overtaking a watcher: `canceled` with `compact_revision` and header revision 0.
 * - closing the stream, from either side, cancels its watchers; a half-close changes nothing.
 *
 * Backpressure: when `send` reports the stream's buffer above its high-water mark, the stream's
 * watchers refuse further batches (the hub then holds them or re-reads them from history) until
 * `waitDrain()` resolves, when they are resumed. Control responses are small and always sent.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { systemClock } from "../clock.ts";
import {
  decodeWatchRequest,
  encodeEvent,
  encodeWatchResponse,
  type Event,
  EventType,
  FilterType,
  type ResponseHeader,
  type WatchCreateRequest,
  type WatchResponse,
} from "../pb/rpc.ts";
import type { MvccEvent } from "../../storage/mvcc/store.ts";
import {
  ErrEmptyWatcherRange,
  type WatchBatch,
  type Watcher,
  type WatchHub,
  type WatchSink,
} from "../watch/hub.ts";
import { decodeOrFail } from "./decode.ts";
import type { CallContext, GrpcRouter, ServerStream } from "../transport/grpc.ts";
import { toGrpcError } from "../transport/status.ts";

/** What the Watch service needs from the server. */
export interface WatchServiceDeps {
  /** The member's watch hub. */
  hub: WatchHub;
  /** The response header at a revision (cluster id, member id, raft term filled in). */
  header(revision: number): ResponseHeader;
  /** Interval of progress notifications (etcd's --experimental-watch-progress-notify-interval); at least 100 ms. */
  progressNotifyIntervalMs?: number;
  /** etcd's --max-request-bytes (default 1.5 MiB); fragments are cut at this plus 512 KiB. */
  maxRequestBytes?: number;
  /** Timers for progress notifications. */
  clock?: Clock;
  /** Source of the progress interval's jitter, in [0, 1). */
  random?: () => number;
  /**
   * Runs `fn` once the current task is done; events gathered until then go out as one response per
   * watcher. Default `queueMicrotask`; `(fn) => fn()` sends every batch at once.
   */
  defer?: (fn: () => void) => void;
  /**
   * While `enabled`, a watch is created only if `permit` resolves (read permission on its range, for
   * the stream's caller); otherwise it is refused as permission denied, as etcd refuses it.
   */
  auth?: {
    readonly enabled: boolean;
    permit(ctx: CallContext, key: Uint8Array, rangeEnd: Uint8Array): Promise<void>;
  };
}

/** clientv3's AutoWatchID: a create request with this id asks the server to choose. */
const AUTO_WATCH_ID = 0;
/** clientv3's InvalidWatchID: the id of failed creates and of stream-wide progress responses. */
const INVALID_WATCH_ID = -1;
const DEFAULT_PROGRESS_INTERVAL_MS = 10 * 60 * 1000;
const MIN_PROGRESS_INTERVAL_MS = 100;
const DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;
/** etcd's grpcOverheadBytes. */
const GRPC_OVERHEAD_BYTES = 512 * 1024;
const ERR_DUPLICATE_ID = "mvcc: duplicate watch ID provided on the WatchStream";
const NO_EVENTS: Event[] = [];

/** A WatchResponse with the given fields, every other one at its default. */
export function watchResponse(m: Partial<WatchResponse> & { header: ResponseHeader }): WatchResponse {
  return {
    watchId: 0,
    created: false,
    canceled: false,
    compactRevision: 0,
    cancelReason: "",
    fragment: false,
    events: NO_EVENTS,
    ...m,
  };
}
const KEY_ZERO = new Uint8Array([0]);
/** The reason etcd gives for a watch it refuses on auth grounds: the gRPC error's whole text. */
const PERMISSION_DENIED = "rpc error: code = PermissionDenied desc = etcdserver: permission denied";

/** Registers `/etcdserverpb.Watch/Watch`. */
export function registerWatch(router: GrpcRouter, deps: WatchServiceDeps): void {
  const settings: Settings = {
    hub: deps.hub,
    header: deps.header,
    intervalMs: Math.max(
      MIN_PROGRESS_INTERVAL_MS,
      deps.progressNotifyIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS,
    ),
    maxBytes: (deps.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES) + GRPC_OVERHEAD_BYTES,
    clock: deps.clock ?? systemClock,
    random: deps.random ?? Math.random,
    defer: deps.defer ?? queueMicrotask,
  };
  const auth = deps.auth;
  router.stream("/etcdserverpb.Watch/Watch", (stream, ctx) => {
    const session = new WatchSession(stream, settings);
    // with auth on, requests wait for their checks, in order, so that watch IDs are given as sent
    let checked: Promise<void> | undefined;
    const receive = (message: Uint8Array) => {
      if (auth === undefined || (!auth.enabled && checked === undefined)) {
        session.receive(message);
        return;
      }
      const permit = (key: Uint8Array, rangeEnd: Uint8Array) => auth.permit(ctx, key, rangeEnd);
      checked = (checked ?? Promise.resolve()).then(() => session.receiveChecked(message, permit)).catch(
        (err) => {
          if (!stream.closed) stream.end(toGrpcError(err));
        },
      );
    };
    return {
      onMessage: receive,
      onHalfClose: () => {},
      onCancel: () => session.close(),
    };
  });
}

interface Settings {
  hub: WatchHub;
  header(revision: number): ResponseHeader;
  intervalMs: number;
  maxBytes: number;
  clock: Clock;
  random: () => number;
  defer: (fn: () => void) => void;
}

/** Events one watcher may gather before they are sent without waiting for the end of the task. */
const MAX_COALESCED_EVENTS = 1000;

/** One watcher of a stream, and the hub's sink for it. */
class Entry implements WatchSink {
  /** Set right after registration (the hub never calls the sink inside `watch`). */
  watcher!: Watcher;
  /** No events went out since the last progress tick (etcd's per-id progress flag). */
  progressDue = true;

  constructor(
    private readonly session: WatchSession,
    readonly id: number,
    readonly progressNotify: boolean,
    readonly fragment: boolean,
  ) {}

  deliver(batch: WatchBatch): boolean {
    return this.session.deliver(this, batch);
  }

  compacted(compactRevision: number): void {
    this.session.compacted(this, compactRevision);
  }

  synced(): void {
    this.session.watcherSynced();
  }
}

function toPbEvent(e: MvccEvent): Event {
  const out: Event = { type: e.type === "put" ? EventType.PUT : EventType.DELETE, kv: e.kv };
  if (e.prevKv !== undefined) out.prevKv = e.prevKv;
  return out;
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** The watchers of one Watch stream. */
class WatchSession {
  /** Ids in use, including watchers ended by compaction (etcd keeps those until canceled). */
  private readonly entries = new Map<number, Entry>();
  private nextId = 0;
  /** The transport buffer is above its high-water mark: watchers refuse batches until it drains. */
  private blocked = false;
  /** A progress request waits for lagging watchers. */
  private progressWanted = false;
  private timer: number | undefined = undefined;
  private closed = false;
  /**
   * Events taken from the hub in this task, per watcher: a whole applied batch of writes goes out as one
   * response per watcher instead of one per write, which is what clients pay for.
   */
  private pending = new Map<Entry, { events: Event[]; revision: number }>();
  private flushScheduled = false;

  constructor(private readonly stream: ServerStream, private readonly s: Settings) {}

  receive(message: Uint8Array): void {
    if (this.closed) return;
    const req = decodeOrFail(decodeWatchRequest, message);
    if (req.createRequest !== undefined) this.create(req.createRequest);
    else if (req.cancelRequest !== undefined) this.cancel(req.cancelRequest.watchId);
    else if (req.progressRequest !== undefined) {
      this.progressWanted = true;
      this.answerProgress();
    }
  }

  /** Like {@link receive}, once `permit` has passed a create request's range (refused otherwise). */
  async receiveChecked(
    message: Uint8Array,
    permit: (key: Uint8Array, rangeEnd: Uint8Array) => Promise<void>,
  ): Promise<void> {
    if (this.closed) return;
    const req = decodeOrFail(decodeWatchRequest, message);
    const c = req.createRequest;
    if (c === undefined) {
      this.receive(message);
      return;
    }
    try {
      await permit(c.key, c.rangeEnd);
    } catch {
      if (!this.closed) this.refuseCreate(this.s.hub.revision, PERMISSION_DENIED);
      return;
    }
    if (!this.closed) this.create(c);
  }

  /** The stream is over: drop every watcher and the timer. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const e of this.entries.values()) e.watcher.cancel();
    this.entries.clear();
    if (this.timer !== undefined) this.s.clock.clearInterval(this.timer);
    this.timer = undefined;
  }

  private create(c: WatchCreateRequest): void {
    const hub = this.s.hub;
    const revision = hub.revision;
    let id = c.watchId;
    if (id === AUTO_WATCH_ID) {
      while (this.entries.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    } else if (this.entries.has(id)) {
      this.refuseCreate(revision, ERR_DUPLICATE_ID);
      return;
    }
    const entry = new Entry(this, id, c.progressNotify, c.fragment);
    try {
      entry.watcher = hub.watch({
        key: c.key.length === 0 ? KEY_ZERO : c.key,
        rangeEnd: c.rangeEnd,
        startRevision: c.startRevision,
        noPut: c.filters.includes(FilterType.NOPUT),
        noDelete: c.filters.includes(FilterType.NODELETE),
        prevKv: c.prevKv,
        sink: entry,
      });
    } catch (err) {
      if (err instanceof ErrEmptyWatcherRange) {
        this.refuseCreate(revision, err.message);
        return;
      }
      throw err;
    }
    this.entries.set(id, entry);
    this.reply({ header: this.s.header(revision), watchId: id, created: true });
    if (c.progressNotify) this.startTicker();
  }

  private refuseCreate(revision: number, reason: string): void {
    this.reply({
      header: this.s.header(revision),
      watchId: INVALID_WATCH_ID,
      created: true,
      canceled: true,
      cancelReason: reason,
    });
  }

  private cancel(id: number): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    entry.watcher.cancel();
    this.entries.delete(id);
    this.reply({ header: this.s.header(this.s.hub.revision), watchId: id, canceled: true });
    if (this.progressWanted) this.answerProgress();
  }

  /** A batch from the hub: refused while the stream is backed up; sent at the end of the current task. */
  deliver(entry: Entry, batch: WatchBatch): boolean {
    if (this.closed || this.blocked) return false;
    entry.progressDue = false;
    let p = this.pending.get(entry);
    if (p === undefined) {
      p = { events: [], revision: batch.revision };
      this.pending.set(entry, p);
    }
    for (const e of batch.events) p.events.push(toPbEvent(e));
    p.revision = batch.revision;
    if (p.events.length >= MAX_COALESCED_EVENTS) this.flushPending();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.s.defer(() => this.flushPending());
    }
    return true;
  }

  /** Sends what watchers gathered, in the order they first got events. */
  private flushPending(): void {
    this.flushScheduled = false;
    if (this.pending.size === 0) return;
    const pending = this.pending;
    this.pending = new Map();
    if (this.closed) return;
    for (const [entry, p] of pending) {
      const resp = watchResponse({ header: this.s.header(p.revision), watchId: entry.id, events: p.events });
      if (entry.fragment) this.sendFragments(resp);
      else this.send(encodeWatchResponse(resp));
    }
  }

  /** The hub ended a watcher for compaction. */
  compacted(entry: Entry, compactRevision: number): void {
    // the id stays taken until the client cancels it, as in etcd
    this.reply({ header: this.s.header(0), watchId: entry.id, canceled: true, compactRevision });
    if (this.progressWanted) this.answerProgress();
  }

  /** A lagging watcher caught up: maybe a progress request can be answered now. */
  watcherSynced(): void {
    if (this.progressWanted) this.answerProgress();
  }

  /** Answers a pending progress request if no watcher of the stream lags. */
  private answerProgress(): void {
    if (this.closed) return;
    for (const e of this.entries.values()) {
      if (!e.watcher.synced && !e.watcher.done) return;
    }
    this.progressWanted = false;
    this.reply({ header: this.s.header(this.s.hub.revision), watchId: INVALID_WATCH_ID });
  }

  private startTicker(): void {
    if (this.timer !== undefined) return;
    const interval = this.s.intervalMs;
    const jittered = interval + Math.floor(this.s.random() * (interval / 10));
    this.timer = this.s.clock.setInterval(() => this.tick(), jittered);
  }

  /** etcd's progress ticker: notify idle synced watchers that asked for it. */
  private tick(): void {
    if (this.closed) return;
    for (const e of this.entries.values()) {
      if (!e.progressNotify) continue;
      if (e.progressDue) {
        const rev = e.watcher.progressRevision();
        if (rev !== undefined) this.reply({ header: this.s.header(rev), watchId: e.id });
      }
      e.progressDue = true;
    }
  }

  private reply(m: Partial<WatchResponse> & { header: ResponseHeader }): void {
    this.flushPending(); // events taken before this reply go first
    this.send(encodeWatchResponse(watchResponse(m)));
  }

  private send(bytes: Uint8Array): void {
    if (!this.stream.send(bytes)) this.block();
  }

  /** etcd's sendFragments: greedy runs of events below the size limit, each run at least one event. */
  private sendFragments(resp: WatchResponse): void {
    const whole = encodeWatchResponse(resp);
    const max = this.s.maxBytes;
    const events = resp.events;
    if (whole.length < max || events.length < 2) {
      this.send(whole);
      return;
    }
    const base = encodeWatchResponse({ ...resp, events: NO_EVENTS, fragment: true }).length;
    let i = 0;
    while (i < events.length) {
      let size = base;
      const first = i;
      while (i < events.length) {
        const n = encodeEvent(events[i]).length;
        const grown = size + 1 + varintSize(n) + n;
        if (i > first && grown >= max) break;
        size = grown;
        i++;
      }
      this.send(
        encodeWatchResponse({ ...resp, events: events.slice(first, i), fragment: i < events.length }),
      );
    }
  }

  private block(): void {
    if (this.blocked || this.closed) return;
    this.blocked = true;
    void this.stream.waitDrain().then(() => {
      this.blocked = false;
      if (this.closed) return;
      for (const e of this.entries.values()) e.watcher.resume();
      if (this.progressWanted) this.answerProgress();
    });
  }
}
