import {
  ErrCompacted,
  ErrFutureRev,
  ErrSnapshotCorrupt,
  ErrTxnState,
  type KeyValue,
  type MvccEvent,
  MvccStore,
} from "./store.ts";
import { compareBytes, prefixRangeEnd } from "./bytes.ts";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { b, del, dump, plain, put, s, txn } from "./test_util.ts";

const ALL = new Uint8Array([0]);

function kvs(list: KeyValue[]): string[] {
  return list.map((kv) =>
    `${s(kv.key)}=${s(kv.value)}@${kv.createRevision}/${kv.modRevision}/v${kv.version}`
  );
}

function ev(list: MvccEvent[]): string[] {
  return list.map((e) => {
    const kv = e.kv;
    const base = e.type === "put"
      ? `put ${s(kv.key)}=${s(kv.value)}@${kv.createRevision}/${kv.modRevision}/v${kv.version}`
      : `del ${s(kv.key)}@${kv.modRevision}`;
    return e.prevKv ? `${base} prev=${s(e.prevKv.value)}@${e.prevKv.modRevision}` : base;
  });
}

Deno.test("empty store", () => {
  const st = new MvccStore();
  assertEquals(st.currentRevision, 1);
  assertEquals(st.compactRevision, 0);
  assertEquals(st.keyCount(), 0);
  const r = st.range(b("a"), undefined);
  assertEquals(r, { kvs: [], count: 0, revision: 1 });
  assertEquals(st.range(ALL, ALL).count, 0);
  assertEquals(st.approximateBytes(), 0);
});

Deno.test("put, revisions, versions and generations", () => {
  const st = new MvccStore();
  assertEquals(put(st, "foo", "1"), 2);
  assertEquals(put(st, "foo", "2"), 3);
  assertEquals(put(st, "bar", "x"), 4);
  assertEquals(kvs(st.range(b("foo"), undefined).kvs), ["foo=2@2/3/v2"]);
  assertEquals(del(st, "foo"), 5);
  assertEquals(st.range(b("foo"), undefined).kvs, []);
  assertEquals(st.keyCount(), 1);
  // a put on a deleted key starts a new generation
  assertEquals(put(st, "foo", "3"), 6);
  assertEquals(kvs(st.range(b("foo"), undefined).kvs), ["foo=3@6/6/v1"]);
  assertEquals(put(st, "foo", "4"), 7);
  assertEquals(kvs(st.range(b("foo"), undefined).kvs), ["foo=4@6/7/v2"]);
  assertEquals(st.keyCount(), 2);
  // history
  assertEquals(kvs(st.range(b("foo"), undefined, { revision: 2 }).kvs), ["foo=1@2/2/v1"]);
  assertEquals(kvs(st.range(b("foo"), undefined, { revision: 4 }).kvs), ["foo=2@2/3/v2"]);
  assertEquals(st.range(b("foo"), undefined, { revision: 5 }).kvs, []);
  assertEquals(st.range(b("foo"), undefined, { revision: 1 }).kvs, []);
  assertEquals(st.range(b("foo"), undefined, { revision: 4 }).revision, 4);
  assertEquals(st.range(b("foo"), undefined).revision, 7);
});

Deno.test("put returns the previous kv and leases are kept as-is", () => {
  const st = new MvccStore();
  const big = 0x7fff_ffff_ffff_fff1n;
  const t1 = st.write();
  assertEquals(t1.put(b("k"), b("v1"), big), undefined);
  t1.end();
  const t2 = st.write();
  const prev = t2.put(b("k"), b("v2"), 0n);
  t2.end();
  assertEquals(plain(prev!), {
    key: "k",
    value: "v1",
    createRevision: 2,
    modRevision: 2,
    version: 1,
    lease: big,
  });
  assertEquals(st.range(b("k"), undefined).kvs[0].lease, 0n);
  assertEquals(st.range(b("k"), undefined, { revision: 2 }).kvs[0].lease, big);
  put(st, "n", "x", -5n);
  assertEquals(st.range(b("n"), undefined).kvs[0].lease, -5n);
});

