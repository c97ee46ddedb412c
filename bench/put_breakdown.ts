/**
 * Where the time of one put goes: starts a one- or three-member cluster of the real etcd and of etcd-ts
 * with every member under strace, drives it with one closed-loop client (one connection, sequential puts),
 * and splits each put, from the system calls of the members, into the steps client → propose → WAL write →
 * fdatasync → apply → reply (and, with three members, the round trip to the follower whose
 * acknowledgement commits it). Prints a Markdown table of the median and p99 of every step, etcd and
 * etcd-ts side by side, then the bounds measured on the same machine (a bare write + fdatasync of 4 KiB in
 * the same directory, a loopback TCP round trip) and the ops/s of the same run with and without strace.
 *
 *     deno run -A bench/put_breakdown.ts [--members 1,3] [--kinds etcd,etcd-ts] [--total 2000] [--warmup 300] [--keep]
 *
 * Members listen on 127.0.0.1: clients on 24790, 24792, 24794, peers on 24800, 24802, 24804. `--keep`
 * leaves the traces (one file per thread, `<kind>-m<i>.<tid>`) in the temporary directory and prints it.
 *
 * How a put is found in the traces. Puts are sequential, so the leader's timeline is unambiguous:
 *
 * - t0: the end of the first read on the client connection (the connection whose local port is the
 *   member's client port and which carries the most reads) that returns at least `REQUEST_MIN` bytes
 *   after the previous response; t0 → t0 of the next put is one put as the server sees it.
 * - t1: the start of the first write to the WAL (an fd whose path lies under `member/wal/`) after t0;
 *   t2 / t3: start / end of the first fdatasync of the WAL after t1.
 * - t4: the end of the first write to the client connection after the put committed (t3 on one member,
 *   the later of t3 and the acknowledgement's arrival on three).
 * - With three members: the leader's first write of at least `APPEND_MIN` bytes to a peer socket (a
 *   socket with a peer port at either end) after t0 is the append; on each follower, its first peer read
 *   of at least `APPEND_MIN` bytes after that, its next WAL write and fdatasync, and its next peer write
 *   (the acknowledgement). The follower whose acknowledgement is sent first commits the put; the leader's
 *   first peer read that ends after that send is its arrival.
 *
 * strace stops every traced thread at each traced system call (seccomp-bpf limits that to the calls
 * traced), so every step that makes system calls is slower than without it; the ops/s of both runs show
 * by how much per put, and a calibration (`dd` with and without strace) what one traced call costs. The
 * cost is not the same for both servers: Go's scheduler suffers more from stopped threads than Deno's event
 * loop, so compare the servers step by step only with that in mind.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { etcdctl, etcdTsCommand, type Kind, type RunningCluster, startCluster } from "./servers.ts";
import { quantile } from "./stats.ts";

const HERE = new URL(".", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;
const CLIENT_BASE = 24790;
const PEER_BASE = 24800;
/** The fewest bytes a put's request (HEADERS + DATA with a 256-byte value) arrives in. */
export const REQUEST_MIN = 200;
/** The fewest bytes of a peer message carrying a put's entry (its 256-byte value and framing). */
export const APPEND_MIN = 256;
const TRACED = "read,readv,recvfrom,recvmsg,write,writev,sendto,sendmsg,pwrite64,pwritev,fdatasync,fsync";

/** One system call from a trace: when it started, how long it took, on which fd, what it returned. */
export interface Syscall {
  /** The thread that made it (the trace file's suffix). */
  tid: number;
  /** Start, seconds since the epoch (strace's -ttt). */
  start: number;
  /** Duration in seconds (strace's -T). */
  dur: number;
  name: string;
  fd: number;
  /** What -yy printed for the fd: a path, or `TCP:[a:p->b:q]`; "" if nothing. */
  desc: string;
  /** The return value; -1 for an error. */
  ret: number;
}

const HEAD = /^(\d+\.\d+) (\w+)\((.*)$/;
const RESUMED = /^(\d+\.\d+) <\.\.\. (\w+) resumed>(.*)$/;
const RESULT = /\) += (-?\d+|\?)(?: .*?)? <(\d+\.\d+)>\s*$/;
/** The fd argument: a number, then -yy's `<...>`; a socket's brackets may hold `->`. */
const FD_ARG = /^(\d+)(?:<((?:[^<>[\]]|\[[^\]]*\])*)>)?/;

