/**
 * The MVCC key space: etcd 3.4's `mvcc` store semantics in memory.
 *
 * - Every write transaction that changes something gets the next main revision; its changes get sub
 *   revisions 0, 1, 2, ... in order. A store starts at revision 1.
 * - A key's history is a sequence of generations: a put on an absent key starts one (version 1,
 *   create revision = that revision), each further put bumps the version, a delete writes a tombstone
 *   and ends the generation.
 * - Old revisions stay readable until compacted. Compacting at revision R keeps, for every key, the
 *   newest entry at or below R unless it is a tombstone, and everything above R; keys left with no
 *   entry disappear. Reads below R then fail with {@link ErrCompacted}.
 *
 * Layout: the {@link RevisionLog} holds every retained entry in revision order (so history reads for
 * watchers and the hash are sequential scans), the {@link KeyIndex} maps each key to its newest entry,
 * and older entries of a key are reached through the log's `prev` links. Values are copied into a
 * {@link ValueArena}. Every KeyValue handed out is a fresh copy; the kvs of one call share one buffer.
 *
 * With a history file ({@link MvccStoreOptions.historyFile}) only the newest entry of each key keeps its
 * value in the arena: when a put or delete supersedes an entry, its value is moved ("demoted") to a
 * {@link HistoryFile} and the entry's `slab` column holds a negative file address instead of a slab id
 * (see {@link fileSlab}). Reads of old revisions then read the file.
 *
 * @module
 */
import { isFromKey, latin1 } from "./bytes.ts";
import { ErrSnapshotCorrupt } from "./byte_codec.ts";
import { crc32c } from "../crc32c.ts";
import { type ByteStream, collectBytes } from "../byte_stream.ts";
import { HistoryFile } from "./history_file.ts";
import type { FileSystem } from "../fs.ts";
import { KeyIndex } from "./key_index.ts";
import { FILE_SPAN, filePos, fileSlab, inFileOrder, inHistoryFile, RevisionLog } from "./revision_log.ts";
import { imageChunks, imageSource, loadImage } from "./image.ts";
import { ValueArena } from "./value_arena.ts";

export { ErrSnapshotCorrupt };

/** A key's value at one revision, as etcd's `mvccpb.KeyValue`. */
export interface KeyValue {
  /** The key's bytes. */
  key: Uint8Array;
  /** Revision that created the key's current generation; 0 in a delete event. */
  createRevision: number;
  /** Revision of this change. */
  modRevision: number;
  /** Puts since the generation started, 1 for the first; 0 in a delete event. */
  version: number;
  /** The value's bytes (empty for keysOnly reads and delete events). */
  value: Uint8Array;
  /** Lease id, 0n for none (an int64). */
  lease: bigint;
}

/**
 * One change, as etcd's `mvccpb.Event`. A delete carries `kv` with the key and `modRevision` = the
 * deletion revision, every other field zero. `prevKv` is the key's value just before the change, when
 * there was one.
 */
export interface MvccEvent {
  /** Kind of change. */
  type: "put" | "delete";
  /** The key after the change (for a delete: key and deletion revision only). */
  kv: KeyValue;
  /** The key before the change, if it existed and is still retained. */
  prevKv?: KeyValue;
}

/** Options of a range read. */
export interface RangeOptions {
  /** Revision to read at; 0 or absent for the current one. */
  revision?: number;
  /** Most kvs to return; 0 or absent for no limit. `count` still counts every match. */
  limit?: number;
  /** Return no kvs, only the count. */
  countOnly?: boolean;
  /** Return kvs with empty values. */
  keysOnly?: boolean;
  /**
   * Stop at `limit` kvs instead of counting every match: `count` is then the number of kvs returned. For
   * reading a long range page by page.
   */
  noCount?: boolean;
  /** The kvs in descending key order: with `limit`, the last ones of the range. */
  descending?: boolean;
  /**
   * The kvs sorted by one of their revisions or their version before `limit` applies, keys in order
   * among equals: the first `limit` of that order, copying nothing of the others (not with `noCount`).
   */
  sortBy?: { target: "create" | "mod" | "version"; descending: boolean };
}

/** Result of a range read. */
export interface RangeResult {
  /**
   * Matching kvs in ascending key order (descending, or sorted by a revision or the version, if asked), at
   * most `limit`.
   */
  kvs: KeyValue[];
  /** Number of all matches, ignoring `limit`. */
  count: number;
  /** Revision read at (the current revision when none was asked for). */
  revision: number;
}

/** Result of {@link MvccStore.hashKV}. */
export interface HashKVResult {
  /** CRC-32C over the key-value history up to the requested revision, as etcd computes it. */
  hash: number;
  /** The store's compact revision as etcd reports it here: -1 before the first compaction. */
  compactRevision: number;
  /** The store's current revision. */
  revision: number;
}

/** A consistent image of a store taken at one moment (see {@link MvccStore.snapshotView}). */
export interface MvccSnapshotView {
  /** The image as of when the view was taken; its chunks may be read once the store has moved on. */
  readonly image: ByteStream;
  /** Lets the store drop what the view kept alive; idempotent. The image must not be read afterwards. */
  release(): void;
}

/** Outcome of a committed write transaction. */
export interface TxnEnd {
  /** Current revision after the transaction (unchanged if it wrote nothing). */
  revision: number;
  /** Its changes in sub-revision order (none for a transaction opened without events). */
  events: MvccEvent[];
}

/** How a write transaction is opened. */
export interface WriteOptions {
  /**
   * Whether `end` returns the transaction's events (default true). Without them, a put copies out
   * neither the new kv nor the previous one: the fast path when nobody watches.
   */
  events?: boolean;
  /**
   * Whether the events carry the previous kv (default true); only a watcher that asked for `prevKv` reads
   * it. Without, a put or a deletion copies no previous value for its event.
   */
  prevKvs?: boolean;
}

/** The requested revision is older than the compact revision. */
export class ErrCompacted extends Error {
  /** Stable error code. */
  readonly code = "COMPACTED";
  constructor() {
    super("mvcc: required revision has been compacted");
    this.name = "ErrCompacted";
  }
}

/** The requested revision is newer than the current revision. */
export class ErrFutureRev extends Error {
  /** Stable error code. */
  readonly code = "FUTURE_REV";
  constructor() {
    super("mvcc: required revision is a future revision");
    this.name = "ErrFutureRev";
  }
}

/** The store was used against its one-writer protocol (a programming error, never a client's). */
export class ErrTxnState extends Error {
  /** Stable error code. */
  readonly code = "TXN_STATE";
  /** Builds the error; `detail` says what was done wrong. */
  constructor(detail: string) {
    super(`mvcc: ${detail}`);
    this.name = "ErrTxnState";
  }
}