Deno.test("range options", async (t) => {
  const st = new MvccStore();
  for (const k of ["a", "ab", "abc", "abd", "b", "ba", "c"]) put(st, k, k.toUpperCase());
  const rev = st.currentRevision;
  const keys = (r: { kvs: KeyValue[] }) => r.kvs.map((kv) => s(kv.key));

  await t.step("single key", () => {
    assertEquals(keys(st.range(b("ab"), undefined)), ["ab"]);
    assertEquals(keys(st.range(b("ab"), new Uint8Array(0))), ["ab"]);
    assertEquals(keys(st.range(b("zz"), undefined)), []);
    assertEquals(st.range(b("zz"), undefined).count, 0);
  });
  await t.step("half-open range", () => {
    assertEquals(keys(st.range(b("ab"), b("b"))), ["ab", "abc", "abd"]);
    assertEquals(keys(st.range(b("ab"), b("abd"))), ["ab", "abc"]);
    assertEquals(keys(st.range(b("b"), b("a"))), []);
    assertEquals(keys(st.range(b("b"), b("b"))), []);
  });
  await t.step("prefix", () => {
    assertEquals(keys(st.range(b("ab"), prefixRangeEnd(b("ab")))), ["ab", "abc", "abd"]);
    assertEquals(keys(st.range(b("b"), prefixRangeEnd(b("b")))), ["b", "ba"]);
  });
  await t.step("from key and all keys", () => {
    assertEquals(keys(st.range(b("abd"), ALL)), ["abd", "b", "ba", "c"]);
    assertEquals(keys(st.range(ALL, ALL)), ["a", "ab", "abc", "abd", "b", "ba", "c"]);
    assertEquals(st.range(ALL, ALL).revision, rev);
  });
  await t.step("limit counts everything", () => {
    const r = st.range(b("a"), ALL, { limit: 3 });
    assertEquals(keys(r), ["a", "ab", "abc"]);
    assertEquals(r.count, 7);
    assertEquals(keys(st.range(b("a"), ALL, { limit: 0 })).length, 7);
    assertEquals(keys(st.range(b("a"), ALL, { limit: 100 })).length, 7);
  });
  await t.step("noCount stops at the limit", () => {
    const r = st.range(b("a"), ALL, { limit: 3, noCount: true });
    assertEquals([keys(r), r.count], [["a", "ab", "abc"], 3]);
    const rest = st.range(b("abc\0"), ALL, { limit: 10, noCount: true });
    assertEquals([keys(rest), rest.count], [["abd", "b", "ba", "c"], 4]);
    // without a limit it changes nothing
    assertEquals(st.range(b("a"), ALL, { noCount: true }).count, 7);
  });
  await t.step("countOnly", () => {
    const r = st.range(b("ab"), b("b"), { countOnly: true });
    assertEquals(r.kvs, []);
    assertEquals(r.count, 3);
  });
  await t.step("keysOnly", () => {
    const r = st.range(b("b"), b("c"), { keysOnly: true });
    assertEquals(r.kvs.map(plain), [
      { key: "b", value: "", createRevision: 6, modRevision: 6, version: 1, lease: 0n },
      { key: "ba", value: "", createRevision: 7, modRevision: 7, version: 1, lease: 0n },
    ]);
  });
  await t.step("deleted keys are not counted", () => {
    del(st, "abc");
    assertEquals(st.range(b("a"), ALL, { countOnly: true }).count, 6);
    assertEquals(st.range(b("a"), ALL, { countOnly: true, revision: rev }).count, 7);
  });
});

Deno.test("keys sort in byte order, binary keys and values survive", () => {
  const st = new MvccStore();
  const ks = [[0xff], [0x80, 0x00], [0x00], [0x7f, 0xff], [0x01], [0xff, 0x00], [0x00, 0x00]];
  txn(st, (t) => {
    for (const k of ks) t.put(new Uint8Array(k), new Uint8Array([...k, 0xfe, 0x00]), 0n);
  });
  const r = st.range(new Uint8Array([0]), ALL);
  assertEquals(r.kvs.map((kv) => [...kv.key]), [[0x00], [0x00, 0x00], [0x01], [0x7f, 0xff], [0x80, 0x00], [
    0xff,
  ], [
    0xff,
    0x00,
  ]]);
  for (const kv of r.kvs) assertEquals([...kv.value], [...kv.key, 0xfe, 0x00]);
  // the empty key is a key like any other for the store
  put(st, "", "empty");
  assertEquals(s(st.range(new Uint8Array(0), undefined).kvs[0].value), "empty");
});

Deno.test("revision errors", () => {
  const st = new MvccStore();
  put(st, "a", "1");
  put(st, "a", "2");
  assertEquals(
    assertThrows(() => st.range(b("a"), undefined, { revision: 4 }), ErrFutureRev).code,
    "FUTURE_REV",
  );
  const err = assertThrows(() => st.range(b("a"), undefined, { revision: 99 }), ErrFutureRev);
  assertEquals(err.message, "mvcc: required revision is a future revision");
  st.compact(2);
  const c = assertThrows(() => st.range(b("a"), undefined, { revision: 1 }), ErrCompacted);
  assertEquals(c.code, "COMPACTED");
  assertEquals(c.message, "mvcc: required revision has been compacted");
  // reading at the compact revision itself works
  assertEquals(kvs(st.range(b("a"), undefined, { revision: 2 }).kvs), ["a=1@2/2/v1"]);
});

