/**
 * An ordered set of latin1 key strings, each carrying a numeric id, for range scans.
 *
 * Two levels: a list of sorted leaves (plain arrays of a few hundred keys) and, beside it, the first key
 * of every leaf for a binary search. Inserting or removing splices one small leaf; only a leaf split or
 * an emptied leaf touches the top level. This is much simpler than a B+tree and, for a million keys,
 * keeps every operation to two binary searches and a short array move.
 *
 * @module
 */

/** A leaf splits in two when it reaches this many keys. */
const LEAF_MAX = 1024;
/** Leaves built in bulk are filled to this many keys, leaving room to grow. */
const LEAF_FILL = 768;

/** Sorted latin1 keys with an id each; ids are opaque to this class. */
export class SortedKeys {
  private leafKeys: string[][] = [[]];
  private leafIds: number[][] = [[]];
  /** First key of each non-empty leaf (the only leaf may be empty). */
  private firsts: string[] = [""];
  private count = 0;

  /** Number of keys held. */
  get size(): number {
    return this.count;
  }

  /** Builds a set from keys already in ascending order (no duplicates) and their ids. */
  static fromSorted(keys: readonly string[], ids: ArrayLike<number>): SortedKeys {
    const s = new SortedKeys();
    if (keys.length === 0) return s;
    s.leafKeys = [];
    s.leafIds = [];
    s.firsts = [];
    for (let i = 0; i < keys.length; i += LEAF_FILL) {
      const end = Math.min(keys.length, i + LEAF_FILL);
      const lk = keys.slice(i, end);
      const li: number[] = new Array(end - i);
      for (let j = i; j < end; j++) li[j - i] = ids[j];
      s.leafKeys.push(lk);
      s.leafIds.push(li);
      s.firsts.push(lk[0]);
    }
    s.count = keys.length;
    return s;
  }

