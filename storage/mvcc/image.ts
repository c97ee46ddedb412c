/**
 * The store's snapshot image: writing it in chunks from a store or a view of one, and reading it back.
 *
 * The layout, all integers unsigned varints unless said otherwise:
 * - "MVCC", the version byte, current revision, compact revision;
 * - the key count, then each key (length, bytes) in byte order;
 * - the entry count, then each entry in revision order: main revision minus the previous entry's, sub
 *   revision, key number, and a kind byte. Kind 0 is a tombstone and ends the entry. Kinds 1-4 go on with
 *   main minus create revision, version and value length; kinds 1 and 2 then hold the value's bytes,
 *   kinds 3 and 4 leave it to the value section; kinds 2 and 4 end with the lease (8 bytes, big endian).
 * - version 2 only, the value section: its count, then each value (entry number, bytes) in any order.
 *
 * Values in the history file go to the value section in the order they lie in the file. Read in entry
 * order, each cost a seek and a read of its own: a value is demoted when its key is next written, so the
 * file is not in revision order. Version 1 images, which hold every value inline, are still read.
 *
 * @module
 */
import { latin1, writeLatin1 } from "./bytes.ts";
import { ByteReader, ByteWriter, ErrSnapshotCorrupt, varintSize } from "./byte_codec.ts";
import type { HistoryFile } from "./history_file.ts";
import { KeyIndex } from "./key_index.ts";
import { FILE_SPAN, fileSlab, inFileOrder, inHistoryFile, type RevisionLog } from "./revision_log.ts";
import type { ValueArena } from "./value_arena.ts";

const SNAPSHOT_MAGIC = [0x4d, 0x56, 0x43, 0x43]; // "MVCC"
const SNAPSHOT_VERSION = 2;
/** Smallest chunk {@link imageChunks} makes. */
const MIN_IMAGE_CHUNK = 4096;
/** Room for an entry's fixed fields: six varints of at most 8 bytes and the kind byte. */
const ENTRY_HEAD_MAX = 64;

/** What {@link loadImage} fills: the parts of a store an image holds. */
export interface ImageTarget {
  currentRev: number;
  compactRev: number;
  log: RevisionLog;
  /** Where superseded values go; null to keep every value in `arena`. */
  readonly history: HistoryFile | null;
  arena: ValueArena;
  index: KeyIndex;
  liveKeys: number;
  dataBytes: number;
}

/**
 * The key table and size of an image of a store at `currentRev` and `compactRev`, its keys in `index`
 * and its entries in `log` (the live log or a frozen copy of it), values read through `copyValue`.
 */
export function imageSource(
  index: KeyIndex,
  log: RevisionLog,
  currentRev: number,
  compactRev: number,
  copyValue: (e: number, dst: Uint8Array, dstOff: number) => void,
): ImageSource {
  // key table in byte order; entries refer to keys by their position in it
  const pos = new Int32Array(index.idLimit);
  const keys: string[] = [];
  index.sorted.scan("", undefined, (id, k) => {
    pos[id] = keys.length;
    keys.push(k);
  });
  let size = SNAPSHOT_MAGIC.length + 1 + varintSize(currentRev) + varintSize(compactRev) +
    varintSize(keys.length) + varintSize(log.length);
  for (const k of keys) size += varintSize(k.length) + k.length;
  let lastMain = 0;
  let inFile = 0;
  for (let e = 0; e < log.length; e++) {
    const m = log.main[e];
    size += varintSize(m - lastMain) + varintSize(log.sub[e]) + varintSize(pos[log.key[e]]) + 1;
    lastMain = m;
    if (log.create[e] === 0) continue;
    const vl = log.len[e];
    size += varintSize(m - log.create[e]) + varintSize(log.version[e]) + varintSize(vl) + vl;
    if (inHistoryFile(log, e)) {
      inFile++;
      size += varintSize(e);
    }
    if (log.leaseAt(e) !== 0n) size += 8;
  }
  size += varintSize(inFile);
  return {
    currentRev,
    compactRev,
    keys,
    pos,
    size,
    log,
    copyValue,
    inFile,
  };
}

