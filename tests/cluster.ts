/**
 * Multi-member clusters of real server processes for end-to-end tests: etcd-ts or the real etcd,
 * started with exactly the commands of etcd's clustering guide (static bootstrap), or with the same
 * settings as `ETCD_*` variables.
 *
 * Members are started together and then waited for, since a member of a three-member cluster answers
 * health checks only once a quorum is up. Each member keeps its log across restarts, so a test can look
 * for what a member logged after a given point ({@link ClusterMember.mark}).
 *
 * ```ts
 * const c = await Cluster.start({ impl: "etcd-ts", hosts: ["127.0.1.150", "127.0.1.151", "127.0.1.152"] });
 * try {
 *   const leader = await c.waitLeader();
 *   await c.members[leader.index].kill();
 * } finally {
 *   await c.destroy();
 * }
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { Etcd3, type IOptions } from "etcd3";
import { ctlOk, type CtlResult, etcdctl, freePorts, type Impl, sleep, spawn } from "./helpers.ts";

/** How a cluster is laid out and how its members are told about it. */
export interface ClusterSpec {
  impl: Impl;
  /** One loopback address per member (127.0.1.x); a member listens for clients and peers on it. */
  hosts: string[];
  /** Member names; default `infra0`, `infra1`, ... as in etcd's clustering guide. */
  names?: string[];
  /** `--initial-cluster-token`; default `etcd-cluster-1`. */
  token?: string;
  /**
   * `guide`: the guide's fixed ports 2379 (clients) and 2380 (peers); `free`: a free port of each kind
   * per member (default).
   */
  ports?: "guide" | "free";
  /** `flags` (default): the guide's command line; `env`: the same settings as `ETCD_*` variables. */
  form?: "flags" | "env";
  /** Flags appended to every member's command line, e.g. `["--snapshot-count", "50"]`. */
  extraArgs?: string[];
  /** Flags appended to one member's command line (its certificate files, say). */
  memberArgs?: (name: string, host: string) => string[];
  /** `https`: client and peer URLs are https:// (default `http`). */
  scheme?: "http" | "https";
  /** etcdctl flags every health and status check of this cluster needs (`--cacert ...`). */
  ctlArgs?: string[];
  /**
   * Flags that replace `--initial-cluster-token`, `--initial-cluster` and `--initial-cluster-state`, for
   * a cluster that finds its members through discovery (`["--discovery", url]`).
   */
  bootstrap?: string[];
}

/** One member's `etcdctl endpoint status` line, with uint64 IDs kept exact. */
export interface EndpointStatus {
  endpoint: string;
  clusterId: bigint;
  memberId: bigint;
  /** The leader the member knows of; 0n when it knows none. */
  leader: bigint;
  revision: number;
  raftTerm: number;
  raftIndex: number;
  raftAppliedIndex: number;
  isLeader: boolean;
}

/** The ID fields of etcdctl's JSON output that are uint64 and may exceed 2^53. */
const UINT64_FIELDS = /"(cluster_id|member_id|leader|ID)":(\d+)/g;

/**
 * Parses etcdctl's `-w json` output with its uint64 IDs turned into decimal strings first, since
 * JSON.parse would round them to the nearest double.
 */
export function parseCtlJson(text: string): unknown {
  return JSON.parse(text.replace(UINT64_FIELDS, '"$1":"$2"'));
}

/** A decimal ID string (as made by {@link parseCtlJson}) as a bigint; absent means 0. */
export function idOf(value: unknown): bigint {
  return value === undefined ? 0n : BigInt(value as string);
}

/** The response header of an etcdctl `-w json` answer (put, get, member list, ...). */
export function ctlHeader(text: string): { clusterId: bigint; memberId: bigint; revision: number } {
  const h = (parseCtlJson(text) as { header: Record<string, unknown> }).header;
  return { clusterId: idOf(h.cluster_id), memberId: idOf(h.member_id), revision: Number(h.revision ?? 0) };
}

