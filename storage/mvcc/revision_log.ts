/**
 * The revision log: every retained change of the key space, one entry per (main, sub) revision, in
 * revision order: the in-memory counterpart of etcd's `key` bucket.
 *
 * Entries are stored column-wise in typed arrays: no object per revision, nothing for the garbage
 * collector to trace. The columns of whole numbers (revisions, versions, key ids, value lengths) are as
 * narrow as their values allow: each starts at 8, 16 or 32 bits and is widened, up to float64 (exact to
 * 2^53), by the first value that does not fit. The lease column exists only once some entry has a lease.
 * An entry takes 27 bytes while revisions fit in 32 bits, subrevisions in 8, and key ids, versions and
 * value lengths in 16; 29 once some key has had 65,536 versions. The value bytes are kept in a
 * {@link ValueArena}. A tombstone (deletion) is an entry whose `create` is 0.
 *
 * @module
 */

const MIN_CAPACITY = 256;

/**
 * File addresses in the log's `slab`/`off` columns: slab -1 is an empty value, slabs >= 0 are arena
 * slabs, and slab `-2 - hi` with offset `lo` is file position `hi * FILE_SPAN + lo`.
 */
export const FILE_SPAN = 2 ** 30;
/** The `slab` column value of file position `pos`. */
export function fileSlab(pos: number): number {
  return -2 - Math.floor(pos / FILE_SPAN);
}
/** File position of a value whose `slab` column is <= -2. */
export function filePos(slab: number, off: number): number {
  return (-2 - slab) * FILE_SPAN + off;
}

/** Whether entry `e` of `log` holds a value in the history file. */
export function inHistoryFile(log: RevisionLog, e: number): boolean {
  return log.slab[e] <= -2 && log.create[e] !== 0;
}

/** Position in the history file of the value of entry `e`; only where {@link inHistoryFile}. */
function valuePos(log: RevisionLog, e: number): number {
  return filePos(log.slab[e], log.off[e]);
}

/** Smallest stretch of the history file whose entries {@link inFileOrder} sorts together. */
const FILE_ORDER_BUCKET = 64 * 1024;

/**
 * The entries of `log` whose values are in the history file, in the order the values lie in it: what
 * reads them all (a snapshot image, a rewrite of the file) reads the file forward instead of seeking for
 * each value, since a value is demoted when its key is next written, not in revision order.
 *
 * A counting sort on stretches of at least 64 KiB of the file, in three passes over the log; each
 * stretch, a few dozen entries, is sorted when it is reached.
 */
export function* inFileOrder(log: RevisionLog): Generator<number> {
  let count = 0;
  let lo = Infinity;
  let end = 0;
  for (let e = 0; e < log.length; e++) {
    if (!inHistoryFile(log, e)) continue;
    count++;
    const pos = valuePos(log, e);
    lo = Math.min(lo, pos);
    end = Math.max(end, pos + 1);
  }
  if (count === 0) return;
  // positions start where the file's oldest segment still held begins
  const span = Math.max(FILE_ORDER_BUCKET, Math.ceil((end - lo) / count));
  const buckets = Math.ceil((end - lo) / span);
  const starts = new Int32Array(buckets + 1);
  for (let e = 0; e < log.length; e++) {
    if (inHistoryFile(log, e)) starts[Math.floor((valuePos(log, e) - lo) / span) + 1]++;
  }
  for (let b = 0; b < buckets; b++) starts[b + 1] += starts[b];
  const entries = new Int32Array(count);
  const next = starts.slice(0, buckets);
  for (let e = 0; e < log.length; e++) {
    if (inHistoryFile(log, e)) entries[next[Math.floor((valuePos(log, e) - lo) / span)]++] = e;
  }
  for (let b = 0; b < buckets; b++) {
    const bucket = entries.subarray(starts[b], starts[b + 1]);
    if (bucket.length > 1) bucket.sort((x, y) => valuePos(log, x) - valuePos(log, y));
    yield* bucket;
  }
}

/**
 * A column of whole numbers from 0 to 2^53 - 1, in the narrowest of these kinds that holds every value
 * in it so far.
 */
export type UintColumn = Uint8Array | Uint16Array | Uint32Array | Float64Array;

/** The largest value `col` can hold. */
export function columnLimit(col: UintColumn): number {
  return col instanceof Float64Array ? Number.MAX_SAFE_INTEGER : 2 ** (8 * col.BYTES_PER_ELEMENT) - 1;
}

