import { assertEquals } from "../tests/assert.ts";
import { table, toMs } from "./compare.ts";

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
