import { assert, assertEquals } from "../assert.ts";
import {
  digestOf,
  failureReason,
  SeededRunFailure,
  SimTrace,
  SimViolation,
  TermLeaders,
  TermVotes,
} from "./sim_checks.ts";

Deno.test("sim checks: a second leader of a term is a conflict, the same one is not", () => {
  const leaders = new TermLeaders();
  assertEquals(leaders.record(3, 1n), { kind: "first" });
  assertEquals(leaders.record(3, 1n), { kind: "known" });
  assertEquals(leaders.record(4, 2n), { kind: "first" });
  assertEquals(leaders.record(3, 2n), { kind: "conflict", other: 1n });
});

Deno.test("sim checks: a vote changed within a term is reported with the earlier one", () => {
  const votes = new TermVotes();
  assertEquals(votes.record(2, 1n), undefined);
  assertEquals(votes.record(2, 1n), undefined);
  assertEquals(votes.record(3, 2n), undefined);
  assertEquals(votes.record(2, 3n), 1n);
});

Deno.test("sim checks: a failure names the seed, the reason, the replay and the trace's tail", () => {
  const trace = Array.from({ length: 100 }, (_, i) => `line ${i}`);
  const f = new SeededRunFailure("a simulation", 7, 120, "something broke", trace, "REPLAY 7");
  assert(f.message.startsWith("a simulation failed: seed 7 at t=120ms: something broke\nreplay: REPLAY 7"));
  assert(f.message.includes("line 99") && f.message.includes("line 20") && !f.message.includes("line 19\n"));
  assertEquals(
    new SeededRunFailure("x", 1, 0, "r", [], "R").message,
    "x failed: seed 1 at t=0ms: r\nreplay: R",
  );
  assertEquals(failureReason(new SimViolation("two leaders")), "two leaders");
  assert(failureReason(new Error("boom")).startsWith("exception: Error: boom"));
});

Deno.test("sim checks: a trace keeps lines, with their time, only when enabled", () => {
  let now = 5;
  const on = new SimTrace(true, () => now);
  on.add(() => "a");
  now = 9;
  on.add(() => "b");
  assertEquals(on.lines, ["5 a", "9 b"]);
  const off = new SimTrace(false, () => now);
  off.add(() => {
    throw new Error("a line is not built when tracing is off");
  });
  assertEquals(off.lines, []);
});

Deno.test("sim checks: a digest is FNV-1a over the parts, as if they were one string", () => {
  assertEquals(digestOf([]), "811c9dc5");
  assertEquals(digestOf(["a"]), "e40c292c");
  assertEquals(digestOf(["ab", "c"]), digestOf(["abc"]));
  assert(digestOf(["abc"]) !== digestOf(["abd"]));
});
