/**
 * A cluster of real members in a {@link NetLab} (one host each), the client worker that loads it, the
 * four-fault cycle, and the end-of-run checks of outcome.ts run through the lab. Used by the partition test
 * and by the soak (soak.ts).
 *
 * @module
 */
import { type Impl, sleep } from "../helpers.ts";
import { parseEndpointStatus } from "../cluster.ts";
import type { NetLab } from "./netlab.ts";
import type { WorkerResult } from "./load_worker.ts";
import { checkOutcome, type Outcome } from "./outcome.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/** One member process inside its host. */
export class LabMember {
  log = "";
  child: Deno.ChildProcess | undefined;
  #done: Promise<void> | undefined;

  constructor(readonly lab: NetLab, readonly impl: Impl, readonly index: number, readonly dataDir: string) {}

  get ip(): string {
    return this.lab.ips[this.index];
  }

  get endpoint(): string {
    return `http://${this.ip}:2379`;
  }

  start(initialCluster: string, state: "new" | "existing"): void {
    const args = [
      "--name",
      `infra${this.index}`,
      "--data-dir",
      this.dataDir,
      "--listen-client-urls",
      this.endpoint,
      "--advertise-client-urls",
      this.endpoint,
      "--listen-peer-urls",
      `http://${this.ip}:2380`,
      "--initial-advertise-peer-urls",
      `http://${this.ip}:2380`,
      "--initial-cluster",
      initialCluster,
      "--initial-cluster-state",
      state,
      "--initial-cluster-token",
      "lab",
    ];
    const [cmd, cmdArgs] = this.impl === "etcd"
      ? ["etcd", ["--logger", "zap", ...args]]
      : [Deno.execPath(), ["run", "--allow-all", "--quiet", `${ROOT}main.ts`, ...args]];
    this.log += `\n--- started at ${new Date().toISOString()} ---\n`;
    const child = this.lab.command(this.lab.hosts[this.index], cmd, cmdArgs, {
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      cwd: ROOT,
    }).spawn();
    this.child = child;
    this.#done = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of child.stderr) this.log += dec.decode(chunk, { stream: true });
      const st = await child.status;
      const how = st.signal !== null ? `killed by ${st.signal}` : `exited with code ${st.code}`;
      this.log += `\n--- ${how} at ${new Date().toISOString()} ---\n`;
    })();
  }

  /** Resident memory (MiB) and open file descriptors of the running process, from /proc. */
  resources(): { rssMiB: number; fds: number } {
    const pid = this.child!.pid;
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const rssMiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? "0") / 1024;
    return { rssMiB, fds: [...Deno.readDirSync(`/proc/${pid}/fd`)].length };
  }

  signal(sig: Deno.Signal): void {
    if (!this.child) return;
    try {
      Deno.kill(this.child.pid, sig);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      throw new Error(
        `infra${this.index} is gone (${sig} not delivered); its log ends:\n${this.log.slice(-3000)}`,
      );
    }
  }

  async kill(): Promise<void> {
    if (!this.child) return;
    try {
      this.signal("SIGCONT");
      this.signal("SIGKILL");
    } catch {
      // gone already
    }
    await this.#done;
    this.child = undefined;
  }
}

