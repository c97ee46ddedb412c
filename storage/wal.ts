/**
 * The write-ahead log: every Raft entry and hard state is appended here and fdatasynced before it is
 * acknowledged, and replayed from here after a restart.
 *
 * ## Files
 *
 * The log is a directory of segments named `%016x-%016x.wal` (sequence number, then the index the first
 * entry of the segment was expected to have), like etcd's. Sequence numbers are consecutive. A new
 * segment starts once the current one holds `segmentBytes`; only the last segment is ever written.
 * Segments are preallocated: created at full size, filled with zeros and fsynced, so that a later
 * fdatasync only flushes data blocks, not a new file size (`wal_bench.ts`: 1.6-1.8x the syncs per
 * second of a growing file). A zero-filled tail therefore reads as "end of log". The next segment is
 * zero-filled in the background (`next.wal.tmp`) once the last one is three quarters full, so the cut
 * only writes its first records into it; done at the cut, the fill held every write for about 40 ms per
 * 64 MiB on one member and 250 ms on three sharing a disk.
 *
 * ## Records (all integers little-endian, every record starts 8-byte aligned)
 *
 * ```
 * 0   u32 payload length          8   u32 CRC-32C of the payload (unseeded)
 * 4   u8  kind, 3 zero bytes      12  u32 CRC-32C of bytes 0..12, seeded with the segment's salt
 * 16  payload, then zeros up to the next multiple of 8
 * ```
 *
 * Kinds: 1 segment header (metadata + salt, always the first record), 2 entries (one per `append`),
 * 3 hard state, 4 snapshot mark, 5 batch, 6 end of write.
 *
 * Every write (one per `sync()`) is framed: it starts with a batch record (a sequence number that grows
 * by one per write within the segment, and the write's length in bytes) and ends with an end record (the
 * same sequence number). An end record's kind byte is never zero, so the last bytes of a write always
 * tell whether they reached the disk. The records a new segment starts with (header, hard state,
 * snapshot marks) come before the first write and are fsynced before the segment gets its name.
 * Segments of format version 1 (before writes had an end record) are still read; a log whose last
 * segment has version 1 continues in a new segment when it is opened.
 *
 * Checksums are per record, not chained. The header checksum guards the length, so a damaged length is
 * recognised without trusting it; because it is seeded with a random per-segment salt, bytes inside entry
 * data cannot be crafted to pass for a record, and a record only verifies in the segment that wrote it. Per-record
 * checksums let recovery check whether valid records exist *after* a damaged one, which decides between
 * "torn tail" and "corruption" (see below); a chain would make everything after the first damage
 * unverifiable.
 *
 * ## Recovery rules
 *
 * Each `sync()` is one write followed by fdatasync, and the next write starts only after that, so at
 * most the last write can be incomplete after a crash. An incomplete write is dropped whole (replay hands
 * out a write's records only once its end record is read), and it shows in one of three ways:
 *
 * - its end record is not there: the file ends before it, or its bytes are all zero. A write that was
 *   cut into two `write` calls (a short write) and lost the second one looks like this, whichever
 *   bytes the first one left;
 * - its batch record is incomplete and nothing but zeros follows it;
 * - the end is there but some record fails to verify, and part of that record lies in an all-zero
 *   512-byte sector (never-written blocks of a zero-filled file, as an unsynced write's pages can reach
 *   the disk in any order), or the file ends inside it.
 *
 * In the last segment, and when no valid batch record with a higher sequence number follows (a later
 * batch proves the write had been synced), such a write is a torn tail, truncated away with
 * `repaired: true`. Everything else is a {@link WalCorruptError}: non-zero garbage, an end record that
 * does not match its batch, damage in any segment but the last, damage followed by later synced batches.
 * Nothing is skipped silently. A version-1 segment has no end records; there only the last rule applies,
 * and the valid records before the damaged one are kept.
 *
 * What replay reads is not necessarily durable: a process that died between a write and its fdatasync
 * leaves the write in the page cache, where the next process reads it (a vote, say, that it then acts
 * on), and a power loss could still take it away. Worse, a process that died because an fdatasync failed
 * leaves pages that Linux has marked clean after reporting the error: still readable, never to be
 * written back, and no later fsync (the next process's included) flushes them. A log that trusted them
 * would act on a vote or entries the disk does not hold, and append after them: a power loss later
 * leaves a hole. So {@link Wal.open} writes the whole last segment back in place, exactly as it reads it
 * (it sets the file's size, which cuts off a torn tail, then writes its valid records and the zeros up
 * to its preallocated size), fsyncs it, then fsyncs the log's directory and its parent, before it
 * returns. What was re-read and re-written is what the log then stands on, as PostgreSQL concluded after
 * "fsyncgate". Earlier segments need none of this: a segment is fsynced before the next one is created,
 * and a failed fsync stops all writing.
 *
 * The cost, once per open: writing one segment (at most `segmentBytes`, 64 MiB by default, plus one
 * write past it) and its fsync, on top of reading it, which replay does anyway (the bytes written are
 * the ones already read, no copy). The size and the zero tail are rewritten too, because a repair whose
 * fsync failed may have left torn bytes on the disk under zeroed pages. Appends cost nothing more.
 *
 * @module
 */

import { crc32c } from "./crc32c.ts";
import { denoFs, type FileHandle, type FileSystem } from "./fs.ts";
import { joinPath as join, removeIfExists, syncDir, writeAll, writeZeros } from "./fs_util.ts";

/** One Raft log entry, as the WAL stores it. */
export interface WalEntry {
  term: number;
  index: number;
  type: number;
  data: Uint8Array;
}

/** Raft's hard state: current term, vote, commit index. */
export interface WalHardState {
  term: number;
  vote: bigint;
  commit: number;
}

/** Where a snapshot sits in the log. */
export interface WalSnapshotMark {
  index: number;
  term: number;
}

/** Identity of the member that owns the log; written into every segment header. */
export interface WalMetadata {
  memberId: bigint;
  clusterId: bigint;
}

/** Options for {@link Wal.create} and {@link Wal.open}. */
export interface WalOptions {
  /** A new segment starts once the current one holds this many bytes. Default 64 MiB. */
  segmentBytes?: number;
  /** Create segments at full size, zero-filled (faster fdatasync). Default true. */
  preallocate?: boolean;
  /** The file system the log lives on. Default: the real one ({@link denoFs}). */
  fs?: FileSystem;
  /**
   * Source of the per-segment salts, one uint32 per call. Default: `crypto.getRandomValues`. A simulation
   * passes a seeded one so that a run writes the same bytes every time.
   */
  randomU32?: () => number;
  /** Hears how long each fdatasync of a write took (see {@link Wal.observeFsync}). */
  fsyncObserver?: FsyncObserver;
  /**
   * Milliseconds, to time fdatasyncs (for the choice between inline and pooled writes, and for the
   * {@link FsyncObserver}). Default `performance.now`.
   */
  now?: () => number;
}