/** Fills `core`, an empty store, from the image `data`; throws {@link ErrSnapshotCorrupt}. */
export function loadImage(core: ImageTarget, data: Uint8Array): void {
  const r = new ByteReader(data);
  for (const c of SNAPSHOT_MAGIC) {
    if (r.byte() !== c) throw new ErrSnapshotCorrupt("bad magic");
  }
  const version = r.byte();
  if (version !== 1 && version !== SNAPSHOT_VERSION) {
    throw new ErrSnapshotCorrupt(`unknown version ${version}`);
  }
  core.currentRev = r.varint();
  core.compactRev = r.varint();
  if (core.currentRev < 1 || core.compactRev > core.currentRev) {
    throw new ErrSnapshotCorrupt("bad revisions");
  }
  const nKeys = r.varint();
  if (nKeys > data.length) throw new ErrSnapshotCorrupt("bad key count");
  const keys: string[] = new Array(nKeys);
  for (let i = 0; i < nKeys; i++) {
    keys[i] = latin1(r.bytes(r.varint()));
    if (i > 0 && !(keys[i - 1] < keys[i])) throw new ErrSnapshotCorrupt("keys out of order");
  }
  const nEntries = r.varint();
  if (nEntries > data.length) throw new ErrSnapshotCorrupt("bad entry count");
  const log = core.log;
  log.reserve(nEntries);
  // where each value starts in `data`: values are stored once the newest entry of each key is known;
  // 0 until a value in the value section is read
  const valueAt = new Float64Array(nEntries);
  let inSection = 0;
  const heads = new Int32Array(nKeys).fill(-1);
  let main = 0;
  let sub = -1;
  let live = 0;
  let dataBytes = 0;
  for (let i = 0; i < nEntries; i++) {
    const d = r.varint();
    const s = r.varint();
    main += d;
    if (main < 1 || main > core.currentRev || (d === 0 && s <= sub)) {
      throw new ErrSnapshotCorrupt("entries out of order");
    }
    sub = s;
    const k = r.varint();
    if (k >= nKeys) throw new ErrSnapshotCorrupt("bad key reference");
    const kind = r.byte();
    const prev = heads[k];
    if (prev >= 0 && log.create[prev] !== 0) live--;
    if (kind === 0) {
      heads[k] = log.append(main, s, k, prev, 0, 0, 0n, -1, 0, 0);
      dataBytes += keys[k].length;
      continue;
    }
    if (kind > (version === 1 ? 2 : 4)) throw new ErrSnapshotCorrupt("bad entry kind");
    const create = main - r.varint();
    const ver = r.varint();
    const vl = r.varint();
    const inline = kind <= 2;
    const at = r.pos;
    if (inline) r.bytes(vl);
    else if (vl === 0) throw new ErrSnapshotCorrupt("empty value in the value section");
    const lease = kind === 2 || kind === 4 ? r.int64() : 0n;
    if (create < 1 || ver < 1) throw new ErrSnapshotCorrupt("bad entry");
    heads[k] = log.append(main, s, k, prev, create, ver, lease, -1, 0, vl);
    if (inline) valueAt[heads[k]] = at;
    else inSection++;
    dataBytes += keys[k].length + vl;
    live++;
  }
  if (version !== 1) {
    if (r.varint() !== inSection) throw new ErrSnapshotCorrupt("bad value count");
    for (let i = 0; i < inSection; i++) {
      const e = r.varint();
      // an inline value's place, or one already read, is never 0: the magic is there
      if (e >= nEntries || log.len[e] === 0 || valueAt[e] !== 0) {
        throw new ErrSnapshotCorrupt("bad value reference");
      }
      valueAt[e] = r.pos;
      r.bytes(log.len[e]);
    }
  }
  if (r.pos !== data.length) throw new ErrSnapshotCorrupt("trailing bytes");
  for (let k = 0; k < nKeys; k++) {
    if (heads[k] < 0) throw new ErrSnapshotCorrupt("key without history");
  }
  const history = core.history;
  for (let e = 0; e < nEntries; e++) {
    if (history !== null) {
      // a superseded value goes to the file as the entry that supersedes it is reached: the order a
      // running store demotes values in, so that compactions free the file's segments whole
      const p = log.prev[e];
      const pl = p >= 0 ? log.len[p] : 0;
      if (pl !== 0) {
        const pos = history.append(data, valueAt[p], pl);
        log.slab[p] = fileSlab(pos);
        log.off[p] = pos % FILE_SPAN;
      }
      if (heads[log.key[e]] !== e) continue;
    }
    const vl = log.len[e];
    if (vl === 0) continue;
    log.slab[e] = core.arena.alloc(data.subarray(valueAt[e], valueAt[e] + vl));
    log.off[e] = core.arena.lastOffset;
  }
  core.index = KeyIndex.fromSorted(keys, heads);
  core.liveKeys = live;
  core.dataBytes = dataBytes;
}

