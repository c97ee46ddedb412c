/**
 * The Watch service end to end, and the etcdctl commands built on it: `etcdctl watch` (one key, a prefix,
 * a range, `--rev` replay that carries on live, `--prev-kv`, JSON, interactive mode with several watches
 * on one stream and progress requests, compaction), `etcdctl lock` and `etcdctl elect`, and the `etcd3`
 * npm client watching 10,000 writes from several concurrent writers, with a deliberately slow watcher in a
 * worker that must still receive every event in order.
 *
 * Each case runs against every implementation of {@link implementations}, so the real etcd proves the
 * expected lines and orders are etcd's. Every wait is bounded; long-running etcdctl processes are killed
 * when their case ends.
 *
 * The slow watcher runs in a worker started from this same module: a module instance whose global `name`
 * is {@link SLOW_WATCHER} serves that worker and registers no tests.
 *
 * @module
 */
import type { Watcher } from "etcd3";
import { assert, assertEquals, assertMatch, assertNotEquals } from "./assert.ts";
import {
  afterProbes,
  ctlOk,
  Ctls,
  etcdctl,
  HAVE_ETCDCTL,
  holdsThroughout,
  implementations,
  Member,
  waitUntil,
  waitWatching,
} from "./helpers.ts";
import { connect, created, currentRevision, report, type Seen, seenOf, within } from "./client_util.ts";

/** The worker name under which this module runs the slow watcher instead of registering tests. */
const SLOW_WATCHER = "etcd-ts-slow-watcher";

/** The keys under `prefix`, oldest first. */
async function keysUnder(endpoint: string, prefix: string): Promise<string[]> {
  const out = await ctlOk(endpoint, ["get", "--prefix", prefix, "--keys-only", "--sort-by=create"]);
  return out.split("\n").filter((l) => l !== "");
}

/** One write of the load: a put of a new key, or a delete of the writer's previous key. */
interface Write {
  type: "Put" | "Delete";
  key: string;
  value: string;
}

/** What writer `w` does, in order: three puts of new keys, then a delete of the last one, and again. */
function writesOf(w: number, count: number): Write[] {
  const out: Write[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 4 === 3) out.push({ type: "Delete", key: out[i - 1].key, value: "" });
    else out.push({ type: "Put", key: `wl/${w}/${i}`, value: `v${w}.${i}.${"x".repeat(40)}` });
  }
  return out;
}

/** The index of the first element where `a` and `b` differ, or -1. */
function firstDifference<T>(a: T[], b: T[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (JSON.stringify(a[i]) !== JSON.stringify(b[i])) return i;
  }
  return -1;
}

/**
 * Checks that `seen` holds every write exactly once, in revision order: revisions `firstRev`,
 * `firstRev + 1`, ... without gap or repeat (every write makes one revision and nothing else writes),
 * and each writer's writes in the order it made them.
 */
function checkAllWrites(name: string, seen: Seen[], plans: Write[][], firstRev: number): void {
  const total = plans.reduce((n, p) => n + p.length, 0);
  const revs = seen.map((e) => e[0]);
  const want = Array.from({ length: total }, (_, i) => firstRev + i);
  const at = firstDifference(revs, want);
  assert(
    at === -1,
    `${name}: ${seen.length} events for ${total} writes; event ${at} has revision ${revs[at]}, ` +
      `expected ${want[at]}`,
  );
  plans.forEach((plan, w) => {
    const mine = seen.filter((e) => e[2].startsWith(`wl/${w}/`)).map((e) => [e[1], e[2], e[3]]);
    const expected = plan.map((p) => [p.type, p.key, p.value]);
    const d = firstDifference(mine, expected);
    assert(
      d === -1,
      `${name}: writer ${w}'s write ${d} seen as ${JSON.stringify(mine[d])}, made as ` +
        JSON.stringify(expected[d]),
    );
  });
}

/** Collects every event a watcher delivers. */
function collect(w: Watcher, into: Seen[]): void {
  w.on("data", (res) => {
    for (const ev of res.events) into.push(seenOf(ev));
  });
}

