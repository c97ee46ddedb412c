/**
 * Real members whose peer traffic all passes through fault proxies (faults/proxy.ts), under client load,
 * while the network misbehaves: delay with jitter, one-way loss, connection resets, partitions made of
 * cut links, and the processes themselves die (kill -9) or freeze (SIGSTOP). Three members and five,
 * each run against etcd-ts and the real etcd. Checked at the end, as after the partition test: the
 * clients' history is linearizable, every acknowledged write is on every member, all members hold the
 * same key space (HashKV at one revision), one watcher per member kept etcd's watch guarantees and all
 * saw the same events, and memory and file descriptors stayed bounded.
 *
 * How the proxies sit: each member listens for peers on its own address (127.0.3.x) and advertises a
 * proxy on another address as its peer URL (in `--initial-advertise-peer-urls` and in everyone's
 * `--initial-cluster`), so every connection any member opens to it goes through its proxy. A connection
 * is dialed by one member to another's proxy, and carries bytes both ways: etcd-ts sends its Raft
 * messages on streams it dials itself (the way back carries only keepalives), the real etcd also
 * receives on streams it dials (its peer writes the messages on the response). A member advertises one
 * URL, so there cannot be one proxy per pair of members; and on loopback every connection comes from
 * 127.0.0.1 (the members dial with no source address of their own, and cannot be told to), so the source
 * address does not tell who dialed. What does is the `X-Server-From` header (the sender's member ID) that
 * every peer request of both carries: the proxy names each connection by it (a connection whose first
 * request has none, such as etcd's `GET /raft/probing`, by the first later request that has one). The
 * run checks that every proxy carried bytes and named connections. To lose everything `a` sends to `b` ({@link Net.cut}), `b`'s proxy drops the bytes toward `b` on
 * connections named `a`, and `a`'s proxy drops the bytes coming back from `a` on connections named `b`.
 * A partition is the cuts between its sides, both ways; a bridge keeps one member linked to both sides.
 *
 * The schedules (each fault held {@link HOLD_MS}; `FAULT_SECONDS` lengthens it for a longer run):
 * - three members: 50 ± 30 ms on every proxy both ways; one-way loss to the leader (everything sent to it
 *   is lost) until another is elected; a follower's connections reset every 300 ms.
 * - five members, with 20 ± 15 ms on every proxy throughout: a 2|3 split with the leader in the two; a
 *   bridge (one member linked to both sides of a 2|2 cut); kill -9 of three members, the leader among
 *   them, then started again one by one; the leader frozen (SIGSTOP) until another leads, then continued.
 *
 * Choices (which follower, which partner) and the jitter come from a seeded generator; the seed is
 * printed, and `FAULT_SEED` replays the choices (timing on a real machine still varies). Each run prints a
 * `robustness-report` line with the operations completed in each phase. A longer run:
 *
 *     FAULT_SECONDS=10 deno test -A --import-map=test_imports.json --lock=deno.test.lock \
 *       tests/network_faults_e2e_test.ts
 */
import { assert } from "./assert.ts";
import { etcdctl, HAVE_ETCDCTL, type Impl, implementations, sleep } from "./helpers.ts";
import { Cluster, type ClusterMember, memberWithArgs } from "./cluster.ts";
import { FaultProxy, peerSender, type ProxyStats } from "./faults/proxy.ts";
import type { WorkerResult } from "./faults/load_worker.ts";
import { checkOutcome, type Outcome } from "./faults/outcome.ts";
import { Prng } from "./sim/prng.ts";
import { report } from "./faults/report.ts";

/** How long each fault is held, in seconds (`FAULT_SECONDS` for a longer run). */
const FAULT_SECONDS = Number(Deno.env.get("FAULT_SECONDS") ?? "2");
const HOLD_MS = FAULT_SECONDS * 1000;
/** The most the clients run; the test stops them once the faults are over. */
const LOAD_SECONDS = 40 + 10 * FAULT_SECONDS;
const SEED = Number(Deno.env.get("FAULT_SEED") ?? String(Date.now() % 1_000_000_007));
/** A member that is not given up on within this is a failure. */
const LEADER_TIMEOUT_MS = 20_000;

