/**
 * The executable's settings for glibc's allocator: a fixed size above which a block gets its own mapping,
 * and one heap for all threads.
 *
 * V8 takes the backing stores of `Uint8Array`s and other typed arrays from malloc. glibc gives a block of
 * at least `mmap_threshold` bytes (128 KiB at first) a mapping of its own, returned to the system when the
 * block is freed. But each time such a block is freed, glibc raises the threshold to its size (up to
 * 32 MiB) and the trim threshold to twice that. A member frees blocks of megabytes as it works: the key
 * space's columns when they grow, value slabs whose values were all replaced. After that, blocks of up to
 * that size come from the main heap, between short-lived request buffers, and stay there after they are
 * freed. One member after compare.sh's rows held 34 MB in malloc's main heap with 18 MB in use, and two
 * worker threads' heaps of 6 MB with 0.2 MB in use (docs/benchmarks.md).
 *
 * A fixed threshold of {@link MMAP_THRESHOLD} keeps long-lived blocks of 1 MiB and more (value slabs,
 * columns) in mappings of their own, and a fixed trim threshold lets each heap give back a free top above
 * {@link TRIM_THRESHOLD}. Per-request buffers stay well below 1 MiB, so they are not mapped one by one (a
 * threshold of 256 KiB cost throughput).
 *
 * glibc also gives each thread a heap of its own (an arena) at its first allocation, up to eight per
 * core. Nearly all of a member's allocation is its JavaScript's, on one thread;
 * V8's helper threads (compilers, garbage collection) and Deno's allocate little, yet after compare.sh's
 * rows two such heaps held 1.4-4.4 MB each. With {@link ARENA_VARIABLE} at {@link ARENA_MAX} every thread
 * uses the main heap. glibc reads it only when the process starts, and the helper threads have their heaps
 * before any JavaScript runs (`mallopt` from here changed nothing), so the executable sets it in the step
 * that restarts it for its event loop (server/io_polling.ts).
 *
 * A user's own settings win: with `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` the number of heaps is left
 * alone, and with `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` or `GLIBC_TUNABLES` the thresholds.
 * Nothing is changed where there is no glibc or no FFI permission.
 *
 * @module
 */

/** Blocks of this size and more get a mapping of their own. */
export const MMAP_THRESHOLD = 1024 * 1024;
/** A heap's free top above this size is given back at once (glibc's initial value). */
export const TRIM_THRESHOLD = 128 * 1024;

/** The variable glibc takes its largest number of heaps from, when the process starts. */
export const ARENA_VARIABLE = "MALLOC_ARENA_MAX";
/** One heap: the main one, for every thread. */
export const ARENA_MAX = "1";

/**
 * The variables for glibc that the executable starts with (see server/io_polling.ts): one heap, unless
 * the user chose otherwise in `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES`.
 */
export function mallocEnvironment(getEnv: (name: string) => string | undefined): Record<string, string> {
  const chosen = getEnv(ARENA_VARIABLE) !== undefined || getEnv("GLIBC_TUNABLES") !== undefined;
  return chosen ? {} : { [ARENA_VARIABLE]: ARENA_MAX };
}

/** {@link mallocEnvironment} for this process; nothing when it may not read its environment. */
export function processMallocEnvironment(): Record<string, string> {
  const granted = Deno.permissions.querySync({ name: "env" }).state === "granted";
  return granted ? mallocEnvironment((name) => Deno.env.get(name)) : {};
}

/** mallopt's parameter numbers (malloc.h). */
const M_TRIM_THRESHOLD = -1;
const M_MMAP_THRESHOLD = -3;

/** The environment variables with which a user sets glibc's allocator; any of them leaves it alone. */
export const USER_MALLOC_VARIABLES = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"];

/** Whether the settings are for etcd-ts to make, given the environment. */
export function mallocSettingsWanted(getEnv: (name: string) => string | undefined): boolean {
  return USER_MALLOC_VARIABLES.every((name) => getEnv(name) === undefined);
}

/**
 * Sets glibc's mmap and trim thresholds for this process, unless the user set the allocator up in the
 * environment. Returns whether they were set. For the executable: an embedding program keeps its own.
 */
export function applyMallocSettings(): boolean {
  try {
    if (Deno.build.os !== "linux") return false;
    // asked first, so that a process started without these permissions is not prompted for them
    const granted = (d: Deno.PermissionDescriptor) => Deno.permissions.querySync(d).state === "granted";
    if (!granted({ name: "env" }) || !granted({ name: "ffi" })) return false;
    if (!mallocSettingsWanted((name) => Deno.env.get(name))) return false;
    const libc = Deno.dlopen("libc.so.6", { mallopt: { parameters: ["i32", "i32"], result: "i32" } });
    try {
      const mmap = libc.symbols.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) === 1;
      const trim = libc.symbols.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) === 1;
      return mmap && trim;
    } finally {
      libc.close();
    }
  } catch {
    // no libc.so.6 (musl): glibc's settings do not apply
    return false;
  }
}
