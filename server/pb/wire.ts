/**
 * Protocol Buffers wire format: a growable {@linkcode Writer} and a bounds-checked {@linkcode Reader}.
 *
 * Both work on plain numbers wherever the value fits (varints below 2^53, lengths, tags) and only touch
 * `bigint` for fields the schema types as 64-bit IDs. 64-bit varints are handled as two unsigned 32-bit
 * halves (`lo`, `hi`) so no intermediate `bigint` is built unless the caller asks for one.
 *
 * Every read is checked against the end of the current message: malformed input (a truncated varint, a
 * length running past the end, an illegal wire type, nesting too deep) throws
 * {@linkcode ProtobufDecodeError}; it never loops forever or reads outside the buffer.
 *
 * @module
 */
import { allocBytes } from "../slab.ts";

/** Wire types of the protobuf encoding. */
export const WireType = {
  VARINT: 0,
  FIXED64: 1,
  LENGTH_DELIMITED: 2,
  START_GROUP: 3,
  END_GROUP: 4,
  FIXED32: 5,
} as const;

/** Malformed protobuf input. The message follows the wording of Go's generated unmarshalers. */
export class ProtobufDecodeError extends Error {
  /** Stable error code of this class. */
  readonly code = "PROTOBUF_DECODE";

  /** @param message what is wrong with the input. */
  constructor(message: string) {
    super(message);
    this.name = "ProtobufDecodeError";
  }
}

/** Nested messages and groups deeper than this are refused (protects the call stack). */
export const MAX_DEPTH = 1000;

const TWO_32 = 4294967296;
/**
 * Moves 64-bit values between `bigint` and two 32-bit halves. DataView's BigInt accessors do this with
 * one allocation at most, about five times faster than shifting and masking bigints.
 */
const SCRATCH = new DataView(new ArrayBuffer(8));
/** The largest `hi` half of a 64-bit value whose magnitude is still a safe integer. */
const MAX_SAFE_HI = 0x1fffff;

function eof(): ProtobufDecodeError {
  return new ProtobufDecodeError("unexpected EOF");
}

function overflow(): ProtobufDecodeError {
  return new ProtobufDecodeError("proto: integer overflow");
}

function unsafeInteger(): ProtobufDecodeError {
  return new ProtobufDecodeError("proto: 64-bit integer does not fit in 53 bits");
}