const ROOT = new URL("..", import.meta.url).pathname;

/** The addresses of a run: members on 127.0.3.(member+i), their proxies on 127.0.3.(proxy+i). */
const ADDRESSES: Record<Impl, Record<3 | 5, { member: number; proxy: number }>> = {
  "etcd-ts": { 3: { member: 11, proxy: 51 }, 5: { member: 21, proxy: 61 } },
  "etcd": { 3: { member: 16, proxy: 56 }, 5: { member: 31, proxy: 71 } },
};

/** Replaces the value after `flag` in a command line. */
function withFlag(args: string[], flag: string, value: string): string[] {
  const at = args.indexOf(flag);
  assert(at >= 0 && at + 1 < args.length, `no ${flag} in ${args.join(" ")}`);
  return [...args.slice(0, at + 1), value, ...args.slice(at + 2)];
}

/** A cluster whose members reach each other only through their proxies, and the faults made of them. */
class Net {
  /** Each member's ID in hex, as its peer requests name it. */
  ids: string[] = [];
  /** Delay kept on every proxy between faults (and restored by {@link heal}). */
  background: { delayMs: number; jitterMs: number } | undefined;
  /** The faults injected, each with when it began (Date.now()), in order. */
  readonly phases: { name: string; at: number }[] = [];

  private constructor(readonly cluster: Cluster, readonly proxies: FaultProxy[]) {}

  static async start(impl: Impl, n: 3 | 5, prng: Prng): Promise<Net> {
    const at = ADDRESSES[impl][n];
    const hosts = Array.from({ length: n }, (_, i) => `127.0.3.${at.member + i}`);
    const cluster = await Cluster.create({ impl, hosts, token: `netfaults-${n}` });
    const proxies: FaultProxy[] = [];
    const net = new Net(cluster, proxies);
    try {
      for (const [i, m] of cluster.members.entries()) {
        const peer = new URL(m.peerUrl);
        proxies.push(FaultProxy.listen({
          hostname: `127.0.3.${at.proxy + i}`,
          target: { hostname: peer.hostname, port: Number(peer.port) },
          seed: prng.nextU32(),
          identify: peerSender,
        }));
      }
      const initialCluster = cluster.members.map((m, i) => `${m.name}=${proxies[i].url}`).join(",");
      cluster.members.forEach((m, i) => {
        let args = withFlag(m.args, "--initial-advertise-peer-urls", proxies[i].url);
        args = withFlag(args, "--initial-cluster", initialCluster);
        cluster.members[i] = memberWithArgs(m, args);
      });
      for (const m of cluster.members) m.spawn();
      await Promise.all(cluster.members.map((m) => m.waitReady(30_000)));
      const statuses = await cluster.status(undefined, 3000);
      for (const s of statuses) net.ids[cluster.indexOf(s)] = s.memberId.toString(16);
      assert(
        net.ids.filter((id) => id !== undefined).length === n,
        `member IDs: ${JSON.stringify(net.ids)}`,
      );
    } catch (err) {
      await net.destroy();
      throw err;
    }
    return net;
  }

  /** Notes the start of a fault (for the run's report). */
  fault(name: string): void {
    this.phases.push({ name, at: Date.now() });
  }

  get members(): ClusterMember[] {
    return this.cluster.members;
  }

  get all(): number[] {
    return this.members.map((_, i) => i);
  }

  /** Everything `from` sends to `to` is lost from now on (until {@link heal}). */
  cut(from: number, to: number): void {
    this.proxies[to].blackhole("toMember", this.ids[from]);
    this.proxies[from].blackhole("fromMember", this.ids[to]);
  }

  /** Cuts every link between the two sides, both ways. */
  split(a: number[], b: number[]): void {
    for (const x of a) {
      for (const y of b) {
        this.cut(x, y);
        this.cut(y, x);
      }
    }
  }

  /** Delay with jitter on every proxy, both ways. */
  delayAll(delayMs: number, jitterMs: number): void {
    for (const p of this.proxies) p.delay("both", delayMs, jitterMs);
  }

