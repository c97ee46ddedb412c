// Load figures from two scrapes of etcd's /metrics (Prometheus text): request rates and WAL fsync latency
// over the interval between them. A plain script shared by the page (as globalThis.etcdUiRates) and its
// unit test.
"use strict";

(() => {
  const WRITE_COUNTERS = ["etcd_mvcc_put_total", "etcd_mvcc_delete_total", "etcd_mvcc_txn_total"];
  const READ_COUNTERS = ["etcd_mvcc_range_total"];
  const FSYNC = "etcd_disk_wal_fsync_duration_seconds";

  /**
   * The samples of a Prometheus text exposition taken at `at` (ms): each metric name's values summed over
   * its label sets, and the fsync histogram's cumulative bucket counts by upper bound.
   */
  function parseMetrics(text, at) {
    const sums = new Map();
    const buckets = new Map();
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const value = Number(m[3]);
      if (!Number.isFinite(value)) continue;
      const [, name, labels] = m;
      sums.set(name, (sums.get(name) ?? 0) + value);
      if (name === `${FSYNC}_bucket`) {
        const le = /le="([^"]*)"/.exec(labels ?? "")?.[1];
        if (le !== undefined) {
          const bound = le === "+Inf" ? Infinity : Number(le);
          buckets.set(bound, (buckets.get(bound) ?? 0) + value);
        }
      }
    }
    return { sums, buckets, at };
  }

  /**
   * The `q` quantile of the histogram's observations between two scrapes, interpolated linearly within the
   * bucket it falls in (as Prometheus' histogram_quantile); the highest finite bound when it falls in +Inf;
   * null without observations.
   */
  function quantile(q, prev, cur) {
    const bounds = [...cur.buckets.keys()].sort((a, b) => a - b);
    const counts = bounds.map((b) => (cur.buckets.get(b) ?? 0) - (prev.buckets.get(b) ?? 0));
    const total = counts[counts.length - 1] ?? 0;
    if (total <= 0) return null;
    const rank = q * total;
    let lower = 0;
    let below = 0;
    for (let i = 0; i < bounds.length; i++) {
      if (counts[i] >= rank) {
        if (bounds[i] === Infinity) return lower;
        return lower + (bounds[i] - lower) * ((rank - below) / (counts[i] - below));
      }
      lower = bounds[i];
      below = counts[i];
    }
    return lower;
  }

  function delta(prev, cur, names) {
    let d = 0;
    for (const n of names) d += (cur.sums.get(n) ?? 0) - (prev.sums.get(n) ?? 0);
    return d;
  }

  /**
   * Writes/s (puts, deletes and txns), reads/s (ranges), and the mean and p99 WAL fsync latency in ms
   * (null when nothing was synced) between two scrapes; null when the interval says nothing: no time
   * passed, or a counter went down (the member restarted).
   */
  function interval(prev, cur) {
    const seconds = (cur.at - prev.at) / 1000;
    const writes = delta(prev, cur, WRITE_COUNTERS);
    const reads = delta(prev, cur, READ_COUNTERS);
    const fsyncs = delta(prev, cur, [`${FSYNC}_count`]);
    if (seconds <= 0 || writes < 0 || reads < 0 || fsyncs < 0) return null;
    return {
      seconds,
      writesPerSecond: writes / seconds,
      readsPerSecond: reads / seconds,
      fsyncMeanMs: fsyncs > 0 ? (delta(prev, cur, [`${FSYNC}_sum`]) / fsyncs) * 1000 : null,
      fsyncP99Ms: fsyncs > 0 ? quantile(0.99, prev, cur) * 1000 : null,
    };
  }

  globalThis.etcdUiRates = { parseMetrics, quantile, interval };
})();
