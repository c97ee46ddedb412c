/**
 * Time as the server sees it. Production uses the system clock; tests inject their own.
 *
 * @module
 */

/** Timers and the current time in milliseconds. */
export interface Clock {
  now(): number;
  setInterval(fn: () => void, ms: number): number;
  clearInterval(id: number): void;
  setTimeout(fn: () => void, ms: number): number;
  clearTimeout(id: number): void;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setInterval: (fn, ms) => Number(setInterval(fn, ms)),
  clearInterval: (id) => clearInterval(id),
  setTimeout: (fn, ms) => Number(setTimeout(fn, ms)),
  clearTimeout: (id) => clearTimeout(id),
};
