import { assertEquals } from "../tests/assert.ts";
import {
  generatorNodeFlags,
  type LatencyRound,
  latencyTable,
  medianRow,
  roundRatios,
  steadyP99,
  table,
  toMs,
} from "./compare.ts";

Deno.test("h2load durations convert to milliseconds", () => {
  assertEquals(toMs("850us"), 0.85);
  assertEquals(toMs("1.20ms"), 1.2);
  assertEquals(toMs("2.5s"), 2500);
  assertEquals(toMs("n/a"), null);
});

Deno.test("the table shows the ratio etcd-ts / etcd, latencies, memory, and words for failed rows", () => {
  const out = table(["put", "watch"], {
    etcd: { put: { opsPerS: 1000, p50: 1, p99: 5.5, rssMiB: 40.2 }, watch: { problem: "DOWN" } },
    "etcd-ts": { put: { opsPerS: 1500, p50: 0.5, p99: 4, rssMiB: 80.7 }, watch: { opsPerS: 10 } },
  }).split("\n");
  assertEquals(out.length, 3);
  assertEquals(out[1].split(/\s+/), [
    "put",
    "1000",
    "1500",
    "1.50",
    "1.00",
    "5.50",
    "0.50",
    "4.00",
    "40",
    "81",
  ]);
  assertEquals(out[2].split(/\s+/), ["watch", "DOWN", "10", "-", "-", "-", "-", "-", "-", "-"]);
});

Deno.test("rounds: the median of each figure, the highest memory, a failed round shows; the ratio of each round", () => {
  assertEquals(
    medianRow([
      { opsPerS: 900, p50: 0.5, p99: 4, rssMiB: 90 },
      { opsPerS: 1500, p50: 0.3, p99: 2, rssMiB: 95 },
      { opsPerS: 1100, p50: 0.4, p99: 9, rssMiB: 80 },
    ]),
    { opsPerS: 1100, p50: 0.4, p99: 4, rssMiB: 95 },
  );
  assertEquals(medianRow([{ opsPerS: 100, p50: 1, p99: 2 }, { opsPerS: 201, p50: 2, p99: 3 }]).opsPerS, 151);
  assertEquals(medianRow([{ opsPerS: 900 }, { problem: "ERRORS(3)" }]), { problem: "ERRORS(3)" });
  const round = (e: number, t: number) => ({
    etcd: { put1: { opsPerS: e } },
    "etcd-ts": { put1: { opsPerS: t } },
  });
  assertEquals(roundRatios(["put1"], [round(1000, 1200), round(800, 1000)]), "put1       1.20 1.25");
});

Deno.test("latency rounds: medians per mode and server, the open loop's two parts, each round's p99", () => {
  const round = (p99: number, late: number, send: number, failed = false): LatencyRound => ({
    "closed-1": {
      etcd: { opsPerS: 2000, p50: 0.4, p99: 1.2, p999: 4, max: 10, steadyP99: 1.1 },
      "etcd-ts": failed
        ? { problem: "ERRORS(2)" }
        : { opsPerS: 3000, p50: 0.3, p99: 1, p999: 5, max: 12, steadyP99: 0.9 },
    },
    "open-500/s": {
      etcd: { opsPerS: 500, p50: 1.3, p99: 3.5, p999: 11, max: 16, lateP99: 1.4, fromSendP99: 2.9 },
      "etcd-ts": {
        opsPerS: 500,
        p50: 1.2,
        p99,
        p999: 12,
        max: 17,
        steadyP99: p99 - 1,
        lateP99: late,
        fromSendP99: send,
      },
    },
  });
  const modes = ["closed-1", "open-500/s"];
  const out = latencyTable(modes, [round(4.5, 1.7, 3.4), round(3.9, 1.5, 3.0), round(4.1, 1.6, 3.2)])
    .split("\n");
  assertEquals(out[0].split(/\s+/), [
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
  ]);
  // a closed loop has no lateness of its own to report
  assertEquals(out[2].split(/\s+/), [
    "closed-1",
    "etcd-ts",
    "3000",
    "0.30",
    "1.00",
    "5.00",
    "12.00",
    "0.90",
    "-",
    "-",
  ]);
  assertEquals(out[4].split(/\s+/), [
    "open-500/s",
    "etcd-ts",
    "500",
    "1.20",
    "4.10",
    "12.00",
    "17.00",
    "3.10",
    "1.60",
    "3.20",
  ]);
  assertEquals(out[5], "(medians of 3 rounds; the p99 of each round:)");
  assertEquals(out[9].split(/\s+/), ["open-500/s", "etcd-ts", "4.50", "3.90", "4.10"]);
  // a round that failed is shown, not averaged away; one round prints no spread
  const failed = latencyTable(modes, [round(4, 1, 3), round(4, 1, 3, true)]).split("\n");
  assertEquals(failed[2].split(/\s+/).slice(0, 3), ["closed-1", "etcd-ts", "ERRORS(2)"]);
  assertEquals(latencyTable(modes, [round(4, 1, 3)]).split("\n").length, 5);
});

Deno.test("a generator of one client or at a fixed rate gets a small young generation; a saturating one does not", () => {
  const small = ["--max-semi-space-size=1"];
  assertEquals(generatorNodeFlags(["--workload", "put", "--clients", "1", "--conns", "1"]), small);
  assertEquals(generatorNodeFlags(["--workload", "put", "--rate", "500", "--conns", "10"]), small);
  assertEquals(generatorNodeFlags(["--workload", "put"]), small);
  assertEquals(generatorNodeFlags(["--workload", "put", "--clients", "100", "--conns", "10"]), []);
  assertEquals(generatorNodeFlags(["--workload", "watch", "--clients", "10", "--conns", "5"]), []);
  assertEquals(generatorNodeFlags(["--workload", "put", "--clients", "100", "--rate", "0"]), []);
});

Deno.test("p99_after leaves out the client's first 2 s, and is empty for a run no longer than that", () => {
  // 100 puts in the first 2 s, slow; 100 after, fast but for one
  const trace: [number, number, number][] = [];
  for (let i = 0; i < 100; i++) trace.push([i * 19, 9, 0]);
  for (let i = 0; i < 100; i++) trace.push([2000 + i * 10, i === 50 ? 4 : 1, 0]);
  assertEquals(steadyP99(trace), 1);
  trace.push([2500, 5, 0], [2600, 6, 0]);
  assertEquals(steadyP99(trace), 5);
  assertEquals(steadyP99(trace.slice(0, 100)), null);
});
