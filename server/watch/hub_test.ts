import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { keyInRange } from "../../storage/mvcc/bytes.ts";
import { type MvccEvent, MvccStore } from "../../storage/mvcc/store.ts";
import { Prng } from "../../tests/sim/prng.ts";
import { ErrEmptyWatcherRange, type WatchBatch, type Watcher, WatchHub, type WatchOptions } from "./hub.ts";

const te = new TextEncoder();
const td = new TextDecoder();
const b = (s: string): Uint8Array => te.encode(s);
const FROM_KEY = new Uint8Array([0]);

/** A catch-up scheduler the test runs by hand. */
class ManualScheduler {
  queue: (() => void)[] = [];
  readonly schedule = (fn: () => void): void => {
    this.queue.push(fn);
  };
  /** Runs one scheduled round; false if none was queued. */
  runOne(): boolean {
    const fn = this.queue.shift();
    if (fn === undefined) return false;
    fn();
    return true;
  }
  /** Runs rounds until none is left (bounded). */
  runAll(): number {
    let n = 0;
    while (this.runOne()) if (++n > 100_000) throw new Error("catch-up does not terminate");
    return n;
  }
}

/** A store, a hub with a manual scheduler and write helpers that notify like the apply loop. */
function setup(o: { catchUpBatch?: number; maxHeldEvents?: number; stepsPerRound?: number } = {}) {
  const mvcc = new MvccStore();
  const sched = new ManualScheduler();
  const hub = new WatchHub({ mvcc, schedule: sched.schedule, ...o });
  const put = (key: string, value = "v"): number => {
    const t = mvcc.write({ prevKvs: hub.wantsPrevKvs });
    t.put(b(key), b(value), 0n);
    const end = t.end();
    hub.notify(end);
    return end.revision;
  };
  const del = (key: string, rangeEnd?: string): number => {
    const t = mvcc.write({ prevKvs: hub.wantsPrevKvs });
    t.deleteRange(b(key), rangeEnd === undefined ? undefined : b(rangeEnd));
    const end = t.end();
    hub.notify(end);
    return end.revision;
  };
  const txn = (ops: [string, string | null][]): number => {
    const t = mvcc.write({ prevKvs: hub.wantsPrevKvs });
    for (const [k, v] of ops) {
      if (v === null) t.deleteRange(b(k), undefined);
      else t.put(b(k), b(v), 0n);
    }
    const end = t.end();
    hub.notify(end);
    return end.revision;
  };
  return { mvcc, hub, sched, put, del, txn };
}

/** A sink that records everything and can be told to refuse. */
class Recorder {
  batches: WatchBatch[] = [];
  compactedAt: number | undefined;
  syncedCalls = 0;
  refuse = false;
  refused = 0;
  onDeliver: ((batch: WatchBatch) => void) | undefined;
  deliver(batch: WatchBatch): boolean {
    if (this.refuse) {
      this.refused++;
      return false;
    }
    this.batches.push(batch);
    this.onDeliver?.(batch);
    return true;
  }
  compacted(rev: number): void {
    assert(this.compactedAt === undefined, "compacted twice");
    this.compactedAt = rev;
  }
  synced(): void {
    this.syncedCalls++;
  }
  get events(): MvccEvent[] {
    return this.batches.flatMap((x) => x.events);
  }
  /** Events as "type key@rev" strings. */
  get seen(): string[] {
    return this.events.map(show);
  }
}

function show(e: MvccEvent): string {
  return `${e.type} ${td.decode(e.kv.key)}@${e.kv.modRevision}`;
}

function watch(hub: WatchHub, o: Omit<WatchOptions, "sink" | "key"> & { key: string }): [Watcher, Recorder] {
  const r = new Recorder();
  const w = hub.watch({ ...o, key: b(o.key), sink: r });
  return [w, r];
}