/**
 * Parses the text of one strace output file (the calls of thread `tid`: -ff -ttt -T -yy) into calls in
 * order. A call split into `<unfinished ...>` and `<... x resumed>` lines is joined: its start is the first
 * line's, its duration the one the resumed line reports. Signals, exits and lines it does not understand
 * are skipped.
 */
export function parseTrace(text: string, tid: number): Syscall[] {
  const out: Syscall[] = [];
  const pending = new Map<string, { start: number; args: string }>();
  for (const raw of text.split("\n")) {
    const line = raw.trimEnd();
    if (line === "") continue;
    let start: number, name: string, rest: string;
    const r = RESUMED.exec(line);
    if (r) {
      const p = pending.get(r[2]);
      if (!p) continue;
      pending.delete(r[2]);
      start = p.start;
      name = r[2];
      rest = p.args + r[3];
    } else {
      const h = HEAD.exec(line);
      if (!h) continue;
      start = Number(h[1]);
      name = h[2];
      rest = h[3];
      if (rest.endsWith("<unfinished ...>")) {
        pending.set(name, { start, args: rest.slice(0, -"<unfinished ...>".length).trimEnd() });
        continue;
      }
    }
    const res = RESULT.exec(rest);
    const fd = FD_ARG.exec(rest);
    if (!res || !fd) continue;
    out.push({
      tid,
      start,
      dur: Number(res[2]),
      name,
      fd: Number(fd[1]),
      desc: fd[2] ?? "",
      ret: res[1] === "?" ? -1 : Number(res[1]),
    });
  }
  return out;
}

/** Merges the calls of several threads of one process into one list ordered by start. */
export function mergeThreads(threads: Syscall[][]): Syscall[] {
  return threads.flat().sort((a, b) => a.start - b.start);
}

/** The ports of a TCP socket as -yy prints it (`TCP:[127.0.0.1:24790->127.0.0.1:51234]`), or null. */
export function socketPorts(desc: string): { local: number; remote: number } | null {
  const m = /^TCP(?:v6)?:\[.*:(\d+)->.*:(\d+)\]$/.exec(desc);
  return m ? { local: Number(m[1]), remote: Number(m[2]) } : null;
}

const READS = new Set(["read", "readv", "recvfrom", "recvmsg"]);
const WRITES = new Set(["write", "writev", "sendto", "sendmsg", "pwrite64", "pwritev"]);
const SYNCS = new Set(["fdatasync", "fsync"]);

/** What one call of a member is to the breakdown. */
export type Role = "client-read" | "client-write" | "peer-read" | "peer-write" | "wal-write" | "wal-sync";

/** A call with its role and its end time. */
export interface Event {
  role: Role;
  /** The thread that made it. */
  tid: number;
  start: number;
  end: number;
  bytes: number;
}

/** Where a member listens, to classify its sockets. */
export interface MemberPorts {
  client: number;
  peers: number[];
}

/**
 * Classifies the calls of one member: the client connection (local port = the client port; of several,
 * the one with the most successful reads, i.e. the load's connection, not a gateway or a probe), peer
 * sockets (a peer port at either end), the WAL (a path under `member/wal/`). Failed calls and other fds
 * are dropped. Returns events in start order.
 */
export function classify(calls: Syscall[], ports: MemberPorts): Event[] {
  const readsByRemote = new Map<number, number>();
  for (const c of calls) {
    const p = socketPorts(c.desc);
    if (p && p.local === ports.client && READS.has(c.name) && c.ret > 0) {
      readsByRemote.set(p.remote, (readsByRemote.get(p.remote) ?? 0) + 1);
    }
  }
  let clientRemote = -1, most = 0;
  for (const [remote, n] of readsByRemote) if (n > most) [clientRemote, most] = [remote, n];
  const out: Event[] = [];
  for (const c of calls) {
    if (c.ret < 0) continue;
    const kind = READS.has(c.name) ? "read" : WRITES.has(c.name) ? "write" : SYNCS.has(c.name) ? "sync" : "";
    let role: Role | null = null;
    const p = socketPorts(c.desc);
    if (p) {
      if (c.ret === 0) continue;
      if (p.local === ports.client && p.remote === clientRemote) {
        role = kind === "read" ? "client-read" : kind === "write" ? "client-write" : null;
      } else if (ports.peers.includes(p.local) || ports.peers.includes(p.remote)) {
        role = kind === "read" ? "peer-read" : kind === "write" ? "peer-write" : null;
      }
    } else if (/\/member\/wal\//.test(c.desc)) {
      role = kind === "write" ? "wal-write" : kind === "sync" ? "wal-sync" : null;
    }
    if (role) out.push({ role, tid: c.tid, start: c.start, end: c.start + c.dur, bytes: c.ret });
  }
  return out.sort((a, b) => a.start - b.start);
}

