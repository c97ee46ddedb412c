/**
 * Large data on one member, the real etcd beside etcd-ts: load N keys of V-byte values (1 M keys of 2 KiB,
 * 2 GB, by default), then measure what an operator waits for and pays: the load's rate, resident memory,
 * the data directory on disk, `etcdctl snapshot save`, a restart after SIGKILL (until `endpoint health`
 * answers), and a restore from the snapshot file and the start that follows it. Prints a Markdown table.
 *
 *     deno run -A bench/large_data.ts [--keys 1000000] [--value-size 2048]
 *
 * Both servers get `--quota-backend-bytes 8589934592` (etcd's largest advised quota) so the data fits.
 * Needs `etcd`, `etcdctl` and Node (for bench/load.mjs). Listens on 127.0.0.1:23790 and :23800.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { etcdctl, etcdTsCommand, type Kind, rssMiB, sampleRss, startCluster } from "./servers.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const HERE = new URL(".", import.meta.url).pathname;
const QUOTA = String(8 * 1024 ** 3);

/** What one server measured. */
interface Figures {
  loadSeconds: number;
  loadPerSecond: number;
  peakRssLoadMiB: number;
  rssAfterLoadMiB: number;
  dataDirMiB: number;
  snapshotSeconds: number;
  snapshotMiB: number;
  restartSeconds: number;
  rssAfterRestartMiB: number;
  restoreSeconds: number;
  startAfterRestoreSeconds: number;
  rssAfterRestoreMiB: number;
  keysAfterRestore: number;
}

async function duMiB(path: string): Promise<number> {
  const out = await new Deno.Command("du", { args: ["-sk", path], stdout: "piped" }).output();
  return Number(new TextDecoder().decode(out.stdout).split("\t")[0]) / 1024;
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const v = await fn();
  return [v, (performance.now() - t) / 1000];
}

