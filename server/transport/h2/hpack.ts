/**
 * HPACK (RFC 7541): the header compression of HTTP/2. The decoder handles the whole format (static and
 * dynamic table, table size updates, Huffman strings). The encoder indexes the header fields a gRPC
 * server repeats (`:status`, `content-type`, `grpc-status`, short `grpc-message`s) in the dynamic table
 * so a steady stream of responses costs a few bytes of header each, and caches whole encoded blocks
 * while the table does not change.
 *
 * @module
 */
import { decodeHuffman } from "./huffman.ts";

/** A malformed header block; the connection must end with COMPRESSION_ERROR. */
export class HpackError extends Error {
  /** Stable error code of this class. */
  readonly code = "HPACK";
  constructor(message: string) {
    super(message);
    this.name = "HpackError";
  }
}

/** RFC 7541 Appendix A. Index i+1 is STATIC[i]. */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];
const STATIC_LEN = STATIC_TABLE.length;

/** Per-entry overhead counted in the table size (RFC 7541 §4.1). */
const ENTRY_OVERHEAD = 32;

/**
 * The dynamic table as a ring of name/value pairs; index 0 is the newest entry. Shared by the decoder
 * and (with a key map on top) the encoder.
 */
class DynamicTable {
  names: string[] = new Array(16);
  values: string[] = new Array(16);
  head = 0; // slot of the newest entry
  length = 0;
  size = 0;

  constructor(public maxSize: number) {}

  /** Entry i (0 = newest). */
  name(i: number): string {
    return this.names[(this.head + i) & (this.names.length - 1)];
  }

  value(i: number): string {
    return this.values[(this.head + i) & (this.values.length - 1)];
  }

  add(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    if (entrySize > this.maxSize) {
      this.clear();
      return;
    }
    while (this.size + entrySize > this.maxSize) this.evict();
    if (this.length === this.names.length) this.grow();
    const mask = this.names.length - 1;
    this.head = (this.head - 1) & mask;
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.length++;
    this.size += entrySize;
  }

  setMaxSize(max: number): void {
    this.maxSize = max;
    while (this.size > max) this.evict();
  }

  evict(): void {
    const mask = this.names.length - 1;
    const last = (this.head + this.length - 1) & mask;
    this.size -= this.names[last].length + this.values[last].length + ENTRY_OVERHEAD;
    this.names[last] = "";
    this.values[last] = "";
    this.length--;
  }

  clear(): void {
    while (this.length > 0) this.evict();
  }

  grow(): void {
    const n = this.names.length;
    const names = new Array<string>(n * 2);
    const values = new Array<string>(n * 2);
    for (let i = 0; i < this.length; i++) {
      names[i] = this.names[(this.head + i) & (n - 1)];
      values[i] = this.values[(this.head + i) & (n - 1)];
    }
    this.names = names;
    this.values = values;
    this.head = 0;
  }
}

/** Literals longer than this (encoded) are decoded every time, never cached. */
const MAX_CACHED_LITERAL = 64;
/** Slots of a {@link LiteralCache}; a power of two. */
const LITERAL_SLOTS = 32;

/**
 * Strings decoded from header literals, by their encoded bytes. nghttp2-based clients (grpc-js, h2load,
 * curl) never index `:path`, so each request of theirs carries the method path again as a Huffman
 * literal; decoding it again cost a string per character. A hit costs a hash and a compare of the
 * encoded bytes instead. One slot per hash: a literal that collides replaces the one there.
 */
class LiteralCache {
  readonly #encoded: (Uint8Array | undefined)[] = new Array(LITERAL_SLOTS);
  readonly #decoded: string[] = new Array(LITERAL_SLOTS);
  /** The slot of the last {@link find}, where {@link keep} puts what it missed. */
  #slot = 0;

  /** The string of the literal encoded in `buf[from, end)` (its length prefix included), if known. */
  find(buf: Uint8Array, from: number, end: number): string | undefined {
    if (end - from > MAX_CACHED_LITERAL) return undefined;
    let h = 0x811c9dc5;
    for (let i = from; i < end; i++) h = Math.imul(h ^ buf[i], 0x01000193);
    const slot = this.#slot = (h >>> 0) & (LITERAL_SLOTS - 1);
    const known = this.#encoded[slot];
    if (known === undefined || known.length !== end - from) return undefined;
    for (let i = 0; i < known.length; i++) if (known[i] !== buf[from + i]) return undefined;
    return this.#decoded[slot];
  }

  /** Remembers `value` for the literal {@link find} just missed. */
  keep(buf: Uint8Array, from: number, end: number, value: string): void {
    if (end - from > MAX_CACHED_LITERAL) return;
    this.#encoded[this.#slot] = buf.slice(from, end);
    this.#decoded[this.#slot] = value;
  }
}

/** Decodes header blocks of one connection (the decoder keeps state from block to block). */
export class HpackDecoder {
  readonly #table: DynamicTable;
  readonly #literals = new LiteralCache();
  /** The most we allow the peer's table size updates to ask for (our SETTINGS_HEADER_TABLE_SIZE). */
  #limit: number;

