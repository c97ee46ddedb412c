/**
 * etcd 3.4's v2 key store (the `/v2/keys` API), as a pure and deterministic object: synchronous, no
 * clock reads, no timers, no I/O. Time comes in as arguments (`now`, milliseconds since the epoch) and
 * expiration times are absolute (`expireAt`, ms) and chosen by the proposer, so every member applying
 * the same operations with the same arguments ends in the same state (see {@link V2Store.toJSON}).
 *
 * The keyspace is the user's: keys are cleaned like Go's `path.Clean("/" + key)`; "/" is the root
 * directory and is read-only (etcd keeps user keys under "/1"; errors and events here carry the keys as
 * etcd prints them after removing that prefix).
 *
 * ## API
 * ```ts
 * class V2Store {
 *   constructor();
 *   get index(): number;                         // etcd's CurrentIndex; +1 per successful write
 *   get(key, { recursive, sorted }, now): V2Event;                                  // action "get"
 *   set(key, { dir, value, expireAt?, refresh? }, now): V2Event;                   // "set"
 *   create(key, { dir, value, expireAt?, unique }, now): V2Event;                  // "create"
 *   update(key, { value?, expireAt?, refresh? }, now): V2Event;                    // "update"
 *   compareAndSwap(key, prevValue?, prevIndex?, { value, expireAt?, refresh? }, now): V2Event;
 *   delete(key, { dir, recursive }, now): V2Event;                                 // "delete"
 *   compareAndDelete(key, prevValue?, prevIndex?, now): V2Event;                   // "compareAndDelete"
 *   deleteExpired(now): V2Event[];               // "expire" events, expireAt <= now, in order
 *   hasTtlKeys(): boolean;
 *   nextExpiry(): number | undefined;            // earliest expireAt (ms), to schedule the next sweep
 *   watch(key, { recursive, stream, sinceIndex? }): V2Watcher;
 *   watcherCount(): number;
 *   toJSON(): V2StoreImage;  static fromJSON(j: unknown): V2Store;  restore(j: unknown): void;
 *   adopt(other: V2Store): void;                 // restore from a decoded store
 * }
 * interface V2Watcher { next(): Promise<V2Event | undefined>; readonly startIndex: number; cancel(): void }
 * ```
 * Every failure is a {@link V2Error} carrying etcd's code, cause and the store index.
 *
 * Notes for callers:
 * - `now` only computes the `ttl` shown in returned nodes; nothing expires until `deleteExpired(now)`
 *   (etcd's leader proposes that "SYNC" every 500 ms while `hasTtlKeys()`).
 * - `expireAt` undefined means permanent. For set/create an `expireAt` before 2000-01-01 also means
 *   permanent (etcd's guard). update/compareAndSwap without `expireAt` make the key permanent, as etcd.
 * - `refresh` (set/update/compareAndSwap) keeps the current value, takes the new `expireAt`, still uses
 *   an index, enters the history, and notifies no watcher. A refreshing set replaces the node, so its
 *   createdIndex changes, as in etcd.
 * - Returned events are frozen and may be shared with the history: do not mutate them.
 * - Returned nodes follow etcd's printed JSON: `ttl` absent when 0, `nodes` absent when empty, `value`
 *   absent on directories and on delete/compareAndDelete/expire event nodes. Two differences remain for
 *   the wire: the root's key is "/" here (etcd prints none) and its indexes are 0 (etcd omits them); use
 *   `encodeV2Event` from `go_json.ts` for byte-exact bodies.
 * - Unsorted listings come in insertion order (etcd's Go map order is random).
 * - `next()` resolves `undefined` when the watcher will deliver nothing more: a non-stream watcher after
 *   its event, a cancelled one, or a stream that fell {@link WATCHER_BUFFER} events behind (etcd drops
 *   it). A stream watch answered from the history gets that one event and then waits until cancelled,
 *   as etcd's stream does.
 *
 * @module
 */
import {
  dirNotEmpty,
  keyNotFound,
  nodeExist,
  notDir,
  notFile,
  rootReadOnly,
  testFailed,
  V2Error,
} from "./errors.ts";
import { formatRfc3339Nano } from "./go_json.ts";
import { cleanKey } from "./path.ts";
import { type HistoryEntry, Watcher, WATCHER_BUFFER, WatcherHub } from "./watcher_hub.ts";