Deno.test("live watchers get the matching events of each transaction, in order, as one batch", () => {
  const { hub, put, del, txn } = setup();
  const [, single] = watch(hub, { key: "a" });
  const [, prefix] = watch(hub, { key: "p/", rangeEnd: b("p0") });
  const [, span] = watch(hub, { key: "b", rangeEnd: b("d") });
  const [, fromKey] = watch(hub, { key: "c", rangeEnd: FROM_KEY });
  const [, all] = watch(hub, { key: "\0", rangeEnd: FROM_KEY });
  put("a");
  put("p/1");
  put("p0");
  put("c");
  put("d");
  const r = txn([["p/2", "x"], ["a", "y"], ["bb", "z"]]);
  del("p/", "p0");
  assertEquals(single.seen, ["put a@2", "put a@7"]);
  assertEquals(prefix.seen, ["put p/1@3", "put p/2@7", "delete p/1@8", "delete p/2@8"]);
  assertEquals(span.seen, ["put c@5", "put bb@7"]);
  assertEquals(fromKey.seen, [
    "put p/1@3",
    "put p0@4",
    "put c@5",
    "put d@6",
    "put p/2@7",
    "delete p/1@8",
    "delete p/2@8",
  ]);
  assertEquals(all.events.length, 10);
  // one batch per transaction, carrying its revision
  assertEquals(prefix.batches.map((x) => [x.revision, x.events.length]), [[3, 1], [r, 1], [8, 2]]);
  assertEquals(hub.stats(), { synced: 5, pending: 0, blocked: 0 });
});

Deno.test("several watchers on one key or one range each get every event", () => {
  const { hub, put } = setup();
  const recs = [
    watch(hub, { key: "k" })[1],
    watch(hub, { key: "k" })[1],
    watch(hub, { key: "a", rangeEnd: b("z") })[1],
    watch(hub, { key: "a", rangeEnd: b("z") })[1],
    watch(hub, { key: "j", rangeEnd: b("l") })[1],
  ];
  put("k");
  put("q");
  for (const r of recs.slice(0, 2)) assertEquals(r.seen, ["put k@2"]);
  for (const r of recs.slice(2, 4)) assertEquals(r.seen, ["put k@2", "put q@3"]);
  assertEquals(recs[4].seen, ["put k@2"]);
});

Deno.test("filters and prevKv, live and from history", () => {
  const { hub, sched, put, del } = setup();
  put("k", "1"); // rev 2
  const live = {
    noPut: watch(hub, { key: "k", noPut: true })[1],
    noDelete: watch(hub, { key: "k", noDelete: true })[1],
    prev: watch(hub, { key: "k", prevKv: true })[1],
    plain: watch(hub, { key: "k" })[1],
  };
  put("k", "2"); // 3
  del("k"); // 4
  put("k", "3"); // 5
  const hist = {
    noPut: watch(hub, { key: "k", noPut: true, startRevision: 2 })[1],
    prev: watch(hub, { key: "k", prevKv: true, startRevision: 2 })[1],
    plain: watch(hub, { key: "k", startRevision: 2 })[1],
  };
  sched.runAll();
  assertEquals(live.noPut.seen, ["delete k@4"]);
  assertEquals(live.noDelete.seen, ["put k@3", "put k@5"]);
  assertEquals(live.plain.seen, ["put k@3", "delete k@4", "put k@5"]);
  assertEquals(live.plain.events.map((e) => e.prevKv), [undefined, undefined, undefined]);
  const prevs = (r: Recorder) => r.events.map((e) => e.prevKv && td.decode(e.prevKv.value));
  assertEquals(prevs(live.prev), ["1", "2", undefined]);
  assertEquals(hist.noPut.seen, ["delete k@4"]);
  assertEquals(hist.plain.seen, ["put k@2", "put k@3", "delete k@4", "put k@5"]);
  assertEquals(hist.plain.events.map((e) => e.prevKv), [undefined, undefined, undefined, undefined]);
  assertEquals(prevs(hist.prev), [undefined, "1", "2", undefined]);
});

