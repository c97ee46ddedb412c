/**
 * Three-member clusters of real processes end to end, driven by the real etcdctl and the etcd3 client:
 * static bootstrap with etcd's clustering-guide commands and with `ETCD_*` variables, losing the leader
 * under load (with the client history checked for linearizability), catching up a member by snapshot,
 * a member frozen with SIGSTOP, and a member of another cluster refused.
 *
 * Every case runs against each implementation of {@link implementations}, so the real etcd shows the
 * expected client-visible behaviour is etcd's. Each case uses its own 127.0.1.x addresses, so the file
 * can run beside others with `deno test --parallel`.
 *
 * @module
 */
import { assert, assertEquals, assertNotEquals } from "./assert.ts";
import {
  afterProbes,
  Ctl,
  ctlOk,
  etcdctl,
  HAVE_ETCDCTL,
  holdsThroughout,
  type Impl,
  implementations,
  sleep,
  waitUntil,
  waitWatching,
} from "./helpers.ts";
import {
  clientFor,
  Cluster,
  ClusterMember,
  ctlHeader,
  type EndpointStatus,
  idOf,
  parseCtlJson,
  parseEndpointStatus,
} from "./cluster.ts";
import { checkKv } from "./sim/linearizability.ts";
import { History } from "./history.ts";
import { clusterId as expectedClusterId, memberId as expectedMemberId } from "../discovery/ids.ts";

/** The loopback addresses of case `slot` (1..6) for `impl`: three of 127.0.1.130–165, never shared. */
function hostsFor(slot: number, impl: Impl): string[] {
  const base = 130 + 6 * (slot - 1) + (impl === "etcd" ? 3 : 0);
  return [0, 1, 2].map((i) => `127.0.1.${base + i}`);
}

/** A deadline for one client call: long enough for an election, short enough to bound the test. */
const CALL_TIMEOUT_MS = 3000;
const deadline = () => ({ deadline: Date.now() + CALL_TIMEOUT_MS });

const hex = (id: bigint) => id.toString(16);

/** Prints one line of measurements, so a run's output records them. */
function report(impl: Impl, what: string, facts: Record<string, unknown>): void {
  console.log(`[${impl}] ${what}: ${Object.entries(facts).map(([k, v]) => `${k}=${v}`).join(" ")}`);
}

interface MemberListEntry {
  ID: string;
  name: string;
  peerURLs: string[];
  clientURLs?: string[];
}

/** `etcdctl member list -w json` through `endpoint`. */
async function memberList(endpoint: string): Promise<{ clusterId: bigint; members: MemberListEntry[] }> {
  const text = await ctlOk(endpoint, ["member", "list", "-w", "json"]);
  const parsed = parseCtlJson(text) as { members: MemberListEntry[] };
  return { clusterId: ctlHeader(text).clusterId, members: parsed.members };
}

