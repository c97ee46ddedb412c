/**
 * Minimal binary writer and reader (unsigned varints, raw bytes) for the store's snapshot encoding.
 *
 * Varints are protobuf-style, little-endian base 128, for integers in [0, 2^53).
 *
 * @module
 */

/** Error for malformed encoded data. */
export class ErrSnapshotCorrupt extends Error {
  /** Stable error code. */
  readonly code = "SNAPSHOT_CORRUPT";
  /** Builds the error; `detail` says what is wrong with the data. */
  constructor(detail: string) {
    super(`mvcc: corrupt snapshot: ${detail}`);
    this.name = "ErrSnapshotCorrupt";
  }
}

/** Encoded size of an unsigned varint. */
export function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Writes into a buffer sized in advance. */
export class ByteWriter {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  /** Appends an unsigned varint. */
  varint(v: number): void {
    const b = this.buf;
    let p = this.pos;
    if (v < 0x80000000) {
      while (v >= 128) {
        b[p++] = (v & 127) | 128;
        v >>>= 7;
      }
    } else {
      while (v >= 128) {
        b[p++] = (v % 128) | 128;
        v = Math.floor(v / 128);
      }
    }
    b[p++] = v;
    this.pos = p;
  }

  /** Appends one byte. */
  byte(v: number): void {
    this.buf[this.pos++] = v;
  }

  /** Appends raw bytes. */
  bytes(src: Uint8Array): void {
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  /** Appends a latin1 string as raw bytes. */
  latin1(s: string): void {
    const b = this.buf;
    const p = this.pos;
    for (let i = 0; i < s.length; i++) b[p + i] = s.charCodeAt(i);
    this.pos = p + s.length;
  }

  /** Appends a signed 64-bit integer, little-endian. */
  int64(v: bigint, view: DataView): void {
    view.setBigInt64(this.pos, v, true);
    this.pos += 8;
  }
}

/** Reads what {@link ByteWriter} wrote; throws {@link ErrSnapshotCorrupt} on truncated input. */
export class ByteReader {
  pos = 0;
  readonly view: DataView;
  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** Reads an unsigned varint. */
  varint(): number {
    const b = this.buf;
    let p = this.pos;
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (p >= b.length) throw new ErrSnapshotCorrupt("truncated varint");
      const c = b[p++];
      v += (c & 127) * mul;
      if (c < 128) {
        this.pos = p;
        return v;
      }
      mul *= 128;
    }
    throw new ErrSnapshotCorrupt("varint too long");
  }

  /** Reads one byte. */
  byte(): number {
    if (this.pos >= this.buf.length) throw new ErrSnapshotCorrupt("truncated");
    return this.buf[this.pos++];
  }

  /** A view of the next `n` bytes (not a copy). */
  bytes(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.buf.length) throw new ErrSnapshotCorrupt("truncated bytes");
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** Reads a signed 64-bit little-endian integer. */
  int64(): bigint {
    if (this.pos + 8 > this.buf.length) throw new ErrSnapshotCorrupt("truncated int64");
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }
}