  constructor(maxTableSize = 4096) {
    this.#table = new DynamicTable(maxTableSize);
    this.#limit = maxTableSize;
  }

  /**
   * Decodes one complete header block into `out` as name, value, name, value... Returns the header
   * list size (RFC 7540 §6.5.2: names, values and 32 per field). Throws {@linkcode HpackError}.
   */
  decode(block: Uint8Array, out: string[]): number {
    const t = this.#table;
    let pos = 0;
    let listSize = 0;
    let fields = 0;
    const end = block.length;
    while (pos < end) {
      const b = block[pos];
      let name: string;
      let value: string;
      if (b & 0x80) {
        // indexed field
        const [index, next] = readInt(block, pos, 7);
        pos = next;
        if (index === 0) throw new HpackError("index 0");
        if (index <= STATIC_LEN) {
          const e = STATIC_TABLE[index - 1];
          name = e[0];
          value = e[1];
        } else {
          const d = index - STATIC_LEN - 1;
          if (d >= t.length) throw new HpackError(`index ${index} out of range`);
          name = t.name(d);
          value = t.value(d);
        }
      } else if ((b & 0xe0) === 0x20) {
        // dynamic table size update: only before the first field
        const [size, next] = readInt(block, pos, 5);
        pos = next;
        if (fields > 0) throw new HpackError("table size update after a field");
        if (size > this.#limit) throw new HpackError(`table size ${size} over the limit ${this.#limit}`);
        t.setMaxSize(size);
        continue;
      } else {
        // literal: with incremental indexing (01), without (0000) or never indexed (0001)
        const incremental = (b & 0xc0) === 0x40;
        const [index, next] = readInt(block, pos, incremental ? 6 : 4);
        pos = next;
        if (index === 0) {
          const [s, after] = readString(block, pos, this.#literals);
          name = s;
          pos = after;
        } else if (index <= STATIC_LEN) {
          name = STATIC_TABLE[index - 1][0];
        } else {
          const d = index - STATIC_LEN - 1;
          if (d >= t.length) throw new HpackError(`index ${index} out of range`);
          name = t.name(d);
        }
        const [v, after] = readString(block, pos, this.#literals);
        value = v;
        pos = after;
        if (incremental) t.add(name, value);
      }
      out.push(name, value);
      fields++;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
    }
    return listSize;
  }
}

/** Reads an HPACK integer with an N-bit prefix at `pos`; returns [value, next position]. */
export function readInt(buf: Uint8Array, pos: number, prefixBits: number): [number, number] {
  if (pos >= buf.length) throw new HpackError("truncated integer");
  const max = (1 << prefixBits) - 1;
  let v = buf[pos++] & max;
  if (v < max) return [v, pos];
  let shift = 0;
  for (;;) {
    if (pos >= buf.length) throw new HpackError("truncated integer");
    const b = buf[pos++];
    v += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) break;
    if (shift > 28) throw new HpackError("integer too large");
  }
  if (v > 0x7fffffff) throw new HpackError("integer too large");
  return [v, pos];
}

function readString(buf: Uint8Array, pos: number, cache: LiteralCache): [string, number] {
  if (pos >= buf.length) throw new HpackError("truncated string");
  const huffman = (buf[pos] & 0x80) !== 0;
  const [len, start] = readInt(buf, pos, 7);
  const end = start + len;
  if (end > buf.length) throw new HpackError("truncated string");
  // the cache key starts at the prefix, whose first bit tells a Huffman string from a raw one
  const known = cache.find(buf, pos, end);
  if (known !== undefined) return [known, end];
  let value: string;
  if (!huffman) value = latin1(buf, start, end);
  else {
    try {
      value = decodeHuffman(buf, start, end);
    } catch (err) {
      throw new HpackError((err as Error).message);
    }
  }
  cache.keep(buf, pos, end, value);
  return [value, end];
}

function latin1(buf: Uint8Array, start: number, end: number): string {
  if (end - start < 64) {
    let s = "";
    for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]);
    return s;
  }
  let s = "";
  for (let i = start; i < end; i += 4096) {
    s += String.fromCharCode.apply(null, buf.subarray(i, Math.min(end, i + 4096)) as unknown as number[]);
  }
  return s;
}

/** Appends bytes to a growable buffer; `bytes()` is a view of what was written. */
export class ByteWriter {
  buf: Uint8Array;
  len = 0;

  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
  }

  ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + extra) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  reset(): void {
    this.len = 0;
  }
}