async function ok(endpoint: string, args: string[]): Promise<string> {
  const r = await etcdctl(endpoint, ["--command-timeout=600s", ...args]);
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(" ")} exited ${r.code}`);
  return r.stdout;
}

async function keyCount(endpoint: string): Promise<number> {
  const out = await ok(endpoint, ["get", "", "--from-key", "--keys-only", "--limit", "1", "-w", "json"]);
  return Number((JSON.parse(out) as { count?: number }).count ?? 0);
}

async function measure(kind: Kind, commands: Record<Kind, string[]>, keys: number, valueSize: number) {
  const dir = await Deno.makeTempDir({ prefix: `etcd-ts-large-${kind}-` });
  const plan = { members: 1, commands, cwd: ROOT, dir, extraFlags: ["--quota-backend-bytes", QUOTA] };
  const f = {} as Figures;
  try {
    let c = await startCluster(kind, plan);
    const endpoint = c.endpoints[0];
    // the load generator's prefill puts every key once, 200 in flight; then one second of reads
    const rss = sampleRss(c.pids);
    const [load, loadSeconds] = await timed(() =>
      new Deno.Command("node", {
        args: [
          `${HERE}load.mjs`,
          ...["--endpoints", endpoint, "--workload", "range-ser", "--key-space", String(keys)],
          ...["--key-size", "16", "--val-size", String(valueSize), "--duration-s", "1", "--json"],
        ],
        stdout: "piped",
        stderr: "piped",
      }).output()
    );
    if (!load.success) throw new Error(`load failed: ${new TextDecoder().decode(load.stderr)}`);
    f.loadSeconds = loadSeconds;
    f.loadPerSecond = keys / loadSeconds;
    f.peakRssLoadMiB = rss.stop();
    const loaded = await keyCount(endpoint);
    if (loaded !== keys) throw new Error(`${kind} holds ${loaded} keys after the load, not ${keys}`);
    f.rssAfterLoadMiB = rssMiB(c.pids);
    f.dataDirMiB = await duMiB(`${dir}/${kind}-data-0`);
    const snapshot = `${dir}/backup.db`;
    [, f.snapshotSeconds] = await timed(() => ok(endpoint, ["snapshot", "save", snapshot]));
    f.snapshotMiB = (await Deno.stat(snapshot)).size / 1024 / 1024;
    // a crash, then a start on the same data directory
    await c.stop();
    [c, f.restartSeconds] = await timed(() => startCluster(kind, plan));
    f.rssAfterRestartMiB = rssMiB(c.pids);
    await c.stop();
    // a restore into a new data directory, then a start from it
    const restored = { ...plan, dir: `${dir}/restored` };
    await Deno.mkdir(restored.dir);
    const restoreArgs = [
      "snapshot",
      "restore",
      snapshot,
      ...["--name", "m0", "--data-dir", `${restored.dir}/${kind}-data-0`],
      ...["--initial-cluster", "m0=http://127.0.0.1:23800", "--initial-cluster-token", "bench"],
      ...["--initial-advertise-peer-urls", "http://127.0.0.1:23800"],
    ];
    const [cmd, ...pre] = kind === "etcd" ? ["etcdctl"] : commands["etcd-ts"];
    const [restore, restoreSeconds] = await timed(() =>
      new Deno.Command(cmd, {
        args: [...pre, ...restoreArgs],
        cwd: ROOT,
        env: { ETCDCTL_API: "3" },
        stdout: "piped",
        stderr: "piped",
      }).output()
    );
    if (!restore.success) throw new Error(`restore failed: ${new TextDecoder().decode(restore.stderr)}`);
    f.restoreSeconds = restoreSeconds;
    [c, f.startAfterRestoreSeconds] = await timed(() => startCluster(kind, restored));
    f.rssAfterRestoreMiB = rssMiB(c.pids);
    f.keysAfterRestore = await keyCount(c.endpoints[0]);
    await c.stop();
    return f;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      keys: { type: "string", default: "1000000" },
      "value-size": { type: "string", default: "2048" },
    },
  });
  const keys = Number(values.keys);
  const valueSize = Number(values["value-size"]);
  const commands: Record<Kind, string[]> = {
    etcd: [Deno.env.get("ETCD_BIN") ?? "etcd"],
    "etcd-ts": etcdTsCommand(),
  };
  const results: Record<string, Figures> = {};
  for (const kind of ["etcd", "etcd-ts"] as Kind[]) {
    console.error(`${kind}: loading ${keys} keys of ${valueSize} bytes`);
    results[kind] = await measure(kind, commands, keys, valueSize);
    console.error(JSON.stringify(results[kind]));
  }
  const rows: [string, (f: Figures) => string][] = [
    ["load (s; keys/s)", (f) => `${f.loadSeconds.toFixed(0)}; ${f.loadPerSecond.toFixed(0)}`],
    ["peak RSS during the load (MiB)", (f) => f.peakRssLoadMiB.toFixed(0)],
    ["RSS after the load (MiB)", (f) => f.rssAfterLoadMiB.toFixed(0)],
    ["data directory (MiB)", (f) => f.dataDirMiB.toFixed(0)],
    ["snapshot save (s; MiB)", (f) => `${f.snapshotSeconds.toFixed(1)}; ${f.snapshotMiB.toFixed(0)}`],
    ["restart after SIGKILL until healthy (s)", (f) => f.restartSeconds.toFixed(1)],
    ["RSS after the restart (MiB)", (f) => f.rssAfterRestartMiB.toFixed(0)],
    ["snapshot restore (s)", (f) => f.restoreSeconds.toFixed(1)],
    ["start after the restore until healthy (s)", (f) => f.startAfterRestoreSeconds.toFixed(1)],
    ["RSS after that start (MiB)", (f) => f.rssAfterRestoreMiB.toFixed(0)],
    ["keys after the restore", (f) => String(f.keysAfterRestore)],
  ];
  console.log(`${keys} keys, ${valueSize}-byte values\n`);
  console.log("| | etcd | etcd-ts |\n| --- | ---: | ---: |");
  for (const [name, show] of rows) {
    console.log(`| ${name} | ${show(results.etcd)} | ${show(results["etcd-ts"])} |`);
  }
}
