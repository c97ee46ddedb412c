/**
 * Watchers and the event history of the v2 store, following etcd 3.4's watcher hub:
 *
 * - The history keeps the last 1000 events (one per store index, so their indexes are contiguous). A
 *   watch with a `sinceIndex` older than the oldest kept event fails with 401; one that finds a matching
 *   event at or after `sinceIndex` gets it at once (a copy with `etcdIndex` set to the store index at the
 *   watch) and is not registered for more, even when streaming: etcd's stream then stays silent.
 * - Watchers are kept per watched path. A write notifies the watchers of every prefix path of the
 *   event's key ("/", "/a", "/a/b"); a watcher takes the event when it is at the event's key, or is
 *   recursive, or its key was deleted (children of a deleted directory), and the event's index is at or
 *   after its `sinceIndex`. Recursive watchers are not told of keys under a hidden (`_`) component below
 *   their path. A non-stream watcher is removed after its one event.
 * - Deleting (or expiring) a key first notifies the watchers of each removed path with "deleted" set,
 *   then walks the prefixes as for any write, so a watcher exactly at a deleted key hears the event
 *   twice when it streams, as in etcd.
 * - Refreshes (TTL-only updates) enter the history but notify no one, and history scans skip them.
 *
 * @module
 */
import { eventIndexCleared, V2Error } from "./errors.ts";
import { goPathClean } from "./path.ts";
import type { V2Event, V2Watcher } from "./store.ts";

/** How many events etcd's v2 history keeps. */
export const HISTORY_CAPACITY = 1000;

/** How many undelivered events a watcher may hold; one more and it is dropped, as etcd's channel. */
export const WATCHER_BUFFER = 100;

/** One history entry; `refresh` marks TTL refreshes, which scans skip. */
export interface HistoryEntry {
  event: V2Event;
  refresh?: true;
}

/** The last {@link HISTORY_CAPACITY} events, oldest first. */
export class EventHistory {
  #entries: HistoryEntry[] = [];

  /** Index of the oldest kept event (0 when empty). */
  get startIndex(): number {
    return this.#entries.length === 0 ? 0 : this.#entries[0].event.node.modifiedIndex;
  }

  /** Index of the newest kept event (0 when empty). */
  get lastIndex(): number {
    const n = this.#entries.length;
    return n === 0 ? 0 : this.#entries[n - 1].event.node.modifiedIndex;
  }

  /** The kept entries, oldest first (shared; do not mutate). */
  get entries(): readonly HistoryEntry[] {
    return this.#entries;
  }

  /** Appends an event, dropping the oldest beyond the capacity. */
  add(event: V2Event, refresh: boolean): void {
    this.#entries.push(refresh ? { event, refresh: true } : { event });
    if (this.#entries.length > HISTORY_CAPACITY) this.#entries.shift();
  }

  /** Replaces the whole history (snapshot restore). */
  replace(entries: HistoryEntry[]): void {
    this.#entries = entries.slice(-HISTORY_CAPACITY);
  }

  /**
   * The first non-refresh event at or after `index` that a watcher of `key` would take; undefined when
   * none (yet). Throws 401 (index 0 in the error; the caller sets the store index) when `index` is older
   * than the history.
   */
  scan(key: string, recursive: boolean, index: number): V2Event | undefined {
    const start = this.startIndex;
    if (index < start) throw eventIndexCleared(start, index, 0);
    if (index > this.lastIndex) return undefined;
    let prefix = goPathClean(key);
    if (!prefix.endsWith("/")) prefix += "/";
    for (let i = index - start; i < this.#entries.length; i++) {
      const { event, refresh } = this.#entries[i];
      if (refresh) continue;
      let ok = event.node.key === key;
      if (recursive) ok = ok || event.node.key.startsWith(prefix);
      if (
        (event.action === "delete" || event.action === "expire") && event.prevNode?.dir === true
      ) {
        ok = ok || key.startsWith(event.prevNode.key);
      }
      if (ok) return event;
    }
    return undefined;
  }
}

/** Whether `keyPath`, seen from a watcher at `watchPath`, passes through a hidden (`_`) component. */
export function isHiddenFrom(watchPath: string, keyPath: string): boolean {
  // a watcher deeper than the key hears of it only through a directory delete: never hidden
  if (watchPath.length > keyPath.length) return false;
  const after = goPathClean("/" + keyPath.slice(watchPath.length));
  return after.includes("/_");
}

/** A watcher: a queue of events and the promises waiting on it. */
export class Watcher implements V2Watcher {
  readonly startIndex: number;
  /** Whether it was taken off the hub (fired once, overflowed or cancelled). */
  removed = false;
  #queue: V2Event[] = [];
  #waiting: ((ev: V2Event | undefined) => void)[] = [];
  #done = false;
  #detach: () => void = () => {};

