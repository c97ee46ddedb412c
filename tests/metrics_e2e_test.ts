/**
 * /metrics end to end: a three-member etcd-ts cluster with `--listen-metrics-urls` serves its metrics on
 * the client and the metrics URLs, `promtool` accepts them, a real Prometheus scrapes the members and
 * finds one leader, and the metrics carry the names, types, help strings and labels of the real etcd
 * 3.4.23 (run beside it when installed).
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { Cluster } from "./cluster.ts";
import { ctlOk, freePorts, HAVE_ETCDCTL, implementations, Member, waitUntil } from "./helpers.ts";
import { families, type Family, HAVE_PROMTOOL, promtool, sample } from "../server/metrics/test_util.ts";

const HOSTS = ["127.0.2.40", "127.0.2.41", "127.0.2.42"];
const PROMETHEUS_HOST = "127.0.2.45";
const ETCD_HOST = "127.0.2.46";
const EXTENSIVE_HOST = "127.0.2.47";

function installed(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

const HAVE_PROMETHEUS = installed("/usr/bin/prometheus");
const HAVE_ETCD = implementations().includes("etcd");

/** The metrics dashboards and alerts use, which etcd-ts serves as etcd 3.4.23 does. */
const COMPARED = [
  "etcd_server_has_leader",
  "etcd_server_is_leader",
  "etcd_server_is_learner",
  "etcd_server_leader_changes_seen_total",
  "etcd_server_proposals_committed_total",
  "etcd_server_proposals_applied_total",
  "etcd_server_proposals_pending",
  "etcd_server_proposals_failed_total",
  "etcd_server_slow_apply_total",
  "etcd_server_heartbeat_send_failures_total",
  "etcd_server_quota_backend_bytes",
  "etcd_server_id",
  "etcd_server_version",
  "etcd_cluster_version",
  "etcd_disk_wal_fsync_duration_seconds",
  "etcd_disk_backend_commit_duration_seconds",
  "etcd_mvcc_db_total_size_in_bytes",
  "etcd_mvcc_db_total_size_in_use_in_bytes",
  "etcd_debugging_mvcc_keys_total",
  "etcd_debugging_mvcc_watcher_total",
  "etcd_debugging_mvcc_current_revision",
  "etcd_debugging_mvcc_compact_revision",
  "etcd_mvcc_put_total",
  "etcd_mvcc_range_total",
  "etcd_mvcc_delete_total",
  "etcd_mvcc_txn_total",
  "grpc_server_started_total",
  "grpc_server_handled_total",
  "grpc_server_msg_received_total",
  "grpc_server_msg_sent_total",
  "process_cpu_seconds_total",
  "process_resident_memory_bytes",
  "process_open_fds",
  "process_max_fds",
  "process_start_time_seconds",
];

/** The peer metrics, which a single real etcd does not show: as etcd 3.4.23's rafthttp defines them. */
const PEER_FAMILIES: Record<string, Family> = {
  etcd_network_peer_round_trip_time_seconds: {
    type: "histogram",
    help: "Round-Trip-Time histogram between peers.",
    labels: new Set(["To"]),
  },
  etcd_network_peer_sent_bytes_total: {
    type: "counter",
    help: "The total number of bytes sent to peers.",
    labels: new Set(["To"]),
  },
  etcd_network_peer_received_bytes_total: {
    type: "counter",
    help: "The total number of bytes received from peers.",
    labels: new Set(["From"]),
  },
};

/**
 * What promtool's linter may say about etcd-ts's output: only about names etcd itself uses (gauges named
 * `_total`).
 */
const ACCEPTED_LINT =
  /^(etcd_debugging_mvcc_keys_total|etcd_debugging_mvcc_watcher_total|etcd_server_proposals_applied_total|etcd_server_proposals_committed_total) non-counter metrics should not have "_total" suffix$/;

async function scrape(url: string): Promise<{ contentType: string | null; text: string }> {
  const res = await fetch(url);
  assertEquals(res.status, 200, url);
  return { contentType: res.headers.get("content-type"), text: await res.text() };
}