/** The steps of one put, in milliseconds, by name (see {@link STEPS_1} and {@link STEPS_3}). */
export type PutSteps = Record<string, number>;

/** The rows of the one-member table, in order. */
export const STEPS_1 = [
  "parse + propose + raft (t0→t1)",
  "WAL write (t1→t2)",
  "fdatasync (t2→t3)",
  "apply + reply (t3→t4)",
  "total in server (t0→t4)",
  "client gap (t4→next t0)",
];

/** The rows of the three-member table, in order. */
export const STEPS_3 = [
  "parse + propose + raft (t0→append send)",
  "leader send → follower receive",
  "follower receive → WAL write",
  "follower WAL write",
  "follower fdatasync",
  "follower fsync → ack send",
  "follower ack send → leader receive",
  "commit → reply (→t4)",
  "total in server (t0→t4)",
  "client gap (t4→next t0)",
  "leader: t0 → WAL write (t0→t1)",
  "leader: WAL write (t1→t2)",
  "leader: fdatasync (t2→t3)",
  "leader: fsync end vs ack arrival (+: fsync later)",
  "leader: peer writes between commit and reply, on the replying thread (count)",
];

/** The index of the first event of `ev` (in start order) starting at or after `t`. */
function lowerBound(ev: Event[], t: number): number {
  let lo = 0, hi = ev.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ev[mid].start < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first event of `role` in `ev` starting at or after `t` and passing `ok`. */
function first(
  ev: Event[],
  role: Role,
  t: number,
  ok: (e: Event) => boolean = () => true,
): Event | undefined {
  for (let i = lowerBound(ev, t); i < ev.length; i++) if (ev[i].role === role && ok(ev[i])) return ev[i];
  return undefined;
}

/** How many events of `role` made by thread `tid` start in [from, to). */
function count(ev: Event[], role: Role, tid: number, from: number, to: number): number {
  let n = 0;
  for (let i = lowerBound(ev, from); i < ev.length && ev[i].start < to; i++) {
    if (ev[i].role === role && ev[i].tid === tid) n++;
  }
  return n;
}

/** Where the puts begin on the leader: t0 of each, from its client reads after `since`. */
function requestStarts(leader: Event[], since: number): Event[] {
  const starts: Event[] = [];
  let after = since;
  for (;;) {
    const r = first(leader, "client-read", after, (e) => e.bytes >= REQUEST_MIN);
    if (!r) break;
    starts.push(r);
    // the response comes after the request; the next request after the response
    const w = first(leader, "client-write", r.end);
    if (!w) break;
    after = w.end;
  }
  return starts;
}

/** The result of splitting a run's puts. */
export interface Breakdown {
  puts: PutSteps[];
  /** Puts seen on the client connection whose steps could not all be found. */
  unmatched: number;
  /** Traced calls on the leader per put (all fds), for the strace overhead. */
  callsPerPut: number;
}

const ms = (a: number, b: number) => (b - a) * 1000;

/**
 * Splits every put after `since` (seconds since the epoch) into steps. `members[i]` are member i's
 * classified events, `leader` the leader's index. The first `skip` puts (the connection's start) are left
 * out.
 */
export function breakdown(
  members: Event[][],
  leader: number,
  since: number,
  skip = 5,
  leaderCalls = 0,
): Breakdown {
  const L = members[leader];
  const starts = requestStarts(L, since);
  const puts: PutSteps[] = [];
  let unmatched = 0;
  for (let i = skip; i + 1 < starts.length; i++) {
    const t0 = starts[i].end, next = starts[i + 1];
    const inPut = (e: Event) => e.start < next.start;
    const w = first(L, "wal-write", t0, inPut);
    const s = w && first(L, "wal-sync", w.start, inPut);
    if (!w || !s) {
      unmatched++;
      continue;
    }
    const [t1, t2, t3] = [w.start, s.start, s.end];
    if (members.length === 1) {
      const reply = first(L, "client-write", t3, inPut);
      if (!reply) {
        unmatched++;
        continue;
      }
      const t4 = reply.end;
      puts.push({
        [STEPS_1[0]]: ms(t0, t1),
        [STEPS_1[1]]: ms(t1, t2),
        [STEPS_1[2]]: ms(t2, t3),
        [STEPS_1[3]]: ms(t3, t4),
        [STEPS_1[4]]: ms(t0, t4),
        [STEPS_1[5]]: ms(t4, next.end),
      });
      continue;
    }
    const send = first(L, "peer-write", t0, (e) => inPut(e) && e.bytes >= APPEND_MIN);
    if (!send) {
      unmatched++;
      continue;
    }
    // each follower's side; the one whose acknowledgement leaves first commits the put
    let best: { recv: Event; fw: Event; fs: Event; ack: Event } | undefined;
    for (let f = 0; f < members.length; f++) {
      if (f === leader) continue;
      const F = members[f];
      const before = (e: Event) => e.start < next.start;
      const recv = first(F, "peer-read", send.start, (e) => before(e) && e.bytes >= APPEND_MIN);
      const fw = recv && first(F, "wal-write", recv.end, before);
      const fs = fw && first(F, "wal-sync", fw.start, before);
      const ack = fs && first(F, "peer-write", fs.end, before);
      if (recv && fw && fs && ack && (!best || ack.start < best.ack.start)) best = { recv, fw, fs, ack };
    }
    const arrive = best && first(L, "peer-read", best.ack.start, (e) => inPut(e) && e.end >= best!.ack.start);
    const commit = arrive && Math.max(arrive.end, t3);
    const reply = commit !== undefined ? first(L, "client-write", commit, inPut) : undefined;
    if (!best || !arrive || commit === undefined || !reply) {
      unmatched++;
      continue;
    }
    const t4 = reply.end;
    puts.push({
      [STEPS_3[0]]: ms(t0, send.start),
      [STEPS_3[1]]: ms(send.start, best.recv.end),
      [STEPS_3[2]]: ms(best.recv.end, best.fw.start),
      [STEPS_3[3]]: ms(best.fw.start, best.fs.start),
      [STEPS_3[4]]: ms(best.fs.start, best.fs.end),
      [STEPS_3[5]]: ms(best.fs.end, best.ack.start),
      [STEPS_3[6]]: ms(best.ack.start, arrive.end),
      [STEPS_3[7]]: ms(commit, t4),
      [STEPS_3[8]]: ms(t0, t4),
      [STEPS_3[9]]: ms(t4, next.end),
      [STEPS_3[10]]: ms(t0, t1),
      [STEPS_3[11]]: ms(t1, t2),
      [STEPS_3[12]]: ms(t2, t3),
      [STEPS_3[13]]: ms(arrive.end, t3),
      [STEPS_3[14]]: count(L, "peer-write", reply.tid, commit, reply.start),
    });
  }
  const n = Math.max(0, starts.length - skip - 1);
  return { puts, unmatched, callsPerPut: n > 0 ? leaderCalls / n : 0 };
}

/** What one server's run measured. */
export interface ServerResult {
  breakdown: Breakdown;
  opsStrace: number;
  opsPlain: number;
}

const f3 = (v: number) => Number.isFinite(v) ? v.toFixed(3) : "-";

/** The Markdown table of one cluster size: each step's p50 and p99 (ms) for etcd and etcd-ts. */
export function markdownTable(steps: string[], res: Partial<Record<Kind, ServerResult>>): string {
  const kinds = (["etcd", "etcd-ts"] as Kind[]).filter((k) => res[k]);
  const head = ["step (ms)", ...kinds.flatMap((k) => [`${k} p50`, `${k} p99`])];
  const rows = [head, head.map(() => "---")];
  const col = (k: Kind, s: string) => res[k]!.breakdown.puts.map((p) => p[s]).filter((v) => v !== undefined);
  for (const s of steps) {
    rows.push([s, ...kinds.flatMap((k) => [f3(quantile(col(k, s), 0.5)), f3(quantile(col(k, s), 0.99))])]);
  }
  const extra = (label: string, v: (r: ServerResult) => string) =>
    rows.push([label, ...kinds.flatMap((k) => [v(res[k]!), ""])]);
  extra("puts measured (unmatched)", (r) => `${r.breakdown.puts.length} (${r.breakdown.unmatched})`);
  extra("traced calls per put, leader", (r) => r.breakdown.callsPerPut.toFixed(1));
  extra("ops/s under strace", (r) => r.opsStrace.toFixed(0));
  extra("ops/s without strace", (r) => r.opsPlain.toFixed(0));
  extra("ms strace adds per put (1/ops − 1/ops)", (r) => f3(1000 / r.opsStrace - 1000 / r.opsPlain));
  return rows.map((r) => `| ${r.join(" | ")} |`).join("\n");
}

// ---------------------------------------------------------------------------------------------------
// Running it

/** Does strace accept --seccomp-bpf here (kernel and strace version)? */
async function seccompWorks(): Promise<boolean> {
  const out = await new Deno.Command("strace", {
    args: ["--seccomp-bpf", "-f", "-o", "/dev/null", "-e", "trace=write", "true"],
    stdout: "null",
    stderr: "piped",
  }).output().catch(() => null);
  return out !== null && out.code === 0 && !/seccomp/i.test(new TextDecoder().decode(out.stderr));
}

/** The command that runs `server` under strace, writing `<prefix>-<member name>.<tid>`. */
function straced(server: string[], prefix: string, seccomp: boolean): string[] {
  const opts = [...(seccomp ? ["--seccomp-bpf"] : []), "-f", "-ttt", "-T", "-yy", "-ff"];
  // the member's name is the value of its --name flag
  const script =
    'p="$0"; n=""; prev=""; for a in "$@"; do [ "$prev" = "--name" ] && n="$a"; prev="$a"; done; ' +
    `exec strace ${opts.join(" ")} -o "$p-$n" -e trace=${TRACED} "$@"`;
  return ["sh", "-c", script, prefix, ...server];
}

/** The traced server processes (strace's children) of a cluster started through {@link straced}. */
function tracees(c: RunningCluster): number[] {
  return c.pids.flatMap((pid) => {
    try {
      return Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/).filter((s) => s)
        .map(Number);
    } catch {
      return [];
    }
  });
}

