import { assertEquals } from "./assert.ts";
import { parseSummary } from "./run_all.ts";

Deno.test("run_all reads deno test's summary line, steps and ignored included", () => {
  const text =
    "running 3 tests from ./x_test.ts\nfoo ... ok (1ms)\n\nok | 3 passed (7 steps) | 0 failed | 1 ignored (2s)\n";
  assertEquals(parseSummary(text), { passed: 3, failed: 0, ignored: 1, steps: 7 });
  assertEquals(parseSummary("FAILED | 0 passed | 2 failed (1s)\n"), {
    passed: 0,
    failed: 2,
    ignored: 0,
    steps: 0,
  });
  assertEquals(parseSummary("ok | 1 passed (1 step) | 0 failed (5ms)"), {
    passed: 1,
    failed: 0,
    ignored: 0,
    steps: 1,
  });
  assertEquals(parseSummary("error: Module not found\n"), undefined);
});