  /** Ends every fault of the proxies; the background delay, if any, stays. */
  heal(): void {
    for (const p of this.proxies) p.heal();
    if (this.background) this.delayAll(this.background.delayMs, this.background.jitterMs);
  }

  /** The leader among `among` (all by default) in a term above `afterTerm`. */
  async leader(among = this.all, afterTerm = 0): Promise<{ index: number; term: number }> {
    const l = await this.cluster.waitLeader(among, afterTerm, LEADER_TIMEOUT_MS);
    return { index: l.index, term: l.term };
  }

  /** Waits until none of `among` says it leads (a leader cut from its quorum steps down). */
  async noLeaderAmong(among: number[], timeoutMs = 8000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: string[] = [];
    while (Date.now() < deadline) {
      const s = await this.cluster.status(among, 1000);
      last = s.filter((x) => x.isLeader).map((x) => x.endpoint);
      if (s.length === among.length && last.length === 0) return;
      await sleep(100);
    }
    throw new Error(`${last.join(",")} still lead(s) without a quorum after ${timeoutMs} ms`);
  }

  /** Resident memory and open descriptors of every running member stay bounded. */
  checkResources(): { rssMiB: number[]; fds: number[] } {
    const rssMiB: number[] = [], fds: number[] = [];
    for (const m of this.members) {
      const status = Deno.readTextFileSync(`/proc/${m.pid}/status`);
      const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? "0") / 1024;
      const n = [...Deno.readDirSync(`/proc/${m.pid}/fd`)].length;
      assert(rss < 500 && n < 300, `${m.name} holds ${rss.toFixed(0)} MiB and ${n} fds`);
      rssMiB.push(Math.round(rss));
      fds.push(n);
    }
    return { rssMiB, fds };
  }

  proxyTotals(): Pick<ProxyStats, "accepted" | "resets" | "delayedChunks"> & { droppedBytes: number } {
    const sum = (f: (s: ProxyStats) => number) => this.proxies.reduce((a, p) => a + f(p.stats), 0);
    return {
      accepted: sum((s) => s.accepted),
      resets: sum((s) => s.resets + s.closedBroken),
      delayedChunks: sum((s) => s.delayedChunks),
      droppedBytes: sum((s) => s.droppedBytes.toMember + s.droppedBytes.fromMember),
    };
  }

  async destroy(): Promise<void> {
    await this.cluster.destroy();
    await Promise.all(this.proxies.map((p) => p.close()));
  }
}

/** The client worker (faults/load_worker.ts) against every member, for {@link LOAD_SECONDS} at most. */
class Load {
  readonly child: Deno.ChildProcess;
  readonly stderr: Promise<string>;
  /** When the worker was started (Date.now()); its operations' times count from about then. */
  readonly startedAt = Date.now();

  constructor(net: Net, readonly files: { out: string; stop: string }) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--quiet",
        `${ROOT}tests/faults/load_worker.ts`,
        JSON.stringify({
          endpoints: net.members.map((m) => m.endpoint),
          seconds: LOAD_SECONDS,
          // members stay down for many seconds here: watchers must not back off for longer than that
          watchBackoffMaxMs: 1000,
          ...files,
        }),
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      cwd: ROOT,
    }).spawn();
    this.stderr = new Response(this.child.stderr).text();
  }

  /** Tells the clients to stop, waits for their final write, and returns what they recorded. */
  async finish(): Promise<WorkerResult> {
    await Deno.writeTextFile(this.files.stop, "");
    const status = await this.child.status;
    assert(status.success, `the load worker failed: ${await this.stderr}`);
    return JSON.parse(await Deno.readTextFile(this.files.out)) as WorkerResult;
  }

  async kill(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // ended
    }
    await this.child.status;
    await this.stderr;
  }
}

