/**
 * The side-by-side benchmark: the real etcd and etcd-ts, started with the same flags on the same machine,
 * each driven through the same workloads; prints one row per workload (see README.md).
 *
 *     deno run -A bench/compare.ts [--members 1|3] [--seconds S] [--workloads "put1 put ..."] [--tls]
 *       [--rounds N]
 *     deno run -A bench/compare.ts --latency [--rate 500] [--seconds S] [--members 1|3] [--tls]
 *       [--rounds N] [--warmup S] [--through leader|follower]
 *
 * `--host` (default 127.0.0.1) is the address every member listens on.
 *
 * etcd-ts is started as `$OTHER_CMD` (default: this Deno running `main.ts` with the flags of
 * `deno task start`) followed by etcd's flags, from the repository root; the real etcd as `$ETCD_BIN`
 * (default `etcd`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  type BenchTls,
  endpointThrough,
  etcdTsCommand,
  type Kind,
  makeCerts,
  revision,
  type RunningCluster,
  sampleRss,
  startCluster,
  type Through,
} from "./servers.ts";
import { analyze, type TraceRecord } from "./tail.ts";

const HERE = new URL(".", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;

/** Every workload a table row can show, in the default order of the README. */
export const ALL_WORKLOADS = [
  "put1",
  "put",
  "put-h2",
  "range-h2",
  "range-lin",
  "range-ser",
  "txn",
  "mixed",
  "watch",
  "lease",
];
const DEFAULT_WORKLOADS = "put1 put-h2 range-h2 put range-ser txn watch";

/** What one workload run measured. */
export interface RowResult {
  opsPerS?: number;
  p50?: number | null;
  p99?: number | null;
  p999?: number | null;
  max?: number | null;
  rssMiB?: number;
  /** Open loop: the 99th percentile of how late the generator sent its requests (ms). */
  lateP99?: number | null;
  /** Open loop: the 99th percentile of the time from sending a request to its answer (ms). */
  fromSendP99?: number | null;
  /** Latency mode: the p99 of the requests after the client's first {@link CLIENT_WARMUP_MS} (ms). */
  steadyP99?: number | null;
  /** Why the row has no figure (server down, errors, an invalid h2load run). */
  problem?: string;
}

interface LoadJson {
  ops: number;
  ops_per_s: number;
  p50_ms: number | null;
  p99_ms: number | null;
  p999_ms: number | null;
  max_ms: number | null;
  late_p99_ms?: number | null;
  from_send_p99_ms?: number | null;
  errors: number;
  error_kinds?: Record<string, number>;
}

/**
 * Node's own flags for a run of load.mjs with `args`. A generator that keeps requests in flight for one
 * client or at a fixed rate gets a young generation of 1 MB: with Node's default, its collections
 * took 2-6 ms on both cores at once, and the members waited for a core meanwhile. Those were the slowest
 * puts against either server (docs/benchmarks.md). A saturating generator keeps the default: short, frequent
 * collections would cost it 3-10% of its requests and cap the row.
 */
export function generatorNodeFlags(args: string[]): string[] {
  const value = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const oneClient = (value("--clients") ?? "1") === "1";
  const openLoop = Number(value("--rate") ?? "0") > 0;
  return oneClient || openLoop ? ["--max-semi-space-size=1"] : [];
}

