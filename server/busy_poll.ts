/**
 * Busy polling: a member that has just answered a client keeps its event loop turning for a short window
 * (`--busy-poll-duration`, 500 µs by default) instead of going to sleep in the kernel, so that the
 * client's next request is read as soon as it arrives.
 *
 * A member answers on one thread. When that thread sleeps between an answer and the next request, the
 * request has to wake it, and when nothing else ran on its core, the core itself; on the virtual machines
 * measured for docs/benchmarks.md that is 33-37 µs a wake-up, some 8% of a put from one client that writes
 * one key after another. Go's runtime keeps idle threads spinning for a while for the same reason.
 *
 * Polling costs CPU for as long as the window lasts, so the member does it only while it pays off:
 * - **No other call is open.** An answer written while any client connection still has a stream open (a
 *   request being served, a watch) opens no window: more is coming anyway. Polling is for one client
 *   waiting on its own answers.
 * - **The answers are followed by requests.** Of the last {@link HISTORY} answers, at least
 *   {@link HITS_NEEDED} were followed within the window by a request on the connection answered (counted
 *   whether polling or not, so it comes back when a client speeds up). Bytes from another connection end
 *   the window but count against it: a loop that sleeps between several clients reads more of them per
 *   turn, and polling cost h2load's ten connections 2-5%. A client that pauses, or a watch stream that
 *   only receives, turns it off after a few answers.
 * - **A core is free.** When the thread had to wait for a core for more than {@link CONTENDED_SHARE} of
 *   the last {@link CONTENTION_PERIOD_MS} ms (the kernel's count of the time it sat runnable without
 *   running, `/proc/thread-self/schedstat`), the cores are busy and polling would take one from another
 *   process. Several members on one small machine are the usual case.
 * - **The event loop is not busy anyway.** When bytes arrive before a window's first turn, the next
 *   {@link BUSY_SKIP} answers open no window.
 *
 * Polling stops as soon as a client's bytes arrive; the request is served as usual and its answer opens
 * the next window.
 *
 * The clock, the way to schedule one more turn of the event loop and the reading of the wait are injected;
 * {@link startBusyPoll} wires the real ones.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { PROC, type ProcSource } from "./metrics/process_metrics.ts";

/** How many of the latest answers decide whether to poll. */
export const HISTORY = 16;
/** Answers of the latest {@link HISTORY} that must have been followed by a request within the window. */
export const HITS_NEEDED = 12;
/** How often the thread's wait for a core is read, in milliseconds. */
export const CONTENTION_PERIOD_MS = 100;
/** The share of a period spent waiting for a core above which the member does not poll. */
export const CONTENDED_SHARE = 0.05;
/**
 * Answers after which no window opens when a client's bytes arrived before a window's first turn: the
 * event loop had input waiting anyway, so polling would only add turns to a busy loop.
 */
export const BUSY_SKIP = 8;

/** What the poller needs from the process. */
export interface BusyPollHost {
  /** Monotonic milliseconds. */
  now(): number;
  /** Runs `step` on a later turn of the event loop, after the sockets were polled without sleeping. */
  turn(step: () => void): void;
  /**
   * Milliseconds this thread has waited for a core since it started, or undefined when that cannot be
   * read (then contention never stops the polling).
   */
  coreWaitMs(): number | undefined;
}

/** Counts of what the poller did, for tests and the benchmarks' notes. */
export interface BusyPollStats {
  /** Windows opened. */
  windows: number;
  /** Event-loop turns spent polling. */
  turns: number;
  /** Answers followed by a request within the window (whether polling or not). */
  hits: number;
  /** Answers not followed by one. */
  misses: number;
}

/** Told of a member's client traffic by the transport; decides when to keep the event loop turning. */
export class BusyPoller {
  readonly #windowMs: number;
  readonly #host: BusyPollHost;
  /** The latest outcomes, one bit each (1: a request followed), newest in bit 0. */
  #history = 0;
  #recorded = 0;
  /** When the answer that still waits for its outcome was written; undefined when none waits. */
  #answeredAt: number | undefined;
  /** The connection that answer went to. */
  #answeredConn = 0;
  #pollUntil = 0;
  /** A window is open. */
  #open = false;
  /** A turn is queued. */
  #turning = false;
  #windowTurns = 0;
  #skip = 0;
  #openStreams = 0;
  #contended = false;
  #periodStart: number | undefined;
  #waitAtPeriodStart = 0;
  readonly stats: BusyPollStats = { windows: 0, turns: 0, hits: 0, misses: 0 };

