/**
 * The corruption checks with injected fakes (clock, peer hashes, alarm proposals): etcd 3.4's rules of
 * the initial and the periodic check, their log lines, and the peer port's `/members/hashkv` between two
 * real peer transports.
 */
import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { Errors } from "../errors.ts";
import type { LogFields, Logger } from "../logger.ts";
import { PeerTransport } from "../peer/transport.ts";
import type { HashKVResponse } from "../pb/rpc.ts";
import {
  type CheckedPeer,
  checkInitialHashKV,
  CORRUPT_ALARM_MEMBER,
  type CorruptionCheckDeps,
  CorruptionMonitor,
  DataInconsistencyError,
  fetchPeerHashKV,
  hashKVHandler,
  type KvHash,
  PEER_HASHKV_PATH,
} from "./corruption.ts";
import { FakeClock } from "../../tests/fake_clock.ts";

interface Entry {
  level: string;
  msg: string;
  fields: LogFields;
}

function testLogger(out: Entry[]): Logger {
  const log = (level: string) => (msg: string, fields: LogFields = {}) => out.push({ level, msg, fields });
  const l: Logger = {
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
    child: () => l,
  };
  return l;
}

const SELF = 0x8e9e05c52164694dn;
const P2 = 0x91bc3c398fb3c146n;
const P3 = 0xfd422379fda50e48n;

/** A member under test: hashes, peers' answers and leadership set by the test; what it did recorded. */
class World {
  readonly clock = new FakeClock();
  readonly logs: Entry[] = [];
  local: KvHash = { hash: 111, revision: 10, compactRevision: -1 };
  /** The local hash after the barrier (the periodic check hashes twice); `local` when unset. */
  afterBarrier: KvHash | undefined;
  peers: CheckedPeer[] = [
    { id: P2, peerUrls: ["http://127.0.0.2:2380"] },
    { id: P3, peerUrls: ["http://127.0.0.3:2380"] },
  ];
  /** Answer (or error) by URL; a missing URL is unreachable. */
  answers = new Map<string, KvHash | Error | Promise<KvHash>>();
  leader = true;
  barrierError: Error | undefined;
  alarmError: Error | undefined;
  readonly asked: { url: string; revision: number; timeoutMs: number }[] = [];
  readonly alarms: bigint[] = [];
  private barrierDone = false;

  deps(): CorruptionCheckDeps {
    return {
      memberId: SELF,
      logger: testLogger(this.logs),
      clock: this.clock,
      requestTimeoutMs: 7000,
      localHash: () => (this.barrierDone && this.afterBarrier) ? this.afterBarrier : this.local,
      peers: () => this.peers,
      fetchPeerHash: (url, revision, timeoutMs) => {
        this.asked.push({ url, revision, timeoutMs });
        const a = this.answers.get(url);
        if (a === undefined) return Promise.reject(new Error(`dial tcp ${url}: connection refused`));
        if (a instanceof Error) return Promise.reject(a);
        return Promise.resolve(a);
      },
      isLeader: () => this.leader,
      waitApplied: () => {
        if (this.barrierError) return Promise.reject(this.barrierError);
        this.barrierDone = true;
        return Promise.resolve();
      },
      raiseCorruptAlarm: (id) => {
        this.alarms.push(id);
        return this.alarmError ? Promise.reject(this.alarmError) : Promise.resolve();
      },
    };
  }

  /** Every peer answers `hash` at the local revision. */
  agree(): void {
    for (const p of this.peers) for (const u of p.peerUrls) this.answers.set(u, { ...this.local });
  }

  entries(msg: string): Entry[] {
    return this.logs.filter((e) => e.msg === msg);
  }
}

