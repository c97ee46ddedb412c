/**
 * End-to-end helpers: start real member processes (etcd-ts, or the real etcd for comparison) on
 * loopback, and drive them with the real etcdctl.
 *
 * Every wait is bounded: {@link waitUntil} polls a condition until a deadline, and what must not happen
 * for a while is watched through the whole window by {@link holdsThroughout}, never checked once after a
 * sleep. A long-running etcdctl (watch, lock, elect, keep-alive) is a {@link Ctl}, whose output a test
 * reads while it runs.
 *
 * Which servers the e2e tests run against is chosen by `ETCD_TS_E2E` = `etcd-ts` | `etcd` | `both`.
 * The default is `both` when the real etcd is installed, so every run proves the behaviour is etcd's
 * and not only what etcd-ts agrees with itself about.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export type Impl = "etcd-ts" | "etcd";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

function which(cmd: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      const p = join(dir, cmd);
      if (Deno.statSync(p).isFile) return p;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** True when the real etcdctl is installed; e2e tests are skipped (and say so) without it. */
export const HAVE_ETCDCTL = which("etcdctl") !== undefined;
const HAVE_ETCD = which("etcd") !== undefined;

/** The servers e2e tests run against. */
export function implementations(): Impl[] {
  const want = Deno.env.get("ETCD_TS_E2E") ?? "both";
  if (want === "etcd-ts") return ["etcd-ts"];
  if (want === "etcd") return ["etcd"];
  return HAVE_ETCD ? ["etcd-ts", "etcd"] : ["etcd-ts"];
}

/** A free loopback TCP port (bound and released; good enough for tests on one machine). */
export function freePort(hostname = "127.0.0.1"): number {
  return freePorts(hostname, 1)[0];
}

/** Ports this process has handed out already (on any address); none is handed out twice. */
const handedOut = new Set<number>();

/**
 * `n` distinct free ports on `hostname`, never one this process handed out before. The system may hand a
 * just-released port out again, so without the record a port chosen for one use (a metrics URL, say) and
 * released could come back as a member's client port. `listen` is the binding to ask (for tests).
 */
export function freePorts(
  hostname: string,
  n: number,
  listen: (o: { hostname: string; port: number }) => { addr: Deno.Addr; close(): void } = Deno.listen,
): number[] {
  const held: { close(): void }[] = [];
  const ports: number[] = [];
  try {
    for (let attempt = 0; ports.length < n; attempt++) {
      if (attempt === n + 1000) throw new Error(`freePorts: no ${n} fresh ports on ${hostname}`);
      const l = listen({ hostname, port: 0 });
      held.push(l); // kept bound until all are chosen, so the system offers another port next
      const port = (l.addr as Deno.NetAddr).port;
      if (handedOut.has(port)) continue;
      handedOut.add(port);
      ports.push(port);
    }
  } finally {
    for (const l of held) l.close();
  }
  return ports;
}

export interface MemberOptions {
  impl: Impl;
  name?: string;
  dataDir?: string;
  host?: string;
  clientPort?: number;
  peerPort?: number;
  /** Extra flags appended after the standard ones. */
  args?: string[];
  env?: Record<string, string>;
  /** etcd-ts only: the process gets `env` alone instead of this one's environment with `env` on top. */
  clearEnv?: boolean;
  /** etcd-ts only: Deno's permission flags instead of `--allow-all`. */
  permissions?: string[];
  /** Replaces the standard flags entirely. */
  rawArgs?: string[];
}

/** A member process. */
export class Member {
  readonly logs: string[] = [];
  private exited: Promise<Deno.CommandStatus>;
  private drained: Promise<void>;

  private constructor(
    readonly impl: Impl,
    readonly endpoint: string,
    readonly dataDir: string,
    readonly child: Deno.ChildProcess,
    readonly options: MemberOptions,
    /** The command line it was started with, program first. */
    readonly command: string[],
  ) {
    this.exited = child.status;
    this.drained = this.drain(child.stderr);
    void child.stdout.cancel();
  }

  /** Starts a member and waits until it answers. */
  static async start(o: MemberOptions): Promise<Member> {
    const host = o.host ?? "127.0.0.1";
    const name = o.name ?? "default";
    const dataDir = o.dataDir ?? await Deno.makeTempDir({ prefix: "etcd-ts-e2e-" });
    const [freeClient, freePeer] = freePorts(host, 2);
    const clientPort = o.clientPort ?? freeClient;
    const peerPort = o.peerPort ?? freePeer;
    const client = `http://${host}:${clientPort}`;
    const peer = `http://${host}:${peerPort}`;
    const args = o.rawArgs ?? [
      "--name",
      name,
      "--data-dir",
      dataDir,
      "--listen-client-urls",
      client,
      "--advertise-client-urls",
      client,
      "--listen-peer-urls",
      peer,
      "--initial-advertise-peer-urls",
      peer,
      "--initial-cluster",
      `${name}=${peer}`,
      ...(o.args ?? []),
    ];
    const command = serverCommand(o.impl, args, o.permissions);
    const child = spawnCommand(o.impl, command, o.env, o.clearEnv);
    const m = new Member(o.impl, `${host}:${clientPort}`, dataDir, child, o, command);
    try {
      await m.waitReady();
    } catch (err) {
      await m.stop("SIGKILL").catch(() => {}); // never leave a half-started server holding the ports
      throw err;
    }
    return m;
  }

