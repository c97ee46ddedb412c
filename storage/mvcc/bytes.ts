/**
 * Byte helpers shared by the MVCC store and its users (the watch hub matches keys with them).
 *
 * Keys live inside the store as latin1 "binary strings": one UTF-16 code unit per byte, each below 256,
 * so JavaScript's string order is exactly the byte order etcd sorts keys by.
 *
 * @module
 */

/** Largest chunk handed to `String.fromCharCode.apply` at once (stays well under the argument limit). */
const APPLY_CHUNK = 8192;

/** Below this length a plain array is the fastest source for `String.fromCharCode.apply`. */
const SMALL_KEY = 64;

const scratch: number[] = [];

/** Latin1 string of `bytes`: one char per byte, so string order is byte order. */
export function latin1(bytes: Uint8Array): string {
  const n = bytes.length;
  if (n <= SMALL_KEY) {
    // Copying into a reused plain array first is faster than applying the typed array directly.
    scratch.length = n;
    for (let i = 0; i < n; i++) scratch[i] = bytes[i];
    return String.fromCharCode.apply(null, scratch);
  }
  let s = "";
  for (let i = 0; i < n; i += APPLY_CHUNK) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + APPLY_CHUNK) as unknown as number[]);
  }
  return s;
}

/** Bytes of a latin1 string (a fresh array). */
export function latin1Bytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  writeLatin1(s, b, 0);
  return b;
}

/** Writes the latin1 string `s` into `dst` at `offset`. */
export function writeLatin1(s: string, dst: Uint8Array, offset: number): void {
  for (let i = 0; i < s.length; i++) dst[offset + i] = s.charCodeAt(i);
}

/** Byte-wise comparison: negative, zero or positive like `a - b`. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

/** True when `rangeEnd` is etcd's "from key" marker, a single zero byte. */
export function isFromKey(rangeEnd: Uint8Array | undefined): boolean {
  return rangeEnd !== undefined && rangeEnd.length === 1 && rangeEnd[0] === 0;
}

/**
 * Whether `key` falls in the etcd range (`start`, `rangeEnd`): an absent or empty `rangeEnd` means the
 * single key `start`, `[0x00]` means every key >= `start`, anything else the half-open `[start, rangeEnd)`.
 */
export function keyInRange(key: Uint8Array, start: Uint8Array, rangeEnd: Uint8Array | undefined): boolean {
  if (rangeEnd === undefined || rangeEnd.length === 0) return compareBytes(key, start) === 0;
  if (compareBytes(key, start) < 0) return false;
  return isFromKey(rangeEnd) || compareBytes(key, rangeEnd) < 0;
}

/**
 * The range end that selects every key starting with `prefix` (etcd's `GetPrefixRangeEnd`): the prefix
 * with its last byte below 0xff incremented and the rest cut off; `[0x00]` (all keys) when there is none.
 */
export function prefixRangeEnd(prefix: Uint8Array): Uint8Array {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] < 0xff) {
      const end = prefix.slice(0, i + 1);
      end[i]++;
      return end;
    }
  }
  return new Uint8Array([0]);
}
