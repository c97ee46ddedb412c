import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { type KeyValue, type MvccEvent, MvccStore } from "../../storage/mvcc/store.ts";
import { LeaseStore } from "../../storage/lease.ts";
import { Applier, executeRange } from "./apply.ts";
import { Prng } from "../../tests/sim/prng.ts";
import { compareBytes as compareKeys } from "../../storage/mvcc/bytes.ts";
import { GrpcError } from "../transport/status.ts";
import {
  type Compare,
  CompareResult,
  CompareTarget,
  type PutRequest,
  type RangeRequest,
  type RequestOp,
  SortOrder,
  SortTarget,
  type TxnRequest,
} from "../pb/rpc.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string) => enc.encode(s);

function putReq(key: string, value: string, extra: Partial<PutRequest> = {}): PutRequest {
  return {
    key: b(key),
    value: b(value),
    lease: 0n,
    prevKv: false,
    ignoreValue: false,
    ignoreLease: false,
    ...extra,
  };
}

function rangeReq(key: string, end = "", extra: Partial<RangeRequest> = {}): RangeRequest {
  return {
    key: b(key),
    rangeEnd: b(end),
    limit: 0,
    revision: 0,
    sortOrder: 0,
    sortTarget: 0,
    serializable: false,
    keysOnly: false,
    countOnly: false,
    minModRevision: 0,
    maxModRevision: 0,
    minCreateRevision: 0,
    maxCreateRevision: 0,
    ...extra,
  };
}

function cmp(key: string, target: number, result: number, v: Partial<Compare>): Compare {
  return {
    key: b(key),
    rangeEnd: new Uint8Array(0),
    target,
    result,
    version: 0,
    createRevision: 0,
    modRevision: 0,
    value: new Uint8Array(0),
    lease: 0n,
    ...v,
  };
}

function fresh(): Applier {
  return new Applier(new MvccStore(), new LeaseStore());
}

const keys = (a: Applier, r: RangeRequest) => a.range(r).kvs.map((kv) => dec.decode(kv.key));

Deno.test("put: revisions, versions, prev_kv", () => {
  const a = fresh();
  assertEquals(a.put(putReq("a", "1")).response.header.revision, 2);
  const second = a.put(putReq("a", "2", { prevKv: true })).response;
  assertEquals(second.header.revision, 3);
  assertEquals(dec.decode(second.prevKv!.value), "1");
  const kv = a.range(rangeReq("a")).kvs[0];
  assertEquals([kv.createRevision, kv.modRevision, kv.version], [2, 3, 2]);
});

Deno.test("put: ignore_value keeps the value, missing key is refused, unknown lease is refused", () => {
  const a = fresh();
  a.put(putReq("a", "keep"));
  a.put(putReq("a", "", { ignoreValue: true }));
  assertEquals(dec.decode(a.range(rangeReq("a")).kvs[0].value), "keep");
  assertThrows(
    () => a.put(putReq("nope", "", { ignoreValue: true })),
    GrpcError,
    "etcdserver: key not found",
  );
  assertThrows(
    () => a.put(putReq("x", "1", { lease: 42n })),
    GrpcError,
    "etcdserver: requested lease not found",
  );
  a.leases.grant(42n, 10);
  a.put(putReq("x", "1", { lease: 42n }));
  assertEquals([...a.leases.lookup(42n)!.keys], ["x"]);
});

Deno.test("range: sort, limit with more, count, revision filters", () => {
  const a = fresh();
  for (const [k, v] of [["a", "3"], ["b", "1"], ["c", "2"], ["a", "4"]]) a.put(putReq(k, v));
  const all = rangeReq("\0", "\0");
  assertEquals(keys(a, { ...all, sortTarget: SortTarget.VALUE, sortOrder: SortOrder.ASCEND }), [
    "b",
    "c",
    "a",
  ]);
  assertEquals(keys(a, { ...all, sortTarget: SortTarget.MOD, sortOrder: SortOrder.DESCEND }), [
    "a",
    "c",
    "b",
  ]);
  // a non-key target without an order sorts ascending
  assertEquals(keys(a, { ...all, sortTarget: SortTarget.VERSION }), ["b", "c", "a"]);
  const limited = a.range({ ...all, limit: 2 });
  assertEquals([limited.kvs.length, limited.more, limited.count], [2, true, 3]);
  assertEquals(keys(a, { ...all, minModRevision: 4 }), ["a", "c"]);
  assertEquals(keys(a, { ...all, maxCreateRevision: 3 }), ["a", "b"]);
  const counted = a.range({ ...all, countOnly: true });
  assertEquals([counted.kvs.length, counted.count], [0, 3]);
  assertEquals(a.range({ ...all, keysOnly: true }).kvs[0].value.length, 0);
});