/** What the test sends the slow watcher worker. */
interface SlowWatchJob {
  endpoint: string;
  prefix: string;
  /** Events after which the worker reports and stops. */
  expect: number;
  /** [0]: 0 while the worker must hold its first event, 1 after; [1]: events received so far. */
  shared: SharedArrayBuffer;
  /** After the hold, block this long every `pauseEvery` events. */
  pauseEvery: number;
  pauseMs: number;
}

/** What the slow watcher worker answers. */
type SlowWatchReply = { ready: true } | { events: Seen[] } | { error: string };

/**
 * The worker side: an etcd3 watcher whose event handler blocks the worker's whole thread (so it stops
 * reading its connection, as a busy client does): first until the test lets it go, then briefly every
 * few hundred events.
 */
function serveSlowWatcher(): void {
  const scope = globalThis as unknown as {
    onmessage: (e: MessageEvent<SlowWatchJob>) => void;
    postMessage(m: SlowWatchReply): void;
  };
  scope.onmessage = async (e) => {
    const job = e.data;
    const shared = new Int32Array(job.shared);
    const client = connect(job.endpoint);
    const events: Seen[] = [];
    try {
      const watcher = await created(client.watch().prefix(job.prefix));
      watcher.on("data", (res) => {
        for (const ev of res.events) {
          if (events.length === 0) Atomics.wait(shared, 0, 0, 30_000);
          else if (events.length % job.pauseEvery === 0) Atomics.wait(shared, 0, 1, job.pauseMs);
          events.push(seenOf(ev));
          Atomics.store(shared, 1, events.length);
        }
        if (events.length >= job.expect) scope.postMessage({ events });
      });
      watcher.on("error", (err) => scope.postMessage({ error: String(err) }));
      scope.postMessage({ ready: true });
    } catch (err) {
      scope.postMessage({ error: String(err) });
    }
  };
}

/** The slow watcher as the test sees it. */
class SlowWatcher {
  private readonly worker: Worker;
  private readonly shared = new Int32Array(new SharedArrayBuffer(8));
  private events: Seen[] | undefined;
  private error: string | undefined;
  private ready = false;

  constructor(job: Omit<SlowWatchJob, "shared">) {
    this.worker = new Worker(import.meta.url, { type: "module", name: SLOW_WATCHER });
    this.worker.onmessage = (e: MessageEvent<SlowWatchReply>) => {
      const m = e.data;
      if ("ready" in m) this.ready = true;
      else if ("events" in m) this.events = m.events;
      else this.error = m.error;
    };
    this.worker.postMessage({ ...job, shared: this.shared.buffer });
  }

  private check(): void {
    if (this.error !== undefined) throw new Error(`slow watcher: ${this.error}`);
  }

  async waitReady(): Promise<void> {
    await waitUntil(() => this.ready || this.error !== undefined, 15_000, () => "slow watcher start");
    this.check();
  }

  /** Events received so far. */
  get received(): number {
    return Atomics.load(this.shared, 1);
  }

  /** Lets the watcher go on past its first event. */
  release(): void {
    Atomics.store(this.shared, 0, 1);
    Atomics.notify(this.shared, 0);
  }

  async waitEvents(timeoutMs: number): Promise<Seen[]> {
    await waitUntil(
      () => this.events !== undefined || this.error !== undefined,
      timeoutMs,
      () => `slow watcher has ${this.received} events`,
    );
    this.check();
    return this.events!;
  }

  close(): void {
    this.release();
    this.worker.terminate();
  }
}

/** Writes of the etcd3 load (as many against the real etcd: its fsyncs keep up on this machine). */
const LOAD_WRITES = 10_000;
const LOAD_WRITERS = 8;

