/**
 * Randomized test: the store against a deliberately naive model of etcd's MVCC rules (full history per
 * key, compaction by the rule "keep the newest entry at or below R unless it is a tombstone").
 */
import {
  ErrCompacted,
  ErrFutureRev,
  type KeyValue,
  type MvccEvent,
  MvccStore,
  type WriteTxn,
} from "./store.ts";
import { assert, assertEquals } from "../../tests/assert.ts";
import { b, prng, s } from "./test_util.ts";

interface Rec {
  main: number;
  sub: number;
  key: string;
  tomb: boolean;
  value: string;
  lease: bigint;
  create: number;
  version: number;
}

class Model {
  rev = 1;
  compactRev = 0;
  hist = new Map<string, Rec[]>();

  clone(): Model {
    const m = new Model();
    m.rev = this.rev;
    m.compactRev = this.compactRev;
    for (const [k, v] of this.hist) m.hist.set(k, v.map((r) => ({ ...r })));
    return m;
  }

  /** The record of `key` visible at `rev` (not a tombstone), if any. */
  at(key: string, rev: number): Rec | undefined {
    const recs = this.hist.get(key) ?? [];
    let found: Rec | undefined;
    for (const r of recs) if (r.main <= rev) found = r;
    return found && !found.tomb ? found : undefined;
  }

  keysIn(start: string, end: string | undefined | null): string[] {
    // end: undefined = single key, null = from key
    return [...this.hist.keys()].filter((k) =>
      end === undefined ? k === start : k >= start && (end === null || k < end)
    )
      .sort();
  }

  put(key: string, value: string, lease: bigint, main: number, sub: number): Rec | undefined {
    const prev = this.at(key, main);
    const rec: Rec = {
      main,
      sub,
      key,
      tomb: false,
      value,
      lease,
      create: prev ? prev.create : main,
      version: prev ? prev.version + 1 : 1,
    };
    if (!this.hist.has(key)) this.hist.set(key, []);
    this.hist.get(key)!.push(rec);
    return prev;
  }

  del(key: string, main: number, sub: number): void {
    this.hist.get(key)!.push({ main, sub, key, tomb: true, value: "", lease: 0n, create: 0, version: 0 });
  }

  compact(rev: number): void {
    this.compactRev = rev;
    for (const [k, recs] of this.hist) {
      const below = recs.filter((r) => r.main <= rev);
      const above = recs.filter((r) => r.main > rev);
      const newest = below[below.length - 1];
      const kept = newest && !newest.tomb ? [newest, ...above] : above;
      if (kept.length === 0) this.hist.delete(k);
      else this.hist.set(k, kept);
    }
  }

  events(start: string, end: string | undefined | null, from: number, to: number): string[] {
    const out: Rec[] = [];
    for (const k of this.keysIn(start, end)) {
      for (const r of this.hist.get(k)!) if (r.main >= from && r.main <= to) out.push(r);
    }
    out.sort((x, y) => x.main - y.main || x.sub - y.sub);
    return out.map((r) => {
      const recs = this.hist.get(r.key)!;
      const i = recs.indexOf(r);
      const prev = i > 0 && !recs[i - 1].tomb ? recs[i - 1] : undefined;
      const base = r.tomb ? `del ${r.key}@${r.main}` : `put ${fmt(r)}`;
      return prev ? `${base} prev=${fmt(prev)}` : base;
    });
  }
}

function fmt(r: Rec): string {
  return `${r.key}=${r.value}@${r.create}/${r.main}/v${r.version}/l${r.lease}`;
}

function fmtKv(kv: KeyValue): string {
  return `${s(kv.key)}=${s(kv.value)}@${kv.createRevision}/${kv.modRevision}/v${kv.version}/l${kv.lease}`;
}

function fmtEvents(evs: MvccEvent[]): string[] {
  return evs.map((e) => {
    const base = e.type === "put" ? `put ${fmtKv(e.kv)}` : `del ${s(e.kv.key)}@${e.kv.modRevision}`;
    return e.prevKv ? `${base} prev=${fmtKv(e.prevKv)}` : base;
  });
}

