/**
 * A clock for unit tests: time moves only when the test says so, and timers run as time passes them.
 *
 * @module
 */
import type { Clock } from "../server/clock.ts";

/** A clock whose time moves only when told; timers run as time passes them. */
export class FakeClock implements Clock {
  t = 0;
  private next = 1;
  private readonly timers = new Map<number, { fn: () => void; due: number; every?: number }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): number {
    const id = this.next++;
    this.timers.set(id, { fn, due: this.t + ms });
    return id;
  }
  clearTimeout(id: number): void {
    this.timers.delete(id);
  }
  setInterval(fn: () => void, ms: number): number {
    const id = this.next++;
    this.timers.set(id, { fn, due: this.t + ms, every: ms });
    return id;
  }
  clearInterval(id: number): void {
    this.timers.delete(id);
  }
  /** Timers waiting. */
  get pending(): number {
    return this.timers.size;
  }
  /** Moves time on by `ms`, running each timer due on the way and letting what it started settle. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      let first: [number, { fn: () => void; due: number; every?: number }] | undefined;
      for (const e of this.timers) if (e[1].due <= end && (!first || e[1].due < first[1].due)) first = e;
      if (!first) break;
      const [id, timer] = first;
      this.t = timer.due;
      if (timer.every === undefined) this.timers.delete(id);
      else timer.due += timer.every;
      timer.fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

/** Lets every promise chain started so far run to its end (one macrotask turn). */
function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}
