import { assert, assertEquals } from "../tests/assert.ts";
import { bucketHigh, bucketOf, Histogram } from "./histogram.mjs";

Deno.test("histogram buckets: exact below 128 µs, contiguous, at most 1/128 wide above", () => {
  for (let v = 0; v < 128; v++) assertEquals(bucketHigh(bucketOf(v)), v);
  let prev = bucketOf(127);
  for (let v = 128; v < 200_000; v += 1) {
    const b = bucketOf(v);
    assert(b === prev || b === prev + 1, `bucket jumps at ${v}`);
    const high = bucketHigh(b);
    assert(high >= v && (high - v) / v <= 1 / 128, `value ${v} lands in a bucket ending at ${high}`);
    prev = b;
  }
  // powers of two start a bucket, one below ends one
  for (let k = 8; k < 39; k++) {
    assertEquals(bucketOf(2 ** k), bucketOf(2 ** k - 1) + 1);
    assertEquals(bucketHigh(bucketOf(2 ** k - 1)), 2 ** k - 1);
  }
});

Deno.test("histogram percentiles: answers within a bucket of the exact order statistic", () => {
  const h = new Histogram();
  for (let i = 1; i <= 10_000; i++) h.recordMs(i / 100); // 0.01 ms .. 100 ms, uniform
  const s = h.summary();
  const near = (got: number | null, want: number) =>
    assert(got !== null && got >= want && got <= want * 1.01, `${got} vs ${want}`);
  near(s.p50_ms, 50);
  near(s.p99_ms, 99);
  near(s.p999_ms, 99.9);
  assertEquals(s.max_ms, 100);
  assertEquals(h.count, 10_000);
});

Deno.test("histogram: one slow request shows in the tail, not in the median", () => {
  const h = new Histogram();
  for (let i = 0; i < 999; i++) h.recordMs(1);
  h.recordMs(2000);
  const s = h.summary();
  assertEquals(s.p50_ms, 1);
  assertEquals(s.p99_ms, 1);
  assert(s.p999_ms === 1, `p99.9 is the 999th of 1000 values: ${s.p999_ms}`);
  assertEquals(s.max_ms, 2000);
  assertEquals(new Histogram().summary().p50_ms, null);
});
