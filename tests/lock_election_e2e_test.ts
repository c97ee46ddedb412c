/**
 * Distributed locks and elections end to end, against etcd-ts and the real etcd with the same
 * expectations:
 *
 * - `etcdctl lock` and `etcdctl elect` (etcdctl 3.4 runs clientv3/concurrency's recipes itself, over
 *   KV, Lease and Watch): mutual exclusion between two processes, leadership handed on, `elect -l`
 *   observing every leader.
 * - The v3lockpb.Lock and v3electionpb.Election gRPC services, called directly with a small gRPC client
 *   over node:http2, for clients without recipes of their own.
 */
import http2 from "node:http2";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  ctlOk,
  Ctls,
  HAVE_ETCDCTL,
  type Impl,
  implementations,
  Member,
  sleep,
  waitUntil,
} from "./helpers.ts";
import {
  decodeLeaseGrantResponse,
  decodeRangeResponse,
  encodeLeaseGrantRequest,
  encodeRangeRequest,
  type KeyValue,
} from "../server/pb/rpc.ts";
import * as v3 from "../server/pb/v3lock.ts";
import { prefixRangeEnd } from "../storage/mvcc/bytes.ts";
import { rangeRequest } from "../server/api/lock.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string): Uint8Array => enc.encode(s);
const str = (u: Uint8Array | undefined): string => dec.decode(u ?? new Uint8Array(0));

// ---- a small gRPC client over node:http2 -----------------------------------------------------------

/** How a call ended, with the messages it received. */
interface Reply {
  status: number;
  message: string;
  messages: Uint8Array[];
}

/** One call in flight. */
class Call {
  readonly messages: Uint8Array[] = [];
  readonly done: Promise<Reply>;
  #buf = new Uint8Array(0);
  #req: http2.ClientHttp2Stream;
  #ended = false;