/** Parses `etcdctl endpoint status -w json` (one array for all endpoints; zero fields are omitted). */
export function parseEndpointStatus(text: string): EndpointStatus[] {
  const rows = parseCtlJson(text) as { Endpoint: string; Status: Record<string, unknown> }[];
  return rows.map(({ Endpoint, Status: s }) => {
    const header = (s.header ?? {}) as Record<string, unknown>;
    const memberId = idOf(header.member_id);
    const leader = idOf(s.leader);
    return {
      endpoint: Endpoint,
      clusterId: idOf(header.cluster_id),
      memberId,
      leader,
      revision: Number(header.revision ?? 0),
      raftTerm: Number(s.raftTerm ?? 0),
      raftIndex: Number(s.raftIndex ?? 0),
      raftAppliedIndex: Number(s.raftAppliedIndex ?? 0),
      isLeader: leader !== 0n && leader === memberId,
    };
  });
}

/**
 * An etcd3 client on the given `host:port` endpoints that never retries a request by itself (its
 * default policy retries a failed call up to three times on other hosts, which could apply a write
 * twice and make a history lie). A host whose calls keep failing is still skipped for a while.
 */
export function clientFor(endpoints: string[]): Etcd3 {
  const once = {
    // async, so that a call that throws at once becomes a rejection the caller's catch sees
    async execute<T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal) {
      return await fn({ signal: signal ?? new AbortController().signal });
    },
  };
  return new Etcd3({
    hosts: endpoints.map((e) => `http://${e}`),
    dialTimeout: 1000,
    faultHandling: { global: once as unknown as NonNullable<IOptions["faultHandling"]>["global"] },
  });
}

/** A running server process and what it wrote to stdout and stderr. */
class ServerProcess {
  readonly status: Promise<Deno.CommandStatus>;
  exited = false;
  private readonly drained: Promise<void>;

  constructor(readonly child: Deno.ChildProcess, sink: (text: string) => void) {
    this.status = child.status.then((s) => {
      this.exited = true;
      return s;
    });
    this.drained = Promise.all([drain(child.stdout, sink), drain(child.stderr, sink)]).then(() => {});
  }

  /** Waits until the process ends by itself, and its output is read. */
  async wait(): Promise<Deno.CommandStatus> {
    const status = await this.status;
    await this.drained;
    return status;
  }

  /** Sends `signal` and waits until the process is gone and its output read. */
  async kill(signal: Deno.Signal): Promise<void> {
    if (!this.exited) {
      try {
        this.child.kill(signal);
      } catch {
        // it ended on its own meanwhile
      }
    }
    await this.status;
    await this.drained;
  }
}

async function drain(stream: ReadableStream<Uint8Array>, sink: (text: string) => void): Promise<void> {
  const dec = new TextDecoder();
  for await (const chunk of stream) sink(dec.decode(chunk, { stream: true }));
}

/** One member of a {@link Cluster}: its fixed command, data directory and current process, if any. */
export class ClusterMember {
  /** Everything the member's processes printed, across restarts. */
  private log = "";
  private proc: ServerProcess | undefined;
  private paused = false;

  constructor(
    readonly impl: Impl,
    readonly name: string,
    readonly host: string,
    /** `host:port` for clients, as etcdctl's `--endpoints` takes it. */
    readonly endpoint: string,
    readonly clientUrl: string,
    readonly peerUrl: string,
    readonly dataDir: string,
    /** The command line after the program name. */
    readonly args: string[],
    /** `ETCD_*` variables added to the environment. */
    readonly env: Record<string, string>,
    /** etcdctl flags a health check needs (TLS). */
    readonly ctlArgs: string[] = [],
  ) {}

  /** The process ID of the running process. */
  get pid(): number {
    if (!this.proc) throw new Error(`member ${this.name} is not running`);
    return this.proc.child.pid;
  }

  /** Whether a process of this member is running (possibly stopped by SIGSTOP). */
  get running(): boolean {
    return this.proc !== undefined && !this.proc.exited;
  }

