/**
 * What production code needs from the world besides the disk and the network, in virtual time: the
 * server's {@link Clock} over the simulator's {@link EventQueue}, and a way to let asynchronous code run
 * to a standstill between two events.
 *
 * Production code is asynchronous (`await wal.sync()`), so an event that completes an I/O only resumes
 * the code that waited for it in later microtasks. {@link Settler.settle} waits for one macrotask, which
 * runs every microtask queued until then, and those queued by them, before it returns: after it, the
 * code has done everything it can do at this virtual time and waits for the next event. Nothing else
 * may run in between: the simulated code makes no real I/O and sets no real timer, so the order of
 * everything is fixed by the seed.
 *
 * @module
 */
// A MessageChannel message is no barrier for async generators in Deno, and setTimeout(0) is clamped to
// 4 ms when nested: setImmediate is the cheap (4 us) real macrotask.
import { setImmediate } from "node:timers";
import type { Clock } from "../../server/clock.ts";
import type { EventQueue } from "./network.ts";

/** Lets pending microtasks run to completion (see the module doc). */
export class Settler {
  /** Resolves once every microtask queued before and during the wait has run (one macrotask later). */
  settle(): Promise<void> {
    return new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** Nothing to release; kept so that callers can end a run the same way whatever the mechanism. */
  close(): void {}
}

/**
 * The server's clock for one process in virtual time. {@link SimClock.kill} models the process dying:
 * its timers never fire again.
 */
export class SimClock implements Clock {
  private nextId = 1;
  private readonly live = new Set<number>();
  private dead = false;

  constructor(private readonly queue: EventQueue) {}

  now(): number {
    return this.queue.now;
  }

  setTimeout(fn: () => void, ms: number): number {
    const id = this.nextId++;
    this.live.add(id);
    this.queue.after(Math.max(0, ms), () => {
      if (this.dead || !this.live.delete(id)) return;
      fn();
    });
    return id;
  }

  clearTimeout(id: number): void {
    this.live.delete(id);
  }

  setInterval(fn: () => void, ms: number): number {
    const id = this.nextId++;
    this.live.add(id);
    const every = Math.max(1, ms);
    const fire = (): void => {
      if (this.dead || !this.live.has(id)) return;
      this.queue.after(every, fire);
      fn();
    };
    this.queue.after(every, fire);
    return id;
  }

  clearInterval(id: number): void {
    this.live.delete(id);
  }

  /** The process died: no timer of this clock fires again. */
  kill(): void {
    this.dead = true;
    this.live.clear();
  }
}