/**
 * Writes up to this size are written and fdatasynced on the calling thread while the disk is fast (see
 * `Wal.#write`). A batch of a few puts of 1 KiB, or of a hundred small ones, fits. Through the pool, the
 * fdatasync is done on another thread, which must get a core to run and to report back: with the two
 * cores of this machine busy (clients, the member's own thread, other members), that took 20-50 ms for
 * an fdatasync the disk did in under 8.
 */
export const INLINE_WRITE_MAX_BYTES = 64 * 1024;
/** An fdatasync slower than this sends the next writes through the thread pool until one is fast again. */
export const FAST_FSYNC_MS = 2;

/**
 * Told the duration of every fdatasync `sync()` makes (for metrics), in milliseconds of the log's clock
 * (`WalOptions.now`): the same timing that chooses between inline and pooled writes.
 */
export interface FsyncObserver {
  observe(ms: number): void;
}

/** What {@link Wal.open} recovered. */
export interface WalReadResult {
  /** The log, open for appending after the last valid record. */
  wal: Wal;
  metadata: WalMetadata;
  /** The last hard state written (all zero if none). */
  hardState: WalHardState;
  /** Entries with index above the snapshot mark, after applying overwrites. */
  entries: WalEntry[];
  /** A torn tail (an incomplete last write) was truncated. */
  repaired: boolean;
}

/** Counters for observability and tests. */
export interface WalStats {
  /** Write + fdatasync rounds done by `sync()`. */
  syncs: number;
  /** Bytes written by `sync()`, including record framing. */
  bytesWritten: number;
  /** Segments created after the first one. */
  segmentsCut: number;
}

/** The log's bytes do not verify; `file` and `offset` say where. */
export class WalCorruptError extends Error {
  readonly code = "WAL_CORRUPT";
  /** Path of the damaged segment. */
  readonly file: string;
  /** Byte offset of the first damaged record in that segment. */
  readonly offset: number;
  constructor(file: string, offset: number, detail: string) {
    super(`wal: ${file}: corrupt record at byte offset ${offset}: ${detail}`);
    this.name = "WalCorruptError";
    this.file = file;
    this.offset = offset;
  }
}

/** {@link Wal.create} found segments already in the directory. */
export class WalExistsError extends Error {
  readonly code = "WAL_EXISTS";
  constructor(dir: string) {
    super(`wal: ${dir} already holds a write-ahead log`);
    this.name = "WalExistsError";
  }
}

/** {@link Wal.open} found no segments. */
export class WalNotFoundError extends Error {
  readonly code = "WAL_NOT_FOUND";
  constructor(dir: string) {
    super(`wal: no write-ahead log in ${dir}`);
    this.name = "WalNotFoundError";
  }
}

/** The log does not hold the snapshot mark the caller opened it from (or holds it with another term). */
export class WalSnapshotNotFoundError extends Error {
  readonly code = "WAL_SNAPSHOT_NOT_FOUND";
  constructor(dir: string, mark: WalSnapshotMark, detail: string) {
    super(`wal: ${dir}: snapshot mark index ${mark.index} term ${mark.term}: ${detail}`);
    this.name = "WalSnapshotNotFoundError";
  }
}

/** Another Wal (in this or another process) has the directory open. */
export class WalLockedError extends Error {
  readonly code = "WAL_LOCKED";
  constructor(dir: string) {
    super(`wal: ${dir} is locked by another writer`);
    this.name = "WalLockedError";
  }
}

/** The Wal was closed. */
export class WalClosedError extends Error {
  readonly code = "WAL_CLOSED";
  constructor() {
    super("wal: closed");
    this.name = "WalClosedError";
  }
}

/**
 * A write or fsync failed. The log refuses all further work: after a failed fsync the state of the file
 * is unknown, and nothing written after it may be acknowledged.
 */
export class WalFailedError extends Error {
  readonly code = "WAL_FAILED";
  constructor(cause: unknown) {
    super(`wal: write failed, the log is unusable until reopened: ${String(cause)}`, { cause });
    this.name = "WalFailedError";
  }
}

/**
 * The log could not start its next segment because the disk is full. Nothing of the pending write was
 * written, so the log stays usable: what was appended stays buffered, and the next {@link Wal.sync}
 * tries again (once space is freed it succeeds).
 */
export class WalNoSpaceError extends Error {
  readonly code = "WAL_NO_SPACE";
  constructor(cause: unknown) {
    super(`wal: no space left to start a new segment (nothing was written): ${String(cause)}`, { cause });
    this.name = "WalNoSpaceError";
  }
}

/** Whether an error is the file system's "no space left on device" (ENOSPC). */
export function isNoSpace(err: unknown): boolean {
  if (err instanceof WalNoSpaceError) return true;
  const text = err instanceof Error
    ? `${(err as { code?: unknown }).code ?? ""} ${err.message}`
    : String(err);
  return /ENOSPC|No space left on device|os error 28/.test(text);
}

const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
const FRAME = 16;
const SECTOR = 512;
const KIND_HEADER = 1;
const KIND_ENTRIES = 2;
const KIND_HARD_STATE = 3;
const KIND_SNAPSHOT = 4;
const KIND_BATCH = 5;
const KIND_END = 6;
const MAGIC = 0x57535445; // "ETSW"
/** The format new segments are written in: writes framed by a batch record and an end record. */
const VERSION = 2;
/** The format before writes had an end record (batch records hold only the sequence number). */
const VERSION_UNFRAMED = 1;
const HEADER_BODY = 56;
/** Payload of a batch record: sequence number and write length (version 1: the sequence number). */
const BATCH_BODY = 16;
const BATCH_BODY_UNFRAMED = 8;
const BATCH_RECORD = FRAME + BATCH_BODY;
/** An end record: its payload is the write's sequence number. */
const END_BODY = 8;
const END_RECORD = FRAME + END_BODY;
const ENTRY_FIXED = 24;
const TWO32 = 4294967296;
/** Write buffers larger than this are dropped after use instead of being kept for reuse. */
const MAX_SPARE = 16 * 1024 * 1024;
const SEGMENT_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
/**
 * The next segment's file while it is zero-filled ahead of the cut that needs it. Its name ends like an
 * interrupted cut's, so {@link Wal.open} removes one that a crash left behind.
 */
const NEXT_SEGMENT = "next.wal.tmp";
/** The next segment is zero-filled in steps of this size, each made durable before the next is written. */
const NEXT_FILL_STEP = 4 * 1024 * 1024;
/**
 * The share of the last segment written when the next one starts being filled: late enough that a log
 * which stops short of a cut seldom fills a segment for nothing, early enough that the 16 MiB left of a
 * default segment outlast the fill (64 MiB at disk speed) at any write rate this server reaches.
 */
const FILL_AT = 0.75;
const EMPTY_HARD_STATE: WalHardState = { term: 0, vote: 0n, commit: 0 };

function pad8(n: number): number {
  return (n + 7) & ~7;
}

function hex16(n: number): string {
  return n.toString(16).padStart(16, "0");
}

function segmentName(seq: number, firstIndex: number): string {
  return `${hex16(seq)}-${hex16(firstIndex)}.wal`;
}

function putU64(v: DataView, off: number, n: number): void {
  v.setUint32(off, n >>> 0, true);
  v.setUint32(off + 4, Math.floor(n / TWO32), true);
}

