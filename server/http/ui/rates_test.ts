import { assert, assertEquals } from "../../../tests/assert.ts";
import "./rates.js";

interface Scrape {
  sums: Map<string, number>;
  buckets: Map<number, number>;
  at: number;
}
interface Interval {
  seconds: number;
  writesPerSecond: number;
  readsPerSecond: number;
  fsyncMeanMs: number | null;
  fsyncP99Ms: number | null;
}
const rates = (globalThis as unknown as {
  etcdUiRates: {
    parseMetrics(text: string, at: number): Scrape;
    quantile(q: number, prev: Scrape, cur: Scrape): number | null;
    interval(prev: Scrape, cur: Scrape): Interval | null;
  };
}).etcdUiRates;

/** An exposition as etcd writes it, with fsync observations per bucket (le → cumulative count). */
function exposition(
  c: { put: number; del: number; txn: number; range: number },
  fsync: [string, number][],
  sum: number,
): string {
  const count = fsync[fsync.length - 1][1];
  return [
    "# HELP etcd_mvcc_put_total Total number of puts seen by this member.",
    "# TYPE etcd_mvcc_put_total counter",
    `etcd_mvcc_put_total ${c.put}`,
    `etcd_mvcc_delete_total ${c.del}`,
    `etcd_mvcc_txn_total ${c.txn}`,
    `etcd_mvcc_range_total ${c.range}`,
    "# TYPE etcd_disk_wal_fsync_duration_seconds histogram",
    ...fsync.map(([le, n]) => `etcd_disk_wal_fsync_duration_seconds_bucket{le="${le}"} ${n}`),
    `etcd_disk_wal_fsync_duration_seconds_sum ${sum}`,
    `etcd_disk_wal_fsync_duration_seconds_count ${count}`,
    'etcd_grpc_requests{type="a"} 2',
    'etcd_grpc_requests{type="b"} 3',
    "",
  ].join("\n");
}

const LES = ["0.001", "0.002", "0.004", "0.008", "+Inf"];
const buckets = (counts: number[]): [string, number][] => LES.map((le, i) => [le, counts[i]]);

Deno.test("ui rates: a metric's label sets are summed, buckets kept by bound", () => {
  const s = rates.parseMetrics(
    exposition({ put: 1, del: 2, txn: 3, range: 4 }, buckets([1, 2, 3, 4, 5]), 0.5),
    7,
  );
  assertEquals(s.sums.get("etcd_grpc_requests"), 5);
  assertEquals(s.sums.get("etcd_mvcc_range_total"), 4);
  assertEquals(s.buckets.get(0.002), 2);
  assertEquals(s.buckets.get(Infinity), 5);
  assertEquals(s.at, 7);
});

Deno.test("ui rates: writes, reads, fsync mean and p99 over the interval between two scrapes", () => {
  const a = rates.parseMetrics(
    exposition({ put: 10, del: 0, txn: 5, range: 100 }, buckets([0, 0, 0, 0, 0]), 0),
    0,
  );
  // 100 fsyncs since: 90 under 1 ms, 9 in (1, 2] ms, 1 in (2, 4] ms; 0.12 s in all
  const b = rates.parseMetrics(
    exposition({ put: 30, del: 4, txn: 7, range: 140 }, buckets([90, 99, 100, 100, 100]), 0.12),
    2000,
  );
  const r = rates.interval(a, b)!;
  assertEquals(r.seconds, 2);
  assertEquals(r.writesPerSecond, (20 + 4 + 2) / 2);
  assertEquals(r.readsPerSecond, 20);
  assert(Math.abs(r.fsyncMeanMs! - 1.2) < 1e-9, String(r.fsyncMeanMs));
  // the 99th of 100 observations is the last of the (1, 2] ms bucket
  assert(Math.abs(r.fsyncP99Ms! - 2) < 1e-9, String(r.fsyncP99Ms));
  // the median falls at 50/90 of the first bucket
  assert(Math.abs(rates.quantile(0.5, a, b)! - 0.001 * 50 / 90) < 1e-12);
});

Deno.test("ui rates: only the increase counts; no fsync gives no latency; +Inf gives the top bound", () => {
  const a = rates.parseMetrics(
    exposition({ put: 1, del: 1, txn: 1, range: 1 }, buckets([50, 60, 70, 80, 90]), 1),
    0,
  );
  const idle = rates.parseMetrics(
    exposition({ put: 1, del: 1, txn: 1, range: 1 }, buckets([50, 60, 70, 80, 90]), 1),
    1000,
  );
  const r = rates.interval(a, idle)!;
  assertEquals([r.writesPerSecond, r.readsPerSecond, r.fsyncMeanMs, r.fsyncP99Ms], [0, 0, null, null]);
  const slow = rates.parseMetrics(
    exposition({ put: 1, del: 1, txn: 1, range: 1 }, buckets([50, 60, 70, 80, 100]), 2),
    1000,
  );
  assertEquals(rates.quantile(0.99, a, slow), 0.008);
});

Deno.test("ui rates: an interval where a counter went down (a restart) or no time passed is dropped", () => {
  const a = rates.parseMetrics(
    exposition({ put: 10, del: 0, txn: 0, range: 10 }, buckets([1, 1, 1, 1, 1]), 0),
    0,
  );
  const restarted = rates.parseMetrics(
    exposition({ put: 2, del: 0, txn: 0, range: 12 }, buckets([1, 1, 1, 1, 1]), 0),
    1000,
  );
  assertEquals(rates.interval(a, restarted), null);
  assertEquals(rates.interval(a, { ...a }), null);
});