/** A write transaction: reads see its own earlier writes; nothing is visible to others before `end`. */
export interface WriteTxn {
  /** Range read at the transaction's revision (including its own writes so far). */
  range(key: Uint8Array, rangeEnd: Uint8Array | undefined, options?: RangeOptions): RangeResult;
  /**
   * Puts a key (bytes are copied). Returns the previous kv if the key existed and `withPrev` is set (the
   * default) or the transaction's events carry previous kvs; otherwise undefined, without copying anything.
   */
  put(key: Uint8Array, value: Uint8Array, lease: bigint, withPrev?: boolean): KeyValue | undefined;
  /** The lease of a live key (0n for none), or undefined if the key does not exist; copies nothing. */
  leaseOf(key: Uint8Array): bigint | undefined;
  /**
   * Deletes the live keys in the range; returns their latest kvs, with their values if `withPrev` is set
   * (the default) or the transaction's events carry previous kvs (without, nothing of the values is
   * copied). Deleting nothing writes nothing.
   */
  deleteRange(key: Uint8Array, rangeEnd: Uint8Array | undefined, withPrev?: boolean): KeyValue[];
  /**
   * Commits. The revision goes up by one if anything was written; a transaction that changed nothing
   * leaves it and returns no events.
   */
  end(): TxnEnd;
  /** Undoes everything the transaction wrote and closes it (for a failure half way through). */
  abort(): void;
}

const EMPTY: Uint8Array = new Uint8Array(0);
const EMPTY_INT32 = new Int32Array(0);
const KEY_BUCKET = new TextEncoder().encode("key");
/**
 * Chunk size of snapshot images written out (see {@link MvccStore.snapshotImage}). Whoever streams the
 * image holds the thread while a chunk is made: 1 MiB chunks, each reading its values back from the
 * history file one by one, held it for 35 ms each and stalled every client for the length of a background
 * snapshot; 64 KiB took about 2 ms then, and less since values are read in file order.
 */
const IMAGE_CHUNK = 64 * 1024;
/** Freed arena bytes that make a repack worth it (see {@link Core.repackIfSparse}). */
const REPACK_MIN_GARBAGE = 4 << 20;
/** Freed bytes allowed above the live ones: at least one slab, so a repack never follows a repack. */
const REPACK_SLACK = 1 << 20;
/** Rough per-entry cost of a revision in etcd's bbolt (revision key, protobuf header, page slot). */
const ENTRY_OVERHEAD = 40;
/**
 * Entries a compaction step drops or keeps. A step costs about that many value frees or entry moves (tens
 * of nanoseconds each), so a compaction of millions of revisions goes in steps of a few milliseconds;
 * marking what is superseded, and linking the entries above the revision, cost an eighth of that per entry,
 * and moving a value out of a sparse slab eight times it. The one step not bounded by it is the last move:
 * the entries above the compact revision shift down together, in plain copies.
 */
export const COMPACT_STEP_ENTRIES = 32_768;

/** A compaction whose entries are still being dropped (see {@link Core.compactStep}). */
interface Compaction {
  /** The compact revision. */
  rev: number;
  /** Entries [0, b) are at or below it (later entries are never dropped by it). */
  b: number;
  /** Per entry of [0, b): 1 superseded by a newer entry at or below `rev`, 2 dropped (value freed). */
  marks: Uint8Array;
  /** Entries [0, marked) have marked what they supersede. */
  marked: number;
  /** Entries [0, examined) are dropped or known to stay. */
  examined: number;
  /**
   * Per position of [0, b): the entry whose `prev` is the entry there (its key's next entry, above the
   * compact revision), or -1; filled from the entries [b, linked), appended ones included.
   */
  next: Int32Array;
  linked: number;
  /** Positions [0, moved) are done: the entries kept among them are at [0, kept), the rest is garbage. */
  moved: number;
  kept: number;
  /** Keys whose newest entry was a dropped tombstone: gone unless written since. */
  doomed: number[];
  /** The dropped entries are gone; what is left is emptying sparse slabs. */
  removed: boolean;
  /** Then: entries [0, relocated) have their values out of sparse slabs. */
  relocated: number;
}

/** Options of {@link MvccStore}. */
export interface MvccStoreOptions {
  /**
   * Path of a scratch file for the values of superseded revisions; absent: everything stays in memory.
   * The file is created (truncated if it exists) and unlinked at once: it is a cache of what the snapshot
   * and the WAL hold, its space is released by {@link MvccStore.close} or when the process exits, and
   * several stores may be given the same path.
   */
  historyFile?: string;
  /** Size of the history file's write buffer in bytes (default 256 KiB). */
  historyBufferBytes?: number;
  /** The file system of the history file (default: the real one). */
  fs?: FileSystem;
  /**
   * Smallest segment of the history file (default 16 MiB; see {@link HistoryFile}). A compaction gives
   * back the segments whose values it freed, whole; segments grow to a quarter of the file.
   */
  historySegmentBytes?: number;
  /** Entries a compaction step drops or keeps (default {@link COMPACT_STEP_ENTRIES}). */
  compactStepEntries?: number;
}

/** Chunk size for the bytes of handed-out kvs. */
const CHUNK_SIZE = 16 * 1024;
/** Requests above this get a buffer of their own. */
const CHUNK_DIRECT = 2048;

/**
 * Buffers for the bytes of handed-out kvs. Allocating a typed array costs about a microsecond in Deno,
 * so small requests are cut from shared chunks: a kv kept alive keeps at most its chunk alive.
 */
class ChunkAllocator {
  private buf: Uint8Array = EMPTY;
  private pos = 0;
  /** Offset of the last reservation in the buffer {@link reserve} returned. */
  at = 0;

  /** Reserves `n` bytes: returns the buffer to write them into, at offset {@link at}. */
  reserve(n: number): Uint8Array {
    if (n > CHUNK_DIRECT) {
      this.at = 0;
      return new Uint8Array(n);
    }
    if (this.pos + n > this.buf.length) {
      this.buf = new Uint8Array(CHUNK_SIZE);
      this.pos = 0;
    }
    this.at = this.pos;
    this.pos += n;
    return this.buf;
  }
}

/** All state and logic; {@link MvccStore} and the transaction are thin fronts over it. */
class Core {
  /** Where superseded values go; null keeps them in the arena. */
  history: HistoryFile | null;
  private readonly options: MvccStoreOptions;
  log = new RevisionLog();
  index = new KeyIndex();
  arena = new ValueArena();
  currentRev = 1;
  compactRev = 0;
  liveKeys = 0;
  /** Sum of key and value lengths over all log entries. */
  dataBytes = 0;
  txn: Txn | null = null;
  chunks = new ChunkAllocator();
  /**
   * The entry columns of the open snapshot views (see {@link view}), one per view: they share columns
   * with {@link log} until it compacts. While there is one, no value a view may read goes away.
   */
  private readonly frozenLogs = new Set<RevisionLog>();
  /** A history file trim put off while a view was open. */
  private trimPending = false;
  /** A close put off while a view was open. */
  private closePending = false;
  /**
   * The largest size ({@link MvccStore.approximateBytes}) reached since the store was built or last
   * defragmented: what etcd's bbolt file would still occupy, as compaction frees pages without giving
   * them back. Only compaction shrinks the size, so recording it just before each one is enough.
   */
  peakBytes = 0;
  /** A defragmentation asked for the history file to be rewritten whatever its garbage ratio. */
  private forceTrim = false;
  /**
   * A compaction whose entries are not all dropped yet. Entries stay where they are until its last step:
   * the dropped ones, below the compact revision and superseded (or tombstones), are never reached by a
   * read at or above it, so those cannot tell. What reads entries at or below it (a hash, an image, a
   * view, history from the compact revision) finishes the compaction first.
   */
  compaction: Compaction | null = null;