  constructor(session: http2.ClientHttp2Session, path: string, body: Uint8Array, timeout?: string) {
    const framed = new Uint8Array(5 + body.length);
    new DataView(framed.buffer).setUint32(1, body.length);
    framed.set(body, 5);
    this.#req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...(timeout === undefined ? {} : { "grpc-timeout": timeout }),
    });
    this.done = new Promise((resolve) => {
      const finish = (h: http2.IncomingHttpHeaders) => {
        if (h["grpc-status"] === undefined || this.#ended) return;
        this.#ended = true;
        resolve({
          status: Number(h["grpc-status"]),
          message: decodeURIComponent(String(h["grpc-message"] ?? "")),
          messages: this.messages,
        });
      };
      this.#req.on("response", finish);
      this.#req.on("trailers", finish);
      this.#req.on("close", () => {
        if (this.#ended) return;
        this.#ended = true;
        resolve({ status: -1, message: "stream closed without a status", messages: this.messages });
      });
    });
    this.#req.on("data", (d: Uint8Array) => this.#take(d));
    this.#req.on("error", () => {});
    this.#req.end(framed);
  }

  #take(d: Uint8Array): void {
    const all = new Uint8Array(this.#buf.length + d.length);
    all.set(this.#buf);
    all.set(d, this.#buf.length);
    let pos = 0;
    while (all.length - pos >= 5) {
      const len = new DataView(all.buffer, all.byteOffset + pos).getUint32(1);
      if (all.length - pos - 5 < len) break;
      this.messages.push(all.slice(pos + 5, pos + 5 + len));
      pos += 5 + len;
    }
    this.#buf = all.slice(pos);
  }

  /** True once the call has a status. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Cancels the call (RST_STREAM CANCEL). */
  cancel(): void {
    this.#req.close(http2.constants.NGHTTP2_CANCEL);
  }
}

/** A connection to one endpoint. */
class GrpcClient {
  readonly #session: http2.ClientHttp2Session;
  readonly #calls: Call[] = [];

  constructor(endpoint: string) {
    this.#session = http2.connect(`http://${endpoint}`);
    this.#session.on("error", () => {});
  }

  /** Starts a call (unary or server-streaming: one request message, then half-close). */
  start(path: string, body: Uint8Array, timeout?: string): Call {
    const c = new Call(this.#session, path, body, timeout);
    this.#calls.push(c);
    return c;
  }

  /** A unary call that must end within 10 s. */
  async unary(path: string, body: Uint8Array, timeout?: string): Promise<Reply> {
    const c = this.start(path, body, timeout);
    const timer = setTimeout(() => c.cancel(), 10_000);
    try {
      return await c.done;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A unary call that must succeed; its one response message. */
  async ok(path: string, body: Uint8Array): Promise<Uint8Array> {
    const r = await this.unary(path, body);
    if (r.status !== 0 || r.messages.length !== 1) {
      throw new Error(
        `${path}: status ${r.status} ${JSON.stringify(r.message)}, ${r.messages.length} messages`,
      );
    }
    return r.messages[0];
  }

  async close(): Promise<void> {
    for (const c of this.#calls) if (!c.ended) c.cancel();
    await Promise.all(this.#calls.map((c) => c.done));
    await new Promise<void>((resolve) => this.#session.close(() => resolve()));
  }

  // -- the calls the cases use --

  async grant(ttl: number): Promise<bigint> {
    const raw = await this.ok(
      "/etcdserverpb.Lease/LeaseGrant",
      encodeLeaseGrantRequest({ TTL: ttl, ID: 0n }),
    );
    return decodeLeaseGrantResponse(raw).ID;
  }

  async keys(prefix: string): Promise<KeyValue[]> {
    const p = b(prefix);
    const raw = await this.ok(
      "/etcdserverpb.KV/Range",
      encodeRangeRequest(rangeRequest({ key: p, rangeEnd: prefixRangeEnd(p) })),
    );
    return decodeRangeResponse(raw).kvs;
  }

  lock(name: string, lease: bigint, timeout?: string): Call {
    return this.start("/v3lockpb.Lock/Lock", v3.encodeLockRequest({ name: b(name), lease }), timeout);
  }

  campaign(name: string, lease: bigint, value: string): Call {
    return this.start(
      "/v3electionpb.Election/Campaign",
      v3.encodeCampaignRequest({ name: b(name), lease, value: b(value) }),
    );
  }

  leader(name: string): Promise<Reply> {
    return this.unary("/v3electionpb.Election/Leader", v3.encodeLeaderRequest({ name: b(name) }));
  }
}

/** The call's one message, decoded; fails with the status otherwise. */
async function answer<T>(c: Call, decode: (b: Uint8Array) => T, timeoutMs = 10_000): Promise<T> {
  const timer = setTimeout(() => c.cancel(), timeoutMs);
  const r = await c.done;
  clearTimeout(timer);
  if (r.status !== 0 || r.messages.length !== 1) {
    throw new Error(`status ${r.status} ${JSON.stringify(r.message)}, ${r.messages.length} messages`);
  }
  return decode(r.messages[0]);
}

/** Go's `%x` of a lease ID. */
const hexOf = (lease: bigint): string => lease.toString(16);

// ---- where the gRPC services are served ----------------------------------------------------------

/** A server to talk to: its client endpoint, and how to stop it. */
interface Target {
  endpoint: string;
  close(): Promise<void>;
}

async function grpcTarget(impl: Impl): Promise<Target> {
  const m = await Member.start({ impl });
  return { endpoint: m.endpoint, close: () => m.destroy() };
}

const lines = (s: string) => s.split("\n").filter((l) => l !== "");

for (const impl of implementations()) {
  Deno.test({
    name: `[${impl}] etcdctl lock: one holder at a time`,
    ignore: !HAVE_ETCDCTL,
    fn: async (t) => {
      const m = await Member.start({ impl });
      const ep = m.endpoint;
      const ctls = new Ctls(ep);
      try {
        await t.step("a second locker waits until the first releases", async () => {
          const a = ctls.start(["lock", "mx"]);
          const [keyA] = await a.waitLines(1);
          assertMatch(keyA, /^mx\/[0-9a-f]+$/);
          const bb = ctls.start(["lock", "mx"]);
          await sleep(1000);
          assertEquals(bb.lines(), [], "the second locker got the lock while the first held it");
          assertEquals(lines(await ctlOk(ep, ["get", "--prefix", "mx/", "--keys-only"])).length, 2);
          assertEquals(await a.stop("SIGINT"), 0); // etcdctl unlocks on SIGINT
          const [keyB] = await bb.waitLines(1);
          assertMatch(keyB, /^mx\/[0-9a-f]+$/);
          assert(keyA !== keyB);
          assertEquals(lines(await ctlOk(ep, ["get", "--prefix", "mx/", "--keys-only"])), [keyB]);
          assertEquals(await bb.stop("SIGINT"), 0);
          assertEquals(await ctlOk(ep, ["get", "--prefix", "mx/"]), "");
        });
        await t.step("commands run under the lock never overlap", async () => {
          const log = await Deno.makeTempFile({ prefix: "etcd-ts-lock-log-" });
          try {
            const script =
              `echo "enter $ETCD_LOCK_KEY" >> ${log}; sleep 0.5; echo "leave $ETCD_LOCK_KEY" >> ${log}`;
            const runs = [0, 1, 2].map(() => ctls.start(["lock", "cmd", "--", "sh", "-c", script]));
            for (const r of runs) assertEquals((await r.waitExit(20_000)).code, 0, r.describe());
            const got = lines(await Deno.readTextFile(log));
            assertEquals(got.length, 6);
            for (let i = 0; i < 6; i += 2) {
              assertMatch(got[i], /^enter cmd\/[0-9a-f]+$/);
              assertEquals(got[i + 1], got[i].replace("enter", "leave"));
            }
          } finally {
            await Deno.remove(log);
          }
        });
      } finally {
        await ctls.stopAll();
        await m.destroy();
      }
    },
  });

  Deno.test({
    name: `[${impl}] etcdctl elect: leadership passes on, elect -l sees every leader`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      const m = await Member.start({ impl });
      const ep = m.endpoint;
      const ctls = new Ctls(ep);
      try {
        const observer = ctls.start(["elect", "-l", "el"]);
        await sleep(300); // nobody campaigns yet: the observer prints nothing
        assertEquals(observer.lines(), []);
        const a = ctls.start(["elect", "el", "p1"]);
        const [keyA, valueA] = await a.waitLines(2);
        assertMatch(keyA, /^el\/[0-9a-f]+$/);
        assertEquals(valueA, "p1");
        assertEquals(await observer.waitLines(2), [keyA, "p1"]);
        const bb = ctls.start(["elect", "el", "p2"]);
        await sleep(800);
        assertEquals(bb.lines(), [], "a second campaigner was elected while the first led");
        assertEquals(await a.stop("SIGINT"), 0); // resigns
        const [keyB, valueB] = await bb.waitLines(2);
        assert(keyB !== keyA);
        assertEquals(valueB, "p2");
        assertEquals(await observer.waitLines(4), [keyA, "p1", keyB, "p2"]);
        assertEquals(await bb.stop("SIGINT"), 0);
        assertEquals(await observer.stop("SIGINT"), 0);
        assertEquals(await ctlOk(ep, ["get", "--prefix", "el/"]), "");
      } finally {
        await ctls.stopAll();
        await m.destroy();
      }
    },
  });

  Deno.test({
    name: `[${impl}] v3lockpb.Lock over gRPC`,
    ignore: !HAVE_ETCDCTL,
    fn: async (t) => {
      const target = await grpcTarget(impl);
      const c = new GrpcClient(target.endpoint);
      try {
        const l1 = await c.grant(30);
        const l2 = await c.grant(30);
        let key1: Uint8Array = new Uint8Array(0);

        await t.step("Lock returns name/<lease hex>; the same lease locks again at once", async () => {
          const r = await answer(c.lock("gl", l1), v3.decodeLockResponse);
          assertEquals(str(r.key), `gl/${hexOf(l1)}`);
          assert(r.header !== undefined && r.header.revision > 0 && r.header.clusterId !== 0n);
          key1 = r.key;
          const kvs = await c.keys("gl/");
          assertEquals(kvs.map((kv) => [str(kv.key), kv.lease, kv.createRevision]), [[
            str(key1),
            l1,
            r.header.revision,
          ]]);
          const again = await answer(c.lock("gl", l1), v3.decodeLockResponse);
          assertEquals(str(again.key), str(key1));
        });

        await t.step("a second lease waits until Unlock", async () => {
          const waiting = c.lock("gl", l2);
          await sleep(700);
          assert(!waiting.ended, "the second Lock returned while the first held the lock");
          assertEquals((await c.keys("gl/")).length, 2);
          const un = v3.decodeHeaderOnlyResponse(
            await c.ok("/v3lockpb.Lock/Unlock", v3.encodeUnlockRequest({ key: key1 })),
          );
          const got = await answer(waiting, v3.decodeLockResponse);
          assertEquals(str(got.key), `gl/${hexOf(l2)}`);
          assert(got.header!.revision >= un.header!.revision);
          assertEquals((await c.keys("gl/")).map((kv) => str(kv.key)), [`gl/${hexOf(l2)}`]);
          await c.ok("/v3lockpb.Lock/Unlock", v3.encodeUnlockRequest({ key: got.key }));
        });

        await t.step("a waiter whose deadline passes gives up its place", async () => {
          await answer(c.lock("gd", l1), v3.decodeLockResponse);
          const r = await c.unary(
            "/v3lockpb.Lock/Lock",
            v3.encodeLockRequest({ name: b("gd"), lease: l2 }),
            "500m",
          );
          // etcd's handler returns the context's error: UNKNOWN; etcd-ts's transport answers the deadline
          // itself with DEADLINE_EXCEEDED, as a client's own deadline would report it anyway
          assertEquals(r.message, "context deadline exceeded");
          assertEquals(r.status, impl === "etcd" ? 2 : 4);
          await waitUntil(
            async () => (await c.keys("gd/")).length === 1,
            5000,
            () => "the waiter's key to go",
          );
          assertEquals((await c.keys("gd/")).map((kv) => str(kv.key)), [`gd/${hexOf(l1)}`]);
        });

        await t.step("the lock is released when its lease expires", async () => {
          const short = await c.grant(2);
          await answer(c.lock("ge", short), v3.decodeLockResponse);
          const started = Date.now();
          const got = await answer(c.lock("ge", l2), v3.decodeLockResponse, 15_000);
          assertEquals(str(got.key), `ge/${hexOf(l2)}`);
          assert(Date.now() - started >= 1000, "the second Lock did not wait for the lease to expire");
        });

        await t.step("lease 0: a lease of 60 s is granted for the call", async () => {
          const r = await answer(c.lock("gz", 0n), v3.decodeLockResponse);
          const m = /^gz\/([0-9a-f]+)$/.exec(str(r.key));
          assert(m !== null, str(r.key));
          const ttl = await ctlOk(target.endpoint, ["lease", "timetolive", m[1]]);
          assertMatch(ttl, /granted with TTL\(60s\)/);
        });

        await t.step("errors", async () => {
          const unknownLease = await c.unary(
            "/v3lockpb.Lock/Lock",
            v3.encodeLockRequest({ name: b("gx"), lease: 0x1234n }),
          );
          assertEquals([unknownLease.status, unknownLease.message], [
            2,
            "etcdserver: requested lease not found",
          ]);
          const emptyKey = await c.unary(
            "/v3lockpb.Lock/Unlock",
            v3.encodeUnlockRequest({ key: new Uint8Array(0) }),
          );
          assertEquals([emptyKey.status, emptyKey.message], [2, "etcdserver: key is not provided"]);
          const missing = await c.unary(
            "/v3lockpb.Lock/Unlock",
            v3.encodeUnlockRequest({ key: b("gx/none") }),
          );
          assertEquals(missing.status, 0);
        });
      } finally {
        await c.close();
        await target.close();
      }
    },
  });

  Deno.test({
    name: `[${impl}] v3electionpb.Election over gRPC`,
    ignore: !HAVE_ETCDCTL,
    fn: async (t) => {
      const target = await grpcTarget(impl);
      const c = new GrpcClient(target.endpoint);
      try {
        const l1 = await c.grant(30);
        const l2 = await c.grant(30);
        const observed = (call: Call) =>
          call.messages.map((m) => {
            const r = v3.decodeLeaderResponse(m);
            return `${str(r.kv?.key)}=${str(r.kv?.value)}`;
          });

        await t.step("no leader yet", async () => {
          const r = await c.leader("ge");
          assertEquals([r.status, r.message], [2, "election: no leader"]);
        });

        const observer = c.start("/v3electionpb.Election/Observe", v3.encodeLeaderRequest({ name: b("ge") }));
        let leader1: v3.LeaderKey | undefined;
        const k1 = `ge/${hexOf(l1)}`;
        const k2 = `ge/${hexOf(l2)}`;

        await t.step("Campaign wins an empty election; Leader shows it", async () => {
          const r = await answer(c.campaign("ge", l1, "v1"), v3.decodeCampaignResponse);
          leader1 = r.leader!;
          assertEquals(str(leader1.name), "ge");
          assertEquals(str(leader1.key), k1);
          assertEquals(leader1.lease, l1);
          assertEquals(leader1.rev, r.header!.revision);
          const l = v3.decodeLeaderResponse((await c.leader("ge")).messages[0]);
          assertEquals([str(l.kv!.key), str(l.kv!.value), l.kv!.lease], [k1, "v1", l1]);
          await waitUntil(() => observer.messages.length >= 1, 5000, () => "the observer to see v1");
          assertEquals(observed(observer), [`${k1}=v1`]);
        });

        const second = c.campaign("ge", l2, "v2");

        await t.step("Proclaim: only the leader's key at its revision", async () => {
          const proclaim = (leader: v3.LeaderKey | undefined, value: string) =>
            c.unary("/v3electionpb.Election/Proclaim", v3.encodeProclaimRequest({ leader, value: b(value) }));
          assertEquals((await proclaim(leader1, "v1b")).status, 0);
          const l = v3.decodeLeaderResponse((await c.leader("ge")).messages[0]);
          assertEquals(str(l.kv!.value), "v1b");
          const stale = await proclaim({ ...leader1!, rev: leader1!.rev + 1000 }, "x");
          assertEquals([stale.status, stale.message], [2, "election: not leader"]);
          const none = await proclaim(undefined, "x");
          assertEquals([none.status, none.message], [2, `"leader" field must be provided`]);
          await waitUntil(() => observer.messages.length >= 2, 5000, () => "the observer to see v1b");
          assert(!second.ended, "the second campaigner was elected while the first led");
        });

        await t.step("Resign hands leadership to the next campaigner", async () => {
          const resign = (leader: v3.LeaderKey | undefined) =>
            c.unary("/v3electionpb.Election/Resign", v3.encodeResignRequest({ leader }));
          assertEquals((await resign(leader1)).status, 0);
          const r = await answer(second, v3.decodeCampaignResponse);
          assertEquals(str(r.leader!.key), k2);
          const l = v3.decodeLeaderResponse((await c.leader("ge")).messages[0]);
          assertEquals(str(l.kv!.value), "v2");
          await waitUntil(() => observer.messages.length >= 3, 5000, () => "the observer to see v2");
          assertEquals(observed(observer), [`${k1}=v1`, `${k1}=v1b`, `${k2}=v2`]);
          assertEquals((await resign(leader1)).status, 0, "resigning twice is fine");
          const none = await resign(undefined);
          assertEquals([none.status, none.message], [2, `"leader" field must be provided`]);
          assertEquals((await resign(r.leader)).status, 0);
          assertEquals((await c.leader("ge")).message, "election: no leader");
        });

        await t.step("campaigning again with a leased key proclaims the new value", async () => {
          const r1 = await answer(c.campaign("gr", l1, "a"), v3.decodeCampaignResponse);
          const r2 = await answer(c.campaign("gr", l1, "b"), v3.decodeCampaignResponse);
          assertEquals(r2.leader!.rev, r1.leader!.rev);
          const l = v3.decodeLeaderResponse((await c.leader("gr")).messages[0]);
          assertEquals(str(l.kv!.value), "b");
        });
        await t.step(
          "a campaign abandoned at its deadline leaves no key; Observe starts at the leader",
          async () => {
            const r = await c.unary(
              "/v3electionpb.Election/Campaign",
              v3.encodeCampaignRequest({ name: b("gr"), lease: l2, value: b("late") }),
              "300m",
            );
            assertEquals(r.message, "context deadline exceeded");
            await waitUntil(
              async () => (await c.keys("gr/")).length === 1,
              5000,
              () => "the campaign's key to go",
            );
            assertEquals(
              (await c.keys("gr/")).map((kv) => str(kv.key)),
              [`gr/${hexOf(l1)}`],
            );
            const late = c.start("/v3electionpb.Election/Observe", v3.encodeLeaderRequest({ name: b("gr") }));
            await waitUntil(() => late.messages.length >= 1, 5000, () => "the observer to see the leader");
            assertEquals(observed(late), [`gr/${hexOf(l1)}=b`]);
            late.cancel();
          },
        );
        observer.cancel();
      } finally {
        await c.close();
        await target.close();
      }
    },
  });
}