/** Runs bench/load.mjs under Node with `args`; resolves to its JSON report. */
async function load(args: string[], seconds: number, tls?: BenchTls): Promise<LoadJson> {
  const tlsArgs = tls ? ["--cacert", tls.ca] : [];
  const child = new Deno.Command("node", {
    args: [
      ...generatorNodeFlags(args),
      `${HERE}load.mjs`,
      ...args,
      "--duration-s",
      String(seconds),
      "--json",
      ...tlsArgs,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), (seconds + 90) * 1000);
  const out = await child.output();
  clearTimeout(timer);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  try {
    return JSON.parse(lines[lines.length - 1]) as LoadJson;
  } catch {
    throw new Error(`load.mjs failed: ${new TextDecoder().decode(out.stderr).slice(0, 300)}`);
  }
}

/** The load.mjs arguments of each generator row. */
function loadArgs(workload: string): string[] {
  const many = ["--clients", "100", "--conns", "10"];
  switch (workload) {
    case "put1":
      return ["--workload", "put", "--clients", "1", "--conns", "1"];
    case "watch":
      return ["--workload", "watch", "--clients", "10", "--conns", "5", "--watchers", "100"];
    default:
      return ["--workload", workload, ...many];
  }
}

async function generatorRow(
  c: RunningCluster,
  w: string,
  seconds: number,
  tls?: BenchTls,
): Promise<RowResult> {
  const r = await load(["--endpoints", c.endpoints.join(","), ...loadArgs(w)], seconds, tls);
  if (r.errors > 0) {
    return { problem: `ERRORS(${r.errors})`, p99: r.p99_ms, p50: r.p50_ms };
  }
  return { opsPerS: r.ops_per_s, p50: r.p50_ms, p99: r.p99_ms, p999: r.p999_ms, max: r.max_ms };
}

/**
 * An h2load row: 10 connections × 10 streams sending one fixed gRPC request to the first member. h2load
 * judges HTTP status only, so a put run counts only if the revision moved by as many puts as it saw
 * succeed. Its latency figure is the mean (shown as p50; it gives no percentiles).
 */
async function h2Row(
  c: RunningCluster,
  w: string,
  seconds: number,
  dir: string,
  tls?: BenchTls,
): Promise<RowResult> {
  const endpoint = c.endpoints[0];
  const body = `${dir}/${w}.body`;
  const key = w === "put-h2" ? "00000001" : "00000000"; // the range reads the key the prefill puts
  const bodyArgs = w === "put-h2" ? ["put", key, "256"] : ["range-ser", key];
  const made = await new Deno.Command("node", { args: [`${HERE}h2_body.mjs`, ...bodyArgs], stdout: "piped" })
    .output();
  await Deno.writeFile(body, made.stdout);
  if (w === "range-h2") {
    const l = await load(
      ["--endpoints", endpoint, "--workload", "put", "--total", "1", "--key-size", "8", "--key-space", "1"],
      5,
      tls,
    );
    if (l.errors > 0) return { problem: "FAILED(prefill)" };
  }
  const before = await revision(endpoint, tls);
  const method = w === "put-h2" ? "Put" : "Range";
  const child = new Deno.Command("h2load", {
    args: [
      ...["-D", String(seconds), "-c", "10", "-m", "10"],
      ...["-H", "content-type: application/grpc", "-H", "te: trailers", "-d", body],
      `${tls ? "https" : "http"}://${endpoint}/etcdserverpb.KV/${method}`,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), (seconds + 30) * 1000);
  const out = new TextDecoder().decode((await child.output()).stdout);
  clearTimeout(timer);
  const rps = Number(/finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(out)?.[1] ?? NaN);
  const succeeded = Number(/(\d+) succeeded/.exec(out)?.[1] ?? NaN);
  const mean = /time for request:\s+\S+\s+\S+\s+(\S+)/.exec(out)?.[1];
  if (!Number.isFinite(rps)) return { problem: "FAILED(h2load)" };
  if (w === "put-h2") {
    const moved = (await revision(endpoint, tls)) - before;
    if (moved < succeeded * 0.99) return { problem: `INVALID(rev+${moved}/${succeeded}ok)` };
  }
  return { opsPerS: Math.round(rps), p50: mean ? toMs(mean) : null, p99: null };
}

/** h2load's durations ("850us", "1.20ms", "2.1s") in milliseconds. */
export function toMs(text: string): number | null {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (!m) return null;
  const v = Number(m[1]);
  return Math.round((m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v) * 100) / 100;
}

const fmt = (v: number | null | undefined, digits = 2): string =>
  v === null || v === undefined || !Number.isFinite(v) ? "-" : v.toFixed(digits);

/** The middle value (the mean of the two middle ones for an even count); undefined for none. */
function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * One row from several rounds of the same workload: the median ops/s, p50 and p99 (and of p99.9, max and
 * the open loop's two parts where the rounds have them), the highest memory; the first problem if any
 * round had one (a round that failed is not averaged away).
 */
export function medianRow(rounds: RowResult[]): RowResult {
  const problem = rounds.find((r) => r.problem !== undefined)?.problem;
  if (problem !== undefined) return { problem };
  const nums = (pick: (r: RowResult) => number | null | undefined) =>
    rounds.map(pick).filter((x): x is number => typeof x === "number");
  const ops = median(nums((r) => r.opsPerS));
  const rss = nums((r) => r.rssMiB);
  const row: RowResult = {
    opsPerS: ops === undefined ? undefined : Math.round(ops),
    p50: median(nums((r) => r.p50)) ?? null,
    p99: median(nums((r) => r.p99)) ?? null,
    rssMiB: rss.length > 0 ? Math.max(...rss) : undefined,
  };
  for (const key of ["p999", "max", "lateP99", "fromSendP99", "steadyP99"] as const) {
    const m = median(nums((r) => r[key]));
    if (m !== undefined) row[key] = m;
  }
  return row;
}

/**
 * The order in which a round starts the two servers: the first one alternates from round to round, so a
 * machine that drifts (disk, other work) does not favour one side.
 */
function serverOrder(round: number): Kind[] {
  return round % 2 === 0 ? ["etcd", "etcd-ts"] : ["etcd-ts", "etcd"];
}

/** The ratio etcd-ts / etcd of each round, per workload: the spread behind a median. */
export function roundRatios(
  workloads: string[],
  rounds: Record<Kind, Record<string, RowResult>>[],
): string {
  return workloads.map((w) => {
    const ratios = rounds.map((r) => {
      const e = r.etcd[w]?.opsPerS, t = r["etcd-ts"][w]?.opsPerS;
      return e && t ? (t / e).toFixed(2) : "-";
    });
    return `${w.padEnd(10)} ${ratios.join(" ")}`;
  }).join("\n");
}

/** The table of a run: one row per workload, etcd and etcd-ts side by side. */
export function table(workloads: string[], rows: Record<Kind, Record<string, RowResult>>): string {
  const head = ["workload", "etcd_ops/s", "ts_ops/s", "ratio", "etcd_p50", "etcd_p99", "ts_p50", "ts_p99"]
    .concat(["etcd_MiB", "ts_MiB"]);
  const widths = [10, 11, 11, 6, 9, 9, 9, 9, 9, 8];
  const line = (cells: string[]) =>
    cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(" ");
  const out = [line(head)];
  for (const w of workloads) {
    const e = rows.etcd[w] ?? { problem: "-" }, t = rows["etcd-ts"][w] ?? { problem: "-" };
    const ratio = e.opsPerS && t.opsPerS ? (t.opsPerS / e.opsPerS).toFixed(2) : "-";
    out.push(line([
      w,
      e.problem ?? String(e.opsPerS),
      t.problem ?? String(t.opsPerS),
      ratio,
      fmt(e.p50),
      fmt(e.p99),
      fmt(t.p50),
      fmt(t.p99),
      fmt(e.rssMiB, 0),
      fmt(t.rssMiB, 0),
    ]));
  }
  return out.join("\n");
}

async function main(): Promise<number> {
  const { values: a } = parseArgs({
    args: Deno.args,
    options: {
      members: { type: "string", default: "1" },
      seconds: { type: "string", default: "8" },
      workloads: { type: "string", default: DEFAULT_WORKLOADS },
      rate: { type: "string", default: "500" },
      host: { type: "string", default: "127.0.0.1" },
      tls: { type: "boolean", default: false },
      latency: { type: "boolean", default: false },
      rounds: { type: "string", default: "1" },
      warmup: { type: "string", default: "0" },
      through: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (a.help) {
    console.log(
      'deno run -A bench/compare.ts [--members 1|3] [--seconds S] [--workloads "w ..."] [--tls] [--rounds N]\n' +
        "deno run -A bench/compare.ts --latency [--rate R] [--seconds S] [--members 1|3] [--tls] [--rounds N]\n" +
        "  [--warmup S]: before measuring, S seconds of the open loop on each fresh cluster, not counted\n" +
        "  [--through leader|follower]: three members; the clients write to the leader, or to a follower\n" +
        "--host H: the address the members listen on (default 127.0.0.1)\n" +
        `workloads: ${ALL_WORKLOADS.join(" ")}`,
    );
    return 0;
  }
  const members = Number(a.members);
  const seconds = Number(a.seconds);
  const roundCount = Number(a.rounds);
  const warmup = Number(a.warmup);
  const through = a.through as Through | undefined;
  const workloads = String(a.workloads).split(/\s+/).filter((w) => w !== "");
  const unknown = workloads.filter((w) => !ALL_WORKLOADS.includes(w));
  if (
    ![1, 3].includes(members) || !(seconds > 0) || !(Number.isInteger(roundCount) && roundCount >= 1) ||
    !(warmup >= 0) || unknown.length > 0 ||
    (through !== undefined && (!["leader", "follower"].includes(through) || members !== 3 || !a.latency))
  ) {
    console.error(
      `bad arguments${unknown.length ? `: unknown workload ${unknown.join(", ")}` : ""} (see --help)`,
    );
    return 2;
  }
  for (const tool of ["etcd", "etcdctl", "node", ...(a.tls ? ["openssl"] : []), "h2load"]) {
    if (tool === "h2load" && (a.latency || !workloads.some((w) => w.endsWith("-h2")))) continue;
    const bin = tool === "etcd" ? Deno.env.get("ETCD_BIN") ?? "etcd" : tool;
    const found = await new Deno.Command("sh", { args: ["-c", `command -v "${bin}"`], stdout: "null" })
      .output();
    if (found.code !== 0) {
      console.error(`needs ${bin}: see bench/README.md (etcd-server, etcd-client, nodejs, nghttp2-client)`);
      return 2;
    }
  }
  const dir = await Deno.makeTempDir({ prefix: "etcd-ts-bench-" });
  const tls = a.tls ? await makeCerts(dir, a.host) : undefined;
  const other = etcdTsCommand();
  const plan = {
    members,
    commands: { etcd: [Deno.env.get("ETCD_BIN") ?? "etcd"], "etcd-ts": other },
    cwd: ROOT,
    dir,
    tls,
    host: a.host,
  };
  let running: RunningCluster | undefined;
  const onSignal = () => {
    running?.stop().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    if (a.latency) {
      const pace = { seconds, rate: Number(a.rate), warmup, through };
      return await latency(plan, pace, roundCount, tls, (c) => running = c);
    }
    // Each round runs every row on both servers, fresh ones each time (see serverOrder).
    const rounds: Record<Kind, Record<string, RowResult>>[] = [];
    for (let round = 0; round < roundCount; round++) {
      const rows: Record<Kind, Record<string, RowResult>> = { etcd: {}, "etcd-ts": {} };
      const order = serverOrder(round);
      // fresh data directories every round: a second round must not start from the first one's data
      const roundPlan = { ...plan, dir: `${dir}/round-${round + 1}` };
      await Deno.mkdir(roundPlan.dir);
      for (const kind of order) {
        try {
          running = await startCluster(kind, roundPlan);
        } catch (err) {
          console.error(String(err));
          for (const w of workloads) rows[kind][w] = { problem: "DOWN" };
          continue;
        }
        for (const w of workloads) {
          const rss = sampleRss(running.pids);
          try {
            rows[kind][w] = w.endsWith("-h2")
              ? await h2Row(running, w, seconds, dir, tls)
              : await generatorRow(running, w, seconds, tls);
          } catch (err) {
            console.error(`${kind} ${w}: ${err}`);
            rows[kind][w] = { problem: "FAILED" };
          }
          rows[kind][w].rssMiB = rss.stop();
          console.error(`round ${round + 1} ${kind} ${w}: ${JSON.stringify(rows[kind][w])}`);
        }
        await running.stop();
        running = undefined;
      }
      rounds.push(rows);
      await Deno.remove(roundPlan.dir, { recursive: true });
    }
    const merged: Record<Kind, Record<string, RowResult>> = { etcd: {}, "etcd-ts": {} };
    for (const kind of ["etcd", "etcd-ts"] as Kind[]) {
      for (const w of workloads) merged[kind][w] = medianRow(rounds.map((r) => r[kind][w]));
    }
    console.log(table(workloads, merged));
    if (roundCount > 1) {
      console.log(`(medians of ${roundCount} rounds; the ratio of each round:)`);
      console.log(roundRatios(workloads, rounds));
    }
    console.log(
      "(ops/s: higher is better; ratio = etcd-ts / etcd; latencies in ms; MiB: peak resident memory",
    );
    console.log(" of all members during the row; the -h2 rows show h2load's mean latency under p50)");
    console.log(`members=${members} seconds=${seconds} tls=${tls ? 1 : 0} rounds=${roundCount}`);
    return 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    await running?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * The latency mode: on each server, one closed-loop client putting for `seconds`, then an open-loop load
 * of `rate` puts per second for `seconds` (latency counted from when each put was due); prints p50, p99,
 * p99.9 and max of both servers side by side, and for the open loop the two parts of its p99 (see
 * {@link latencyTable}). With several rounds, fresh servers every round, the first one alternating. A
 * warm-up of `warmup` seconds runs the open loop on each fresh cluster first and counts nothing of it: V8
 * compiles etcd-ts's hot code over its first tens of seconds, and without the warm-up the figures include
 * that (docs/benchmarks.md). With `through`, after the warm-up, the modes write to the leader or to a
 * follower of three members instead of to whichever member is first, so that the election does not decide
 * how many peer hops a put takes.
 */
async function latency(
  plan: Parameters<typeof startCluster>[1],
  { seconds, rate, warmup, through }: { seconds: number; rate: number; warmup: number; through?: Through },
  roundCount: number,
  tls: BenchTls | undefined,
  track: (c: RunningCluster | undefined) => void,
): Promise<number> {
  const openLoop = ["--workload", "put", "--rate", String(rate), "--conns", "10"];
  const modes: [string, string[]][] = [
    ["closed-1", ["--workload", "put", "--clients", "1", "--conns", "1"]],
    [`open-${rate}/s`, openLoop],
  ];
  const rounds: LatencyRound[] = [];
  for (let round = 0; round < roundCount; round++) {
    const res: LatencyRound = {};
    const order = serverOrder(round);
    const roundPlan = { ...plan, dir: `${plan.dir}/latency-${round + 1}` };
    await Deno.mkdir(roundPlan.dir);
    for (const kind of order) {
      const c = await startCluster(kind, roundPlan);
      track(c);
      try {
        if (warmup > 0) {
          const w = await load(["--endpoints", c.endpoints.join(","), ...openLoop], warmup, tls);
          console.error(
            `round ${round + 1} ${kind} warm-up: ${w.ops} puts in ${warmup} s, ${w.errors} errors`,
          );
        }
        const endpoints = through ? await endpointThrough(c.endpoints, through, tls) : c.endpoints.join(",");
        for (const [name, args] of modes) {
          const traceFile = `${roundPlan.dir}/${kind}-${name.replace("/", "")}.trace.json`;
          const r = await load(["--endpoints", endpoints, ...args, "--trace", traceFile], seconds, tls);
          const trace: TraceRecord[] = JSON.parse(await Deno.readTextFile(traceFile));
          res[name] ??= {} as Record<Kind, RowResult>;
          res[name][kind] = r.errors > 0 ? { problem: `ERRORS(${r.errors})` } : {
            opsPerS: r.ops_per_s,
            p50: r.p50_ms,
            p99: r.p99_ms,
            p999: r.p999_ms,
            max: r.max_ms,
            lateP99: r.late_p99_ms,
            fromSendP99: r.from_send_p99_ms,
            steadyP99: steadyP99(trace),
          };
          console.error(
            `round ${round + 1} ${kind} ${name}${through ? ` through the ${through} ${endpoints}` : ""}: ` +
              JSON.stringify(res[name][kind]),
          );
        }
      } finally {
        await c.stop();
        track(undefined);
      }
    }
    rounds.push(res);
    await Deno.remove(roundPlan.dir, { recursive: true });
  }
  console.log(latencyTable(modes.map(([name]) => name), rounds));
  console.log(`(p99_after: the p99 after the client's first ${CLIENT_WARMUP_MS / 1000} s)`);
  console.log(
    `members=${plan.members} seconds=${seconds} rate=${rate}/s tls=${tls ? 1 : 0} rounds=${roundCount} ` +
      `warmup=${warmup}${through ? ` through=${through}` : ""}`,
  );
  return 0;
}

/**
 * How long the latency mode's `p99_after` column leaves out: the client's own warm-up. A fresh Node
 * process compiles the generator on both cores in its first seconds, which slows the answers of either
 * server (docs/benchmarks.md), so the column shows the servers without it.
 */
export const CLIENT_WARMUP_MS = 2000;

/** The p99 of a trace's requests after the client's warm-up; null when the run was no longer than that. */
export function steadyP99(trace: TraceRecord[]): number | null {
  const steady = analyze(trace, CLIENT_WARMUP_MS).steady;
  return steady.ops > 0 ? steady.p99 : null;
}

/** One round of the latency mode: per mode, each server's figures. */
export type LatencyRound = Record<string, Record<Kind, RowResult>>;

/**
 * The latency mode's table: per mode and server the median of each figure over the rounds (a round that
 * failed shows instead). `p99_after` leaves out the client's first {@link CLIENT_WARMUP_MS}. For an open
 * loop, `late_p99` is how late the generator itself sent its requests and `send_p99` the time from sending
 * to the answer, the two parts of the latency counted from when each request was due. With several rounds,
 * each round's p99 follows the table: the spread behind a median.
 */
export function latencyTable(modes: string[], rounds: LatencyRound[]): string {
  const w = [12, 8, 9, 9, 9, 9, 9, 9, 9, 9];
  const line = (cells: string[]) => cells.map((c, i) => i < 2 ? c.padEnd(w[i]) : c.padStart(w[i])).join(" ");
  const out = [
    line([
      "mode",
      "server",
      "ops/s",
      "p50_ms",
      "p99_ms",
      "p99.9_ms",
      "max_ms",
      "p99_after",
      "late_p99",
      "send_p99",
    ]),
  ];
  const kinds: Kind[] = ["etcd", "etcd-ts"];
  for (const mode of modes) {
    for (const kind of kinds) {
      const m = medianRow(rounds.map((r) => r[mode]?.[kind] ?? { problem: "-" }));
      if (m.problem !== undefined) {
        out.push(line([mode, kind, m.problem, "-", "-", "-", "-", "-", "-", "-"]));
        continue;
      }
      out.push(line([
        mode,
        kind,
        m.opsPerS === undefined ? "-" : String(m.opsPerS),
        fmt(m.p50),
        fmt(m.p99),
        fmt(m.p999),
        fmt(m.max),
        fmt(m.steadyP99),
        fmt(m.lateP99),
        fmt(m.fromSendP99),
      ]));
    }
  }
  if (rounds.length > 1) {
    out.push(`(medians of ${rounds.length} rounds; the p99 of each round:)`);
    for (const mode of modes) {
      for (const kind of kinds) {
        const p99s = rounds.map((r) => fmt(r[mode]?.[kind]?.p99));
        out.push(`${mode.padEnd(w[0])} ${kind.padEnd(w[1])} ${p99s.join(" ")}`);
      }
    }
  }
  return out.join("\n");
}

if (import.meta.main) Deno.exit(await main());
