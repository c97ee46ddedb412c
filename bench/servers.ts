/**
 * The servers a benchmark run compares: a fresh one- or three-member cluster of the real etcd or of
 * etcd-ts, started with the same etcd flags on 127.0.0.1, waited for, measured (resident memory) and
 * killed.
 *
 * @module
 */

/** Which server a cluster runs. */
export type Kind = "etcd" | "etcd-ts";

/**
 * The V8 flags etcd-ts runs with in `deno task start` and in the compiled executable (deno.json); the
 * benchmarks start it the same way. A young generation of 1 MB, and an old generation that may grow to 1.2x
 * what the last full collection kept (README.md says why not `--memory-saver-mode`).
 */
export const ETCD_TS_V8_FLAGS = "--max-semi-space-size=1,--heap-growing-percent=20";

/**
 * The command line that starts etcd-ts, before etcd's flags: `$OTHER_CMD` (split on white space) if set,
 * else this Deno running `main.ts` with {@link ETCD_TS_V8_FLAGS}.
 */
export function etcdTsCommand(): string[] {
  return Deno.env.get("OTHER_CMD")?.split(/\s+/).filter((s) => s !== "") ??
    [Deno.execPath(), "run", "--allow-all", `--v8-flags=${ETCD_TS_V8_FLAGS}`, "main.ts"];
}

/** Certificates for a `--tls` run: one CA and one member certificate for 127.0.0.1, used by both servers. */
export interface BenchTls {
  ca: string;
  cert: string;
  key: string;
}

/** How to start the clusters of a run. */
export interface ClusterPlan {
  members: number;
  /** The command line of each server, before etcd's flags: `["etcd"]`, or etcd-ts's `deno run ... main.ts`. */
  commands: Record<Kind, string[]>;
  /** The working directory of the server processes (the repository, so `main.ts` resolves). */
  cwd: string;
  /** Where data dirs and logs go. */
  dir: string;
  tls?: BenchTls;
  host?: string;
  clientBase?: number;
  peerBase?: number;
  /** More flags for every member (the same for both servers), e.g. a larger `--quota-backend-bytes`. */
  extraFlags?: string[];
}

/** A started cluster. */
export interface RunningCluster {
  kind: Kind;
  /** host:port of every member's client URL, in member order. */
  endpoints: string[];
  pids: number[];
  stop(): Promise<void>;
  /** The path of member `i`'s log file. */
  log(i: number): string;
}

/** Flags for etcdctl: TLS when the run uses it. */
export function ctlFlags(tls?: BenchTls): string[] {
  return tls ? ["--cacert", tls.ca] : [];
}

