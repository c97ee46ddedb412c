/**
 * `deno task test`: every test file of the project, each in a `deno test` process of its own, two (or
 * `TEST_JOBS`) at a time, and one summary at the end in `deno test`'s own form.
 *
 * Why not `deno test --parallel`: that runs several files as isolates of one process, and Deno 2.9 crashes
 * there now and then (SIGSEGV on a `tokio-runtime-worker` thread, in V8 or in `free()`; the same family as
 * denoland/deno#34311), taking every file of the run with it and leaving no summary. One process per file
 * holds one test isolate at a time, as `deno test` without `--parallel` does, and a crash, should one still
 * happen, costs that file alone and is reported as its failure.
 *
 * The files are type-checked together first (as `deno test` does), so the per-file runs skip the check.
 * Each file's output is printed whole when it ends; the totals are the sum of the files' own summaries.
 *
 *     deno task test                       # everything
 *     deno task test tests/kv_e2e_test.ts  # some files (or folders)
 */

import { IO_POLLING_VALUE, IO_POLLING_VARIABLE } from "../server/io_polling.ts";

/** What every `deno test` (and the type check, without `--allow-all`) is given. */
export const FLAGS = ["--allow-all", "--import-map=test_imports.json", "--lock=deno.test.lock"];
const SKIP_DIRS = new Set(["node_modules", "dist", ".git"]);
const TEST_FILE = /(^|[._])test\.(ts|mts|tsx|js|mjs|jsx)$/;

/** What one file's `deno test` reported. */
interface FileResult {
  file: string;
  passed: number;
  failed: number;
  ignored: number;
  steps: number;
  /** Why the process gave no summary of its own (a signal, an exit code), if it did not. */
  crashed?: string;
  output: string;
}

async function collect(path: string, out: string[]): Promise<void> {
  const info = await Deno.stat(path);
  if (info.isFile) {
    out.push(path);
    return;
  }
  for await (const e of Deno.readDir(path)) {
    if (e.name.startsWith(".") || SKIP_DIRS.has(e.name)) continue;
    const child = path === "." ? e.name : `${path}/${e.name}`;
    if (e.isDirectory) await collect(child, out);
    else if (e.isFile && TEST_FILE.test(e.name)) out.push(child);
  }
}

/** Reads `ok | 5 passed (3 steps) | 0 failed | 1 ignored (2s)` (colours off). */
export function parseSummary(text: string): Omit<FileResult, "file" | "output"> | undefined {
  const lines = text.split("\n").filter((l) => /^(ok|FAILED) \| \d+ passed/.test(l));
  const line = lines.at(-1);
  if (line === undefined) return undefined;
  const num = (re: RegExp): number => Number(re.exec(line)?.[1] ?? 0);
  return {
    passed: num(/(\d+) passed/),
    failed: num(/(\d+) failed/),
    ignored: num(/(\d+) ignored/),
    steps: num(/\((\d+) steps?\)/),
  };
}

async function runFile(file: string): Promise<FileResult> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["test", ...FLAGS, "--no-check", file],
    // members started inside a test process (tests/in_process.ts) need the event-loop setting the
    // executable gives itself (server/io_polling.ts); members started as processes set it themselves
    env: { NO_COLOR: "1", [IO_POLLING_VARIABLE]: IO_POLLING_VALUE },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const { code, signal, stdout, stderr } = await cmd.output();
  const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  const summary = parseSummary(text);
  if (summary !== undefined && signal === null) return { file, ...summary, output: text };
  const crashed = signal !== null ? `killed by ${signal}` : `exited with code ${code} and no summary`;
  return { file, passed: 0, failed: 1, ignored: 0, steps: 0, crashed, output: text };
}

function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${s % 60}s`;
}

async function main(args: string[]): Promise<number> {
  const started = performance.now();
  const files: string[] = [];
  for (const a of args.length > 0 ? args : ["."]) await collect(a.replace(/\/$/, ""), files);
  if (files.length === 0) {
    console.error("no test files found");
    return 1;
  }
  // Biggest files first: they hold the long end-to-end tests, and starting them early keeps both
  // processes busy until the end.
  const sizes = new Map<string, number>();
  for (const f of files) sizes.set(f, (await Deno.stat(f)).size);
  files.sort((a, b) => sizes.get(b)! - sizes.get(a)! || a.localeCompare(b));

  const check = await new Deno.Command(Deno.execPath(), {
    args: ["check", ...FLAGS.slice(1), ...files],
    stdin: "null",
  }).output();
  if (!check.success) {
    console.log(`FAILED | 0 passed | 1 failed (type check of ${files.length} files)`);
    return 1;
  }

  const jobs = Math.max(1, Number(Deno.env.get("TEST_JOBS") ?? navigator.hardwareConcurrency ?? 2));
  const queue = [...files];
  const results: FileResult[] = [];
  const worker = async (): Promise<void> => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
      const r = await runFile(f);
      results.push(r);
      console.log(r.output.trimEnd());
      if (r.crashed !== undefined) console.log(`\n${f}: the test process ${r.crashed}`);
      console.log("");
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, worker));

  let passed = 0, failed = 0, ignored = 0, steps = 0;
  for (const r of results) {
    passed += r.passed;
    failed += r.failed;
    ignored += r.ignored;
    steps += r.steps;
  }
  const bad = results.filter((r) => r.failed > 0);
  if (bad.length > 0) {
    console.log("files with failures:");
    for (const r of bad) console.log(`  ${r.file}${r.crashed ? ` (${r.crashed})` : ""}`);
    console.log("");
  }
  const head = failed === 0 ? "ok" : "FAILED";
  console.log(
    `${head} | ${passed} passed (${steps} steps) | ${failed} failed | ${ignored} ignored ` +
      `(${files.length} files, ${formatDuration(performance.now() - started)})`,
  );
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
