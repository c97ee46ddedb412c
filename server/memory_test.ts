import { assert, assertEquals } from "../tests/assert.ts";
import type { Clock } from "./clock.ts";
import { IDLE_CHECK_MS, loadMallocTrim, MAX_TRIM_INTERVAL_MS, startTrimming } from "./memory.ts";

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

/** A clock whose intervals run when `advance` passes them. */
function manualClock() {
  let t = 0;
  const timers = new Map<number, { fn: () => void; ms: number; due: number }>();
  let next = 1;
  const clock: Clock = {
    now: () => t,
    setInterval: (fn, ms) => {
      timers.set(next, { fn, ms, due: t + ms });
      return next++;
    },
    clearInterval: (id) => void timers.delete(id),
    setTimeout: () => 0,
    clearTimeout: () => {},
  };
  const advance = (ms: number) => {
    const end = t + ms;
    for (;;) {
      const due = [...timers.values()].filter((x) => x.due <= end).sort((a, b) => a.due - b.due)[0];
      if (!due) break;
      t = due.due;
      due.due += due.ms;
      due.fn();
    }
    t = end;
  };
  return { clock, advance, timers };
}

Deno.test("trimming waits for a quiet moment after a burst, once, and at a bounded interval under load", () => {
  const { clock, advance, timers } = manualClock();
  let requests = 0;
  let trims = 0;
  const stop = startTrimming(
    () => {
      trims++;
      return true;
    },
    clock,
    () => requests,
  );
  // idle from the start: nothing to give back yet
  advance(10 * IDLE_CHECK_MS);
  assertEquals(trims, 0);
  // a burst: requests keep coming, no trim while busy (well below the longest interval)
  for (let i = 0; i < 20; i++) {
    requests += 100;
    advance(IDLE_CHECK_MS);
  }
  assertEquals(trims, 0);
  // the burst ends: one trim at the next quiet check, then none while it stays quiet
  advance(IDLE_CHECK_MS);
  assertEquals(trims, 1);
  advance(20 * IDLE_CHECK_MS);
  assertEquals(trims, 1);
  // sustained load: a trim at most every MAX_TRIM_INTERVAL_MS
  const steps = (2 * MAX_TRIM_INTERVAL_MS) / IDLE_CHECK_MS;
  for (let i = 0; i < steps; i++) {
    requests++;
    advance(IDLE_CHECK_MS);
  }
  assertEquals(trims, 3);
  stop();
  assertEquals(timers.size, 0);
});