  constructor(windowMs: number, host: BusyPollHost) {
    this.#windowMs = windowMs;
    this.#host = host;
  }

  /** An answer (or any other bytes) was written to client connection `conn`. */
  answered(conn: number): void {
    if (this.#windowMs <= 0) return;
    const now = this.#host.now();
    if (this.#answeredAt === undefined) {
      this.#answeredAt = now;
      this.#answeredConn = conn;
    } else if (now - this.#answeredAt > this.#windowMs) {
      // the earlier answer's window ended without a request
      this.#record(false);
      this.#answeredAt = now;
      this.#answeredConn = conn;
    }
    if (this.#openStreams > 0) return;
    if (this.#skip > 0) {
      this.#skip--;
      return;
    }
    if (!this.#worthPolling(now)) return;
    this.#pollUntil = now + this.#windowMs;
    if (!this.#open) {
      this.#open = true;
      this.#windowTurns = 0;
      this.stats.windows++;
    }
    if (this.#turning) return;
    this.#turning = true;
    this.#host.turn(this.#step);
  }

  /** Bytes arrived from client connection `conn`. */
  received(conn: number): void {
    if (this.#windowMs <= 0) return;
    const now = this.#host.now();
    if (this.#answeredAt !== undefined) {
      this.#record(now - this.#answeredAt <= this.#windowMs && conn === this.#answeredConn);
      this.#answeredAt = undefined;
    }
    if (this.#open && this.#windowTurns === 0) this.#skip = BUSY_SKIP;
    this.#open = false;
  }

  /** Streams were opened (a positive `delta`) or ended on client connections. */
  streams(delta: number): void {
    this.#openStreams += delta;
  }

  /** Whether a window is open now. */
  get polling(): boolean {
    return this.#open;
  }

  #step = (): void => {
    if (!this.#open || this.#host.now() >= this.#pollUntil) {
      this.#open = false;
      this.#turning = false;
      return;
    }
    this.#windowTurns++;
    this.stats.turns++;
    this.#host.turn(this.#step);
  };

  #record(hit: boolean): void {
    this.#history = ((this.#history << 1) | (hit ? 1 : 0)) & ((1 << HISTORY) - 1);
    if (this.#recorded < HISTORY) this.#recorded++;
    if (hit) this.stats.hits++;
    else this.stats.misses++;
  }

  #worthPolling(now: number): boolean {
    if (this.#recorded < HISTORY || popcount(this.#history) < HITS_NEEDED) return false;
    if (this.#periodStart === undefined || now - this.#periodStart >= CONTENTION_PERIOD_MS) {
      const wait = this.#host.coreWaitMs();
      if (wait === undefined) this.#contended = false;
      else {
        if (this.#periodStart !== undefined) {
          this.#contended = wait - this.#waitAtPeriodStart > CONTENDED_SHARE * (now - this.#periodStart);
        }
        this.#waitAtPeriodStart = wait;
      }
      this.#periodStart = now;
    }
    return !this.#contended;
  }
}

function popcount(bits: number): number {
  let n = 0;
  for (let b = bits; b !== 0; b &= b - 1) n++;
  return n;
}

/**
 * The wait for a core of the calling thread in milliseconds, from the second field of
 * `/proc/thread-self/schedstat` (nanoseconds); undefined where the file cannot be read.
 */
export function threadCoreWaitMs(proc: Pick<ProcSource, "readText"> = PROC): number | undefined {
  const text = proc.readText("/proc/thread-self/schedstat");
  if (text === undefined) return undefined;
  const ns = Number(text.trim().split(/\s+/)[1]);
  return Number.isFinite(ns) ? ns / 1e6 : undefined;
}

/** A poller for this process: `performance.now`, `setImmediate`, and the main thread's schedstat. */
export function startBusyPoll(windowMs: number): BusyPoller {
  // asked first, so that a process without the permission is never prompted for it
  let readable = Deno.permissions.querySync({ name: "read", path: "/proc/thread-self/schedstat" })
    .state === "granted";
  return new BusyPoller(windowMs, {
    now: () => performance.now(),
    turn: (step) => setImmediate(step),
    coreWaitMs: () => {
      if (!readable) return undefined;
      const ms = threadCoreWaitMs();
      // not Linux, or no permission: stop trying
      if (ms === undefined) readable = false;
      return ms;
    },
  });
}
