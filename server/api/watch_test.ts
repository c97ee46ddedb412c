/**
 * The Watch service: first against a scripted stream (deterministic backpressure, progress and
 * fragment cases), then through the real node:http2 transport with a raw gRPC client (@grpc/grpc-js,
 * identity serializers, our codec) and with the etcd3 npm client.
 */
// A real gRPC client for tests only; 1.14.7 is the version deno.lock already holds (through etcd3).
// deno-lint-ignore no-import-prefix
import * as grpc from "npm:@grpc/grpc-js@1.14.7";
import { Etcd3 } from "etcd3";
// tests that import npm packages get @types/node from npm, where tests/assert.ts does not type-check
import { assert, assertEquals, eventually } from "../transport/test_util.ts";
import { GrpcRouter, type ServerStream, type StreamCallbacks } from "../transport/grpc.ts";
import { serveNodeHttp2 } from "../transport/node_http2.ts";
import { registerWatch, type WatchServiceDeps } from "./watch.ts";
import {
  decodeWatchResponse,
  encodeWatchRequest,
  FilterType,
  type ResponseHeader,
  type WatchCreateRequest,
  type WatchRequest,
  type WatchResponse,
} from "../pb/rpc.ts";
import { WatchHub } from "../watch/hub.ts";
import type { Clock } from "../clock.ts";
import { MvccStore } from "../../storage/mvcc/store.ts";

const te = new TextEncoder();
const td = new TextDecoder();
const b = (s: string): Uint8Array => te.encode(s);
const WATCH = "/etcdserverpb.Watch/Watch";

const header = (revision: number): ResponseHeader => ({ clusterId: 7n, memberId: 9n, revision, raftTerm: 2 });

/** A store and a hub, with writes that notify as the apply loop does. */
function keySpace(schedule?: (fn: () => void) => void) {
  const mvcc = new MvccStore();
  const hub = new WatchHub({ mvcc, schedule });
  const put = (key: string, value: string | Uint8Array = "v"): number => {
    const t = mvcc.write();
    t.put(b(key), typeof value === "string" ? b(value) : value, 0n);
    const end = t.end();
    hub.notify(end);
    return end.revision;
  };
  const puts = (pairs: [string, Uint8Array][]): number => {
    const t = mvcc.write();
    for (const [k, v] of pairs) t.put(b(k), v, 0n);
    const end = t.end();
    hub.notify(end);
    return end.revision;
  };
  const del = (key: string): number => {
    const t = mvcc.write();
    t.deleteRange(b(key), undefined);
    const end = t.end();
    hub.notify(end);
    return end.revision;
  };
  return { mvcc, hub, put, puts, del };
}

function createReq(o: Partial<WatchCreateRequest> & { key: Uint8Array }): WatchRequest {
  return {
    createRequest: {
      rangeEnd: new Uint8Array(0),
      startRevision: 0,
      progressNotify: false,
      filters: [],
      prevKv: false,
      watchId: 0,
      fragment: false,
      ...o,
    },
  };
}

/** Responses ordered by revision, then watch id: a canonical order (none exists between watchers). */
function canonical(rs: WatchResponse[]): Record<string, unknown>[] {
  return rs.map(brief).sort((x, y) =>
    (x.rev as number) - (y.rev as number) || (x.id as number) - (y.id as number)
  );
}

/** A compact view of a response for comparisons. */
function brief(r: WatchResponse): Record<string, unknown> {
  const out: Record<string, unknown> = { id: r.watchId, rev: r.header.revision };
  if (r.created) out.created = true;
  if (r.canceled) out.canceled = true;
  if (r.compactRevision) out.compact = r.compactRevision;
  if (r.cancelReason) out.reason = r.cancelReason;
  if (r.fragment) out.fragment = true;
  if (r.events.length > 0) {
    out.events = r.events.map((e) =>
      `${e.type === 0 ? "put" : "delete"} ${td.decode(e.kv.key)}@${e.kv.modRevision}`
    );
  }
  return out;
}

// ---- a scripted stream --------------------------------------------------------------------------

class ManualScheduler {
  queue: (() => void)[] = [];
  readonly schedule = (fn: () => void): void => {
    this.queue.push(fn);
  };
  runAll(): void {
    for (let n = 0; n < 10_000; n++) {
      const fn = this.queue.shift();
      if (fn === undefined) return;
      fn();
    }
    throw new Error("catch-up does not terminate");
  }
}

