import { assert, assertEquals, assertThrows } from "../tests/assert.ts";
import { getHeapSpaceStatistics } from "node:v8";
import { IntMap } from "./int_map.ts";

/** A small deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sameAs<V>(m: IntMap<V>, ref: Map<number, V>): void {
  assertEquals(m.size, ref.size);
  const entries = m.entries().sort((a, b) => a[0] - b[0]);
  assertEquals(entries, [...ref.entries()].sort((a, b) => a[0] - b[0]));
  for (const [k, v] of ref) assertEquals(m.get(k), v);
}

Deno.test("int map: random sets and deletes agree with Map, through growth and shrinking", () => {
  for (const [seed, span, base] of [[1, 40, 0], [2, 5_000, 0], [3, 300, 1.7e15], [4, 64, 2 ** 52]]) {
    const next = rng(seed);
    const m = new IntMap<number>();
    const ref = new Map<number, number>();
    let grew = false;
    for (let step = 0; step < 30_000; step++) {
      const key = base + Math.floor(next() * span);
      const r = next();
      if (r < 0.5) {
        m.set(key, step);
        ref.set(key, step);
      } else if (r < 0.95) {
        assertEquals(m.delete(key), ref.delete(key));
      } else {
        assertEquals(m.has(key), ref.has(key));
        assertEquals(m.get(key), ref.get(key));
      }
      grew ||= m.capacity > 8;
      if (step % 1_000 === 0) sameAs(m, ref);
    }
    sameAs(m, ref);
    assert(grew, `seed ${seed}: the table grew`);
    for (const k of [...ref.keys()]) {
      assert(m.delete(k));
      ref.delete(k);
    }
    sameAs(m, ref);
    assertEquals(m.capacity, 8, "and shrank back once emptied");
  }
});

Deno.test("int map: keys that share a home slot are all found after deletes in any order", () => {
  // with 8 slots, three keys with one home slot and one key homed in the slot after it
  const keys = Array.from({ length: 10_000 }, (_, k) => k);
  const home = homeOf(keys[0]);
  const chain = keys.filter((k) => homeOf(k) === home).slice(0, 3);
  const after = keys.filter((k) => homeOf(k) === ((home + 1) & 7)).slice(0, 1);
  const all = [...chain, ...after];
  for (const order of [[0, 1, 2], [1, 0, 2], [2, 1, 0], [0, 2, 1]]) {
    const m = new IntMap<string>();
    for (const k of all) m.set(k, `v${k}`);
    assertEquals(m.capacity, 8);
    const gone: number[] = [];
    for (const i of order) {
      assert(m.delete(chain[i]));
      gone.push(chain[i]);
      for (const k of all) {
        assertEquals(m.get(k), gone.includes(k) ? undefined : `v${k}`, `after deleting ${gone}`);
      }
    }
  }
});

/** The home slot of `key` in an 8-slot table, computed as the map does. */
function homeOf(key: number): number {
  const lo = key >>> 0;
  const hi = (key / 4294967296) >>> 0;
  return Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) >>> 29;
}

Deno.test("int map: values and entries are copies; clear empties it", () => {
  const m = new IntMap<number>();
  for (let k = 1; k <= 20; k += 2) m.set(k, k * 10);
  for (const v of m.values()) m.delete(v / 10);
  assertEquals(m.size, 0);
  m.set(3, 1).set(3, 2);
  assertEquals(m.size, 1);
  assertEquals(m.get(3), 2);
  m.clear();
  assertEquals(m.size, 0);
  assertEquals(m.get(3), undefined);
  assertEquals(m.delete(3), false);
});

Deno.test("int map: keys outside 0..2^53-1 are refused", () => {
  const m = new IntMap<number>();
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53]) assertThrows(() => m.set(bad, 0), RangeError);
  assertEquals(m.get(-1), undefined);
  assertEquals(m.has(NaN), false);
});

Deno.test("int map: a key added and removed per request leaves no old-space garbage, where a Map does", () => {
  const oldSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === "old_space")!.space_used_size;
  /** The most the old space grew over one of five batches of 20,000 requests (a full collection in one
   * batch only lowers that batch). */
  const churn = (set: (k: number) => void, del: (k: number) => void) => {
    let seq = 1.7e15;
    set(seq);
    del(seq++);
    // enough young garbage for a few scavenges, which move the structure itself to the old space
    let junk: unknown;
    for (let i = 0; i < 3_000_000; i++) junk = { i };
    assert(junk !== undefined);
    let most = 0;
    for (let batch = 0; batch < 5; batch++) {
      const before = oldSpace();
      for (let i = 0; i < 20_000; i++, seq++) {
        set(seq);
        del(seq);
      }
      most = Math.max(most, oldSpace() - before);
    }
    return most;
  };
  const m = new IntMap<object>();
  const grewIntMap = churn((k) => m.set(k, {}), (k) => m.delete(k));
  const map = new Map<number, object>();
  const grewMap = churn((k) => map.set(k, {}), (k) => map.delete(k));
  assert(grewMap > 1024 * 1024, `a Map grew the old space by ${grewMap} bytes in a batch`);
  assert(grewIntMap < 256 * 1024, `the IntMap grew the old space by ${grewIntMap} bytes in a batch`);
});
