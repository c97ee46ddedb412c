/**
 * Runtime reconfiguration end to end, as etcd's runtime reconfiguration guide does it with the real
 * etcdctl: growing a cluster from one member to five under a client load (one member added as a learner
 * and promoted) and shrinking it to three by removing the leader and a follower; the errors and outputs
 * of `etcdctl member ...` compared with what the real etcd prints; what a learner serves; replacing a
 * dead member; and recovering from the loss of a majority with `--force-new-cluster`.
 *
 * A member is added exactly as the guide says: `etcdctl member add NAME --peer-urls=URL`, then started
 * with the `ETCD_*` lines that command printed, plus its listen URLs and data directory. etcd refuses a
 * reconfiguration with "etcdserver: unhealthy cluster" until every voter has been connected to the leader
 * for five seconds (`--strict-reconfig-check`, on by default), so the cases retry that one error, bounded.
 *
 * Every case runs against each implementation of {@link implementations}; the expected outputs and error
 * messages are the real etcd 3.4's. Each case has its own 127.0.1.x addresses (127.0.1.200–247).
 *
 * @module
 */
import { assert, assertEquals, assertNotEquals } from "./assert.ts";
import {
  ctlOk,
  type CtlResult,
  etcdctl,
  HAVE_ETCDCTL,
  type Impl,
  implementations,
  sleep,
} from "./helpers.ts";
import {
  clientFor,
  Cluster,
  type ClusterMember,
  ctlError,
  ctlRetrying,
  type EndpointStatus,
  joiningMember,
  listMembers,
  memberAddEnv,
  memberWithArgs,
  newMemberAddrs,
  parseCtlJson,
  parseEndpointStatus,
} from "./cluster.ts";
import { History } from "./history.ts";
import { checkKv } from "./sim/linearizability.ts";
import type { Etcd3 } from "etcd3";

/** Hosts `first`..`first+count-1` of `impl`'s range: etcd-ts 127.0.1.200–223, etcd 127.0.1.224–247. */
function hosts(impl: Impl, first: number, count: number): string[] {
  const base = 200 + (impl === "etcd" ? 24 : 0);
  return Array.from({ length: count }, (_, i) => `127.0.1.${base + first + i}`);
}

/** The one error etcd answers a reconfiguration with while a voter is not yet connected long enough. */
const UNHEALTHY = /^etcdserver: unhealthy cluster$/;
/** etcd's answer to promoting a learner that has not caught up with the leader yet. */
const NOT_IN_SYNC = "etcdserver: can only promote a learner member which is in sync with leader";

/** A deadline for one client call. */
const CALL_TIMEOUT_MS = 3000;
const deadline = () => ({ deadline: Date.now() + CALL_TIMEOUT_MS });

/** Prints one line of measurements and captured messages, so a run's output records them. */
function report(impl: Impl, what: string, facts: Record<string, unknown>): void {
  console.log(`[${impl}] ${what}: ${Object.entries(facts).map(([k, v]) => `${k}=${v}`).join(" ")}`);
}

/** A failed etcdctl run, described for an assertion message. */
function describe(r: CtlResult): string {
  return `exit ${r.code}, stdout ${JSON.stringify(r.stdout)}, error ${JSON.stringify(ctlError(r))}`;
}

/** Asserts that etcdctl failed with exactly `error` (its `Error: ...` line) and printed nothing. */
function assertCtlError(r: CtlResult, error: string, what: string): void {
  assertEquals({ code: r.code, stdout: r.stdout, error: ctlError(r) }, { code: 1, stdout: "", error }, what);
}

/** The first line `member add` prints: `Member <id> added to cluster <cluster id>` (IDs as `%16x`). */
const ADDED = /^Member +([0-9a-f]+) added to cluster +([0-9a-f]+)$/;

/**
 * `etcdctl member add NAME --peer-urls=URL [--learner]` through `via`, retried while etcd answers
 * "unhealthy cluster"; checks the output has the guide's form and returns the new member's ID and the
 * `ETCD_*` variables to start it with.
 */
async function memberAdd(
  via: string,
  name: string,
  peerUrl: string,
  learner = false,
): Promise<{ id: string; env: Record<string, string> }> {
  const args = ["member", "add", name, `--peer-urls=${peerUrl}`, ...(learner ? ["--learner"] : [])];
  const r = await ctlRetrying(via, args, UNHEALTHY);
  assertEquals(r.code, 0, `etcdctl ${args.join(" ")}: ${describe(r)}`);
  const lines = r.stdout.split("\n");
  const added = lines[0].match(ADDED);
  assert(added, `member add printed ${JSON.stringify(r.stdout)}`);
  assertEquals(lines[1], "", "a blank line after the first");
  const env = memberAddEnv(r.stdout);
  assertEquals(Object.keys(env), [
    "ETCD_NAME",
    "ETCD_INITIAL_CLUSTER",
    "ETCD_INITIAL_ADVERTISE_PEER_URLS",
    "ETCD_INITIAL_CLUSTER_STATE",
  ]);
  assertEquals(env.ETCD_NAME, name);
  assertEquals(env.ETCD_INITIAL_ADVERTISE_PEER_URLS, peerUrl);
  assertEquals(env.ETCD_INITIAL_CLUSTER_STATE, "existing");
  // every member as name=peer URL, in the order of their IDs (random for added members)
  assert(env.ETCD_INITIAL_CLUSTER.split(",").includes(`${name}=${peerUrl}`), env.ETCD_INITIAL_CLUSTER);
  return { id: added[1], env };
}

