/**
 * Gives the memory a burst of work freed back to the system once the member has been quiet for a while.
 *
 * Buffers that V8 hands out for `Uint8Array`s, and Deno's own allocations, come from glibc's allocator.
 * After a burst of requests most of them are free again, but glibc keeps freed memory that lies below
 * memory still in use, so the process's RSS stays where the burst took it. `malloc_trim` gives those pages
 * back (docs/benchmarks.md has how much).
 *
 * The trim holds the allocator for as long as it works, tens of milliseconds for tens of megabytes. Under
 * load that would stall requests, and the memory would soon be taken again. So it runs only once a member
 * has received no request and applied no entry for {@link QUIET_MS}, and once per quiet spell. An idle
 * member only sends and answers heartbeats, and a pause of that length does not delay them past a timeout.
 *
 * Where there is no glibc (another OS, musl) or no FFI permission, nothing is trimmed.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { Logger } from "../logger.ts";

/** How long a member must have been quiet before freed memory is given back. */
export const QUIET_MS = 5000;
/** How often the member's activity is looked at. */
export const CHECK_MS = 1000;

/**
 * glibc's `malloc_trim(0)`: gives freed heap memory back to the system, and says whether any was.
 * Undefined where it cannot be called. The library is opened once per process.
 */
export function glibcMallocTrim(): (() => boolean) | undefined {
  if (mallocTrim === null) mallocTrim = openMallocTrim();
  return mallocTrim;
}

let mallocTrim: (() => boolean) | undefined | null = null;

function openMallocTrim(): (() => boolean) | undefined {
  if (Deno.build.os !== "linux") return undefined;
  try {
    // asked first, so that a process started without the permission is not prompted for it
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return undefined;
    const libc = Deno.dlopen("libc.so.6", { malloc_trim: { parameters: ["usize"], result: "i32" } });
    return () => libc.symbols.malloc_trim(0n) === 1;
  } catch {
    return undefined;
  }
}

/** What {@link IdleTrim} needs. */
export interface IdleTrimOptions {
  /** Gives freed memory back; true if there was some. */
  trim: () => boolean;
  /**
   * A number that changes whenever the member does work (requests received, entries applied). It only
   * has to differ from one look to the next while the member is busy.
   */
  activity: () => number;
  clock: Clock;
  logger: Logger;
  /** Default {@link QUIET_MS}. */
  quietMs?: number;
  /** Default {@link CHECK_MS}. */
  checkMs?: number;
}

/** Trims once per quiet spell of the member. */
export class IdleTrim {
  #timer: number | undefined;
  #last: number;
  #since: number;
  #trimmed = false;
  /** Trims made so far. */
  trims = 0;

  constructor(private readonly o: IdleTrimOptions) {
    this.#last = o.activity();
    this.#since = o.clock.now();
  }

  start(): void {
    this.#timer ??= this.o.clock.setInterval(() => this.check(), this.o.checkMs ?? CHECK_MS);
  }

  stop(): void {
    if (this.#timer !== undefined) this.o.clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Looks at the member's activity, and trims if it has been quiet long enough since the last trim. */
  check(): void {
    const now = this.o.clock.now();
    const activity = this.o.activity();
    if (activity !== this.#last) {
      this.#last = activity;
      this.#since = now;
      this.#trimmed = false;
      return;
    }
    if (this.#trimmed || now - this.#since < (this.o.quietMs ?? QUIET_MS)) return;
    this.#trimmed = true;
    this.trims++;
    const started = performance.now();
    const released = this.o.trim();
    this.o.logger.debug("gave freed heap memory back to the system", {
      released,
      "took-ms": Math.round((performance.now() - started) * 10) / 10,
    });
  }
}
