/**
 * `deno task robustness`: the fault and fuzz tests of `deno task test`, run longer, one file at a time,
 * with a report per scenario: operations, faults injected, anomalies found, time. The table is printed as
 * Markdown (and written to `--out FILE` when given); the exit status is 1 when any test failed.
 *
 *     deno task robustness                 # about 15 minutes on two cores
 *     deno task robustness --scale 0.2     # shorter runs, for a quick look
 *
 * Each test prints its figures as a `robustness-report` line (faults/report.ts); fuzz targets print a
 * `fuzz <target>: seed S, N inputs` line; a test that prints neither is listed by its test names.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseReports, type RunReport } from "./faults/report.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** One file of the longer run, and the variables that lengthen it. */
interface Scenario {
  file: string;
  /** Environment for a run at scale 1 (numbers are multiplied by the scale where `scaled`). */
  env: Record<string, number>;
  scaled: string[];
}

const SCENARIOS: Scenario[] = [
  { file: "tests/partition_e2e_test.ts", env: { FAULT_ROUNDS: 5 }, scaled: ["FAULT_ROUNDS"] },
  { file: "tests/network_faults_e2e_test.ts", env: { FAULT_SECONDS: 60 }, scaled: ["FAULT_SECONDS"] },
  { file: "tests/disk_faults_e2e_test.ts", env: {}, scaled: [] },
  { file: "tests/disk_full_e2e_test.ts", env: {}, scaled: [] },
  { file: "tests/clock_jump_e2e_test.ts", env: {}, scaled: [] },
  { file: "tests/crash_e2e_test.ts", env: {}, scaled: [] },
  {
    file: "tests/fuzz/",
    env: { FUZZ_RUNS: 30_000, FUZZ_TIME_MS: 60_000 },
    scaled: ["FUZZ_RUNS", "FUZZ_TIME_MS"],
  },
];

/** A row of the table. */
interface Row {
  scenario: string;
  impl: string;
  operations: string;
  faults: string;
  anomalies: string;
  seconds: string;
}

const ANSI_COLOUR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");
const FUZZ_LINE = /^fuzz (.+): seed (\d+), (\d+) inputs \((\d+) refused\) in (\d+) ms/;
const TEST_LINE = /^(.+?) \.\.\. (ok|FAILED|ignored)(?: \(due to [^)]*\))? \(([\d.]+)(ms|s|m)\)/;

function seconds(value: string, unit: string): number {
  const n = Number(value);
  return unit === "ms" ? n / 1000 : unit === "m" ? n * 60 : n;
}

/** The rows one file's output gives. */
export function rowsOf(file: string, output: string): Row[] {
  const text = output.replace(ANSI_COLOUR, "");
  const rows: Row[] = parseReports(text).map((r: RunReport) => ({
    scenario: r.scenario,
    impl: r.impl,
    operations: String(r.operations),
    faults: String(r.faults),
    anomalies: (r.anomalies ?? []).length === 0 ? "none" : (r.anomalies ?? []).join("; "),
    seconds: r.seconds.toFixed(0),
  }));
  for (const line of text.split("\n")) {
    const f = FUZZ_LINE.exec(line);
    if (f) {
      rows.push({
        scenario: `fuzz ${f[1]} (seed ${f[2]})`,
        impl: "etcd-ts",
        operations: `${f[3]} inputs`,
        faults: "0",
        anomalies: "none",
        seconds: (Number(f[5]) / 1000).toFixed(0),
      });
    }
  }
  // failed tests are anomalies whether or not they reported; in a file without reports every test gets a
  // row of its own
  const reported = rows.length > 0;
  for (const line of text.split("\n")) {
    const t = TEST_LINE.exec(line);
    if (!t || line.startsWith(" ")) continue;
    const [, name, verdict, value, unit] = t;
    if (verdict === "ignored") continue;
    if (verdict === "FAILED" || (!reported && !name.startsWith("fuzz"))) {
      rows.push({
        scenario: `${file}: ${name}`,
        impl: /\[(etcd|etcd-ts)\]|\((etcd|etcd-ts)\)/.exec(name)?.slice(1).find(Boolean) ?? "etcd-ts",
        operations: "-",
        faults: "-",
        anomalies: verdict === "FAILED" ? "TEST FAILED (see its output)" : "none",
        seconds: seconds(value, unit).toFixed(0),
      });
    }
  }
  return rows;
}

/** The table in Markdown. */
export function table(rows: Row[]): string {
  const head =
    "| scenario | server | operations | faults | anomalies | time (s) |\n| --- | --- | ---: | ---: | --- | ---: |";
  return [
    head,
    ...rows.map((r) =>
      `| ${r.scenario} | ${r.impl} | ${r.operations} | ${r.faults} | ${r.anomalies} | ${r.seconds} |`
    ),
  ].join("\n");
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { scale: { type: "string", default: "1" }, out: { type: "string" } },
  });
  const scale = Number(values.scale);
  const rows: Row[] = [];
  let failed = false;
  for (const s of SCENARIOS) {
    try {
      Deno.statSync(`${ROOT}${s.file}`);
    } catch {
      continue; // not in this checkout
    }
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.env)) {
      env[k] = String(s.scaled.includes(k) ? Math.max(1, Math.round(v * scale)) : v);
    }
    console.error(`robustness: ${s.file} ${JSON.stringify(env)}`);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        "--allow-all",
        "--import-map=test_imports.json",
        "--lock=deno.test.lock",
        s.file,
      ],
      cwd: ROOT,
      env: { ...env, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    if (!out.success) failed = true;
    const found = rowsOf(s.file, text);
    if (!out.success && !found.some((r) => r.anomalies !== "none")) {
      found.push({
        scenario: s.file,
        impl: "-",
        operations: "-",
        faults: "-",
        anomalies: `deno test exited ${out.code}`,
        seconds: "-",
      });
    }
    rows.push(...found);
  }
  const md = table(rows);
  console.log(md);
  if (values.out !== undefined) await Deno.writeTextFile(values.out, md + "\n");
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