class FakeClock implements Clock {
  intervals = new Map<number, { fn: () => void; ms: number }>();
  private next = 1;
  now = (): number => 0;
  setInterval(fn: () => void, ms: number): number {
    this.intervals.set(this.next, { fn, ms });
    return this.next++;
  }
  clearInterval(id: number): void {
    this.intervals.delete(id);
  }
  setTimeout(): number {
    throw new Error("not used");
  }
  clearTimeout(): void {}
  tick(): void {
    for (const t of [...this.intervals.values()]) t.fn();
  }
}

/** A ServerStream that records responses and reports "full" on demand. */
class ScriptedStream implements ServerStream {
  sent: WatchResponse[] = [];
  sizes: number[] = [];
  full = false;
  closed = false;
  private drains: (() => void)[] = [];
  send(message: Uint8Array): boolean {
    this.sent.push(decodeWatchResponse(message.slice()));
    this.sizes.push(message.length);
    return !this.full;
  }
  waitDrain(): Promise<void> {
    return new Promise((resolve) => this.drains.push(resolve));
  }
  /** The buffer drained: resolves waiters and lets their continuations run. */
  async drain(): Promise<void> {
    this.full = false;
    for (const d of this.drains.splice(0)) d();
    await Promise.resolve();
    await Promise.resolve();
  }
  end(): void {
    this.closed = true;
  }
  /** Responses since the last call, briefly. */
  private seen = 0;
  fresh(): Record<string, unknown>[] {
    const out = this.sent.slice(this.seen).map(brief);
    this.seen = this.sent.length;
    return out;
  }
}

function scripted(deps: Partial<WatchServiceDeps> = {}) {
  const sched = new ManualScheduler();
  const ks = keySpace(sched.schedule);
  const clock = new FakeClock();
  const router = new GrpcRouter();
  // every batch is sent at once here, so the script sees one response per write
  registerWatch(router, { hub: ks.hub, header, clock, random: () => 0, defer: (fn) => fn(), ...deps });
  const open = (): { stream: ScriptedStream; cb: StreamCallbacks; send: (r: WatchRequest) => void } => {
    const stream = new ScriptedStream();
    const ctx = { method: WATCH, metadata: new Map(), peer: "test", signal: new AbortController().signal };
    const cb = router.route(WATCH).stream!(stream, ctx);
    return { stream, cb, send: (r) => cb.onMessage(encodeWatchRequest(r)) };
  };
  return { ...ks, sched, clock, open };
}

Deno.test("watch ids, duplicates, empty ranges, cancel and progress, as etcd 3.4 answers them", () => {
  const { open, put } = scripted();
  put("a"); // rev 2
  const { stream, send } = open();
  send(createReq({ key: b("a") }));
  send(createReq({ key: b("a") }));
  send(createReq({ key: b("a"), watchId: 5 }));
  send(createReq({ key: b("a"), watchId: 5 }));
  send(createReq({ key: b("b"), rangeEnd: b("a") }));
  send(createReq({ key: b("a"), watchId: 2 }));
  send(createReq({ key: b("a") })); // 0, 1 and 2 taken: 3
  assertEquals(stream.fresh(), [
    { id: 0, rev: 2, created: true },
    { id: 1, rev: 2, created: true },
    { id: 5, rev: 2, created: true },
    {
      id: -1,
      rev: 2,
      created: true,
      canceled: true,
      reason: "mvcc: duplicate watch ID provided on the WatchStream",
    },
    { id: -1, rev: 2, created: true, canceled: true, reason: "mvcc: watcher range is empty" },
    { id: 2, rev: 2, created: true },
    { id: 3, rev: 2, created: true },
  ]);
  send({ progressRequest: {} });
  send({ cancelRequest: { watchId: 5 } });
  send({ cancelRequest: { watchId: 99 } }); // unknown: no answer
  send({ cancelRequest: { watchId: 1 } });
  put("a");
  assertEquals(stream.fresh(), [
    { id: -1, rev: 2 },
    { id: 5, rev: 2, canceled: true },
    { id: 1, rev: 2, canceled: true },
    { id: 0, rev: 3, events: ["put a@3"] },
    { id: 2, rev: 3, events: ["put a@3"] },
    { id: 3, rev: 3, events: ["put a@3"] },
  ]);
  assertEquals(stream.sent[0].header, header(2));
});

