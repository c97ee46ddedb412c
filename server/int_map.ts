/**
 * A map from non-negative integer keys to values, for keys that come and go with every request (stream
 * IDs, proposal sequence numbers).
 *
 * A `Map` that lives in V8's old space allocates every new hash table of its own in the old space too. A
 * `Map` where one key is added and removed per request rehashes every few requests, as deleted entries fill
 * its table or it shrinks, so it leaves old-space garbage at the request rate. That garbage brings on full
 * collections: on one member under one client's puts, the session's streams and the proposer's waiters made
 * about a third of all promoted bytes (docs/benchmarks.md).
 *
 * This one probes linearly and deletes by shifting the entries after the hole back, so it leaves no
 * tombstones. It allocates only when it grows past half full or shrinks under a sixteenth, and then in the
 * young generation. Iteration order is not insertion order; `values()` and `entries()` return copies, so the
 * map may change while they are walked.
 *
 * @module
 */

const EMPTY = -1;
const MIN_CAPACITY = 8;

/** Integer keys from 0 up to 2^53 - 1 (what `Number.isSafeInteger` accepts), to any values. */
export class IntMap<V> {
  #keys: Float64Array;
  #vals: (V | undefined)[];
  #mask: number;
  #shift: number;
  #size = 0;

  constructor(capacity = MIN_CAPACITY) {
    let cap = MIN_CAPACITY;
    while (cap < capacity) cap *= 2;
    this.#keys = new Float64Array(cap).fill(EMPTY);
    this.#vals = new Array(cap).fill(undefined);
    this.#mask = cap - 1;
    this.#shift = 32 - Math.log2(cap);
  }

  get size(): number {
    return this.#size;
  }

  /** The slot count (a power of two), for tests. */
  get capacity(): number {
    return this.#mask + 1;
  }

  get(key: number): V | undefined {
    const i = this.#find(key);
    return i < 0 ? undefined : this.#vals[i];
  }

  has(key: number): boolean {
    return this.#find(key) >= 0;
  }

  set(key: number, value: V): this {
    if (!(key >= 0 && Number.isSafeInteger(key))) throw new RangeError(`IntMap: bad key ${key}`);
    const keys = this.#keys;
    const mask = this.#mask;
    let i = this.#home(key);
    for (;;) {
      const k = keys[i];
      if (k === key) {
        this.#vals[i] = value;
        return this;
      }
      if (k === EMPTY) break;
      i = (i + 1) & mask;
    }
    keys[i] = key;
    this.#vals[i] = value;
    this.#size++;
    if (this.#size * 2 > mask + 1) this.#resize((mask + 1) * 2);
    return this;
  }

  delete(key: number): boolean {
    let i = this.#find(key);
    if (i < 0) return false;
    const keys = this.#keys;
    const vals = this.#vals;
    const mask = this.#mask;
    // Backward shift: an entry after the hole moves into it if the hole lies on its probe path, that is
    // between its home slot and where it sits now.
    for (let j = (i + 1) & mask; keys[j] !== EMPTY; j = (j + 1) & mask) {
      const h = this.#home(keys[j]);
      if (((i - h) & mask) < ((j - h) & mask)) {
        keys[i] = keys[j];
        vals[i] = vals[j];
        i = j;
      }
    }
    keys[i] = EMPTY;
    vals[i] = undefined;
    this.#size--;
    const cap = mask + 1;
    if (cap > MIN_CAPACITY && this.#size * 16 < cap) this.#resize(cap / 2);
    return true;
  }

  clear(): void {
    this.#keys.fill(EMPTY);
    this.#vals.fill(undefined);
    this.#size = 0;
  }

  /** A copy of the values. */
  values(): V[] {
    const out: V[] = [];
    const keys = this.#keys;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== EMPTY) out.push(this.#vals[i] as V);
    return out;
  }

  /** A copy of the entries. */
  entries(): [number, V][] {
    const out: [number, V][] = [];
    const keys = this.#keys;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== EMPTY) out.push([keys[i], this.#vals[i] as V]);
    return out;
  }

  #home(key: number): number {
    // Fibonacci hashing of the low 32 bits mixed with the high ones; the top bits index the table
    const lo = key >>> 0;
    const hi = (key / 4294967296) >>> 0;
    return Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) >>> this.#shift;
  }

  #find(key: number): number {
    const keys = this.#keys;
    const mask = this.#mask;
    if (!(key >= 0)) return -1;
    for (let i = this.#home(key);; i = (i + 1) & mask) {
      const k = keys[i];
      if (k === key) return i;
      if (k === EMPTY) return -1;
    }
  }

  #resize(cap: number): void {
    const keys = this.#keys;
    const vals = this.#vals;
    this.#keys = new Float64Array(cap).fill(EMPTY);
    this.#vals = new Array(cap).fill(undefined);
    this.#mask = cap - 1;
    this.#shift = 32 - Math.log2(cap);
    this.#size = 0;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] !== EMPTY) this.set(keys[i], vals[i] as V);
    }
  }
}