Deno.test("write transactions", async (t) => {
  await t.step("one revision, increasing sub revisions, events", () => {
    const st = new MvccStore();
    put(st, "x", "old");
    const w = st.write();
    w.put(b("a"), b("1"), 0n);
    w.put(b("b"), b("2"), 0n);
    assertEquals(w.deleteRange(b("x"), undefined).map((kv) => s(kv.value)), ["old"]);
    w.put(b("a"), b("3"), 0n);
    const { revision, events } = w.end();
    assertEquals(revision, 3);
    assertEquals(st.currentRevision, 3);
    assertEquals(ev(events), [
      "put a=1@3/3/v1",
      "put b=2@3/3/v1",
      "del x@3 prev=old@2",
      "put a=3@3/3/v2 prev=1@3",
    ]);
    const d = events[2].kv;
    assertEquals(plain(d), { key: "x", value: "", createRevision: 0, modRevision: 3, version: 0, lease: 0n });
    assertEquals(dump(st), ["a=3", "b=2"]);
  });
  await t.step("reads see the transaction's own writes", () => {
    const st = new MvccStore();
    put(st, "k", "v0");
    const w = st.write();
    assertEquals(w.range(b("k"), undefined).revision, 2);
    assertThrows(() => w.range(b("k"), undefined, { revision: 3 }), ErrFutureRev);
    w.put(b("k"), b("v1"), 0n);
    w.put(b("n"), b("new"), 0n);
    const r = w.range(b("a"), ALL);
    assertEquals(r.revision, 3);
    assertEquals(kvs(r.kvs), ["k=v1@2/3/v2", "n=new@3/3/v1"]);
    assertEquals(kvs(w.range(b("k"), undefined, { revision: 2 }).kvs), ["k=v0@2/2/v1"]);
    // the store outside the transaction still sees the committed state only
    assertEquals(dump(st), ["k=v0"]);
    assertEquals(st.range(ALL, ALL).revision, 2);
    w.deleteRange(b("k"), undefined);
    assertEquals(kvs(w.range(b("a"), ALL).kvs), ["n=new@3/3/v1"]);
    w.end();
    assertEquals(dump(st), ["n=new"]);
  });
  await t.step("deleting nothing writes nothing", () => {
    const st = new MvccStore();
    put(st, "a", "1");
    const w = st.write();
    assertEquals(w.deleteRange(b("zz"), undefined), []);
    assertEquals(w.deleteRange(b("b"), b("c")), []);
    assertEquals(w.end(), { revision: 2, events: [] });
    assertEquals(st.currentRevision, 2);
    del(st, "a");
    assertEquals(st.currentRevision, 3);
    assertEquals(del(st, "a"), 3);
    const empty = st.write();
    assertEquals(empty.range(b("a"), undefined).revision, 3);
    assertEquals(empty.end(), { revision: 3, events: [] });
  });
  await t.step("deleteRange returns the latest values", () => {
    const st = new MvccStore();
    put(st, "p/1", "a");
    put(st, "p/2", "b");
    put(st, "p/1", "c");
    put(st, "q", "d");
    const w = st.write();
    const deleted = w.deleteRange(b("p/"), prefixRangeEnd(b("p/")));
    const { events } = w.end();
    assertEquals(kvs(deleted), ["p/1=c@2/4/v2", "p/2=b@3/3/v1"]);
    assertEquals(ev(events), ["del p/1@6 prev=c@4", "del p/2@6 prev=b@3"]);
    assertEquals(st.keyCount(), 1);
  });
  await t.step("one writer at a time, and no use after end", () => {
    const st = new MvccStore();
    const w = st.write();
    assertEquals(assertThrows(() => st.write(), ErrTxnState).code, "TXN_STATE");
    assertThrows(() => st.compact(1), ErrTxnState);
    assertThrows(() => st.encodeSnapshot(), ErrTxnState);
    w.end();
    assertThrows(() => w.put(b("a"), b("b"), 0n), ErrTxnState);
    assertThrows(() => w.end(), ErrTxnState);
    st.write().end();
  });
  await t.step("abort undoes everything", () => {
    const st = new MvccStore();
    put(st, "a", "1");
    put(st, "b", "2");
    const before = st.encodeSnapshot();
    const w = st.write();
    w.put(b("a"), b("changed"), 7n);
    w.put(b("c"), b("new"), 0n);
    w.deleteRange(b("b"), undefined);
    w.put(b("b"), b("again"), 0n);
    w.abort();
    assertEquals(st.currentRevision, 3);
    assertEquals(dump(st), ["a=1", "b=2"]);
    assertEquals(st.keyCount(), 2);
    assertEquals(st.encodeSnapshot(), before);
    assertEquals(put(st, "c", "x"), 4);
    assertEquals(kvs(st.range(b("c"), undefined).kvs), ["c=x@4/4/v1"]);
  });
});

Deno.test("returned kvs do not alias inputs or internals", () => {
  const st = new MvccStore();
  const key = b("key");
  const value = b("value-bytes-long-enough-to-memcpy-0123456789");
  put(st, "other", "o");
  txn(st, (t) => t.put(key, value, 0n));
  key[0] = 0x5a;
  value.fill(0x21);
  const r1 = st.range(b("key"), undefined).kvs[0];
  assertEquals(s(r1.value), "value-bytes-long-enough-to-memcpy-0123456789");
  r1.value.fill(0x3f);
  r1.key.fill(0x3f);
  const r2 = st.range(b("key"), undefined).kvs[0];
  assertEquals(s(r2.key), "key");
  assertEquals(s(r2.value), "value-bytes-long-enough-to-memcpy-0123456789");
  const w = st.write();
  const prev = w.put(b("key"), b("v2"), 0n)!;
  const { events } = w.end();
  prev.value.fill(0x23);
  events[0].kv.value.fill(0x23);
  assertEquals(
    s(st.range(b("key"), undefined, { revision: 3 }).kvs[0].value),
    "value-bytes-long-enough-to-memcpy-0123456789",
  );
  assertEquals(s(st.range(b("key"), undefined).kvs[0].value), "v2");
});

