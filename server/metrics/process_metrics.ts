/**
 * The process's own figures, under the names and help strings of Prometheus's process collector (as
 * etcd reports them): CPU time, start time, resident and virtual memory, open and maximum file
 * descriptors; plus the data segment (`process_heap_bytes`) and three gauges of the JavaScript heap
 * under the `nodejs_*` names dashboards of Node services know.
 *
 * On Linux everything is read from /proc when scraped, never in between: /proc/self/stat (CPU, start),
 * /proc/self/status (memory), /proc/self/fd (a count of its entries), /proc/self/limits (the soft limit
 * on open files). Elsewhere, or when /proc cannot be read, those families are left out (the start time
 * then is the runtime's `performance.timeOrigin`). Nothing here runs a timer or keeps an observer.
 *
 * @module
 */
import type { Emit, Registry } from "./exposition.ts";

/** Linux's clock ticks per second for the times in /proc/self/stat (USER_HZ, 100 on every platform). */
const USER_HZ = 100;

/** What one scrape read from /proc; undefined where it could not. */
export interface ProcessStats {
  userSeconds?: number;
  systemSeconds?: number;
  startTimeSeconds?: number;
  residentBytes?: number;
  virtualBytes?: number;
  heapBytes?: number;
  openFds?: number;
  maxFds?: number;
}

/** Where the figures come from: the real /proc, or a test's. */
export interface ProcSource {
  /** A file's text (a path under /proc), or undefined when it cannot be read. */
  readText(path: string): string | undefined;
  /** The number of entries of a directory, or undefined when it cannot be read. */
  countEntries(path: string): number | undefined;
}

/** The running process's /proc (nothing outside Linux). */
export const PROC: ProcSource = {
  readText(path) {
    if (Deno.build.os !== "linux") return undefined;
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return undefined;
    }
  },
  countEntries(path) {
    if (Deno.build.os !== "linux") return undefined;
    try {
      let n = 0;
      for (const _ of Deno.readDirSync(path)) n++;
      return n;
    } catch {
      return undefined;
    }
  },
};

/** `Key:   value kB` of /proc/self/status, in bytes. */
function statusBytes(status: string, key: string): number | undefined {
  const m = new RegExp(`^${key}:\\s*(\\d+) kB$`, "m").exec(status);
  return m === null ? undefined : Number(m[1]) * 1024;
}

/**
 * Reads the process's figures from `proc`. `bootTime` caches the system's boot time (seconds since the
 * epoch, from /proc/stat), which the start time is counted from.
 */
export function readProcessStats(proc: ProcSource, bootTime: { seconds?: number } = {}): ProcessStats {
  const out: ProcessStats = {};
  const stat = proc.readText("/proc/self/stat");
  if (stat !== undefined) {
    // the command name (field 2) is in parentheses and may hold spaces and parentheses itself
    const fields = stat.slice(stat.lastIndexOf(")") + 2).trim().split(" ");
    // fields[0] is field 3 (state): utime is field 14, stime 15, starttime 22
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const start = Number(fields[19]);
    if (Number.isFinite(utime) && Number.isFinite(stime)) {
      out.userSeconds = utime / USER_HZ;
      out.systemSeconds = stime / USER_HZ;
    }
    if (bootTime.seconds === undefined) {
      const m = /^btime (\d+)$/m.exec(proc.readText("/proc/stat") ?? "");
      if (m !== null) bootTime.seconds = Number(m[1]);
    }
    if (bootTime.seconds !== undefined && Number.isFinite(start)) {
      out.startTimeSeconds = (bootTime.seconds * USER_HZ + start) / USER_HZ;
    }
  }
  const status = proc.readText("/proc/self/status");
  if (status !== undefined) {
    out.residentBytes = statusBytes(status, "VmRSS");
    out.virtualBytes = statusBytes(status, "VmSize");
    out.heapBytes = statusBytes(status, "VmData");
  }
  out.openFds = proc.countEntries("/proc/self/fd");
  const limits = proc.readText("/proc/self/limits");
  if (limits !== undefined) {
    const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(limits);
    if (m !== null) out.maxFds = m[1] === "unlimited" ? Infinity : Number(m[1]);
  }
  return out;
}

/** Adds the process and JavaScript heap families to `registry`, read from `proc` at each scrape. */
export function registerProcessMetrics(registry: Registry, proc: ProcSource = PROC): void {
  let stats: ProcessStats = {};
  let memory: Deno.MemoryUsage | undefined;
  const bootTime: { seconds?: number } = {};
  registry.beforeCollect(() => {
    stats = readProcessStats(proc, bootTime);
    memory = Deno.memoryUsage();
  });
  const reader = (read: (s: ProcessStats) => number | undefined) => (emit: Emit) => {
    const v = read(stats);
    if (v !== undefined) emit(v);
  };
  const counter = (name: string, help: string, read: (s: ProcessStats) => number | undefined) =>
    registry.counter({ name, help, collect: reader(read) });
  const gauge = (name: string, help: string, read: (s: ProcessStats) => number | undefined) =>
    registry.gauge({ name, help, collect: reader(read) });

  counter("process_cpu_user_seconds_total", "Total user CPU time spent in seconds.", (s) => s.userSeconds);
  counter(
    "process_cpu_system_seconds_total",
    "Total system CPU time spent in seconds.",
    (s) => s.systemSeconds,
  );
  counter(
    "process_cpu_seconds_total",
    "Total user and system CPU time spent in seconds.",
    (s) =>
      s.userSeconds === undefined || s.systemSeconds === undefined
        ? undefined
        // in ticks, so that the sum has no rounding error
        : (Math.round(s.userSeconds * USER_HZ) + Math.round(s.systemSeconds * USER_HZ)) / USER_HZ,
  );
  gauge(
    "process_start_time_seconds",
    "Start time of the process since unix epoch in seconds.",
    // without /proc: when the runtime started, which is close
    (s) => s.startTimeSeconds ?? performance.timeOrigin / 1000,
  );
  gauge("process_resident_memory_bytes", "Resident memory size in bytes.", (s) => s.residentBytes);
  gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", (s) => s.virtualBytes);
  gauge("process_heap_bytes", "Process heap size in bytes.", (s) => s.heapBytes);
  gauge("process_open_fds", "Number of open file descriptors.", (s) => s.openFds);
  gauge("process_max_fds", "Maximum number of open file descriptors.", (s) => s.maxFds);

  const heap = (name: string, help: string, read: (m: Deno.MemoryUsage) => number) =>
    registry.gauge({
      name,
      help,
      collect(emit) {
        if (memory !== undefined) emit(read(memory));
      },
    });
  heap("nodejs_heap_size_total_bytes", "Process heap size from Node.js in bytes.", (m) => m.heapTotal);
  heap("nodejs_heap_size_used_bytes", "Process heap size used from Node.js in bytes.", (m) => m.heapUsed);
  heap("nodejs_external_memory_bytes", "Node.js external memory size in bytes.", (m) => m.external);
}