/** What a run's checks found (they throw on any anomaly). */
/** The end-of-run checks (see faults/outcome.ts) on the net's members. */
function checkNetOutcome(net: Net, result: WorkerResult): Promise<Outcome> {
  return checkOutcome({
    ctl: async (endpoints, args) => {
      const r = await etcdctl(endpoints.join(","), [...args, "--command-timeout=3s"]);
      if (r.code !== 0) throw new Error(`etcdctl ${args.join(" ")}: ${r.stderr}`);
      return r.stdout;
    },
    endpoints: net.members.map((m) => m.endpoint),
    names: net.members.map((m) => m.name),
    minCompleted: 40,
  }, result);
}

/**
 * How the clients fared in each phase of a run: the phase's length and the operations that completed in
 * it (by their return time; the worker's clock starts about when it was started, `loadStartedAt`).
 */
function phaseFigures(
  phases: { name: string; at: number }[],
  loadStartedAt: number,
  result: WorkerResult,
): { phase: string; seconds: number; completed: number }[] {
  const returns = result.ops.filter((o) => o.return !== undefined).map((o) => loadStartedAt + o.return!);
  const end = Math.max(...returns, phases[phases.length - 1].at);
  return phases.map((p, i) => {
    const until = phases[i + 1]?.at ?? end + 1;
    return {
      phase: p.name,
      seconds: Math.round((until - p.at) / 100) / 10,
      completed: returns.filter((t) => t >= p.at && t < until).length,
    };
  });
}