/** Bytes a varint of the unsigned 32-bit value `v` takes. */
export function varintSize32(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/** Bytes an int64 varint of the integer `v` (|v| < 2^53) takes; negative values always take 10. */
export function varintSizeInt64(v: number): number {
  if (v < 0) return 10;
  if (v < 0x10000000) return varintSize32(v);
  return v < 0x800000000 ? 5 : v < 0x40000000000 ? 6 : v < 0x2000000000000 ? 7 : 8;
}

/** Bytes a 64-bit varint of `v` takes (`v` taken modulo 2^64, so negative int64 values take 10). */
export function varintSizeBig(v: bigint): number {
  if (v >= 0n && v <= 0xffffffffn) return varintSize32(Number(v));
  SCRATCH.setBigUint64(0, v, true);
  const hi = SCRATCH.getUint32(4, true);
  return Math.ceil((64 - Math.clz32(hi)) / 7);
}

/** Shared encoder for strings too long for the hand-rolled loop. */
const utf8Encoder = new TextEncoder();
/** Shared decoder; invalid UTF-8 becomes U+FFFD, as Go leaves it to the reader. */
const utf8Decoder = new TextDecoder();

/** Exact UTF-8 length of `s` as TextEncoder would encode it (lone surrogates become 3-byte U+FFFD). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** Strings shorter than this are encoded by a loop instead of TextEncoder (cheaper for short ones). */
const SHORT_STRING = 64;
/** A writer whose buffer grew beyond this is given a fresh small one on reset. */
const RETAIN_LIMIT = 1 << 20;

/**
 * Appends protobuf-encoded values to a growable buffer. One writer is meant to be reused: call
 * {@linkcode Writer.finish} to take a copy of what was written and start over.
 */
export class Writer {
  /** The buffer being written; only the first {@linkcode Writer.pos} bytes are meaningful. */
  buf: Uint8Array;
  /** Number of bytes written so far. */
  pos = 0;
  private readonly initialSize: number;

  /** @param initialSize starting capacity in bytes. */
  constructor(initialSize = 1024) {
    this.initialSize = Math.max(16, initialSize);
    this.buf = new Uint8Array(this.initialSize);
  }

  /** Drops what was written; a buffer that grew very large is released. */
  reset(): void {
    this.pos = 0;
    if (this.buf.length > RETAIN_LIMIT) this.buf = new Uint8Array(this.initialSize);
  }

  /**
   * A copy of the bytes written so far; the writer is reset for the next message. Small outputs are
   * views into a shared slab ({@link allocBytes}: mind `byteOffset` when using `.buffer`; `slice()` one
   * to keep it for long without pinning the slab), larger ones own their buffer.
   */
  finish(): Uint8Array {
    const len = this.pos;
    // small outputs are carved from shared slabs (server/slab.ts): a view costs ~20 ns, a fresh
    // ArrayBuffer 0.3-0.8 µs whatever its size
    const out = allocBytes(len);
    const buf = this.buf;
    if (len <= 64) { for (let i = 0; i < len; i++) out[i] = buf[i]; }
    else out.set(buf.subarray(0, len));
    this.reset();
    return out;
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  /** A field tag: `field << 3 | wireType`. Encoders usually pass precomputed tags to `uint32`. */
  tag(field: number, wireType: number): void {
    this.uint32(((field << 3) | wireType) >>> 0);
  }

  /** An unsigned 32-bit varint (uint32, enum values >= 0, tags, lengths). */
  uint32(v: number): void {
    if (this.pos + 5 > this.buf.length) this.grow(5);
    const buf = this.buf;
    let pos = this.pos;
    v >>>= 0;
    while (v > 0x7f) {
      buf[pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[pos++] = v;
    this.pos = pos;
  }

  /** A signed 32-bit varint (int32, enums): negative values take 10 bytes, as in Go. */
  int32(v: number): void {
    if (v >= 0) this.uint32(v);
    else this.varint64(v >>> 0, 0xffffffff);
  }

  /**
   * An int64 varint from a safe integer: negatives are two's complement and take 10 bytes.
   * Values beyond ±2^53 lose precision in a `number` already; use {@linkcode Writer.int64Big} for them.
   */
  int64(v: number): void {
    if (v >= 0) {
      if (v <= 0xffffffff) this.uint32(v);
      else this.varint64(v % TWO_32, Math.floor(v / TWO_32));
      return;
    }
    const m = -v;
    let lo = m % TWO_32;
    let hi = Math.floor(m / TWO_32);
    lo = (~lo + 1) >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
    this.varint64(lo, hi);
  }

  /** A uint64 varint from a non-negative safe integer (same bytes as {@linkcode Writer.int64}). */
  uint64(v: number): void {
    this.int64(v);
  }

  /** An int64 varint from a bigint (taken modulo 2^64). */
  int64Big(v: bigint): void {
    if (v >= 0n && v <= 0xffffffffn) {
      this.uint32(Number(v));
      return;
    }
    SCRATCH.setBigUint64(0, v, true);
    this.varint64(SCRATCH.getUint32(0, true), SCRATCH.getUint32(4, true));
  }

  /** A uint64 varint from a bigint (negative values are taken modulo 2^64). */
  uint64Big(v: bigint): void {
    this.int64Big(v);
  }

  /** A zigzag-encoded sint32. */
  sint32(v: number): void {
    this.uint32(((v << 1) ^ (v >> 31)) >>> 0);
  }

  /** A zigzag-encoded sint64 from a safe integer. */
  sint64(v: number): void {
    const m = Math.abs(v);
    let lo = m % TWO_32;
    let hi = Math.floor(m / TWO_32);
    if (v < 0) {
      lo = (~lo + 1) >>> 0;
      hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
    }
    this.zigzag64(lo, hi);
  }

  /** A zigzag-encoded sint64 from a bigint. */
  sint64Big(v: bigint): void {
    SCRATCH.setBigUint64(0, v, true);
    this.zigzag64(SCRATCH.getUint32(0, true), SCRATCH.getUint32(4, true));
  }

  private zigzag64(lo: number, hi: number): void {
    const mask = hi >> 31;
    const zhi = (((hi << 1) | (lo >>> 31)) ^ mask) >>> 0;
    const zlo = ((lo << 1) ^ mask) >>> 0;
    this.varint64(zlo, zhi);
  }

  /** A varint of the 64-bit value `hi * 2^32 + lo` (both halves unsigned 32-bit). */
  varint64(lo: number, hi: number): void {
    if (this.pos + 10 > this.buf.length) this.grow(10);
    const buf = this.buf;
    let pos = this.pos;
    while (hi !== 0 || lo > 0x7f) {
      buf[pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    buf[pos++] = lo;
    this.pos = pos;
  }

  /** A little-endian fixed32. */
  fixed32(v: number): void {
    if (this.pos + 4 > this.buf.length) this.grow(4);
    const buf = this.buf;
    const pos = this.pos;
    buf[pos] = v;
    buf[pos + 1] = v >>> 8;
    buf[pos + 2] = v >>> 16;
    buf[pos + 3] = v >>> 24;
    this.pos = pos + 4;
  }

  /** A little-endian fixed64 from a non-negative safe integer. */
  fixed64(v: number): void {
    this.fixed32(v % TWO_32);
    this.fixed32(Math.floor(v / TWO_32));
  }

  /** A little-endian fixed64 from a bigint (taken modulo 2^64). */
  fixed64Big(v: bigint): void {
    SCRATCH.setBigUint64(0, v, true);
    this.fixed32(SCRATCH.getUint32(0, true));
    this.fixed32(SCRATCH.getUint32(4, true));
  }

  /** A bool varint (one byte). */
  bool(v: boolean): void {
    if (this.pos + 1 > this.buf.length) this.grow(1);
    this.buf[this.pos++] = v ? 1 : 0;
  }

  /** A length-prefixed byte string. */
  bytes(v: Uint8Array): void {
    const len = v.length;
    this.uint32(len);
    this.raw(v);
  }

  /** Bytes copied as they are, without a length (already encoded fields or messages). */
  raw(v: Uint8Array): void {
    const len = v.length;
    if (this.pos + len > this.buf.length) this.grow(len);
    if (len <= 16) {
      const buf = this.buf;
      const pos = this.pos;
      for (let i = 0; i < len; i++) buf[pos + i] = v[i];
    } else {
      this.buf.set(v, this.pos);
    }
    this.pos += len;
  }

  /** A length-prefixed UTF-8 string. */
  string(s: string): void {
    if (s.length >= SHORT_STRING) {
      this.bytes(utf8Encoder.encode(s));
      return;
    }
    const len = utf8Length(s);
    this.uint32(len);
    if (this.pos + len > this.buf.length) this.grow(len);
    const buf = this.buf;
    let pos = this.pos;
    if (len === s.length) {
      for (let i = 0; i < len; i++) buf[pos++] = s.charCodeAt(i);
      this.pos = pos;
      return;
    }
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        buf[pos++] = c;
        continue;
      }
      if (c < 0x800) {
        buf[pos++] = 0xc0 | (c >> 6);
        buf[pos++] = 0x80 | (c & 0x3f);
        continue;
      }
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = c <= 0xdbff && i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
        if (d >= 0xdc00 && d <= 0xdfff) {
          i++;
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          buf[pos++] = 0xf0 | (c >> 18);
          buf[pos++] = 0x80 | ((c >> 12) & 0x3f);
          buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
          buf[pos++] = 0x80 | (c & 0x3f);
          continue;
        }
        c = 0xfffd; // a lone surrogate, as TextEncoder does
      }
      buf[pos++] = 0xe0 | (c >> 12);
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buf[pos++] = 0x80 | (c & 0x3f);
    }
    this.pos = pos;
  }

  /**
   * Starts a length-delimited value whose size is not known up front: reserves one length byte and
   * returns a mark for {@linkcode Writer.endLength}. Write the tag before calling this.
   */
  beginLength(): number {
    if (this.pos + 1 > this.buf.length) this.grow(1);
    return this.pos++;
  }

  /** Back-patches the length of the value started at `mark`, moving it if the length needs > 1 byte. */
  endLength(mark: number): void {
    const len = this.pos - mark - 1;
    if (len < 0x80) {
      this.buf[mark] = len;
      return;
    }
    const extra = varintSize32(len) - 1;
    if (this.pos + extra > this.buf.length) this.grow(extra);
    const buf = this.buf;
    buf.copyWithin(mark + 1 + extra, mark + 1, this.pos);
    this.pos += extra;
    let v = len;
    let p = mark;
    while (v > 0x7f) {
      buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[p] = v;
  }
}

/**
 * Reads protobuf values from a buffer, never past {@linkcode Reader.end}, the end of the message being
 * read (nested messages narrow it with {@linkcode Reader.enter}).
 *
 * `bytes()` returns views into the input (no copy): callers must copy before retaining them beyond the
 * life of the input buffer, or before the buffer is reused.
 */
export class Reader {
  /** The input. */
  readonly buf: Uint8Array;
  /** Offset of the next byte to read. */
  pos = 0;
  /** End of the message currently being read (exclusive). */
  end: number;
  /** Nesting depth of messages and groups entered. */
  depth = 0;
  /** Low half of the last 64-bit varint read by {@linkcode Reader.varint64}. */
  lo = 0;
  /** High half of the last 64-bit varint read by {@linkcode Reader.varint64}. */
  hi = 0;

  /** @param buf the encoded message. */
  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.end = buf.length;
  }

  /** Reads a field tag; refuses field number 0 and over-long tags. */
  tag(): number {
    const pos = this.pos;
    if (pos < this.end) {
      const b = this.buf[pos];
      if (b >= 8 && b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    const start = pos;
    const t = this.uint32();
    if (this.pos - start > 5 || t >>> 3 === 0) {
      throw new ProtobufDecodeError(`proto: illegal tag ${t >>> 3} (wire type ${t & 7})`);
    }
    return t;
  }

  /** Reads a varint and keeps its low 32 bits, unsigned (uint32, tags, enums >= 0). */
  uint32(): number {
    const pos = this.pos;
    if (pos < this.end) {
      const b = this.buf[pos];
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    return this.varint32Slow() >>> 0;
  }

  /** Reads a varint as a signed 32-bit integer (int32, enums). */
  int32(): number {
    const pos = this.pos;
    if (pos < this.end) {
      const b = this.buf[pos];
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    return this.varint32Slow() | 0;
  }

  private varint32Slow(): number {
    const buf = this.buf;
    const end = this.end;
    let pos = this.pos;
    let result = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (pos >= end) throw eof();
      const b = buf[pos++];
      if (shift < 32) result |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        return result;
      }
    }
    throw overflow();
  }

  /** Reads a 64-bit varint into {@linkcode Reader.lo} and {@linkcode Reader.hi}. */
  varint64(): void {
    const buf = this.buf;
    const end = this.end;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    let b: number;
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= end) throw eof();
      b = buf[pos++];
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.lo = lo >>> 0;
        this.hi = 0;
        this.pos = pos;
        return;
      }
    }
    if (pos >= end) throw eof();
    b = buf[pos++];
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x7f) >> 4;
    if (b < 0x80) {
      this.lo = lo >>> 0;
      this.hi = hi;
      this.pos = pos;
      return;
    }
    for (let shift = 3; shift < 32; shift += 7) {
      if (pos >= end) throw eof();
      b = buf[pos++];
      hi |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        this.pos = pos;
        return;
      }
    }
    throw overflow();
  }

  /** Reads an int64 varint as a number; throws if its magnitude is 2^53 or more. */
  int64Number(): number {
    const pos = this.pos;
    if (pos < this.end) {
      const b = this.buf[pos];
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    this.varint64();
    return toSafeSigned(this.lo, this.hi);
  }

  /** Reads a uint64 varint as a number; throws if it is 2^53 or more. */
  uint64Number(): number {
    const pos = this.pos;
    if (pos < this.end) {
      const b = this.buf[pos];
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    this.varint64();
    if (this.hi > MAX_SAFE_HI) throw unsafeInteger();
    return this.hi * TWO_32 + this.lo;
  }

  /** Reads a uint64 varint as a bigint in [0, 2^64). */
  uint64Big(): bigint {
    const pos = this.pos;
    if (pos < this.end) {
      const b = this.buf[pos];
      if (b < 0x80) {
        this.pos = pos + 1;
        return BigInt(b);
      }
    }
    this.varint64();
    if (this.hi === 0) return BigInt(this.lo);
    SCRATCH.setUint32(0, this.lo, true);
    SCRATCH.setUint32(4, this.hi, true);
    return SCRATCH.getBigUint64(0, true);
  }

  /** Reads an int64 varint as a bigint in [-2^63, 2^63). */
  int64Big(): bigint {
    const pos = this.pos;
    if (pos < this.end) {
      const b = this.buf[pos];
      if (b < 0x80) {
        this.pos = pos + 1;
        return BigInt(b);
      }
    }
    this.varint64();
    if (this.hi === 0) return BigInt(this.lo);
    SCRATCH.setUint32(0, this.lo, true);
    SCRATCH.setUint32(4, this.hi, true);
    return SCRATCH.getBigInt64(0, true);
  }

  /** Reads a zigzag sint32. */
  sint32(): number {
    const v = this.uint32();
    return (v >>> 1) ^ -(v & 1);
  }

  /** Reads a zigzag sint64 as a number; throws if its magnitude is 2^53 or more. */
  sint64Number(): number {
    this.varint64();
    const lo = this.lo;
    const hi = this.hi;
    const mask = -(lo & 1);
    const ulo = (((lo >>> 1) | (hi << 31)) ^ mask) >>> 0;
    const uhi = ((hi >>> 1) ^ mask) >>> 0;
    return toSafeSigned(ulo, uhi);
  }

  /** Reads a zigzag sint64 as a bigint. */
  sint64Big(): bigint {
    const u = this.uint64Big();
    return (u >> 1n) ^ -(u & 1n);
  }

  /** Reads a little-endian fixed32 (unsigned). */
  fixed32(): number {
    const pos = this.pos;
    if (pos + 4 > this.end) throw eof();
    const buf = this.buf;
    this.pos = pos + 4;
    return (buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16) | (buf[pos + 3] << 24)) >>> 0;
  }

  /** Reads a little-endian fixed64 as a number; throws if it is 2^53 or more. */
  fixed64Number(): number {
    const lo = this.fixed32();
    const hi = this.fixed32();
    if (hi > MAX_SAFE_HI) throw unsafeInteger();
    return hi * TWO_32 + lo;
  }

  /** Reads a little-endian fixed64 as a bigint in [0, 2^64). */
  fixed64Big(): bigint {
    const lo = this.fixed32();
    const hi = this.fixed32();
    SCRATCH.setUint32(0, lo, true);
    SCRATCH.setUint32(4, hi, true);
    return SCRATCH.getBigUint64(0, true);
  }

  /** Reads a bool varint (any non-zero value is true). */
  bool(): boolean {
    const pos = this.pos;
    if (pos < this.end) {
      const b = this.buf[pos];
      if (b < 0x80) {
        this.pos = pos + 1;
        return b !== 0;
      }
    }
    this.varint64();
    return this.lo !== 0 || this.hi !== 0;
  }

  /** Reads the length of a length-delimited value and checks it fits in the current message. */
  length(): number {
    const pos = this.pos;
    let len: number;
    if (pos < this.end && this.buf[pos] < 0x80) {
      len = this.buf[pos];
      this.pos = pos + 1;
    } else {
      this.varint64();
      if (this.hi !== 0) {
        throw this.hi & 0x80000000
          ? new ProtobufDecodeError("proto: negative length found during unmarshaling")
          : eof();
      }
      len = this.lo;
    }
    if (len > this.end - this.pos) throw eof();
    return len;
  }

  /**
   * Reads a length-delimited byte string as a view into the input buffer (no copy). Copy it before
   * keeping it beyond the life of the input.
   */
  bytes(): Uint8Array {
    const len = this.length();
    const start = this.pos;
    this.pos = start + len;
    return this.buf.subarray(start, start + len);
  }

  /** Reads a length-delimited UTF-8 string (invalid sequences become U+FFFD). */
  string(): string {
    const len = this.length();
    const buf = this.buf;
    const start = this.pos;
    const stop = start + len;
    this.pos = stop;
    if (len < SHORT_STRING) {
      let s = "";
      let i = start;
      for (; i < stop; i++) {
        const c = buf[i];
        if (c >= 0x80) break;
        s += String.fromCharCode(c);
      }
      if (i === stop) return s;
    }
    return utf8Decoder.decode(buf.subarray(start, stop));
  }

  /**
   * Enters a length-delimited nested message: reads its length and narrows {@linkcode Reader.end} to it.
   * Returns the outer end, to pass to {@linkcode Reader.leave} once the message is read.
   */
  enter(): number {
    const len = this.length();
    if (++this.depth > MAX_DEPTH) throw new ProtobufDecodeError("proto: exceeded maximum nesting depth");
    const outer = this.end;
    this.end = this.pos + len;
    return outer;
  }

  /** Leaves a nested message entered with {@linkcode Reader.enter}. */
  leave(outerEnd: number): void {
    this.pos = this.end;
    this.end = outerEnd;
    this.depth--;
  }

  /**
   * Skips an unknown field; throws if `tag` names one of the fields in `knownFields` (a bit mask of
   * field numbers 1..31) with a wire type the decoder did not accept for it.
   */
  skipField(tag: number, knownFields: number): void {
    const field = tag >>> 3;
    if (field < 32 && ((knownFields >>> field) & 1) !== 0 && (tag & 7) < 6) throw wrongWireType(tag);
    this.skipType(tag & 7);
  }

  /** Skips a value of the given wire type (groups included, up to their end-group tag). */
  skipType(wireType: number): void {
    switch (wireType) {
      case 0: {
        const buf = this.buf;
        const end = this.end;
        let pos = this.pos;
        for (let i = 0;; i++) {
          if (i === 10) throw overflow();
          if (pos >= end) throw eof();
          if (buf[pos++] < 0x80) break;
        }
        this.pos = pos;
        return;
      }
      case 1:
        if (this.end - this.pos < 8) throw eof();
        this.pos += 8;
        return;
      case 2: {
        const len = this.length(); // read first: it moves pos past the length prefix
        this.pos += len;
        return;
      }
      case 3: {
        if (++this.depth > MAX_DEPTH) throw new ProtobufDecodeError("proto: exceeded maximum nesting depth");
        for (;;) {
          if (this.pos >= this.end) throw eof();
          const t = this.tag();
          if ((t & 7) === 4) break;
          this.skipType(t & 7);
        }
        this.depth--;
        return;
      }
      case 5:
        if (this.end - this.pos < 4) throw eof();
        this.pos += 4;
        return;
      default:
        throw new ProtobufDecodeError(`proto: illegal wireType ${wireType}`);
    }
  }
}

/** The error for a known field that arrived with a wire type its decoder does not accept. */
export function wrongWireType(tag: number): ProtobufDecodeError {
  return new ProtobufDecodeError(`proto: wrong wireType = ${tag & 7} for field ${tag >>> 3}`);
}

/** Mask of field numbers for {@linkcode Reader.skipField}: `fieldMask(1, 2, 5)`. */
export function fieldMask(...fields: number[]): number {
  let m = 0;
  for (const f of fields) m |= 1 << f;
  return m >>> 0;
}

function toSafeSigned(lo: number, hi: number): number {
  if ((hi & 0x80000000) === 0) {
    if (hi > MAX_SAFE_HI) throw unsafeInteger();
    return hi * TWO_32 + lo;
  }
  const mlo = (~lo + 1) >>> 0;
  const mhi = (~hi + (mlo === 0 ? 1 : 0)) >>> 0;
  if (mhi > MAX_SAFE_HI) throw unsafeInteger();
  return -(mhi * TWO_32 + mlo);
}