export { WATCHER_BUFFER };

/** A node as the v2 API shows it (fields in etcd's JSON order). */
export interface V2Node {
  key: string;
  value?: string;
  dir?: true;
  /** RFC 3339 in UTC with up to nine fraction digits, like Go; only on nodes with a TTL. */
  expiration?: string;
  /** Remaining seconds at `now`, rounded up; absent when 0 (etcd omits it). */
  ttl?: number;
  nodes?: V2Node[];
  modifiedIndex: number;
  createdIndex: number;
}

/** The v2 event actions. */
export type V2Action =
  | "get"
  | "set"
  | "create"
  | "update"
  | "delete"
  | "compareAndSwap"
  | "compareAndDelete"
  | "expire";

/** The result of an operation, and what watchers receive. */
export interface V2Event {
  action: V2Action;
  node: V2Node;
  prevNode?: V2Node;
  /** The store index after the operation (for a watch answered from history: the index at the watch). */
  etcdIndex: number;
}

/** A watch in progress. */
export interface V2Watcher {
  /** The next event; `undefined` when no more will come (see the module notes). */
  next(): Promise<V2Event | undefined>;
  /** The store index when the watch started (etcd answers it in X-Etcd-Index). */
  readonly startIndex: number;
  /** Stops the watch; pending and later `next()` calls resolve `undefined`. */
  cancel(): void;
}

/** A node in a store image. */
export interface V2NodeImage {
  path: string;
  createdIndex: number;
  modifiedIndex: number;
  expireAt?: number;
  /** Files only. */
  value?: string;
  /** Directories only, in listing order. */
  children?: V2NodeImage[];
}

/** The plain-JSON image of a store (Raft snapshots). */
export interface V2StoreImage {
  version: 1;
  index: number;
  root: V2NodeImage;
  history: HistoryEntry[];
}

/** A store image that cannot be read. */
export class V2StoreImageError extends Error {
  readonly code = "V2_STORE_IMAGE";
  constructor(message: string) {
    super(`v2 store image: ${message}`);
    this.name = "V2StoreImageError";
  }
}

interface Node {
  path: string;
  createdIndex: number;
  modifiedIndex: number;
  expireAt?: number;
  value: string;
  children?: Map<string, Node>;
  parent?: Node;
}

/** 2000-01-01T00:00:00Z: etcd treats earlier expiration times as "permanent" on set/create. */
const MIN_EXPIRE_MS = Date.UTC(2000, 0, 1);

function baseName(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

/** A node with only its key yet, so that the other fields follow in etcd's order. */
function startNode(key: string): V2Node {
  return { key } as V2Node;
}

function isHidden(n: Node): boolean {
  return baseName(n.path).startsWith("_");
}

/** Go's string order (UTF-8 bytes), which is code point order. */
function compareKeys(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(j)!;
    if (ca !== cb) return ca - cb;
    i += ca > 0xffff ? 2 : 1;
    j += cb > 0xffff ? 2 : 1;
  }
  return (a.length - i) - (b.length - j);
}

/** etcd's TTL: ceil((expire - now) / 1s), truncating toward zero below zero, as Go's arithmetic. */
function ttlAt(expireAt: number, now: number): number {
  const d = expireAt - now;
  let ttl = Math.trunc(d / 1000);
  if (d % 1000 > 0) ttl++;
  return ttl === 0 ? 0 : ttl; // no -0
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === "object" && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as Record<string, unknown>)) deepFreeze(v);
  }
  return o;
}

/** The compare rule of etcd's CAS/CAD: empty prevValue and zero prevIndex are not compared. */
function compareFailure(n: Node, prevValue: string, prevIndex: number): string | undefined {
  const indexMatch = prevIndex === 0 || n.modifiedIndex === prevIndex;
  const valueMatch = prevValue === "" || n.value === prevValue;
  if (indexMatch && valueMatch) return undefined;
  if (indexMatch) return `[${prevValue} != ${n.value}]`;
  if (valueMatch) return `[${prevIndex} != ${n.modifiedIndex}]`;
  return `[${prevValue} != ${n.value}] [${prevIndex} != ${n.modifiedIndex}]`;
}

/** etcd's keyspace root prints as "" once its "/1" prefix is trimmed (seen in compareAndDelete on "/"). */
function causeOf(path: string): string {
  return path === "/" ? "" : path;
}

