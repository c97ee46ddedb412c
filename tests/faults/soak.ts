/**
 * The soak: three members on hosts of a {@link NetLab} under the fault tests' client load for many minutes,
 * with the four faults of {@link faultCycle} coming again and again (one every few seconds), while each
 * member's resident memory and open file descriptors are sampled every 5 s. At the end the run gets the
 * checks of every fault run (checkOutcome in outcome.ts: linearizable, nothing acknowledged lost, equal HashKV,
 * watch guarantees), and the figures over time are written as JSON and drawn (throughput and p99 of the
 * completed operations per 30 s, memory and descriptors per member) into a PNG by headless Chromium.
 *
 *     deno run -A --import-map=test_imports.json --lock=deno.test.lock tests/faults/soak.ts \
 *       --minutes 30 --impl etcd-ts --out docs/soak
 *
 * Needs root, `ip`, `iptables`, etcdctl, and `/usr/bin/chromium` for the plot. Not part of `deno task
 * test`: it runs for as long as it is told.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { assert } from "../assert.ts";
import type { Impl } from "../helpers.ts";
import { NetLab } from "./netlab.ts";
import type { WorkerResult } from "./load_worker.ts";
import { checkLabOutcome, faultCycle, LabMember, leaderOf, startWorker, stopLab } from "./lab_cluster.ts";
import { report } from "./report.ts";
// deno-lint-ignore no-import-prefix
import uplotJs from "npm:uplot@^1.6.32/dist/uPlot.iife.min.js" with { type: "text" };
// deno-lint-ignore no-import-prefix
import uplotCss from "npm:uplot@^1.6.32/dist/uPlot.min.css" with { type: "text" };

const SAMPLE_MS = 5000;
const WINDOW_MS = 30_000;

/** One sample of the members' resources, `t` seconds into the run. */
interface ResourceSample {
  t: number;
  rssMiB: (number | null)[];
  fds: (number | null)[];
}

/** The clients' figures of one window of the run. */
interface Window {
  t: number;
  opsPerS: number;
  p99Ms: number;
}

/** Completed operations per second and the p99 of their latency, per window of `windowMs`. */
export function windows(ops: WorkerResult["ops"], windowMs: number): Window[] {
  if (ops.length === 0) return [];
  let origin = Infinity;
  for (const o of ops) origin = Math.min(origin, o.call);
  const byWindow = new Map<number, number[]>();
  for (const o of ops) {
    if (o.return === undefined) continue;
    const w = Math.floor((o.return - origin) / windowMs);
    let list = byWindow.get(w);
    if (list === undefined) byWindow.set(w, list = []);
    list.push(o.return - o.call);
  }
  // the last window is cut short by the end of the run: it would understate the rate
  let last = 0;
  for (const o of ops) last = Math.max(last, o.return ?? 0);
  return [...byWindow.keys()].sort((a, b) => a - b).filter((w) => origin + (w + 1) * windowMs <= last).map(
    (w) => {
      const lat = byWindow.get(w)!.sort((a, b) => a - b);
      return {
        t: ((w + 1) * windowMs) / 1000,
        opsPerS: lat.length / (windowMs / 1000),
        p99Ms: lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))],
      };
    },
  );
}

/** Draws the run into a PNG with uPlot in headless Chromium. */
async function plot(
  file: string,
  title: string,
  w: Window[],
  samples: ResourceSample[],
): Promise<void> {
  const { launchBrowser } = await import("../ui_e2e_util.ts");
  const html = `<!doctype html><html><head><meta charset="utf-8"><style>
body{font-family:sans-serif;margin:16px;background:#fff} h1{font-size:18px} .c{margin-bottom:12px}
</style></head><body><h1>${title}</h1><div id="a" class="c"></div><div id="b" class="c"></div>
<div id="c" class="c"></div><div id="d" class="c"></div></body></html>`;
  const browser = await launchBrowser();
  try {
    const page = await browser.context.newPage();
    await page.setViewportSize({ width: 1100, height: 1300 });
    await page.setContent(html);
    await page.addStyleTag({ content: uplotCss });
    await page.addScriptTag({ content: uplotJs });
    await page.evaluate(({ w, samples }) => {
      // deno-lint-ignore no-explicit-any
      const U = (globalThis as any).uPlot;
      const colours = ["#1f77b4", "#d62728", "#2ca02c"];
      const draw = (
        id: string,
        t: string,
        xs: number[],
        series: { label: string; ys: (number | null)[] }[],
      ) =>
        new U(
          {
            title: t,
            width: 1050,
            height: 280,
            scales: { x: { time: false } },
            axes: [{ label: "seconds into the run" }, {}],
            series: [{ label: "s" }, ...series.map((s, i) => ({ label: s.label, stroke: colours[i % 3] }))],
          },
          [xs, ...series.map((s) => s.ys)],
          // deno-lint-ignore no-explicit-any
          (globalThis as any).document.getElementById(id),
        );
      draw("a", "completed operations per second (30 s windows)", w.map((x) => x.t), [
        { label: "ops/s", ys: w.map((x) => x.opsPerS) },
      ]);
      draw("b", "p99 latency of completed operations, ms (30 s windows)", w.map((x) => x.t), [
        { label: "p99 ms", ys: w.map((x) => x.p99Ms) },
      ]);
      const members = samples[0]?.rssMiB.length ?? 0;
      const ts = samples.map((s) => s.t);
      draw(
        "c",
        "resident memory per member, MiB (empty while killed)",
        ts,
        [...Array(members).keys()].map((i) => ({ label: `infra${i}`, ys: samples.map((s) => s.rssMiB[i]) })),
      );
      draw(
        "d",
        "open file descriptors per member",
        ts,
        [...Array(members).keys()].map((i) => ({ label: `infra${i}`, ys: samples.map((s) => s.fds[i]) })),
      );
    }, { w, samples });
    await page.screenshot({ path: file, fullPage: true });
  } finally {
    await browser.close();
  }
}