function registerTests(): void {
  for (const impl of implementations()) {
    Deno.test({
      name: `[${impl}] etcdctl watch: key, prefix, range, --rev replay then live, --prev-kv, json, ` +
        `interactive, compaction`,
      ignore: !HAVE_ETCDCTL,
      fn: async (t) => {
        const m = await Member.start({ impl });
        const ep = m.endpoint;
        const ctls = new Ctls(ep);
        try {
          // Revisions 2..9.
          await ctlOk(ep, ["put", "a", "1"]);
          await ctlOk(ep, ["put", "a", "2"]);
          await ctlOk(ep, ["put", "b/x", "3"]);
          assertEquals(await ctlOk(ep, ["del", "a"]), "1\n");
          await ctlOk(ep, ["put", "b/y", "4"]);
          await ctlOk(ep, ["put", "b/x", "5"]);
          assertEquals(await ctlOk(ep, ["del", "--prefix", "b/"]), "2\n");
          await ctlOk(ep, ["put", "c", "6"]);
          assertEquals(await currentRevision(ep), 9);

          await t.step("one key from revision 1: history, then live", async () => {
            const w = ctls.start(["watch", "a", "--rev", "1"]);
            const history = ["PUT", "a", "1", "PUT", "a", "2", "DELETE", "a", ""];
            assertEquals(await w.waitLines(history.length), history);
            await ctlOk(ep, ["put", "a", "7"]); // revision 10
            assertEquals(await w.waitLines(12), [...history, "PUT", "a", "7"]);
            await w.stop();
          });

          await t.step("a prefix with --prev-kv from revision 2, then live", async () => {
            const w = ctls.start(["watch", "--prefix", "b/", "--rev", "2", "--prev-kv"]);
            // With --prev-kv an event prints the previous pair (if any) before the new one; the two
            // deletes of one revision come in key order.
            const history = [
              ...["PUT", "b/x", "3"],
              ...["PUT", "b/y", "4"],
              ...["PUT", "b/x", "3", "b/x", "5"],
              ...["DELETE", "b/x", "5", "b/x", ""],
              ...["DELETE", "b/y", "4", "b/y", ""],
            ];
            assertEquals(await w.waitLines(history.length), history);
            await ctlOk(ep, ["put", "b/z", "8"]); // 11
            await ctlOk(ep, ["del", "b/z"]); // 12
            const live = ["PUT", "b/z", "8", "DELETE", "b/z", "8", "b/z", ""];
            assertEquals(await w.waitLines(history.length + live.length), [...history, ...live]);
            await w.stop();
          });

          await t.step("a range [a, c) replays everything in it and nothing outside", async () => {
            const w = ctls.start(["watch", "a", "c", "--rev", "1"]);
            const want = [
              ...["PUT", "a", "1"],
              ...["PUT", "a", "2"],
              ...["PUT", "b/x", "3"],
              ...["DELETE", "a", ""],
              ...["PUT", "b/y", "4"],
              ...["PUT", "b/x", "5"],
              ...["DELETE", "b/x", ""],
              ...["DELETE", "b/y", ""],
              ...["PUT", "a", "7"],
              ...["PUT", "b/z", "8"],
              ...["DELETE", "b/z", ""],
            ];
            assertEquals(await w.waitLines(want.length), want);
            // c (revision 9) is outside; a later write inside the range shows the stream is still there
            await ctlOk(ep, ["put", "b", "9"]); // 13
            assertEquals(await w.waitLines(want.length + 3), [...want, "PUT", "b", "9"]);
            await w.stop();
          });

          await t.step("json: the events with all their fields", async () => {
            const w = ctls.start(["watch", "a", "--rev", "2", "-w", "json"]);
            const responses = () =>
              w.lines().map((l) => JSON.parse(l) as { Header: { revision: number }; Events: unknown[] });
            await waitUntil(
              () => responses().flatMap((r) => r.Events).length >= 4,
              10_000,
              () => w.describe(),
            );
            const b64 = (s: string) => btoa(s);
            assertEquals(responses().flatMap((r) => r.Events), [
              { kv: { key: b64("a"), create_revision: 2, mod_revision: 2, version: 1, value: b64("1") } },
              { kv: { key: b64("a"), create_revision: 2, mod_revision: 3, version: 2, value: b64("2") } },
              { type: 1, kv: { key: b64("a"), mod_revision: 5 } },
              { kv: { key: b64("a"), create_revision: 10, mod_revision: 10, version: 1, value: b64("7") } },
            ]);
            for (const r of responses()) {
              assertMatch(JSON.stringify(r), /"CompactRevision":0,"Canceled":false,"Created":false/);
              assert(r.Header.revision >= 10 && r.Header.revision <= 13, JSON.stringify(r.Header));
            }
            await w.stop();
          });

          await t.step("without --rev: only writes after the watch was created", async () => {
            const w = ctls.start(["watch", "c"]);
            await waitWatching(w, ep, "c");
            await ctlOk(ep, ["put", "c", "10"]);
            await ctlOk(ep, ["del", "c"]);
            await ctlOk(ep, ["put", "d", "11"]);
            await ctlOk(ep, ["put", "c", "12"]);
            const want = ["PUT", "c", "10", "DELETE", "c", "", "PUT", "c", "12"];
            await waitUntil(
              () => afterProbes(w.lines()).length >= want.length,
              10_000,
              () => w.describe(),
            );
            assertEquals(afterProbes(w.lines()), want);
            await w.stop();
          });

          await t.step("interactive: two watches on one stream, progress requests", async () => {
            const w = ctls.start(["watch", "-i"], true);
            // etcdctl creates the watches one after the other and prints nothing for it: probe each
            await w.send("watch m1");
            await waitWatching(w, ep, "m1");
            await w.send("watch --prefix m");
            await waitWatching(w, ep, "m-probe");
            await waitUntil(() => afterProbes(w.lines()).length === 0, 5000, () => w.describe());
            const skip = w.lines().length;
            const after = () => w.lines().slice(skip);
            const rev = await currentRevision(ep);
            await w.send("progress");
            // answered once per watch
            const progress = [`progress notify: ${rev}`, `progress notify: ${rev}`];
            await waitUntil(() => after().length >= 2, 10_000, () => w.describe());
            assertEquals(after(), progress);
            // etcdctl prints each watch from its own goroutine, so the lines of two watches seeing one
            // write interleave: compare those as a multiset, and wait for each write's lines.
            await ctlOk(ep, ["put", "m1", "x"]);
            await waitUntil(() => after().length >= 8, 10_000, () => w.describe());
            assertEquals(after().slice(2).sort(), ["PUT", "PUT", "m1", "m1", "x", "x"]);
            await ctlOk(ep, ["put", "m2", "y"]);
            await waitUntil(() => after().length >= 11, 10_000, () => w.describe());
            assertEquals(after().slice(8), ["PUT", "m2", "y"]);
            await ctlOk(ep, ["put", "n", "z"]);
            await w.send("progress");
            await waitUntil(() => after().length >= 13, 10_000, () => w.describe());
            assertEquals(after().slice(11), [`progress notify: ${rev + 3}`, `progress notify: ${rev + 3}`]);
            await w.stop();
          });

          await t.step("compaction: older revisions cancel the watch, newer ones still replay", async () => {
            assertEquals(await ctlOk(ep, ["compact", "5"]), "compacted revision 5\n");
            const gone = await etcdctl(ep, ["watch", "a", "--rev", "2"], { timeoutMs: 10_000 });
            assertEquals(gone, {
              code: 5,
              stdout: "",
              stderr: "watch was canceled (etcdserver: mvcc: required revision has been compacted)\n" +
                "Error: watch is canceled by the server\n",
            });
            const w = ctls.start(["watch", "a", "--rev", "6"]);
            assertEquals(await w.waitLines(3), ["PUT", "a", "7"]);
            await w.stop();
          });
        } finally {
          await ctls.stopAll();
          await m.destroy();
        }
      },
    });

    Deno.test({
      name: `[${impl}] etcdctl lock and elect`,
      ignore: !HAVE_ETCDCTL,
      fn: async (t) => {
        const m = await Member.start({ impl });
        const ep = m.endpoint;
        const ctls = new Ctls(ep);
        try {
          await t.step("lock runs a command while holding the lock, then releases it", async () => {
            assertEquals(await ctlOk(ep, ["lock", "job", "echo", "hello"]), "hello\n");
            assertEquals(await ctlOk(ep, ["get", "--prefix", "job/", "--keys-only"]), "");
          });

          await t.step("a second locker waits until the holder releases", async () => {
            const first = ctls.start(["lock", "mutex"]);
            const [held] = await first.waitLines(1);
            assertMatch(held, /^mutex\/[0-9a-f]+$/);
            // the lock's key is bound to the holder's session lease, named in the key
            const lease = /"lease":(\d+)/.exec(await ctlOk(ep, ["get", held, "-w", "json"]))?.[1];
            assertEquals(BigInt(lease ?? 0).toString(16), held.slice("mutex/".length));
            const second = ctls.start(["lock", "mutex"]);
            // the second locker has queued once its own key is on record behind the holder's ...
            await waitUntil(
              async () => (await keysUnder(ep, "mutex/")).length === 2,
              10_000,
              () => second.describe(),
            );
            // ... and holds nothing while the first one holds the lock: watched through a whole second
            await holdsThroughout(
              () => assertEquals(second.lines(), [], "the second locker must wait"),
              1000,
            );
            assertEquals(await first.stop("SIGINT"), 0);
            const [next] = await second.waitLines(1, 5000);
            assertMatch(next, /^mutex\/[0-9a-f]+$/);
            assertNotEquals(next, held);
            assertEquals(await ctlOk(ep, ["get", held]), "", "the first holder's key is gone");
            assertEquals(await second.stop("SIGINT"), 0);
            assertEquals(await ctlOk(ep, ["get", "--prefix", "mutex/"]), "");
          });

          await t.step("a killed holder's lock passes on when its session lease expires", async () => {
            const first = ctls.start(["lock", "--ttl=3", "crashlock"]);
            await first.waitLines(1);
            const second = ctls.start(["lock", "crashlock", "echo", "got it"]);
            // killed only once the second locker waits in line (its key is on record)
            await waitUntil(
              async () => (await keysUnder(ep, "crashlock/")).length === 2,
              10_000,
              () => second.describe(),
            );
            const killed = Date.now();
            await first.stop("SIGKILL");
            const r = await second.waitExit(8000);
            const waited = Date.now() - killed;
            assertEquals([r.code, r.stdout], [0, "got it\n"]);
            // the last keep-alive was at most TTL/3 before the kill: expiry within [TTL - 1 s, TTL + 1 s]
            assert(waited >= 1800 && waited <= 4500, `acquired ${waited} ms after the holder was killed`);
            report(impl, "lock after a killed holder", { waitedMs: waited, ttlS: 3 });
          });

          await t.step("elect: one leader, a waiting candidate, a listener that sees both", async () => {
            const listener = ctls.start(["elect", "-l", "chief"]);
            const p1 = ctls.start(["elect", "chief", "p1"]);
            const [k1, v1] = await p1.waitLines(2);
            assertMatch(k1, /^chief\/[0-9a-f]+$/);
            assertEquals(v1, "p1");
            assertEquals(await listener.waitLines(2), [k1, "p1"]);
            const p2 = ctls.start(["elect", "chief", "p2"]);
            const proposals = () =>
              ctlOk(ep, ["get", "--prefix", "chief/", "--print-value-only", "--sort-by=create"]);
            // the second candidate has campaigned once its proposal is on record ...
            await waitUntil(
              async () => (await proposals()).split("\n").filter((l) => l !== "").length === 2,
              10_000,
              () => p2.describe(),
            );
            // ... and is not elected while the first one leads: watched through a whole second
            await holdsThroughout(() => assertEquals(p2.lines(), [], "the second candidate must wait"), 1000);
            assertEquals(
              await proposals(),
              "p1\np2\n",
              "both proposals are on record, in campaign order",
            );
            assertEquals(await p1.stop("SIGINT"), 0);
            const [k2, v2] = await p2.waitLines(2, 5000);
            assertMatch(k2, /^chief\/[0-9a-f]+$/);
            assertNotEquals(k2, k1);
            assertEquals(v2, "p2");
            assertEquals(await listener.waitLines(4, 5000), [k1, "p1", k2, "p2"]);
            assertEquals(await p2.stop("SIGINT"), 0);
            await listener.stop();
          });
        } finally {
          await ctls.stopAll();
          await m.destroy();
        }
      },
    });

    Deno.test({
      name: `[${impl}] etcd3 client: prefix watchers, a slow one and a historical one, see every ` +
        `write of ${LOAD_WRITES} in order`,
      ignore: !HAVE_ETCDCTL,
      // the etcd3 client (grpc-js) keeps timers of its own past close()
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const m = await Member.start({ impl });
        const ep = m.endpoint;
        const total = LOAD_WRITES;
        const plans = Array.from({ length: LOAD_WRITERS }, (_, w) => writesOf(w, total / LOAD_WRITERS));
        const client = connect(ep);
        const slow = new SlowWatcher({
          endpoint: ep,
          prefix: "wl/",
          expect: total,
          pauseEvery: 500,
          pauseMs: 100,
        });
        try {
          const firstRev = await currentRevision(ep) + 1;
          const fast: Seen[] = [];
          collect(await created(client.watch().prefix("wl/")), fast);
          const deletes: Seen[] = [];
          collect(
            await created(client.watch().prefix("wl/").only("delete")),
            deletes,
          );
          await slow.waitReady();

          let acked = 0;
          let historical: Seen[] | undefined;
          let lagAtRelease = 0;
          const started = Date.now();
          const writer = async (plan: Write[]) => {
            for (const op of plan) {
              if (op.type === "Put") await client.put(op.key).value(op.value);
              else await client.delete().key(op.key);
              acked++;
            }
          };
          const writing = Promise.all(plans.map(writer));
          // Halfway, a watcher from the first revision replays history while the writes go on.
          const halfway = (async () => {
            await waitUntil(() => acked >= total / 2, 60_000, () => `${acked} writes acknowledged`);
            historical = [];
            collect(
              await created(client.watch().prefix("wl/").startRevision(String(firstRev))),
              historical,
            );
          })();
          // The slow watcher holds its first event until 40% of the writes are in, then goes on slowly.
          await waitUntil(() => acked >= total * 0.4, 60_000, () => `${acked} writes acknowledged`);
          lagAtRelease = acked - slow.received;
          slow.release();
          await within(Promise.all([writing, halfway]), 60_000, `${total} writes`);
          const wrote = Date.now() - started;

          const timeout = 30_000;
          const all = () => `fast ${fast.length}, historical ${historical!.length}, slow ${slow.received}`;
          await waitUntil(() => fast.length >= total && historical!.length >= total, timeout, all);
          const slowEvents = await slow.waitEvents(timeout);
          const delivered = Date.now() - started;

          checkAllWrites("fast watcher", fast, plans, firstRev);
          checkAllWrites("historical watcher", historical!, plans, firstRev);
          checkAllWrites("slow watcher", slowEvents, plans, firstRev);
          assertEquals(deletes, fast.filter((e) => e[1] === "Delete"), "the delete-only watcher");
          assert(
            lagAtRelease >= total * 0.3,
            `the slow watcher was only ${lagAtRelease} events behind when released`,
          );
          // nothing more arrives after the last write: watched for half a second
          const deleteCount = plans.flat().filter((op) => op.type === "Delete").length;
          await holdsThroughout(
            () =>
              assertEquals([fast.length, historical!.length, deletes.length], [total, total, deleteCount]),
            500,
          );
          report(impl, "etcd3 watch load", {
            writes: total,
            writers: LOAD_WRITERS,
            writeMs: wrote,
            allDeliveredMs: delivered,
            slowLagAtRelease: lagAtRelease,
          });
        } finally {
          slow.close();
          client.close();
          await m.destroy();
        }
      },
    });
  }
}

if ((globalThis as { name?: string }).name === SLOW_WATCHER) serveSlowWatcher();
else registerTests();