Deno.test("range: future and compacted revisions map to etcd's errors", () => {
  const a = fresh();
  a.put(putReq("a", "1"));
  a.put(putReq("a", "2"));
  assertThrows(
    () => a.range(rangeReq("a", "", { revision: 9 })),
    GrpcError,
    "required revision is a future revision",
  );
  a.compact({ revision: 3, physical: false });
  assertThrows(
    () => a.range(rangeReq("a", "", { revision: 2 })),
    GrpcError,
    "required revision has been compacted",
  );
  assertThrows(() => a.compact({ revision: 3, physical: false }), GrpcError, "has been compacted");
});

Deno.test("txn: compares on missing keys; value compares always fail on them", () => {
  const a = fresh();
  const t = (compare: Compare[]): TxnRequest => ({
    compare,
    success: [{ requestPut: putReq("s", "1") }],
    failure: [],
  });
  assert(a.txn(t([cmp("m", CompareTarget.VERSION, CompareResult.EQUAL, { version: 0 })])).response.succeeded);
  assert(
    !a.txn(t([cmp("m", CompareTarget.VALUE, CompareResult.EQUAL, { value: b("") })])).response.succeeded,
  );
  assert(
    a.txn(t([cmp("s", CompareTarget.CREATE, CompareResult.GREATER, { createRevision: 0 })])).response
      .succeeded,
  );
});

Deno.test("txn: one revision for all writes; sub-response headers as etcd fills them", () => {
  const a = fresh();
  a.put(putReq("x", "0"));
  const ops: RequestOp[] = [
    { requestRange: rangeReq("x") },
    { requestPut: putReq("x", "1") },
    { requestPut: putReq("y", "1") },
    { requestRange: rangeReq("x") },
  ];
  const { response, events } = a.txn({ compare: [], success: ops, failure: [] });
  assertEquals(response.header.revision, 3);
  assertEquals(events.length, 2);
  assertEquals(response.responses[0].responseRange!.header.revision, 2);
  assertEquals(response.responses[1].responsePut!.header.revision, 3);
  assertEquals(dec.decode(response.responses[3].responseRange!.kvs[0].value), "1");
  assertEquals(response.responses[3].responseRange!.header.revision, 3);
});

Deno.test("txn: nested txn takes its own branch, decided before any write", () => {
  const a = fresh();
  a.put(putReq("k", "old"));
  const inner: TxnRequest = {
    compare: [cmp("k", CompareTarget.VALUE, CompareResult.EQUAL, { value: b("old") })],
    success: [{ requestPut: putReq("inner", "saw-old") }],
    failure: [{ requestPut: putReq("inner", "saw-new") }],
  };
  const { response } = a.txn({
    compare: [],
    success: [{ requestPut: putReq("k", "new") }, { requestTxn: inner }],
    failure: [],
  });
  assert(response.responses[1].responseTxn!.succeeded);
  assertEquals(dec.decode(a.range(rangeReq("inner")).kvs[0].value), "saw-old");
});

Deno.test("txn: a failing op on the taken path leaves no trace", () => {
  const a = fresh();
  assertThrows(
    () =>
      a.txn({
        compare: [],
        success: [{ requestPut: putReq("a", "1") }, { requestPut: putReq("b", "1", { lease: 7n }) }],
        failure: [],
      }),
    GrpcError,
    "requested lease not found",
  );
  assertEquals(a.range(rangeReq("a")).kvs.length, 0);
  assertEquals(a.mvcc.currentRevision, 1);
});

Deno.test("lease revoke deletes the attached keys in one revision", () => {
  const a = fresh();
  a.leases.grant(5n, 10);
  a.put(putReq("l1", "v", { lease: 5n }));
  a.put(putReq("l2", "v", { lease: 5n }));
  a.put(putReq("free", "v"));
  const { response: rev, events } = a.revokeLease(5n);
  assertEquals(rev, 5);
  assertEquals(events.map((e) => [e.type, dec.decode(e.kv.key)]), [["delete", "l1"], ["delete", "l2"]]);
  assertEquals(keys(a, rangeReq("\0", "\0")), ["free"]);
  assertEquals(a.leases.lookup(5n), undefined);
});

Deno.test("without watchers: no events, the same responses, state and lease bookkeeping", () => {
  let watching = false;
  const quiet = new Applier(new MvccStore(), new LeaseStore(), () => ({ events: watching }));
  const loud = fresh();
  for (const a of [quiet, loud]) {
    a.leases.grant(5n, 10);
    a.leases.grant(6n, 10);
  }
  const steps: ((a: Applier) => { response: unknown; events: MvccEvent[] })[] = [
    (a) => a.put(putReq("k", "1", { lease: 5n })),
    (a) => a.put(putReq("k", "2", { lease: 6n, prevKv: true })),
    (a) => a.put(putReq("k", "3", { prevKv: true })),
    (a) => a.put(putReq("k", "4", { lease: 5n })),
    (a) => a.put(putReq("j", "1", { lease: 5n, prevKv: true })),
    (a) => a.deleteRange({ key: enc.encode("j"), rangeEnd: new Uint8Array(0), prevKv: true }),
    (a) => a.txn({ compare: [], success: [{ requestPut: putReq("t", "x", { lease: 6n }) }], failure: [] }),
  ];
  for (const [i, step] of steps.entries()) {
    const q = step(quiet);
    const l = step(loud);
    assertEquals(q.response, l.response, `step ${i}`);
    assertEquals(q.events, [], `step ${i}: events`);
    assert(l.events.length > 0, `step ${i}: events with watchers`);
  }
  for (const a of [quiet, loud]) {
    assertEquals([...a.leases.lookup(5n)!.keys], ["k"]);
    assertEquals([...a.leases.lookup(6n)!.keys], ["t"]);
  }
  assertEquals(quiet.mvcc.encodeSnapshot(), loud.mvcc.encodeSnapshot());
  // as soon as someone watches, events come back
  watching = true;
  const { events } = quiet.put(putReq("k", "5", { lease: 6n }));
  assertEquals(events.map((e) => [e.type, dec.decode(e.kv.value), dec.decode(e.prevKv!.value)]), [[
    "put",
    "5",
    "4",
  ]]);
  assertEquals([...quiet.leases.lookup(5n)!.keys], []);
  assertEquals(quiet.revokeLease(6n).events.length, 2);
});