const KEYS = ["a", "a/1", "a/2", "a/3", "ab", "b", "b/x", "b/y", "c", "c/1", "d", "e", "zz"];
const LEASES = [0n, 0n, 0n, 7n, 0x7fff_ffff_0000_0001n];

/** A random etcd range: [start, end] with end undefined = single key, null = from key. */
function randomRange(rnd: () => number): [string, string | undefined | null] {
  const start = KEYS[Math.floor(rnd() * KEYS.length)];
  const r = rnd();
  if (r < 0.4) return [start, undefined];
  if (r < 0.5) return [start, null];
  if (r < 0.55) return ["\x00", null];
  const end = KEYS[Math.floor(rnd() * KEYS.length)];
  return [start, end + (rnd() < 0.5 ? "" : "\x00")];
}

function endBytes(end: string | undefined | null): Uint8Array | undefined {
  return end === undefined ? undefined : end === null ? new Uint8Array([0]) : b(end);
}

function expectRange(model: Model, start: string, end: string | undefined | null, rev: number): string[] {
  return model.keysIn(start, end).map((k) => model.at(k, rev)).filter((r) => r !== undefined).map((r) =>
    fmt(r!)
  );
}

/** How a seed's compactions went on the stepped store. */
interface StepCounts {
  /** Compactions still under way after their first step. */
  multiStep: number;
  /** Of those, finished by a step of their own (the rest by something that reads what they drop). */
  finishedByStep: number;
}