Deno.test("compaction", async (t) => {
  await t.step("keeps the newest version at or below the revision, drops tombstoned keys", () => {
    const st = new MvccStore();
    put(st, "a", "1"); // 2
    put(st, "a", "2"); // 3
    put(st, "b", "1"); // 4
    del(st, "b"); // 5
    put(st, "c", "1"); // 6
    del(st, "c"); // 7
    put(st, "c", "2"); // 8
    put(st, "a", "3"); // 9
    const bytesBefore = st.approximateBytes();
    st.compact(7);
    assertEquals(st.compactRevision, 7);
    assertEquals(kvs(st.range(ALL, ALL, { revision: 7 }).kvs), ["a=2@2/3/v2"]);
    assertEquals(kvs(st.range(ALL, ALL, { revision: 8 }).kvs), ["a=2@2/3/v2", "c=2@8/8/v1"]);
    assertEquals(kvs(st.range(ALL, ALL).kvs), ["a=3@2/9/v3", "c=2@8/8/v1"]);
    assertThrows(() => st.range(ALL, ALL, { revision: 6 }), ErrCompacted);
    assert(st.approximateBytes() < bytesBefore, "compaction frees data");
    assertEquals(st.keyCount(), 2);
    // b is gone from the index entirely: its history is empty
    assertEquals(st.eventsBetween(b("b"), undefined, 7, 9), []);
    // versions keep counting after compaction
    put(st, "a", "4");
    assertEquals(kvs(st.range(b("a"), undefined).kvs), ["a=4@2/10/v4"]);
  });
  await t.step("errors", () => {
    const st = new MvccStore();
    put(st, "a", "1");
    assertThrows(() => st.compact(3), ErrFutureRev);
    assertThrows(() => st.compact(0), ErrCompacted);
    st.compact(2);
    assertThrows(() => st.compact(2), ErrCompacted);
    assertThrows(() => st.compact(1), ErrCompacted);
    assertEquals(dump(st), ["a=1"]);
  });
  await t.step("compacting at the current revision with everything deleted empties the store", () => {
    const st = new MvccStore();
    for (let i = 0; i < 600; i++) put(st, `k${i}`, "v".repeat(i));
    del(st, "k", "l");
    const rev = st.currentRevision;
    st.compact(rev);
    assertEquals(st.range(ALL, ALL).count, 0);
    assertEquals(st.keyCount(), 0);
    assertEquals(st.approximateBytes(), 0);
    assertEquals(st.eventsBetween(ALL, ALL, rev, rev), []);
    put(st, "k1", "again");
    assertEquals(kvs(st.range(ALL, ALL).kvs), [`k1=again@${rev + 1}/${rev + 1}/v1`]);
  });
  await t.step("a tombstone above the compact revision keeps the key", () => {
    const st = new MvccStore();
    put(st, "a", "1"); // 2
    put(st, "a", "2"); // 3
    del(st, "a"); // 4
    st.compact(3);
    assertEquals(kvs(st.range(b("a"), undefined, { revision: 3 }).kvs), ["a=2@2/3/v2"]);
    assertEquals(ev(st.eventsBetween(b("a"), undefined, 4, 4)), ["del a@4 prev=2@3"]);
    st.compact(4);
    assertEquals(st.range(b("a"), undefined, { revision: 4 }).kvs, []);
    assertEquals(st.eventsBetween(b("a"), undefined, 4, 4), []);
  });
});

