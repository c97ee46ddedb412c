/**
 * End-to-end helpers: start real member processes (etcd-ts, or the real etcd for comparison) on
 * loopback, and drive them with the real etcdctl.
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
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
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
    const clientPort = o.clientPort ?? freePort(host);
    const peerPort = o.peerPort ?? freePort(host);
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
    const m = new Member(o.impl, `${host}:${clientPort}`, dataDir, spawn(o.impl, args, o.env), o);
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
      await new Promise((r) => setTimeout(r, 100));
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

/** Spawns a server process without waiting for it. */
export function spawn(impl: Impl, args: string[], env?: Record<string, string>): Deno.ChildProcess {
  const cmd = impl === "etcd"
    ? new Deno.Command("etcd", { args, env, stdin: "null", stdout: "piped", stderr: "piped" })
    : new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--quiet", join(ROOT, "main.ts"), ...args],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      cwd: ROOT,
    });
  return cmd.spawn();
}

/** Runs a server command to completion (for flag errors, --version, ...). */
export async function runServer(
  impl: Impl,
  args: string[],
  env?: Record<string, string>,
  timeoutMs = 15_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(impl, args, env);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
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
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 20_000);
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