/** Adds member `name` on `host` to `c` (through `via`) and starts it with what `member add` printed. */
async function addAndStart(
  c: Cluster,
  via: string,
  name: string,
  host: string,
  learner = false,
): Promise<{ member: ClusterMember; id: string }> {
  const addrs = newMemberAddrs(name, host, c.root);
  const { id, env } = await memberAdd(via, name, addrs.peerUrl, learner);
  const member = joiningMember(c.impl, addrs, env);
  c.members.push(member);
  member.spawn();
  return { member, id };
}

/** `endpoint status -w json` of one member, with `isLearner`; undefined when it does not answer. */
async function statusOf(endpoint: string): Promise<(EndpointStatus & { isLearner: boolean }) | undefined> {
  const r = await etcdctl(endpoint, ["endpoint", "status", "-w", "json", "--command-timeout=2s"], {
    timeoutMs: 7000,
  });
  if (r.code !== 0 || !r.stdout.trim().startsWith("[")) return undefined;
  const [s] = parseEndpointStatus(r.stdout);
  const raw = parseCtlJson(r.stdout) as { Status: { isLearner?: boolean } }[];
  return { ...s, isLearner: raw[0].Status.isLearner ?? false };
}

/**
 * Waits until the learner at `endpoint` answers `endpoint status` as a learner that knows a leader (a
 * learner fails `endpoint health`, whose linearizable read it may not serve).
 */
async function waitLearnerUp(m: ClusterMember, timeoutMs = 20_000): Promise<EndpointStatus> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    if (!m.running) throw new Error(`learner ${m.name} exited:\n${m.logSince()}`);
    const s = await statusOf(m.endpoint);
    last = s;
    if (s && s.isLearner && s.leader !== 0n) return s;
    await sleep(100);
  }
  throw new Error(
    `learner ${m.name} not up in ${timeoutMs} ms (last status ${
      JSON.stringify(last, (_, v) => typeof v === "bigint" ? v.toString(16) : v)
    }):\n${m.logSince()}`,
  );
}

/**
 * `member promote ID` through `via`, retried while etcd answers that the learner is not in sync yet (or
 * "unhealthy cluster"); returns the output and how many refusals came first.
 */
async function promote(
  via: string,
  id: string,
  timeoutMs = 20_000,
): Promise<{ out: string; refused: number }> {
  const until = Date.now() + timeoutMs;
  let refused = 0;
  for (;;) {
    const r = await etcdctl(via, ["member", "promote", id]);
    if (r.code === 0) return { out: r.stdout, refused };
    const err = ctlError(r);
    if ((err !== NOT_IN_SYNC && !UNHEALTHY.test(err)) || Date.now() >= until) {
      throw new Error(`member promote ${id}: ${describe(r)}`);
    }
    refused++;
    await sleep(200);
  }
}

/**
 * The log line of a member that learns it has been removed from the cluster, as etcd 3.4 prints it
 * (`etcdserver: the member has been permanently removed from the cluster`) or as a JSON log entry's
 * message; not the transport's lines that quote the same words in parentheses.
 */
