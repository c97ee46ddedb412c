/**
 * The benchmark's load generator (bench/load.mjs, run under Node as `deno task bench` runs it), briefly,
 * against a one-member etcd-ts: it must report the operations it did, and the store must show them (the
 * revision moves by one per put). Counts are bounded and no figure of speed is judged.
 *
 * @module
 */
import { assert, assertEquals } from "./assert.ts";
import { ctlOk, HAVE_ETCDCTL, implementations, Member } from "./helpers.ts";
import { analyze, type TraceRecord } from "../bench/tail.ts";

const LOAD = new URL("../bench/load.mjs", import.meta.url).pathname;
const H2_BODY = new URL("../bench/h2_body.mjs", import.meta.url).pathname;
const COMPARE = new URL("../bench/compare.ts", import.meta.url).pathname;
function runs(cmd: string, args: string[]): boolean {
  try {
    return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}
const HAVE_NODE = runs("node", ["--version"]);
const HAVE_H2LOAD = runs("h2load", ["--version"]);
const HAVE_ETCD = implementations().includes("etcd");
const CAN_COMPARE = HAVE_NODE && HAVE_H2LOAD && HAVE_ETCD && HAVE_ETCDCTL;

/** Runs bench/compare.ts with `args` (killed after 3 minutes); resolves to its exit code and stdout. */
async function compare(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", COMPARE, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 180_000);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

interface Report {
  workload: string;
  ops: number;
  ops_per_s: number;
  errors: number;
  p50_ms: number | null;
  p99_ms: number | null;
  p999_ms: number | null;
  max_ms: number | null;
  late_p99_ms?: number | null;
  from_send_p99_ms?: number | null;
  first_revision: number;
  last_revision: number;
  error_kinds?: Record<string, number>;
}

/** Runs the generator to completion (killed after 20 s at most) and parses its JSON line. */
async function load(endpoint: string, args: string[]): Promise<Report> {
  const child = new Deno.Command("node", {
    args: [LOAD, "--endpoints", endpoint, "--duration-s", "2", "--json", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const out = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder().decode(out.stdout).trim();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(text.split("\n").pop()!) as Report;
  assertEquals(r.errors, 0, JSON.stringify(r.error_kinds));
  return r;
}

async function revision(endpoint: string): Promise<number> {
  const out = await ctlOk(endpoint, ["get", "probe", "-w", "json"]);
  return Number(/"revision":(\d+)/.exec(out)![1]);
}

/** Latency percentiles come in order and within the run's maximum. */
function assertOrderedLatencies(r: Report): void {
  assert(
    r.p50_ms !== null && r.p99_ms !== null && r.p999_ms !== null && r.max_ms !== null,
    JSON.stringify(r),
  );
  assert(r.p50_ms <= r.p99_ms && r.p99_ms <= r.p999_ms && r.p999_ms <= r.max_ms, JSON.stringify(r));
}

Deno.test({
  name: HAVE_NODE
    ? "bench/load.mjs reports the operations it did against a one-member etcd-ts"
    : "bench/load.mjs against etcd-ts (skipped: node is not installed)",
  ignore: !HAVE_NODE || !HAVE_ETCDCTL,
  fn: async (t) => {
    const m = await Member.start({ impl: "etcd-ts", host: "127.0.2.70" });
    try {
      await t.step("200 closed-loop puts move the revision by 200", async () => {
        const before = await revision(m.endpoint);
        const r = await load(m.endpoint, [
          "--workload",
          "put",
          "--total",
          "200",
          "--clients",
          "10",
          "--conns",
          "2",
        ]);
        assertEquals(r.workload, "put");
        assertEquals(r.ops, 200);
        assertEquals(await revision(m.endpoint) - before, 200);
        assertEquals(r.last_revision, before + 200);
        assertOrderedLatencies(r);
        // a closed loop sends each request when the last is answered: it has no lateness to report
        assertEquals(r.late_p99_ms, undefined);
        assertEquals(r.from_send_p99_ms, undefined);
      });
      await t.step("--trace keeps every answered request, and bench/tail.ts reads it", async () => {
        const file = await Deno.makeTempFile({ suffix: ".json" });
        try {
          const r = await load(m.endpoint, [
            "--workload",
            "put",
            "--total",
            "100",
            "--clients",
            "4",
            "--conns",
            "2",
            "--trace",
            file,
          ]);
          const trace: TraceRecord[] = JSON.parse(await Deno.readTextFile(file));
          assertEquals(trace.length, r.ops);
          assertEquals(new Set(trace.map((x) => x[2])), new Set([0, 1, 2, 3]));
          for (const c of [0, 1, 2, 3]) {
            // one client's requests follow each other: each starts after the one before was answered
            const mine = trace.filter((x) => x[2] === c);
            for (let i = 1; i < mine.length; i++) {
              assert(mine[i][0] >= mine[i - 1][0] + mine[i - 1][1] - 0.01, `client ${c}, request ${i}`);
            }
          }
          const report = analyze(trace);
          assertEquals(report.ops, 100);
          assertEquals(report.buckets.reduce((n, b) => n + b.answered, 0), 100);
        } finally {
          await Deno.remove(file);
        }
      });
      await t.step("an open loop of 60 puts at 100/s does 60 puts", async () => {
        const before = await revision(m.endpoint);
        const r = await load(m.endpoint, [
          "--workload",
          "put",
          "--rate",
          "100",
          "--total",
          "60",
          "--conns",
          "2",
        ]);
        assertEquals(r.ops, 60);
        assertEquals(await revision(m.endpoint) - before, 60);
        assertOrderedLatencies(r);
        // each put's time from going out is part of its time from falling due
        assert(typeof r.late_p99_ms === "number" && r.late_p99_ms >= 0, JSON.stringify(r));
        assert(typeof r.from_send_p99_ms === "number" && r.from_send_p99_ms > 0, JSON.stringify(r));
        assert(r.from_send_p99_ms <= r.p99_ms!, JSON.stringify(r));
      });
      await t.step("50 transactions each put once", async () => {
        const before = await revision(m.endpoint);
        const r = await load(m.endpoint, ["--workload", "txn", "--total", "50", "--clients", "5"]);
        assertEquals(r.ops, 50);
        assertEquals(await revision(m.endpoint) - before, 50);
      });
      await t.step(
        "serializable ranges read without writing (after a prefill of the key space)",
        async () => {
          const before = await revision(m.endpoint);
          const r = await load(m.endpoint, [
            "--workload",
            "range-ser",
            "--key-space",
            "30",
            "--total",
            "100",
          ]);
          assertEquals(r.ops, 100);
          assertEquals(await revision(m.endpoint) - before, 30); // the prefill's puts only
        },
      );
      await t.step("3 watchers see each of 20 puts: 60 events", async () => {
        const r = await load(m.endpoint, ["--workload", "watch", "--watchers", "3", "--total", "20"]);
        assertEquals(r.ops, 60);
      });
      await t.step("20 lease grant+revoke pairs leave no lease behind", async () => {
        const r = await load(m.endpoint, ["--workload", "lease", "--total", "20", "--clients", "4"]);
        assertEquals(r.ops, 20);
        assertEquals((await ctlOk(m.endpoint, ["lease", "list"])).trim(), "found 0 leases");
      });
      await t.step("an unknown workload is refused", async () => {
        const out = await new Deno.Command("node", {
          args: [LOAD, "--endpoints", m.endpoint, "--workload", "nope"],
          stdout: "piped",
          stderr: "piped",
        }).output();
        assertEquals(out.code, 2);
        assert(new TextDecoder().decode(out.stderr).includes("unknown workload nope"));
      });
      await t.step("h2_body.mjs frames one PutRequest for h2load", async () => {
        const out = await new Deno.Command("node", { args: [H2_BODY, "put", "k1", "3"], stdout: "piped" })
          .output();
        // flag 0, length 9, then key=1 "k1" and value=2 "xxx"
        assertEquals([...out.stdout], [0, 0, 0, 0, 9, 0x0a, 2, 0x6b, 0x31, 0x12, 3, 0x78, 0x78, 0x78]);
      });
    } finally {
      await m.destroy();
    }
  },
});

Deno.test({
  name: CAN_COMPARE
    ? "bench/compare.ts prints put1 and put-h2 rows for etcd and etcd-ts side by side (2 rounds of 1 s per row)"
    : "bench/compare.ts side by side (skipped: needs node, h2load, the real etcd and etcdctl)",
  ignore: !CAN_COMPARE,
  fn: async () => {
    const r = await compare([
      "--host",
      "127.0.2.73",
      "--seconds",
      "1",
      "--rounds",
      "2",
      "--workloads",
      "put1 put-h2",
    ]);
    assertEquals(r.code, 0, r.stderr);
    const lines = r.stdout.split("\n");
    assertEquals(lines[0].split(/\s+/).slice(0, 4), ["workload", "etcd_ops/s", "ts_ops/s", "ratio"]);
    for (const [i, w] of [[1, "put1"], [2, "put-h2"]] as const) {
      const cells = lines[i].split(/\s+/);
      assertEquals(cells[0], w);
      assert(/^\d+$/.test(cells[1]) && /^\d+$/.test(cells[2]), lines[i]); // no DOWN, FAILED, INVALID
      assertEquals(cells[3], (Number(cells[2]) / Number(cells[1])).toFixed(2));
      assert(/^\d+$/.test(cells[8]) && /^\d+$/.test(cells[9]), `resident memory: ${lines[i]}`);
    }
    // the spread: each round's ratio under the medians
    const spread = lines.indexOf("(medians of 2 rounds; the ratio of each round:)");
    assert(spread > 0, r.stdout);
    for (const [k, w] of [[1, "put1"], [2, "put-h2"]] as const) {
      assert(new RegExp(`^${w} +\\d+\\.\\d\\d \\d+\\.\\d\\d$`).test(lines[spread + k]), r.stdout);
    }
    assert(lines.some((l) => l === "members=1 seconds=1 tls=0 rounds=2"), r.stdout);
  },
});

Deno.test({
  name: CAN_COMPARE
    ? "bench/compare.ts --latency prints closed- and open-loop percentiles for both servers (2 rounds, warmed)"
    : "bench/compare.ts --latency (skipped: needs node, the real etcd and etcdctl)",
  ignore: !CAN_COMPARE,
  fn: async () => {
    const r = await compare([
      "--host",
      "127.0.2.74",
      "--latency",
      "--rate",
      "100",
      "--seconds",
      "1",
      "--rounds",
      "2",
      "--warmup",
      "1",
    ]);
    assertEquals(r.code, 0, r.stderr);
    // each fresh cluster was warmed first: one uncounted second of the open loop, without errors
    const warmed = r.stderr.split("\n").filter((l) => / warm-up: \d+ puts in 1 s, 0 errors$/.test(l));
    assertEquals(warmed.length, 4, r.stderr);
    const lines = r.stdout.split("\n");
    const rows = lines.slice(1, 5).map((l) => l.split(/\s+/));
    assertEquals(rows.map((c) => c.slice(0, 2).join(" ")), [
      "closed-1 etcd",
      "closed-1 etcd-ts",
      "open-100/s etcd",
      "open-100/s etcd-ts",
    ]);
    for (const c of rows) {
      const [p50, p99, p999, max] = c.slice(3, 7).map(Number);
      assert(p50 <= p99 && p99 <= p999 && p999 <= max, c.join(" "));
    }
    // the open loop keeps its rate: about 100 puts in the second
    for (const c of rows.slice(2)) assert(Math.abs(Number(c[2]) - 100) <= 10, c.join(" "));
    // one-second modes have nothing after the client's first 2 s to show in p99_after
    for (const c of rows) assertEquals(c[7], "-", c.join(" "));
    // the open loop's two parts: the generator's lateness, and the time from sending (within the p99)
    for (const c of rows.slice(0, 2)) assertEquals(c.slice(8), ["-", "-"], c.join(" "));
    for (const c of rows.slice(2)) {
      const [late, send] = c.slice(8).map(Number);
      assert(late >= 0 && send > 0 && send <= Number(c[4]), c.join(" "));
    }
    const spread = lines.indexOf("(medians of 2 rounds; the p99 of each round:)");
    assert(spread === 5, r.stdout);
    for (const l of lines.slice(6, 10)) assert(/^\S+ +etcd(-ts)? +\d+\.\d\d \d+\.\d\d$/.test(l), r.stdout);
    assert(lines.includes("members=1 seconds=1 rate=100/s tls=0 rounds=2 warmup=1"), r.stdout);
  },
});

Deno.test({
  name: CAN_COMPARE
    ? "bench/compare.ts --latency --through follower writes to one follower of three members, on both servers"
    : "bench/compare.ts --latency --through (skipped: needs node, the real etcd and etcdctl)",
  ignore: !CAN_COMPARE,
  fn: async () => {
    const r = await compare(
      ["--host", "127.0.2.75", "--members", "3", "--latency", "--rate", "100", "--seconds", "1"]
        .concat(["--through", "follower"]),
    );
    assertEquals(r.code, 0, r.stderr);
    // every mode of each server went to one member, named in the progress lines
    const through = r.stderr.split("\n").map((l) =>
      / (\S+) (closed-1|open-100\/s) through the follower (\S+):/.exec(l)
    )
      .filter((m) => m !== null);
    assertEquals(through.map((m) => `${m[1]} ${m[2]}`).sort(), [
      "etcd closed-1",
      "etcd open-100/s",
      "etcd-ts closed-1",
      "etcd-ts open-100/s",
    ]);
    for (const m of through) assert(/^127\.0\.2\.75:\d+$/.test(m[3]), m[0]);
    for (const kind of ["etcd", "etcd-ts"]) {
      const used = new Set(through.filter((m) => m[1] === kind).map((m) => m[3]));
      assertEquals(used.size, 1, `${kind} wrote through one member: ${[...used]}`);
    }
    const rows = r.stdout.split("\n").slice(1, 5).map((l) => l.split(/\s+/));
    for (const c of rows) assert(/^\d+$/.test(c[2]), c.join(" ")); // figures, no problem
    assert(r.stdout.includes("warmup=0 through=follower"), r.stdout);
    // --through needs three members
    const refused = await compare(["--members", "1", "--latency", "--through", "follower"]);
    assertEquals(refused.code, 2, refused.stderr);
  },
});