Deno.test("writes carry previous kvs in their events only while a synced watcher asked for them", () => {
  const { hub, sched, put, del } = setup();
  put("k", "1"); // 2
  const [, plain] = watch(hub, { key: "k" });
  assert(hub.wantsEvents && !hub.wantsPrevKvs, "a watcher without prevKv");
  put("k", "2"); // 3: no previous kv copied for anyone
  const [prevWatcher, prev] = watch(hub, { key: "k", prevKv: true });
  assert(hub.wantsPrevKvs, "a synced watcher with prevKv");
  put("k", "3"); // 4
  del("k"); // 5
  // one catching up from history is not synced yet: it reads its previous kvs from the store
  const [, late] = watch(hub, { key: "k", prevKv: true, startRevision: 2 });
  prevWatcher.cancel();
  assert(!hub.wantsPrevKvs, "the prevKv watcher is gone, the late one not synced yet");
  put("k", "4"); // 6
  sched.runAll();
  assert(hub.wantsPrevKvs, "the late one synced");
  put("k", "5"); // 7
  const prevs = (r: Recorder) => r.events.map((e) => e.prevKv && td.decode(e.prevKv.value));
  assertEquals(plain.seen, ["put k@3", "put k@4", "delete k@5", "put k@6", "put k@7"]);
  assertEquals(plain.events.map((e) => e.prevKv), [undefined, undefined, undefined, undefined, undefined]);
  assertEquals(prevs(prev), ["2", "3"]);
  assertEquals(late.seen, ["put k@2", "put k@3", "put k@4", "delete k@5", "put k@6", "put k@7"]);
  assertEquals(prevs(late), [undefined, "1", "2", "3", undefined, "4"]);
});

Deno.test("a start revision in the future skips earlier events; startRevision 0 starts after current", () => {
  const { hub, put } = setup();
  put("k"); // 2
  const [wNow, now] = watch(hub, { key: "k" });
  const [wLater, later] = watch(hub, { key: "k", startRevision: 5 });
  assert(wNow.synced && wLater.synced);
  put("k"); // 3
  put("k"); // 4
  put("k"); // 5
  assertEquals(now.seen, ["put k@3", "put k@4", "put k@5"]);
  assertEquals(later.seen, ["put k@5"]);
});

Deno.test("history is replayed in bounded chunks, then the watcher goes live without gap or duplicate", () => {
  const { hub, sched, put, del } = setup({ catchUpBatch: 7 });
  for (let i = 0; i < 40; i++) put(`k${i % 5}`);
  const [w, r] = watch(hub, { key: "k", rangeEnd: b("l"), startRevision: 3 });
  assert(!w.synced);
  assertEquals(w.progressRevision(), undefined);
  assertEquals(r.batches.length, 0, "nothing is delivered inside watch()");
  // writes keep coming between catch-up rounds
  let rounds = 0;
  while (sched.runOne()) {
    rounds++;
    if (rounds % 2 === 0) put(`k${rounds % 5}`);
    if (rounds % 3 === 0) del(`k${rounds % 5}`);
  }
  assert(w.synced);
  assertEquals(r.syncedCalls, 1);
  for (let i = 0; i < 5; i++) put(`k${i}`);
  const revs = r.events.map((e) => e.kv.modRevision);
  const expected = hub.revision - 3 + 1;
  assertEquals(revs.length, expected);
  for (let i = 0; i < revs.length; i++) assertEquals(revs[i], 3 + i);
  assert(r.batches.length > 5, "history came in several chunks");
  for (const x of r.batches) assert(x.revision >= x.events[x.events.length - 1].kv.modRevision);
  assertEquals(w.progressRevision(), hub.revision);
});

Deno.test("catch-up rounds are bounded and fair between watchers", () => {
  const { hub, sched, put } = setup({ catchUpBatch: 2, stepsPerRound: 3 });
  for (let i = 0; i < 20; i++) put("k");
  const recs = [0, 1, 2, 3].map(() => watch(hub, { key: "k", startRevision: 2 })[1]);
  sched.runOne();
  // three steps of one chunk each, one per watcher in turn
  assertEquals(recs.map((r) => r.events.length), [2, 2, 2, 0]);
  sched.runOne();
  assertEquals(recs.map((r) => r.events.length), [4, 4, 2, 2]);
  sched.runAll();
  for (const r of recs) assertEquals(r.events.length, 20);
});