  constructor(options: MvccStoreOptions) {
    this.options = options;
    this.history = options.historyFile === undefined ? null : new HistoryFile(
      options.historyFile,
      options.historyBufferBytes,
      options.fs,
      options.historySegmentBytes,
    );
  }

  /** Copies the value of entry `e` (length > 0) into `dst` at `dstOff`, from the arena or the file. */
  copyValue(e: number, dst: Uint8Array, dstOff: number): void {
    const log = this.log;
    const slab = log.slab[e];
    if (slab >= 0) this.arena.copyOut(slab, log.off[e], log.len[e], dst, dstOff);
    else this.history!.read(filePos(slab, log.off[e]), log.len[e], dst, dstOff);
  }

  /** Releases the value bytes at (`slab`, `off`, `len`), wherever they are. */
  freeValue(slab: number, off: number, len: number): void {
    if (slab >= 0) this.arena.free(slab, len);
    else if (slab <= -2) this.history!.free(filePos(slab, off), len);
  }

  /** Moves the value of entry `e`, just superseded, to the history file (if there is one). */
  demote(e: number): void {
    const history = this.history;
    const log = this.log;
    const slab = log.slab[e];
    if (history === null || slab < 0) return;
    const len = log.len[e];
    const pos = history.append(this.arena.slabs[slab]!, log.off[e], len);
    this.arena.free(slab, len);
    log.slab[e] = fileSlab(pos);
    log.off[e] = pos % FILE_SPAN;
  }

  /** Moves the value of entry `e` back from the history file into the arena. */
  promote(e: number): void {
    const log = this.log;
    const slab = log.slab[e];
    if (slab > -2) return;
    const len = log.len[e];
    const value = new Uint8Array(len);
    const pos = filePos(slab, log.off[e]);
    this.history!.read(pos, len, value, 0);
    this.history!.free(pos, len);
    log.slab[e] = this.arena.alloc(value);
    log.off[e] = this.arena.lastOffset;
  }

  /**
   * After a compaction: gives back the history file's segments whose values are all freed (everything,
   * when none is live). A defragmentation also rewrites the file with only its live values.
   */
  private trimHistory(): void {
    const history = this.history;
    if (history === null || history.garbageBytes === 0) return;
    if (this.frozenLogs.size > 0) {
      // an open view may read any position of these files: closing or replacing them waits for the view
      this.trimPending = true;
      return;
    }
    const force = this.forceTrim;
    this.forceTrim = false;
    history.releaseFreed();
    if (!force || history.garbageBytes === 0) return;
    const fresh = new HistoryFile(history.path, history.bufferBytes, history.fs, history.segmentBytes);
    const log = this.log;
    // copy first, repoint the entries only once every value made it: an I/O error changes nothing. The
    // values are copied in the order they lie in the old file, which is then read forward, and which
    // keeps them in the order they were superseded in (so later compactions free whole segments).
    const moved = new Float64Array(log.length);
    try {
      let tmp = new Uint8Array(4096);
      for (const e of inFileOrder(log)) {
        const len = log.len[e];
        if (len > tmp.length) tmp = new Uint8Array(len * 2);
        history.read(filePos(log.slab[e], log.off[e]), len, tmp, 0);
        moved[e] = fresh.append(tmp, 0, len);
      }
    } catch (err) {
      fresh.close();
      throw err;
    }
    for (let e = 0; e < log.length; e++) {
      if (!inHistoryFile(log, e)) continue;
      log.slab[e] = fileSlab(moved[e]);
      log.off[e] = moved[e] % FILE_SPAN;
    }
    history.close();
    this.history = fresh;
  }

  /** The entry of key `id` visible at `rev`, or -1 if the key is absent or deleted there. */
  resolve(id: number, rev: number): number {
    const log = this.log;
    let e = this.index.heads[id];
    if (e >= 0 && log.main[e] > rev) {
      const main = log.main;
      const prev = log.prev;
      do e = prev[e]; while (e >= 0 && main[e] > rev);
    }
    return e >= 0 && log.create[e] !== 0 ? e : -1;
  }

  /**
   * Visits the ids of indexed keys in the etcd range `key`/`rangeEnd`, in key order, until `visit`
   * returns false.
   */
  scanIds(
    key: Uint8Array,
    rangeEnd: Uint8Array | undefined,
    visit: (id: number) => boolean | void,
    descending = false,
  ): void {
    const start = latin1(key);
    if (rangeEnd === undefined || rangeEnd.length === 0) {
      const id = this.index.lookup(start);
      if (id >= 0) visit(id);
      return;
    }
    const end = isFromKey(rangeEnd) ? undefined : latin1(rangeEnd);
    if (descending) this.index.sorted.scanDescending(start, end, visit);
    else this.index.sorted.scan(start, end, visit);
  }

  kvBytes(e: number, withValue: boolean): number {
    return this.index.key(this.log.key[e]).length + (withValue ? this.log.len[e] : 0);
  }

  /** Builds the KeyValue of entry `e` with its bytes copied into `buf` at `pos`. */
  writeKv(e: number, buf: Uint8Array, pos: number, withValue: boolean): KeyValue {
    const log = this.log;
    const k = this.index.key(log.key[e]);
    const kl = k.length;
    for (let i = 0; i < kl; i++) buf[pos + i] = k.charCodeAt(i);
    const key = buf.subarray(pos, pos + kl);
    let value = EMPTY;
    const vl = log.len[e];
    if (withValue && vl > 0) {
      const vpos = pos + kl;
      this.copyValue(e, buf, vpos);
      value = buf.subarray(vpos, vpos + vl);
    }
    const lease = log.leaseAt(e);
    return {
      key,
      createRevision: log.create[e],
      modRevision: log.main[e],
      version: log.version[e],
      value,
      lease,
    };
  }

  /** KeyValues of entries, all copied into one fresh buffer. */
  materialize(entries: readonly number[], withValue: boolean): KeyValue[] {
    let total = 0;
    for (let i = 0; i < entries.length; i++) total += this.kvBytes(entries[i], withValue);
    const buf = this.chunks.reserve(total);
    let pos = this.chunks.at;
    const out: KeyValue[] = new Array(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      out[i] = this.writeKv(e, buf, pos, withValue);
      pos += this.kvBytes(e, withValue);
    }
    return out;
  }