  /** Starts the same member again on the same data dir and ports. */
  restart(): Promise<Member> {
    const [host, port] = this.endpoint.split(":");
    return Member.start({ ...this.options, host, clientPort: Number(port), dataDir: this.dataDir });
  }

  private async drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    const dec = new TextDecoder();
    for await (const chunk of stream) this.logs.push(dec.decode(chunk));
  }

  async waitReady(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    this.exited.then(() => exited = true);
    while (Date.now() < deadline) {
      if (exited) throw new Error(`${this.impl} exited before it was ready:\n${this.logs.join("")}`);
      const r = await etcdctl(this.endpoint, [
        "endpoint",
        "health",
        "--dial-timeout=1s",
        "--command-timeout=2s",
      ]);
      if (r.code === 0) return;
      await sleep(100);
    }
    throw new Error(`${this.impl} not ready after ${timeoutMs} ms:\n${this.logs.join("")}`);
  }

  /** Sends a signal and waits for the process to end. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.child.kill(signal);
    } catch {
      // already gone
    }
    const status = await this.exited;
    await this.drained;
    return status;
  }

  /** Stops the member and removes its data directory. */
  async destroy(): Promise<void> {
    await this.stop("SIGKILL");
    await Deno.remove(this.dataDir, { recursive: true }).catch(() => {});
  }
}

/** The command line that starts a server with `args`, program first. */
export function serverCommand(impl: Impl, args: string[], permissions = ["--allow-all"]): string[] {
  if (impl === "etcd") return ["etcd", ...args];
  return [Deno.execPath(), "run", ...permissions, "--quiet", join(ROOT, "main.ts"), ...args];
}

/** Spawns a server process without waiting for it. */
export function spawn(impl: Impl, args: string[], env?: Record<string, string>): Deno.ChildProcess {
  return spawnCommand(impl, serverCommand(impl, args), env);
}

/** Spawns `command` (from {@link serverCommand}); with `clearEnv`, the process gets `env` alone. */
function spawnCommand(
  impl: Impl,
  command: string[],
  env?: Record<string, string>,
  clearEnv?: boolean,
): Deno.ChildProcess {
  return new Deno.Command(command[0], {
    args: command.slice(1),
    env,
    clearEnv,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    cwd: impl === "etcd" ? undefined : ROOT,
  }).spawn();
}

