import { assertEquals } from "../assert.ts";
import { windows } from "./soak.ts";

Deno.test("soak: completed operations per second and p99 per window; pending calls and the cut-short last window left out", () => {
  const ops = [];
  // 100 operations in the first second (latency 1..100 ms), 50 in the second, one pending, one in a third
  for (let i = 0; i < 100; i++) {
    ops.push({ client: 0, input: { kind: "get", key: "k" }, call: i, return: i + 1 + i });
  }
  for (let i = 0; i < 50; i++) {
    ops.push({ client: 0, input: { kind: "get", key: "k" }, call: 1000 + i, return: 1010 + i });
  }
  ops.push({ client: 1, input: { kind: "put", key: "k", value: "v" }, call: 5 });
  ops.push({ client: 0, input: { kind: "get", key: "k" }, call: 2100, return: 2500 });
  // deno-lint-ignore no-explicit-any
  const w = windows(ops as any, 1000);
  assertEquals(w.map((x) => [x.t, x.opsPerS]), [[1, 100], [2, 50]]);
  assertEquals(w[0].p99Ms, 100);
  assertEquals(w[1].p99Ms, 10);
});
