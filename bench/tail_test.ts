import { assert, assertEquals } from "../tests/assert.ts";
import { analyze, type TraceRecord } from "./tail.ts";

/** 10 clients, each request 10 ms, for 8 s; `slow(start, client)` adds to one request's latency. */
function run(slow: (start: number, client: number) => number): TraceRecord[] {
  const trace: TraceRecord[] = [];
  for (let c = 0; c < 10; c++) {
    for (let t = c * 0.7; t < 8000;) {
      const ms = 10 + slow(t, c);
      trace.push([t, ms, c]);
      t += ms;
    }
  }
  return trace;
}

Deno.test("tail: a stall that holds every client shows as one bucket, and as slow requests in a stall", () => {
  // everything in flight at 4 s waits 150 ms more
  const r = analyze(run((t) => t >= 3990 && t < 4000 ? 150 : 0));
  assertEquals(r.slow, 10);
  assertEquals(r.slowInStalls, 10);
  assertEquals(r.max, 160);
  const worst = r.buckets.findIndex((b) => b.slow > 0);
  assertEquals(worst, Math.floor(4150 / 250));
  assertEquals(r.buckets[worst].slow, 10);
  assertEquals(r.buckets.reduce((n, b) => n + b.answered, 0), r.ops);
});

Deno.test("tail: slow requests spread over the run are not a stall", () => {
  // one request in 300 is slow, each at its own time
  let n = 0;
  const r = analyze(run(() => ++n % 300 === 0 ? 40 : 0));
  assert(r.slow > 0);
  assertEquals(r.slowInStalls, 0);
  assertEquals(r.p50, 10);
});

Deno.test("tail: the warm-up is left out of the steady figures", () => {
  const r = analyze(run((t) => t < 1000 ? 30 : 0), 1000);
  assertEquals(r.p99, 40);
  assertEquals([r.steady.p50, r.steady.p99, r.steady.max], [10, 10, 10]);
  assert(r.steady.ops < r.ops);
});
