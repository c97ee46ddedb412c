/**
 * How often Deno's event loop looks for network input while it is busy, and the executable's start-up
 * step that makes it look after every turn.
 *
 * Deno runs JavaScript as one task of a single-threaded tokio runtime. While that task keeps being woken
 * (a `setImmediate`, or file operations completing in the thread pool, as when a snapshot is written),
 * tokio polls the sockets only once every `event_interval` task runs, 61 by default. With a few
 * milliseconds of work per turn, a member then reads nothing from its peers and clients for hundreds of
 * milliseconds while its timers still fire: three members in one process, each writing a 100 MB
 * snapshot under load, went up to 281 ms without a single socket read and their followers started
 * elections (tests/snapshot_load_e2e_test.ts). With `DENO_TOKIO_EVENT_INTERVAL=1` the longest gap there
 * was under 60 ms, and docs/benchmarks.md has what it does to throughput and latency.
 *
 * tokio reads the variable once, when the runtime is built, before any JavaScript runs; neither the
 * program nor `deno compile`'s embedded variables can set it in time. So the executable, when started
 * without it, replaces itself (`execve` of `/proc/self/exe` with its own command line and environment,
 * byte for byte, keeping its process id) by the same program with the variable set. Where that cannot
 * be done (no FFI permission, not Linux), it runs on as it is, and `startEtcd` says so. The caller may
 * name other variables that are only read when a process starts (glibc's, server/memory/malloc_settings.ts),
 * to be set in the same step; a value the user gave any of these variables is kept.
 *
 * @module
 */

/** The variable tokio's event interval is read from, and the value etcd-ts wants. */
export const IO_POLLING_VARIABLE = "DENO_TOKIO_EVENT_INTERVAL";
export const IO_POLLING_VALUE = "1";

/** What the warning about an unset variable says, for the member's log (undefined: nothing to say). */
export function ioPollingAdvice(getEnv: (name: string) => string | undefined): string | undefined {
  if (getEnv(IO_POLLING_VARIABLE) !== undefined) return undefined;
  return `${IO_POLLING_VARIABLE} is not set: while busy, this process reads the network only every 61st ` +
    `turn of its event loop, which can delay heartbeats past an election timeout; start it with ` +
    `${IO_POLLING_VARIABLE}=${IO_POLLING_VALUE}`;
}

/** {@link ioPollingAdvice} for this process; nothing when it may not read its environment. */
export function processIoPollingAdvice(): string | undefined {
  const readable =
    Deno.permissions.querySync({ name: "env", variable: IO_POLLING_VARIABLE }).state === "granted";
  return readable ? ioPollingAdvice((name) => Deno.env.get(name)) : undefined;
}

/** The NUL-terminated strings of a `/proc/<pid>/cmdline` or `environ`, as their bytes (without the NULs). */
export function splitNulTerminated(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let from = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0) continue;
    out.push(bytes.subarray(from, i));
    from = i + 1;
  }
  if (from < bytes.length) out.push(bytes.subarray(from));
  return out;
}

/**
 * The environment for the new program, from this one's as `/proc/self/environ` holds it (byte for byte,
 * whatever the encoding): every `NAME=value` of it, then the variable with etcd-ts's value and each of
 * `more`, where this environment does not have them already.
 */
export function environmentWithIoPolling(
  environ: Uint8Array,
  more: Record<string, string> = {},
): Uint8Array[] {
  const enc = new TextEncoder();
  const out = splitNulTerminated(environ);
  const has = (name: string) => {
    const prefix = enc.encode(`${name}=`);
    return out.some((e) => e.length >= prefix.length && prefix.every((c, i) => e[i] === c));
  };
  const wanted: [string, string][] = [[IO_POLLING_VARIABLE, IO_POLLING_VALUE], ...Object.entries(more)];
  for (const [name, value] of wanted.filter(([name]) => !has(name))) out.push(enc.encode(`${name}=${value}`));
  return out;
}

/** A NULL-terminated array of pointers to NUL-terminated copies of `strings`, and the copies it points into. */
function cStringArray(strings: Uint8Array[]): { array: BigUint64Array; buffers: Uint8Array[] } {
  const buffers = strings.map((s) => {
    const b = new Uint8Array(s.length + 1);
    b.set(s);
    return b;
  });
  const array = new BigUint64Array(buffers.length + 1);
  buffers.forEach((b, i) => array[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b))));
  return { array, buffers };
}

/**
 * Unless the variable and all of `more` are set, replaces this process by the same command line with
 * them set. Returns only when that was not done: they were set already, or the replacement could not be
 * made (see the module's comment), which `startEtcd`'s warning reports.
 */
export function reexecWithIoPolling(more: Record<string, string> = {}): void {
  try {
    if (Deno.build.os !== "linux") return;
    // asked first, so that a process started without these permissions is not prompted for them
    const granted = (d: Deno.PermissionDescriptor) => Deno.permissions.querySync(d).state === "granted";
    if (!granted({ name: "env" }) || !granted({ name: "ffi" })) return;
    if (!granted({ name: "read", path: "/proc/self" })) return;
    const unset = [IO_POLLING_VARIABLE, ...Object.keys(more)].filter((name) =>
      Deno.env.get(name) === undefined
    );
    if (unset.length === 0) return;
    const args = splitNulTerminated(Deno.readFileSync("/proc/self/cmdline"));
    if (args.length === 0) return;
    const libc = Deno.dlopen("libc.so.6", {
      execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
    });
    const argv = cStringArray(args);
    const envp = cStringArray(environmentWithIoPolling(Deno.readFileSync("/proc/self/environ"), more));
    // returns only when it failed; the buffers stay referenced until then
    libc.symbols.execve(new TextEncoder().encode("/proc/self/exe\0"), argv.array, envp.array);
    void [argv.buffers, envp.buffers];
    libc.close();
  } catch {
    // no FFI or file permission, no libc.so.6: run on as started
  }
}
