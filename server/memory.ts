/**
 * Giving freed memory back to the operating system.
 *
 * Under load the runtime allocates and frees many ArrayBuffer backing stores and I/O buffers through the
 * C allocator. glibc keeps freed chunks in its free lists instead of returning them, so after a burst the
 * process stays tens of MB larger than what it uses (measured here: 143 MB resident before
 * `malloc_trim(0)`, 119 MB after, with the same live data). Go's runtime, and so etcd, returns idle
 * memory on its own; for etcd-ts a periodic `malloc_trim(0)` does the same.
 *
 * It needs FFI (granted by `--allow-all`) and glibc; anywhere else the trimmer is absent and nothing
 * happens.
 *
 * @module
 */
import type { Clock } from "./clock.ts";

/** How often the trimmer looks for a quiet moment. */
export const IDLE_CHECK_MS = 250;
/** Under sustained load, the longest time between two trims. */
export const MAX_TRIM_INTERVAL_MS = 30_000;

/** Calls glibc's `malloc_trim(0)`; returns whether memory was released. */
export type Trimmer = () => boolean;

/** glibc's `malloc_trim` through FFI, or undefined where it cannot be loaded. */
export function loadMallocTrim(): Trimmer | undefined {
  if (Deno.build.os !== "linux") return undefined;
  try {
    const lib = Deno.dlopen("libc.so.6", { malloc_trim: { parameters: ["usize"], result: "i32" } });
    return () => lib.symbols.malloc_trim(0n) === 1;
  } catch {
    return undefined; // no FFI permission, or not glibc (e.g. musl)
  }
}

/**
 * Trims once a burst of requests is over (no new request for {@link IDLE_CHECK_MS}), and at most every
 * {@link MAX_TRIM_INTERVAL_MS} under sustained load: a trim makes the allocator hand pages back that the
 * next allocations fault in again, which costs throughput if done often while busy. `activity` is a
 * counter that moves with every request. Returns a function that stops it.
 */
export function startTrimming(trim: Trimmer, clock: Clock, activity: () => number): () => void {
  let seen = activity();
  let trimmedSinceActivity = true;
  let lastTrim = clock.now();
  const id = clock.setInterval(() => {
    const now = clock.now();
    const a = activity();
    const quiet = a === seen;
    seen = a;
    if (!quiet) trimmedSinceActivity = false;
    if ((quiet && !trimmedSinceActivity) || now - lastTrim >= MAX_TRIM_INTERVAL_MS) {
      trim();
      trimmedSinceActivity = true;
      lastTrim = now;
    }
  }, IDLE_CHECK_MS);
  return () => clock.clearInterval(id);
}
