/**
 * Byte-array helpers: small arrays (up to 8 KiB) carved out of shared 64 KiB slabs, and concatenation.
 *
 * In V8 every ArrayBuffer is an external allocation that only a major GC frees, so per-request buffers of
 * a few hundred bytes pile up as tens of MB of garbage under load; views into a shared slab cost one
 * allocation per slab instead. A view kept for long keeps its whole slab alive, so carve only data that
 * dies with its request (request messages, log entries that are applied and released in order).
 *
 * @module
 */

const SLAB_BYTES = 64 * 1024;
/** Larger arrays get a buffer of their own. */
const MAX_CARVED = 8192;

let slab = new Uint8Array(SLAB_BYTES);
let used = 0;

/** A zeroed array of `n` bytes, carved from a shared slab when small. */
export function allocBytes(n: number): Uint8Array {
  if (n > MAX_CARVED) return new Uint8Array(n);
  if (used + n > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    used = 0;
  }
  const out = slab.subarray(used, used + n);
  used += (n + 7) & ~7; // keep 8-byte alignment for DataView users
  return out;
}

/** A copy of `src`, carved from a shared slab when small. */
export function copyBytes(src: Uint8Array): Uint8Array {
  const out = allocBytes(src.length);
  out.set(src);
  return out;
}

/** One array holding `parts` one after the other (the part itself when there is only one). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
