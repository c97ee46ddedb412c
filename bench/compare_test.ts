import { assertEquals } from "../tests/assert.ts";
import { medianRow, roundRatios, table, toMs } from "./compare.ts";

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