/** What an image is written from: the key table, the entries, and where their values are read. */
export interface ImageSource {
  currentRev: number;
  compactRev: number;
  /** Indexed keys in byte order. */
  keys: string[];
  /** Key id -> position in `keys`. */
  pos: Int32Array;
  /** Bytes of the whole image. */
  size: number;
  log: RevisionLog;
  copyValue: (e: number, dst: Uint8Array, dstOff: number) => void;
  /** Entries whose values are in the history file (see {@link inHistoryFile}): the value section's count. */
  inFile: number;
}

/**
 * The image of `src`, one buffer of `chunkSize` refilled over and over; keys and values larger than a
 * chunk come in buffers of their own. What `src` reads must not change until the last chunk is taken.
 */
export function* imageChunks(src: ImageSource, chunkSize: number): Generator<Uint8Array> {
  const { keys, pos, size, log, copyValue } = src;
  const buf = new Uint8Array(Math.max(chunkSize, MIN_IMAGE_CHUNK));
  const view = new DataView(buf.buffer);
  const w = new ByteWriter(buf);
  let total = 0;
  // hands out the bytes so far and, for a payload larger than the buffer, a buffer of its own
  function* flush(payload: number, fill: (dst: Uint8Array, off: number) => void): Generator<Uint8Array> {
    total += w.pos;
    yield buf.subarray(0, w.pos);
    w.pos = 0;
    if (payload <= buf.length) {
      fill(buf, 0);
      w.pos = payload;
      return;
    }
    const own = new Uint8Array(payload);
    fill(own, 0);
    total += payload;
    yield own;
  }
  // copies the `vl` bytes of entry `e`'s value into the buffer if they fit there; else `flush` must
  const copied = (e: number, vl: number): boolean => {
    if (buf.length - w.pos < vl) return false;
    copyValue(e, buf, w.pos);
    w.pos += vl;
    return true;
  };
  for (const c of SNAPSHOT_MAGIC) w.byte(c);
  w.byte(SNAPSHOT_VERSION);
  w.varint(src.currentRev);
  w.varint(src.compactRev);
  w.varint(keys.length);
  for (const k of keys) {
    if (buf.length - w.pos < ENTRY_HEAD_MAX) yield* flush(0, () => {});
    w.varint(k.length);
    if (buf.length - w.pos >= k.length) w.latin1(k);
    else yield* flush(k.length, (dst, off) => writeLatin1(k, dst, off));
  }
  if (buf.length - w.pos < ENTRY_HEAD_MAX) yield* flush(0, () => {});
  w.varint(log.length);
  let lastMain = 0;
  for (let e = 0; e < log.length; e++) {
    if (buf.length - w.pos < ENTRY_HEAD_MAX) yield* flush(0, () => {});
    const m = log.main[e];
    w.varint(m - lastMain);
    lastMain = m;
    w.varint(log.sub[e]);
    w.varint(pos[log.key[e]]);
    if (log.create[e] === 0) {
      w.byte(0);
      continue;
    }
    const lease = log.leaseAt(e);
    const inFile = inHistoryFile(log, e);
    w.byte((inFile ? 3 : 1) + (lease === 0n ? 0 : 1));
    w.varint(m - log.create[e]);
    w.varint(log.version[e]);
    const vl = log.len[e];
    w.varint(vl);
    if (vl > 0 && !inFile && !copied(e, vl)) yield* flush(vl, (dst, off) => copyValue(e, dst, off));
    if (lease !== 0n) {
      if (buf.length - w.pos < 8) yield* flush(0, () => {});
      w.int64(lease, view);
    }
  }
  if (buf.length - w.pos < ENTRY_HEAD_MAX) yield* flush(0, () => {});
  w.varint(src.inFile);
  for (const e of inFileOrder(log)) {
    if (buf.length - w.pos < ENTRY_HEAD_MAX) yield* flush(0, () => {});
    w.varint(e);
    const vl = log.len[e];
    if (!copied(e, vl)) yield* flush(vl, (dst, off) => copyValue(e, dst, off));
  }
  total += w.pos;
  if (total !== size) throw new Error(`mvcc: snapshot size mismatch ${total} != ${size}`);
  if (w.pos > 0) yield buf.subarray(0, w.pos);
}