Deno.test("an empty key watches \\0; range end \\0 watches every key from the key on", () => {
  const { open, put } = scripted();
  const { stream, send } = open();
  send(createReq({ key: new Uint8Array(0) }));
  send(createReq({ key: new Uint8Array(0), rangeEnd: new Uint8Array([0]) }));
  send(createReq({ key: b("m"), rangeEnd: new Uint8Array([0]) }));
  stream.fresh();
  put("\0");
  put("a");
  put("z");
  assertEquals(stream.fresh(), [
    { id: 0, rev: 2, events: ["put \0@2"] },
    { id: 1, rev: 2, events: ["put \0@2"] },
    { id: 1, rev: 3, events: ["put a@3"] },
    { id: 1, rev: 4, events: ["put z@4"] },
    { id: 2, rev: 4, events: ["put z@4"] },
  ]);
});

Deno.test("history, compaction cancel with header revision 0, filters and prevKv", () => {
  const { open, put, del, mvcc, sched } = scripted();
  for (let i = 0; i < 5; i++) put("c", `v${i}`); // 2..6
  del("c"); // 7
  mvcc.compact(4);
  const { stream, send } = open();
  send(createReq({ key: b("c"), startRevision: 3 }));
  send(createReq({ key: b("c"), startRevision: 4, prevKv: true }));
  send(createReq({ key: b("c"), startRevision: 4, filters: [FilterType.NOPUT] }));
  send(createReq({ key: b("c"), startRevision: 4, filters: [FilterType.NODELETE] }));
  assertEquals(stream.fresh().length, 4, "created first, history later");
  sched.runAll();
  assertEquals(stream.fresh(), [
    { id: 0, rev: 0, canceled: true, compact: 4 },
    { id: 1, rev: 7, events: ["put c@4", "put c@5", "put c@6", "delete c@7"] },
    { id: 2, rev: 7, events: ["delete c@7"] },
    { id: 3, rev: 7, events: ["put c@4", "put c@5", "put c@6"] },
  ]);
  const prev = stream.sent[5].events.map((e) => e.prevKv && td.decode(e.prevKv.value));
  assertEquals(prev, [undefined, "v2", "v3", "v4"]);
  assertEquals(stream.sent[4].header, header(0));
  // the compacted id stays taken until canceled, as in etcd
  send(createReq({ key: b("c"), watchId: 0 }));
  assertEquals(stream.fresh().length, 1);
  send({ cancelRequest: { watchId: 0 } });
  assertEquals(stream.fresh(), [{ id: 0, rev: 7, canceled: true }]);
});

Deno.test("backpressure: a full stream refuses batches; after the drain they come from history, in order", async () => {
  const { open, put, sched, hub } = scripted();
  const { stream, send } = open();
  send(createReq({ key: b("k") }));
  send(createReq({ key: b("j") }));
  stream.fresh();
  stream.full = true;
  put("k"); // 2: sent, but the stream is now above its mark
  put("k"); // 3: refused
  put("j"); // 4: refused
  put("k"); // 5: the watcher is blocked, not asked
  assertEquals(stream.fresh(), [{ id: 0, rev: 2, events: ["put k@2"] }]);
  assertEquals(hub.stats(), { synced: 0, pending: 0, blocked: 2 });
  send({ progressRequest: {} }); // deferred: watchers lag
  assertEquals(stream.fresh(), []);
  await stream.drain();
  sched.runAll();
  const after = stream.fresh();
  // each watcher's responses in order (no order between watchers), the progress answer last
  assertEquals(after.filter((r) => r.id === 0), [
    { id: 0, rev: 3, events: ["put k@3"] },
    { id: 0, rev: 5, events: ["put k@5"] },
  ]);
  assertEquals(after.filter((r) => r.id === 1), [{ id: 1, rev: 4, events: ["put j@4"] }]);
  assertEquals(after[after.length - 1], { id: -1, rev: 5 });
  assertEquals(after.length, 4);
  assertEquals(hub.stats(), { synced: 2, pending: 0, blocked: 0 });
});

Deno.test("periodic progress notifications go to idle synced watchers that asked for them", async () => {
  const { open, put, clock } = scripted({ progressNotifyIntervalMs: 1000 });
  const { stream, send } = open();
  send(createReq({ key: b("k"), progressNotify: true }));
  send(createReq({ key: b("j") }));
  stream.fresh();
  assertEquals([...clock.intervals.values()].map((t) => t.ms), [1000]);
  clock.tick();
  assertEquals(stream.fresh(), [{ id: 0, rev: 1 }]);
  put("k"); // 2
  clock.tick(); // elided: events went out since the last tick
  assertEquals(stream.fresh(), [{ id: 0, rev: 2, events: ["put k@2"] }]);
  put("j"); // 3
  clock.tick();
  assertEquals(stream.fresh(), [{ id: 1, rev: 3, events: ["put j@3"] }, { id: 0, rev: 3 }]);
  // a lagging watcher gets none
  stream.full = true;
  put("k");
  put("k");
  stream.fresh();
  clock.tick();
  assertEquals(stream.fresh(), []);
  await stream.drain();
});