Deno.test("a slow watcher does not hold up others, keeps a small refused batch and catches up later", () => {
  const { hub, sched, put, txn } = setup();
  const [wSlow, slow] = watch(hub, { key: "k" });
  const [, fast] = watch(hub, { key: "k" });
  put("k", "1"); // 2
  slow.refuse = true;
  put("k", "2"); // 3: refused, held
  assertEquals(slow.refused, 1);
  assert(!wSlow.synced);
  assertEquals(hub.stats(), { synced: 1, pending: 0, blocked: 1 });
  for (let i = 0; i < 10; i++) put("k", `x${i}`); // 4..13 go to the fast one only
  txn([["k", "t1"], ["j", "t2"]]); // 14
  assertEquals(slow.refused, 1, "a blocked sink is not called again");
  assertEquals(fast.events.length, 13);
  assertEquals(sched.queue.length, 0, "no catch-up before resume");
  slow.refuse = false;
  wSlow.resume();
  sched.runAll();
  assert(wSlow.synced);
  assertEquals(slow.seen, fast.seen);
  // the held batch came back as it was, then history
  assertEquals(slow.batches[1].revision, 3);
  put("k", "live");
  assertEquals(slow.seen, fast.seen);
});

Deno.test("a refused batch above the hold limit is read again from history", () => {
  const { hub, sched, mvcc } = setup({ maxHeldEvents: 2 });
  const [w, r] = watch(hub, { key: "a", rangeEnd: b("z"), prevKv: true });
  const t = mvcc.write();
  for (const k of ["b", "c", "d"]) t.put(b(k), b("1"), 0n);
  const first = t.end();
  r.refuse = true;
  hub.notify(first);
  assertEquals(r.refused, 1);
  r.refuse = false;
  w.resume();
  sched.runAll();
  assertEquals(r.seen, ["put b@2", "put c@2", "put d@2"]);
  assert(w.synced);
});

Deno.test("a watcher refused during catch-up resumes where it stopped", () => {
  const { hub, sched, put } = setup({ catchUpBatch: 3 });
  for (let i = 0; i < 12; i++) put("k", String(i));
  const [w, r] = watch(hub, { key: "k", startRevision: 2 });
  let n = 0;
  r.onDeliver = () => {
    if (++n === 2) r.refuse = true;
  };
  sched.runAll();
  assertEquals(r.events.length, 6);
  assertEquals(hub.stats().blocked, 1);
  put("k", "during"); // while blocked
  r.refuse = false;
  w.resume();
  w.resume(); // twice is harmless
  sched.runAll();
  assertEquals(r.events.map((e) => e.kv.modRevision), Array.from({ length: 13 }, (_, i) => i + 2));
});

Deno.test("compaction: start below the compact revision is canceled, start at it replays what is kept", () => {
  const { hub, sched, put, mvcc } = setup();
  for (let i = 0; i < 5; i++) put("k", String(i)); // 2..6
  mvcc.compact(4);
  const [wOld, old] = watch(hub, { key: "k", startRevision: 3 });
  const [wAt, at] = watch(hub, { key: "k", startRevision: 4, prevKv: true });
  sched.runAll();
  assertEquals(old.compactedAt, 4);
  assertEquals(old.batches.length, 0);
  assert(wOld.done && !wOld.synced);
  assertEquals(at.seen, ["put k@4", "put k@5", "put k@6"]);
  assertEquals(at.events[0].prevKv, undefined, "rev 3 is compacted away");
  assert(wAt.synced);
  wOld.cancel(); // after compaction: nothing happens
  assertEquals(hub.stats(), { synced: 1, pending: 0, blocked: 0 });
});

