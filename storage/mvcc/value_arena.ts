/**
 * Storage for value bytes: values are copied into large shared slabs and addressed by (slab, offset,
 * length). One `Uint8Array` per value would cost V8 a few hundred bytes of bookkeeping each; a slab
 * holds thousands of values for the price of one.
 *
 * Allocation is a bump pointer in the current slab. Freed bytes are only counted; a slab whose bytes are
 * all freed is dropped, and the store moves the values out of mostly-empty slabs after a compaction
 * (see {@link ValueArena.sparseSlabs}). Large values get a slab of their own.
 *
 * @module
 */

const MIN_SLAB = 64 * 1024;
const MAX_SLAB = 1024 * 1024;
/** Values longer than this get a dedicated slab. */
const DEDICATED = 64 * 1024;

/** Slab-allocated value bytes. */
export class ValueArena {
  /** Slabs by id; `null` for a freed id. */
  slabs: (Uint8Array | null)[] = [];
  private live: number[] = [];
  private freeIds: number[] = [];
  private current = -1;
  private cursor = 0;
  private nextSize = MIN_SLAB;
  /** Total bytes of all slabs. */
  allocatedBytes = 0;
  /** Bytes of values not yet freed. */
  liveBytes = 0;
  /** Offset of the most recent {@link alloc}. */
  lastOffset = 0;
  /** Open readers of slab bytes by address (see {@link pin}). */
  private pins = 0;

  /**
   * Copies `value` into the arena. Returns its slab id and sets {@link lastOffset}; an empty value
   * takes no space and gets slab -1.
   */
  alloc(value: Uint8Array): number {
    const n = value.length;
    if (n === 0) {
      this.lastOffset = 0;
      return -1;
    }
    let id: number;
    if (n > DEDICATED) {
      id = this.newSlab(n);
      this.slabs[id]!.set(value);
      this.lastOffset = 0;
    } else {
      if (this.current < 0 || this.cursor + n > this.slabs[this.current]!.length) {
        this.current = this.newSlab(this.nextSize);
        this.cursor = 0;
        if (this.nextSize < MAX_SLAB) this.nextSize *= 2;
      }
      id = this.current;
      const slab = this.slabs[id]!;
      const off = this.cursor;
      if (n <= 16) {
        for (let i = 0; i < n; i++) slab[off + i] = value[i];
      } else {
        slab.set(value, off);
      }
      this.cursor = off + n;
      this.lastOffset = off;
    }
    this.live[id] += n;
    this.liveBytes += n;
    return id;
  }

  private newSlab(size: number): number {
    const id = this.freeIds.length > 0 ? this.freeIds.pop()! : this.slabs.length;
    this.slabs[id] = new Uint8Array(size);
    this.live[id] = 0;
    this.allocatedBytes += size;
    return id;
  }

  /** Releases `len` bytes of slab `id` (a no-op for slab -1). */
  free(id: number, len: number): void {
    if (id < 0) return;
    this.live[id] -= len;
    this.liveBytes -= len;
    if (this.live[id] === 0) {
      if (id === this.current) {
        // nothing alive in it: reuse from the start, unless a pinned reader may still read those bytes
        if (this.pins === 0) this.cursor = 0;
      } else {
        this.allocatedBytes -= this.slabs[id]!.length;
        this.slabs[id] = null;
        this.freeIds.push(id);
      }
    }
  }

  /**
   * Promises a reader that holds slab references (a copy of {@link slabs}) that no byte it may read is
   * overwritten until {@link unpin}: the only in-place reuse, restarting an emptied current slab from
   * its beginning, is put off. Dropped slabs stay alive through the reader's references.
   */
  pin(): void {
    this.pins++;
  }

  /** Ends one {@link pin}. */
  unpin(): void {
    if (this.pins === 0) throw new Error("value arena: unpin without pin");
    this.pins--;
  }

  /** Copies `len` bytes at (`id`, `off`) into `dst` at `dstOff`. */
  copyOut(id: number, off: number, len: number, dst: Uint8Array, dstOff: number): void {
    if (len === 0) return;
    const slab = this.slabs[id]!;
    if (len <= 256) {
      for (let i = 0; i < len; i++) dst[dstOff + i] = slab[off + i];
    } else {
      dst.set(slab.subarray(off, off + len), dstOff);
    }
  }

  /** A view of stored bytes; internal use only, never hand it out. */
  view(id: number, off: number, len: number): Uint8Array {
    return id < 0 ? new Uint8Array(0) : this.slabs[id]!.subarray(off, off + len);
  }

  /**
   * Marks the slabs worth emptying: not the current one, and less than half of their bytes alive.
   * Returns a per-slab flag array, or undefined when there is none.
   */
  sparseSlabs(): Uint8Array | undefined {
    let any = false;
    const marks = new Uint8Array(this.slabs.length);
    for (let id = 0; id < this.slabs.length; id++) {
      const slab = this.slabs[id];
      if (slab === null || id === this.current) continue;
      if (this.live[id] * 2 < slab.length) {
        marks[id] = 1;
        any = true;
      }
    }
    return any ? marks : undefined;
  }

  /**
   * Moves a value out of its slab into fresh space; returns the new slab id and sets
   * {@link lastOffset}. The old space is freed.
   */
  move(id: number, off: number, len: number): number {
    const value = this.slabs[id]!.subarray(off, off + len);
    // allocate first: freeing could drop the slab that `value` views
    const to = this.alloc(value);
    const toOff = this.lastOffset;
    this.free(id, len);
    this.lastOffset = toOff;
    return to;
  }
}