/** Checks the member list shows exactly the cluster's members, with etcd's deterministic IDs. */
async function assertMemberList(c: Cluster, through: number, token = "etcd-cluster-1"): Promise<bigint[]> {
  const { clusterId, members } = await memberList(c.members[through].endpoint);
  const got = members
    .map((m) => ({ id: idOf(m.ID), name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs ?? [] }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const want = c.members.map((m) => ({
    id: expectedMemberId([m.peerUrl], token),
    name: m.name,
    peerURLs: [m.peerUrl],
    clientURLs: [m.clientUrl],
  }));
  assertEquals(got, want, "member list");
  const ids = want.map((m) => m.id);
  assertEquals(clusterId, expectedClusterId(ids), "cluster ID in the member list's header");
  return ids;
}

/** A `get -w json` answer: the value (null when absent) and the header's member ID. */
async function getJson(
  endpoint: string,
  key: string,
  extra: string[] = [],
): Promise<{ value: string | null; memberId: bigint }> {
  const text = await ctlOk(endpoint, ["get", key, "-w", "json", ...extra]);
  const kvs = (parseCtlJson(text) as { kvs?: { value: string }[] }).kvs ?? [];
  return { value: kvs.length === 0 ? null : atob(kvs[0].value), memberId: ctlHeader(text).memberId };
}

/** Runs `fn` against a started cluster and always tears it down. */
async function withCluster(
  spec: Parameters<typeof Cluster.start>[0],
  fn: (c: Cluster) => Promise<void>,
): Promise<void> {
  const c = await Cluster.start(spec);
  try {
    await fn(c);
  } catch (err) {
    console.error(`--- logs of the ${spec.impl} cluster ---\n${c.logs()}`);
    throw err;
  } finally {
    await c.destroy();
  }
}

/** The indices of all members but `i`. */
const others = (c: Cluster, i: number) => c.members.map((_, j) => j).filter((j) => j !== i);

for (const impl of implementations()) {
  Deno.test({
    name: `[${impl}] the clustering guide's three commands start a cluster every member serves`,
    ignore: !HAVE_ETCDCTL,
    fn: () =>
      withCluster({ impl, hosts: hostsFor(1, impl), ports: "guide" }, async (c) => {
        const ids = await assertMemberList(c, 0);
        // the plain table as well: "<id>, started, <name>, <peer urls>, <client urls>, false"
        const lines = (await ctlOk(c.endpoints([1]), ["member", "list"])).trim().split("\n").sort();
        assertEquals(
          lines,
          c.members.map((m, i) => `${hex(ids[i])}, started, ${m.name}, ${m.peerUrl}, ${m.clientUrl}, false`)
            .sort(),
        );

        // --cluster asks every member listed, at its advertised client URL
        const statuses = parseEndpointStatus(
          await ctlOk(c.endpoints([2]), ["endpoint", "status", "--cluster", "-w", "json"]),
        );
        assertEquals(statuses.map((s) => s.endpoint).sort(), c.members.map((m) => m.clientUrl).sort());
        assertEquals(
          statuses.map((s) => s.memberId).sort(),
          [...ids].sort(),
          "member IDs in endpoint status",
        );
        const leaders = statuses.filter((s) => s.isLeader);
        assertEquals(leaders.length, 1, "exactly one member is the leader");
        for (const s of statuses) {
          assertEquals(s.leader, leaders[0].memberId, `${s.endpoint} knows the leader`);
          assertEquals(s.clusterId, expectedClusterId(ids));
        }

        const put = ctlHeader(await ctlOk(c.members[1].endpoint, ["put", "greeting", "hello", "-w", "json"]));
        assertEquals(put.memberId, ids[1], "a put's header names the member that answered");
        for (const [i, m] of c.members.entries()) {
          const lin = await getJson(m.endpoint, "greeting");
          assertEquals(lin, { value: "hello", memberId: ids[i] }, `linearizable read on ${m.name}`);
          const ser = await getJson(m.endpoint, "greeting", ["--consistency=s"]);
          assertEquals(ser, { value: "hello", memberId: ids[i] }, `serializable read on ${m.name}`);
        }

        // Maintenance.MoveLeader through etcdctl, sent to the leader
        const from = leaders[0].memberId;
        const to = ids.find((id) => id !== from)!;
        const leaderEndpoint = c.members[ids.indexOf(from)].endpoint;
        const moved = await ctlOk(leaderEndpoint, ["move-leader", hex(to)]);
        assertEquals(moved.trim(), `Leadership transferred from ${hex(from)} to ${hex(to)}`);
        const after = parseEndpointStatus(
          await ctlOk(c.endpoints([0]), ["endpoint", "status", "--cluster", "-w", "json"]),
        );
        assertEquals(after.filter((s) => s.isLeader).map((s) => s.memberId), [to]);
      }),
  });

  Deno.test({
    name: `[${impl}] a cluster bootstrapped from ETCD_INITIAL_CLUSTER and ETCD_* variables alone`,
    ignore: !HAVE_ETCDCTL,
    fn: () =>
      withCluster({ impl, hosts: hostsFor(2, impl), form: "env" }, async (c) => {
        for (const m of c.members) {
          assertEquals(m.args, [], "no flags");
          assertEquals(m.env.ETCD_INITIAL_CLUSTER_STATE, "new");
        }
        await assertMemberList(c, 2);
        await ctlOk(c.members[0].endpoint, ["put", "from-env", "yes"]);
        assertEquals((await getJson(c.members[2].endpoint, "from-env")).value, "yes");
      }),
  });

  Deno.test({
    name: `[${impl}] kill -9 of the leader under load: quick election, no acked write lost, linearizable`,
    ignore: !HAVE_ETCDCTL,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: () => withCluster({ impl, hosts: hostsFor(3, impl) }, (c) => leaderCrash(impl, c)),
  });

  Deno.test({
    name: `[${impl}] a follower far behind catches up (--snapshot-count 50)`,
    ignore: !HAVE_ETCDCTL,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: () =>
      withCluster(
        { impl, hosts: hostsFor(4, impl), extraArgs: ["--snapshot-count", "50"] },
        (c) => snapshotCatchUp(impl, c),
      ),
  });

  Deno.test({
    name: `[${impl}] a member frozen by SIGSTOP neither disrupts the cluster nor serves stale reads`,
    ignore: !HAVE_ETCDCTL,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: () => withCluster({ impl, hosts: hostsFor(5, impl) }, (c) => frozenMember(impl, c)),
  });

  Deno.test({
    name:
      `[${impl}] leases and watches through followers: keep-alives reach the leader, events reach everyone`,
    ignore: !HAVE_ETCDCTL,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: () => withCluster({ impl, hosts: hostsFor(7, impl) }, (c) => followerLeaseAndWatch(c)),
  });

  Deno.test({
    name: `[${impl}] a member with another --initial-cluster-token is refused by the cluster's peers`,
    ignore: !HAVE_ETCDCTL,
    fn: () => withCluster({ impl, hosts: hostsFor(6, impl) }, (c) => foreignMember(impl, c)),
  });
}

const WRITERS = 4;
const REGISTERS = 3;
const MAX_OPS_PER_WRITER = 300;
/**
 * How long the survivors may take to elect a leader once the leader is killed (election timeout 1 s).
 * Without pre-vote, etcd 3.4's default, a follower whose log is behind may time out first and lose its
 * campaign, and each such campaign restarts the other follower's election timer: the real etcd once
 * took 5.4 s of such rounds here. Twelve seconds is six rounds at their longest.
 */
const ELECTION_BOUND_MS = 12_000;

async function leaderCrash(impl: Impl, c: Cluster): Promise<void> {
  const before = await c.waitLeader();
  const client = clientFor(c.members.map((m) => m.endpoint));
  const history = new History();
  /** Acknowledged writes of keys written once each, and when they were acknowledged. */
  const acked = new Map<string, { value: string; at: number }>();
  let stop = false;
  const writer = async (w: number) => {
    for (let i = 0; i < MAX_OPS_PER_WRITER && !stop; i++) {
      const done = await history.mixed(client, w, i, { prefix: "", registers: REGISTERS, deadline });
      if (done !== undefined) acked.set(done[0], { value: done[1], at: performance.now() });
    }
  };
  let writers: Promise<void>[] = [];
  try {
    writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
    const loadStart = performance.now();
    while (acked.size < 40 && performance.now() - loadStart < 5000) await sleep(20);
    assert(acked.size > 0, "no write was acknowledged before the kill");

    const killedAt = performance.now();
    await c.members[before.index].kill("SIGKILL");
    const survivors = others(c, before.index);
    const after = await c.waitLeader(survivors, before.term, ELECTION_BOUND_MS + 3000);
    const electionMs = after.seenAt - killedAt;
    assertNotEquals(after.id, before.id, "the killed member cannot lead");

    // keep the load on the new leader for a while
    const ackedAtElection = acked.size;
    const since = performance.now();
    while (acked.size < ackedAtElection + 30 && performance.now() - since < 5000) await sleep(20);
    stop = true;
    await Promise.all(writers);
    const ackedAfterKill = [...acked.values()].filter((a) => a.at > killedAt).length;
    assert(ackedAfterKill > 0, "no write was acknowledged after the leader was killed");

    // final reads of every register, part of the history (through the survivors only: the shared
    // client would let a call through to the dead member now and then, to see whether it is back)
    const rest = clientFor(survivors.map((i) => c.members[i].endpoint));
    try {
      for (let r = 0; r < REGISTERS; r++) {
        const key = `reg/${r}`;
        const out = await history.run(-1, { kind: "get", key }, async () => ({
          value: await rest.get(key).options(deadline()).string(),
        }));
        assert(out !== undefined, `the final read of ${key} failed`);
      }
    } finally {
      rest.close();
    }
    for (const i of survivors) {
      const one = clientFor([c.members[i].endpoint]);
      try {
        const stored = await one.getAll().prefix("acked/").options(deadline()).strings();
        const lost = [...acked].filter(([k, a]) => stored[k] !== a.value).map(([k]) => k);
        assertEquals(
          lost,
          [],
          `${c.members[i].name} lacks ${lost.length} of ${acked.size} acknowledged writes`,
        );
      } finally {
        one.close();
      }
    }
    const checkStarted = performance.now();
    const verdict = checkKv(history.ops);
    const checkMs = performance.now() - checkStarted;
    assert(verdict.ok, verdict.ok ? "" : `history not linearizable:\n${verdict.explanation}`);
    assert(electionMs < ELECTION_BOUND_MS, `a new leader took ${electionMs.toFixed(0)} ms`);

    // the killed member comes back with the same command and catches up
    const killed = c.members[before.index];
    const restartedAt = performance.now();
    killed.spawn();
    await killed.waitReady();
    const caughtUp = await waitCaughtUp(c, before.index, 15_000);
    const catchUpMs = performance.now() - restartedAt;
    const one = clientFor([killed.endpoint]);
    try {
      // the first call dials the restarted member, which a loaded machine may not answer within the
      // client's 1 s dial timeout: a read (nothing else) is retried while no connection is established
      const stored = await whenConnected(() =>
        one.getAll().prefix("acked/").serializable(true).options(deadline()).strings()
      );
      const missing = [...acked].filter(([k, a]) => stored[k] !== a.value).map(([k]) => k);
      assertEquals(missing, [], `the restarted member lacks ${missing.length} keys`);
      for (let r = 0; r < REGISTERS; r++) {
        const key = `reg/${r}`;
        const fin = history.ops.findLast((o) => o.input.key === key && o.input.kind === "get")!;
        const local = await one.get(key).serializable(true).options(deadline()).string();
        assertEquals(local, fin.output!.value, `serializable read of ${key} on the restarted member`);
      }
    } finally {
      one.close();
    }
    report(impl, "leader crash", {
      election_ms: electionMs.toFixed(0),
      ops: history.ops.length,
      completed: history.completed(),
      acked_keys: acked.size,
      acked_after_kill: ackedAfterKill,
      check_ms: checkMs.toFixed(0),
      catch_up_ms: catchUpMs.toFixed(0),
      raft_index: caughtUp.raftAppliedIndex,
    });
  } finally {
    stop = true;
    await Promise.allSettled(writers);
    client.close();
  }
}

/**
 * `read()`, again while it fails to reach a member, for up to 10 s: "No connection established"
 * (UNAVAILABLE), or the etcd3 client's circuit breaker, which it opens after failures to the killed
 * member and refuses calls through until it half-opens again.
 */
async function whenConnected<T>(read: () => Promise<T>): Promise<T> {
  const until = performance.now() + 10_000;
  for (;;) {
    try {
      return await read();
    } catch (err) {
      const unreachable = /No connection established|circuit breaker is open/.test(String(err));
      if (!unreachable || performance.now() > until) throw err;
      await sleep(200);
    }
  }
}

/**
 * Waits until member `i` has applied everything the others have committed (no writes are running);
 * returns its status.
 */
async function waitCaughtUp(c: Cluster, i: number, timeoutMs: number): Promise<EndpointStatus> {
  const deadlineAt = performance.now() + timeoutMs;
  let last: EndpointStatus[] = [];
  while (performance.now() < deadlineAt) {
    last = await c.status();
    const me = last.find((s) => c.indexOf(s) === i);
    const rest = last.filter((s) => s !== me);
    if (me && rest.length === 2 && rest.every((s) => me.raftAppliedIndex >= s.raftIndex)) return me;
    await sleep(100);
  }
  throw new Error(
    `${c.members[i].name} did not catch up in ${timeoutMs} ms: ${
      JSON.stringify(last.map((s) => [s.endpoint, s.raftIndex, s.raftAppliedIndex]))
    }`,
  );
}

const SNAPSHOT_KEYS = 300;

async function snapshotCatchUp(impl: Impl, c: Cluster): Promise<void> {
  const lead = await c.waitLeader();
  const f = others(c, lead.index)[0];
  const follower = c.members[f];
  await follower.kill("SIGKILL");
  const client = clientFor(others(c, f).map((i) => c.members[i].endpoint));
  const want: Record<string, string> = {};
  const writeStart = performance.now();
  try {
    let next = 0;
    const worker = async () => {
      while (next < SNAPSHOT_KEYS) {
        const n = next++;
        const key = `snap/${String(n).padStart(3, "0")}`;
        await client.put(key).value(`value-${n}`).options(deadline());
        want[key] = `value-${n}`;
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  } finally {
    client.close();
  }
  const writeMs = performance.now() - writeStart;

  const leaderMark = c.members[lead.index].mark();
  const mark = follower.mark();
  const restartedAt = performance.now();
  follower.spawn();
  await follower.waitReady();
  await waitCaughtUp(c, f, 15_000);
  const catchUpMs = performance.now() - restartedAt;
  const one = clientFor([follower.endpoint]);
  try {
    const stored = await one.getAll().prefix("snap/").serializable(true).options(deadline()).strings();
    assertEquals(stored, want, "the restarted follower's keys (serializable read)");
  } finally {
    one.close();
  }
  // etcd keeps 5000 entries for slow followers whatever --snapshot-count is, so only etcd-ts, whose
  // window is min(5000, snapshot-count), has to send a snapshot here; a log line is not client-visible
  let received = "";
  if (impl === "etcd-ts") {
    received = await follower.waitForLog(/received database snapshot/, mark, 5000) ?? "";
    assert(received !== "", `the follower logged no snapshot received:\n${follower.logSince(mark)}`);
    const sent = await c.members[lead.index].waitForLog(/sent database snapshot/, leaderMark, 5000);
    assert(
      sent !== undefined,
      `the leader logged no snapshot sent:\n${c.members[lead.index].logSince(leaderMark)}`,
    );
  }
  report(impl, "snapshot catch-up", {
    keys: SNAPSHOT_KEYS,
    write_ms: writeMs.toFixed(0),
    catch_up_ms: catchUpMs.toFixed(0),
    snapshot_index: received.match(/"snapshot-index":(\d+)/)?.[1] ?? "-",
  });
}

async function frozenMember(impl: Impl, c: Cluster): Promise<void> {
  const before = await c.waitLeader();
  const f = others(c, before.index)[0];
  const frozen = c.members[f];
  const live = others(c, f);
  const client = clientFor(live.map((i) => c.members[i].endpoint));
  let last = "";
  let writes = 0;
  let staleCheck = "";
  frozen.pause();
  try {
    // the other two keep serving writes for a few election timeouts
    const start = performance.now();
    while (performance.now() - start < 3000 && writes < 200) {
      const value = `v${writes}`;
      await client.put("frozen/k").value(value).options(deadline());
      last = value;
      writes++;
      await sleep(50);
    }
    // a linearizable read asked of the frozen member; it is answered only after SIGCONT
    const unreadBefore = await frozen.unreadClientBytes();
    const read = etcdctl(frozen.endpoint, ["get", "frozen/k", "--print-value-only", "--command-timeout=8s"], {
      timeoutMs: 12_000,
    });
    // resumed once etcdctl has connected and is waiting on it (what it sent lies unread in the socket)
    await waitUntil(
      async () => (await frozen.unreadClientBytes()) > unreadBefore,
      8000,
      () => `etcdctl never reached the frozen ${frozen.name}`,
    );
    frozen.resume();
    const r = await read;
    if (r.code === 0) {
      assertEquals(
        r.stdout.trim(),
        last,
        "a linearizable read through the resumed member returned stale data",
      );
      staleCheck = "served newest";
    } else {
      staleCheck = `failed: ${r.stderr.trim().split("\n").pop()}`;
    }
  } finally {
    if (frozen.running) {
      try {
        frozen.resume();
      } catch {
        // gone already
      }
    }
    client.close();
  }
  // it must not disrupt the cluster: leader and term are watched through a few election timeouts (every
  // member that answers, every time), not checked once after them
  const unchanged = (statuses: EndpointStatus[]): void => {
    for (const s of statuses) {
      assertEquals(hex(s.leader), hex(before.id), `${s.endpoint}: leader unchanged`);
      assertEquals(s.raftTerm, before.term, `${s.endpoint}: term unchanged (PreVote)`);
    }
  };
  const looks = await holdsThroughout(async () => unchanged(await c.status()), 3000, 50);
  const statuses = await c.status();
  assertEquals(statuses.length, 3, "every member answers endpoint status");
  unchanged(statuses);
  assertEquals((await getJson(frozen.endpoint, "frozen/k")).value, last, "linearizable read after resume");
  assertEquals(
    (await getJson(frozen.endpoint, "frozen/k", ["--consistency=s"])).value,
    last,
    "serializable read after a linearizable one",
  );
  await ctlOk(frozen.endpoint, ["put", "frozen/k", "after"]);
  report(impl, "frozen member", {
    writes_while_frozen: writes,
    read_asked_while_frozen: staleCheck,
    status_looks_after_resume: looks,
  });
}

async function foreignMember(impl: Impl, c: Cluster): Promise<void> {
  const lead = await c.waitLeader();
  const f = others(c, lead.index)[0];
  const old = c.members[f];
  const ids = await assertMemberList(c, lead.index);
  await old.kill("SIGKILL");
  await Deno.remove(old.dataDir, { recursive: true });
  // the same name and URLs, bootstrapped as a new cluster with another token
  const tokenAt = old.args.indexOf("--initial-cluster-token") + 1;
  assert(tokenAt > 0);
  const args = old.args.map((a, i) => (i === tokenAt ? "etcd-cluster-2" : a));
  const intruder = new ClusterMember(
    impl,
    old.name,
    old.host,
    old.endpoint,
    old.clientUrl,
    old.peerUrl,
    old.dataDir,
    args,
    old.env,
  );
  const live = others(c, f).map((i) => c.members[i]);
  const marks = live.map((m) => m.mark());
  intruder.spawn();
  try {
    const mismatch = /cluster ID mismatch/i;
    let seen = "";
    const until = performance.now() + 10_000;
    while (seen === "" && performance.now() < until) {
      const intruderLine = intruder.logSince().split("\n").find((l) => mismatch.test(l));
      const liveLine = live.map((m, i) => m.logSince(marks[i]).split("\n").find((l) => mismatch.test(l)))
        .find((l) => l !== undefined);
      seen = intruderLine ?? liveLine ?? "";
      if (seen === "") await sleep(200);
    }
    assert(seen !== "", `no "cluster ID mismatch" was logged:\n${intruder.logSince()}`);

    // the intruder is alone in its own cluster. etcd serves no client request before the member has
    // published itself through Raft, so its status may not answer at all; if it answers, it shows
    // another cluster ID and no leader
    const r = await etcdctl(intruder.endpoint, ["endpoint", "status", "-w", "json", "--command-timeout=2s"]);
    if (r.code === 0) {
      const [st] = parseEndpointStatus(r.stdout);
      assertNotEquals(st.clusterId, expectedClusterId(ids), "the intruder's cluster ID");
      assertEquals(st.leader, 0n, "the intruder has no leader");
    }
    const health = await etcdctl(intruder.endpoint, ["endpoint", "health", "--command-timeout=2s"]);
    assertNotEquals(health.code, 0, "the intruder must not be healthy");
    // the cluster is unchanged and serves writes with its two members
    const { members } = await memberList(live[0].endpoint);
    assertEquals(members.map((m) => idOf(m.ID)).sort(), [...ids].sort(), "member IDs unchanged");
    await ctlOk(c.endpoints(others(c, f)), ["put", "still", "serving"]);
    report(impl, "foreign member", { logged: seen.trim().slice(0, 160) });
  } finally {
    await intruder.kill("SIGKILL");
  }
}

async function followerLeaseAndWatch(c: Cluster): Promise<void> {
  const lead = await c.waitLeader();
  const [f1, f2] = others(c, lead.index);
  const follower = c.members[f1].endpoint;
  // a watcher on one follower sees writes made through the other follower
  const watcher = new Ctl(follower, ["watch", "--prefix", "fw/"]);
  try {
    await waitWatching(watcher, c.members[f2].endpoint, "fw/probe");
    const granted = await ctlOk(follower, ["lease", "grant", "30"]);
    const id = granted.match(/lease ([0-9a-f]+) granted with TTL\((\d+)s\)/)?.[1];
    assert(id, granted);
    await ctlOk(c.members[f2].endpoint, ["put", "--lease=" + id, "fw/k", "v"]);
    // keep-alive and time-to-live are answered by the leader's lessor, reached from a follower
    const kept = await ctlOk(follower, ["lease", "keep-alive", "--once", id]);
    assertEquals(kept.trim(), `lease ${id} keepalived with TTL(30)`);
    const ttl = await ctlOk(follower, ["lease", "timetolive", "--keys", id]);
    assert(/granted with TTL\(30s\), remaining\((29|30)s\), attached keys\(\[fw\/k\]\)/.test(ttl), ttl);
    await ctlOk(c.members[f2].endpoint, ["lease", "revoke", id]);
    assertEquals((await ctlOk(follower, ["get", "fw/k"])).trim(), "");
    const missing = await etcdctl(follower, ["lease", "keep-alive", "--once", id]);
    assert(
      missing.code !== 0 && /requested lease not found/.test(missing.stderr + missing.stdout),
      missing.stderr,
    );
    // the watcher saw the put and the delete caused by the revoke, in order
    const want = ["PUT", "fw/k", "v", "DELETE", "fw/k", ""];
    await waitUntil(() => afterProbes(watcher.lines()).length >= want.length, 5000, () => watcher.describe());
    assertEquals(afterProbes(watcher.lines()), want);
  } finally {
    await watcher.stop();
  }
}