/** Stops a traced cluster: the servers first (strace then writes out and exits), then strace. */
async function stopTraced(c: RunningCluster): Promise<void> {
  for (const pid of tracees(c)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && c.pids.some((p) => exists(`/proc/${p}`))) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await c.stop();
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs bench/load.mjs: one client, one connection, `total` puts; resolves to its ops/s. */
async function put1(endpoint: string, total: number): Promise<number> {
  const out = await new Deno.Command("node", {
    args: [
      `${HERE}load.mjs`,
      ...["--endpoints", endpoint, "--workload", "put", "--clients", "1", "--conns", "1"],
      ...["--total", String(total), "--duration-s", "600", "--json"],
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  const r = JSON.parse(lines[lines.length - 1]) as { ops_per_s: number; errors: number };
  if (r.errors > 0) throw new Error(`load.mjs: ${r.errors} errors`);
  return r.ops_per_s;
}

/** The index of the member that is leader, from `etcdctl endpoint status`. */
async function leaderOf(c: RunningCluster): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    for (let i = 0; i < c.endpoints.length; i++) {
      const r = await etcdctl(c.endpoints[i], ["endpoint", "status", "-w", "json"]);
      const member = /"member_id":(\d+)/.exec(r.stdout)?.[1];
      const leader = /"leader":(\d+)/.exec(r.stdout)?.[1];
      if (member && member === leader) return i;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("no leader");
}

/** Reads the trace files `<prefix>-m<i>.<tid>` of each member. */
async function readTraces(dir: string, kind: Kind, members: number): Promise<Syscall[][]> {
  const threads: Syscall[][][] = Array.from({ length: members }, () => []);
  for await (const e of Deno.readDir(dir)) {
    const m = new RegExp(`^${kind}-m(\\d+)\\.(\\d+)$`).exec(e.name);
    if (!m) continue;
    threads[Number(m[1])].push(parseTrace(await Deno.readTextFile(`${dir}/${e.name}`), Number(m[2])));
  }
  return threads.map(mergeThreads);
}

async function measure(
  kind: Kind,
  members: number,
  server: string[],
  dir: string,
  total: number,
  warmup: number,
  seccomp: boolean,
): Promise<ServerResult> {
  const ports = Array.from({ length: members }, (_, i) => ({
    client: CLIENT_BASE + 2 * i,
    peers: Array.from({ length: members }, (_, j) => PEER_BASE + 2 * j),
  }));
  const plan = (sub: string, cmd: string[]) => ({
    members,
    commands: { etcd: cmd, "etcd-ts": cmd },
    cwd: ROOT,
    dir: sub,
    clientBase: CLIENT_BASE,
    peerBase: PEER_BASE,
  });
  // without strace
  const plainDir = `${dir}/plain-${kind}-${members}`;
  await Deno.mkdir(plainDir, { recursive: true });
  let c = await startCluster(kind, plan(plainDir, server));
  let opsPlain: number;
  try {
    const leader = await leaderOf(c);
    await put1(c.endpoints[leader], warmup);
    opsPlain = await put1(c.endpoints[leader], total);
  } finally {
    await c.stop();
  }
  console.error(`${kind} ${members}: ${opsPlain.toFixed(0)} ops/s without strace`);
  // under strace
  const traceDir = `${dir}/traces-${members}`;
  await Deno.mkdir(traceDir, { recursive: true });
  const runDir = `${dir}/traced-${kind}-${members}`;
  await Deno.mkdir(runDir, { recursive: true });
  c = await startCluster(kind, plan(runDir, straced(server, `${traceDir}/${kind}`, seccomp)));
  let opsStrace: number, leader: number, since: number;
  try {
    leader = await leaderOf(c);
    await put1(c.endpoints[leader], warmup);
    await new Promise((r) => setTimeout(r, 200));
    since = Date.now() / 1000;
    opsStrace = await put1(c.endpoints[leader], total);
  } finally {
    await stopTraced(c);
  }
  console.error(`${kind} ${members}: ${opsStrace.toFixed(0)} ops/s under strace; leader m${leader}`);
  const calls = await readTraces(traceDir, kind, members);
  const events = calls.map((cs, i) => classify(cs, ports[i]));
  const leaderCalls = calls[leader].filter((c) => c.start >= since).length;
  const b = breakdown(events, leader, since, 5, leaderCalls);
  return { breakdown: b, opsStrace, opsPlain };
}

/** 500 × (write 4 KiB + fdatasync) in `dir` with the sync API: appending, and into a preallocated file. */
function fsyncBound(dir: string, n = 500): { append: number[]; prealloc: number[] } {
  const block = new Uint8Array(4096).fill(120);
  const run = (path: string, prealloc: boolean) => {
    const f = Deno.openSync(path, { read: true, write: true, create: true, truncate: true });
    try {
      if (prealloc) {
        const zeros = new Uint8Array(1 << 20);
        for (let i = 0; i < Math.ceil((n * 4096) / zeros.length); i++) f.writeSync(zeros);
        f.syncSync();
        f.seekSync(0, Deno.SeekMode.Start);
      }
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        f.writeSync(block);
        f.syncDataSync();
        times.push(performance.now() - t);
      }
      return times;
    } finally {
      f.close();
      Deno.removeSync(path);
    }
  };
  return {
    append: run(`${dir}/fsync-bound-append`, false),
    prealloc: run(`${dir}/fsync-bound-prealloc`, true),
  };
}

/** Round trips of `size` bytes over loopback TCP between two sockets of this process. */
async function loopbackBound(n = 2000, size = 300): Promise<number[]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const echo = (async () => {
    const conn = await listener.accept();
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const k = await conn.read(buf);
      if (k === null) break;
      let off = 0;
      while (off < k) off += await conn.write(buf.subarray(off, k));
    }
    conn.close();
  })();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const msg = new Uint8Array(size).fill(1), buf = new Uint8Array(size);
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    let off = 0;
    while (off < size) off += await conn.write(msg.subarray(off));
    let got = 0;
    while (got < size) {
      const k = await conn.read(buf.subarray(got));
      if (k === null) throw new Error("loopback echo closed");
      got += k;
    }
    times.push(performance.now() - t);
  }
  conn.close();
  await echo;
  listener.close();
  return times;
}