/** Runs etcdctl against `endpoint`; resolves to its exit code and standard output. */
export async function etcdctl(
  endpoint: string,
  args: string[],
  tls?: BenchTls,
): Promise<{ code: number; stdout: string }> {
  const out = await new Deno.Command("etcdctl", {
    args: [`--endpoints=${endpoint}`, ...ctlFlags(tls), ...args],
    env: { ETCDCTL_API: "3" },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

/** The store's current revision as `endpoint` reports it. */
export async function revision(endpoint: string, tls?: BenchTls): Promise<number> {
  const r = await etcdctl(endpoint, ["get", "bench-revision-probe", "-w", "json"], tls);
  const m = /"revision":(\d+)/.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`etcdctl get on ${endpoint} failed`);
  return Number(m[1]);
}

/** Which member a run's clients write to: the leader, or a follower (two more peer hops a write). */
export type Through = "leader" | "follower";

/**
 * The endpoint of the member that is `through` in `etcdctl endpoint status -w json` output: the first
 * leader, or the first member that is not; undefined when no member names itself leader (no leader yet).
 */
export function pickEndpoint(statusJson: string, through: Through): string | undefined {
  let members: { Endpoint?: string; Status?: { leader?: unknown; header?: { member_id?: unknown } } }[];
  try {
    // member IDs are 64-bit: keep their digits as strings, since a JavaScript number would round them
    members = JSON.parse(statusJson.replace(/:(\d{16,})/g, ':"$1"'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(members)) return undefined;
  const leads = (m: (typeof members)[number]) =>
    m.Status?.leader !== undefined && String(m.Status.leader) === String(m.Status.header?.member_id);
  if (!members.some(leads)) return undefined;
  return members.find((m) => leads(m) === (through === "leader"))?.Endpoint;
}

/** The endpoint of the cluster's leader or of a follower, once one leads (waits up to 10 s). */
export async function endpointThrough(
  endpoints: string[],
  through: Through,
  tls?: BenchTls,
): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const r = await etcdctl(endpoints.join(","), ["endpoint", "status", "-w", "json"], tls);
    const picked = r.code === 0 ? pickEndpoint(r.stdout, through) : undefined;
    if (picked !== undefined) return picked;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`no ${through} among ${endpoints.join(", ")}`);
}

/** Starts a fresh cluster of `kind` and waits until every member is healthy (up to 60 s). */
export async function startCluster(kind: Kind, plan: ClusterPlan): Promise<RunningCluster> {
  const host = plan.host ?? "127.0.0.1";
  const clientBase = plan.clientBase ?? 23790;
  const peerBase = plan.peerBase ?? 23800;
  const scheme = plan.tls ? "https" : "http";
  const peerUrl = (i: number) => `${scheme}://${host}:${peerBase + 2 * i}`;
  const initialCluster = Array.from({ length: plan.members }, (_, i) => `m${i}=${peerUrl(i)}`).join(",");
  const endpoints: string[] = [];
  const children: Deno.ChildProcess[] = [];
  const logs: string[] = [];
  for (let i = 0; i < plan.members; i++) {
    const endpoint = `${host}:${clientBase + 2 * i}`;
    const client = `${scheme}://${endpoint}`;
    const tls = plan.tls
      ? [
        "--cert-file",
        plan.tls.cert,
        "--key-file",
        plan.tls.key,
        "--peer-cert-file",
        plan.tls.cert,
        "--peer-key-file",
        plan.tls.key,
        "--peer-trusted-ca-file",
        plan.tls.ca,
        "--peer-client-cert-auth",
      ]
      : [];
    const flags = [
      ...["--name", `m${i}`, "--data-dir", `${plan.dir}/${kind}-data-${i}`],
      ...["--listen-client-urls", client, "--advertise-client-urls", client],
      ...["--listen-peer-urls", peerUrl(i), "--initial-advertise-peer-urls", peerUrl(i)],
      ...["--initial-cluster", initialCluster, "--initial-cluster-token", "bench"],
      ...["--initial-cluster-state", "new", ...tls],
      ...(plan.extraFlags ?? []),
    ];
    const log = `${plan.dir}/${kind}-${i}.log`;
    logs.push(log);
    const file = await Deno.open(log, { write: true, create: true, truncate: true });
    const [cmd, ...pre] = plan.commands[kind];
    const child = new Deno.Command(cmd, {
      args: [...pre, ...flags],
      cwd: plan.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // both output streams go to the member's log
    const w = file.writable.getWriter();
    const pump = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s) await w.write(chunk).catch(() => {});
    };
    Promise.all([pump(child.stdout), pump(child.stderr)]).finally(() => w.close().catch(() => {}));
    children.push(child);
    endpoints.push(endpoint);
  }
  const cluster: RunningCluster = {
    kind,
    endpoints,
    pids: children.map((c) => c.pid),
    log: (i) => logs[i],
    stop: async () => {
      for (const c of children) {
        try {
          c.kill("SIGKILL");
        } catch {
          // already gone
        }
      }
      await Promise.all(children.map((c) => c.status));
    },
  };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const r = await etcdctl(endpoints.join(","), ["endpoint", "health", "--dial-timeout=1s"], plan.tls);
    if (r.code === 0) return cluster;
    await new Promise((res) => setTimeout(res, 500));
  }
  await cluster.stop();
  const tail = (await Deno.readTextFile(logs[0]).catch(() => "")).split("\n").slice(-6).join("\n");
  throw new Error(`${kind} did not become healthy in 60 s; last lines of its log:\n${tail}`);
}

/** The resident memory (MiB) of the processes `pids`, summed; 0 for those that are gone. */
export function rssMiB(pids: number[]): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      const status = Deno.readTextFileSync(`/proc/${pid}/status`);
      kib += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? "0");
    } catch {
      // gone
    }
  }
  return kib / 1024;
}

/**
 * Samples the summed resident memory of `pids` every 250 ms until `stop()` is called; `stop()` resolves to
 * the largest sample in MiB.
 */
export function sampleRss(pids: number[]): { stop(): number } {
  let peak = rssMiB(pids);
  const timer = setInterval(() => peak = Math.max(peak, rssMiB(pids)), 250);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, rssMiB(pids));
    },
  };
}

/** Makes a CA and a member certificate for `host` (and 127.0.0.1, localhost) with openssl, in `dir`. */
export async function makeCerts(dir: string, host = "127.0.0.1"): Promise<BenchTls> {
  const run = async (args: string[]) => {
    const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
      .output();
    if (out.code !== 0) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run([
    "req",
    "-x509",
    ...ec,
    "-days",
    "2",
    "-subj",
    "/CN=etcd-ts-bench-ca",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
  ]);
  await run([
    "req",
    ...ec,
    "-subj",
    "/CN=etcd-ts-bench-member",
    "-keyout",
    "member.key",
    "-out",
    "member.csr",
  ]);
  await Deno.writeTextFile(
    `${dir}/member.ext`,
    `subjectAltName=IP:127.0.0.1,IP:${host},DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n`,
  );
  await run([
    ...["x509", "-req", "-in", "member.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"],
    ...["-days", "2", "-extfile", "member.ext", "-out", "member.crt"],
  ]);
  return { ca: `${dir}/ca.crt`, cert: `${dir}/member.crt`, key: `${dir}/member.key` };
}