const REMOVED = /(etcdserver: |"msg":")the member has been permanently removed from the cluster/;

/** Waits until the process of `m` has ended by itself; returns the line of its log matching `re`. */
async function waitStopsItself(
  m: ClusterMember,
  re: RegExp,
  mark: number,
  timeoutMs = 15_000,
): Promise<string> {
  const until = Date.now() + timeoutMs;
  while (m.running && Date.now() < until) await sleep(100);
  assert(!m.running, `${m.name} still runs ${timeoutMs} ms after its removal:\n${m.logSince(mark)}`);
  const line = await m.waitForLog(re, mark, 2000);
  assert(line !== undefined, `${m.name} stopped without logging ${re}:\n${m.logSince(mark)}`);
  return line.trim();
}

/** Runs `fn` against `c` (already started) and always tears it down, printing its logs on failure. */
async function withCluster(c: Cluster, fn: (c: Cluster) => Promise<void>): Promise<void> {
  try {
    await fn(c);
  } catch (err) {
    console.error(`--- logs of the ${c.impl} cluster ---\n${c.logs()}`);
    throw err;
  } finally {
    await c.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------
// 1. grow from one member to five under load, then shrink to three

const WRITERS = 3;
const REGISTERS = 3;
const MAX_OPS_PER_WRITER = 1000;
/** The load stops after this long even when the reconfiguration is not done (it should be by then). */
const LOAD_LIMIT_MS = 60_000;

/**
 * A steady write/read load: each writer puts and gets a few registers and writes keys of its own once
 * each, through the voters in `live`, one member per call (round robin), paced. Every call is recorded in
 * `history`; the once-written keys acknowledged are kept in `acked`.
 */
class Load {
  readonly history = new History();
  readonly acked = new Map<string, string>();
  /** Client endpoints the writers use; changed as voters come and go. */
  live: string[];
  private readonly clients = new Map<string, Etcd3>();
  private stopped = false;
  private writers: Promise<void>[] = [];

  constructor(endpoints: string[]) {
    this.live = [...endpoints];
  }

  private client(endpoint: string): Etcd3 {
    let c = this.clients.get(endpoint);
    if (!c) this.clients.set(endpoint, c = clientFor([endpoint]));
    return c;
  }

  start(): void {
    const started = performance.now();
    this.writers = Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; i < MAX_OPS_PER_WRITER && !this.stopped; i++) {
        if (performance.now() - started > LOAD_LIMIT_MS) break;
        const client = this.client(this.live[(w + i) % this.live.length]);
        const done = await this.history.mixed(client, w, i, { prefix: "", registers: REGISTERS, deadline });
        if (done !== undefined) this.acked.set(...done);
        await sleep(50);
      }
    });
  }

  /**
   * Stops using `endpoint` before its member is removed: new calls go to the others, and its client is
   * closed (calls still running on it fail and stay pending).
   */
  retire(endpoint: string): void {
    this.live = this.live.filter((e) => e !== endpoint);
    this.clients.get(endpoint)?.close();
    this.clients.delete(endpoint);
  }

  /** Stops the writers and waits for their last calls. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled(this.writers);
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
  }
}

async function growAndShrink(impl: Impl, c: Cluster): Promise<void> {
  const h = hosts(impl, 0, 5);
  const started = performance.now();
  const load = new Load([c.members[0].endpoint]);
  const ids = new Map<string, string>(); // name -> hex ID
  ids.set("infra0", (await listMembers(c.members[0].endpoint))[0].id);
  const voters = () => c.members.filter((m) => load.live.includes(m.endpoint));
  try {
    load.start();
    while (load.acked.size < 10 && performance.now() - started < 5000) await sleep(20);
    assert(load.acked.size > 0, "no write was acknowledged on the single member");

    // grow, one member at a time; infra2 joins as a learner and is promoted once in sync
    let promoteRefusals = 0;
    for (let k = 1; k < 5; k++) {
      const name = `infra${k}`;
      const learner = k === 2;
      const via = voters().map((m) => m.endpoint).join(",");
      const { member, id } = await addAndStart(c, via, name, h[k], learner);
      ids.set(name, id);
      if (learner) {
        await waitLearnerUp(member);
        const listed = (await listMembers(via)).find((m) => m.id === id);
        assertEquals(listed?.isLearner, true, `${name} is listed as a learner before its promotion`);
        const p = await promote(via, id);
        promoteRefusals = p.refused;
        assert(new RegExp(`^Member +${id} promoted in cluster +[0-9a-f]+\\n$`).test(p.out), p.out);
      }
      await member.waitReady();
      load.live.push(member.endpoint);
    }
    const five = await listMembers(c.members[0].endpoint);
    assertEquals(
      five.map((m) => [m.name, m.id, m.isLearner, m.peerURLs, m.clientURLs]),
      c.members.map((m) => [m.name, ids.get(m.name), false, [m.peerUrl], [m.clientUrl]]),
      "five voters, all started",
    );
    const ackedAtFive = load.acked.size;

    // shrink: remove the leader, then a follower; each removed member stops by itself
    const removed: { member: ClusterMember; line: string }[] = [];
    for (const which of ["leader", "follower"]) {
      const among = c.members.map((_, i) => i).filter((i) => load.live.includes(c.members[i].endpoint));
      const lead = await c.waitLeader(among);
      const victim = which === "leader"
        ? c.members[lead.index]
        : c.members[among.find((i) => i !== lead.index)!];
      load.retire(victim.endpoint);
      const mark = victim.mark();
      const via = voters().map((m) => m.endpoint).join(",");
      const id = ids.get(victim.name)!;
      const r = await ctlRetrying(via, ["member", "remove", id], UNHEALTHY);
      assertEquals(r.code, 0, `member remove ${victim.name} (${which}): ${describe(r)}`);
      assert(
        new RegExp(`^Member +${id} removed from cluster +[0-9a-f]+\\n$`).test(r.stdout),
        `member remove printed ${JSON.stringify(r.stdout)}`,
      );
      const line = await waitStopsItself(victim, REMOVED, mark);
      removed.push({ member: victim, line });
      // the rest elect a leader (again) and keep serving
      await c.waitLeader(c.members.map((_, i) => i).filter((i) => load.live.includes(c.members[i].endpoint)));
    }
    // some load on the three
    const ackedAtThree = load.acked.size;
    const since = performance.now();
    while (load.acked.size < ackedAtThree + 10 && performance.now() - since < 5000) await sleep(20);
    await load.stop();
    assert(load.acked.size > ackedAtFive, "no write was acknowledged while shrinking");

    const survivors = voters();
    assertEquals(survivors.length, 3);
    // final reads of every register, through the survivors, part of the history
    for (let r = 0; r < REGISTERS; r++) {
      const key = `reg/${r}`;
      const one = clientFor([survivors[r % 3].endpoint]);
      try {
        const out = await load.history.run(-1, { kind: "get", key }, async () => ({
          value: await one.get(key).options(deadline()).string(),
        }));
        assert(out !== undefined, `the final read of ${key} failed`);
      } finally {
        one.close();
      }
    }
    for (const m of survivors) {
      const one = clientFor([m.endpoint]);
      try {
        const stored = await one.getAll().prefix("acked/").options(deadline()).strings();
        const lost = [...load.acked].filter(([k, v]) => stored[k] !== v).map(([k]) => k);
        assertEquals(lost, [], `${m.name} lacks ${lost.length} of ${load.acked.size} acknowledged writes`);
      } finally {
        one.close();
      }
    }
    const verdict = checkKv(load.history.ops);
    assert(verdict.ok, verdict.ok ? "" : `history not linearizable:\n${verdict.explanation}`);

    for (const m of survivors) {
      const listed = await listMembers(m.endpoint);
      assertEquals(
        listed.map((l) => [l.name, l.id, l.isLearner]),
        survivors.map((s) => [s.name, ids.get(s.name), false]),
        `member list through ${m.name}`,
      );
    }
    const statuses = parseEndpointStatus(
      await ctlOk(survivors[0].endpoint, ["endpoint", "status", "--cluster", "-w", "json"]),
    );
    assertEquals(statuses.map((s) => s.endpoint).sort(), survivors.map((m) => m.clientUrl).sort());
    assertEquals(statuses.filter((s) => s.isLeader).length, 1, "one leader among the three");
    assertEquals(new Set(statuses.map((s) => s.leader)).size, 1, "all three know the same leader");
    report(impl, "grow and shrink", {
      ms: (performance.now() - started).toFixed(0),
      ops: load.history.ops.length,
      completed: load.history.completed(),
      acked: load.acked.size,
      promote_refusals: promoteRefusals,
      removed: removed.map((r) => r.member.name).join("+"),
      removed_log: JSON.stringify(removed[0].line.slice(0, 160)),
    });
  } finally {
    await load.stop();
    load.close();
  }
}

// ---------------------------------------------------------------------------------------------------
// 2. the visible results and errors of `etcdctl member ...`, normalized and compared with etcd's

/**
 * What the real etcd 3.4.23 and its etcdctl print for the sequence of {@link memberCommands}, with
 * member IDs as `<name>`, the cluster ID as `<cluster>`, hosts as `H0`..`H4`, tables as their cells and
 * rows and the `ETCD_INITIAL_CLUSTER` entries sorted (etcdctl prints them in the order of the members'
 * IDs, which are random for added members; an unstarted member has no name there: `=http://...`).
 *
 * A learner is not `member update`d here: etcd 3.4 then lists it as a voter (it drops `IsLearner` when
 * it replaces the member's Raft attributes), a bug not worth copying.
 */
const EXPECTED_TRANSCRIPT = `$ member list -w table
ID | STATUS | NAME | PEER ADDRS | CLIENT ADDRS | IS LEARNER
<infra0> | started | infra0 | http://H0:2380 | http://H0:2379 | false
exit 0
$ member add infra1 --peer-urls=http://H1:2380
Member <infra1> added to cluster <cluster>

ETCD_NAME="infra1"
ETCD_INITIAL_CLUSTER="infra0=http://H0:2380,infra1=http://H1:2380"
ETCD_INITIAL_ADVERTISE_PEER_URLS="http://H1:2380"
ETCD_INITIAL_CLUSTER_STATE="existing"
exit 0
$ member add infra2 --peer-urls=http://H2:2380
Error: etcdserver: re-configuration failed due to not enough started members
exit 1
$ member list -w table
ID | STATUS | NAME | PEER ADDRS | CLIENT ADDRS | IS LEARNER
<infra0> | started | infra0 | http://H0:2380 | http://H0:2379 | false
<infra1> | unstarted |  | http://H1:2380 |  | false
exit 0
$ (infra1 started with the ETCD_* lines)
$ member list -w table
ID | STATUS | NAME | PEER ADDRS | CLIENT ADDRS | IS LEARNER
<infra0> | started | infra0 | http://H0:2380 | http://H0:2379 | false
<infra1> | started | infra1 | http://H1:2380 | http://H1:2379 | false
exit 0
$ member add infra9 --peer-urls=http://H1:2380
Error: etcdserver: Peer URLs already exists
exit 1
$ member remove 1234
Error: etcdserver: member not found
exit 1
$ member update 1234 --peer-urls=http://H4:2381
Error: etcdserver: member not found
exit 1
$ member promote 1234
Error: etcdserver: member not found
exit 1
$ member promote <infra0>
Error: etcdserver: can only promote a learner member
exit 1
$ member update <infra1> --peer-urls=http://H4:2380
Member <infra1> updated in cluster <cluster>
exit 0
$ member list -w table
ID | STATUS | NAME | PEER ADDRS | CLIENT ADDRS | IS LEARNER
<infra0> | started | infra0 | http://H0:2380 | http://H0:2379 | false
<infra1> | started | infra1 | http://H4:2380 | http://H1:2379 | false
exit 0
$ member add infra2 --learner --peer-urls=http://H2:2380
Member <infra2> added to cluster <cluster>

ETCD_NAME="infra2"
ETCD_INITIAL_CLUSTER="infra0=http://H0:2380,infra1=http://H4:2380,infra2=http://H2:2380"
ETCD_INITIAL_ADVERTISE_PEER_URLS="http://H2:2380"
ETCD_INITIAL_CLUSTER_STATE="existing"
exit 0
$ member add infra3 --learner --peer-urls=http://H3:2380
Error: etcdserver: too many learner members in cluster
exit 1
$ member promote <infra2>
Error: etcdserver: can only promote a learner member which is in sync with leader
exit 1
$ member list -w table
ID | STATUS | NAME | PEER ADDRS | CLIENT ADDRS | IS LEARNER
<infra0> | started | infra0 | http://H0:2380 | http://H0:2379 | false
<infra1> | started | infra1 | http://H4:2380 | http://H1:2379 | false
<infra2> | unstarted |  | http://H2:2380 |  | true
exit 0
$ member remove <infra2>
Member <infra2> removed from cluster <cluster>
exit 0
$ member list
<infra0>, started, infra0, http://H0:2380, http://H0:2379, false
<infra1>, started, infra1, http://H4:2380, http://H1:2379, false
exit 0
`;

/** Turns etcdctl's output into the comparable form of {@link EXPECTED_TRANSCRIPT}. */
class Normalizer {
  /** hex ID → `<name>` */
  readonly ids = new Map<string, string>();
  clusterId = "";

  constructor(private readonly hostList: string[]) {}

  text(s: string): string {
    // etcdctl prints IDs as %16x: a short ID is padded with spaces
    let out = s.replace(/\b(Member|cluster) +/g, "$1 ");
    for (const [id, name] of this.ids) out = out.replace(new RegExp(`\\b${id}\\b`, "g"), name);
    if (this.clusterId !== "") out = out.replace(new RegExp(`\\b${this.clusterId}\\b`, "g"), "<cluster>");
    this.hostList.forEach((host, i) => out = out.replaceAll(host, `H${i}`));
    return out;
  }

  /** One command and its result, in the transcript's form. */
  entry(args: string[], r: CtlResult): string {
    const lines: string[] = [];
    for (const line of this.text(r.stdout).split("\n")) {
      if (line.startsWith("+-")) continue; // table borders
      if (line.startsWith("|")) {
        lines.push(line.split("|").slice(1, -1).map((cell) => cell.trim()).join(" | "));
      } else if (line.startsWith("ETCD_INITIAL_CLUSTER=")) {
        const entries = line.slice('ETCD_INITIAL_CLUSTER="'.length, -1).split(",");
        lines.push(`ETCD_INITIAL_CLUSTER="${entries.sort().join(",")}"`);
      } else {
        lines.push(line);
      }
    }
    // table rows (after the header) and plain member list lines come in ID order: sort them
    const body = lines.join("\n").replace(/\n+$/, "");
    const sorted = body.startsWith("ID |") || args.join(" ") === "member list"
      ? sortRows(body, args.join(" ") === "member list" ? 0 : 1)
      : body;
    const err = ctlError(r);
    return `$ ${this.text(args.join(" "))}\n${sorted === "" ? "" : sorted + "\n"}${
      err === "" ? "" : `Error: ${this.text(err)}\n`
    }exit ${r.code}\n`;
  }
}

function sortRows(body: string, keep: number): string {
  const rows = body.split("\n");
  return [...rows.slice(0, keep), ...rows.slice(keep).sort()].join("\n");
}

async function memberCommands(impl: Impl, c: Cluster): Promise<void> {
  const h = hosts(impl, 5, 5);
  const [infra0] = c.members;
  const via = infra0.endpoint;
  const norm = new Normalizer(h);
  const [self] = await listMembers(via);
  norm.ids.set(self.id, "<infra0>");
  let transcript = "";
  /** Runs `member ...` and adds it to the transcript; `retry` repeats it while etcd says "unhealthy cluster". */
  const run = async (args: string[], retry = false): Promise<CtlResult> => {
    const r = retry ? await ctlRetrying(via, args, UNHEALTHY) : await etcdctl(via, args);
    const added = r.stdout.split("\n")[0].match(ADDED);
    if (added) {
      norm.ids.set(added[1], `<${args[2]}>`);
      norm.clusterId = added[2];
    }
    transcript += norm.entry(args, r);
    return r;
  };

  await run(["member", "list", "-w", "table"]);
  const add1 = await run(["member", "add", "infra1", `--peer-urls=http://${h[1]}:2380`]);
  await run(["member", "add", "infra2", `--peer-urls=http://${h[2]}:2380`]);
  await run(["member", "list", "-w", "table"]);
  const infra1Id = add1.stdout.split("\n")[0].match(ADDED)?.[1] ?? "none";

  // infra1 listens for peers on a second address too, the one `member update` moves it to below
  const joining = joiningMember(
    impl,
    newMemberAddrs("infra1", h[1], c.root, "guide"),
    memberAddEnv(add1.stdout),
  );
  const infra1 = memberWithArgs(
    joining,
    joining.args.map((a) => a === joining.peerUrl ? `${a},http://${h[4]}:2380` : a),
  );
  c.members.push(infra1);
  infra1.spawn();
  await infra1.waitReady();
  transcript += "$ (infra1 started with the ETCD_* lines)\n";
  await run(["member", "list", "-w", "table"]);

  await run(["member", "add", "infra9", `--peer-urls=http://${h[1]}:2380`], true);
  await run(["member", "remove", "1234"]);
  await run(["member", "update", "1234", `--peer-urls=http://${h[4]}:2381`]);
  await run(["member", "promote", "1234"]);
  await run(["member", "promote", self.id]);
  await run(["member", "update", infra1Id, `--peer-urls=http://${h[4]}:2380`]);
  await run(["member", "list", "-w", "table"]);
  const add2 = await run(["member", "add", "infra2", "--learner", `--peer-urls=http://${h[2]}:2380`], true);
  const learnerId = add2.stdout.split("\n")[0].match(ADDED)?.[1] ?? "none";
  await run(["member", "add", "infra3", "--learner", `--peer-urls=http://${h[3]}:2380`], true);
  await run(["member", "promote", learnerId]);
  await run(["member", "list", "-w", "table"]);
  await run(["member", "remove", learnerId], true);
  await run(["member", "list"]);

  assertEquals(transcript, EXPECTED_TRANSCRIPT);
  report(impl, "member commands", { commands: transcript.split("\n$ ").length });
}

// ---------------------------------------------------------------------------------------------------
// 3. a learner serves serializable reads only

const LEARNER_REFUSAL = "etcdserver: rpc not supported for learner";

async function learnerServes(impl: Impl, c: Cluster): Promise<void> {
  const [, learnerHost] = hosts(impl, 10, 2);
  const voter = c.members[0].endpoint;
  await ctlOk(voter, ["put", "lk", "before"]);
  const { member: learner, id } = await addAndStart(c, voter, "infra1", learnerHost, true);
  const status = await waitLearnerUp(learner);
  assert(status.isLeader === false, "a learner does not lead");
  await ctlOk(voter, ["put", "lk", "v1"]);

  // a serializable read is answered from the learner's own store, once it has applied the put
  let local: CtlResult | undefined;
  const until = Date.now() + 5000;
  while (Date.now() < until) {
    local = await etcdctl(learner.endpoint, ["get", "lk", "--consistency=s"]);
    if (local.code === 0 && local.stdout === "lk\nv1\n") break;
    await sleep(100);
  }
  assertEquals(
    { code: local!.code, stdout: local!.stdout },
    { code: 0, stdout: "lk\nv1\n" },
    "serializable get on the learner",
  );
  // linearizable reads, writes and member list are refused (etcdctl's client retries the read ones a while)
  assertCtlError(await etcdctl(learner.endpoint, ["get", "lk"]), LEARNER_REFUSAL, "linearizable get");
  assertCtlError(await etcdctl(learner.endpoint, ["put", "lk", "v2"]), LEARNER_REFUSAL, "put");
  assertCtlError(await etcdctl(learner.endpoint, ["member", "list"]), LEARNER_REFUSAL, "member list");
  const health = await etcdctl(learner.endpoint, ["endpoint", "health"]);
  assertEquals(
    { code: health.code, error: ctlError(health) },
    { code: 1, error: "unhealthy cluster" },
    `endpoint health on the learner: ${describe(health)}`,
  );
  assert(
    health.stderr.includes(`${learner.endpoint} is unhealthy: failed to commit proposal: ${LEARNER_REFUSAL}`),
    health.stderr,
  );
  assertEquals(
    (await ctlOk(voter, ["get", "lk", "--print-value-only"])).trim(),
    "v1",
    "the refused put changed nothing",
  );

  // promoted, it serves everything
  await promote(voter, id);
  await learner.waitReady();
  assertEquals(await ctlOk(learner.endpoint, ["get", "lk"]), "lk\nv1\n", "linearizable get after promotion");
  await ctlOk(learner.endpoint, ["put", "lk", "v3"]);
  assertEquals((await statusOf(learner.endpoint))?.isLearner, false, "status after promotion");
}

// ---------------------------------------------------------------------------------------------------
// 4. replace a dead member (the guide's "replace a failed machine")

async function replaceDeadMember(impl: Impl, c: Cluster): Promise<void> {
  const h = hosts(impl, 12, 5);
  const keys = 20;
  for (let i = 0; i < keys; i++) await ctlOk(c.endpoints(), ["put", `data/${i}`, `v${i}`]);
  const before = await listMembers(c.members[0].endpoint);
  const lead = await c.waitLeader();
  const deadIndex = c.members.findIndex((_, i) => i !== lead.index);
  const dead = c.members[deadIndex];
  const deadId = before.find((m) => m.name === dead.name)!.id;
  await dead.kill("SIGKILL");
  const live = () => c.members.filter((m) => m !== dead && m.running);
  const via = () => live().map((m) => m.endpoint).join(",");

  const removed = await ctlRetrying(via(), ["member", "remove", deadId], UNHEALTHY);
  assertEquals(removed.code, 0, `member remove ${dead.name}: ${describe(removed)}`);
  assert(/^Member +[0-9a-f]+ removed from cluster +[0-9a-f]+\n$/.test(removed.stdout), removed.stdout);

  // the replacement: a new name and URL, an empty data dir, --initial-cluster-state existing
  const { member: infra3, id: newId } = await addAndStart(c, via(), "infra3", h[3]);
  await infra3.waitReady();
  const after = await listMembers(via());
  assertEquals(
    after.map((m) => [m.name, m.id, m.isLearner]),
    [
      ...before.filter((m) => m.name !== dead.name).map((m) => [m.name, m.id, false]),
      ["infra3", newId, false],
    ],
    "member list after the replacement",
  );
  // etcdctl prints each endpoint's health on stderr
  const health = await etcdctl(infra3.endpoint, ["endpoint", "health", "--cluster"]);
  assertEquals(health.code, 0, describe(health));
  assertEquals(health.stderr.split("\n").filter((l) => / is healthy: /.test(l)).length, 3, health.stderr);
  const copied = await ctlOk(infra3.endpoint, ["get", "data/", "--prefix", "--consistency=s", "--keys-only"]);
  assertEquals(copied.split("\n").filter((l) => l !== "").length, keys, "the replacement has the data");

  // a member bootstrapped as a new cluster (--initial-cluster-state new) naming the running members
  const wrongAddrs = newMemberAddrs("infra4", h[4], c.root);
  const initial = [...live().map((m) => `${m.name}=${m.peerUrl}`), `infra4=${wrongAddrs.peerUrl}`].join(",");
  const wrong = joiningMember(impl, wrongAddrs, {}, [
    "--name",
    "infra4",
    "--initial-advertise-peer-urls",
    wrongAddrs.peerUrl,
    "--initial-cluster",
    initial,
    "--initial-cluster-token",
    "etcd-cluster-1",
    "--initial-cluster-state",
    "new",
  ]);
  c.members.push(wrong);
  const marks = live().map((m) => [m, m.mark()] as const);
  wrong.spawn();
  // both sides log the mismatch: the new member that its messages were ignored, the cluster's members
  // that they refused a request of another cluster
  const MISMATCH = /cluster ID mismatch/;
  const ownLine = () => wrong.logSince().split("\n").find((l) => MISMATCH.test(l));
  const peerLine = () =>
    marks.map(([m, mark]) => m.logSince(mark).split("\n").find((l) => MISMATCH.test(l))).find((l) => l);
  const until = Date.now() + 10_000;
  while ((ownLine() === undefined || peerLine() === undefined) && Date.now() < until) await sleep(200);
  const refusal = peerLine() ?? ownLine() ?? "";
  assert(refusal !== "", `no "cluster ID mismatch" was logged:\n${wrong.logSince()}`);
  const wrongHealth = await etcdctl(wrong.endpoint, ["endpoint", "health", "--command-timeout=2s"]);
  assertNotEquals(wrongHealth.code, 0, "the member of the wrong cluster must not be healthy");
  await wrong.kill("SIGKILL");
  assertEquals((await listMembers(via())).map((m) => m.name), after.map((m) => m.name), "members unchanged");

  // the removed member, restarted on its old data dir, learns it was removed and stops
  const mark = dead.mark();
  dead.spawn();
  const stopLine = await waitStopsItself(dead, REMOVED, mark);
  await ctlOk(via(), ["put", "still", "serving"]);
  const statuses = await c.status(c.members.map((_, i) => i).filter((i) => c.members[i].running));
  assertEquals(statuses.length, 3, "three members answer");
  assertEquals(statuses.filter((s) => s.isLeader).length, 1);
  report(impl, "replace dead member", {
    wrong_cluster_own: JSON.stringify(ownLine()?.trim().slice(0, 240)),
    wrong_cluster_peer: JSON.stringify(peerLine()?.trim().slice(0, 240)),
    removed_restart: JSON.stringify(stopLine.slice(0, 160)),
  });
}

// ---------------------------------------------------------------------------------------------------
// 5. disaster recovery: majority lost, --force-new-cluster, grow back

async function forceNewCluster(impl: Impl, c: Cluster): Promise<void> {
  const h = hosts(impl, 17, 5);
  const keys = 20;
  for (let i = 0; i < keys; i++) await ctlOk(c.endpoints(), ["put", `dr/${i}`, `v${i}`]);
  const lead = await c.waitLeader();
  const [clusterBefore] = await c.status([lead.index]);
  const before = await listMembers(c.members[0].endpoint);
  // the leader and one follower die: the survivor has no quorum
  const survivorIndex = c.members.findIndex((_, i) => i !== lead.index);
  const survivor = c.members[survivorIndex];
  for (const [i, m] of c.members.entries()) if (i !== survivorIndex) await m.kill("SIGKILL");
  const stuck = await etcdctl(survivor.endpoint, ["put", "dr/x", "lost", "--command-timeout=2s"]);
  assertNotEquals(stuck.code, 0, "a write without quorum must fail");

  await survivor.kill("SIGKILL");
  const recovered = memberWithArgs(survivor, [...survivor.args, "--force-new-cluster"]);
  c.members.push(recovered);
  recovered.spawn();
  await recovered.waitReady();
  const alone = await listMembers(recovered.endpoint);
  assertEquals(
    alone.map((m) => [m.name, m.id, m.peerURLs, m.isLearner]),
    [[survivor.name, before.find((m) => m.name === survivor.name)!.id, [survivor.peerUrl], false]],
    "a single-member cluster keeping the survivor's ID",
  );
  const got = await ctlOk(recovered.endpoint, ["get", "dr/", "--prefix"]);
  const want = Array.from({ length: keys }, (_, i) => [`dr/${i}`, `v${i}`]).sort((a, b) =>
    a[0].localeCompare(b[0])
  );
  assertEquals(got, want.map(([k, v]) => `${k}\n${v}\n`).join(""), "the old data, served linearizably");
  const [st] = await c.status([c.members.indexOf(recovered)]);
  assertEquals(st.clusterId, clusterBefore.clusterId, "the cluster ID is kept");
  assertEquals(st.isLeader, true);
  await ctlOk(recovered.endpoint, ["put", "dr/after", "yes"]);

  // grow back to three by member add
  const grown: ClusterMember[] = [recovered];
  for (const [k, name] of ["infra3", "infra4"].entries()) {
    const { member } = await addAndStart(c, grown.map((m) => m.endpoint).join(","), name, h[3 + k]);
    await member.waitReady();
    grown.push(member);
  }
  const three = await listMembers(recovered.endpoint);
  assertEquals(three.map((m) => m.name), [survivor.name, "infra3", "infra4"].sort());
  const statuses = parseEndpointStatus(
    await ctlOk(recovered.endpoint, ["endpoint", "status", "--cluster", "-w", "json"]),
  );
  assertEquals(statuses.length, 3);
  assertEquals(statuses.filter((s) => s.isLeader).length, 1);
  for (const m of grown) {
    const local = await ctlOk(m.endpoint, ["get", "dr/after", "--print-value-only", "--consistency=s"]);
    assertEquals(local.trim(), "yes", `${m.name} has the data written after the recovery`);
  }
}

// ---------------------------------------------------------------------------------------------------

for (const impl of implementations()) {
  Deno.test({
    name: `[${impl}] grow from one member to five under load (a learner promoted), shrink to three`,
    ignore: !HAVE_ETCDCTL,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () =>
      withCluster(
        await Cluster.start({ impl, hosts: hosts(impl, 0, 1), names: ["infra0"] }),
        (c) => growAndShrink(impl, c),
      ),
  });

  Deno.test({
    name: `[${impl}] etcdctl member list/add/remove/update/promote print etcd's results and errors`,
    ignore: !HAVE_ETCDCTL,
    fn: async () =>
      withCluster(
        await Cluster.start({ impl, hosts: hosts(impl, 5, 1), names: ["infra0"], ports: "guide" }),
        (c) => memberCommands(impl, c),
      ),
  });

  Deno.test({
    name: `[${impl}] a learner serves serializable reads and refuses linearizable reads and writes`,
    ignore: !HAVE_ETCDCTL,
    fn: async () =>
      withCluster(
        await Cluster.start({ impl, hosts: hosts(impl, 10, 1), names: ["infra0"] }),
        (c) => learnerServes(impl, c),
      ),
  });

  Deno.test({
    name: `[${impl}] a dead member replaced; a new-cluster member and the removed one are refused`,
    ignore: !HAVE_ETCDCTL,
    fn: async () =>
      withCluster(
        await Cluster.start({ impl, hosts: hosts(impl, 12, 3) }),
        (c) => replaceDeadMember(impl, c),
      ),
  });

  Deno.test({
    name: `[${impl}] majority lost: --force-new-cluster serves the old data, then grows back`,
    ignore: !HAVE_ETCDCTL,
    fn: async () =>
      withCluster(await Cluster.start({ impl, hosts: hosts(impl, 17, 3) }), (c) => forceNewCluster(impl, c)),
  });
}
