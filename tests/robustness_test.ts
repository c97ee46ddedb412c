import { assertEquals } from "./assert.ts";
import { rowsOf, table } from "./robustness.ts";

Deno.test("robustness: report lines, fuzz lines and failed tests become rows; a clean test adds none", () => {
  const output = [
    'robustness-report {"anomalies":[],"scenario":"partitions (3 members)","impl":"etcd-ts","faults":4,' +
    '"seconds":29.6,"operations":4442}',
    "[etcd-ts] faults between real hosts ... ok (32s)",
    "fuzz rpc decoders: seed 42, 2000 inputs (1900 refused) in 1500 ms",
    "[etcd] faults between real hosts ... FAILED (25s)",
  ].join("\n");
  const rows = rowsOf("tests/partition_e2e_test.ts", output);
  assertEquals(rows.map((r) => [r.scenario, r.impl, r.operations, r.faults, r.anomalies, r.seconds]), [
    ["partitions (3 members)", "etcd-ts", "4442", "4", "none", "30"],
    ["fuzz rpc decoders (seed 42)", "etcd-ts", "2000 inputs", "0", "none", "2"],
    [
      "tests/partition_e2e_test.ts: [etcd] faults between real hosts",
      "etcd",
      "-",
      "-",
      "TEST FAILED (see its output)",
      "25",
    ],
  ]);
  const md = table(rows).split("\n");
  assertEquals(md.length, 5);
  assertEquals(md[2], "| partitions (3 members) | etcd-ts | 4442 | 4 | none | 30 |");
});

Deno.test("robustness: a test that reports nothing is listed by its name and time", () => {
  const rows = rowsOf(
    "tests/clock_jump_e2e_test.ts",
    "a lease survives a clock jump ... ok (1m)\n[etcd] a second test ... ok (2s)\n",
  );
  assertEquals(rows.map((r) => [r.scenario, r.impl, r.anomalies, r.seconds]), [
    ["tests/clock_jump_e2e_test.ts: a lease survives a clock jump", "etcd-ts", "none", "60"],
    ["tests/clock_jump_e2e_test.ts: [etcd] a second test", "etcd", "none", "2"],
  ]);
});