Deno.test("fragment: large responses split below max-request-bytes + 512 KiB, only when asked", () => {
  const { open, puts } = scripted({ maxRequestBytes: 1 });
  const { stream, send } = open();
  send(createReq({ key: b("f/"), rangeEnd: b("f0"), fragment: true }));
  send(createReq({ key: b("f/"), rangeEnd: b("f0") }));
  stream.fresh();
  const big = new Uint8Array(100 * 1024).fill(120);
  const rev = puts(Array.from({ length: 12 }, (_, i) => [`f/${String(i).padStart(2, "0")}`, big]));
  const got = stream.fresh();
  const frags = got.filter((r) => r.id === 0);
  const whole = got.filter((r) => r.id === 1);
  assertEquals(whole.length, 1);
  assertEquals((whole[0].events as string[]).length, 12);
  assert(frags.length >= 3, `${frags.length} fragments`);
  assertEquals(frags.map((f) => f.fragment === true), [...frags.slice(1).map(() => true), false]);
  assertEquals(frags.flatMap((f) => f.events as string[]), whole[0].events);
  for (const f of frags) assertEquals(f.rev, rev);
  const limit = 1 + 512 * 1024;
  const fragSizes = stream.sizes.filter((_, i) =>
    stream.sent[i].watchId === 0 && stream.sent[i].events.length > 0
  );
  assertEquals(fragSizes.length, frags.length);
  // each fragment stays below the limit; all but the last are full (one more event would cross it)
  fragSizes.forEach((n, i) => {
    assert(n < limit && (i === fragSizes.length - 1 || n > limit - 110 * 1024), `fragment of ${n} bytes`);
  });
});

Deno.test("closing the stream cancels its watchers and the progress timer", () => {
  const { open, hub, clock, sched } = scripted();
  const { cb, send } = open();
  send(createReq({ key: b("k"), progressNotify: true }));
  send(createReq({ key: b("k"), startRevision: 1 }));
  assertEquals(hub.stats(), { synced: 1, pending: 1, blocked: 0 });
  cb.onHalfClose(); // changes nothing
  assertEquals(hub.stats().synced, 1);
  cb.onCancel();
  sched.runAll();
  assertEquals(hub.stats(), { synced: 0, pending: 0, blocked: 0 });
  assertEquals(clock.intervals.size, 0);
});

// ---- through the real transport ------------------------------------------------------------------

const id = (x: Buffer): Buffer => x;

/** A Watch stream from a raw gRPC client. */
class RawWatch {
  readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  readonly got: WatchResponse[] = [];
  private read = 0;
  ended = false;

  constructor(client: grpc.Client) {
    this.call = client.makeBidiStreamRequest(WATCH, id, id);
    this.call.on("data", (x: Buffer) => this.got.push(decodeWatchResponse(new Uint8Array(x))));
    this.call.on("error", () => {});
    this.call.on("end", () => (this.ended = true));
  }

  send(r: WatchRequest): void {
    this.call.write(Buffer.from(encodeWatchRequest(r)));
  }

  /** The next `n` unread responses (fails after `ms`). */
  async take(n: number, ms = 3000): Promise<WatchResponse[]> {
    assert(await eventually(() => this.got.length >= this.read + n, ms), `wanted ${n} responses`);
    const out = this.got.slice(this.read, this.read + n);
    this.read += n;
    return out;
  }
}

async function served(o: { maxRequestBytes?: number } = {}) {
  const ks = keySpace();
  const router = new GrpcRouter();
  registerWatch(router, { hub: ks.hub, header, ...o });
  const listener = await serveNodeHttp2(router, {
    hostname: "127.0.0.1",
    port: 0,
    maxReceiveMessageBytes: 2 * 1024 * 1024,
  });
  const client = new grpc.Client(`127.0.0.1:${listener.port}`, grpc.credentials.createInsecure());
  const close = async (): Promise<void> => {
    client.close();
    await listener.close();
  };
  return { ...ks, listener, client, close };
}