function getU64(v: DataView, off: number): number {
  return v.getUint32(off, true) + v.getUint32(off + 4, true) * TWO32;
}

function isU53(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** A growable byte buffer that records are encoded into. */
class RecordBuffer {
  bytes: Uint8Array;
  view: DataView;
  length = 0;

  constructor(capacity: number) {
    this.bytes = new Uint8Array(capacity);
    this.view = new DataView(this.bytes.buffer);
  }

  /** Starts a record of `payloadLen` bytes; returns where its payload goes. */
  begin(kind: number, payloadLen: number): number {
    const total = FRAME + pad8(payloadLen);
    if (this.length + total > this.bytes.length) this.grow(this.length + total);
    const at = this.length;
    this.view.setUint32(at, payloadLen, true);
    this.view.setUint32(at + 4, kind, true); // kind byte plus three zero bytes
    this.length = at + total;
    return at + FRAME;
  }

  /** Finishes the record whose payload starts at `payload`: payload checksum and zero padding. */
  end(payload: number, payloadLen: number): void {
    const end = payload + payloadLen;
    this.view.setUint32(payload - 8, crc32c(0, this.bytes, payload, end), true);
    this.bytes.fill(0, end, payload + pad8(payloadLen));
  }

  private grow(min: number): void {
    let cap = this.bytes.length * 2;
    while (cap < min) cap *= 2;
    const bytes = new Uint8Array(cap);
    bytes.set(this.bytes.subarray(0, this.length));
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer);
  }
}

function encodeHeader(rb: RecordBuffer, h: SegmentHeader): void {
  const p = rb.begin(KIND_HEADER, HEADER_BODY);
  const v = rb.view;
  v.setUint32(p, MAGIC, true);
  v.setUint32(p + 4, h.version, true);
  putU64(v, p + 8, h.seq);
  putU64(v, p + 16, h.firstIndex);
  v.setBigUint64(p + 24, h.memberId, true);
  v.setBigUint64(p + 32, h.clusterId, true);
  v.setUint32(p + 40, h.salt, true);
  v.setUint32(p + 44, 0, true);
  putU64(v, p + 48, h.prealloc);
  rb.end(p, HEADER_BODY);
}

function encodeHardState(rb: RecordBuffer, hs: WalHardState): void {
  const p = rb.begin(KIND_HARD_STATE, 24);
  putU64(rb.view, p, hs.term);
  rb.view.setBigUint64(p + 8, hs.vote, true);
  putU64(rb.view, p + 16, hs.commit);
  rb.end(p, 24);
}

function encodeMark(rb: RecordBuffer, mark: WalSnapshotMark): void {
  const p = rb.begin(KIND_SNAPSHOT, 16);
  putU64(rb.view, p, mark.index);
  putU64(rb.view, p + 8, mark.term);
  rb.end(p, 16);
}

/** Computes the salted header checksum of every record in `rb` from byte `from` on. */
function sealRecords(rb: RecordBuffer, salt: number, from: number): void {
  const { bytes, view } = rb;
  let off = from;
  while (off < rb.length) {
    view.setUint32(off + 12, crc32c(salt, bytes, off, off + 12), true);
    off += FRAME + pad8(view.getUint32(off, true));
  }
}

interface SegmentHeader {
  /** Format version: {@link VERSION} or {@link VERSION_UNFRAMED}. */
  version: number;
  seq: number;
  firstIndex: number;
  memberId: bigint;
  clusterId: bigint;
  salt: number;
  prealloc: number;
}

interface SegmentRef {
  seq: number;
  firstIndex: number;
  name: string;
}

/** The segment being written. */
interface Tail {
  ref: SegmentRef;
  file: FileHandle;
  salt: number;
  /** Bytes of records in the segment; the next write goes here. */
  offset: number;
  /** Sequence number of the last batch record written. */
  batchSeq: number;
}

function randomSalt(): number {
  const a = new Uint32Array(1);
  crypto.getRandomValues(a);
  return a[0];
}

/** The file system and the salt source of one log. */
interface Io {
  fs: FileSystem;
  randomU32: () => number;
}

function ioOf(options: WalOptions | undefined): Io {
  return { fs: options?.fs ?? denoFs, randomU32: options?.randomU32 ?? randomSalt };
}