Deno.test("a blocked watcher overtaken by compaction gets its held batch, then the compacted cancel", () => {
  const { hub, sched, put, mvcc } = setup();
  const [w, r] = watch(hub, { key: "k" });
  r.refuse = true;
  put("k", "held"); // 2, held
  put("k"); // 3
  put("k"); // 4
  mvcc.compact(4);
  r.refuse = false;
  w.resume();
  sched.runAll();
  assertEquals(r.seen, ["put k@2"]);
  assertEquals(r.compactedAt, 4);
  assert(w.done);
  put("k");
  assertEquals(r.seen, ["put k@2"]);
  assertEquals(hub.stats(), { synced: 0, pending: 0, blocked: 0 });
});

Deno.test("cancel stops deliveries in every state, also from inside a sink", () => {
  const { hub, sched, put } = setup();
  const [wA, a] = watch(hub, { key: "k" });
  const [wB, bRec] = watch(hub, { key: "k" });
  a.onDeliver = () => wB.cancel();
  put("k"); // a's sink cancels b before b's turn
  assertEquals(a.events.length, 1);
  assertEquals(bRec.events.length, 0);
  assert(wB.done);
  const [wP, p] = watch(hub, { key: "k", startRevision: 2 });
  wP.cancel();
  sched.runAll();
  assertEquals(p.events.length, 0);
  a.refuse = true;
  put("k");
  wA.cancel();
  wA.resume();
  sched.runAll();
  assertEquals(hub.stats(), { synced: 0, pending: 0, blocked: 0 });
});

Deno.test("an empty range is refused with etcd's error", () => {
  const { hub } = setup();
  assertThrows(
    () => watch(hub, { key: "b", rangeEnd: b("a") }),
    ErrEmptyWatcherRange,
    "mvcc: watcher range is empty",
  );
  assertThrows(() => watch(hub, { key: "b", rangeEnd: b("b") }), ErrEmptyWatcherRange);
  watch(hub, { key: "b", rangeEnd: new Uint8Array(0) }); // single key
  watch(hub, { key: "b", rangeEnd: FROM_KEY });
});

Deno.test("restore moves live watchers to catch up from the new store", () => {
  const { hub, sched, put, mvcc } = setup();
  put("k", "a"); // 2
  const [w, r] = watch(hub, { key: "k" });
  // a snapshot from a leader that is further ahead
  const ahead = MvccStore.decodeSnapshot(mvcc.encodeSnapshot());
  for (const v of ["b", "c"]) {
    const t = ahead.write();
    t.put(b("k"), b(v), 0n);
    t.end(); // revs 3 and 4, only in the snapshot
  }
  hub.restore(ahead);
  assert(!w.synced);
  sched.runAll();
  assertEquals(r.seen, ["put k@3", "put k@4"]);
  assert(w.synced);
});