/** Runs one seed. */
function runSeed(seed: number, steps: number): StepCounts {
  const rnd = prng(seed);
  const model = new Model();
  // the store compacts in steps of 16 entries, taken between operations; the twin at once
  const stepped = { compactStepEntries: 16 };
  let store = new MvccStore(stepped);
  const twin = new MvccStore({ compactStepEntries: 1 << 30 }); // same operations, never restored from a snapshot
  const counts: StepCounts = { multiStep: 0, finishedByStep: 0 };
  const ctx = (step: number) => `seed ${seed} step ${step}`;
  for (let step = 0; step < steps; step++) {
    if (store.compacting && rnd() < 0.7 && !store.compactStep()) counts.finishedByStep++;
    const r = rnd();
    if (r < 0.05 && model.rev > model.compactRev) {
      const rev = model.compactRev + 1 + Math.floor(rnd() * (model.rev - model.compactRev));
      store.compact(rev);
      if (store.compacting) counts.multiStep++;
      twin.compact(rev);
      assertEquals(twin.compacting, false, ctx(step));
      model.compact(rev);
      continue;
    }
    if (r < 0.08) {
      store = MvccStore.decodeSnapshot(store.encodeSnapshot(), stepped);
      continue;
    }
    // a write transaction of 1-4 operations, mirrored on the model
    const abort = rnd() < 0.05;
    const before = model.clone();
    const main = model.rev + 1;
    let sub = 0;
    const txns: WriteTxn[] = [store.write(), twin.write()];
    const nOps = 1 + Math.floor(rnd() * 4);
    for (let i = 0; i < nOps; i++) {
      const op = rnd();
      if (op < 0.55) {
        const key = KEYS[Math.floor(rnd() * KEYS.length)];
        const value = rnd() < 0.1 ? "" : `v${step}.${i}`.repeat(1 + Math.floor(rnd() * 3));
        const lease = LEASES[Math.floor(rnd() * LEASES.length)];
        const prev = model.put(key, value, lease, main, sub++);
        for (const t of txns) {
          const got = t.put(b(key), b(value), lease);
          assertEquals(got && fmtKv(got), prev && fmt(prev), ctx(step));
        }
      } else if (op < 0.8) {
        const [start, end] = randomRange(rnd);
        const doomed = model.keysIn(start, end).filter((k) => model.at(k, main));
        const expect = doomed.map((k) => fmt(model.at(k, main)!));
        for (const k of doomed) model.del(k, main, sub++);
        for (const t of txns) {
          assertEquals(t.deleteRange(b(start), endBytes(end)).map(fmtKv), expect, ctx(step));
        }
      } else {
        const [start, end] = randomRange(rnd);
        const readRev = sub > 0 ? main : main - 1;
        const res = txns[0].range(b(start), endBytes(end));
        assertEquals(res.kvs.map(fmtKv), expectRange(model, start, end, readRev), ctx(step));
        assertEquals(res.revision, readRev, ctx(step));
      }
    }
    if (abort) {
      for (const t of txns) t.abort();
      Object.assign(model, before.clone());
    } else {
      const ends = txns.map((t) => t.end());
      if (sub > 0) model.rev = main;
      assertEquals(ends[0].revision, model.rev, ctx(step));
      assertEquals(fmtEvents(ends[0].events), model.events("\x00", null, main, main), ctx(step));
      assertEquals(fmtEvents(ends[1].events), fmtEvents(ends[0].events), ctx(step));
    }
    // checks after every step
    assertEquals(store.currentRevision, model.rev, ctx(step));
    assertEquals(store.compactRevision, model.compactRev, ctx(step));
    const live = [...model.hist.keys()].filter((k) => model.at(k, model.rev)).length;
    assertEquals(store.keyCount(), live, ctx(step));
    const [start, end] = randomRange(rnd);
    const rev = model.compactRev + Math.floor(rnd() * (model.rev - model.compactRev + 1));
    if (rev >= 1) {
      const limit = rnd() < 0.3 ? 1 + Math.floor(rnd() * 3) : 0;
      const res = store.range(b(start), endBytes(end), { revision: rev, limit });
      const want = expectRange(model, start, end, rev);
      assertEquals(res.count, want.length, ctx(step));
      assertEquals(res.kvs.map(fmtKv), limit > 0 ? want.slice(0, limit) : want, ctx(step));
    }
    if (model.compactRev > 1) {
      try {
        store.range(b("a"), undefined, { revision: model.compactRev - 1 });
        throw new Error(`expected ErrCompacted, ${ctx(step)}`);
      } catch (err) {
        if (!(err instanceof ErrCompacted)) throw err;
      }
    }
    try {
      store.range(b("a"), undefined, { revision: model.rev + 1 });
      throw new Error(`expected ErrFutureRev, ${ctx(step)}`);
    } catch (err) {
      if (!(err instanceof ErrFutureRev)) throw err;
    }
    const from = Math.max(model.compactRev, 1) + Math.floor(rnd() * 6);
    const to = from + Math.floor(rnd() * 8);
    const [es, ee] = randomRange(rnd);
    assertEquals(
      fmtEvents(store.eventsBetween(b(es), endBytes(ee), from, to)),
      model.events(es, ee, from, Math.min(to, model.rev)),
      ctx(step),
    );
    if (step % 50 === 0) {
      assertEquals(store.hashKV(0), twin.hashKV(0), ctx(step));
      assertEquals(store.encodeSnapshot(), twin.encodeSnapshot(), ctx(step));
    }
  }
  // the full history as one event stream, and the final hash, agree
  const from = Math.max(model.compactRev, 1);
  assertEquals(
    fmtEvents(store.eventsBetween(b("\x00"), b("\x00"), from, model.rev)),
    model.events("\x00", null, from, model.rev),
  );
  assertEquals(store.hashKV(0), twin.hashKV(0));
  return counts;
}

Deno.test("store agrees with a naive model over random operations, compactions in steps between them", () => {
  const total: StepCounts = { multiStep: 0, finishedByStep: 0 };
  for (const seed of [1, 2, 3, 42, 20240601]) {
    const c = runSeed(seed, 800);
    total.multiStep += c.multiStep;
    total.finishedByStep += c.finishedByStep;
  }
  // reads, writes, and the other compactions met compactions still under way; some finished by steps
  assert(total.multiStep >= 20, `${total.multiStep} compactions took more than one step`);
  assert(total.finishedByStep >= 5, `${total.finishedByStep} compactions finished by their own steps`);
});
