/**
 * Time as the server sees it. Production uses the system clock; tests inject their own.
 *
 * @module
 */

/** Timers and the current time in milliseconds. */
export interface Clock {
  /**
   * Milliseconds on a clock that never jumps: lease expiry, token lifetimes, timeouts and every other
   * duration are measured on it. It reads as Unix time (the wall clock when the process started, plus the
   * time elapsed since), so it can also stamp things, but a later change of the wall clock does not
   * move it, as Go's monotonic readings do not move etcd's durations.
   */
  now(): number;
  setInterval(fn: () => void, ms: number): number;
  clearInterval(id: number): void;
  setTimeout(fn: () => void, ms: number): number;
  clearTimeout(id: number): void;
}

/** The real clock: monotonic time anchored at the process's start (see {@link Clock.now}). */
export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setInterval: (fn, ms) => Number(setInterval(fn, ms)),
  clearInterval: (id) => clearInterval(id),
  setTimeout: (fn, ms) => Number(setTimeout(fn, ms)),
  clearTimeout: (id) => clearTimeout(id),
};