/** Starts the cluster and the load, runs `faults`, then checks and reports the run. */
async function run(
  impl: Impl,
  n: 3 | 5,
  faults: (net: Net, prng: Prng) => Promise<void>,
): Promise<void> {
  const prng = new Prng(SEED + n);
  console.log(`network faults, ${n} members on ${impl}: FAULT_SEED=${SEED} FAULT_SECONDS=${FAULT_SECONDS}`);
  const dir = await Deno.makeTempDir({ prefix: "etcd-ts-netfaults-" });
  const started = Date.now();
  let net: Net | undefined;
  let load: Load | undefined;
  try {
    net = await Net.start(impl, n, prng);
    load = new Load(net, { out: `${dir}/history.json`, stop: `${dir}/stop` });
    net.fault("load before the faults");
    await faults(net, prng);
    net.heal();
    net.fault("healed");
    await sleep(1000);
    const resources = net.checkResources();
    // every member's peers really reached it through its proxy
    for (const [i, p] of net.proxies.entries()) {
      assert(p.stats.forwardedBytes.toMember > 0, `nothing reached ${net.members[i].name} through its proxy`);
      assert(
        p.connections().names.length > 0,
        `${net.members[i].name}'s proxy named none of its connections`,
      );
    }
    const loadStartedAt = load.startedAt;
    const result = await load.finish();
    load = undefined;
    const outcome = await checkNetOutcome(net, result);
    report({
      scenario: `network faults (${n} members)`,
      impl,
      seed: SEED,
      faults: net.phases.length - 2,
      seconds: (Date.now() - started) / 1000,
      ...outcome,
      phases: phaseFigures(net.phases, loadStartedAt, result),
      proxies: net.proxyTotals(),
      ...resources,
    });
  } catch (err) {
    throw new Error(
      `${(err as Error).message}\n(FAULT_SEED=${SEED})\n${net?.cluster.logs() ?? ""}`,
      { cause: err },
    );
  } finally {
    await load?.kill();
    await net?.destroy();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Three members: delay and jitter, one-way loss to the leader, resets on a follower. */
async function threeMembers(net: Net, prng: Prng): Promise<void> {
  let leader = await net.leader();
  await sleep(1500); // the clients connect and start

  // 1. every link slow and uneven: 50 ± 30 ms each way on every proxy
  net.delayAll(50, 30);
  net.fault("delay 50±30 ms everywhere");
  await sleep(HOLD_MS);
  net.heal();

  // 2. everything sent to the leader is lost (it still sends): another member takes over
  const droppedBefore = net.proxyTotals().droppedBytes;
  for (const f of net.all) if (f !== leader.index) net.cut(f, leader.index);
  net.fault("one-way loss to the leader");
  const next = await net.leader(net.all.filter((i) => i !== leader.index), leader.term);
  await sleep(HOLD_MS / 2);
  assert(net.proxyTotals().droppedBytes > droppedBefore, "the cut links lost nothing");
  net.heal();
  leader = await net.leader(net.all, next.term - 1);

  // 3. a follower's connections are reset every 300 ms
  const follower = prng.pick(net.all.filter((i) => i !== leader.index));
  const resetsBefore = net.proxies[follower].stats.resets;
  net.proxies[follower].resetEvery(300);
  net.fault("resets every 300 ms on a follower");
  await sleep(HOLD_MS * 1.5);
  assert(net.proxies[follower].stats.resets > resetsBefore, "no connection of the follower was reset");
  net.heal();
  await net.leader();
}

/** Five members, 20 ± 15 ms throughout: a split, a bridge, kill -9 of a majority, the leader frozen. */
async function fiveMembers(net: Net, prng: Prng): Promise<void> {
  net.background = { delayMs: 20, jitterMs: 15 };
  net.heal();
  net.fault("delay 20±15 ms everywhere");
  let leader = await net.leader();
  await sleep(1500);

  // 1. 2|3 with the leader among the two: the three elect another, the old one steps down
  const partner = prng.pick(net.all.filter((i) => i !== leader.index));
  const minority = [leader.index, partner];
  const majority = net.all.filter((i) => !minority.includes(i));
  net.split(minority, majority);
  net.fault("2|3 split, leader in the 2");
  const next = await net.leader(majority, leader.term);
  await net.noLeaderAmong(minority);
  await sleep(HOLD_MS / 2);
  net.heal();
  leader = await net.leader(net.all, next.term - 1);
  await sleep(500);

  // 2. a bridge: one member linked to both sides of a 2|2 cut, the leader on a side
  const [_bridge, ...rest] = prng.shuffle(net.all.filter((i) => i !== leader.index));
  const sideA = [leader.index, rest[0]];
  const sideB = [rest[1], rest[2]];
  net.split(sideA, sideB);
  net.fault("bridge");
  await sleep(HOLD_MS);
  net.heal();
  leader = await net.leader();

  // 3. kill -9 of three, the leader among them: the two left cannot commit; then back one by one
  const victims = [leader.index, ...prng.shuffle(net.all.filter((i) => i !== leader.index)).slice(0, 2)];
  const survivors = net.all.filter((i) => !victims.includes(i));
  await Promise.all(victims.map((i) => net.members[i].kill("SIGKILL")));
  net.fault("kill -9 of 3 of 5");
  const probe = await etcdctl(net.cluster.endpoints(survivors), [
    "put",
    "lab/probe/without-quorum",
    "x",
    "--command-timeout=1500ms",
  ]);
  assert(probe.code !== 0, `a write was acknowledged by ${survivors.length} of 5 members: ${probe.stdout}`);
  await sleep(HOLD_MS);
  for (const i of victims) {
    net.members[i].spawn();
    await sleep(500);
  }
  await Promise.all(victims.map((i) => net.members[i].waitReady(40_000)));
  leader = await net.leader();

  // 4. the leader freezes until the others elect another, then runs on
  net.members[leader.index].pause();
  net.fault("SIGSTOP of the leader");
  await net.leader(net.all.filter((i) => i !== leader.index), leader.term);
  await sleep(HOLD_MS / 2);
  net.members[leader.index].resume();
  await net.leader();
}

for (const impl of implementations()) {
  Deno.test({
    name: `[${impl}] peer traffic through fault proxies, 3 members: delay and jitter, one-way loss to the ` +
      `leader, resets; linearizable, nothing lost, watches intact`,
    ignore: !HAVE_ETCDCTL,
    fn: () => run(impl, 3, threeMembers),
  });
  Deno.test({
    name:
      `[${impl}] peer traffic through fault proxies, 5 members: 2|3 split, bridge, kill -9 of a majority, ` +
      `SIGSTOP of the leader; linearizable, nothing lost, watches intact`,
    ignore: !HAVE_ETCDCTL,
    fn: () => run(impl, 5, fiveMembers),
  });
}