function isAllZero(b: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end && ((b.byteOffset + i) & 7) !== 0) if (b[i++] !== 0) return false;
  if (end - i >= 64) {
    const words = (end - i) >>> 3;
    const w = new Float64Array(b.buffer, b.byteOffset + i, words);
    // +0 is the only double whose bits are all zero; -0 === 0, so also compare the sign
    for (let k = 0; k < words; k++) if (w[k] !== 0 || 1 / w[k] < 0) return false;
    i += words << 3;
  }
  for (; i < end; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Creates a segment under a temporary name, writes its first records and the zero fill, fsyncs, renames
 * it in place and fsyncs the directory. `filled` is a file at {@link NEXT_SEGMENT} already zero-filled
 * to `prealloc` bytes and durable: only the first records are written into it, so the cut that takes it
 * costs one small write and fsync instead of writing the whole segment.
 */
async function createSegment(
  io: Io,
  dir: string,
  ref: SegmentRef,
  metadata: WalMetadata,
  hardState: WalHardState,
  marks: WalSnapshotMark[],
  prealloc: number,
  filled?: FileHandle,
): Promise<Tail> {
  const salt = io.randomU32() >>> 0;
  const rb = new RecordBuffer(256);
  encodeHeader(rb, {
    version: VERSION,
    seq: ref.seq,
    firstIndex: ref.firstIndex,
    ...metadata,
    salt,
    prealloc,
  });
  encodeHardState(rb, hardState);
  for (const m of marks) encodeMark(rb, m);
  sealRecords(rb, salt, 0);
  const path = join(dir, ref.name);
  const tmp = filled ? join(dir, NEXT_SEGMENT) : path + ".tmp";
  const file = filled ?? await io.fs.open(tmp, { read: true, write: true, create: true, truncate: true });
  try {
    if (filled) await file.seek(0, Deno.SeekMode.Start);
    await writeAll(file, rb.bytes.subarray(0, rb.length));
    if (!filled && prealloc > rb.length) await writeZeros(file, prealloc - rb.length);
    await file.sync();
    await io.fs.rename(tmp, path);
    await syncDir(dir, io.fs);
    await file.seek(rb.length, Deno.SeekMode.Start);
  } catch (err) {
    file.close();
    // a half-written segment must not keep the space a retry needs
    await io.fs.remove(tmp).catch(() => {});
    throw err;
  }
  return { ref, file, salt, offset: rb.length, batchSeq: 0 };
}

/** Segment files in `dir`, by sequence number. */
async function listSegments(dir: string, fs: FileSystem): Promise<SegmentRef[]> {
  const refs: SegmentRef[] = [];
  for await (const e of fs.readDir(dir)) {
    const m = SEGMENT_NAME.exec(e.name);
    if (m && e.isFile) refs.push({ seq: parseInt(m[1], 16), firstIndex: parseInt(m[2], 16), name: e.name });
  }
  return refs.sort((a, b) => a.seq - b.seq);
}

const OK = 0;
const TRUNCATED = 1; // the file ends inside the record
const ZERO = 2; // the record header is all zero
const BAD_HEADER = 3; // header checksum mismatch
const BAD_PAYLOAD = 4; // payload checksum mismatch or non-zero padding

/** Checks the record at `off`: returns one of the codes above; on OK, `next` holds the next offset. */
function checkRecord(b: Uint8Array, v: DataView, off: number, salt: number, out: { next: number }): number {
  if (b.length - off < FRAME) return TRUNCATED;
  if (v.getUint32(off, true) === 0 && v.getUint32(off + 4, true) === 0 && isAllZero(b, off + 8, off + 16)) {
    return ZERO;
  }
  if (crc32c(salt, b, off, off + 12) !== v.getUint32(off + 12, true)) return BAD_HEADER;
  const len = v.getUint32(off, true);
  const next = off + FRAME + pad8(len);
  if (next > b.length) return TRUNCATED;
  const end = off + FRAME + len;
  if (crc32c(0, b, off + FRAME, end) !== v.getUint32(off + 8, true)) return BAD_PAYLOAD;
  if (!isAllZero(b, end, next)) return BAD_PAYLOAD;
  out.next = next;
  return OK;
}

/** True if some sector overlapping [off, end) is all zero from `off` (or its start) to its end or EOF. */
function touchesZeroSector(b: Uint8Array, off: number, end: number): boolean {
  for (let s = off - (off % SECTOR); s < end && s < b.length; s += SECTOR) {
    const lo = Math.max(s, off);
    const hi = Math.min(s + SECTOR, b.length);
    if (hi > lo && isAllZero(b, lo, hi)) return true;
  }
  return false;
}

/**
 * Offset of a valid batch record (payload `body` bytes) after `from` with a sequence number above `seq`,
 * or -1.
 */
function findLaterBatch(
  b: Uint8Array,
  v: DataView,
  from: number,
  salt: number,
  seq: number,
  body: number,
): number {
  const out = { next: 0 };
  for (let p = pad8(from); p + FRAME + body <= b.length; p += 8) {
    if (b[p + 4] !== KIND_BATCH || v.getUint32(p, true) !== body) continue;
    if (checkRecord(b, v, p, salt, out) === OK && getU64(v, p + FRAME) > seq) return p;
  }
  return -1;
}

/** Receives the valid records of a segment, in order. */
type RecordVisitor = (kind: number, payload: number, len: number, recordOff: number) => void;

interface SegmentScan {
  header: SegmentHeader;
  /** Where the valid records end. */
  end: number;
  /** Sequence number of the last valid batch record. */
  batchSeq: number;
  /** The bytes after `end` must be removed (torn write, or an unexpected zero tail). */
  repair: boolean;
}

/** Verifies one segment and feeds its records to `visit`; see the module doc for the rules. */
function scanSegment(
  b: Uint8Array,
  path: string,
  ref: SegmentRef,
  isLast: boolean,
  visit: RecordVisitor,
): SegmentScan {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const corrupt = (off: number, detail: string): WalCorruptError => new WalCorruptError(path, off, detail);
  // The header was fsynced before the segment got its name: any damage here is corruption.
  if (
    b.length < FRAME + HEADER_BODY || v.getUint32(0, true) !== HEADER_BODY ||
    v.getUint32(4, true) !== KIND_HEADER ||
    crc32c(0, b, FRAME, FRAME + HEADER_BODY) !== v.getUint32(8, true) ||
    v.getUint32(FRAME, true) !== MAGIC
  ) throw corrupt(0, "missing or damaged segment header");
  const version = v.getUint32(FRAME + 4, true);
  if (version !== VERSION && version !== VERSION_UNFRAMED) {
    throw corrupt(0, `unsupported format version ${version}`);
  }
  const header: SegmentHeader = {
    version,
    seq: getU64(v, FRAME + 8),
    firstIndex: getU64(v, FRAME + 16),
    memberId: v.getBigUint64(FRAME + 24, true),
    clusterId: v.getBigUint64(FRAME + 32, true),
    salt: v.getUint32(FRAME + 40, true),
    prealloc: getU64(v, FRAME + 48),
  };
  if (crc32c(header.salt, b, 0, 12) !== v.getUint32(12, true)) throw corrupt(0, "damaged segment header");
  if (header.seq !== ref.seq || header.firstIndex !== ref.firstIndex) {
    throw corrupt(
      0,
      `header says sequence ${header.seq} first index ${header.firstIndex}, not the file name`,
    );
  }
  const framed = version === VERSION;
  const batchBody = framed ? BATCH_BODY : BATCH_BODY_UNFRAMED;
  const out = { next: 0 };
  let off = FRAME + HEADER_BODY;
  let batchSeq = 0;
  // The write being read (framed segments): where it starts and ends, and its records, which are visited
  // once its end record has been read.
  let writeStart = -1;
  let writeEnd = -1;
  const pending: number[] = [];
  /** The write being read never landed in full: it goes, and the log ends where it started. */
  const dropWrite = (): SegmentScan => ({ header, end: writeStart, batchSeq: batchSeq - 1, repair: true });
  while (off < b.length) {
    const status = checkRecord(b, v, off, header.salt, out);
    if (status === OK) {
      const kind = b[off + 4];
      const len = v.getUint32(off, true);
      if (b[off + 5] | b[off + 6] | b[off + 7]) throw corrupt(off, `unexpected record kind ${kind}`);
      if (kind === KIND_BATCH) {
        const seq = len === batchBody ? getU64(v, off + FRAME) : -1;
        if (seq !== batchSeq + 1) throw corrupt(off, `batch ${seq} follows batch ${batchSeq}`);
        if (framed) {
          if (writeStart >= 0) throw corrupt(off, `batch ${seq} starts before write ${batchSeq} ended`);
          const size = getU64(v, off + FRAME + 8);
          if (size < BATCH_RECORD + END_RECORD || size % 8 !== 0) {
            throw corrupt(off, `batch ${seq} gives its write a length of ${size} bytes`);
          }
          writeStart = off;
          writeEnd = off + size;
        }
        batchSeq = seq;
      } else if (kind === KIND_END && framed) {
        const seq = len === END_BODY ? getU64(v, off + FRAME) : -1;
        if (writeStart < 0 || out.next !== writeEnd || seq !== batchSeq) {
          throw corrupt(off, `end of write ${seq} does not match batch ${batchSeq}`);
        }
        for (const p of pending) visit(b[p + 4], p + FRAME, v.getUint32(p, true), p);
        pending.length = 0;
        writeStart = writeEnd = -1;
      } else if (kind < KIND_ENTRIES || kind > KIND_SNAPSHOT) {
        throw corrupt(off, `unexpected record kind ${kind}`);
      } else if (writeStart >= 0) {
        if (out.next > writeEnd - END_RECORD) {
          throw corrupt(off, `record runs past the end of write ${batchSeq}`);
        }
        pending.push(off);
      } else if (framed && batchSeq > 0) {
        throw corrupt(off, `record outside a write, after write ${batchSeq}`);
      } else {
        visit(kind, off + FRAME, len, off);
      }
      off = out.next;
      continue;
    }
    const zeroTail = status === ZERO && isAllZero(b, off, b.length);
    if (zeroTail && writeStart < 0) {
      if (!isLast) throw corrupt(off, "zero-filled space in a segment that is not the last");
      // The normal end of a preallocated segment; anything else here is a torn write that never landed.
      return { header, end: off, batchSeq, repair: b.length !== Math.max(header.prealloc, off) };
    }
    const what = zeroTail
      ? `write ${batchSeq} ends early, in zero-filled space`
      : status === TRUNCATED
      ? "record cut short by the end of the file"
      : status === ZERO
      ? "zero-filled record header before non-zero data"
      : status === BAD_HEADER
      ? "record header checksum mismatch"
      : "record payload checksum mismatch";
    if (!isLast) throw corrupt(off, `${what} in a segment that is not the last`);
    if (framed && writeStart >= 0) {
      // the write's last bytes never reached the disk (whatever its first ones did)
      if (writeEnd > b.length || isAllZero(b, writeEnd - END_RECORD, writeEnd)) return dropWrite();
    } else if (framed && isAllZero(b, Math.min(off + BATCH_RECORD, b.length), b.length)) {
      // at most part of a batch record, then nothing: the write's end never landed
      return { header, end: off, batchSeq, repair: true };
    }
    if (status !== TRUNCATED) {
      const extent = status === BAD_PAYLOAD ? off + FRAME + pad8(v.getUint32(off, true)) : off + FRAME;
      if (!touchesZeroSector(b, off, extent)) throw corrupt(off, `${what} (not an incomplete write)`);
      const later = findLaterBatch(b, v, off + 8, header.salt, batchSeq, batchBody);
      if (later >= 0) {
        throw corrupt(
          off,
          `${what}, and the valid batch at offset ${later} shows these bytes had been synced`,
        );
      }
    }
    return writeStart >= 0 ? dropWrite() : { header, end: off, batchSeq, repair: true };
  }
  if (writeStart >= 0) {
    if (!isLast) throw corrupt(off, `segment ends inside write ${batchSeq}, and it is not the last`);
    return dropWrite();
  }
  return { header, end: off, batchSeq, repair: false };
}

/**
 * Writes the last segment back in place as recovery sees it, through `file` (fresh, at position 0): the
 * size it should have (cutting off a torn tail), the valid records exactly as read, then zeros up to
 * its preallocated size, and fsyncs it. Every byte is rewritten, not only those that look new: after a
 * failed fsync nothing tells which pages the disk never got (see "Recovery rules").
 */
async function rewriteSegment(file: FileHandle, b: Uint8Array, s: SegmentScan): Promise<void> {
  const size = Math.max(s.header.prealloc, s.end);
  await file.truncate(size); // even at the same size: a truncation whose fsync failed may not have stuck
  await writeAll(file, b.subarray(0, s.end));
  await writeZeros(file, size - s.end);
  await file.sync();
}

/**
 * The write-ahead log. `append` and `saveSnapshotMark` only encode into memory; `sync` writes what was
 * encoded and fdatasyncs it. Use {@link Wal.create} for a new log, {@link Wal.open} for an existing one.
 */
export class Wal {
  /** Counters: syncs done, bytes written, segments cut. */
  readonly stats: WalStats = { syncs: 0, bytesWritten: 0, segmentsCut: 0 };

  readonly #dir: string;
  readonly #io: Io;
  readonly #lock: FileHandle;
  readonly #metadata: WalMetadata;
  readonly #segmentBytes: number;
  readonly #prealloc: boolean;
  /** Segments in the directory, oldest first; the last is `#tail`. */
  readonly #segments: SegmentRef[];
  #tail: Tail;
  /** Durable snapshot mark indexes, ascending (for releaseTo). */
  #marks: number[];

  #buf = new RecordBuffer(64 * 1024);
  #spare: RecordBuffer | undefined;
  /** Last entry index appended (lowered by overwrites, raised by snapshot marks); names new segments. */
  #appendedLast: number;
  #appendedHardState: WalHardState;
  #appendedMarks: number[] = [];
  #durableLast: number;
  #durableHardState: WalHardState;

  /** Waiters for the buffered records; created by the first sync() after they were appended. */
  #waiter: PromiseWithResolvers<void> | undefined;
  /** Settles when the write in progress is durable. */
  #current: Promise<void> | undefined;
  #flushing = false;
  #failure: Error | undefined;
  #closed = false;
  /** The next segment's file being zero-filled (undefined where that failed); see {@link #cut}. */
  #next: Promise<FileHandle | undefined> | undefined;
  #fsyncObserver: FsyncObserver | undefined;
  readonly #now: () => number;
  /** The last fdatasync took at most {@link FAST_FSYNC_MS}. */
  #diskFast = true;

  private constructor(init: {
    dir: string;
    io: Io;
    lock: FileHandle;
    metadata: WalMetadata;
    options: WalOptions | undefined;
    segments: SegmentRef[];
    tail: Tail;
    marks: number[];
    last: number;
    hardState: WalHardState;
  }) {
    this.#dir = init.dir;
    this.#io = init.io;
    this.#lock = init.lock;
    this.#metadata = init.metadata;
    this.#segmentBytes = init.options?.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.#prealloc = init.options?.preallocate ?? true;
    this.#segments = init.segments;
    this.#tail = init.tail;
    this.#marks = init.marks;
    this.#appendedLast = this.#durableLast = init.last;
    this.#appendedHardState = this.#durableHardState = init.hardState;
    this.#fsyncObserver = init.options?.fsyncObserver;
    this.#now = init.options?.now ?? (() => performance.now());
  }

  /** From now on, `observer` hears the duration of every fdatasync of a write (replacing any other). */
  observeFsync(observer: FsyncObserver | undefined): void {
    this.#fsyncObserver = observer;
  }

  /** True if `dir` (on `fs`, by default the real file system) holds at least one WAL segment. */
  static async exists(dir: string, fs: FileSystem = denoFs): Promise<boolean> {
    try {
      for await (const e of fs.readDir(dir)) if (SEGMENT_NAME.test(e.name)) return true;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
    return false;
  }

  /**
   * Creates a new log in `dir` (made if missing; it must not hold segments or other files). The first
   * segment is built in `<dir>.tmp` and the directory renamed into place, so a crash never leaves a
   * half-made log.
   */
  static async create(dir: string, metadata: WalMetadata, options?: WalOptions): Promise<Wal> {
    const io = ioOf(options);
    const fs = io.fs;
    if (await Wal.exists(dir, fs)) throw new WalExistsError(dir);
    const parent = join(dir, "..");
    await fs.mkdir(parent, { recursive: true });
    const tmpDir = dir.replace(/\/+$/, "") + ".tmp";
    await removeIfExists(tmpDir, true, fs);
    await fs.mkdir(tmpDir);
    const ref = { seq: 0, firstIndex: 0, name: segmentName(0, 0) };
    const prealloc = (options?.preallocate ?? true) ? options?.segmentBytes ?? DEFAULT_SEGMENT_BYTES : 0;
    const tail = await createSegment(
      io,
      tmpDir,
      ref,
      metadata,
      EMPTY_HARD_STATE,
      [{ index: 0, term: 0 }],
      prealloc,
    );
    let lock: FileHandle | undefined;
    try {
      await removeIfExists(dir, false, fs); // only an empty directory can be here (exists() said no segments)
      await fs.rename(tmpDir, dir);
      await syncDir(parent, fs);
      lock = await lockDir(dir, fs);
    } catch (err) {
      tail.file.close();
      throw err;
    }
    return new Wal({
      dir,
      io,
      lock,
      metadata,
      options,
      segments: [ref],
      tail,
      marks: [0],
      last: 0,
      hardState: EMPTY_HARD_STATE,
    });
  }

  /**
   * Opens the log in `dir` for appending, after replaying it from the segment that holds the snapshot
   * mark `snap` (`{ index: 0, term: 0 }` without a snapshot). Returns the entries above `snap.index`
   * (a later record for an index already seen replaces it and everything after it), the last hard state,
   * and whether a torn tail was cut off. Throws {@link WalCorruptError} for damage that is not a torn
   * tail, {@link WalSnapshotNotFoundError} if the mark is not in the log. A snapshot whose mark never
   * became durable (a crash between saving the snapshot file and syncing its mark) is accepted when the
   * log holds the entry at its index with its term.
   */
  static async open(dir: string, snap: WalSnapshotMark, options?: WalOptions): Promise<WalReadResult> {
    const io = ioOf(options);
    let segments: SegmentRef[];
    try {
      segments = await listSegments(dir, io.fs);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) throw new WalNotFoundError(dir);
      throw err;
    }
    if (segments.length === 0) throw new WalNotFoundError(dir);
    const lock = await lockDir(dir, io.fs);
    try {
      return await Wal.#replay(io, dir, lock, segments, snap, options);
    } catch (err) {
      lock.close();
      throw err;
    }
  }

  /**
   * The snapshot marks in the log whose index is at or below the last durable commit index, oldest
   * first. Read-only (a torn tail is ignored, not repaired). With
   * `Snapshotter.loadNewestAvailable`, this picks the newest snapshot the log knows about, skipping
   * a snapshot file saved just before a crash whose mark never became durable (as etcd does).
   */
  static async snapshotMarks(dir: string, fs: FileSystem = denoFs): Promise<WalSnapshotMark[]> {
    let segments: SegmentRef[];
    try {
      segments = await listSegments(dir, fs);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) throw new WalNotFoundError(dir);
      throw err;
    }
    if (segments.length === 0) throw new WalNotFoundError(dir);
    const marks: WalSnapshotMark[] = [];
    let commit = 0;
    for (let i = 0; i < segments.length; i++) {
      const path = join(dir, segments[i].name);
      const b = await fs.readFile(path);
      const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
      scanSegment(b, path, segments[i], i === segments.length - 1, (kind, p) => {
        if (kind === KIND_SNAPSHOT) marks.push({ index: getU64(v, p), term: getU64(v, p + 8) });
        else if (kind === KIND_HARD_STATE) commit = getU64(v, p + 16);
      });
    }
    return marks.filter((m) => m.index <= commit || m.index === 0);
  }

  static async #replay(
    io: Io,
    dir: string,
    lock: FileHandle,
    segments: SegmentRef[],
    snap: WalSnapshotMark,
    options: WalOptions | undefined,
  ): Promise<WalReadResult> {
    const fs = io.fs;
    for await (const e of fs.readDir(dir)) {
      if (e.name.endsWith(".wal.tmp")) await fs.remove(join(dir, e.name)); // an interrupted segment cut
    }
    for (let i = 1; i < segments.length; i++) {
      if (segments[i].seq !== segments[i - 1].seq + 1) {
        throw new WalCorruptError(
          join(dir, segments[i].name),
          0,
          `segment ${segments[i - 1].seq + 1} is missing`,
        );
      }
    }
    let first = -1;
    for (let i = 0; i < segments.length; i++) if (segments[i].firstIndex <= snap.index) first = i;
    if (first < 0) throw new WalSnapshotNotFoundError(dir, snap, "every segment starts after it");

    const entries: WalEntry[] = [];
    let hardState = EMPTY_HARD_STATE;
    let last = segments[first].firstIndex - 1;
    let found = false;
    let termAtSnap = -1;
    const marks: number[] = [];
    let metadata: WalMetadata | undefined;
    let scan: SegmentScan | undefined;
    let lastBytes: Uint8Array = new Uint8Array(0);
    for (let i = first; i < segments.length; i++) {
      const path = join(dir, segments[i].name);
      const b = await fs.readFile(path);
      lastBytes = b;
      const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const visit: RecordVisitor = (kind, p, len, recordOff) => {
        const bad = (detail: string) => new WalCorruptError(path, recordOff, detail);
        if (kind === KIND_ENTRIES) {
          const end = p + len;
          const count = len >= 8 ? v.getUint32(p, true) : -1;
          let q = p + 8;
          for (let k = 0; k < count; k++) {
            if (q + ENTRY_FIXED > end) throw bad("entry record shorter than its count");
            const term = getU64(v, q);
            const index = getU64(v, q + 8);
            const type = v.getUint32(q + 16, true);
            const n = v.getUint32(q + 20, true);
            if (q + ENTRY_FIXED + n > end) throw bad("entry data runs past its record");
            if (index <= snap.index) {
              if (index === snap.index) termAtSnap = term;
              entries.length = 0; // rewrites behind the snapshot drop everything after them
            } else {
              const expected = entries.length > 0 ? entries[entries.length - 1].index + 1 : snap.index + 1;
              if (index > expected) throw bad(`entry ${index} follows ${expected - 1}: entries are missing`);
              if (index < expected) entries.length = index - snap.index - 1;
              entries.push({ term, index, type, data: b.slice(q + ENTRY_FIXED, q + ENTRY_FIXED + n) });
            }
            last = index;
            q += ENTRY_FIXED + n;
          }
          if (count < 0 || q !== end) throw bad("malformed entry record");
        } else if (kind === KIND_HARD_STATE) {
          if (len !== 24) throw bad("malformed hard state record");
          hardState = { term: getU64(v, p), vote: v.getBigUint64(p + 8, true), commit: getU64(v, p + 16) };
        } else if (kind === KIND_SNAPSHOT) {
          if (len !== 16) throw bad("malformed snapshot record");
          const index = getU64(v, p);
          const term = getU64(v, p + 8);
          if (index === snap.index) {
            if (term !== snap.term) {
              throw new WalSnapshotNotFoundError(dir, snap, `the log has term ${term} at that index`);
            }
            found = true;
          }
          if (marks.length === 0 || marks[marks.length - 1] < index) marks.push(index);
          last = Math.max(last, index);
        }
      };
      scan = scanSegment(b, path, segments[i], i === segments.length - 1, visit);
      const h = scan.header;
      metadata ??= { memberId: h.memberId, clusterId: h.clusterId };
      if (metadata.memberId !== h.memberId || metadata.clusterId !== h.clusterId) {
        throw new WalCorruptError(path, 0, "segment belongs to another member or cluster");
      }
    }
    // A snapshot saved just before a crash may lack its mark; the log entry at its index, with its term,
    // proves it belongs to this log just as well (Raft's log matching property).
    if (!found && !(snap.index > 0 && termAtSnap === snap.term)) {
      throw new WalSnapshotNotFoundError(dir, snap, "no such snapshot record or entry in the log");
    }

    const ref = segments[segments.length - 1];
    const path = join(dir, ref.name);
    const file = await fs.open(path, { read: true, write: true });
    const s = scan!;
    try {
      // what was read may sit only in the page cache, even as pages a failed fsync marked clean: write
      // it back and make it durable before anyone acts on it, names included
      await rewriteSegment(file, lastBytes, s);
      await syncDir(dir, fs);
      await syncDir(join(dir, ".."), fs);
      await file.seek(s.end, Deno.SeekMode.Start);
    } catch (err) {
      file.close();
      throw err;
    }
    const wal = new Wal({
      dir,
      io,
      lock,
      metadata: metadata!,
      options,
      segments,
      tail: { ref, file, salt: s.header.salt, offset: s.end, batchSeq: s.batchSeq },
      marks,
      last,
      hardState,
    });
    if (s.header.version !== VERSION) {
      // written before writes were framed: new writes go to a segment of the current format
      try {
        await wal.#cut();
      } catch (err) {
        file.close();
        throw err;
      }
    }
    return { wal, metadata: metadata!, hardState, entries, repaired: s.repair };
  }

  /**
   * Encodes `entries` (consecutive indexes) and then `hardState` into the write buffer. No I/O: call
   * {@link Wal.sync} to make them durable. Entries at or below an index already in the log replace it
   * and everything after it on replay.
   */
  append(entries: WalEntry[], hardState?: WalHardState): void {
    this.#checkUsable();
    if (hardState && (!isU53(hardState.term) || !isU53(hardState.commit))) {
      throw new RangeError("wal: bad hard state");
    }
    const n = entries.length;
    if (n > 0) {
      let size = 8;
      const first = entries[0].index;
      for (let i = 0; i < n; i++) {
        const e = entries[i];
        if (e.index !== first + i || !isU53(e.index) || !isU53(e.term) || !(e.type >= 0 && e.type < TWO32)) {
          throw new RangeError(`wal: bad entry at position ${i} (index ${e.index}, term ${e.term})`);
        }
        size += ENTRY_FIXED + e.data.length;
      }
      const rb = this.#buffer();
      const p = rb.begin(KIND_ENTRIES, size);
      const v = rb.view;
      const bytes = rb.bytes;
      v.setUint32(p, n, true);
      v.setUint32(p + 4, 0, true);
      let q = p + 8;
      for (let i = 0; i < n; i++) {
        const e = entries[i];
        putU64(v, q, e.term);
        putU64(v, q + 8, e.index);
        v.setUint32(q + 16, e.type, true);
        v.setUint32(q + 20, e.data.length, true);
        bytes.set(e.data, q + ENTRY_FIXED);
        q += ENTRY_FIXED + e.data.length;
      }
      rb.end(p, size);
      this.#appendedLast = entries[n - 1].index;
    }
    if (hardState) {
      const prev = this.#appendedHardState;
      if (hardState.term === prev.term && hardState.vote === prev.vote && hardState.commit === prev.commit) {
        return;
      }
      encodeHardState(this.#buffer(), hardState);
      this.#appendedHardState = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
    }
  }

  /** Encodes a snapshot mark into the write buffer (durable after the next {@link Wal.sync}). */
  saveSnapshotMark(mark: WalSnapshotMark): void {
    this.#checkUsable();
    if (!isU53(mark.index) || !isU53(mark.term)) throw new RangeError("wal: bad snapshot mark");
    encodeMark(this.#buffer(), mark);
    this.#appendedMarks.push(mark.index);
    if (mark.index > this.#appendedLast) this.#appendedLast = mark.index;
  }

  /**
   * Whether a sync() called now would write and fdatasync on the calling thread before returning: what is
   * buffered fits an inline write (see `#write`), the disk is fast, and no write is in progress or has to
   * start a new segment first. Work that should not wait for the disk (messages, replies) goes first.
   */
  get syncsInline(): boolean {
    if (this.#failure || this.#closed || this.#flushing || this.#buf.length === 0) return false;
    return this.#tail.offset < this.#segmentBytes && this.#fitsInline(this.#buf.length + END_RECORD);
  }

  #fitsInline(bytes: number): boolean {
    return this.#diskFast && bytes <= INLINE_WRITE_MAX_BYTES && this.#tail.file.syncDataSync !== undefined;
  }

  /**
   * Writes everything appended so far and fdatasyncs it; resolves once it is durable. While one write is
   * in flight, later calls wait for the next one, which carries everything appended until it starts: one
   * write and one fdatasync for any number of callers (group commit).
   */
  sync(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new WalClosedError());
    if (this.#buf.length === 0) return this.#current ?? Promise.resolve();
    this.#waiter ??= Promise.withResolvers<void>();
    const promise = this.#waiter.promise;
    if (!this.#flushing) this.#flush();
    return promise;
  }

  /**
   * Deletes the segments that hold only records older than the latest durable snapshot mark at or below
   * `index` (call once a snapshot at `index` is durable). The segment holding that mark, and every later
   * one, stays: {@link Wal.open} from that snapshot needs them.
   */
  async releaseTo(index: number): Promise<void> {
    this.#checkUsable();
    let mark = -1;
    for (const m of this.#marks) if (m <= index) mark = m;
    if (mark < 0) return;
    let keep = 0;
    for (let i = 0; i < this.#segments.length; i++) if (this.#segments[i].firstIndex <= mark) keep = i;
    if (keep === 0) return;
    const doomed = this.#segments.splice(0, keep);
    this.#marks = this.#marks.filter((m) => m >= mark);
    for (const s of doomed) await removeIfExists(join(this.#dir, s.name), false, this.#io.fs);
    await syncDir(this.#dir, this.#io.fs);
  }

  /** Syncs what is buffered, then closes the files and releases the directory lock. */
  async close(): Promise<void> {
    if (this.#closed) return;
    let error: unknown;
    try {
      if (!this.#failure && this.#buf.length > 0) await this.sync();
      while (this.#flushing) await this.#current?.catch(() => {});
    } catch (err) {
      error = err;
    }
    this.#closed = true;
    this.#tail.file.close();
    const filled = await this.#takeNext();
    if (filled !== undefined) {
      filled.close();
      await this.#io.fs.remove(join(this.#dir, NEXT_SEGMENT)).catch(() => {});
    }
    this.#lock.close();
    if (error !== undefined) throw error;
  }

  /** Names of the segment files, oldest first (for tests and tooling). */
  get segmentNames(): string[] {
    return this.#segments.map((s) => s.name);
  }

  #checkUsable(): void {
    if (this.#failure) throw this.#failure;
    if (this.#closed) throw new WalClosedError();
  }

  /** The write buffer, with the batch record every write starts with reserved if it is empty. */
  #buffer(): RecordBuffer {
    const rb = this.#buf;
    // sequence number, length and checksums are filled in at write time, with the end record
    if (rb.length === 0) rb.begin(KIND_BATCH, BATCH_BODY);
    return rb;
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#waiter && !this.#failure) {
        const waiter = this.#waiter;
        this.#current = waiter.promise;
        if (this.#tail.offset >= this.#segmentBytes) {
          const cutFailed = await this.#cut().then(
            () => undefined,
            (err: unknown) => err ?? new Error("cut"),
          );
          if (cutFailed !== undefined && isNoSpace(cutFailed)) {
            // nothing of this write reached the disk: it stays buffered for the next sync()
            this.#waiter = undefined;
            waiter.reject(new WalNoSpaceError(cutFailed));
            break;
          }
          if (cutFailed !== undefined) {
            this.#failure = new WalFailedError(cutFailed);
            this.#waiter = undefined;
            waiter.reject(this.#failure);
            break;
          }
        }
        try {
          // Everything appended up to here rides on this write; later appends wait for the next one.
          this.#waiter = undefined;
          const batch = this.#buf;
          const last = this.#appendedLast;
          const hardState = this.#appendedHardState;
          const marks = this.#appendedMarks;
          this.#buf = this.#spare ?? new RecordBuffer(64 * 1024);
          this.#spare = undefined;
          this.#appendedMarks = [];
          await this.#write(batch);
          this.#durableLast = last;
          this.#durableHardState = hardState;
          for (const m of marks) this.#addMark(m);
          batch.length = 0;
          if (batch.bytes.length <= MAX_SPARE) this.#spare = batch;
          waiter.resolve();
        } catch (err) {
          this.#failure = new WalFailedError(err);
          waiter.reject(this.#failure);
          this.#waiter?.reject(this.#failure);
          this.#waiter = undefined;
        }
      }
    } finally {
      this.#flushing = false;
      this.#current = undefined;
    }
  }

  async #write(batch: RecordBuffer): Promise<void> {
    const tail = this.#tail;
    const seq = ++tail.batchSeq;
    const end = batch.begin(KIND_END, END_BODY);
    putU64(batch.view, end, seq);
    batch.end(end, END_BODY);
    putU64(batch.view, FRAME, seq);
    putU64(batch.view, FRAME + 8, batch.length);
    batch.end(FRAME, BATCH_BODY);
    sealRecords(batch, tail.salt, 0);
    const bytes = batch.bytes.subarray(0, batch.length);
    // A write up to INLINE_WRITE_MAX_BYTES on a fast disk is written and fdatasynced right here: the
    // thread pool's two round trips (one for the write, one for the fdatasync) cost more than the wait,
    // and far more when the cores are busy. Bigger writes, and every write after an fdatasync slower than
    // FAST_FSYNC_MS, go through the pool so that the event loop goes on meanwhile; a disk that turns slow
    // is thus waited for in full once.
    const file = tail.file;
    const inline = this.#fitsInline(bytes.length);
    if (inline) {
      for (let off = 0; off < bytes.length;) off += file.writeSync(off === 0 ? bytes : bytes.subarray(off));
    } else await writeAll(file, bytes);
    const began = this.#now();
    if (inline) file.syncDataSync!();
    else await file.syncData();
    const took = this.#now() - began;
    this.#diskFast = took <= FAST_FSYNC_MS;
    this.#fsyncObserver?.observe(took);
    tail.offset += batch.length;
    if (this.#prealloc && this.#next === undefined && tail.offset >= this.#segmentBytes * FILL_AT) {
      this.#next = this.#fillNext();
    }
    this.stats.syncs++;
    this.stats.bytesWritten += batch.length;
  }

  /**
   * Zero-fills the next segment's file in the background, once the tail is {@link FILL_AT} full, so
   * that the cut does not hold every write while a whole segment is written and flushed (about 60 ms for
   * 64 MiB here). Resolves undefined if that fails: the cut then builds the segment itself and reports
   * what goes wrong there.
   */
  async #fillNext(): Promise<FileHandle | undefined> {
    const fs = this.#io.fs;
    const path = join(this.#dir, NEXT_SEGMENT);
    let file: FileHandle | undefined;
    try {
      file = await fs.open(path, { read: true, write: true, create: true, truncate: true });
      // in steps, each flushed before the next, so the disk never has a whole segment to flush at once
      // in front of the WAL's own fdatasyncs
      for (let done = 0; done < this.#segmentBytes; done += NEXT_FILL_STEP) {
        await writeZeros(file, Math.min(NEXT_FILL_STEP, this.#segmentBytes - done));
        await file.syncData();
      }
      await file.sync();
      return file;
    } catch {
      file?.close();
      await fs.remove(path).catch(() => {});
      return undefined;
    }
  }

  /** The next segment's file once its filling ends (undefined if none was started or it failed). */
  async #takeNext(): Promise<FileHandle | undefined> {
    const next = this.#next;
    this.#next = undefined;
    return next === undefined ? undefined : await next;
  }

  /** Seals the current segment (drops its zero tail) and starts the next one. */
  async #cut(): Promise<void> {
    const old = this.#tail;
    await old.file.truncate(old.offset);
    await old.file.sync();
    const ref: SegmentRef = { seq: old.ref.seq + 1, firstIndex: this.#durableLast + 1, name: "" };
    ref.name = segmentName(ref.seq, ref.firstIndex);
    const prealloc = this.#prealloc ? this.#segmentBytes : 0;
    const filled = await this.#takeNext();
    const tail = await createSegment(
      this.#io,
      this.#dir,
      ref,
      this.#metadata,
      this.#durableHardState,
      [],
      prealloc,
      filled,
    );
    old.file.close();
    this.#tail = tail;
    this.#segments.push(ref);
    this.stats.segmentsCut++;
  }

  #addMark(index: number): void {
    const marks = this.#marks;
    if (marks.length === 0 || marks[marks.length - 1] < index) marks.push(index);
    else if (!marks.includes(index)) marks.splice(marks.findIndex((m) => m > index), 0, index);
  }
}

/** Opens `dir` and takes an exclusive advisory lock on it, held until the Wal closes. */
/** How often, and how far apart, a locked WAL directory is tried before it counts as another writer's. */
const LOCK_ATTEMPTS = 5;
const LOCK_RETRY_MS = 20;

async function lockDir(dir: string, fs: FileSystem): Promise<FileHandle> {
  const handle = await fs.open(dir, { read: true });
  let locked = false;
  try {
    // A lock released by close() in this very process can still be held for a moment (seen once in a
    // full test run: reopening right after a close found the directory locked), so a refusal is tried
    // again a few times before it counts.
    for (let attempt = 0; !locked && attempt < LOCK_ATTEMPTS; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, LOCK_RETRY_MS));
      locked = await handle.tryLock(true);
    }
  } catch (err) {
    handle.close();
    throw err;
  }
  if (!locked) {
    handle.close();
    throw new WalLockedError(dir);
  }
  return handle;
}