function writeInt(w: ByteWriter, first: number, prefixBits: number, v: number): void {
  const max = (1 << prefixBits) - 1;
  if (v < max) {
    w.byte(first | v);
    return;
  }
  w.byte(first | max);
  v -= max;
  while (v >= 128) {
    w.byte((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  w.byte(v);
}

function writeString(w: ByteWriter, s: string): void {
  writeInt(w, 0, 7, s.length);
  w.ensure(s.length);
  for (let i = 0; i < s.length; i++) w.buf[w.len++] = s.charCodeAt(i) & 0xff;
}

/** Static-table indexes by "name\0value" and by name (first occurrence). */
const STATIC_FULL = new Map<string, number>();
const STATIC_NAME = new Map<string, number>();
STATIC_TABLE.forEach(([n, v], i) => {
  if (!STATIC_FULL.has(`${n}\0${v}`)) STATIC_FULL.set(`${n}\0${v}`, i + 1);
  if (!STATIC_NAME.has(n)) STATIC_NAME.set(n, i + 1);
});

/** Values longer than this are sent as literals without indexing (they rarely repeat). */
const MAX_INDEXED_VALUE = 96;

/** Encodes header blocks for one connection. Strings go out as raw (non-Huffman) literals. */
export class HpackEncoder {
  readonly #table: DynamicTable;
  /** "name\0value" -> insertion number of the newest entry with that pair. */
  readonly #full = new Map<string, number>();
  readonly #byName = new Map<string, number>();
  /** Insertions so far; the entry with insertion number k is at dynamic index inserted - 1 - k. */
  #inserted = 0;
  #pendingSizeUpdate = -1;
  #preferredMax: number;
  /** Cached encodings of whole header lists, valid while no insertion or eviction happens. */
  readonly #cache = new Map<string, { block: Uint8Array; stamp: number }>();
  #stamp = 0;

  constructor(preferredMax = 4096) {
    this.#preferredMax = preferredMax;
    this.#table = new DynamicTable(preferredMax);
  }

  /** The peer's SETTINGS_HEADER_TABLE_SIZE changed: use at most that much, and say so in the next block. */
  setPeerMaxTableSize(size: number): void {
    const max = Math.min(size, this.#preferredMax);
    if (max === this.#table.maxSize && this.#pendingSizeUpdate < 0) return;
    this.#table.setMaxSize(max);
    this.#pendingSizeUpdate = max;
    this.#dropStale();
    this.#stamp++;
  }

  /**
   * Encodes a header list (name, value, name, value...) into `w`. With a `cacheKey`, a list encoded
   * before under the same key is copied from cache when the table has not changed since.
   */
  encode(headers: readonly string[], w: ByteWriter, cacheKey?: string): void {
    if (cacheKey !== undefined && this.#pendingSizeUpdate < 0) {
      const hit = this.#cache.get(cacheKey);
      if (hit !== undefined && hit.stamp === this.#stamp) {
        w.ensure(hit.block.length);
        w.buf.set(hit.block, w.len);
        w.len += hit.block.length;
        return;
      }
    }
    if (this.#pendingSizeUpdate >= 0) {
      writeInt(w, 0x20, 5, this.#pendingSizeUpdate);
      this.#pendingSizeUpdate = -1;
    }
    const start = w.len;
    const stampBefore = this.#stamp;
    for (let i = 0; i < headers.length; i += 2) this.#field(headers[i], headers[i + 1], w);
    if (cacheKey !== undefined && stampBefore === this.#stamp) {
      this.#cache.set(cacheKey, { block: w.buf.slice(start, w.len), stamp: this.#stamp });
    }
  }

  #dynamicIndex(insertion: number | undefined): number {
    if (insertion === undefined) return 0;
    const d = this.#inserted - 1 - insertion;
    return d < this.#table.length ? STATIC_LEN + 1 + d : 0;
  }

  #field(name: string, value: string, w: ByteWriter): void {
    const key = `${name}\0${value}`;
    const s = STATIC_FULL.get(key);
    if (s !== undefined) {
      writeInt(w, 0x80, 7, s);
      return;
    }
    const d = this.#dynamicIndex(this.#full.get(key));
    if (d > 0) {
      writeInt(w, 0x80, 7, d);
      return;
    }
    const nameIndex = STATIC_NAME.get(name) ?? this.#dynamicIndex(this.#byName.get(name));
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (value.length <= MAX_INDEXED_VALUE && size <= this.#table.maxSize) {
      // literal with incremental indexing
      writeInt(w, 0x40, 6, nameIndex);
      if (nameIndex === 0) writeString(w, name);
      writeString(w, value);
      this.#table.add(name, value);
      this.#full.set(key, this.#inserted);
      this.#byName.set(name, this.#inserted);
      this.#inserted++;
      this.#dropStale();
      this.#stamp++;
      return;
    }
    // literal without indexing
    writeInt(w, 0x00, 4, nameIndex);
    if (nameIndex === 0) writeString(w, name);
    writeString(w, value);
  }

  /** Forgets map entries whose table entries were evicted, so the maps stay small. */
  #dropStale(): void {
    if (this.#full.size <= this.#table.length * 2 + 16) return;
    const oldest = this.#inserted - this.#table.length;
    for (const [k, ins] of this.#full) if (ins < oldest) this.#full.delete(k);
    for (const [k, ins] of this.#byName) if (ins < oldest) this.#byName.delete(k);
  }
}
