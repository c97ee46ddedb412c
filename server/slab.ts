/**
 * Byte-array helpers: small arrays (up to 8 KiB) carved out of shared 64 KiB slabs, and concatenation.
 *
 * In V8 every ArrayBuffer is an external allocation that only a major GC frees, so per-request buffers of
 * a few hundred bytes pile up as tens of MB of garbage under load; views into a shared slab cost one
 * allocation per slab instead. A view kept for long keeps its whole slab alive, so each lifetime gets
 * its own allocator: request and response messages share one, Raft log entries (kept until the log
 * window moves past them) have their own.
 *
 * @module
 */

const SLAB_BYTES = 64 * 1024;
/** Larger arrays get a buffer of their own. */
const MAX_CARVED = 8192;

/**
 * Carves small arrays out of 64 KiB slabs. Data with a different lifetime belongs in a different
 * allocator: one long-lived view pins its whole slab, with everything else carved from it.
 */
export class SlabAllocator {
  #slab = new Uint8Array(SLAB_BYTES);
  #used = 0;

  /** A zeroed array of `n` bytes, carved from the current slab when small. */
  alloc(n: number): Uint8Array {
    if (n > MAX_CARVED) return new Uint8Array(n);
    if (this.#used + n > SLAB_BYTES) {
      this.#slab = new Uint8Array(SLAB_BYTES);
      this.#used = 0;
    }
    const out = this.#slab.subarray(this.#used, this.#used + n);
    this.#used += (n + 7) & ~7; // keep 8-byte alignment for DataView users
    return out;
  }

  /** A copy of `src`, carved from the current slab when small. */
  copy(src: Uint8Array): Uint8Array {
    const out = this.alloc(src.length);
    out.set(src);
    return out;
  }
}

/** The allocator for data that dies with its request: request and response messages. */
const shortLived = new SlabAllocator();

/** A zeroed array of `n` bytes for data that dies with its request (see {@link SlabAllocator}). */
export function allocBytes(n: number): Uint8Array {
  return shortLived.alloc(n);
}

/** A copy of `src` for data that dies with its request. */
export function copyBytes(src: Uint8Array): Uint8Array {
  return shortLived.copy(src);
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
