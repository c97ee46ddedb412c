/**
 * A user's permitted keys of one kind (read or write) as a sorted list of disjoint half-open ranges,
 * merged from its roles' permissions, so that a check is one binary search: a key is permitted when a
 * range holds it, and a range of keys when one merged range covers all of it (as etcd's interval tree
 * answers `Contains`).
 *
 * @module
 */
import type { Permission } from "../pb/rpc.ts";
import { compareBytes, isFromKey } from "../../storage/mvcc/bytes.ts";

/** `[start, end)`; `end` undefined reaches past every key. */
interface Range {
  start: Uint8Array;
  end: Uint8Array | undefined;
}

export interface KeyRanges {
  /** Whether one of the ranges holds `key`. */
  containsKey(key: Uint8Array): boolean;
  /** Whether the ranges hold every key of `[key, end)` (`end` undefined: every key from `key` on). */
  covers(key: Uint8Array, end: Uint8Array | undefined): boolean;
}

/** Merges permissions (a key alone, `[key, rangeEnd)`, or from-key) into disjoint ranges. */
export function mergedRanges(perms: readonly Permission[]): KeyRanges {
  const ranges: Range[] = perms.map((p) => ({
    start: p.key,
    end: p.rangeEnd.length === 0 ? successor(p.key) : isFromKey(p.rangeEnd) ? undefined : p.rangeEnd,
  }));
  ranges.sort((a, b) => compareBytes(a.start, b.start));
  const merged: Range[] = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last !== undefined && (last.end === undefined || compareBytes(r.start, last.end) <= 0)) {
      if (last.end !== undefined && (r.end === undefined || compareBytes(r.end, last.end) > 0)) {
        last.end = r.end;
      }
    } else {
      merged.push({ start: r.start, end: r.end });
    }
  }
  return new MergedRanges(merged);
}

class MergedRanges implements KeyRanges {
  constructor(private readonly ranges: Range[]) {}

  containsKey(key: Uint8Array): boolean {
    const r = this.#holder(key);
    return r !== undefined && (r.end === undefined || compareBytes(key, r.end) < 0);
  }

  covers(key: Uint8Array, end: Uint8Array | undefined): boolean {
    const r = this.#holder(key);
    if (r === undefined || (r.end !== undefined && compareBytes(key, r.end) >= 0)) return false;
    if (r.end === undefined) return true;
    return end !== undefined && compareBytes(end, r.end) <= 0;
  }

  /** The last range that starts at or before `key`. */
  #holder(key: Uint8Array): Range | undefined {
    let lo = 0;
    let hi = this.ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(this.ranges[mid].start, key) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? undefined : this.ranges[lo - 1];
  }
}

/** The smallest key after `key`: `key` followed by a zero byte. */
function successor(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}
