import { assert, assertEquals } from "../../tests/assert.ts";
import { Registry } from "./exposition.ts";
import { type ProcSource, readProcessStats, registerProcessMetrics } from "./process_metrics.ts";
import { families, sample } from "./test_util.ts";

/** A /proc of fixed files: a command name with spaces and parentheses, 12.34 s user, 5.6 s system. */
function fakeProc(over: Record<string, string | undefined> = {}, fds: number | undefined = 7): ProcSource {
  const files: Record<string, string | undefined> = {
    "/proc/self/stat": "4242 (odd) name (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 560 0 0 20 0 9 0 " +
      "250075 123456789 4000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
    "/proc/stat": "cpu  1 2 3 4\nbtime 1700000000\nprocesses 99\n",
    "/proc/self/status": "Name:\tdeno\nVmPeak:\t  900 kB\nVmSize:\t  800 kB\nVmData:\t  300 kB\n" +
      "VmRSS:\t  200 kB\nThreads:\t9\n",
    "/proc/self/limits": "Limit                     Soft Limit           Hard Limit           Units     \n" +
      "Max processes             63432                63432                processes \n" +
      "Max open files            1024                 524288               files     \n",
    ...over,
  };
  return {
    readText: (path) => files[path],
    countEntries: (path) => path === "/proc/self/fd" ? fds : undefined,
  };
}

Deno.test("process metrics: /proc/self/stat, status and limits read as Prometheus's process collector does", () => {
  const boot: { seconds?: number } = {};
  assertEquals(readProcessStats(fakeProc(), boot), {
    userSeconds: 12.34,
    systemSeconds: 5.6,
    startTimeSeconds: 1700002500.75,
    residentBytes: 200 * 1024,
    virtualBytes: 800 * 1024,
    heapBytes: 300 * 1024,
    openFds: 7,
    maxFds: 1024,
  });
  // the boot time is read once
  assertEquals(boot.seconds, 1700000000);
  const again = readProcessStats(fakeProc({ "/proc/stat": undefined }), boot);
  assertEquals(again.startTimeSeconds, 1700002500.75);
  const unlimited = fakeProc({
    "/proc/self/limits": "Max open files            unlimited            unlimited   files\n",
  });
  assertEquals(readProcessStats(unlimited).maxFds, Infinity);
});

Deno.test("process metrics: what cannot be read is left out", () => {
  const none: ProcSource = { readText: () => undefined, countEntries: () => undefined };
  const r = new Registry();
  registerProcessMetrics(r, none);
  const f = families(r.text());
  // without /proc: the start time (the runtime's) and the JavaScript heap
  assertEquals([...f.keys()], [
    "process_start_time_seconds",
    "nodejs_heap_size_total_bytes",
    "nodejs_heap_size_used_bytes",
    "nodejs_external_memory_bytes",
  ]);
  const start = sample(r.text(), "process_start_time_seconds")!;
  assert(Math.abs(start - performance.timeOrigin / 1000) < 1e-3, String(start));
});

Deno.test("process metrics: names, types and help as etcd reports them, values from /proc when scraped", () => {
  let fds = 7;
  const r = new Registry();
  registerProcessMetrics(r, {
    readText: (path) => fakeProc().readText(path),
    countEntries: () => fds,
  });
  let text = r.text();
  const f = families(text);
  assertEquals(f.get("process_cpu_seconds_total"), {
    type: "counter",
    help: "Total user and system CPU time spent in seconds.",
    labels: new Set(),
  });
  assertEquals(f.get("process_resident_memory_bytes")?.help, "Resident memory size in bytes.");
  assertEquals(f.get("process_max_fds")?.type, "gauge");
  assertEquals(sample(text, "process_cpu_user_seconds_total"), 12.34);
  assertEquals(sample(text, "process_cpu_system_seconds_total"), 5.6);
  // added in ticks: 17.94, not 17.939999999999998
  assert(text.includes("\nprocess_cpu_seconds_total 17.94\n"), text);
  assert(text.includes("\nprocess_start_time_seconds 1700002500.75\n"), text);
  assertEquals(sample(text, "process_resident_memory_bytes"), 204800);
  assertEquals(sample(text, "process_virtual_memory_bytes"), 819200);
  assertEquals(sample(text, "process_heap_bytes"), 307200);
  assertEquals(sample(text, "process_open_fds"), 7);
  assertEquals(sample(text, "process_max_fds"), 1024);
  assert(sample(text, "nodejs_heap_size_used_bytes")! > 0);
  assert(sample(text, "nodejs_heap_size_total_bytes")! >= sample(text, "nodejs_heap_size_used_bytes")!);
  fds = 9;
  text = r.text();
  assertEquals(sample(text, "process_open_fds"), 9);
});

Deno.test({
  name: "process metrics: the real /proc of this process",
  ignore: Deno.build.os !== "linux",
  fn() {
    const r = new Registry();
    registerProcessMetrics(r);
    const text = r.text();
    const rss = sample(text, "process_resident_memory_bytes")!;
    assert(rss > 1 << 20, `rss ${rss}`);
    assert(sample(text, "process_virtual_memory_bytes")! >= rss);
    const open = sample(text, "process_open_fds")!;
    assert(open >= 3, `open fds ${open}`);
    assert(sample(text, "process_max_fds")! >= open);
    assert(sample(text, "process_cpu_seconds_total")! >= 0);
    // the process started before this module's runtime did (a test runner starts one per module), and
    // not long before
    const start = sample(text, "process_start_time_seconds")!;
    assert(start <= performance.timeOrigin / 1000 + 1, `start ${start}`);
    assert(start > Date.now() / 1000 - 3600, `start ${start}`);
  },
});