  /** A range read where `maxRev` is the newest readable revision (the default read revision). */
  rangeAt(
    key: Uint8Array,
    rangeEnd: Uint8Array | undefined,
    o: RangeOptions | undefined,
    maxRev: number,
  ): RangeResult {
    let rev = o?.revision ?? 0;
    if (rev > maxRev) throw new ErrFutureRev();
    if (rev <= 0) rev = maxRev;
    if (rev < this.compactRev) throw new ErrCompacted();
    const limit = o?.limit !== undefined && o.limit > 0 ? o.limit : 0;
    const countOnly = o?.countOnly === true;
    const withValue = o?.keysOnly !== true;
    const entries: number[] = [];
    let count = 0;
    const sortBy = countOnly ? undefined : o?.sortBy;
    const stopAtLimit = limit > 0 && o?.noCount === true && sortBy === undefined;
    this.scanIds(key, rangeEnd, (id) => {
      const e = this.resolve(id, rev);
      if (e < 0) return;
      count++;
      if (!countOnly && (limit === 0 || entries.length < limit || sortBy !== undefined)) entries.push(e);
      if (stopAtLimit && count === limit) return false;
    }, o?.descending === true);
    if (sortBy !== undefined) {
      const log = this.log;
      const column = sortBy.target === "create"
        ? log.create
        : sortBy.target === "mod"
        ? log.main
        : log.version;
      // Array.prototype.sort is stable: equals keep the scan's key order
      entries.sort(sortBy.descending ? (a, b) => column[b] - column[a] : (a, b) => column[a] - column[b]);
      if (limit > 0 && entries.length > limit) entries.length = limit;
    }
    return { kvs: countOnly ? [] : this.materialize(entries, withValue), count, revision: rev };
  }

  /** Etcd's compaction at `rev` (see {@link MvccStore.compact}): the first step of it. */
  compact(rev: number): void {
    if (this.txn !== null) throw new ErrTxnState("compact during a write transaction");
    if (rev <= this.compactRev) throw new ErrCompacted();
    if (rev > this.currentRev) throw new ErrFutureRev();
    this.finishCompaction();
    this.peakBytes = Math.max(this.peakBytes, this.dataBytes + this.log.length * ENTRY_OVERHEAD);
    this.compactRev = rev;
    const b = this.log.lowerBound(rev + 1);
    if (b === 0) return;
    this.compaction = {
      rev,
      b,
      marks: new Uint8Array(b),
      marked: 0,
      examined: 0,
      next: EMPTY_INT32,
      linked: b,
      moved: 0,
      kept: 0,
      doomed: [],
      removed: false,
      relocated: 0,
    };
    this.compactStep();
  }

  /** See {@link MvccStore.compactStep}. */
  compactStep(): boolean {
    const c = this.compaction;
    if (c === null) return false;
    if (this.txn !== null) throw new ErrTxnState("compact during a write transaction");
    const log = this.log;
    let budget = this.options.compactStepEntries ?? COMPACT_STEP_ENTRIES;
    if (c.marked < c.b) {
      const end = Math.min(c.b, c.marked + budget * 8);
      const prev = log.prev;
      const marks = c.marks;
      for (let e = c.marked; e < end; e++) {
        const p = prev[e];
        if (p >= 0) marks[p] = 1;
      }
      budget -= Math.ceil((end - c.marked) / 8);
      c.marked = end;
      if (end < c.b) return true;
    }
    if (c.examined < c.b) {
      if (budget <= 0) return true;
      const end = Math.min(c.b, c.examined + budget);
      this.dropEntries(c, end);
      budget -= end - c.examined;
      c.examined = end;
      this.trimHistory();
      if (end < c.b || budget <= 0) return true;
    }
    if (!c.removed) {
      if (budget <= 0) return true;
      budget -= this.removeDropped(c, budget);
      if (!c.removed || budget <= 0) return true;
    }
    // empty the slabs the dropped values left mostly free (each step asks the arena afresh which); a move
    // copies a value, so it counts as eight entries of the budget
    if (c.relocated < log.length) {
      if (budget <= 0) return true;
      c.relocated = this.relocateValues(c.relocated, Math.ceil(budget / 8));
      if (c.relocated < log.length) return true;
    }
    this.compaction = null;
    // give back column space the compaction freed (the columns are half the store's fixed cost)
    if (log.capacity > 4096 && log.capacity > log.length * 1.5) log.resize(Math.ceil(log.length * 1.25));
    return false;
  }

  /** Runs what is left of a compaction under way. */
  finishCompaction(): void {
    while (this.compactStep());
  }

  /**
   * Drops entries [c.examined, end) that the compaction drops (for each key, all but the newest entry at
   * or below its revision, and that one too if it is a tombstone): frees their values, marks them. They
   * stay in the log, unread, until {@link removeDropped}.
   */
  private dropEntries(c: Compaction, end: number): void {
    const log = this.log;
    const index = this.index;
    // this loop runs cold (compactions are rare), so the columns are read through locals, not the log
    const marks = c.marks;
    const create = log.create;
    const keys = log.key;
    const slabs = log.slab;
    const lens = log.len;
    let freed = 0;
    for (let e = c.examined; e < end; e++) {
      // the key's newest entry at or below the revision stays, unless a tombstone
      if (marks[e] === 0 && create[e] !== 0) continue;
      marks[e] = 2;
      const len = lens[e];
      if (slabs[e] !== -1) this.freeValue(slabs[e], log.off[e], len);
      freed += index.key(keys[e]).length + len;
    }
    this.dataBytes -= freed;
  }

