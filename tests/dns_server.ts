/**
 * A real DNS server for end-to-end tests of DNS discovery, without touching the machine's /etc.
 *
 * The product resolves names through the system resolver (/etc/resolv.conf), and so do the real etcd
 * and etcdctl, and members dial each other by host name. To point all of them at test records, the
 * harness makes a network namespace of its own (`ip netns add`), brings its loopback up (all of 127/8
 * is then local inside it, so members can listen on 127.0.1.1, 127.0.1.2, ...) and writes
 * `/etc/netns/<name>/resolv.conf` (`nameserver 127.0.0.1`) and `/etc/netns/<name>/hosts` (localhost
 * only). `ip netns exec <name> CMD` runs CMD in that namespace and in a private mount namespace where
 * those two files are bind-mounted over /etc's, so only processes started through {@linkcode
 * DnsNamespace.exec} see them. Inside, dnsmasq answers on 127.0.0.1:53 from the records given and
 * nothing else (no upstream, no hosts file); names under the records' domains that it does not know are
 * answered "no such name" rather than refused.
 *
 * ```ts
 * const ns = await DnsNamespace.start({ records: {
 *   srv: [{ service: "_etcd-server._tcp.example.com", target: "infra0.example.com", port: 2380 }],
 *   hosts: { "infra0.example.com": "127.0.1.1" },
 * } });
 * try {
 *   const out = await ns.output(["getent", "hosts", "infra0.example.com"]);
 * } finally {
 *   await ns.close();
 * }
 * ```
 *
 * Needs root, `ip` (iproute2) and dnsmasq; {@linkcode CAN_USE_NETNS} says whether they work here and
 * {@linkcode NETNS_SKIP_REASON} why not.
 *
 * @module
 */
import { join } from "node:path";

/** One SRV record: `service` is the full name (`_etcd-server._tcp.example.com`). */
export interface SrvEntry {
  service: string;
  target: string;
  port: number;
  priority?: number;
  weight?: number;
}

/** What the DNS server answers: SRV records and host name → IPv4 or IPv6 address. */
export interface DnsRecords {
  srv: SrvEntry[];
  hosts: Record<string, string>;
}

/** A command's result. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

const IP = "/usr/sbin/ip";
const DNSMASQ = "/usr/sbin/dnsmasq";
/** A name the harness always serves, to know when dnsmasq is answering. */
const READY_NAME = "ready.dns-harness.test";
let counter = 0;
/** Whether /etc/netns was there before any test: then the harness never removes it. */
const ETC_NETNS_EXISTED = await Deno.stat("/etc/netns").then(() => true, () => false);