async function soak(impl: Impl, minutes: number, out: string): Promise<void> {
  assert(NetLab.available(), "the soak needs root, ip and iptables");
  const lab = await NetLab.create(3);
  const dir = await Deno.makeTempDir({ prefix: "etcd-ts-soak-" });
  const members = [0, 1, 2].map((i) => new LabMember(lab, impl, i, `${dir}/infra${i}.etcd`));
  const initialCluster = members.map((m, i) => `infra${i}=http://${m.ip}:2380`).join(",");
  const files = { out: `${dir}/history.json`, stop: `${dir}/stop` };
  const samples: ResourceSample[] = [];
  let worker: Deno.ChildProcess | undefined;
  let sampler: ReturnType<typeof setInterval> | undefined;
  try {
    for (const m of members) m.start(initialCluster, "new");
    let leader = await leaderOf(lab, members, [0, 1, 2]);
    const started = Date.now();
    const w = startWorker(lab, members, minutes * 60 + 120, files);
    worker = w.child;
    const sample = () => {
      const r = members.map((m) => {
        try {
          return m.resources();
        } catch {
          return undefined; // killed just now
        }
      });
      samples.push({
        t: (Date.now() - started) / 1000,
        rssMiB: r.map((x) => x === undefined ? null : Math.round(x.rssMiB)),
        fds: r.map((x) => x?.fds ?? null),
      });
    };
    sampler = setInterval(sample, SAMPLE_MS);
    let faults = 0;
    while (Date.now() - started < minutes * 60_000) {
      leader = await faultCycle(lab, members, initialCluster, leader);
      faults += 4;
      console.error(`${((Date.now() - started) / 60_000).toFixed(1)} min: ${faults} faults`);
    }
    clearInterval(sampler);
    sampler = undefined;
    await Deno.writeTextFile(files.stop, "");
    const status = await worker.status;
    worker = undefined;
    assert(status.success, await w.stderr);
    const seconds = (Date.now() - started) / 1000;
    const result = JSON.parse(await Deno.readTextFile(files.out)) as WorkerResult;
    const perWindow = windows(result.ops, WINDOW_MS);
    // the figures first, marked unchecked: the checks of a long history can take long
    const completed = result.ops.filter((o) => o.return !== undefined).length;
    await Deno.writeTextFile(`${out}.json`, JSON.stringify({ checked: false, windows: perWindow, samples }));
    await plot(
      `${out}.png`,
      `${impl}: ${minutes} min, ${faults} faults, ${completed} operations completed (checks running)`,
      perWindow,
      samples,
    );
    console.error(`figures written to ${out}.png; checking ${result.ops.length} operations`);
    const checkStarted = Date.now();
    const outcome = await checkLabOutcome(lab, members, result);
    const checkSeconds = (Date.now() - checkStarted) / 1000;
    const peak = (pick: (s: ResourceSample) => (number | null)[]) =>
      samples.flatMap((s) => pick(s).filter((x): x is number => x !== null)).reduce(
        (a, b) => Math.max(a, b),
        0,
      );
    const summary = {
      scenario: `soak (3 members, ${minutes} min)`,
      impl,
      faults,
      seconds,
      checkSeconds,
      ...outcome,
      peakRssMiB: peak((s) => s.rssMiB),
      peakFds: peak((s) => s.fds),
    };
    report(summary);
    await Deno.writeTextFile(
      `${out}.json`,
      JSON.stringify({ checked: true, summary, windows: perWindow, samples }, null, 1),
    );
    await plot(
      `${out}.png`,
      `${impl}: ${minutes} min, ${faults} faults, ${outcome.completed} operations completed, no anomaly`,
      perWindow,
      samples,
    );
  } catch (err) {
    const logs = members.map((m) => `== infra${m.index}\n${m.log.slice(-20_000)}`).join("\n");
    await Deno.writeTextFile(`${out}-failure.log`, `${(err as Error).stack}\n${logs}`);
    throw err;
  } finally {
    if (sampler !== undefined) clearInterval(sampler);
    await stopLab(lab, members, worker, dir);
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      minutes: { type: "string", default: "30" },
      impl: { type: "string", default: "etcd-ts" },
      out: { type: "string", default: "docs/soak" },
    },
  });
  await soak(values.impl as Impl, Number(values.minutes), values.out!);
}