  /**
   * Removes the dropped entries, within `budget`; returns the budget used. The kept entries move down over
   * the dropped ones a step at a time; whatever points at a moved entry (its key's head, or the `prev` of
   * its key's next entry, found through {@link Compaction.next}) follows it, and a dropped tombstone's
   * pointers become -1. Between steps the positions of [kept, moved) hold garbage no pointer reaches.
   * Last, the entries above the compact revision move down by one shift.
   */
  private removeDropped(c: Compaction, budget: number): number {
    const log = this.log;
    const index = this.index;
    const heads = index.heads;
    const prev = log.prev;
    const keys = log.key;
    const b = c.b;
    let used = 0;
    if (c.next.length === 0) {
      // entries move in place from here on: open views stop sharing the columns
      for (const frozen of this.frozenLogs) frozen.own();
      c.next = new Int32Array(b).fill(-1);
    }
    // link the entries appended since the last step (their prev may be a position below b)
    const next = c.next;
    const n = log.length;
    if (c.linked < n) {
      const end = Math.min(n, c.linked + budget * 8);
      for (let e = c.linked; e < end; e++) {
        const p = prev[e];
        if (p >= 0 && p < b) next[p] = e;
      }
      used += Math.ceil((end - c.linked) / 8);
      c.linked = end;
      if (end < n) return used;
    }
    const marks = c.marks;
    const end = Math.min(b, c.moved + Math.max(0, budget - used));
    let w = c.kept;
    for (let e = c.moved; e < end; e++) {
      const id = keys[e];
      const after = next[e];
      if (marks[e] === 2) {
        // a dropped tombstone still its key's newest entry: nothing of the key remains, unless written later
        if (heads[id] === e) {
          heads[id] = -1;
          c.doomed.push(id);
        }
        if (after >= 0) prev[after] = -1;
        continue;
      }
      if (w !== e) {
        log.move(e, w);
        next[w] = after;
        if (heads[id] === e) heads[id] = w;
        if (after >= 0) prev[after] = w;
      }
      prev[w] = -1; // whatever it superseded is dropped: its chain ends here
      w++;
    }
    used += end - c.moved;
    c.moved = end;
    c.kept = w;
    if (end < b) return used;
    // the entries above the revision, appended ones included, move down over the garbage
    const shift = b - w;
    if (shift > 0) {
      const len = log.length;
      log.shiftDown(b, w);
      for (let e = b; e < len; e++) {
        const p = prev[e];
        prev[e - shift] = p >= b ? p - shift : p;
      }
      log.length = len - shift;
      const limit = index.idLimit;
      for (let id = 0; id < limit; id++) {
        const h = heads[id];
        if (h >= b) heads[id] = h - shift;
      }
    }
    this.dropKeys(c.doomed.filter((id) => heads[id] === -1));
    c.removed = true;
    c.marks = EMPTY;
    c.next = EMPTY_INT32;
    this.trimHistory();
    return used + Math.ceil((log.length - w) / 8);
  }

  /** See {@link MvccStore.defragment}. */
  defragment(): void {
    if (this.txn !== null) throw new ErrTxnState("defragment during a write transaction");
    this.finishCompaction();
    this.peakBytes = 0;
    this.forceTrim = true;
    this.trimHistory();
    this.relocateValues();
    const log = this.log;
    if (log.capacity > 1024 && log.capacity > log.length * 1.25) log.resize(Math.ceil(log.length * 1.25));
  }

  private dropKeys(ids: number[]): void {
    const index = this.index;
    if (ids.length > 256 && ids.length * 8 > index.size) {
      const gone = new Uint8Array(index.idLimit);
      for (const id of ids) {
        gone[id] = 1;
        index.remove(id, true);
      }
      index.sorted.filter((id) => gone[id] === 0);
    } else {
      for (const id of ids) index.remove(id);
    }
  }

  /**
   * With a history file, only the newest value of each key lives in the arena, and each overwrite frees
   * one value somewhere in an old slab. Once the freed bytes outweigh the live ones (and a few MiB), the
   * newest values still sitting in mostly-empty slabs move out, so those slabs go; with the key space
   * steady the arena stays within about twice its live bytes instead of growing with every write.
   */
  repackIfSparse(): void {
    const arena = this.arena;
    const garbage = arena.allocatedBytes - arena.liveBytes;
    if (this.history === null || garbage < REPACK_MIN_GARBAGE || garbage < arena.liveBytes + REPACK_SLACK) {
      return;
    }
    const marks = arena.sparseSlabs();
    if (marks === undefined) return;
    const log = this.log;
    const heads = this.index.heads;
    for (let id = 0; id < this.index.idLimit; id++) {
      const e = heads[id];
      if (e < 0) continue;
      const s = log.slab[e];
      if (s >= 0 && marks[s] === 1) {
        log.slab[e] = arena.move(s, log.off[e], log.len[e]);
        log.off[e] = arena.lastOffset;
      }
    }
  }

  /**
   * Empties slabs that compaction left mostly free: moves out the values that lie in one, of the entries
   * from `from` on (all by default), until `moves` values moved. Returns the entry it stopped before.
   */
  private relocateValues(from = 0, moves = Infinity): number {
    const log = this.log;
    const marks = this.arena.sparseSlabs();
    if (marks === undefined) return log.length;
    const slab = log.slab;
    let e = from;
    for (; e < log.length && moves > 0; e++) {
      const s = slab[e];
      if (s >= 0 && marks[s] === 1) {
        slab[e] = this.arena.move(s, log.off[e], log.len[e]);
        log.off[e] = this.arena.lastOffset;
        moves--;
      }
    }
    return e;
  }

  eventsBetween(
    key: Uint8Array,
    rangeEnd: Uint8Array | undefined,
    from: number,
    to: number,
    limit: number,
    withPrevKv: boolean,
  ): MvccEvent[] {
    if (from < this.compactRev) throw new ErrCompacted();
    if (to > this.currentRev) to = this.currentRev;
    if (from > to) return [];
    // from the compact revision itself: its deletions are gone once the compaction is done
    if (this.compaction !== null && from <= this.compaction.rev) this.finishCompaction();
    const log = this.log;
    const index = this.index;
    const mainCol = log.main;
    const keyCol = log.key;
    const start = latin1(key);
    let single = -2; // key id when watching a single key
    let end: string | undefined;
    if (rangeEnd === undefined || rangeEnd.length === 0) {
      single = index.lookup(start);
      if (single < 0) return [];
    } else if (!isFromKey(rangeEnd)) {
      end = latin1(rangeEnd);
    }
    const picked: number[] = [];
    let lastMain = -1;
    for (let e = log.lowerBound(from); e < log.length; e++) {
      const m = mainCol[e];
      if (m > to) break;
      if (limit > 0 && picked.length >= limit && m !== lastMain) break;
      if (single >= 0) {
        if (keyCol[e] !== single) continue;
      } else {
        const k = index.key(keyCol[e]);
        if (k < start || (end !== undefined && k >= end)) continue;
      }
      picked.push(e);
      lastMain = m;
    }
    return this.events(picked, withPrevKv);
  }

  /** Events of log entries (kvs copied into one buffer); tombstones become delete events. */
  events(entries: readonly number[], withPrevKv: boolean): MvccEvent[] {
    const log = this.log;
    let total = 0;
    for (const e of entries) {
      const tomb = log.create[e] === 0;
      total += this.kvBytes(e, !tomb);
      const p = log.prev[e];
      if (withPrevKv && p >= 0 && log.create[p] !== 0) total += this.kvBytes(p, true);
    }
    const buf = this.chunks.reserve(total);
    let pos = this.chunks.at;
    const out: MvccEvent[] = new Array(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      const tomb = log.create[e] === 0;
      const kv = this.writeKv(e, buf, pos, !tomb);
      pos += this.kvBytes(e, !tomb);
      let prevKv: KeyValue | undefined;
      const p = log.prev[e];
      if (withPrevKv && p >= 0 && log.create[p] !== 0) {
        prevKv = this.writeKv(p, buf, pos, true);
        pos += this.kvBytes(p, true);
      }
      out[i] = tomb
        ? (prevKv ? { type: "delete", kv, prevKv } : { type: "delete", kv })
        : (prevKv ? { type: "put", kv, prevKv } : { type: "put", kv });
    }
    return out;
  }