Deno.test("eventsBetween", async (t) => {
  const st = new MvccStore();
  put(st, "a", "1"); // 2
  put(st, "b", "1"); // 3
  txn(st, (w) => { // 4
    w.put(b("a"), b("2"), 0n);
    w.put(b("c"), b("1"), 0n);
  });
  del(st, "b"); // 5
  put(st, "b", "2"); // 6
  put(st, "ab", "1"); // 7

  await t.step("all keys, revision window", () => {
    assertEquals(ev(st.eventsBetween(ALL, ALL, 1, 100)), [
      "put a=1@2/2/v1",
      "put b=1@3/3/v1",
      "put a=2@2/4/v2 prev=1@2",
      "put c=1@4/4/v1",
      "del b@5 prev=1@3",
      "put b=2@6/6/v1",
      "put ab=1@7/7/v1",
    ]);
    assertEquals(ev(st.eventsBetween(ALL, ALL, 4, 5)), [
      "put a=2@2/4/v2 prev=1@2",
      "put c=1@4/4/v1",
      "del b@5 prev=1@3",
    ]);
    assertEquals(st.eventsBetween(ALL, ALL, 8, 100), []);
    assertEquals(st.eventsBetween(ALL, ALL, 5, 4), []);
  });
  await t.step("key filters", () => {
    assertEquals(ev(st.eventsBetween(b("b"), undefined, 1, 7)), [
      "put b=1@3/3/v1",
      "del b@5 prev=1@3",
      "put b=2@6/6/v1",
    ]);
    assertEquals(ev(st.eventsBetween(b("a"), prefixRangeEnd(b("a")), 1, 7)), [
      "put a=1@2/2/v1",
      "put a=2@2/4/v2 prev=1@2",
      "put ab=1@7/7/v1",
    ]);
    assertEquals(ev(st.eventsBetween(b("b"), ALL, 5, 7)), ["del b@5 prev=1@3", "put b=2@6/6/v1"]);
    assertEquals(st.eventsBetween(b("zz"), undefined, 1, 7), []);
  });
  await t.step("without prevKv", () => {
    assertEquals(ev(st.eventsBetween(b("b"), undefined, 5, 5, 0, false)), ["del b@5"]);
  });
  await t.step("limit finishes the last revision", () => {
    assertEquals(ev(st.eventsBetween(ALL, ALL, 1, 7, 2)), ["put a=1@2/2/v1", "put b=1@3/3/v1"]);
    assertEquals(ev(st.eventsBetween(ALL, ALL, 1, 7, 3)), [
      "put a=1@2/2/v1",
      "put b=1@3/3/v1",
      "put a=2@2/4/v2 prev=1@2",
      "put c=1@4/4/v1",
    ]);
  });
  await t.step("match the events end() reported", () => {
    const s2 = new MvccStore();
    const seen: MvccEvent[] = [];
    const w = s2.write();
    w.put(b("x"), b("1"), 3n);
    seen.push(...w.end().events);
    const w2 = s2.write();
    w2.put(b("x"), b("2"), 0n);
    w2.deleteRange(b("x"), undefined);
    seen.push(...w2.end().events);
    const hist = s2.eventsBetween(ALL, ALL, 0, 3);
    assertEquals(hist, seen);
  });
  await t.step("compaction", () => {
    st.compact(4);
    assertThrows(() => st.eventsBetween(ALL, ALL, 3, 7), ErrCompacted);
    // as in etcd, watching from the compact revision itself works: the puts kept there remain (their
    // previous values are gone), and b@3, the newest b at the compact revision, is still a prevKv
    assertEquals(ev(st.eventsBetween(ALL, ALL, 4, 5)), [
      "put a=2@2/4/v2",
      "put c=1@4/4/v1",
      "del b@5 prev=1@3",
    ]);
  });
});

Deno.test("hashKV matches etcd 3.4.23", () => {
  // The same history was written to a real etcd 3.4.23 with etcdctl and `endpoint hashkv` recorded.
  const lease = 4111120228862134794n;
  const st = new MvccStore();
  assertEquals(st.hashKV(0), { hash: 1084519789, compactRevision: -1, revision: 1 });
  put(st, "a", "1"); // 2
  put(st, "b", "2"); // 3
  put(st, "a", "3"); // 4
  del(st, "a"); // 5
  put(st, "c", ""); // 6
  assertEquals(st.hashKV(0).hash, 2522524288);
  assertEquals(st.hashKV(4).hash, 2069675932);
  txn(st, (w) => { // 7
    w.put(b("d"), b("4"), 0n);
    w.put(b("e"), b("5"), 0n);
    w.deleteRange(b("b"), undefined);
  });
  put(st, "f", "6", lease); // 8
  put(st, "a", "x".repeat(200)); // 9
  assertEquals(st.hashKV(0), { hash: 1230572453, compactRevision: -1, revision: 9 });
  assertEquals([6, 7, 8].map((r) => st.hashKV(r).hash), [2522524288, 4294141457, 2557024960]);
  const restored = MvccStore.decodeSnapshot(st.encodeSnapshot());
  assertEquals(restored.hashKV(0).hash, 1230572453);
  st.compact(5);
  assertEquals(st.hashKV(0), { hash: 3684510549, compactRevision: 5, revision: 9 });
  assertEquals([6, 7, 8].map((r) => st.hashKV(r).hash), [2690948391, 3532906889, 2240798216]);
  assertThrows(() => st.hashKV(5), ErrCompacted);
  assertThrows(() => st.hashKV(10), ErrFutureRev);
  st.compact(8);
  assertEquals(st.hashKV(0).hash, 38544338);
  del(st, "d"); // 10
  del(st, "f"); // 11
  st.compact(10);
  assertEquals(st.hashKV(0), { hash: 4021716934, compactRevision: 10, revision: 11 });
});

