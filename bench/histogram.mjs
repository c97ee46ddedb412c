/**
 * A latency histogram in the manner of HdrHistogram: log-linear buckets, so every recorded value keeps about
 * three significant digits whatever its magnitude, in constant memory and constant time per sample.
 *
 * Values are whole microseconds. Below 2^SUB_BITS each value has its own bucket; above, every power of two
 * [2^k, 2^(k+1)) is cut into 2^SUB_BITS equal buckets (width 2^(k-SUB_BITS)), so the relative error is at
 * most 1/2^SUB_BITS (0.8%). A percentile answers the highest value of its bucket, as HdrHistogram does:
 * never lower than a sample it stands for.
 *
 * @module
 */

const SUB_BITS = 7;
const SUB = 1 << SUB_BITS;
/** Values up to 2^40 µs (12 days) are kept; larger ones count in the last bucket. */
const MAX_EXP = 40;
const BUCKETS = SUB + (MAX_EXP - SUB_BITS) * SUB;

/**
 * The bucket of a non-negative whole value.
 * @param {number} v
 * @returns {number}
 */
export function bucketOf(v) {
  if (v < SUB) return v;
  const k = Math.floor(Math.log2(v));
  // Math.log2 can round up just below a power of two; correct it with exact arithmetic
  const e = 2 ** k > v ? k - 1 : k;
  if (e >= MAX_EXP) return BUCKETS - 1;
  const shift = e - SUB_BITS;
  return SUB + shift * SUB + (Math.floor(v / 2 ** shift) - SUB);
}

/**
 * The highest value that falls in bucket `i`.
 * @param {number} i
 * @returns {number}
 */
export function bucketHigh(i) {
  if (i < SUB) return i;
  const j = i - SUB;
  const shift = Math.floor(j / SUB);
  const sub = j % SUB;
  return (SUB + sub + 1) * 2 ** shift - 1;
}

/** Counts of latencies in log-linear buckets, with the exact maximum and the total. */
export class Histogram {
  constructor() {
    this.counts = new Float64Array(BUCKETS);
    this.count = 0;
    this.max = 0;
    this.sum = 0;
  }

  /**
   * Records one latency given in milliseconds (as `performance.now()` differences are).
   * @param {number} ms
   */
  recordMs(ms) {
    const us = Math.max(0, Math.round(ms * 1000));
    this.counts[bucketOf(us)]++;
    this.count++;
    this.sum += us;
    if (us > this.max) this.max = us;
  }

  /**
   * The value (µs) at or below which a fraction `q` (0..1) of the samples lie; 0 when empty.
   * @param {number} q
   * @returns {number}
   */
  quantileUs(q) {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(bucketHigh(i), this.max);
    }
    return this.max;
  }

  /**
   * p50, p99, p99.9 and max in milliseconds, rounded to 0.01 ms (null when nothing was recorded).
   * @returns {{ p50_ms: number | null, p99_ms: number | null, p999_ms: number | null, max_ms: number | null }}
   */
  summary() {
    const ms = (us) => this.count === 0 ? null : Math.round(us / 10) / 100;
    return {
      p50_ms: ms(this.quantileUs(0.5)),
      p99_ms: ms(this.quantileUs(0.99)),
      p999_ms: ms(this.quantileUs(0.999)),
      max_ms: ms(this.max),
    };
  }
}