/** An empty column of `cap` slots in the narrowest kind that holds `value`, and no narrower than `col`. */
function columnFor(col: UintColumn, value: number, cap: number): UintColumn {
  const bytes = value <= columnLimit(col)
    ? col.BYTES_PER_ELEMENT
    : value <= 0xff
    ? 1
    : value <= 0xffff
    ? 2
    : value <= 0xffffffff
    ? 4
    : 8;
  switch (bytes) {
    case 1:
      return new Uint8Array(cap);
    case 2:
      return new Uint16Array(cap);
    case 4:
      return new Uint32Array(cap);
    default:
      return new Float64Array(cap);
  }
}

/** Column storage of revision entries; an entry's index is its position, which compaction changes. */
export class RevisionLog {
  /** Number of entries. */
  length = 0;
  /** Main revision. */
  main: UintColumn = new Uint32Array(MIN_CAPACITY);
  /** Sub revision (position of the change inside its transaction). */
  sub: UintColumn = new Uint8Array(MIN_CAPACITY);
  /** Key id (see KeyIndex). */
  key: UintColumn = new Uint16Array(MIN_CAPACITY);
  /** Previous entry of the same key, -1 when none is retained. */
  prev: Int32Array = new Int32Array(MIN_CAPACITY);
  /** Create revision of the key's generation; 0 marks a tombstone. */
  create: UintColumn = new Uint32Array(MIN_CAPACITY);
  /** Version of the key in its generation; 0 for a tombstone. */
  version: UintColumn = new Uint16Array(MIN_CAPACITY);
  /** Lease id (int64), 0 for none; null while no entry has had a lease (see {@link leaseAt}). */
  lease: BigInt64Array | null = null;
  /** A {@link frozenCopy} still reading some columns of the log it was taken from. */
  private sharesColumns = false;
  /** Value location: arena slab id (-1: empty value), offset and length. */
  slab: Int32Array = new Int32Array(MIN_CAPACITY);
  /** Offset of the value in its slab. */
  off: Int32Array = new Int32Array(MIN_CAPACITY);
  /** Length of the value. */
  len: UintColumn = new Uint16Array(MIN_CAPACITY);
  /** The largest value each narrow column holds as it is, for {@link append}'s checks. */
  private limits = this.columnLimits();

  /** Allocated entry slots. */
  get capacity(): number {
    return this.main.length;
  }

  /** Makes room for at least `n` entries in total. */
  reserve(n: number): void {
    if (n <= this.main.length) return;
    let cap = this.main.length;
    while (cap < n) cap = cap < 1 << 20 ? cap * 2 : Math.ceil(cap * 1.5);
    this.resize(cap);
  }

  /** Reallocates every column to `cap` slots (at least `length`). */
  resize(cap: number): void {
    cap = Math.max(cap, this.length, MIN_CAPACITY);
    const n = this.length;
    this.main = grow(this.main, columnFor(this.main, 0, cap), n);
    this.sub = grow(this.sub, columnFor(this.sub, 0, cap), n);
    this.key = grow(this.key, columnFor(this.key, 0, cap), n);
    this.prev = grow(this.prev, new Int32Array(cap), n);
    this.create = grow(this.create, columnFor(this.create, 0, cap), n);
    this.version = grow(this.version, columnFor(this.version, 0, cap), n);
    if (this.lease !== null) this.lease = grow(this.lease, new BigInt64Array(cap), n);
    this.slab = grow(this.slab, new Int32Array(cap), n);
    this.off = grow(this.off, new Int32Array(cap), n);
    this.len = grow(this.len, columnFor(this.len, 0, cap), n);
  }

  /** Appends an entry and returns its index. */
  append(
    main: number,
    sub: number,
    key: number,
    prev: number,
    create: number,
    version: number,
    lease: bigint,
    slab: number,
    off: number,
    len: number,
  ): number {
    const i = this.length;
    if (i === this.main.length) this.reserve(i + 1);
    const lim = this.limits;
    if (
      main > lim.main || sub > lim.sub || key > lim.key || create > lim.create || version > lim.version ||
      len > lim.len
    ) this.widen(main, sub, key, create, version, len);
    this.main[i] = main;
    this.sub[i] = sub;
    this.key[i] = key;
    this.prev[i] = prev;
    this.create[i] = create;
    this.version[i] = version;
    if (lease !== 0n) (this.lease ??= new BigInt64Array(this.main.length))[i] = lease;
    else if (this.lease !== null) this.lease[i] = 0n;
    this.slab[i] = slab;
    this.off[i] = off;
    this.len[i] = len;
    this.length = i + 1;
    return i;
  }

  /** Copies entry `from` over entry `to` (all columns but `prev`). */
  move(from: number, to: number): void {
    this.main[to] = this.main[from];
    this.sub[to] = this.sub[from];
    this.key[to] = this.key[from];
    this.create[to] = this.create[from];
    this.version[to] = this.version[from];
    if (this.lease !== null) this.lease[to] = this.lease[from];
    this.slab[to] = this.slab[from];
    this.off[to] = this.off[from];
    this.len[to] = this.len[from];
  }