  /** Starts a process with the member's command, without waiting for it to be ready. */
  spawn(): void {
    if (this.running) throw new Error(`member ${this.name} is already running`);
    this.log += `\n--- ${this.name} started at ${new Date().toISOString()} ---\n`;
    this.proc = new ServerProcess(spawn(this.impl, this.args, this.env), (t) => this.log += t);
    this.paused = false;
  }

  /** A position in the log; {@link logSince} returns what was printed after it. */
  mark(): number {
    return this.log.length;
  }

  /** The log printed after `mark` (all of it by default). */
  logSince(mark = 0): string {
    return this.log.slice(mark);
  }

  /** Waits until the member answers a health check (which needs a leader), or throws with its log. */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) {
        throw new Error(`${this.impl} ${this.name} exited before it was ready:\n${this.log}`);
      }
      const r = await etcdctl(this.endpoint, [
        ...this.ctlArgs,
        "endpoint",
        "health",
        "--dial-timeout=1s",
        "--command-timeout=2s",
      ], { timeoutMs: 5000 });
      if (r.code === 0) return;
      await sleep(100);
    }
    throw new Error(`${this.impl} ${this.name} not ready after ${timeoutMs} ms:\n${this.log}`);
  }

  /** Sends `signal` (SIGKILL by default: `kill -9`) and waits for the process to end. */
  async kill(signal: Deno.Signal = "SIGKILL"): Promise<void> {
    if (!this.proc) return;
    if (this.paused && signal !== "SIGKILL") this.resume();
    await this.proc.kill(signal);
  }

  /** How the current process ended (waits for it), with its output read. */
  async exited(): Promise<Deno.CommandStatus> {
    if (!this.proc) throw new Error(`member ${this.name} was never started`);
    return await this.proc.wait();
  }

  /** Freezes the process (SIGSTOP): it keeps its sockets but neither reads nor answers. */
  pause(): void {
    Deno.kill(this.pid, "SIGSTOP");
    this.paused = true;
  }

  /** Lets a paused process run again (SIGCONT). */
  resume(): void {
    Deno.kill(this.pid, "SIGCONT");
    this.paused = false;
  }

  /**
   * Bytes clients have sent to the member's client port that it has not read yet: the receive queues of
   * the established connections to that port in the kernel's socket table (Linux `/proc/net/tcp`). While
   * the process is frozen ({@link pause}), this grows as soon as a client connects and writes.
   */
  async unreadClientBytes(): Promise<number> {
    const [host, port] = this.endpoint.split(":");
    // the table shows the IPv4 address as the hex of its 32 bits in host (little-endian) order
    const local = host.split(".").reverse().map((b) => Number(b).toString(16).padStart(2, "0")).join("") +
      ":" + Number(port).toString(16).padStart(4, "0");
    let unread = 0;
    for (const row of (await Deno.readTextFile("/proc/net/tcp")).split("\n").slice(1)) {
      const [, localAddr, , state, queues] = row.trim().split(/\s+/);
      if (localAddr?.toLowerCase() === local && state === "01") unread += parseInt(queues.split(":")[1], 16);
    }
    return unread;
  }

  /** Waits until the log after `mark` matches `re`; returns the matching line, or undefined on timeout. */
  async waitForLog(re: RegExp, mark = 0, timeoutMs = 10_000): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.logSince(mark).split("\n").find((l) => re.test(l));
      if (line !== undefined || Date.now() >= deadline) return line;
      await sleep(100);
    }
  }
}

/**
 * The settings of one member as in etcd's clustering guide, flag name → value:
 * `--name`, `--initial-advertise-peer-urls`, `--listen-peer-urls`, `--listen-client-urls`,
 * `--advertise-client-urls`, `--initial-cluster-token`, `--initial-cluster`, `--initial-cluster-state new`.
 */
function guideSettings(
  name: string,
  peerUrl: string,
  clientUrl: string,
  token: string,
  initialCluster: string,
): [string, string][] {
  return [
    ["name", name],
    ["initial-advertise-peer-urls", peerUrl],
    ["listen-peer-urls", peerUrl],
    ["listen-client-urls", clientUrl],
    ["advertise-client-urls", clientUrl],
    ["initial-cluster-token", token],
    ["initial-cluster", initialCluster],
    ["initial-cluster-state", "new"],
  ];
}