Deno.test("range: every sort, limit and filter as sorting all kvs would answer; values read only for those kept", () => {
  const rng = new Prng(11);
  const st = new MvccStore();
  for (let i = 0; i < 400; i++) {
    const w = st.write();
    const k = b(`k${String(rng.int(150)).padStart(3, "0")}`);
    if (rng.chance(0.1)) w.deleteRange(k, undefined);
    else w.put(k, b("v".repeat(rng.int(40)) + i), 0n);
    w.end();
  }
  // counts the value bytes the range hands out
  let valueBytes = 0;
  const reader = {
    range: (...args: Parameters<MvccStore["range"]>) => {
      const res = st.range(...args);
      for (const kv of res.kvs) valueBytes += kv.value.length;
      return res;
    },
  };
  const byTarget = [
    (x: KeyValue, y: KeyValue) => compareKeys(x.key, y.key),
    (x: KeyValue, y: KeyValue) => x.version - y.version,
    (x: KeyValue, y: KeyValue) => x.createRevision - y.createRevision,
    (x: KeyValue, y: KeyValue) => x.modRevision - y.modRevision,
    (x: KeyValue, y: KeyValue) => compareKeys(x.value, y.value),
  ];
  for (let round = 0; round < 400; round++) {
    const r = rangeReq("k0", rng.chance(0.2) ? "\0" : `k${rng.int(160)}`, {
      limit: rng.chance(0.3) ? 0 : 1 + rng.int(20),
      revision: rng.chance(0.5) ? 0 : 200 + rng.int(st.currentRevision - 199),
      sortOrder: rng.int(3),
      sortTarget: rng.int(5),
      keysOnly: rng.chance(0.2),
      minModRevision: rng.chance(0.2) ? 100 + rng.int(200) : 0,
      maxCreateRevision: rng.chance(0.2) ? 100 + rng.int(300) : 0,
    });
    // the reference: every kv with its value, filtered, sorted (stable, from key order), cut at the limit;
    // as in etcd 3.4, a range without an order reads only one kv past its limit before sorting by a target
    const at = st.range(r.key, r.rangeEnd, { revision: r.revision });
    const filtered = r.minModRevision !== 0 || r.maxCreateRevision !== 0;
    let want = at.kvs.filter((kv) =>
      (r.minModRevision === 0 || kv.modRevision >= r.minModRevision) &&
      (r.maxCreateRevision === 0 || kv.createRevision <= r.maxCreateRevision)
    );
    if (r.sortOrder === SortOrder.NONE && !filtered && r.limit > 0) want = want.slice(0, r.limit + 1);
    const order = r.sortTarget !== SortTarget.KEY && r.sortOrder === SortOrder.NONE
      ? SortOrder.ASCEND
      : r.sortOrder;
    const by = byTarget[r.sortTarget];
    if (order === SortOrder.ASCEND) want = want.slice().sort(by);
    if (order === SortOrder.DESCEND) want = want.slice().sort((x, y) => by(y, x));
    const more = r.limit > 0 && want.length > r.limit;
    if (r.limit > 0) want = want.slice(0, r.limit);
    valueBytes = 0;
    const got = executeRange(reader, r, st.currentRevision);
    const what = Deno.inspect({ ...r, key: undefined });
    assertEquals(
      got.kvs.map((kv) => [dec.decode(kv.key), kv.modRevision, dec.decode(kv.value)]),
      want.map((kv) => [dec.decode(kv.key), kv.modRevision, r.keysOnly ? "" : dec.decode(kv.value)]),
      what,
    );
    assertEquals([got.more, got.count], [more, at.count], what);
    // values are read for what is answered (and one kv past a limit, read to set `more`), and for a sort by
    // value; none for the kvs a limit cuts away (no value here is longer than 64 bytes)
    if (r.sortTarget !== SortTarget.VALUE) {
      const answered = got.kvs.reduce((n, kv) => n + kv.value.length, 0);
      assert(valueBytes <= answered + 64, `${what}: ${valueBytes} value bytes read for ${answered}`);
    }
  }
});