  hashKV(rev: number): HashKVResult {
    if (this.txn !== null) throw new ErrTxnState("hash during a write transaction");
    this.finishCompaction();
    const compactRev = this.compactRev;
    if (rev > 0 && rev <= compactRev) throw new ErrCompacted();
    if (rev > this.currentRev) throw new ErrFutureRev();
    if (rev <= 0) rev = this.currentRev;
    const log = this.log;
    const upto = log.lowerBound(rev + 1);
    const lower = log.lowerBound(compactRev + 1);
    // Entries at or below the compact revision count only if compaction at `rev` would keep them
    // (etcd's `keep` set), unless that set is empty: the same rule etcd's HashByRev applies.
    const superseded = new Uint8Array(upto);
    for (let e = 0; e < upto; e++) {
      const p = log.prev[e];
      if (p >= 0) superseded[p] = 1;
    }
    let keepEmpty = true;
    for (let e = 0; e < upto; e++) {
      if (superseded[e] === 0 && log.create[e] !== 0) {
        keepEmpty = false;
        break;
      }
    }
    let crc = crc32c(0, KEY_BUCKET);
    let buf = new Uint8Array(4096);
    let view = new DataView(buf.buffer);
    for (let e = 0; e < upto; e++) {
      const tomb = log.create[e] === 0;
      if (e < lower && !keepEmpty && (superseded[e] === 1 || tomb)) continue;
      const k = this.index.key(log.key[e]);
      const vl = log.len[e];
      const need = 18 + 11 + k.length + 4 * 11 + vl + 11;
      if (need > buf.length) {
        buf = new Uint8Array(need * 2);
        view = new DataView(buf.buffer);
      }
      // etcd's backend key: main (8 bytes BE), '_', sub (8 bytes BE), 't' for a tombstone
      view.setUint32(0, Math.floor(log.main[e] / 0x100000000));
      view.setUint32(4, log.main[e] >>> 0);
      buf[8] = 0x5f;
      view.setUint32(9, 0);
      view.setUint32(13, log.sub[e]);
      let p = 17;
      if (tomb) buf[p++] = 0x74;
      // etcd's backend value: the KeyValue in protobuf encoding (fields in order, zero values omitted);
      // a tombstone holds the key only
      if (k.length > 0) {
        buf[p++] = 0x0a;
        p = putVarint(buf, p, k.length);
        for (let i = 0; i < k.length; i++) buf[p++] = k.charCodeAt(i);
      }
      if (!tomb) {
        buf[p++] = 0x10;
        p = putVarint(buf, p, log.create[e]);
        buf[p++] = 0x18;
        p = putVarint(buf, p, log.main[e]);
        buf[p++] = 0x20;
        p = putVarint(buf, p, log.version[e]);
        if (vl > 0) {
          buf[p++] = 0x2a;
          p = putVarint(buf, p, vl);
          this.copyValue(e, buf, p);
          p += vl;
        }
        const lease = log.leaseAt(e);
        if (lease !== 0n) {
          buf[p++] = 0x30;
          let u = BigInt.asUintN(64, lease);
          while (u >= 128n) {
            buf[p++] = Number(u & 127n) | 128;
            u >>= 7n;
          }
          buf[p++] = Number(u);
        }
      }
      crc = crc32c(crc, buf, 0, p);
    }
    return { hash: crc, compactRevision: compactRev === 0 ? -1 : compactRev, revision: this.currentRev };
  }

  /** See {@link MvccStore.snapshotImage}. */
  image(chunkSize: number): ByteStream {
    if (this.txn !== null) throw new ErrTxnState("snapshot during a write transaction");
    this.finishCompaction();
    const src = imageSource(
      this.index,
      this.log,
      this.currentRev,
      this.compactRev,
      (e, dst, off) => this.copyValue(e, dst, off),
    );
    return { size: src.size, chunks: () => imageChunks(src, chunkSize) };
  }

  /** See {@link MvccStore.snapshotView}. */
  view(chunkSize: number): MvccSnapshotView {
    if (this.txn !== null) throw new ErrTxnState("snapshot during a write transaction");
    if (this.closePending) throw new ErrTxnState("snapshot of a closed store");
    this.finishCompaction();
    // Entries are copied (compaction moves them in place, a demotion repoints their values); value bytes
    // are not: arena slabs are reached through a copy of the slab table and never overwritten while
    // pinned, history file positions stay valid because trims wait for the view.
    const log = this.log.frozenCopy();
    const slabs = this.arena.slabs.slice();
    const history = this.history;
    const copyValue = (e: number, dst: Uint8Array, dstOff: number): void => {
      const slab = log.slab[e];
      const len = log.len[e];
      if (slab >= 0) dst.set(slabs[slab]!.subarray(log.off[e], log.off[e] + len), dstOff);
      else history!.read(filePos(slab, log.off[e]), len, dst, dstOff);
    };
    const src = imageSource(this.index, log, this.currentRev, this.compactRev, copyValue);
    this.frozenLogs.add(log);
    this.arena.pin();
    let open = true;
    return {
      image: {
        size: src.size,
        chunks: () => {
          if (!open) throw new ErrTxnState("snapshot view read after release");
          return imageChunks(src, chunkSize);
        },
      },
      release: () => {
        if (!open) return;
        open = false;
        this.frozenLogs.delete(log);
        this.arena.unpin();
        if (this.frozenLogs.size > 0) return;
        if (this.closePending) {
          this.history?.close();
          return;
        }
        if (this.trimPending) {
          this.trimPending = false;
          this.trimHistory();
        }
      },
    };
  }

  /** Releases the history file, or marks it to be released once the last open view is. */
  close(): void {
    if (this.frozenLogs.size > 0) this.closePending = true;
    else this.history?.close();
  }

  /** See {@link MvccStore.decodeSnapshot}. */
  static decode(data: Uint8Array, options: MvccStoreOptions): Core {
    const core = new Core(options);
    try {
      loadImage(core, data);
    } catch (err) {
      core.history?.close();
      throw err;
    }
    return core;
  }
}