  /** Moves entries `[from, length)` down to start at `to` (all columns but `prev`). */
  shiftDown(from: number, to: number): void {
    const end = this.length;
    this.main.copyWithin(to, from, end);
    this.sub.copyWithin(to, from, end);
    this.key.copyWithin(to, from, end);
    this.create.copyWithin(to, from, end);
    this.version.copyWithin(to, from, end);
    this.lease?.copyWithin(to, from, end);
    this.slab.copyWithin(to, from, end);
    this.off.copyWithin(to, from, end);
    this.len.copyWithin(to, from, end);
  }

  /**
   * A copy of the entries as they are now, for a snapshot written in the background while this log goes
   * on taking writes. Appends land past the copy's length, and growing or widening a column reallocates
   * it, so the columns that only a compaction rewrites are shared with this log rather than copied; the
   * value locations, which a demotion or a defragmentation repoints, are copied (8 bytes per entry, where
   * a copy of every column took 36 when it was written: fresh memory costs a page fault per 4 KiB, about
   * 40 ms for 300k entries here). Call
   * {@link own} on the copy before this log compacts.
   */
  frozenCopy(): RevisionLog {
    const n = this.length;
    const copy = new RevisionLog();
    copy.length = n;
    copy.main = this.main;
    copy.create = this.create;
    copy.version = this.version;
    copy.sub = this.sub;
    copy.key = this.key;
    copy.prev = this.prev;
    copy.len = this.len;
    copy.lease = this.lease;
    const locations = new ArrayBuffer(n * 8);
    copy.slab = new Int32Array(locations, 0, n);
    copy.slab.set(this.slab.subarray(0, n));
    copy.off = new Int32Array(locations, n * 4, n);
    copy.off.set(this.off.subarray(0, n));
    copy.sharesColumns = true;
    return copy;
  }

  /** Gives a {@link frozenCopy} columns of its own, so the log it was taken from may rewrite its entries. */
  own(): void {
    if (!this.sharesColumns) return;
    this.sharesColumns = false;
    const n = this.length;
    this.main = this.main.slice(0, n);
    this.create = this.create.slice(0, n);
    this.version = this.version.slice(0, n);
    this.sub = this.sub.slice(0, n);
    this.key = this.key.slice(0, n);
    this.prev = this.prev.slice(0, n);
    this.len = this.len.slice(0, n);
    this.lease = this.lease === null ? null : this.lease.slice(0, n);
  }

  /** First index whose main revision is >= `rev` (`length` if none). */
  lowerBound(rev: number): number {
    const main = this.main;
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (main[mid] < rev) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Lease id of entry `e` (0n for none). */
  leaseAt(e: number): bigint {
    const lease = this.lease;
    return lease === null ? 0n : lease[e];
  }

  /** Bytes held by the columns. */
  get columnBytes(): number {
    const perEntry = this.main.BYTES_PER_ELEMENT + this.sub.BYTES_PER_ELEMENT + this.key.BYTES_PER_ELEMENT +
      this.create.BYTES_PER_ELEMENT + this.version.BYTES_PER_ELEMENT + this.len.BYTES_PER_ELEMENT +
      (this.lease === null ? 0 : 8) + 3 * 4;
    return this.main.length * perEntry;
  }

  /** Gives each narrow column that cannot hold the value meant for it a wider kind that can. */
  private widen(main: number, sub: number, key: number, create: number, version: number, len: number): void {
    const n = this.length;
    const cap = this.main.length;
    const wider = (col: UintColumn, value: number) =>
      value <= columnLimit(col) ? col : grow(col, columnFor(col, value, cap), n);
    this.main = wider(this.main, main);
    this.sub = wider(this.sub, sub);
    this.key = wider(this.key, key);
    this.create = wider(this.create, create);
    this.version = wider(this.version, version);
    this.len = wider(this.len, len);
    this.limits = this.columnLimits();
  }

  private columnLimits() {
    return {
      main: columnLimit(this.main),
      sub: columnLimit(this.sub),
      key: columnLimit(this.key),
      create: columnLimit(this.create),
      version: columnLimit(this.version),
      len: columnLimit(this.len),
    };
  }
}

function grow<T extends UintColumn | Int32Array | BigInt64Array>(
  old: UintColumn | Int32Array | BigInt64Array,
  fresh: T,
  n: number,
): T {
  // deno-lint-ignore no-explicit-any
  (fresh as any).set((old as any).subarray(0, n));
  return fresh;
}