  /** Index of the leaf that holds or would hold `key`. */
  private leafFor(key: string): number {
    const f = this.firsts;
    let lo = 0;
    let hi = f.length - 1;
    // last leaf whose first key <= key, or leaf 0
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (f[mid] <= key) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Inserts `key` with `id`; returns false (and changes nothing) if the key is already present. */
  insert(key: string, id: number): boolean {
    const li = this.leafFor(key);
    const keys = this.leafKeys[li];
    const p = lowerBound(keys, key);
    if (p < keys.length && keys[p] === key) return false;
    keys.splice(p, 0, key);
    this.leafIds[li].splice(p, 0, id);
    if (p === 0) this.firsts[li] = key;
    this.count++;
    if (keys.length >= LEAF_MAX) this.split(li);
    return true;
  }

  private split(li: number): void {
    const keys = this.leafKeys[li];
    const ids = this.leafIds[li];
    const half = keys.length >>> 1;
    const rightKeys = keys.splice(half);
    const rightIds = ids.splice(half);
    this.leafKeys.splice(li + 1, 0, rightKeys);
    this.leafIds.splice(li + 1, 0, rightIds);
    this.firsts.splice(li + 1, 0, rightKeys[0]);
  }

  /** Removes `key`; returns its id, or -1 when it was not present. */
  remove(key: string): number {
    const li = this.leafFor(key);
    const keys = this.leafKeys[li];
    const p = lowerBound(keys, key);
    if (p >= keys.length || keys[p] !== key) return -1;
    const id = this.leafIds[li][p];
    keys.splice(p, 1);
    this.leafIds[li].splice(p, 1);
    this.count--;
    if (keys.length === 0) {
      if (this.leafKeys.length > 1) {
        this.leafKeys.splice(li, 1);
        this.leafIds.splice(li, 1);
        this.firsts.splice(li, 1);
      } else {
        this.firsts[0] = "";
      }
    } else if (p === 0) {
      this.firsts[li] = keys[0];
    }
    return id;
  }

  /** Id of `key`, or -1. */
  get(key: string): number {
    const li = this.leafFor(key);
    const keys = this.leafKeys[li];
    const p = lowerBound(keys, key);
    return p < keys.length && keys[p] === key ? this.leafIds[li][p] : -1;
  }

  /** Keeps only the keys whose id passes `keep`, rebuilding the leaves in one pass. */
  filter(keep: (id: number) => boolean): void {
    const keys: string[] = [];
    const ids: number[] = [];
    for (let li = 0; li < this.leafKeys.length; li++) {
      const lk = this.leafKeys[li];
      const lid = this.leafIds[li];
      for (let i = 0; i < lk.length; i++) {
        if (keep(lid[i])) {
          keys.push(lk[i]);
          ids.push(lid[i]);
        }
      }
    }
    const rebuilt = SortedKeys.fromSorted(keys, ids);
    this.leafKeys = rebuilt.leafKeys;
    this.leafIds = rebuilt.leafIds;
    this.firsts = rebuilt.firsts;
    this.count = rebuilt.count;
  }

  /**
   * Visits, in ascending order, the keys `k` with `start <= k` and, unless `end` is undefined,
   * `k < end`. Stops early when `visit` returns false.
   */
  scan(start: string, end: string | undefined, visit: (id: number, key: string) => boolean | void): void {
    let li = this.leafFor(start);
    let p = lowerBound(this.leafKeys[li], start);
    const nLeaves = this.leafKeys.length;
    for (; li < nLeaves; li++, p = 0) {
      const keys = this.leafKeys[li];
      const ids = this.leafIds[li];
      const n = keys.length;
      if (end !== undefined && n > 0 && keys[n - 1] >= end) {
        // the range ends inside this leaf
        for (; p < n; p++) {
          const k = keys[p];
          if (k >= end) return;
          if (visit(ids[p], k) === false) return;
        }
        return;
      }
      for (; p < n; p++) {
        if (visit(ids[p], keys[p]) === false) return;
      }
    }
  }

  /**
   * Visits, in descending order, the keys `k` with `start <= k` and, unless `end` is undefined,
   * `k < end`. Stops early when `visit` returns false.
   */
  scanDescending(
    start: string,
    end: string | undefined,
    visit: (id: number, key: string) => boolean | void,
  ): void {
    let li = end === undefined ? this.leafKeys.length - 1 : this.leafFor(end);
    let p = end === undefined ? this.leafKeys[li].length - 1 : lowerBound(this.leafKeys[li], end) - 1;
    for (;;) {
      const keys = this.leafKeys[li];
      const ids = this.leafIds[li];
      for (; p >= 0; p--) {
        const k = keys[p];
        if (k < start) return;
        if (visit(ids[p], k) === false) return;
      }
      if (--li < 0) return;
      p = this.leafKeys[li].length - 1;
    }
  }

  /** All keys in order (for tests and snapshots). */
  keys(): string[] {
    const out: string[] = [];
    for (const lk of this.leafKeys) for (const k of lk) out.push(k);
    return out;
  }

  /** Checks the structure's invariants; throws on the first violation (tests use this). */
  validate(): void {
    let prev: string | undefined;
    let n = 0;
    if (this.leafKeys.length !== this.firsts.length || this.leafIds.length !== this.firsts.length) {
      throw new Error("sorted keys: level sizes differ");
    }
    for (let li = 0; li < this.leafKeys.length; li++) {
      const lk = this.leafKeys[li];
      if (lk.length !== this.leafIds[li].length) throw new Error("sorted keys: leaf id count differs");
      if (lk.length === 0 && this.leafKeys.length > 1) throw new Error("sorted keys: empty leaf");
      if (lk.length > 0 && this.firsts[li] !== lk[0]) throw new Error("sorted keys: stale first key");
      if (lk.length >= LEAF_MAX) throw new Error("sorted keys: oversized leaf");
      for (const k of lk) {
        if (prev !== undefined && !(prev < k)) throw new Error("sorted keys: out of order");
        prev = k;
        n++;
      }
    }
    if (n !== this.count) throw new Error("sorted keys: size mismatch");
  }
}

/** First index in the sorted `keys` whose key is >= `key`. */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
