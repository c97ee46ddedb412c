/**
 * The few etcd v3 protobuf messages the load generator sends and reads, encoded by hand.
 *
 * A generic protobuf library would cost the generator CPU it needs for sending load; these messages are
 * small and fixed, so a writer of varints and length-delimited fields is enough. Field numbers are those of
 * etcd's `rpc.proto` and `kv.proto` (etcd 3.4).
 *
 * @module
 */

/** Appends protobuf fields to a growing byte list. */
class Writer {
  constructor() {
    /** @type {number[]} */
    this.bytes = [];
  }

  /** @param {bigint | number} v an unsigned or two's-complement 64-bit value */
  varint(v) {
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      this.bytes.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.bytes.push(Number(x));
    return this;
  }

  /** A varint field; zero is the default and is left out, as proto3 does. */
  int(field, v) {
    if (v === undefined || v === 0 || v === 0n || v === false) return this;
    this.varint(field << 3);
    return this.varint(v === true ? 1 : v);
  }

  /** A length-delimited field (bytes, string or an encoded message). */
  bytesField(field, b) {
    if (b === undefined) return this;
    this.varint((field << 3) | 2);
    this.varint(b.length);
    for (const x of b) this.bytes.push(x);
    return this;
  }

  /** @returns {Buffer} */
  finish() {
    return Buffer.from(this.bytes);
  }
}

/**
 * PutRequest { key = 1, value = 2, lease = 3 }.
 * @param {{ key: Uint8Array, value: Uint8Array, lease?: bigint }} r
 * @returns {Buffer}
 */
export function encodePut(r) {
  return new Writer().bytesField(1, r.key).bytesField(2, r.value).int(3, r.lease).finish();
}

/**
 * RangeRequest { key = 1, range_end = 2, serializable = 7 }.
 * @param {{ key: Uint8Array, rangeEnd?: Uint8Array, serializable?: boolean }} r
 * @returns {Buffer}
 */
export function encodeRange(r) {
  return new Writer().bytesField(1, r.key).bytesField(2, r.rangeEnd).int(7, r.serializable).finish();
}

/**
 * A TxnRequest that puts `key` when its mod revision is greater than `modRevision`, and reads it otherwise.
 * Compare { result = 1 (GREATER = 1), target = 2 (MOD = 2), key = 3, mod_revision = 6 };
 * RequestOp { request_range = 1, request_put = 2 }; TxnRequest { compare = 1, success = 2, failure = 3 }.
 * @param {Uint8Array} key
 * @param {Uint8Array} value
 * @param {bigint} modRevision
 * @returns {Buffer}
 */
export function encodeTxnPutIfModGreater(key, value, modRevision) {
  const compare = new Writer().int(1, 1).int(2, 2).bytesField(3, key).int(6, modRevision).finish();
  const success = new Writer().bytesField(2, encodePut({ key, value })).finish();
  const failure = new Writer().bytesField(1, encodeRange({ key })).finish();
  return new Writer().bytesField(1, compare).bytesField(2, success).bytesField(3, failure).finish();
}

/**
 * WatchRequest { create_request = 1: WatchCreateRequest { key = 1, range_end = 2 } }.
 * @param {Uint8Array} key
 * @param {Uint8Array} rangeEnd
 * @returns {Buffer}
 */
export function encodeWatchCreate(key, rangeEnd) {
  const create = new Writer().bytesField(1, key).bytesField(2, rangeEnd).finish();
  return new Writer().bytesField(1, create).finish();
}

/**
 * LeaseGrantRequest { TTL = 1, ID = 2 }.
 * @param {bigint} ttl
 * @returns {Buffer}
 */
export function encodeLeaseGrant(ttl) {
  return new Writer().int(1, ttl).finish();
}

/**
 * LeaseRevokeRequest { ID = 1 }.
 * @param {bigint} id
 * @returns {Buffer}
 */
export function encodeLeaseRevoke(id) {
  return new Writer().int(1, id).finish();
}

/**
 * Frames one gRPC message: a zero compression flag, a 4-byte big-endian length, the message.
 * @param {Uint8Array} message
 * @returns {Buffer}
 */
export function grpcFrame(message) {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/**
 * Walks the fields of one message, calling `visit(field, wireType, value)`: a bigint for varints, a
 * subarray for length-delimited fields (fixed-width fields are skipped; etcd's messages have none).
 * @param {Uint8Array} buf
 * @param {(field: number, wire: number, value: bigint | Uint8Array) => void} visit
 */
export function readFields(buf, visit) {
  let i = 0;
  const varint = () => {
    let x = 0n, shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error("protobuf: truncated varint");
      const b = buf[i++];
      x |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return x;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const tag = Number(varint());
    const field = tag >>> 3, wire = tag & 7;
    if (wire === 0) visit(field, wire, varint());
    else if (wire === 2) {
      const n = Number(varint());
      if (i + n > buf.length) throw new Error("protobuf: truncated field");
      visit(field, wire, buf.subarray(i, i + n));
      i += n;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`protobuf: unsupported wire type ${wire}`);
  }
}

/**
 * The revision in a response's header (field 1 of every etcd response; ResponseHeader.revision = 3).
 * @param {Uint8Array} response
 * @returns {bigint}
 */
export function headerRevision(response) {
  let rev = 0n;
  readFields(response, (f, w, v) => {
    if (f === 1 && w === 2) {
      readFields(/** @type {Uint8Array} */ (v), (hf, _hw, hv) => {
        if (hf === 3) rev = /** @type {bigint} */ (hv);
      });
    }
  });
  return rev;
}

/**
 * The ID of a LeaseGrantResponse (ID = 2) and its error text (error = 4).
 * @param {Uint8Array} response
 * @returns {{ id: bigint, error: string }}
 */
export function decodeLeaseGrant(response) {
  let id = 0n, error = "";
  readFields(response, (f, _w, v) => {
    if (f === 2) id = /** @type {bigint} */ (v);
    if (f === 4) error = Buffer.from(/** @type {Uint8Array} */ (v)).toString();
  });
  return { id, error };
}

/**
 * What the generator needs of a WatchResponse: created = 3, canceled = 4, cancel_reason = 6, and the
 * values of its events (events = 11: Event { kv = 2: KeyValue { value = 5 } }).
 * @param {Uint8Array} response
 * @returns {{ created: boolean, canceled: boolean, reason: string, values: Uint8Array[] }}
 */
export function decodeWatch(response) {
  const out = { created: false, canceled: false, reason: "", values: [] };
  readFields(response, (f, _w, v) => {
    if (f === 3) out.created = v !== 0n;
    else if (f === 4) out.canceled = v !== 0n;
    else if (f === 6) out.reason = Buffer.from(/** @type {Uint8Array} */ (v)).toString();
    else if (f === 11) {
      readFields(/** @type {Uint8Array} */ (v), (ef, _ew, ev) => {
        if (ef !== 2) return;
        readFields(/** @type {Uint8Array} */ (ev), (kf, _kw, kv) => {
          if (kf === 5) out.values.push(/** @type {Uint8Array} */ (kv));
        });
      });
    }
  });
  return out;
}