/** A statically bootstrapped cluster of real server processes. */
export class Cluster {
  private constructor(
    readonly impl: Impl,
    readonly members: ClusterMember[],
    readonly root: string,
    /** etcdctl flags every check of this cluster needs (TLS). */
    readonly ctlArgs: string[] = [],
  ) {}

  /**
   * Describes the members (data directories under a new temporary directory, passed as `ETCD_DATA_DIR`
   * so the guide's command lines stay exactly as written) without starting anything.
   */
  static async create(spec: ClusterSpec): Promise<Cluster> {
    const root = await Deno.makeTempDir({ prefix: "etcd-ts-cluster-" });
    const names = spec.names ?? spec.hosts.map((_, i) => `infra${i}`);
    const token = spec.token ?? "etcd-cluster-1";
    const addrs = spec.hosts.map((host) => {
      const [clientPort, peerPort] = spec.ports === "guide" ? [2379, 2380] : freePorts(host, 2);
      const scheme = spec.scheme ?? "http";
      return {
        host,
        client: `${scheme}://${host}:${clientPort}`,
        peer: `${scheme}://${host}:${peerPort}`,
        clientPort,
      };
    });
    const initialCluster = names.map((n, i) => `${n}=${addrs[i].peer}`).join(",");
    const members = names.map((name, i) => {
      const { host, client, peer, clientPort } = addrs[i];
      const dataDir = join(root, `${name}.etcd`);
      const settings = guideSettings(name, peer, client, token, initialCluster)
        .filter(([flag]) => spec.bootstrap === undefined || !flag.startsWith("initial-cluster"));
      const env: Record<string, string> = { ETCD_DATA_DIR: dataDir };
      let args: string[] = [];
      if (spec.form === "env") {
        for (const [flag, value] of settings) env["ETCD_" + flag.replaceAll("-", "_").toUpperCase()] = value;
      } else {
        args = settings.flatMap(([flag, value]) => [`--${flag}`, value]);
      }
      if (spec.bootstrap !== undefined && spec.form === "env") {
        for (let j = 0; j + 1 < spec.bootstrap.length; j += 2) {
          env["ETCD_" + spec.bootstrap[j].replace(/^--/, "").replaceAll("-", "_").toUpperCase()] =
            spec.bootstrap[j + 1];
        }
      } else {
        args.push(...(spec.bootstrap ?? []));
      }
      args.push(...(spec.extraArgs ?? []), ...(spec.memberArgs?.(name, host) ?? []));
      return new ClusterMember(
        spec.impl,
        name,
        host,
        // etcdctl speaks TLS to an endpoint only when its URL says so
        spec.scheme === "https" ? `https://${host}:${clientPort}` : `${host}:${clientPort}`,
        client,
        peer,
        dataDir,
        args,
        env,
        spec.ctlArgs ?? [],
      );
    });
    return new Cluster(spec.impl, members, root, spec.ctlArgs ?? []);
  }

  /** Creates the cluster, starts every member at once and waits until each answers a health check. */
  static async start(spec: ClusterSpec, timeoutMs = 30_000): Promise<Cluster> {
    const c = await Cluster.create(spec);
    try {
      for (const m of c.members) m.spawn();
      await Promise.all(c.members.map((m) => m.waitReady(timeoutMs)));
    } catch (err) {
      await c.destroy();
      throw err;
    }
    return c;
  }

  /** The client endpoints (`host:port`) of the members at `indices` (all by default), comma-separated. */
  endpoints(indices: number[] = this.members.map((_, i) => i)): string {
    return indices.map((i) => this.members[i].endpoint).join(",");
  }

