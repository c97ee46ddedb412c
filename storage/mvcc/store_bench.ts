/**
 * Micro benchmarks of the MVCC store: `deno bench storage/mvcc/store_bench.ts`.
 */
import { MvccStore } from "./store.ts";

const te = new TextEncoder();
const N = 100_000;
const keys = Array.from({ length: N }, (_, i) => te.encode(`/registry/pods/ns-${i % 100}/pod-${i}`));
const value = new Uint8Array(100).fill(0x61);

function filled(): MvccStore {
  const st = new MvccStore();
  for (let i = 0; i < N; i += 1000) {
    const w = st.write();
    for (let j = i; j < i + 1000; j++) w.put(keys[j], value, 0n);
    w.end();
  }
  return st;
}

const store = filled();
let i = 0;

Deno.bench("put: overwrite one of 100k keys, one put per txn", { group: "put", baseline: true }, () => {
  const w = store.write();
  w.put(keys[i++ % N], value, 0n);
  w.end();
});

// the same with superseded values going to a history file
const historyStore = new MvccStore({ historyFile: Deno.makeTempFileSync({ prefix: "mvcc_bench_history_" }) });
for (let j = 0; j < N; j++) {
  const w = historyStore.write();
  w.put(keys[j], value, 0n);
  w.end();
}
let h = 0;
Deno.bench("put: overwrite one of 100k keys, with a history file", { group: "put" }, () => {
  const w = historyStore.write();
  w.put(keys[h++ % N], value, 0n);
  w.end();
});

const growing = new MvccStore();
let g = 0;
Deno.bench("put: new key, one put per txn", { group: "put" }, () => {
  const w = growing.write();
  w.put(te.encode(`/new/key/${g++}`), value, 0n);
  w.end();
});

Deno.bench("put+delete: txn of 2 ops", { group: "put" }, () => {
  const w = store.write();
  const k = keys[i++ % N];
  w.put(k, value, 0n);
  w.deleteRange(k, undefined);
  w.end();
  const w2 = store.write();
  w2.put(k, value, 0n);
  w2.end();
});

const prefix = te.encode("/registry/pods/ns-7/");
const prefixEnd = te.encode("/registry/pods/ns-70");
const all = new Uint8Array([0]);

Deno.bench("range: single key", { group: "range", baseline: true }, () => {
  store.range(keys[i++ % N], undefined);
});

Deno.bench("range: single key at an old revision", { group: "range" }, () => {
  store.range(keys[i++ % N], undefined, { revision: 50 });
});

Deno.bench("range: prefix of ~1000 keys, limit 100", { group: "range" }, () => {
  store.range(prefix, prefixEnd, { limit: 100 });
});

Deno.bench("range: count all 100k keys", { group: "range" }, () => {
  store.range(all, all, { countOnly: true });
});

Deno.bench("range: all 100k keys with values", { group: "range" }, () => {
  store.range(all, all);
});

const watched = new MvccStore();
for (let r = 0; r < 10_000; r++) {
  const w = watched.write();
  w.put(keys[r % 1000], value, 0n);
  w.end();
}
Deno.bench("eventsBetween: one key over 10k revisions", { group: "history" }, () => {
  watched.eventsBetween(keys[5], undefined, 2, 10_001);
});
Deno.bench("eventsBetween: all keys, 1000 revisions", { group: "history" }, () => {
  watched.eventsBetween(all, all, 5000, 5999);
});

// a store of exactly 100k keys with one revision each (the put benches above add history to `store`)
const fixed = filled();
Deno.bench("encodeSnapshot: 100k keys", { group: "snapshot", n: 20 }, () => {
  fixed.encodeSnapshot();
});
const snap = fixed.encodeSnapshot();
Deno.bench("decodeSnapshot: 100k keys", { group: "snapshot", n: 20 }, () => {
  MvccStore.decodeSnapshot(snap);
});
Deno.bench("hashKV: 100k keys", { group: "snapshot", n: 20 }, () => {
  fixed.hashKV(0);
});
