import { assert, assertEquals } from "../tests/assert.ts";
import type { Clock } from "./clock.ts";
import { loadMallocTrim, startTrimming, TRIM_INTERVAL_MS } from "./memory.ts";

Deno.test({
  name: "malloc_trim is reachable through FFI on Linux with glibc, and callable",
  ignore: Deno.build.os !== "linux",
  fn: () => {
    const trim = loadMallocTrim();
    assert(trim, "glibc's malloc_trim could not be loaded");
    // glibc answers 1 (memory released) or 0 (nothing to release); either way the call must go through
    assertEquals(typeof trim(), "boolean");
  },
});

Deno.test("trimming runs on the clock's interval until stopped", () => {
  const timers = new Map<number, { fn: () => void; ms: number }>();
  let next = 1;
  const clock: Clock = {
    now: () => 0,
    setInterval: (fn, ms) => {
      timers.set(next, { fn, ms });
      return next++;
    },
    clearInterval: (id) => void timers.delete(id),
    setTimeout: () => 0,
    clearTimeout: () => {},
  };
  let calls = 0;
  const stop = startTrimming(() => {
    calls++;
    return true;
  }, clock);
  assertEquals([...timers.values()].map((t) => t.ms), [TRIM_INTERVAL_MS]);
  for (const t of timers.values()) t.fn();
  assertEquals(calls, 1);
  stop();
  assertEquals(timers.size, 0);
});