Deno.test("initial check: peers that agree pass, with etcd's log lines", async () => {
  const w = new World();
  w.agree();
  await checkInitialHashKV(w.deps());
  assertEquals(w.entries("starting initial corruption check")[0].fields, {
    "local-member-id": "8e9e05c52164694d",
    timeout: "7s",
  });
  assertEquals(w.entries("initial corruption checking passed; no corruption").length, 1);
  // every peer is asked at this member's revision, within the request timeout
  assertEquals(w.asked, [
    { url: "http://127.0.0.2:2380", revision: 10, timeoutMs: 7000 },
    { url: "http://127.0.0.3:2380", revision: 10, timeoutMs: 7000 },
  ]);
  assertEquals(w.logs.filter((e) => e.level === "warn"), []);
});

Deno.test("initial check: same compact revision, other hash fails the start in etcd's words", async () => {
  const w = new World();
  w.agree();
  w.answers.set("http://127.0.0.3:2380", { hash: 222, revision: 12, compactRevision: -1 });
  const err = await assertRejects(() => checkInitialHashKV(w.deps()), DataInconsistencyError);
  assertEquals(err.message, "8e9e05c52164694d found data inconsistency with peers");
  assertEquals((err as DataInconsistencyError).code, "DATA_INCONSISTENCY");
  const [warn] = w.entries("found different hash values from remote peer");
  assertEquals(warn.fields, {
    "local-member-id": "8e9e05c52164694d",
    "local-member-revision": 10,
    "local-member-compact-revision": -1,
    "local-member-hash": 111,
    "remote-peer-id": "fd422379fda50e48",
    "remote-peer-endpoints": ["http://127.0.0.3:2380"],
    "remote-peer-revision": 12,
    "remote-peer-compact-revision": -1,
    "remote-peer-hash": 222,
  });
  assertEquals(w.entries("initial corruption checking passed; no corruption"), []);
});

Deno.test("initial check: another compact revision, slow, behind or unreachable peers are skipped", async (t) => {
  await t.step("a different compact revision is logged, not a failure", async () => {
    const w = new World();
    w.agree();
    w.answers.set("http://127.0.0.2:2380", { hash: 5, revision: 10, compactRevision: 4 });
    await checkInitialHashKV(w.deps());
    assertEquals(w.entries("found different compact revision values from remote peer").length, 1);
    assertEquals(w.entries("initial corruption checking passed; no corruption").length, 1);
  });
  await t.step("a peer behind (future revision) and one compacted past us", async () => {
    const w = new World();
    w.answers.set("http://127.0.0.2:2380", Errors.futureRev());
    w.answers.set("http://127.0.0.3:2380", Errors.compacted());
    await checkInitialHashKV(w.deps());
    const [slow] = w.entries("cannot fetch hash from slow remote peer");
    assertEquals(slow.fields["remote-peer-id"], "91bc3c398fb3c146");
    assertEquals(slow.fields.error, "etcdserver: mvcc: required revision is a future revision");
    const [behind] = w.entries("cannot fetch hash from remote peer; local member is behind");
    assertEquals(behind.fields["remote-peer-id"], "fd422379fda50e48");
    assertEquals(w.entries("failed hash kv request").length, 2);
    assertEquals(w.entries("initial corruption checking passed; no corruption").length, 1);
  });
  await t.step("each URL of a peer is tried in turn; a peer without URLs is not asked", async () => {
    const w = new World();
    w.peers = [
      { id: P2, peerUrls: ["http://127.0.0.9:2380", "http://127.0.0.2:2380"] },
      { id: P3, peerUrls: [] },
    ];
    w.agree();
    w.answers.delete("http://127.0.0.9:2380");
    await checkInitialHashKV(w.deps());
    assertEquals(w.asked.map((a) => a.url), ["http://127.0.0.9:2380", "http://127.0.0.2:2380"]);
    const [failed] = w.entries("failed hash kv request");
    assertEquals(failed.fields, {
      "local-member-id": "8e9e05c52164694d",
      "requested-revision": 10,
      "remote-peer-endpoint": "http://127.0.0.9:2380",
      error: "dial tcp http://127.0.0.9:2380: connection refused",
    });
    assertEquals(w.entries("initial corruption checking passed; no corruption").length, 1);
  });
  await t.step("no peer reachable at all still passes (nothing to compare with)", async () => {
    const w = new World();
    await checkInitialHashKV(w.deps());
    assertEquals(w.entries("failed hash kv request").length, 2);
    assertEquals(w.entries("initial corruption checking passed; no corruption").length, 1);
  });
  await t.step("a member that cannot hash itself fails", async () => {
    const w = new World();
    const deps = w.deps();
    deps.localHash = () => {
      throw new Error("boom");
    };
    const err = await assertRejects(() => checkInitialHashKV(deps), Error);
    assertEquals(err.message, "8e9e05c52164694d failed to fetch hash (boom)");
  });
});