Deno.test("snapshot roundtrip", async (t) => {
  const st = new MvccStore();
  for (let i = 0; i < 50; i++) put(st, `key/${i % 7}`, `value-${i}`, BigInt(i % 3) * 1000n);
  del(st, "key/3");
  txn(st, (w) => {
    w.put(new Uint8Array([0xff, 0x00]), new Uint8Array(300).fill(0xaa), -1n);
    w.deleteRange(b("key/5"), undefined);
    w.put(b("key/5"), b("reborn"), 0n);
  });
  put(st, "k".repeat(5000), "long key");
  for (let i = 0; i < 60; i++) put(st, `leased/${i % 13}`, "x".repeat(i % 37), 7n);
  put(st, "big", "z".repeat(100_000));
  st.compact(20);
  put(st, "after", "compaction");
  const data = st.encodeSnapshot();
  const copy = MvccStore.decodeSnapshot(data);

  await t.step("same state at every revision", () => {
    assertEquals(copy.currentRevision, st.currentRevision);
    assertEquals(copy.compactRevision, 20);
    assertEquals(copy.keyCount(), st.keyCount());
    assertEquals(copy.approximateBytes(), st.approximateBytes());
    for (let rev = 20; rev <= st.currentRevision; rev++) {
      assertEquals(
        copy.range(ALL, ALL, { revision: rev }),
        st.range(ALL, ALL, { revision: rev }),
        `rev ${rev}`,
      );
    }
    assertEquals(copy.eventsBetween(ALL, ALL, 20, 1000), st.eventsBetween(ALL, ALL, 20, 1000));
    assertEquals(copy.hashKV(0), st.hashKV(0));
    assertEquals(copy.encodeSnapshot(), data);
  });
  await t.step("same behaviour afterwards", () => {
    for (const x of [st, copy]) {
      put(x, "key/1", "next");
      del(x, "key/2");
      x.compact(x.currentRevision - 1);
    }
    assertEquals(copy.encodeSnapshot(), st.encodeSnapshot());
    assertEquals(kvs(copy.range(b("key/1"), undefined).kvs), kvs(st.range(b("key/1"), undefined).kvs));
  });
  await t.step("streamed in chunks: the same bytes, one chunk of memory at a time", () => {
    const data = st.encodeSnapshot();
    for (let chunk = 4096; chunk < 4096 + 80; chunk++) {
      const image = st.snapshotImage(chunk);
      assertEquals(image.size, data.length);
      const out = new Uint8Array(image.size);
      let pos = 0;
      let buffers = 0;
      let last: ArrayBufferLike | undefined;
      for (const c of image.chunks()) {
        // larger than the chunk only for a key or value that does not fit one
        assert(c.length <= chunk || c.length === 100_000 || c.length === 5000, `chunk of ${c.length}`);
        if (c.length <= chunk && c.buffer !== last) {
          buffers++;
          last = c.buffer;
        }
        out.set(c, pos);
        pos += c.length;
      }
      assertEquals(pos, data.length);
      assert(compareBytes(out, data) === 0, `chunk size ${chunk}: other bytes`);
      assertEquals(buffers, 1, "the chunk buffer is reused");
    }
  });
  await t.step("the snapshot buffer is not aliased", () => {
    const buf = st.encodeSnapshot();
    const fresh = MvccStore.decodeSnapshot(buf);
    buf.fill(0);
    assertEquals(fresh.encodeSnapshot(), st.encodeSnapshot());
  });
  await t.step("empty store", () => {
    const e = MvccStore.decodeSnapshot(new MvccStore().encodeSnapshot());
    assertEquals(e.currentRevision, 1);
    assertEquals(e.range(ALL, ALL).count, 0);
    assertEquals(put(e, "a", "b"), 2);
  });
  await t.step("corrupt input is refused", () => {
    const corrupt = assertThrows(
      () => MvccStore.decodeSnapshot(new Uint8Array([1, 2, 3])),
      ErrSnapshotCorrupt,
    );
    assertEquals(corrupt.code, "SNAPSHOT_CORRUPT");
    assertThrows(() => MvccStore.decodeSnapshot(data.subarray(0, data.length - 1)), ErrSnapshotCorrupt);
    const extra = new Uint8Array(data.length + 1);
    extra.set(data);
    assertThrows(() => MvccStore.decodeSnapshot(extra), ErrSnapshotCorrupt);
    const badVersion = data.slice();
    badVersion[4] = 99;
    assertThrows(() => MvccStore.decodeSnapshot(badVersion), ErrSnapshotCorrupt);
  });
});

Deno.test("many keys: leaf splits, big compaction, value relocation", () => {
  const st = new MvccStore();
  const n = 5000;
  const w = st.write();
  for (let i = 0; i < n; i++) w.put(b(`k${String(i).padStart(5, "0")}`), b(`v${i}`.repeat(20)), 0n);
  w.end();
  for (let round = 0; round < 3; round++) {
    const w2 = st.write();
    for (let i = round; i < n; i += 3) {
      w2.put(b(`k${String(i).padStart(5, "0")}`), b(`r${round}`.repeat(30)), 0n);
    }
    w2.end();
  }
  const w3 = st.write();
  assertEquals(w3.deleteRange(b("k02"), b("k04")).length, 2000);
  w3.end();
  assertEquals(st.keyCount(), n - 2000);
  const before = st.range(ALL, ALL);
  st.compact(st.currentRevision);
  const after = st.range(ALL, ALL);
  assertEquals(after, before);
  assertEquals(after.count, 3000);
  assertEquals(s(st.range(b("k04999"), undefined).kvs[0].value), "r1".repeat(30));
  assertEquals(st.range(b("k02"), b("k04"), { countOnly: true }).count, 0);
  // the prefix range still scans correctly after the sorted set was rebuilt
  assertEquals(st.range(b("k01998"), b("k04001")).kvs.map((kv) => s(kv.key)), ["k01998", "k01999", "k04000"]);
  assert(st.memoryBytes() > 0);
});