  /**
   * `etcdctl endpoint status` of the members at `indices`, asked in one etcdctl run; a member that does
   * not answer within `timeoutMs` is left out.
   */
  async status(
    indices: number[] = this.members.map((_, i) => i),
    timeoutMs = 2000,
  ): Promise<EndpointStatus[]> {
    const r = await etcdctl(this.endpoints(indices), [
      ...this.ctlArgs,
      "endpoint",
      "status",
      "-w",
      "json",
      `--dial-timeout=${timeoutMs}ms`,
      `--command-timeout=${timeoutMs}ms`,
    ], { timeoutMs: timeoutMs + 5000 });
    const text = r.stdout.trim();
    return text.startsWith("[") ? parseEndpointStatus(text) : [];
  }

  /** The index of the member whose status this is (by its endpoint), or -1. */
  indexOf(status: EndpointStatus): number {
    const endpoint = status.endpoint.replace(/^https?:\/\//, "");
    return this.members.findIndex((m) => m.endpoint === endpoint);
  }

  /**
   * Polls the members at `among` until one of them reports itself leader in a term above `afterTerm`;
   * returns it with the time it was first seen (performance.now()). Throws after `timeoutMs`.
   */
  async waitLeader(
    among: number[] = this.members.map((_, i) => i),
    afterTerm = 0,
    timeoutMs = 15_000,
  ): Promise<{ index: number; id: bigint; term: number; seenAt: number; statuses: EndpointStatus[] }> {
    const deadline = performance.now() + timeoutMs;
    let last: EndpointStatus[] = [];
    while (performance.now() < deadline) {
      last = await this.status(among, 1000);
      const seenAt = performance.now();
      const leader = last.find((s) => s.isLeader && s.raftTerm > afterTerm);
      if (leader) {
        return {
          index: this.indexOf(leader),
          id: leader.memberId,
          term: leader.raftTerm,
          seenAt,
          statuses: last,
        };
      }
      await sleep(50);
    }
    throw new Error(
      `no leader in a term above ${afterTerm} after ${timeoutMs} ms; last status: ${
        JSON.stringify(last, (_, v) => typeof v === "bigint" ? v.toString(16) : v)
      }`,
    );
  }

  /** Kills every member (SIGKILL) and removes the data directories. */
  async destroy(): Promise<void> {
    await Promise.all(this.members.map((m) => m.kill("SIGKILL")));
    await Deno.remove(this.root, { recursive: true }).catch(() => {});
  }

  /** Every member's log, labelled, for failure messages. */
  logs(): string {
    return this.members.map((m) => `===== ${m.name} (${m.impl}) =====\n${m.logSince()}`).join("\n");
  }
}

// ---- runtime reconfiguration: members added to a running cluster (etcd's runtime reconfiguration guide)

/** Where a member that is yet to be added to a running cluster will listen, and its data directory. */
export interface NewMemberAddrs {
  name: string;
  host: string;
  /** `host:port` for clients, as etcdctl's `--endpoints` takes it. */
  endpoint: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
}

/**
 * Addresses for a member to be added with `etcdctl member add NAME --peer-urls=PEER`: a free client and
 * peer port on `host` (or the guide's 2379/2380), and a data directory `NAME.etcd` under `root` (a
 * cluster's {@link Cluster.root}, so that {@link Cluster.destroy} removes it).
 */
export function newMemberAddrs(
  name: string,
  host: string,
  root: string,
  ports: "guide" | "free" = "free",
): NewMemberAddrs {
  const [clientPort, peerPort] = ports === "guide" ? [2379, 2380] : freePorts(host, 2);
  return {
    name,
    host,
    endpoint: `${host}:${clientPort}`,
    clientUrl: `http://${host}:${clientPort}`,
    peerUrl: `http://${host}:${peerPort}`,
    dataDir: join(root, `${name}.etcd`),
  };
}

/**
 * The `ETCD_*` variables `etcdctl member add` prints for the new member (`ETCD_NAME="infra3"`, ...), in
 * the order printed. Throws when there are none.
 */
export function memberAddEnv(stdout: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const m = line.match(/^(ETCD_[A-Z_]+)="(.*)"$/);
    if (m) env[m[1]] = m[2];
  }
  if (Object.keys(env).length === 0) throw new Error(`no ETCD_* lines in member add output: ${stdout}`);
  return env;
}