Deno.test("over gRPC: several watchers on one stream, cancel and progress", async () => {
  const s = await served();
  try {
    s.put("a"); // 2
    const w = new RawWatch(s.client);
    w.send(createReq({ key: b("a") }));
    w.send(createReq({ key: b("a"), rangeEnd: b("c"), prevKv: true }));
    w.send(createReq({ key: b("a"), startRevision: 1 }));
    assertEquals(canonical(await w.take(4)), [
      { id: 0, rev: 2, created: true },
      { id: 1, rev: 2, created: true },
      { id: 2, rev: 2, created: true },
      { id: 2, rev: 2, events: ["put a@2"] },
    ]);
    s.put("b"); // 3
    s.put("a"); // 4
    // writes applied in one task reach a watcher as one response
    assertEquals(canonical(await w.take(3)), [
      { id: 0, rev: 4, events: ["put a@4"] },
      { id: 1, rev: 4, events: ["put b@3", "put a@4"] },
      { id: 2, rev: 4, events: ["put a@4"] },
    ]);
    w.send({ cancelRequest: { watchId: 1 } });
    w.send({ progressRequest: {} });
    assertEquals((await w.take(2)).map(brief), [{ id: 1, rev: 4, canceled: true }, { id: -1, rev: 4 }]);
    s.put("b");
    s.put("a"); // 6
    assertEquals(canonical(await w.take(2)), [
      { id: 0, rev: 6, events: ["put a@6"] },
      { id: 2, rev: 6, events: ["put a@6"] },
    ]);
    assertEquals(s.hub.stats().synced, 2);
    w.call.cancel();
    assert(await eventually(() => s.hub.stats().synced === 0), "closing the stream cancels its watchers");
  } finally {
    await s.close();
  }
});

Deno.test("over gRPC: a slow consumer receives all of 10,000 events while a fast one keeps up", async () => {
  const s = await served();
  try {
    const slow = new RawWatch(s.client);
    const fast = new RawWatch(s.client);
    slow.send(createReq({ key: b("k/"), rangeEnd: b("k0") }));
    fast.send(createReq({ key: b("k/"), rangeEnd: b("k0") }));
    await slow.take(1);
    await fast.take(1);
    slow.call.pause();
    const value = new Uint8Array(300).fill(97);
    const total = 10_000;
    let sawBackpressure = false;
    for (let i = 0; i < total; i++) {
      s.put(`k/${i % 100}`, value);
      if (i % 250 === 249) {
        await new Promise((r) => setTimeout(r, 1));
        if (s.hub.stats().blocked + s.hub.stats().pending > 0) sawBackpressure = true;
      }
    }
    assert(sawBackpressure, "the paused client pushed its watcher out of the live set");
    const count = (w: RawWatch) => w.got.reduce((n, r) => n + r.events.length, 0);
    assert(await eventually(() => count(fast) === total, 10_000), `fast got ${count(fast)}`);
    assert(count(slow) < total, "the slow one is still behind");
    slow.call.resume();
    assert(await eventually(() => count(slow) === total, 20_000), `slow got ${count(slow)}`);
    for (const w of [slow, fast]) {
      const revs = w.got.flatMap((r) => r.events.map((e) => e.kv.modRevision));
      for (let i = 0; i < total; i++) assertEquals(revs[i], i + 2);
    }
    assertEquals(s.hub.stats(), { synced: 2, pending: 0, blocked: 0 });
    slow.call.cancel();
    fast.call.cancel();
  } finally {
    await s.close();
  }
});

Deno.test("over gRPC: the etcd3 client watches through the service", async () => {
  const s = await served();
  const client = new Etcd3({ hosts: `http://127.0.0.1:${s.listener.port}` });
  try {
    const watcher = await client.watch().prefix("p/").withPreviousKV().create();
    const seen: string[] = [];
    watcher.on(
      "put",
      (kv, prev) => seen.push(`put ${kv.key.toString()}=${kv.value.toString()} prev=${prev?.value}`),
    );
    watcher.on("delete", (kv) => seen.push(`delete ${kv.key.toString()}`));
    s.put("p/1", "a");
    s.put("p/1", "b");
    s.put("q", "x");
    s.del("p/1");
    assert(await eventually(() => seen.length === 3), seen.join());
    assertEquals(seen, ["put p/1=a prev=undefined", "put p/1=b prev=a", "delete p/1"]);
    await watcher.cancel();
    assert(await eventually(() => s.hub.stats().synced === 0));
  } finally {
    client.close();
    await s.close();
  }
});