Deno.test("forEachLeasedKey lists live keys with a lease", () => {
  const st = new MvccStore();
  put(st, "a", "1", 5n);
  put(st, "b", "1", 6n);
  put(st, "c", "1");
  put(st, "b", "2", 7n);
  put(st, "d", "1", 5n);
  del(st, "d");
  txn(st, (w) => w.put(new Uint8Array([0xff]), b("x"), 9n));
  const seen: [string, bigint][] = [];
  st.forEachLeasedKey((k, l) => seen.push([k, l]));
  assertEquals(seen, [["a", 5n], ["b", 7n], ["\xff", 9n]]);
});

/** Reads a view's image chunk by chunk, calling `between` after each chunk (the store moving on). */
function readView(image: { size: number; chunks(): Iterable<Uint8Array> }, between: () => void): Uint8Array {
  const out = new Uint8Array(image.size);
  let pos = 0;
  for (const c of image.chunks()) {
    out.set(c, pos);
    pos += c.length;
    between();
  }
  assertEquals(pos, image.size);
  return out;
}

Deno.test("snapshot view: the image of its moment while the store moves on", async (t) => {
  const dir = Deno.makeTempDirSync();
  try {
    for (const history of [false, true]) {
      await t.step(history ? "with a history file" : "in memory", () => {
        const st = new MvccStore(history ? { historyFile: `${dir}/history`, historySegmentBytes: 1 } : {});
        try {
          for (let i = 0; i < 400; i++) put(st, `k/${i % 50}`, `v${i}-`.repeat(1 + (i % 40)));
          put(st, "big", "B".repeat(200_000));
          del(st, "k/7");
          const want = st.encodeSnapshot();
          const view = st.snapshotView(4096);
          let step = 0;
          const got = readView(view.image, () => {
            // overwrites demote values, deletes free them, compactions move entries, drop slabs and trim
            // the history file, a big value takes a slab of its own
            step++;
            put(st, `k/${step % 50}`, `w${step}-`.repeat(1 + (step % 30)));
            if (step % 5 === 0) del(st, `k/${(step * 7) % 50}`);
            if (step % 9 === 0) put(st, "big", String(step).repeat(100_000));
            if (step % 4 === 0) st.compact(st.currentRevision);
          });
          assert(step > 10, `only ${step} chunks`);
          assert(compareBytes(got, want) === 0, "the view's image is the store's image when it was taken");
          view.release();
          view.release(); // idempotent
          assertThrows(() => [...view.image.chunks()], ErrTxnState);
          // what was put off while the view was open works afterwards
          st.compact(st.currentRevision);
          const after = MvccStore.decodeSnapshot(st.encodeSnapshot());
          assertEquals(dump(after), dump(st));
          // the next views copy their entries into the buffer the released one gave back, and two views
          // open at once do not share one
          const want2 = st.encodeSnapshot();
          const second = st.snapshotView(4096);
          put(st, "k/1", "after the second view");
          st.compact(st.currentRevision); // moves the live entries: a third copy into the same buffer would differ
          const want3 = st.encodeSnapshot();
          const third = st.snapshotView(4096);
          put(st, "k/2", "after the third view");
          st.compact(st.currentRevision);
          assert(compareBytes(collect(second.image), want2) === 0, "second view");
          second.release();
          put(st, "k/3", "after the second view's release");
          assert(compareBytes(collect(third.image), want3) === 0, "third view");
          third.release();
        } finally {
          st.close();
        }
      });
    }

    await t.step("the arena's emptied current slab is not reused under a view", () => {
      const st = new MvccStore({ historyFile: `${dir}/history` });
      try {
        put(st, "a", "first value");
        const want = st.encodeSnapshot();
        const view = st.snapshotView();
        del(st, "a"); // the value moves to the history file: the current slab is empty
        put(st, "b", "other bytes"); // ... and would be written from its start
        assert(compareBytes(collect(view.image), want) === 0);
        view.release();
      } finally {
        st.close();
      }
    });

    await t.step("a history file emptied by compaction waits for the view", () => {
      const st = new MvccStore({ historyFile: `${dir}/history` });
      try {
        for (let i = 0; i < 20; i++) put(st, `k${i}`, `old-${i}`);
        for (let i = 0; i < 20; i++) put(st, `k${i}`, `new-${i}`); // the old values are in the file
        const want = st.encodeSnapshot();
        const view = st.snapshotView();
        st.compact(st.currentRevision); // frees every value in the file: it would be emptied
        for (let i = 0; i < 20; i++) put(st, `k${i}`, `xxx-${i}`); // ... and rewritten from position 0
        assert(compareBytes(collect(view.image), want) === 0);
        view.release();
      } finally {
        st.close();
      }
    });

    await t.step("closing the store waits for the view", () => {
      const st = new MvccStore({ historyFile: `${dir}/history` });
      put(st, "k", "one");
      put(st, "k", "two");
      const want = st.encodeSnapshot();
      const view = st.snapshotView();
      st.close();
      assert(compareBytes(collect(view.image), want) === 0);
      view.release(); // closes the file (the test's resource sanitizer checks it)
    });

    await t.step("nothing of a released view stays held", () => {
      const st = new MvccStore();
      for (let i = 0; i < 1000; i++) put(st, `k${i % 10}`, "v");
      const before = st.memoryBytes();
      st.snapshotView().release();
      assertEquals(st.memoryBytes(), before);
    });

    await t.step("not during a write transaction", () => {
      const st = new MvccStore();
      const w = st.write();
      assertThrows(() => st.snapshotView(), ErrTxnState);
      w.abort();
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

function collect(image: { size: number; chunks(): Iterable<Uint8Array> }): Uint8Array {
  return readView(image, () => {});
}

Deno.test("deleteRange copies the deleted values only when asked or when events are recorded", () => {
  const st = new MvccStore();
  const w0 = st.write();
  w0.put(b("a"), b("1"), 7n);
  w0.put(b("b"), b("22"), 0n);
  w0.put(b("c"), b("333"), 0n);
  w0.end();
  // nobody watches and the client did not ask for them: keys, leases and revisions, no values
  const quiet = st.write({ events: false });
  const bare = quiet.deleteRange(b("a"), b("c"), false);
  quiet.end();
  assertEquals(kvs(bare), ["a=@2/2/v1", "b=@2/2/v1"]);
  assertEquals(bare.map((kv) => kv.lease), [7n, 0n]);
  assertEquals(st.range(ALL, ALL).count, 1);
  // asked for: the values, with or without events
  const asked = st.write({ events: false });
  assertEquals(kvs(asked.deleteRange(b("c"), undefined, true)), ["c=333@2/2/v1"]);
  asked.abort();
  // events recorded: the values, for the events' prevKv, whatever the caller asked
  const watched = st.write();
  assertEquals(kvs(watched.deleteRange(b("c"), undefined, false)), ["c=333@2/2/v1"]);
  assertEquals(ev(watched.end().events), ["del c@4 prev=333@2"]);
});

Deno.test("events without previous kvs: nothing of the old values copied, unless the caller asks", () => {
  const st = new MvccStore();
  put(st, "a", "1");
  put(st, "b", "2");
  const w = st.write({ prevKvs: false });
  assertEquals(w.put(b("a"), b("10"), 0n, false), undefined);
  assertEquals(kvs([w.put(b("b"), b("20"), 0n, true)!]), ["b=2@3/3/v1"]);
  assertEquals(kvs(w.deleteRange(b("a"), undefined, false)), ["a=@2/4/v2"]);
  const { events } = w.end();
  // the put whose caller asked for its previous kv carries it in its event too
  assertEquals(ev(events), ["put a=10@2/4/v2", "put b=20@3/4/v2 prev=2@3", "del a@4"]);
  assertEquals(kvs(st.range(ALL, ALL).kvs), ["b=20@3/4/v2"]);
});

Deno.test("a compaction in steps, with writes between them, ends where one at once does, memory included", () => {
  const stepped = new MvccStore({ compactStepEntries: 64 });
  const atOnce = new MvccStore({ compactStepEntries: 1 << 30 });
  const both = [stepped, atOnce];
  // 60,000 puts of 100 bytes fill about 6 MB of slabs: 50 keys rewritten all along, and among them 3,000
  // keys written once, whose values stay alive all through the slabs, a tenth of each
  for (let i = 0; i < 60_000; i++) {
    for (const st of both) put(st, i % 20 === 0 ? `c${i / 20}` : `k${i % 50}`, `${i}:`.padEnd(100, "v"));
  }
  for (const st of both) del(st, "k0", "k1");
  const rev = stepped.currentRevision;
  const before = stepped.memoryBytes();
  for (const st of both) st.compact(rev);
  assertEquals(atOnce.compacting, false);
  let steps = 0;
  for (let i = 0; stepped.compacting; i++) {
    if (i % 3 === 0) {
      for (const st of both) put(st, `k${i % 70}`, `later ${i}`);
    }
    stepped.compactStep();
    steps++;
  }
  assert(steps > 100, `${steps} steps`);
  assertEquals(stepped.range(ALL, ALL), atOnce.range(ALL, ALL));
  assertEquals(stepped.encodeSnapshot(), atOnce.encodeSnapshot());
  // the sparse slabs were emptied and given back (the writes between steps land in other slabs than
  // they did after the compaction at once, so the two differ a little)
  const [a, b1] = [stepped.memoryBytes(), atOnce.memoryBytes()];
  assert(a <= b1 * 1.05, `stepped ${a} bytes, at once ${b1}`);
  assert(a * 2 < before, `${before} -> ${a} bytes`);
});
