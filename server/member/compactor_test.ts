import { assertEquals } from "../../tests/assert.ts";
import type { Clock } from "../clock.ts";
import { Compactor, parseRetention, REVISION_MODE_INTERVAL_MS } from "./compactor.ts";

/** A clock whose time moves only when told; interval callbacks run as time passes them. */
class FakeClock implements Clock {
  t = 0;
  private next = 1;
  private readonly intervals = new Map<number, { fn: () => void; ms: number; due: number }>();
  now(): number {
    return this.t;
  }
  setInterval(fn: () => void, ms: number): number {
    const id = this.next++;
    this.intervals.set(id, { fn, ms, due: this.t + ms });
    return id;
  }
  clearInterval(id: number): void {
    this.intervals.delete(id);
  }
  setTimeout(): number {
    throw new Error("not used");
  }
  clearTimeout(): void {}
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      let first: { fn: () => void; ms: number; due: number } | undefined;
      for (const i of this.intervals.values()) if (i.due <= end && (!first || i.due < first.due)) first = i;
      if (!first) break;
      this.t = first.due;
      first.due += first.ms;
      first.fn();
      await Promise.resolve();
      await Promise.resolve();
    }
    this.t = end;
  }
}

function target(start = 1) {
  const state = { rev: start, compacted: [] as number[] };
  return {
    state,
    currentRevision: () => state.rev,
    compact: (r: number) => {
      state.compacted.push(r);
      return Promise.resolve();
    },
  };
}

Deno.test("retention: integers are hours or revisions, otherwise a duration; 0 is off", () => {
  assertEquals(parseRetention("periodic", "1"), { mode: "periodic", periodMs: 3600_000 });
  assertEquals(parseRetention("periodic", "30m"), { mode: "periodic", periodMs: 1800_000 });
  assertEquals(parseRetention("revision", "1000"), { mode: "revision", revisions: 1000 });
  assertEquals(parseRetention("periodic", "0"), undefined);
  assertEquals(parseRetention("periodic", ""), undefined);
});

Deno.test("periodic: compacts to the revision of one period ago, only once a period was observed", async () => {
  const clock = new FakeClock();
  const t = target();
  const c = new Compactor({ mode: "periodic", periodMs: 10_000 }, t, clock);
  c.setLeader(true);
  c.start();
  // one write per second
  for (let s = 1; s <= 9; s++) {
    t.state.rev++;
    await clock.advance(1000);
  }
  assertEquals(t.state.compacted, []);
  for (let s = 10; s <= 15; s++) {
    t.state.rev++;
    await clock.advance(1000);
  }
  // at t=10 s the sample of t=0 (rev 1) is one period old; then the window slides one sample per second
  assertEquals(t.state.compacted, [1, 2, 3, 4, 5, 6]);
  c.stop();
});

Deno.test("periodic: a follower does not compact", async () => {
  const clock = new FakeClock();
  const t = target();
  const c = new Compactor({ mode: "periodic", periodMs: 1000 }, t, clock);
  c.start();
  for (let s = 0; s < 30; s++) {
    t.state.rev++;
    await clock.advance(100);
  }
  assertEquals(t.state.compacted, []);
  c.stop();
});

Deno.test("revision: every five minutes compacts to current minus retention", async () => {
  const clock = new FakeClock();
  const t = target(50);
  const c = new Compactor({ mode: "revision", revisions: 100 }, t, clock);
  c.setLeader(true);
  c.start();
  await clock.advance(REVISION_MODE_INTERVAL_MS);
  assertEquals(t.state.compacted, []); // 50 - 100 < 0
  t.state.rev = 1000;
  await clock.advance(REVISION_MODE_INTERVAL_MS);
  assertEquals(t.state.compacted, [900]);
  await clock.advance(REVISION_MODE_INTERVAL_MS);
  assertEquals(t.state.compacted, [900]); // nothing new
  c.stop();
});