/** Runs etcdctl in the hub (where clients live); returns its output, throwing on failure. */
export async function ctl(lab: NetLab, endpoints: string[], args: string[]): Promise<string> {
  const out = await lab.command(lab.hub, "etcdctl", [
    `--endpoints=${endpoints.join(",")}`,
    "--dial-timeout=1s",
    "--command-timeout=3s",
    ...args,
  ], { stdout: "piped", stderr: "piped", env: { ETCDCTL_API: "3" } }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`etcdctl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return text;
}

export async function leaderOf(
  lab: NetLab,
  members: LabMember[],
  among: number[],
  timeoutMs = 15_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const i of among) {
      try {
        const [s] = parseEndpointStatus(
          await ctl(lab, [members[i].endpoint], ["endpoint", "status", "-w", "json"]),
        );
        if (s?.isLeader) return i;
      } catch {
        // not answering now
      }
    }
    await sleep(100);
  }
  throw new Error(`no leader among ${among.join(",")} after ${timeoutMs} ms`);
}

/**
 * The four faults of a run, one after another, while the clients go on: the leader cut off from the
 * other members (clients still reach it) until they elect another; a follower cut off from everyone for
 * 3 s; a follower killed with SIGKILL and started again 2 s later; the leader frozen with SIGSTOP until
 * the others elect another, then continued. Takes the current leader's index; returns the new one.
 */
export async function faultCycle(
  lab: NetLab,
  members: LabMember[],
  initialCluster: string,
  leader: number,
): Promise<number> {
  const all = members.map((_, i) => i);
  await sleep(2000);
  // 1. the leader is cut off from the other members (clients still reach it)
  const others = all.filter((i) => i !== leader);
  await lab.partition([others]);
  const next = await leaderOf(lab, members, others);
  await sleep(1500);
  await lab.heal();
  leader = next;
  await sleep(1500);

  // 2. a follower is cut off from everyone, clients included
  const follower = all.find((i) => i !== leader)!;
  await lab.partition([all.filter((i) => i !== follower)], true);
  await sleep(3000);
  await lab.heal();
  await sleep(1000);

  // 3. a follower dies (kill -9) and comes back with the same command
  leader = await leaderOf(lab, members, all);
  const victim = all.find((i) => i !== leader)!;
  await members[victim].kill();
  await sleep(2000);
  members[victim].start(initialCluster, "new");
  await sleep(2000);

  // 4. the leader freezes (SIGSTOP) long enough to lose its leadership, then runs on
  leader = await leaderOf(lab, members, all);
  members[leader].signal("SIGSTOP");
  await leaderOf(lab, members, all.filter((i) => i !== leader));
  await sleep(1000);
  members[leader].signal("SIGCONT");
  await sleep(2000);

  return await leaderOf(lab, members, all);
}

/** Starts the client worker (load_worker.ts) in the hub against every member, for `seconds` at most. */
export function startWorker(
  lab: NetLab,
  members: LabMember[],
  seconds: number,
  files: { out: string; stop: string },
): { child: Deno.ChildProcess; stderr: Promise<string> } {
  const child = lab.command(lab.hub, Deno.execPath(), [
    "run",
    "--allow-all",
    "--quiet",
    `${ROOT}tests/faults/load_worker.ts`,
    // watchers retry at least every second: the client's own back-off grows to 30 s, longer than the
    // worker waits at the end for every watcher to catch up after a member was killed
    JSON.stringify({
      endpoints: members.map((m) => `${m.ip}:2379`),
      seconds,
      watchBackoffMaxMs: 1000,
      ...files,
    }),
  ], { stdin: "null", stdout: "null", stderr: "piped", cwd: ROOT }).spawn();
  return { child, stderr: new Response(child.stderr).text() };
}

/** Ends a run whatever its state: the worker and the members killed, the lab and the run's directory gone. */
export async function stopLab(
  lab: NetLab,
  members: LabMember[],
  worker: Deno.ChildProcess | undefined,
  dir: string,
): Promise<void> {
  if (worker) {
    try {
      worker.kill("SIGKILL");
    } catch {
      // ended
    }
    await worker.status;
  }
  for (const m of members) await m.kill();
  await lab.destroy();
  await Deno.remove(dir, { recursive: true });
}

/**
 * The end-of-run checks ({@link checkOutcome}) for members in `lab`; `referenceWatchBugs` for the real
 * etcd (see `OutcomeTarget` in outcome.ts).
 */
export function checkLabOutcome(
  lab: NetLab,
  members: LabMember[],
  result: WorkerResult,
  referenceWatchBugs = false,
): Promise<Outcome> {
  return checkOutcome({
    ctl: (endpoints, args) => ctl(lab, endpoints, args),
    endpoints: members.map((m) => m.endpoint),
    names: members.map((m) => `infra${m.index}`),
    minCompleted: 100,
    referenceWatchBugs,
  }, result);
}