  constructor(
    readonly recursive: boolean,
    readonly stream: boolean,
    readonly sinceIndex: number,
    startIndex: number,
  ) {
    this.startIndex = startIndex;
  }

  /** Sets how to take this watcher off its hub. */
  attach(detach: () => void): void {
    this.#detach = detach;
  }

  /** Hands an event to the watcher; false when its buffer is full (then it is removed and ends). */
  deliver(ev: V2Event): boolean {
    if (this.#done) return false;
    if (this.#queue.length >= WATCHER_BUFFER) {
      this.unregister();
      this.#done = true;
      this.#flush();
      return false;
    }
    const w = this.#waiting.shift();
    if (w) w(ev);
    else this.#queue.push(ev);
    if (!this.stream) {
      this.#done = true;
      this.#flush();
    }
    return true;
  }

  /**
   * Applies etcd's notification rule; true when the watcher took the event (or should have, but was
   * dropped for being full).
   */
  notify(ev: V2Event, originalPath: boolean, deleted: boolean): boolean {
    if ((this.recursive || originalPath || deleted) && ev.node.modifiedIndex >= this.sinceIndex) {
      this.deliver(ev);
      return true;
    }
    return false;
  }

  next(): Promise<V2Event | undefined> {
    const ev = this.#queue.shift();
    if (ev !== undefined) return Promise.resolve(ev);
    if (this.#done) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Whether more events may still come. */
  get done(): boolean {
    return this.#done && this.#queue.length === 0;
  }

  cancel(): void {
    this.unregister();
    this.#done = true;
    this.#queue = [];
    this.#flush();
  }

  /** Takes the watcher off its hub (it keeps what is queued). */
  unregister(): void {
    if (this.removed) return;
    this.removed = true;
    this.#detach();
  }

  #flush(): void {
    if (this.#queue.length > 0) return;
    for (const w of this.#waiting.splice(0)) w(undefined);
  }
}

/** The watchers by watched path, and the history. */
export class WatcherHub {
  readonly history = new EventHistory();
  #watchers = new Map<string, Watcher[]>();

  /** Number of registered watchers. */
  get count(): number {
    let n = 0;
    for (const l of this.#watchers.values()) n += l.length;
    return n;
  }

  /**
   * Starts a watch of `key` (cleaned) from `sinceIndex`; `storeIndex` is the current store index.
   * Throws 401 when `sinceIndex` is older than the history.
   */
  watch(key: string, recursive: boolean, stream: boolean, sinceIndex: number, storeIndex: number): Watcher {
    let found: V2Event | undefined;
    try {
      found = this.history.scan(key, recursive, sinceIndex);
    } catch (err) {
      if (err instanceof V2Error) err.index = storeIndex;
      throw err;
    }
    const w = new Watcher(recursive, stream, sinceIndex, storeIndex);
    if (found !== undefined) {
      // from history: one event, and the watcher is never registered (a stream then stays silent)
      w.removed = true;
      w.deliver(Object.freeze({ ...found, etcdIndex: storeIndex }));
      return w;
    }
    let list = this.#watchers.get(key);
    if (list === undefined) {
      list = [];
      this.#watchers.set(key, list);
    }
    const l = list;
    w.attach(() => {
      const i = l.indexOf(w);
      if (i >= 0) l.splice(i, 1);
      if (l.length === 0 && this.#watchers.get(key) === l) this.#watchers.delete(key);
    });
    l.push(w);
    return w;
  }

  /** Records an event in the history without notifying anyone (refreshes). */
  add(ev: V2Event): void {
    this.history.add(ev, true);
  }

  /** Records an event and notifies the watchers of every prefix of its key. */
  notify(ev: V2Event): void {
    this.history.add(ev, false);
    let curr = "/";
    for (const segment of ev.node.key.split("/")) {
      curr = goPathClean(curr + "/" + segment);
      this.notifyWatchers(ev, curr, false);
    }
  }

  /** Notifies the watchers registered exactly at `nodePath`. */
  notifyWatchers(ev: V2Event, nodePath: string, deleted: boolean): void {
    const list = this.#watchers.get(nodePath);
    if (list === undefined) return;
    for (const w of list.slice()) {
      if (w.removed) continue;
      const originalPath = ev.node.key === nodePath;
      if ((originalPath || !isHiddenFrom(nodePath, ev.node.key)) && w.notify(ev, originalPath, deleted)) {
        if (!w.stream) w.unregister();
      }
    }
  }
}
