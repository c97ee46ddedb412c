/**
 * Where a run's tail comes from: reads the traces `bench/load.mjs --trace FILE` writes (one
 * `[start ms, latency ms, client]` per answered request) and tells whether the slowest requests are
 * spread over the run or bunched in stalls, and when.
 *
 *     node bench/load.mjs --endpoints 127.0.0.1:2379 --workload put --clients 100 --conns 10 \
 *       --duration-s 8 --trace /tmp/put.json
 *     deno run -A bench/tail.ts [--skip-ms 1000] [--bucket-ms 250] /tmp/put.json [more traces]
 *
 * For each trace: the percentiles of the whole run and of the run after its first `--skip-ms` (the
 * client's own warm-up: a fresh Node process answers its first second slowly whatever the server), the
 * share of the slowest 1% that finished in stalls (many requests of several connections finishing within
 * a few milliseconds of each other), and one line of `--bucket-ms` buckets, each
 * `index:answered/slow/max ms`, where slow counts requests above the whole run's p99.
 *
 * @module
 */
import { quantileOfSorted } from "./stats.ts";

/** One answered request: when it started (ms since the run began), how long it took, which client. */
export type TraceRecord = [startMs: number, latencyMs: number, client: number];

/** What {@link analyze} finds in one trace. */
export interface TailReport {
  ops: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /** The same after the first `skipMs`. */
  steady: { ops: number; p50: number; p99: number; p999: number; max: number };
  /** Requests above the run's p99 (at most 1% of them). */
  slow: number;
  /** Of those, how many finished within 3 ms of 9 or more other slow ones (a stall, not bad luck). */
  slowInStalls: number;
  /** Per bucket of `bucketMs` by finishing time: answered, slow, longest latency. */
  buckets: { answered: number; slow: number; max: number }[];
}

/** p50, p99, p99.9 and max of `sorted` (ascending); zeros when empty. */
function percentiles(sorted: number[]): { p50: number; p99: number; p999: number; max: number } {
  const at = (q: number) => sorted.length === 0 ? 0 : quantileOfSorted(sorted, q);
  return { p50: at(0.5), p99: at(0.99), p999: at(0.999), max: at(1) };
}

/** The tail of one trace; `skipMs` of warm-up left out of `steady`, buckets of `bucketMs`. */
export function analyze(trace: TraceRecord[], skipMs = 1000, bucketMs = 250): TailReport {
  const all = percentiles(trace.map((r) => r[1]).sort((a, b) => a - b));
  const late = trace.filter((r) => r[0] >= skipMs).map((r) => r[1]).sort((a, b) => a - b);
  const threshold = all.p99;
  const ends = trace.filter((r) => r[1] > threshold).map((r) => r[0] + r[1]).sort((a, b) => a - b);
  // a stall: a run of slow requests whose ends are at most 3 ms apart, 10 or more long
  let slowInStalls = 0;
  for (let i = 0; i < ends.length;) {
    let j = i + 1;
    while (j < ends.length && ends[j] - ends[j - 1] <= 3) j++;
    if (j - i >= 10) slowInStalls += j - i;
    i = j;
  }
  const buckets: TailReport["buckets"] = [];
  for (const [start, ms] of trace) {
    const b = Math.floor((start + ms) / bucketMs);
    while (buckets.length <= b) buckets.push({ answered: 0, slow: 0, max: 0 });
    const bucket = buckets[b];
    bucket.answered++;
    if (ms > threshold) bucket.slow++;
    if (ms > bucket.max) bucket.max = ms;
  }
  return {
    ops: trace.length,
    ...all,
    steady: { ops: late.length, ...percentiles(late) },
    slow: ends.length,
    slowInStalls,
    buckets,
  };
}

if (import.meta.main) {
  const args = [...Deno.args];
  const option = (name: string, fallback: number): number => {
    const i = args.indexOf(name);
    if (i < 0) return fallback;
    const v = Number(args[i + 1]);
    args.splice(i, 2);
    if (!Number.isFinite(v) || v < 0) throw new Error(`${name} needs a number of milliseconds`);
    return v;
  };
  const skipMs = option("--skip-ms", 1000);
  const bucketMs = option("--bucket-ms", 250);
  if (args.length === 0) {
    console.error("usage: deno run -A bench/tail.ts [--skip-ms 1000] [--bucket-ms 250] trace.json...");
    Deno.exit(2);
  }
  const f = (x: number) => x.toFixed(1);
  for (const file of args) {
    const r = analyze(JSON.parse(await Deno.readTextFile(file)), skipMs, bucketMs);
    console.log(
      `${file}: ${r.ops} ops; p50 ${f(r.p50)} p99 ${f(r.p99)} p99.9 ${f(r.p999)} max ${f(r.max)} ms; ` +
        `after ${skipMs} ms: p50 ${f(r.steady.p50)} p99 ${f(r.steady.p99)} p99.9 ${f(r.steady.p999)} ` +
        `max ${f(r.steady.max)} ms; slowest 1%: ${r.slow}, ${r.slowInStalls} of them in stalls`,
    );
    console.log(
      "  " + r.buckets.map((b, i) => `${i}:${b.answered}/${b.slow}/${Math.round(b.max)}`).join(" "),
    );
  }
}