function putVarint(buf: Uint8Array, pos: number, v: number): number {
  while (v >= 128) {
    buf[pos++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}

/** The one open write transaction of a store. */
class Txn implements WriteTxn {
  private readonly rev: number;
  private readonly start: number;
  private sub = 0;
  private readonly events: MvccEvent[] = [];
  private readonly newKeys: number[] = [];
  private liveDelta = 0;
  private dataDelta = 0;
  private closed = false;

  constructor(
    private readonly core: Core,
    private readonly recordEvents: boolean,
    private readonly recordPrev: boolean,
  ) {
    this.rev = core.currentRev + 1;
    this.start = core.log.length;
  }

  private check(): void {
    if (this.closed) throw new ErrTxnState("transaction already ended");
  }

  range(key: Uint8Array, rangeEnd: Uint8Array | undefined, options?: RangeOptions): RangeResult {
    this.check();
    const readRev = this.core.log.length > this.start ? this.rev : this.rev - 1;
    return this.core.rangeAt(key, rangeEnd, options, readRev);
  }

  leaseOf(key: Uint8Array): bigint | undefined {
    this.check();
    const core = this.core;
    const id = core.index.lookup(latin1(key));
    const h = id < 0 ? -1 : core.index.heads[id];
    return h < 0 || core.log.create[h] === 0 ? undefined : core.log.leaseAt(h);
  }

  put(key: Uint8Array, value: Uint8Array, lease: bigint, withPrev = true): KeyValue | undefined {
    this.check();
    const core = this.core;
    const log = core.log;
    const index = core.index;
    const k = latin1(key);
    let id = index.lookup(k);
    let prevE = -1;
    let create = this.rev;
    let ver = 1;
    if (id < 0) {
      id = index.insert(k);
      this.newKeys.push(id);
    } else {
      prevE = index.heads[id];
      if (prevE >= 0 && log.create[prevE] !== 0) {
        create = log.create[prevE];
        ver = log.version[prevE] + 1;
      } else {
        prevE = -1; // absent or deleted: a new generation
      }
    }
    if (prevE < 0) this.liveDelta++;
    const slab = core.arena.alloc(value);
    const e = log.append(
      this.rev,
      this.sub++,
      id,
      index.heads[id],
      create,
      ver,
      lease,
      slab,
      core.arena.lastOffset,
      value.length,
    );
    index.heads[id] = e;
    this.dataDelta += k.length + value.length;
    if (!this.recordEvents) {
      let prevKv: KeyValue | undefined;
      if (prevE >= 0) {
        if (withPrev) {
          const buf = core.chunks.reserve(core.kvBytes(prevE, true));
          prevKv = core.writeKv(prevE, buf, core.chunks.at, true);
        }
        core.demote(prevE);
      }
      return prevKv;
    }
    // the event's kv and the previous kv, copied out together
    const size = k.length + value.length;
    const copyPrev = prevE >= 0 && (withPrev || this.recordPrev);
    const prevSize = copyPrev ? core.kvBytes(prevE, true) : 0;
    const buf = core.chunks.reserve(size + prevSize);
    const at = core.chunks.at;
    const kv = core.writeKv(e, buf, at, true);
    if (!copyPrev) {
      if (prevE >= 0) core.demote(prevE);
      this.events.push({ type: "put", kv });
      return undefined;
    }
    const prevKv = core.writeKv(prevE, buf, at + size, true);
    core.demote(prevE);
    this.events.push({ type: "put", kv, prevKv });
    return prevKv;
  }

  deleteRange(key: Uint8Array, rangeEnd: Uint8Array | undefined, withPrev = true): KeyValue[] {
    this.check();
    const core = this.core;
    const log = core.log;
    const index = core.index;
    const heads = index.heads;
    const doomed: number[] = [];
    const withValues = withPrev || (this.recordEvents && this.recordPrev);
    let total = 0;
    core.scanIds(key, rangeEnd, (id) => {
      const h = heads[id];
      if (h >= 0 && log.create[h] !== 0) {
        doomed.push(h);
        total += 2 * index.key(id).length + (withValues ? log.len[h] : 0);
      }
    });
    if (doomed.length === 0) return [];
    const buf = core.chunks.reserve(total);
    let pos = core.chunks.at;
    const deleted: KeyValue[] = new Array(doomed.length);
    for (let i = 0; i < doomed.length; i++) {
      const h = doomed[i];
      const id = log.key[h];
      const prevKv = core.writeKv(h, buf, pos, withValues);
      pos += core.kvBytes(h, withValues);
      core.demote(h);
      const e = log.append(this.rev, this.sub++, id, h, 0, 0, 0n, -1, 0, 0);
      heads[id] = e;
      this.dataDelta += index.key(id).length;
      deleted[i] = prevKv;
      if (this.recordEvents) {
        const kv = core.writeKv(e, buf, pos, false);
        pos += kv.key.length;
        this.events.push(this.recordPrev ? { type: "delete", kv, prevKv } : { type: "delete", kv });
      }
    }
    this.liveDelta -= doomed.length;
    return deleted;
  }

  end(): TxnEnd {
    this.check();
    this.closed = true;
    const core = this.core;
    core.txn = null;
    if (core.log.length === this.start) return { revision: core.currentRev, events: [] };
    core.currentRev = this.rev;
    core.liveKeys += this.liveDelta;
    core.dataBytes += this.dataDelta;
    core.repackIfSparse();
    return { revision: this.rev, events: this.events };
  }

  abort(): void {
    this.check();
    this.closed = true;
    const core = this.core;
    core.txn = null;
    const log = core.log;
    const heads = core.index.heads;
    for (let e = log.length - 1; e >= this.start; e--) {
      heads[log.key[e]] = log.prev[e];
      core.freeValue(log.slab[e], log.off[e], log.len[e]);
    }
    // entries that are newest again get their values back in memory
    for (let e = this.start; e < log.length; e++) {
      const h = heads[log.key[e]];
      if (h >= 0) core.promote(h);
    }
    log.length = this.start;
    for (const id of this.newKeys) core.index.remove(id);
  }
}

/**
 * The MVCC key space. One write transaction at a time (the apply loop is the only writer); reads may
 * happen any time and see committed state only.
 */
export class MvccStore {
  private core: Core;

  /**
   * An empty store at revision 1. With `options.historyFile`, values of superseded revisions live in
   * that file instead of memory; call {@link close} when done with the store.
   */
  constructor(options: MvccStoreOptions = {}) {
    this.core = new Core(options);
  }

  /**
   * Releases the history file, if any; while a {@link snapshotView} is open, once the last one is
   * released. The store must not be used afterwards.
   */
  close(): void {
    this.core.close();
  }

  /** Revision of the last committed change; 1 for an empty store. */
  get currentRevision(): number {
    return this.core.currentRev;
  }

  /** Revision of the last compaction; 0 before the first. */
  get compactRevision(): number {
    return this.core.compactRev;
  }

  /**
   * Reads a key range. `rangeEnd` undefined or empty: the single key; `[0x00]`: every key >= `key`;
   * otherwise `[key, rangeEnd)`. Throws {@link ErrFutureRev} above the current revision and
   * {@link ErrCompacted} below the compact revision (reading at it works).
   */
  range(key: Uint8Array, rangeEnd: Uint8Array | undefined, options?: RangeOptions): RangeResult {
    return this.core.rangeAt(key, rangeEnd, options, this.core.currentRev);
  }

  /** Opens the write transaction; throws {@link ErrTxnState} if one is already open. */
  write(options: WriteOptions = {}): WriteTxn {
    if (this.core.txn !== null) throw new ErrTxnState("a write transaction is already open");
    const txn = new Txn(this.core, options.events ?? true, options.prevKvs ?? true);
    this.core.txn = txn;
    return txn;
  }

  /**
   * Compacts history at `revision`: for every key, keeps the newest entry at or below it unless that is
   * a tombstone, and everything newer. Throws {@link ErrCompacted} if `revision` <= the compact revision,
   * {@link ErrFutureRev} if it is above the current revision.
   */
  compact(revision: number): void {
    this.core.compact(revision);
  }

  /**
   * Whether a compaction's entries are still being dropped. A compaction takes effect at once (reads
   * below its revision fail), but one over more than about {@link COMPACT_STEP_ENTRIES} entries drops
   * them in steps, so that a member can serve other requests between them: call {@link compactStep} until
   * this is false. A hash, a snapshot image or view, a defragmentation, a later compaction, and history read
   * from the compact revision finish it first, so nothing but the store's size can tell the steps apart.
   */
  get compacting(): boolean {
    return this.core.compaction !== null;
  }

  /**
   * The next step of the compaction under way (see {@link compacting}); whether steps remain. Throws
   * {@link ErrTxnState} while a write transaction is open.
   */
  compactStep(): boolean {
    return this.core.compactStep();
  }

  /**
   * History for watchers: the changes with main revision in [`fromRevision`, `toRevision`] (capped at
   * the current revision) to keys in the range, in revision order, each with its `prevKv` when that is
   * still retained (unless `withPrevKv` is false). With a `limit`, stops after that many events but
   * always finishes the last revision, so a caller can resume at its revision + 1.
   *
   * Throws {@link ErrCompacted} if `fromRevision` < the compact revision. As in etcd, starting exactly at
   * the compact revision is allowed and yields the puts retained there (its deletions are gone).
   */
  eventsBetween(
    key: Uint8Array,
    rangeEnd: Uint8Array | undefined,
    fromRevision: number,
    toRevision: number,
    limit = 0,
    withPrevKv = true,
  ): MvccEvent[] {
    return this.core.eventsBetween(key, rangeEnd, fromRevision, toRevision, limit, withPrevKv);
  }

  /**
   * Calls `visit` for every live key that has a lease, with the key as a latin1 string (one char per
   * byte, the form `storage/lease.ts` uses) and the lease id. Copies nothing: for rebuilding lease
   * attachments after a snapshot restore.
   */
  forEachLeasedKey(visit: (key: string, lease: bigint) => void): void {
    const { index, log } = this.core;
    const heads = index.heads;
    index.sorted.scan("", undefined, (id, key) => {
      const e = heads[id];
      if (e >= 0 && log.create[e] !== 0 && log.leaseAt(e) !== 0n) visit(key, log.leaseAt(e));
    });
  }

  /** Number of live (not deleted) keys. */
  keyCount(): number {
    return this.core.liveKeys;
  }

  /**
   * Rough size of the stored data, live and historical: key and value bytes of every retained revision
   * plus a per-revision overhead modelled on etcd's bbolt. It shrinks after compaction (etcd's file does
   * not until a defragmentation).
   */
  approximateBytes(): number {
    return this.core.dataBytes + this.core.log.length * ENTRY_OVERHEAD;
  }

  /**
   * The size etcd would report as its database file (Status `dbSize`, what the quota counts): the
   * largest {@link approximateBytes} since the store was built (from scratch or from a snapshot) or
   * last {@link defragment}ed. Compaction alone does not lower it, as it does not shrink bbolt's file.
   */
  footprintBytes(): number {
    return Math.max(this.core.peakBytes, this.approximateBytes());
  }

  /**
   * Etcd's defragmentation, for this store: the reported footprint drops to the size in use, the history
   * file is rewritten with only its live values (once no snapshot view is open, as a view may read any
   * of its positions), mostly-empty value slabs are emptied and the entry columns shrunk to fit.
   * Throws {@link ErrTxnState} while a write transaction is open.
   */
  defragment(): void {
    this.core.defragment();
  }

  /**
   * Bytes of memory the store holds (columns, value slabs, key strings, history file buffers; not the
   * values in the history file): for metrics and tests, not an exact heap measurement.
   */
  memoryBytes(): number {
    const c = this.core;
    return c.log.columnBytes + c.arena.allocatedBytes + c.index.keyBytes + c.index.size * 48 +
      (c.history?.memoryBytes ?? 0);
  }

  /** Bytes of live values in the history file (0 without one). */
  historyBytes(): number {
    return this.core.history?.liveBytes ?? 0;
  }

  /**
   * Etcd's HashKV: CRC-32C over the revisions up to `revision` (0: current) in etcd's backend encoding,
   * so members with the same history agree, and agree with etcd 3.4 itself. Throws {@link ErrCompacted}
   * if `revision` is at or below the compact revision and {@link ErrFutureRev} above the current one.
   */
  hashKV(revision: number): HashKVResult {
    return this.core.hashKV(revision);
  }

  /**
   * The whole state as bytes: current and compact revision, every indexed key and every retained
   * revision. Throws {@link ErrTxnState} while a write transaction is open.
   */
  encodeSnapshot(): Uint8Array {
    return collectBytes(this.core.image(IMAGE_CHUNK));
  }

  /**
   * What {@link encodeSnapshot} returns, as a stream of chunks of about `chunkSize` bytes: writing it out
   * needs one chunk of memory, not the whole image. The store must not change while it is read.
   */
  snapshotImage(chunkSize: number = IMAGE_CHUNK): ByteStream {
    return this.core.image(chunkSize);
  }

  /**
   * The image {@link snapshotImage} would give now, readable later while the store goes on taking writes
   * and compactions: for writing a snapshot in the background. Taking it copies the value locations (8
   * bytes per retained revision; the other entry columns are shared until a compaction) and builds the key
   * table, but no value; until it is released, the store keeps every value it may read (freed arena slabs
   * stay referenced, history file trims wait).
   * Release it when done, written or not. Throws {@link ErrTxnState} while a write transaction is open.
   */
  snapshotView(chunkSize: number = IMAGE_CHUNK): MvccSnapshotView {
    return this.core.view(chunkSize);
  }

  /**
   * A store from {@link encodeSnapshot}'s bytes (copied); throws {@link ErrSnapshotCorrupt}. `options`
   * as for the constructor: with a history file, only the newest value of each key is kept in memory.
   */
  static decodeSnapshot(data: Uint8Array, options: MvccStoreOptions = {}): MvccStore {
    const s = Object.create(MvccStore.prototype) as MvccStore;
    s.core = Core.decode(data, options);
    return s;
  }
}