Deno.test("model: random writes, watchers, refusals and compactions; every watcher sees its history exactly once", () => {
  // what the seeds reached, so a change of generator cannot quietly leave a path untested
  const reached = { compactions: 0, compactedWatchers: 0, cancelled: 0, refused: 0, synced: 0 };
  for (let seed = 1; seed <= 12; seed++) {
    const rng = new Prng(seed);
    const { hub, sched, mvcc } = setup({
      catchUpBatch: rng.range(1, 6),
      maxHeldEvents: rng.int(4),
      stepsPerRound: rng.range(1, 4),
    });
    const keys = ["a", "ab", "abc", "b", "ba", "c", "d", "dd", "e", "\0"];
    interface Case {
      w: Watcher;
      r: Recorder;
      o: WatchOptions;
      start: number;
    }
    const cases: Case[] = [];
    // all writes, for the expected histories (taken before any compaction)
    const log: MvccEvent[] = [];
    const compactions = new Set<number>();
    const addWatcher = (): void => {
      const k = rng.pick(keys);
      const kind = rng.float();
      let rangeEnd: Uint8Array | undefined;
      if (kind < 0.3) rangeEnd = undefined;
      else if (kind < 0.5) rangeEnd = FROM_KEY;
      else {
        const e = rng.pick(keys);
        if (e <= k) return;
        rangeEnd = b(e);
      }
      const current = mvcc.currentRevision;
      const start = rng.chance(0.4) ? 0 : Math.max(1, current - rng.int(30) + (rng.chance(0.2) ? 3 : 0));
      const r = new Recorder();
      const o: WatchOptions = {
        key: b(k),
        rangeEnd,
        startRevision: start,
        noPut: rng.chance(0.15),
        noDelete: rng.chance(0.15),
        prevKv: rng.chance(0.5),
        sink: r,
      };
      const w = hub.watch(o);
      cases.push({ w, r, o, start: start === 0 ? current + 1 : start });
    };
    for (let step = 0; step < 400; step++) {
      const x = rng.float();
      if (x < 0.45) {
        // as etcd allows in one txn: puts of distinct keys, or one delete
        const t = mvcc.write();
        if (rng.chance(0.75)) {
          const n = rng.range(1, 3);
          for (const k of new Set(Array.from({ length: n }, () => rng.pick(keys)))) {
            t.put(b(k), b(String(step)), 0n);
          }
        } else t.deleteRange(b(rng.pick(keys)), rng.chance(0.3) ? b("c") : undefined);
        const end = t.end();
        log.push(...end.events);
        hub.notify(end);
      } else if (x < 0.55) addWatcher();
      else if (x < 0.8) sched.runOne();
      else if (x < 0.9) {
        if (cases.length > 0) {
          const c = rng.pick(cases);
          c.r.refuse = !c.r.refuse;
        }
      } else if (x < 0.95) {
        for (const c of cases) {
          if (!c.r.refuse) c.w.resume();
        }
      } else if (x < 0.97 && mvcc.currentRevision > 40) {
        const target = mvcc.currentRevision - 20;
        if (target > mvcc.compactRevision) {
          mvcc.compact(target);
          compactions.add(target);
          reached.compactions++;
        }
      } else if (x < 0.98 && cases.length > 0) rng.pick(cases).w.cancel();
    }
    for (const c of cases) {
      c.r.refuse = false;
      c.w.resume();
    }
    sched.runAll();
    for (const [i, c] of cases.entries()) {
      let want = log.filter((e) =>
        e.kv.modRevision >= c.start && keyInRange(e.kv.key, c.o.key, c.o.rangeEnd) &&
        (e.type === "put" ? !c.o.noPut : !c.o.noDelete)
      );
      const got = c.r.events;
      // etcd's quirk: compacting at R drops the deletions at R, so a watcher reading from exactly R
      // never sees them
      const gotSet = new Set(got.map(show));
      want = want.filter((e) =>
        !(e.type === "delete" && compactions.has(e.kv.modRevision) && !gotSet.has(show(e)))
      );
      const where = `seed ${seed} watcher ${i}`;
      reached.refused += c.r.refused;
      if (c.r.compactedAt !== undefined) {
        // a prefix of the history, then the cancel
        assertEquals(got.map(show), want.slice(0, got.length).map(show), where);
        assert(c.w.done, where);
        reached.compactedWatchers++;
        continue;
      }
      if (c.w.done) {
        assertEquals(got.map(show), want.slice(0, got.length).map(show), where);
        reached.cancelled++;
        continue;
      }
      assert(c.w.synced, where);
      reached.synced++;
      assertEquals(got.map(show), want.map(show), where);
      for (let j = 0; j < got.length; j++) {
        const p = got[j].prevKv;
        if (!c.o.prevKv) assertEquals(p, undefined, where);
        else if (p !== undefined && want[j].prevKv !== undefined) {
          assertEquals(p.modRevision, want[j].prevKv!.modRevision, where);
        }
      }
    }
    const s = hub.stats();
    assertEquals(s.pending + s.blocked, 0, `seed ${seed}`);
  }
  for (const [path, n] of Object.entries(reached)) assert(n >= 10, `only ${n} ${path} over all seeds`);
});
