/**
 * The key index: every key that has history in the store (live, or deleted but not yet compacted away),
 * as etcd's `treeIndex` of `keyIndex`es.
 *
 * A key gets a small integer id for as long as it is indexed. Per id the index keeps the key and the
 * newest entry of its history in the revision log; older entries hang off that one through the log's
 * `prev` links, so a key's generations are implicit: a tombstone entry ends one, the next put starts
 * another. Point lookups go through a `Map`, range scans through {@link SortedKeys}.
 *
 * @module
 */
import { SortedKeys } from "./sorted_keys.ts";

/** Key ids and their newest revision-log entry. */
export class KeyIndex {
  private readonly ids = new Map<string, number>();
  private keyOf: string[] = [];
  /** id -> newest log entry of the key, -1 when none. */
  heads: Int32Array = new Int32Array(64).fill(-1);
  private freeIds: number[] = [];
  /** Keys in byte order with their ids. */
  sorted: SortedKeys = new SortedKeys();
  /** Sum of the lengths of all indexed keys. */
  keyBytes = 0;

  /** Number of indexed keys. */
  get size(): number {
    return this.ids.size;
  }

  /** One past the largest id handed out (ids below it may be free). */
  get idLimit(): number {
    return this.keyOf.length;
  }

  /** Id of `key`, or -1. */
  lookup(key: string): number {
    const id = this.ids.get(key);
    return id === undefined ? -1 : id;
  }

  /** The key of an id in use. */
  key(id: number): string {
    return this.keyOf[id];
  }

  /** Indexes a key not yet present and returns its new id (its head is -1). */
  insert(key: string): number {
    let id: number;
    if (this.freeIds.length > 0) {
      id = this.freeIds.pop()!;
      this.keyOf[id] = key;
    } else {
      id = this.keyOf.length;
      this.keyOf.push(key);
      if (id >= this.heads.length) {
        const grown = new Int32Array(this.heads.length * 2).fill(-1);
        grown.set(this.heads);
        this.heads = grown;
      }
    }
    this.heads[id] = -1;
    this.ids.set(key, id);
    this.sorted.insert(key, id);
    this.keyBytes += key.length;
    return id;
  }

  /** Drops a key from the map (and, unless `keepSorted`, from the sorted set) and frees its id. */
  remove(id: number, keepSorted = false): void {
    const key = this.keyOf[id];
    this.ids.delete(key);
    if (!keepSorted) this.sorted.remove(key);
    this.keyOf[id] = "";
    this.heads[id] = -1;
    this.freeIds.push(id);
    this.keyBytes -= key.length;
  }

  /** Whether `id` is in use. */
  has(id: number): boolean {
    return id < this.keyOf.length && this.ids.get(this.keyOf[id]) === id;
  }

  /**
   * Builds an index from keys in ascending byte order; key `i` gets id `i`, its head `heads[i]`.
   */
  static fromSorted(keys: string[], heads: Int32Array): KeyIndex {
    const ki = new KeyIndex();
    ki.keyOf = keys;
    ki.heads = new Int32Array(Math.max(64, keys.length));
    ki.heads.fill(-1);
    ki.heads.set(heads.subarray(0, keys.length));
    let bytes = 0;
    for (let i = 0; i < keys.length; i++) {
      ki.ids.set(keys[i], i);
      bytes += keys[i].length;
    }
    ki.keyBytes = bytes;
    const ids = new Int32Array(keys.length);
    for (let i = 0; i < ids.length; i++) ids[i] = i;
    ki.sorted = SortedKeys.fromSorted(keys, ids);
    return ki;
  }
}