/** The v2 store. See the module documentation for the API and its rules. */
export class V2Store {
  #index = 0;
  #root: Node = V2Store.#newRoot();
  #hub = new WatcherHub();
  #ttl = new Set<Node>();

  static #newRoot(): Node {
    return { path: "/", createdIndex: 0, modifiedIndex: 0, value: "", children: new Map() };
  }

  /** etcd's CurrentIndex: the index of the last write (each successful write adds one). */
  get index(): number {
    return this.#index;
  }

  /** Reads a key; a directory lists its visible children (all levels with `recursive`). */
  get(key: string, opts: { recursive: boolean; sorted: boolean }, now: number): V2Event {
    const n = this.#internalGet(cleanKey(key));
    // a directory read lists its children, one level unless recursive
    const node = this.#repr(n, opts.recursive, opts.sorted, now, true);
    return deepFreeze({ action: "get", node, etcdIndex: this.#index });
  }

  /** Sets a key (replacing a file, never a directory), creating missing parent directories. */
  set(
    key: string,
    opts: { dir: boolean; value: string; expireAt?: number; refresh?: boolean },
    now: number,
  ): V2Event {
    const path = cleanKey(key);
    let prev: Node | undefined;
    try {
      prev = this.#internalGet(path);
    } catch (err) {
      if (!(err instanceof V2Error) || err.errorCode !== 100) throw err;
      if (opts.refresh) throw err;
    }
    const value = opts.refresh && prev ? prev.value : opts.value;
    const prevNode = prev && !prev.children ? this.#repr(prev, false, false, now) : undefined;
    const { event } = this.#internalCreate(path, opts.dir, value, false, true, opts.expireAt, "set", now);
    if (prevNode) event.prevNode = prevNode;
    return this.#publish(event, opts.refresh === true);
  }

  /** Creates a key that must not exist; `unique` appends a child named by the new index (`%020d`). */
  create(
    key: string,
    opts: { dir: boolean; value: string; expireAt?: number; unique: boolean },
    now: number,
  ): V2Event {
    const { event } = this.#internalCreate(
      key,
      opts.dir,
      opts.value,
      opts.unique,
      false,
      opts.expireAt,
      "create",
      now,
    );
    return this.#publish(event, false);
  }

  /**
   * Updates an existing key's value and TTL (no `expireAt`: permanent). A directory accepts only an
   * empty value (its TTL changes; its own modifiedIndex does not, as in etcd).
   */
  update(key: string, opts: { value?: string; expireAt?: number; refresh?: boolean }, now: number): V2Event {
    const path = cleanKey(key);
    if (path === "/") throw rootReadOnly(this.#index);
    const n = this.#internalGet(path);
    let value = opts.value ?? "";
    if (n.children && value !== "") throw notFile(path, this.#index);
    if (opts.refresh) value = n.value;
    const next = this.#index + 1;
    const prevNode = this.#repr(n, false, false, now);
    if (!n.children) {
      n.value = value;
      n.modifiedIndex = next;
    }
    this.#updateTtl(n, opts.expireAt);
    const node = startNode(path);
    if (n.children) node.dir = true;
    else node.value = value;
    this.#expiration(n, now, node);
    node.modifiedIndex = next;
    node.createdIndex = n.createdIndex;
    this.#index = next;
    return this.#publish({ action: "update", node, prevNode, etcdIndex: next }, opts.refresh === true);
  }

  /** Swaps a file's value when `prevValue` and/or `prevIndex` match (unset or empty/0: not compared). */
  compareAndSwap(
    key: string,
    prevValue: string | undefined,
    prevIndex: number | undefined,
    opts: { value: string; expireAt?: number; refresh?: boolean },
    now: number,
  ): V2Event {
    const path = cleanKey(key);
    if (path === "/") throw rootReadOnly(this.#index);
    const n = this.#internalGet(path);
    if (n.children) throw notFile(path, this.#index);
    const cause = compareFailure(n, prevValue ?? "", prevIndex ?? 0);
    if (cause !== undefined) throw testFailed(cause, this.#index);
    const value = opts.refresh ? n.value : opts.value;
    this.#index++;
    const prevNode = this.#repr(n, false, false, now);
    n.value = value;
    n.modifiedIndex = this.#index;
    this.#updateTtl(n, opts.expireAt);
    const node = startNode(path);
    node.value = value;
    this.#expiration(n, now, node);
    node.modifiedIndex = this.#index;
    node.createdIndex = n.createdIndex;
    return this.#publish(
      { action: "compareAndSwap", node, prevNode, etcdIndex: this.#index },
      opts.refresh === true,
    );
  }

  /** Deletes a file, an empty directory (`dir`) or a directory tree (`recursive`, implies `dir`). */
  delete(key: string, opts: { dir: boolean; recursive: boolean }, now: number): V2Event {
    const path = cleanKey(key);
    if (path === "/") throw rootReadOnly(this.#index);
    const dir = opts.dir || opts.recursive;
    const n = this.#internalGet(path);
    if (n.children) {
      if (!dir) throw notFile(n.path, this.#index);
      if (n.children.size !== 0 && !opts.recursive) throw dirNotEmpty(n.path, this.#index);
    }
    const next = this.#index + 1;
    const node = startNode(path);
    if (n.children) node.dir = true;
    node.modifiedIndex = next;
    node.createdIndex = n.createdIndex;
    const event: V2Event = {
      action: "delete",
      node,
      prevNode: this.#repr(n, false, false, now),
      etcdIndex: next,
    };
    deepFreeze(event);
    this.#remove(n, (p) => this.#hub.notifyWatchers(event, p, true));
    this.#index = next;
    this.#hub.notify(event);
    return event;
  }

  /** Deletes a file when `prevValue` and/or `prevIndex` match; directories fail with 102. */
  compareAndDelete(
    key: string,
    prevValue: string | undefined,
    prevIndex: number | undefined,
    now: number,
  ): V2Event {
    const path = cleanKey(key);
    const n = this.#internalGet(path);
    if (n.children) throw notFile(causeOf(path), this.#index);
    const cause = compareFailure(n, prevValue ?? "", prevIndex ?? 0);
    if (cause !== undefined) throw testFailed(cause, this.#index);
    this.#index++;
    const event: V2Event = deepFreeze({
      action: "compareAndDelete",
      node: { key: path, modifiedIndex: this.#index, createdIndex: n.createdIndex },
      prevNode: this.#repr(n, false, false, now),
      etcdIndex: this.#index,
    });
    this.#remove(n, (p) => this.#hub.notifyWatchers(event, p, true));
    this.#hub.notify(event);
    return event;
  }

  /**
   * Removes every node whose `expireAt <= now`, one "expire" event (one index) each, earliest first
   * (ties: by path, so a directory goes before its children, which vanish with it). Watchers are
   * notified as for a delete.
   */
  deleteExpired(now: number): V2Event[] {
    const due = [...this.#ttl].filter((n) => n.expireAt! <= now);
    due.sort((a, b) => a.expireAt! - b.expireAt! || compareKeys(a.path, b.path));
    const events: V2Event[] = [];
    for (const n of due) {
      if (!this.#ttl.has(n)) continue; // went with an expired parent
      this.#index++;
      const node = startNode(n.path);
      if (n.children) node.dir = true;
      node.modifiedIndex = this.#index;
      node.createdIndex = n.createdIndex;
      const event: V2Event = deepFreeze({
        action: "expire",
        node,
        prevNode: this.#repr(n, false, false, now),
        etcdIndex: this.#index,
      });
      this.#remove(n, (p) => this.#hub.notifyWatchers(event, p, true));
      this.#hub.notify(event);
      events.push(event);
    }
    return events;
  }

  /** Whether any node has a TTL. */
  hasTtlKeys(): boolean {
    return this.#ttl.size > 0;
  }

  /** The earliest `expireAt` of any node (ms), or undefined when none has a TTL. */
  nextExpiry(): number | undefined {
    let min: number | undefined;
    for (const n of this.#ttl) if (min === undefined || n.expireAt! < min) min = n.expireAt!;
    return min;
  }

  /**
   * Starts a watch of `key`. With `sinceIndex` (etcd's waitIndex; 0 or absent: the next index) the
   * history is searched first and a match fires the watcher at once. Throws 401 when `sinceIndex` is
   * older than the last 1000 events.
   */
  watch(key: string, opts: { recursive: boolean; stream: boolean; sinceIndex?: number }): V2Watcher {
    const path = cleanKey(key);
    const since = opts.sinceIndex === undefined || opts.sinceIndex === 0 ? this.#index + 1 : opts.sinceIndex;
    return this.#hub.watch(path, opts.recursive, opts.stream, since, this.#index);
  }

  /** How many watchers wait for events (etcd's watchers stat). */
  watcherCount(): number {
    return this.#hub.count;
  }

  /**
   * The whole state as plain JSON: the tree (indexes, values, `expireAt`, listing order), the index and
   * the event history. Watchers are not part of it.
   */
  toJSON(): V2StoreImage {
    const image = (n: Node): V2NodeImage => {
      const j: V2NodeImage = { path: n.path, createdIndex: n.createdIndex, modifiedIndex: n.modifiedIndex };
      if (n.expireAt !== undefined) j.expireAt = n.expireAt;
      if (n.children) j.children = [...n.children.values()].map(image);
      else j.value = n.value;
      return j;
    };
    return {
      version: 1,
      index: this.#index,
      root: image(this.#root),
      history: this.#hub.history.entries.map((e) => structuredClone(e)),
    };
  }

  /** A store from {@link toJSON}'s image. */
  static fromJSON(j: unknown): V2Store {
    const s = new V2Store();
    s.restore(j);
    return s;
  }

  /**
   * Replaces the state with an image (a Raft snapshot), keeping the registered watchers, as etcd's
   * Recovery does. Throws {@link V2StoreImageError} for a malformed image.
   */
  restore(j: unknown): void {
    const img = j as Partial<V2StoreImage> | null;
    if (img === null || typeof img !== "object" || img.version !== 1) {
      throw new V2StoreImageError("not a version 1 image");
    }
    if (!Number.isSafeInteger(img.index) || img.index! < 0) throw new V2StoreImageError("bad index");
    if (!Array.isArray(img.history)) throw new V2StoreImageError("bad history");
    const ttl = new Set<Node>();
    const build = (x: unknown, parent: Node | undefined): Node => {
      const ni = x as V2NodeImage;
      if (
        ni === null || typeof ni !== "object" || typeof ni.path !== "string" ||
        !Number.isSafeInteger(ni.createdIndex) || !Number.isSafeInteger(ni.modifiedIndex) ||
        (ni.expireAt !== undefined && typeof ni.expireAt !== "number")
      ) throw new V2StoreImageError("bad node");
      const n: Node = {
        path: ni.path,
        createdIndex: ni.createdIndex,
        modifiedIndex: ni.modifiedIndex,
        value: "",
        parent,
      };
      if (ni.expireAt !== undefined) {
        n.expireAt = ni.expireAt;
        ttl.add(n);
      }
      if (Array.isArray(ni.children)) {
        n.children = new Map();
        for (const c of ni.children) {
          const child = build(c, n);
          n.children.set(baseName(child.path), child);
        }
      } else if (typeof ni.value === "string") n.value = ni.value;
      else throw new V2StoreImageError(`node ${ni.path} is neither file nor directory`);
      return n;
    };
    const root = build(img.root, undefined);
    if (root.path !== "/" || !root.children) throw new V2StoreImageError("bad root");
    ttl.delete(root);
    this.#root = root;
    this.#ttl = ttl;
    this.#index = img.index!;
    this.#hub.history.replace(img.history.map((e) => deepFreeze(structuredClone(e))));
  }

  /**
   * Takes the state of `other` (a store just decoded from a Raft snapshot), keeping this store's
   * watchers, as {@link restore} does for an image; `other` is not to be used afterwards.
   */
  adopt(other: V2Store): void {
    this.#root = other.#root;
    this.#ttl = other.#ttl;
    this.#index = other.#index;
    this.#hub.history.replace([...other.#hub.history.entries]);
  }

  // ---- internals ----

  /** Records a fresh event (frozen) and notifies, or only records it for a refresh. */
  #publish(event: V2Event, refresh: boolean): V2Event {
    deepFreeze(event);
    if (refresh) this.#hub.add(event);
    else this.#hub.notify(event);
    return event;
  }

  /** Walks to `path` (cleaned): 104 when a file is in the way, 100 when a component is missing. */
  #internalGet(path: string): Node {
    let curr = this.#root;
    for (const name of path.split("/")) {
      if (name === "") continue;
      if (!curr.children) throw notDir(curr.path, this.#index);
      const child = curr.children.get(name);
      if (!child) throw keyNotFound(curr.path === "/" ? "/" + name : curr.path + "/" + name, this.#index);
      curr = child;
    }
    return curr;
  }

  #internalCreate(
    key: string,
    dir: boolean,
    value: string,
    unique: boolean,
    replace: boolean,
    expireAt: number | undefined,
    action: "set" | "create",
    now: number,
  ): { event: V2Event } {
    const next = this.#index + 1;
    let path = key;
    if (unique) path += "/" + String(next).padStart(20, "0");
    path = cleanKey(path);
    if (path === "/") throw rootReadOnly(this.#index);
    if (expireAt !== undefined && expireAt < MIN_EXPIRE_MS) expireAt = undefined;

    const slash = path.lastIndexOf("/");
    const name = path.slice(slash + 1);
    // walk the parents, creating missing directories with the new index
    let d = this.#root;
    for (const part of path.slice(0, slash).split("/")) {
      if (part === "") continue;
      const child = d.children!.get(part);
      if (child) {
        if (!child.children) throw notDir(child.path, this.#index);
        d = child;
        continue;
      }
      const nd: Node = {
        path: d.path === "/" ? "/" + part : d.path + "/" + part,
        createdIndex: next,
        modifiedIndex: next,
        value: "",
        children: new Map(),
        parent: d,
      };
      d.children!.set(part, nd);
      d = nd;
    }

    const existing = d.children!.get(name);
    if (existing) {
      if (!replace) throw nodeExist(path, this.#index);
      if (existing.children) throw notFile(path, this.#index);
      this.#remove(existing, undefined);
    }
    const n: Node = { path, createdIndex: next, modifiedIndex: next, value: dir ? "" : value, parent: d };
    if (dir) n.children = new Map();
    if (expireAt !== undefined) {
      n.expireAt = expireAt;
      this.#ttl.add(n);
    }
    d.children!.set(name, n);

    const node = startNode(path);
    if (dir) node.dir = true;
    else node.value = value;
    this.#expiration(n, now, node);
    node.modifiedIndex = next;
    node.createdIndex = next;
    this.#index = next;
    return { event: { action, node, etcdIndex: next } };
  }

  /** etcd's node.Remove for a node already checked: children first, each removed path reported. */
  #remove(n: Node, removed: ((path: string) => void) | undefined): void {
    if (n.children) { for (const c of [...n.children.values()]) this.#remove(c, removed); }
    const parent = n.parent;
    if (parent?.children?.get(baseName(n.path)) === n) {
      parent.children.delete(baseName(n.path));
      removed?.(n.path);
    }
    this.#ttl.delete(n);
  }

  #updateTtl(n: Node, expireAt: number | undefined): void {
    if (expireAt === undefined) {
      delete n.expireAt;
      this.#ttl.delete(n);
    } else {
      n.expireAt = expireAt;
      this.#ttl.add(n);
    }
  }

  /** Adds `expiration` and `ttl` (when not 0) to `out` for a node with a TTL. */
  #expiration(n: Node, now: number, out: V2Node): void {
    if (n.expireAt === undefined) return;
    out.expiration = formatRfc3339Nano(n.expireAt);
    const ttl = ttlAt(n.expireAt, now);
    if (ttl !== 0) out.ttl = ttl;
  }

  #listChildren(n: Node, recursive: boolean, sorted: boolean, now: number): V2Node[] {
    const nodes: V2Node[] = [];
    for (const c of n.children!.values()) {
      if (!isHidden(c)) nodes.push(this.#repr(c, recursive, sorted, now));
    }
    if (sorted) nodes.sort((a, b) => compareKeys(a.key, b.key));
    return nodes;
  }

  /** etcd's node.Repr: a directory lists children only when `recursive` (or `list`, for its own level). */
  #repr(n: Node, recursive: boolean, sorted: boolean, now: number, list = recursive): V2Node {
    const out = startNode(n.path);
    if (n.children) {
      out.dir = true;
      this.#expiration(n, now, out);
      if (list) {
        const nodes = this.#listChildren(n, recursive, sorted, now);
        if (nodes.length > 0) out.nodes = nodes;
      }
    } else {
      out.value = n.value;
      this.#expiration(n, now, out);
    }
    out.modifiedIndex = n.modifiedIndex;
    out.createdIndex = n.createdIndex;
    return out;
  }
}

export type { Watcher };