/** Runs a command to completion, killed after `timeoutMs`. */
export async function run(argv: string[], timeoutMs = 15_000): Promise<CommandResult> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs a command; throws with its output unless it succeeds. */
async function must(argv: string[]): Promise<string> {
  const r = await run(argv);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function probe(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "network namespaces need root";
  for (const bin of [IP, DNSMASQ]) {
    try {
      await Deno.stat(bin);
    } catch {
      return `${bin} is not installed`;
    }
  }
  const name = `etcdts-probe-${Deno.pid}`;
  try {
    const r = await run([IP, "netns", "add", name], 5_000);
    if (r.code !== 0) return `ip netns add fails here: ${r.stderr.trim()}`;
    await run([IP, "netns", "del", name], 5_000);
  } catch (err) {
    return `ip netns does not work here: ${(err as Error).message}`;
  }
  return undefined;
}

/** Why namespace tests cannot run here, or undefined when they can. */
export const NETNS_SKIP_REASON: string | undefined = await probe();

/** Whether this machine can run {@linkcode DnsNamespace}: root, `ip netns` and dnsmasq. */
export const CAN_USE_NETNS: boolean = NETNS_SKIP_REASON === undefined;

/** The last two labels of a name: the domain dnsmasq answers for with authority. */
function zoneOf(name: string): string {
  return name.replace(/\.$/, "").split(".").slice(-2).join(".");
}

/** Namespaces not closed yet: removed at process exit if a test ends without closing them. */
const open = new Set<DnsNamespace>();
globalThis.addEventListener("unload", () => {
  for (const ns of open) ns.closeSync();
});

/** A network namespace whose system resolver is a dnsmasq serving the given records. */
export class DnsNamespace {
  /** argv prefix that runs a command inside: `["ip", "netns", "exec", name]`. */
  readonly exec: string[];
  private readonly children = new Set<Deno.ChildProcess>();
  private readonly drains: Promise<unknown>[] = [];
  /** What dnsmasq printed on its standard error (configuration errors), once it has exited. */
  private dnsmasqErrors: Promise<string> = Promise.resolve("");
  private closed = false;

  private constructor(
    /** The namespace's name (unique per test). */
    readonly name: string,
    /** A scratch directory outside the namespace: dnsmasq's log, data directories of tests. */
    readonly dir: string,
    private dnsmasq?: Deno.ChildProcess,
  ) {
    this.exec = [IP, "netns", "exec", name];
  }

  /** /etc/netns/<name>: the files `ip netns exec` mounts over /etc's. */
  get etcDir(): string {
    return `/etc/netns/${this.name}`;
  }

  /** dnsmasq's log (every query it answered). */
  get logFile(): string {
    return join(this.dir, "dnsmasq.log");
  }

  /** Creates the namespace, its resolver files and dnsmasq; waits until dnsmasq answers. */
  static async start(opts: { records: DnsRecords }): Promise<DnsNamespace> {
    if (!CAN_USE_NETNS) throw new Error(`DnsNamespace: ${NETNS_SKIP_REASON}`);
    const name = `etcdts-${Deno.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
    const dir = await Deno.makeTempDir({ prefix: "etcd-dns-" });
    await must([IP, "netns", "add", name]);
    const ns = new DnsNamespace(name, dir);
    open.add(ns);
    try {
      await must([...ns.exec, IP, "link", "set", "lo", "up"]);
      await ns.writeEtc();
      const zones = new Set<string>(["dns-harness.test"]);
      const args = [
        "--no-resolv",
        "--no-hosts",
        "--keep-in-foreground",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--port=53",
        "--pid-file=",
        "--user=root",
        "--log-queries",
        `--log-facility=${ns.logFile}`,
        `--host-record=${READY_NAME},127.0.0.1`,
      ];
      for (const s of opts.records.srv) {
        args.push(`--srv-host=${s.service},${s.target},${s.port},${s.priority ?? 0},${s.weight ?? 0}`);
        zones.add(zoneOf(s.service));
      }
      for (const [host, addr] of Object.entries(opts.records.hosts)) {
        args.push(`--host-record=${host},${addr}`);
        zones.add(zoneOf(host));
      }
      for (const z of zones) args.push(`--local=/${z}/`);
      ns.dnsmasq = new Deno.Command(ns.exec[0], {
        args: [...ns.exec.slice(1), DNSMASQ, ...args],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      ns.dnsmasqErrors = new Response(ns.dnsmasq.stderr).text().catch(() => "");
      await ns.waitReady();
      return ns;
    } catch (err) {
      await ns.close();
      throw err;
    }
  }

  /** Writes /etc/netns/<name>; retried, as another test may remove an empty /etc/netns meanwhile. */
  private async writeEtc(): Promise<void> {
    for (let attempt = 1;; attempt++) {
      try {
        await Deno.mkdir(this.etcDir, { recursive: true });
        await Deno.writeTextFile(
          join(this.etcDir, "resolv.conf"),
          "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n",
        );
        await Deno.writeTextFile(
          join(this.etcDir, "hosts"),
          "127.0.0.1 localhost\n::1 localhost ip6-localhost\n",
        );
        return;
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound) || attempt === 5) throw err;
      }
    }
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 10_000;
    let last = "";
    let exited: Deno.CommandStatus | undefined;
    this.dnsmasq!.status.then((st) => exited = st);
    while (Date.now() < deadline) {
      if (exited) {
        throw new Error(
          `dnsmasq in ${this.name} exited ${exited.code}: ${(await this.dnsmasqErrors).trim()}`,
        );
      }
      const r = await run([...this.exec, "getent", "hosts", READY_NAME], 5_000);
      if (r.code === 0 && r.stdout.includes("127.0.0.1")) return;
      last = r.stderr || `getent exited ${r.code}`;
      await new Promise((res) => setTimeout(res, 50));
    }
    let log = "";
    try {
      log = await Deno.readTextFile(this.logFile);
    } catch { /* no log yet */ }
    throw new Error(`dnsmasq in ${this.name} did not answer within 10s: ${last}\n${log}`);
  }

  /** Runs `argv` inside the namespace to completion (killed after `timeoutMs`). */
  output(argv: string[], timeoutMs = 30_000): Promise<CommandResult> {
    return run([...this.exec, ...argv], timeoutMs);
  }

  /**
   * Starts a long-running `argv` inside the namespace (output to `logFile`, when given); {@linkcode close}
   * kills it if the test has not.
   */
  spawn(argv: string[], logFile?: string): Deno.ChildProcess {
    const out = logFile ? Deno.openSync(logFile, { write: true, create: true, append: true }) : undefined;
    try {
      const child = new Deno.Command(this.exec[0], {
        args: [...this.exec.slice(1), ...argv],
        stdin: "null",
        stdout: out ? "piped" : "null",
        stderr: out ? "piped" : "null",
      }).spawn();
      this.children.add(child);
      if (out) {
        // one writer for both streams: a file's writable can be piped to only once at a time
        const writer = out.writable.getWriter();
        const copy = async (stream: ReadableStream<Uint8Array>) => {
          for await (const chunk of stream) await writer.write(chunk);
        };
        const close = Promise.all([copy(child.stdout), copy(child.stderr)]).finally(() => writer.close());
        this.drains.push(close.catch(() => {}));
      }
      return child;
    } catch (err) {
      out?.close();
      throw err;
    }
  }

  /** Stops `child` (SIGTERM, then SIGKILL after `graceMs`) and waits for it. */
  async stop(child: Deno.ChildProcess, graceMs = 5_000): Promise<Deno.CommandStatus> {
    this.children.delete(child);
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((res) => timer = setTimeout(() => res("late"), graceMs));
    const first = await Promise.race([child.status, late]);
    clearTimeout(timer);
    if (first === "late") {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }
    return await child.status;
  }

  /**
   * The last resort when the process exits (`Deno.exit`, an uncaught error) with the namespace open:
   * kills every process inside and removes the namespace and its files, synchronously.
   */
  closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    open.delete(this);
    for (const child of [...this.children, ...(this.dnsmasq ? [this.dnsmasq] : [])]) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }
    const pids = new Deno.Command(IP, { args: ["netns", "pids", this.name], stdout: "piped", stderr: "null" })
      .outputSync();
    for (const pid of new TextDecoder().decode(pids.stdout).split("\n").filter((p) => /^\d+$/.test(p))) {
      try {
        Deno.kill(Number(pid), "SIGKILL");
      } catch { /* gone */ }
    }
    new Deno.Command(IP, { args: ["netns", "del", this.name], stdout: "null", stderr: "null" }).outputSync();
    for (const path of [this.etcDir, this.dir]) {
      try {
        Deno.removeSync(path, { recursive: true });
      } catch { /* gone */ }
    }
    if (!ETC_NETNS_EXISTED) {
      try {
        Deno.removeSync("/etc/netns");
      } catch { /* in use or gone */ }
    }
  }

  /** Kills what runs in the namespace, dnsmasq last, deletes the namespace and its files. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    open.delete(this);
    const errors: string[] = [];
    for (const child of [...this.children]) await this.stop(child);
    await Promise.all(this.drains);
    if (this.dnsmasq) {
      await this.stop(this.dnsmasq);
      await this.dnsmasqErrors;
    }
    // anything else a test started inside (by pid, all ours)
    const pids = await run([IP, "netns", "pids", this.name], 5_000).catch(() => undefined);
    for (const pid of pids?.stdout.split("\n").filter((p) => /^\d+$/.test(p)) ?? []) {
      try {
        Deno.kill(Number(pid), "SIGKILL");
      } catch { /* gone */ }
    }
    const del = await run([IP, "netns", "del", this.name], 5_000).catch((e) => ({
      code: 1,
      stderr: String(e),
    }));
    if (del.code !== 0) errors.push(`ip netns del ${this.name}: ${del.stderr}`);
    await Deno.remove(this.etcDir, { recursive: true }).catch(() => {});
    // /etc/netns itself goes, when the harness made it, with the last test namespace (removing a
    // directory others still use fails harmlessly)
    if (!ETC_NETNS_EXISTED) await Deno.remove("/etc/netns").catch(() => {});
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    if (errors.length > 0) throw new Error(errors.join("; "));
  }
}