/** Runs a server command to completion (for flag errors, --version, ...). */
export async function runServer(
  impl: Impl,
  args: string[],
  env?: Record<string, string>,
  timeoutMs = 15_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(impl, args, env);
  const timer = setTimeout(() => killQuietly(child), timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

export interface CtlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real etcdctl (API v3) against `endpoints`. */
export async function etcdctl(
  endpoints: string,
  args: string[],
  options: { stdin?: string; timeoutMs?: number } = {},
): Promise<CtlResult> {
  const cmd = new Deno.Command("etcdctl", {
    args: [`--endpoints=${endpoints}`, ...args],
    env: { ETCDCTL_API: "3" },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const timer = setTimeout(() => killQuietly(child), options.timeoutMs ?? 20_000);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** etcdctl that must succeed; returns stdout. */
export async function ctlOk(endpoints: string, args: string[], stdin?: string): Promise<string> {
  const r = await etcdctl(endpoints, args, { stdin });
  if (r.code !== 0) {
    throw new Error(`etcdctl ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `done` every `intervalMs` until it holds; throws, naming `what()`, once `timeoutMs` have passed
 * without it.
 */
export async function waitUntil(
  done: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: () => string,
  intervalMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what()}`);
    await sleep(intervalMs);
  }
}

/**
 * For what must not happen during a while (a leader stays, a waiter keeps waiting): runs `check`, which
 * throws when the thing happened, again and again for `windowMs` (pausing `intervalMs` between runs), and
 * once more at the end of the window. Fails at the first run that throws, so a change that comes and goes
 * within the window is caught too. Returns how many times it checked.
 */
export async function holdsThroughout(
  check: () => void | Promise<void>,
  windowMs: number,
  intervalMs = 20,
): Promise<number> {
  const end = Date.now() + windowMs;
  let runs = 0;
  for (;;) {
    const last = Date.now() >= end;
    await check();
    runs++;
    if (last) return runs;
    await sleep(Math.min(intervalMs, Math.max(0, end - Date.now())));
  }
}

/**
 * A long-running etcdctl (watch, lock, elect, keep-alive) whose standard output is collected as it
 * arrives, so a test can wait for lines while the process keeps running.
 */
export class Ctl {
  private out = "";
  private err = "";
  private readonly child: Deno.ChildProcess;
  private readonly pumps: Promise<void>;
  private readonly stdin?: WritableStreamDefaultWriter<Uint8Array>;
  private readonly status: Promise<Deno.CommandStatus>;
  private code: number | undefined;

  constructor(endpoint: string, readonly args: string[], interactive = false) {
    this.child = new Deno.Command("etcdctl", {
      args: [`--endpoints=${endpoint}`, ...args],
      env: { ETCDCTL_API: "3" },
      stdin: interactive ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (interactive) this.stdin = this.child.stdin.getWriter();
    this.pumps = Promise.all([
      this.pump(this.child.stdout, (s) => this.out += s),
      this.pump(this.child.stderr, (s) => this.err += s),
    ]).then(() => {});
    this.status = this.child.status;
    this.status.then((s) => this.code = s.code);
  }

  private async pump(stream: ReadableStream<Uint8Array>, sink: (s: string) => void): Promise<void> {
    const dec = new TextDecoder();
    for await (const chunk of stream) sink(dec.decode(chunk, { stream: true }));
  }

  /** The complete lines printed so far (empty lines included: etcdctl prints a deleted key's value so). */
  lines(): string[] {
    return this.out.split("\n").slice(0, -1);
  }

  /** What the process printed, for failure messages. */
  describe(): string {
    return `etcdctl ${this.args.join(" ")}: exit ${this.code}, stdout ${JSON.stringify(this.out)}, ` +
      `stderr ${JSON.stringify(this.err)}`;
  }

  /** Waits until at least `n` complete lines were printed; returns all lines so far. */
  async waitLines(n: number, timeoutMs = 10_000): Promise<string[]> {
    await waitUntil(() => this.lines().length >= n, timeoutMs, () => `${n} lines from ${this.describe()}`);
    return this.lines();
  }

  /** Waits for the process to end by itself; returns its exit code and output. */
  async waitExit(timeoutMs = 10_000): Promise<CtlResult> {
    await waitUntil(() => this.code !== undefined, timeoutMs, () => `exit of ${this.describe()}`);
    await this.pumps;
    return { code: this.code!, stdout: this.out, stderr: this.err };
  }

  /** Writes one line to an interactive etcdctl. */
  async send(line: string): Promise<void> {
    await this.stdin!.write(new TextEncoder().encode(line + "\n"));
  }

  /** Sends `signal` (if still running) and waits for the end; returns the exit code. */
  async stop(signal: Deno.Signal = "SIGKILL"): Promise<number> {
    if (this.stdin) await this.stdin.close().catch(() => {});
    if (this.code === undefined) {
      try {
        this.child.kill(signal);
      } catch {
        // it ended meanwhile
      }
    }
    const s = await this.status;
    await this.pumps;
    return s.code;
  }
}

/** Every etcdctl a case starts, so the case can stop the ones still running however it ends. */
export class Ctls {
  private readonly all: Ctl[] = [];
  constructor(private readonly endpoint: string) {}

  start(args: string[], interactive = false): Ctl {
    const c = new Ctl(this.endpoint, args, interactive);
    this.all.push(c);
    return c;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.all.map((c) => c.stop()));
  }
}

/** The value {@link waitWatching} writes. */
const PROBE = "watch-probe";

/** How many `key` = {@link PROBE} events `lines` hold. */
function probesOf(lines: string[], key: string): number {
  let n = 0;
  for (let i = 0; i + 2 < lines.length; i++) {
    if (lines[i] === "PUT" && lines[i + 1] === key && lines[i + 2] === PROBE) n++;
  }
  return n;
}

/**
 * A watch started without `--rev` sees only writes after the server created it, and etcdctl prints
 * nothing on creation: put `key` = {@link PROBE} (through `endpoint`) until the watcher prints it.
 */
export async function waitWatching(w: Ctl, endpoint: string, key: string): Promise<void> {
  for (let i = 0; i < 40 && probesOf(w.lines(), key) === 0; i++) {
    await ctlOk(endpoint, ["put", key, PROBE]);
    await waitUntil(() => probesOf(w.lines(), key) > 0, 250, () => "").catch(() => {});
  }
  if (probesOf(w.lines(), key) === 0) {
    throw new Error(`the watcher never printed a probe of ${key}: ${w.describe()}`);
  }
}

/** The lines after the leading probe events of {@link waitWatching}, whatever their keys. */
export function afterProbes(lines: string[]): string[] {
  let i = 0;
  while (lines[i] === "PUT" && lines[i + 2] === PROBE) i += 3;
  return lines.slice(i);
}

/** SIGKILL for a child that may have ended meanwhile (kill then throws, which must not end the test). */
function killQuietly(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch {
    // already ended
  }
}