/** The `le` bounds of a histogram's buckets. */
function bucketBounds(text: string, name: string): string[] {
  const out = new Set<string>();
  for (const [, le] of text.matchAll(new RegExp(`^${name}_bucket\\{[^}]*le="([^"]+)"`, "gm"))) out.add(le);
  return [...out];
}

/** One instant query of Prometheus's HTTP API: the samples' label sets and values. */
async function query(base: string, q: string): Promise<{ metric: Record<string, string>; value: number }[]> {
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = await res.json() as {
    status: string;
    data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
  };
  if (body.status !== "success" || body.data === undefined) return [];
  return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

Deno.test({
  name: "metrics e2e: a three-member cluster serves /metrics on client and metrics URLs; promtool and " +
    `a real Prometheus read them${HAVE_PROMTOOL ? "" : " (promtool checks skipped: no promtool)"}${
      HAVE_PROMETHEUS ? "" : " (Prometheus scrape skipped: no prometheus)"
    }`,
  ignore: !HAVE_ETCDCTL,
  async fn() {
    const metricsPorts = HOSTS.map((h) => freePorts(h, 1)[0]);
    const metricsUrls = HOSTS.map((h, i) => `http://${h}:${metricsPorts[i]}`);
    const cluster = await Cluster.start({
      impl: "etcd-ts",
      hosts: HOSTS,
      memberArgs: (_name, host) => ["--listen-metrics-urls", metricsUrls[HOSTS.indexOf(host)]],
    });
    const tmp = await Deno.makeTempDir({ prefix: "etcd-ts-prometheus-" });
    let prometheus: Deno.ChildProcess | undefined;
    try {
      await ctlOk(cluster.endpoints(), ["put", "greeting", "hello"]);
      for (let i = 0; i < HOSTS.length; i++) {
        const client = await scrape(`${cluster.members[i].clientUrl}/metrics`);
        const listener = await scrape(`${metricsUrls[i]}/metrics`);
        for (const s of [client, listener]) {
          assertEquals(s.contentType, "text/plain; version=0.0.4; charset=utf-8");
          assertEquals(sample(s.text, "etcd_server_has_leader"), 1);
        }
        // the same member behind both
        const id = [...client.text.matchAll(/^etcd_server_id\{server_id="([0-9a-f]+)"\} 1$/gm)].map((m) =>
          m[1]
        );
        assertEquals(id.length, 1);
        assert(listener.text.includes(`etcd_server_id{server_id="${id[0]}"} 1`));
        if (HAVE_PROMTOOL) {
          const { code, problems } = await promtool(client.text);
          assert(code === 0 || code === 3, `promtool exited ${code}: ${problems.join("\n")}`);
          for (const p of problems) assert(ACCEPTED_LINT.test(p), `promtool: ${p}`);
        }
      }
      // the put reached every member's store
      await waitUntil(
        async () => {
          const texts = await Promise.all(metricsUrls.map(async (u) => (await scrape(`${u}/metrics`)).text));
          return texts.every((t) => sample(t, "etcd_debugging_mvcc_keys_total") === 1);
        },
        10_000,
        () => "every member to hold the key",
      );
      // every member probes its peers and reports the round trips and the stream bytes by peer
      await waitUntil(
        async () => {
          const t = (await scrape(`${metricsUrls[0]}/metrics`)).text;
          const rtt = [
            ...t.matchAll(/^etcd_network_peer_round_trip_time_seconds_count\{To="[0-9a-f]+"\} (\d+)$/gm),
          ];
          return rtt.length === 2 && rtt.every((m) => Number(m[1]) > 0);
        },
        15_000,
        () => "round trips to both peers",
      );
      const f = families((await scrape(`${metricsUrls[0]}/metrics`)).text);
      for (const [name, want] of Object.entries(PEER_FAMILIES)) assertEquals(f.get(name), want, name);

      if (HAVE_PROMETHEUS) {
        const [port] = freePorts(PROMETHEUS_HOST, 1);
        const config = join(tmp, "prometheus.yml");
        await Deno.writeTextFile(
          config,
          [
            "global:",
            "  scrape_interval: 1s",
            "  evaluation_interval: 1s",
            "scrape_configs:",
            "  - job_name: etcd",
            "    static_configs:",
            `      - targets: [${metricsUrls.map((u) => JSON.stringify(new URL(u).host)).join(", ")}]`,
            "",
          ].join("\n"),
        );
        prometheus = new Deno.Command("/usr/bin/prometheus", {
          args: [
            `--config.file=${config}`,
            `--storage.tsdb.path=${join(tmp, "data")}`,
            `--web.listen-address=${PROMETHEUS_HOST}:${port}`,
          ],
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).spawn();
        const base = `http://${PROMETHEUS_HOST}:${port}`;
        let last = "";
        await waitUntil(
          async () => {
            try {
              const leaders = await query(base, "etcd_server_has_leader");
              const sum = await query(base, "sum(etcd_server_is_leader)");
              last = JSON.stringify({ leaders, sum });
              return leaders.length === 3 && leaders.every((r) => r.value === 1) && sum.length === 1 &&
                sum[0].value === 1;
            } catch (err) {
              last = String(err);
              return false;
            }
          },
          30_000,
          () => `Prometheus to see three members with one leader: ${last}`,
          500,
        );
      }
    } finally {
      if (prometheus !== undefined) {
        prometheus.kill("SIGTERM");
        await prometheus.status;
      }
      await cluster.destroy();
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "metrics e2e: the metrics dashboards use have etcd 3.4.23's types, help and labels" +
    (HAVE_ETCD ? "" : " (skipped: the real etcd is not installed)"),
  ignore: !HAVE_ETCDCTL || !HAVE_ETCD,
  async fn() {
    const ours = await Member.start({
      impl: "etcd-ts",
      host: EXTENSIVE_HOST,
      args: ["--metrics", "extensive"],
    });
    const theirs = await Member.start({ impl: "etcd", host: ETCD_HOST, args: ["--metrics", "extensive"] });
    try {
      for (const m of [ours, theirs]) {
        await ctlOk(m.endpoint, ["put", "k", "v"]);
        await ctlOk(m.endpoint, ["get", "k"]);
      }
      const a = (await scrape(`http://${ours.endpoint}/metrics`)).text;
      const b = (await scrape(`http://${theirs.endpoint}/metrics`)).text;
      const fa = families(a);
      const fb = families(b);
      for (const name of [...COMPARED, "grpc_server_handling_seconds"]) {
        assert(fb.has(name), `the real etcd serves ${name}`);
        assertEquals(fa.get(name), fb.get(name), name);
      }
      for (
        const name of ["etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds"]
      ) {
        assertEquals(bucketBounds(a, name), bucketBounds(b, name), `${name} buckets`);
      }
      assertEquals(
        bucketBounds(a, "grpc_server_handling_seconds"),
        bucketBounds(b, "grpc_server_handling_seconds"),
        "grpc_server_handling_seconds buckets",
      );
      // the same calls, counted the same way
      const put = { grpc_method: "Put", grpc_code: "OK" };
      assertEquals(sample(a, "grpc_server_handled_total", put), sample(b, "grpc_server_handled_total", put));
      assertEquals(sample(a, "etcd_mvcc_put_total"), sample(b, "etcd_mvcc_put_total"));
      assertEquals(sample(a, "etcd_mvcc_range_total"), sample(b, "etcd_mvcc_range_total"));
    } finally {
      await ours.destroy();
      await theirs.destroy();
    }
  },
});

Deno.test({
  name: "metrics e2e: --metrics basic serves no gRPC handling histograms",
  ignore: !HAVE_ETCDCTL,
  async fn() {
    const m = await Member.start({ impl: "etcd-ts", host: "127.0.2.48", args: ["--metrics", "basic"] });
    try {
      await ctlOk(m.endpoint, ["put", "k", "v"]);
      const text = (await scrape(`http://${m.endpoint}/metrics`)).text;
      assert(!text.includes("grpc_server_handling_seconds"));
      assertEquals(sample(text, "grpc_server_handled_total", { grpc_method: "Put", grpc_code: "OK" }), 1);
    } finally {
      await m.destroy();
    }
  },
});