/**
 * What strace adds to one traced system call here, in µs: `dd` copying 20,000 single bytes (a read and a
 * write each) under strace with the options of the run, minus the same without strace.
 */
async function straceCostUs(seccomp: boolean, n = 20_000): Promise<number> {
  const dd = ["dd", "if=/dev/zero", "of=/dev/null", "bs=1", `count=${n}`];
  const time = async (cmd: string[]) => {
    const t = performance.now();
    await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "null", stderr: "null" }).output();
    return performance.now() - t;
  };
  const opts = [...(seccomp ? ["--seccomp-bpf"] : []), "-f", "-ttt", "-T", "-yy", "-o", "/dev/null"];
  const plain = await time(dd);
  const traced = await time(["strace", ...opts, "-e", `trace=${TRACED}`, ...dd]);
  return ((traced - plain) * 1000) / (2 * n);
}

async function main(): Promise<number> {
  const { values: a } = parseArgs({
    args: Deno.args,
    options: {
      members: { type: "string", default: "1,3" },
      total: { type: "string", default: "2000" },
      warmup: { type: "string", default: "300" },
      kinds: { type: "string", default: "etcd,etcd-ts" },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (a.help) {
    console.log(
      "deno run -A bench/put_breakdown.ts [--members 1,3] [--kinds etcd,etcd-ts] [--total 2000] [--warmup 300] [--keep]",
    );
    return 0;
  }
  const sizes = a.members.split(",").map(Number);
  const kinds = a.kinds.split(",") as Kind[];
  const total = Number(a.total), warmup = Number(a.warmup);
  if (sizes.some((m) => ![1, 3].includes(m)) || kinds.some((k) => k !== "etcd" && k !== "etcd-ts")) {
    console.error("bad arguments (see --help)");
    return 2;
  }
  const seccomp = await seccompWorks();
  if (!seccomp) console.error("strace --seccomp-bpf does not work here; tracing every call (slower)");
  const commands: Record<Kind, string[]> = {
    etcd: [Deno.env.get("ETCD_BIN") ?? "etcd"],
    "etcd-ts": etcdTsCommand(),
  };
  const dir = await Deno.makeTempDir({ prefix: "etcd-ts-put-breakdown-" });
  try {
    for (const members of sizes) {
      const res: Partial<Record<Kind, ServerResult>> = {};
      for (const kind of kinds) {
        try {
          res[kind] = await measure(kind, members, commands[kind], dir, total, warmup, seccomp);
        } catch (err) {
          console.error(`${kind} ${members}: ${err}`);
        }
      }
      console.log(`\n### ${members} member${members > 1 ? "s" : ""}, one client, ${total} sequential puts\n`);
      console.log(markdownTable(members === 1 ? STEPS_1 : STEPS_3, res));
    }
    const fs = fsyncBound(dir);
    const rtt = await loopbackBound();
    console.log("\n### Bounds on this machine\n");
    console.log("| bound (ms) | p50 | p99 |\n| --- | --- | --- |");
    console.log(
      `| write 4 KiB + fdatasync, appending (file grows) | ${f3(quantile(fs.append, 0.5))} | ${
        f3(quantile(fs.append, 0.99))
      } |`,
    );
    console.log(
      `| write 4 KiB + fdatasync, into a preallocated file | ${f3(quantile(fs.prealloc, 0.5))} | ${
        f3(quantile(fs.prealloc, 0.99))
      } |`,
    );
    console.log(
      `| loopback TCP round trip, 300 bytes (Deno) | ${f3(quantile(rtt, 0.5))} | ${
        f3(quantile(rtt, 0.99))
      } |`,
    );
    const cost = await straceCostUs(seccomp);
    console.log(
      `\nstrace adds about ${cost.toFixed(0)} µs to every traced call here (dd under strace vs without);`,
    );
    console.log("multiply by the traced calls per put to see what it adds to each put's path.");
    console.log(`\nstrace ${seccomp ? "--seccomp-bpf " : ""}-f; load: \`uptime\`: ${await uptime()}`);
    if (a.keep) console.log(`traces kept in ${dir}`);
    return 0;
  } finally {
    if (!a.keep) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function uptime(): Promise<string> {
  return (await Deno.readTextFile("/proc/loadavg").catch(() => "")).split(" ").slice(0, 3).join(" ");
}

if (import.meta.main) Deno.exit(await main());