/** Starts a monitor with interval 1 s on `w`; the caller stops it. */
function monitorOf(w: World): CorruptionMonitor {
  const m = new CorruptionMonitor(w.deps(), 1000);
  m.start();
  return m;
}

Deno.test("periodic check: only the leader checks, every interval, and agreeing followers raise nothing", async () => {
  const w = new World();
  w.agree();
  w.leader = false;
  const m = monitorOf(w);
  try {
    assertEquals(w.entries("enabled corruption checking")[0].fields, {
      "local-member-id": "8e9e05c52164694d",
      interval: "1s",
    });
    await w.clock.advance(3000);
    assertEquals(w.asked, [], "a follower asks no one");
    w.leader = true;
    await w.clock.advance(999);
    assertEquals(w.asked, []);
    await w.clock.advance(1);
    assertEquals(w.asked.map((a) => [a.url, a.revision]), [
      ["http://127.0.0.2:2380", 10],
      ["http://127.0.0.3:2380", 10],
    ]);
    assertEquals(w.entries("finished peer corruption check").map((e) => e.fields), [
      { "number-of-peers-checked": 2 },
    ]);
    await w.clock.advance(2000);
    assertEquals(w.entries("finished peer corruption check").length, 3);
    assertEquals(w.alarms, []);
  } finally {
    m.stop();
  }
  assertEquals(w.clock.pending, 0);
});

Deno.test("periodic check: a follower with the same compact revision and another hash raises CORRUPT", async () => {
  const w = new World();
  w.agree();
  w.answers.set("http://127.0.0.2:2380", { hash: 999, revision: 10, compactRevision: -1 });
  w.answers.set("http://127.0.0.3:2380", { hash: 998, revision: 10, compactRevision: -1 });
  const m = monitorOf(w);
  try {
    await w.clock.advance(1000);
    // once per check, for member 0 as etcd 3.4.23 does; the log names who disagreed
    assertEquals(w.alarms, [CORRUPT_ALARM_MEMBER]);
    assertEquals(CORRUPT_ALARM_MEMBER, 0n);
    assertEquals(w.entries("same compact revision then hashes must match").map((e) => e.fields), [
      {
        "leader-compact-revision": -1,
        "leader-hash": 111,
        "follower-compact-revision": -1,
        "follower-hash": 999,
        "follower-peer-id": "91bc3c398fb3c146",
      },
      {
        "leader-compact-revision": -1,
        "leader-hash": 111,
        "follower-compact-revision": -1,
        "follower-hash": 998,
        "follower-peer-id": "fd422379fda50e48",
      },
    ]);
    await w.clock.advance(1000);
    assertEquals(w.alarms.length, 2, "the next check raises it again (the alarm is idempotent)");
  } finally {
    m.stop();
  }
});