/**
 * A member joining a running cluster as the guide starts it: exactly the variables `member add` printed
 * (`env`: `ETCD_NAME`, `ETCD_INITIAL_CLUSTER`, `ETCD_INITIAL_ADVERTISE_PEER_URLS`,
 * `ETCD_INITIAL_CLUSTER_STATE`), plus its listen URLs, advertised client URL and data directory as flags,
 * then `extraArgs`. Not started: push it onto {@link Cluster.members} (so it is killed with the cluster)
 * and call {@link ClusterMember.spawn}.
 */
export function joiningMember(
  impl: Impl,
  addrs: NewMemberAddrs,
  env: Record<string, string>,
  extraArgs: string[] = [],
): ClusterMember {
  const args = [
    "--listen-peer-urls",
    addrs.peerUrl,
    "--listen-client-urls",
    addrs.clientUrl,
    "--advertise-client-urls",
    addrs.clientUrl,
    "--data-dir",
    addrs.dataDir,
    ...extraArgs,
  ];
  return new ClusterMember(
    impl,
    addrs.name,
    addrs.host,
    addrs.endpoint,
    addrs.clientUrl,
    addrs.peerUrl,
    addrs.dataDir,
    args,
    env,
  );
}

/**
 * The same member (name, addresses, data directory) with another command line or environment, e.g. its own
 * args plus `--force-new-cluster`. A new log; the old process, if any, is not touched.
 */
export function memberWith(
  m: ClusterMember,
  changes: { args?: string[]; env?: Record<string, string> },
): ClusterMember {
  return new ClusterMember(
    m.impl,
    m.name,
    m.host,
    m.endpoint,
    m.clientUrl,
    m.peerUrl,
    m.dataDir,
    changes.args ?? m.args,
    changes.env ?? m.env,
    m.ctlArgs,
  );
}

/** The same member with the command line `args` (see {@link memberWith}). */
export function memberWithArgs(m: ClusterMember, args: string[]): ClusterMember {
  return memberWith(m, { args });
}

/**
 * etcdctl's own error message of a failed run: its last `Error: ...` line on stderr, prefix dropped (the
 * client library's JSON retry warnings before it are left out), or "" when there is none.
 */
export function ctlError(r: CtlResult): string {
  const line = r.stderr.split("\n").findLast((l) => l.startsWith("Error: "));
  return line === undefined ? "" : line.slice("Error: ".length);
}

/** One member of `etcdctl member list -w json`, the ID as etcdctl prints it in hex. */
export interface ListedMember {
  id: string;
  /** Empty until the member has started and published its name. */
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

/** `etcdctl member list -w json` through `endpoints`, sorted by name then peer URL. */
export async function listMembers(endpoints: string, ctlArgs: string[] = []): Promise<ListedMember[]> {
  const text = await ctlOk(endpoints, [...ctlArgs, "member", "list", "-w", "json"]);
  const parsed = parseCtlJson(text) as {
    members?: {
      ID: string;
      name?: string;
      peerURLs?: string[];
      clientURLs?: string[];
      isLearner?: boolean;
    }[];
  };
  return (parsed.members ?? []).map((m) => ({
    id: idOf(m.ID).toString(16),
    name: m.name ?? "",
    peerURLs: m.peerURLs ?? [],
    clientURLs: m.clientURLs ?? [],
    isLearner: m.isLearner ?? false,
  })).sort((a, b) => a.name.localeCompare(b.name) || a.peerURLs.join().localeCompare(b.peerURLs.join()));
}

/**
 * Runs an etcdctl command again while it fails with an error matching `transient` (etcd refuses
 * reconfiguration with "etcdserver: unhealthy cluster" until every voter has been connected to the
 * leader for five seconds), up to `timeoutMs`; returns the last run.
 */
export async function ctlRetrying(
  endpoints: string,
  args: string[],
  transient: RegExp,
  timeoutMs = 15_000,
): Promise<CtlResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await etcdctl(endpoints, args, { timeoutMs: 10_000 });
    if (r.code === 0 || !transient.test(ctlError(r)) || Date.now() >= deadline) return r;
    await sleep(250);
  }
}