Deno.test("periodic check: etcd's other rules", async (t) => {
  await t.step("a follower ahead of the leader (revision, then compact revision)", async () => {
    const w = new World();
    w.agree();
    w.answers.set("http://127.0.0.2:2380", { hash: 111, revision: 11, compactRevision: -1 });
    const m = new CorruptionMonitor(w.deps(), 1000);
    await m.check();
    assertEquals(w.entries("revision from follower must be less than or equal to leader's")[0].fields, {
      "leader-revision": 10,
      "follower-revision": 11,
      "follower-peer-id": "91bc3c398fb3c146",
    });
    assertEquals(w.alarms, [0n]);

    const w2 = new World();
    w2.agree();
    w2.answers.set("http://127.0.0.3:2380", { hash: 7, revision: 10, compactRevision: 5 });
    await new CorruptionMonitor(w2.deps(), 1000).check();
    assertEquals(
      w2.entries("compact revision from follower must be less than or equal to leader's")[0].fields,
      {
        "leader-compact-revision": -1,
        "follower-compact-revision": 5,
        "follower-peer-id": "fd422379fda50e48",
      },
    );
    assertEquals(w2.alarms, [0n]);
  });
  await t.step("a follower with an older compact revision and another hash is no mismatch", async () => {
    const w = new World();
    w.local = { hash: 111, revision: 10, compactRevision: 6 };
    w.agree();
    w.answers.set("http://127.0.0.2:2380", { hash: 5, revision: 10, compactRevision: 4 });
    await new CorruptionMonitor(w.deps(), 1000).check();
    assertEquals(w.alarms, []);
    assertEquals(w.logs.filter((e) => e.level === "warn"), []);
  });
  await t.step("the leader's own hash changing at the same revision", async () => {
    const w = new World();
    w.agree();
    w.afterBarrier = { hash: 112, revision: 10, compactRevision: -1 };
    await new CorruptionMonitor(w.deps(), 1000).check();
    assertEquals(w.entries("found hash mismatch")[0].fields, {
      "revision-1": 10,
      "compact-revision-1": -1,
      "hash-1": 111,
      "revision-2": 10,
      "compact-revision-2": -1,
      "hash-2": 112,
    });
    assertEquals(w.alarms, [0n]);
  });
  await t.step(
    "writes between the two hashes are no mismatch; peers that did not answer are skipped",
    async () => {
      const w = new World();
      w.agree();
      w.answers.delete("http://127.0.0.3:2380");
      w.afterBarrier = { hash: 113, revision: 11, compactRevision: -1 };
      await new CorruptionMonitor(w.deps(), 1000).check();
      assertEquals(w.alarms, []);
      assertEquals(w.entries("finished peer corruption check")[0].fields, { "number-of-peers-checked": 1 });
    },
  );
  await t.step("a failed barrier fails the check (logged), and checking goes on", async () => {
    const w = new World();
    w.agree();
    w.barrierError = new Error("etcdserver: request timed out");
    const m = monitorOf(w);
    try {
      await w.clock.advance(1000);
      assertEquals(w.entries("failed to check hash KV")[0].fields, {
        error: "etcdserver: request timed out",
      });
      w.barrierError = undefined;
      await w.clock.advance(1000);
      assertEquals(w.entries("finished peer corruption check").length, 1);
    } finally {
      m.stop();
    }
  });
  await t.step("an alarm proposal that fails is logged", async () => {
    const w = new World();
    w.agree();
    w.answers.set("http://127.0.0.2:2380", { hash: 1, revision: 10, compactRevision: -1 });
    w.alarmError = new Error("etcdserver: server stopped");
    await new CorruptionMonitor(w.deps(), 1000).check();
    assertEquals(w.entries("failed to raise the CORRUPT alarm")[0].fields, {
      "mismatched-member-id": "91bc3c398fb3c146",
      error: "etcdserver: server stopped",
    });
  });
});

Deno.test("periodic check: checks never overlap, and stop ends them without an alarm", async () => {
  const w = new World();
  w.agree();
  const slow = Promise.withResolvers<KvHash>();
  w.answers.set("http://127.0.0.2:2380", slow.promise);
  w.answers.set("http://127.0.0.3:2380", { hash: 1, revision: 10, compactRevision: -1 });
  const m = monitorOf(w);
  await w.clock.advance(1000);
  assertEquals(w.asked.length, 2);
  await w.clock.advance(5000);
  assertEquals(w.asked.length, 2, "no second check while the first waits for a peer");
  assertEquals(w.clock.pending, 0, "the next check is scheduled only when this one ends");
  m.stop();
  slow.resolve({ ...w.local });
  await m.idle();
  assertEquals(w.alarms, [], "a check that ends after stop raises nothing");
  assertEquals(w.clock.pending, 0);
  await w.clock.advance(5000);
  assertEquals(w.asked.length, 2);
});

// ---- /members/hashkv between two real peer transports -----------------------------------------

function transport(id: bigint, logs: Entry[]): PeerTransport {
  return new PeerTransport({
    memberId: id,
    clusterId: 0xc1a5n,
    listen: [new URL("http://127.0.0.1:0")],
    onMessage: () => {},
    logger: testLogger(logs),
  });
}

Deno.test("/members/hashkv: etcd's JSON over the peer port, and its errors", async () => {
  const logs: Entry[] = [];
  const a = transport(1n, logs);
  const b = transport(2n, logs);
  await a.start();
  await b.start();
  const url = `http://127.0.0.1:${b.boundPorts[0]}`;
  try {
    // not registered yet: the asking member sees etcd's "unknown error"
    await assertRejects(() => fetchPeerHashKV(a, url, 5, 2000), Error, "unknown error: 404 page not found");
    const asked: number[] = [];
    const hashKV = (revision: number): HashKVResponse => {
      asked.push(revision);
      if (revision > 20) throw Errors.futureRev();
      if (revision > 0 && revision < 3) throw Errors.compacted();
      return {
        header: { clusterId: 0xc1a5n, memberId: 2n, revision: 20, raftTerm: 2 },
        hash: 3_000_000_000,
        compactRevision: 3,
      };
    };
    b.handle(PEER_HASHKV_PATH, hashKVHandler(hashKV, testLogger(logs)));
    assertEquals(await fetchPeerHashKV(a, url, 5, 2000), {
      hash: 3_000_000_000,
      revision: 20,
      compactRevision: 3,
    });
    assertEquals(asked, [5]);
    await assertRejects(() => fetchPeerHashKV(a, url, 21, 2000), Error, Errors.futureRev().message);
    await assertRejects(() => fetchPeerHashKV(a, url, 2, 2000), Error, Errors.compacted().message);
    assert(logs.some((e) => e.msg === "failed to get hashKV" && e.fields["requested-revision"] === 2));

    // the wire format is etcd 3.4's: a GET with a JSON body, answered in etcd's field names
    let r = await a.request(url, PEER_HASHKV_PATH, { body: '{"revision":5}' });
    assertEquals(r.status, 200);
    assertEquals(r.headers.get("content-type"), "application/json");
    assertEquals(r.headers.get("x-etcd-cluster-id"), "c1a5");
    assertEquals(JSON.parse(r.body), { header: { revision: 20 }, hash: 3_000_000_000, compact_revision: 3 });
    r = await a.request(url, PEER_HASHKV_PATH, { body: "{}" });
    assertEquals([r.status, asked.at(-1)], [200, 0]);
    for (const bad of ["", "nope", '{"revision":"5"}']) {
      r = await a.request(url, PEER_HASHKV_PATH, { body: bad });
      assertEquals([r.status, r.body], [400, "error unmarshalling request\n"], bad);
    }
    assert(logs.some((e) => e.msg === "failed to unmarshal request"));
    r = await a.request(url, PEER_HASHKV_PATH, { method: "POST", body: "{}" });
    assertEquals(r.status, 405);
  } finally {
    await a.stop();
    await b.stop();
  }
});
