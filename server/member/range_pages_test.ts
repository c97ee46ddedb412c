import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { MvccStore } from "../../storage/mvcc/store.ts";
import {
  decodeRangeResponse,
  encodeRangeResponse,
  type RangeRequest,
  type ResponseHeader,
  SortOrder,
  SortTarget,
} from "../pb/rpc.ts";
import { Applier, listedOrder } from "./apply.ts";
import { LeaseStore } from "../../storage/lease.ts";
import {
  encodedRange,
  FIRST_PAGE_KVS,
  MAX_PAGE_KVS,
  PAGE_BYTES,
  type RangePagesSource,
} from "./range_pages.ts";
import { SORT_STEP, sortInSteps, turnsToSort } from "./sort_in_steps.ts";
import { GrpcError, Status } from "../transport/status.ts";
import { rangeRequest } from "../api/lock.ts";
import { MessageParts } from "../transport/grpc.ts";

const te = new TextEncoder();
const td = new TextDecoder();

function put(st: MvccStore, key: string, value: string): void {
  const w = st.write();
  w.put(te.encode(key), te.encode(value), 0n);
  w.end();
}

/** 3,000 keys k/0000..k/2999, values of 1-2,000 bytes, some keys written twice. */
function filled(): MvccStore {
  const st = new MvccStore();
  for (let i = 0; i < 3000; i++) {
    put(st, `k/${String(i).padStart(4, "0")}`, "v".repeat(1 + ((i * 37) % 2000)));
  }
  for (let i = 0; i < 3000; i += 7) put(st, `k/${String(i).padStart(4, "0")}`, `again ${i}`);
  return st;
}

function request(over: Partial<RangeRequest>): RangeRequest {
  return rangeRequest({ key: te.encode("k/"), rangeEnd: te.encode("k0"), ...over });
}

/** Fails with the first byte where `got` and `want` differ (a diff of megabytes would take minutes). */
function assertSameBytes(answer: Uint8Array | MessageParts, want: Uint8Array, what = ""): void {
  const got = answer instanceof MessageParts ? answer.join() : answer;
  let at = 0;
  while (at < got.length && at < want.length && got[at] === want[at]) at++;
  if (at === got.length && at === want.length) return;
  throw new Error(`${what}: ${got.length} bytes against ${want.length}, the first difference at byte ${at}`);
}

/** A source over `holder.store`; `between` runs at every turn let go. */
function source(holder: { store: MvccStore }, between: (turn: number) => void = () => {}) {
  const src = {
    turns: 0,
    store: () => holder.store,
    rangeAtOnce: (r: RangeRequest) => {
      const resp = new Applier(holder.store, new LeaseStore()).range(r);
      resp.header = src.header(resp.header.revision);
      return resp;
    },
    header: (revision: number): ResponseHeader => ({ clusterId: 7n, memberId: 9n, revision, raftTerm: 3 }),
    nextTurn: () => {
      between(++src.turns);
      return Promise.resolve();
    },
  };
  return src satisfies RangePagesSource;
}

Deno.test("range pages: the same bytes as the range read in one go", async () => {
  const holder = { store: filled() };
  const shapes: Partial<RangeRequest>[] = [
    {},
    { limit: 1000 },
    { limit: 10_000 },
    { limit: FIRST_PAGE_KVS + 1 },
    { keysOnly: true },
    { rangeEnd: new Uint8Array([0]) },
    { sortOrder: SortOrder.ASCEND },
    { revision: 2000 },
    { sortOrder: SortOrder.DESCEND },
    { sortOrder: SortOrder.DESCEND, limit: 1000 },
    { sortOrder: SortOrder.DESCEND, keysOnly: true, revision: 2000 },
    { sortOrder: SortOrder.DESCEND, rangeEnd: new Uint8Array([0]) },
    // chosen in one read without values, their values read in pages
    { sortTarget: SortTarget.MOD },
    { sortTarget: SortTarget.MOD, sortOrder: SortOrder.DESCEND },
    { sortTarget: SortTarget.CREATE, sortOrder: SortOrder.ASCEND, limit: 1000 },
    { sortTarget: SortTarget.VERSION, sortOrder: SortOrder.DESCEND, keysOnly: true },
    { minModRevision: 100 },
    { minModRevision: 3000, maxModRevision: 3300 },
    { minCreateRevision: 100, sortTarget: SortTarget.MOD, sortOrder: SortOrder.DESCEND, revision: 2000 },
    { sortTarget: SortTarget.MOD, limit: 10 },
    { sortTarget: SortTarget.VERSION, limit: 300 },
    { minModRevision: 3000, sortOrder: SortOrder.DESCEND },
    { minCreateRevision: 2990 },
    { minCreateRevision: 10, maxCreateRevision: 20, keysOnly: true },
    // chosen by value: the range read in pages with its values
    { sortTarget: SortTarget.VALUE },
    { sortTarget: SortTarget.VALUE, sortOrder: SortOrder.DESCEND, limit: 10 },
    { sortTarget: SortTarget.VALUE, sortOrder: SortOrder.ASCEND, keysOnly: true, limit: 300 },
    { sortTarget: SortTarget.VALUE, sortOrder: SortOrder.DESCEND, revision: 2000, minModRevision: 500 },
    // not paged: answered in one go as before
    { limit: 10 },
    { sortOrder: SortOrder.DESCEND, limit: 10 },
    { countOnly: true },
    { countOnly: true, sortTarget: SortTarget.MOD, sortOrder: SortOrder.DESCEND },
    { key: te.encode("k/0001"), rangeEnd: new Uint8Array(0) },
  ];
  for (const shape of shapes) {
    const src = source(holder);
    const r = request(shape);
    const got = await encodedRange(src, r);
    assertSameBytes(got, encodeRangeResponse(src.rangeAtOnce(r)), Deno.inspect(shape));
  }
});

Deno.test("range pages: a long range sorted or filtered is sorted in steps, to the same bytes", async () => {
  // (the turns it takes: "keys alone go at most MAX_PAGE_KVS to a page" below)
  // more kvs than one sort step, with ties in every order: values repeat, and a third of the keys were
  // written again (versions 1 and 2, mod revisions out of key order)
  const st = new MvccStore();
  const n = 2 * SORT_STEP + 1500;
  const key = (i: number) => `k/${String(i).padStart(5, "0")}`;
  for (let i = 0; i < n; i++) put(st, key(i), `v${(i * 7919) % 300}`);
  for (let i = n - 1; i >= 0; i -= 3) put(st, key(i), `w${i % 50}`);
  const holder = { store: st };
  const shapes: Partial<RangeRequest>[] = [
    { sortTarget: SortTarget.MOD },
    { sortTarget: SortTarget.MOD, sortOrder: SortOrder.DESCEND, keysOnly: true },
    { sortTarget: SortTarget.CREATE, sortOrder: SortOrder.DESCEND, limit: 5000 },
    { sortTarget: SortTarget.VERSION, sortOrder: SortOrder.ASCEND },
    { sortTarget: SortTarget.VERSION, sortOrder: SortOrder.DESCEND },
    { sortTarget: SortTarget.VALUE },
    { sortTarget: SortTarget.VALUE, sortOrder: SortOrder.DESCEND, limit: 300 },
    { minModRevision: 2, sortTarget: SortTarget.MOD, sortOrder: SortOrder.DESCEND },
    { minCreateRevision: 100, sortOrder: SortOrder.DESCEND },
    { maxModRevision: n, sortTarget: SortTarget.VALUE, sortOrder: SortOrder.ASCEND, revision: n + 2000 },
  ];
  for (const shape of shapes) {
    const src = source(holder);
    const r = request(shape);
    const got = await encodedRange(src, r);
    assertSameBytes(got, encodeRangeResponse(src.rangeAtOnce(r)), Deno.inspect(shape));
  }
});

Deno.test("range pages: by key descending, the ascending range backwards, read from its end", async () => {
  const holder = { store: filled() };
  // the reference: every kv of the range in key order, as the store reads it, turned around
  const all = holder.store.range(te.encode("k/"), te.encode("k0")).kvs;
  const backwards = all.slice().reverse();
  for (const [limit, rev] of [[0, 0], [1000, 0], [10, 0], [FIRST_PAGE_KVS + 1, 0], [0, 2000]]) {
    const src = source(holder);
    const r = request({ sortOrder: SortOrder.DESCEND, sortTarget: SortTarget.KEY, limit, revision: rev });
    const answer = await encodedRange(src, r);
    const got = decodeRangeResponse(answer instanceof MessageParts ? answer.join() : answer);
    const at = rev === 0 ? backwards : holder.store.range(te.encode("k/"), te.encode("k0"), { revision: rev })
      .kvs.reverse();
    const want = limit > 0 ? at.slice(0, limit) : at;
    assertEquals(got.kvs.length, want.length, `limit ${limit} at ${rev}`);
    for (let i = 0; i < want.length; i++) {
      if (
        td.decode(got.kvs[i].key) !== td.decode(want[i].key) || got.kvs[i].modRevision !== want[i].modRevision
      ) {
        throw new Error(`limit ${limit} at ${rev}: kv ${i} is ${td.decode(got.kvs[i].key)}`);
      }
    }
    assertEquals([got.count, got.more], [at.length, limit > 0 && at.length > limit]);
    // a long one goes in pages like an ascending one; a short one, or the last ten, in one go
    assertEquals(src.turns > 0, want.length > FIRST_PAGE_KVS, `limit ${limit}`);
  }
});

Deno.test("range pages: a long range lets the event loop go between pages of about PAGE_BYTES", async () => {
  const holder = { store: filled() };
  const src = source(holder);
  const answer = await encodedRange(src, request({}));
  assert(answer instanceof MessageParts, "a long range is handed over in parts");
  const got = answer.join();
  // about 3 MB of values: several pages, and none much larger than aimed at
  assert(
    src.turns >= Math.floor(got.length / (2 * PAGE_BYTES)),
    `${src.turns} turns for ${got.length} bytes`,
  );
  assert(src.turns <= Math.ceil(got.length / (PAGE_BYTES / 4)), `${src.turns} turns for ${got.length} bytes`);
  // a range that fits in the first page is read in one go
  const small = source(holder);
  await encodedRange(small, request({ key: te.encode("k/01"), rangeEnd: te.encode("k/02") }));
  assertEquals(small.turns, 0);
});

Deno.test("range pages: writes between the pages do not show, the answer is of its first revision", async () => {
  for (
    const shape of [
      {},
      { sortTarget: SortTarget.MOD, sortOrder: SortOrder.DESCEND },
      { minModRevision: 50 },
      { sortTarget: SortTarget.VALUE, limit: 5 },
    ]
  ) {
    const holder = { store: filled() };
    const expected = encodeRangeResponse(source(holder).rangeAtOnce(request(shape)));
    const src = source(holder, (turn) => {
      put(holder.store, `k/${String(turn * 13).padStart(4, "0")}`, `changed ${turn}`);
      put(holder.store, `k/1234x${turn}`, "a new key");
      const w = holder.store.write();
      w.deleteRange(te.encode(`k/${String(2999 - turn).padStart(4, "0")}`), undefined);
      w.end();
    });
    assertSameBytes(await encodedRange(src, request(shape)), expected, Deno.inspect(shape));
    assert(src.turns > 2, `${Deno.inspect(shape)}: ${src.turns} turns`);
  }
});

Deno.test("range pages: a client gone stops the pages", async () => {
  const holder = { store: filled() };
  const call = new AbortController();
  const src = source(holder, (turn) => {
    if (turn === 2) call.abort(new GrpcError(Status.CANCELLED, "context canceled"));
  });
  const err = await assertRejects(() => encodedRange(src, request({}), call), GrpcError);
  assertEquals([(err as GrpcError).status, src.turns], [Status.CANCELLED, 2]);
});

Deno.test("range pages: compacted past its revision or replaced, the store is read again in one go", async (t) => {
  // in key order, and chosen by revision with the values read page by page
  for (
    const shape of [
      {},
      { sortTarget: SortTarget.MOD, sortOrder: SortOrder.DESCEND },
      { sortTarget: SortTarget.VALUE, limit: 3 },
    ]
  ) {
    const what = Deno.inspect(shape);
    await t.step(`compaction, newest revision asked: read again at the newest (${what})`, async () => {
      const holder = { store: filled() };
      const src = source(holder, (turn) => {
        if (turn !== 1) return;
        put(holder.store, "k/0005", "after the first page");
        holder.store.compact(holder.store.currentRevision);
      });
      const got = await encodedRange(src, request(shape));
      assertSameBytes(got, encodeRangeResponse(src.rangeAtOnce(request(shape))));
    });
    await t.step(`compaction, an older revision asked: refused as compacted (${what})`, async () => {
      const holder = { store: filled() };
      const rev = holder.store.currentRevision - 10;
      const src = source(holder, () => holder.store.compact(holder.store.currentRevision));
      const err = await assertRejects(
        () => encodedRange(src, request({ ...shape, revision: rev })),
        GrpcError,
      );
      assertEquals(err.message, "etcdserver: mvcc: required revision has been compacted");
    });
    await t.step(`a snapshot replaces the store: read from the new one (${what})`, async () => {
      const holder = { store: filled() };
      const next = filled();
      put(next, "k/0003", "from the snapshot");
      const src = source(holder, () => (holder.store = next));
      const got = await encodedRange(src, request(shape));
      assertSameBytes(got, encodeRangeResponse(src.rangeAtOnce(request(shape))));
    });
  }
});

Deno.test("range pages: chosen by revision, a long range lets the event loop go between its pages", async () => {
  const holder = { store: filled() };
  for (const shape of [{ sortTarget: SortTarget.MOD }, { minModRevision: 100 }]) {
    const src = source(holder);
    const answer = await encodedRange(src, request(shape));
    assert(answer instanceof MessageParts, "handed over in parts");
    const got = answer.join();
    assert(
      src.turns >= Math.floor(got.length / (2 * PAGE_BYTES)),
      `${src.turns} turns for ${got.length} bytes`,
    );
    assert(
      src.turns <= Math.ceil(got.length / (PAGE_BYTES / 4)),
      `${src.turns} turns for ${got.length} bytes`,
    );
  }
  // a few sorted by a revision or the version: the store picks them in one scan
  for (
    const shape of [
      { sortTarget: SortTarget.MOD, sortOrder: SortOrder.DESCEND, limit: 1 },
      { sortTarget: SortTarget.VERSION, limit: FIRST_PAGE_KVS },
    ]
  ) {
    const src = source(holder);
    assert(!((await encodedRange(src, request(shape))) instanceof MessageParts), Deno.inspect(shape));
    assertEquals(src.turns, 0, Deno.inspect(shape));
  }
  // a few otherwise chosen from many: the range is read in pages, the few answered in one message
  for (
    const shape of [
      { sortTarget: SortTarget.MOD, limit: 10, minModRevision: 1 },
      { sortTarget: SortTarget.VALUE, sortOrder: SortOrder.DESCEND, limit: 10 },
      { minModRevision: holder.store.currentRevision - 5 },
    ]
  ) {
    const src = source(holder);
    assert(!((await encodedRange(src, request(shape))) instanceof MessageParts), Deno.inspect(shape));
    assert(src.turns >= 1, `${Deno.inspect(shape)}: ${src.turns} turns`);
  }
});

Deno.test("range pages: keys alone go at most MAX_PAGE_KVS to a page, read and answered", async () => {
  const st = new MvccStore();
  for (let i = 0; i < 10_000; i++) put(st, `k/${String(i).padStart(5, "0")}`, "v");
  const holder = { store: st };
  for (const shape of [{ keysOnly: true }, { keysOnly: true, sortTarget: SortTarget.MOD }]) {
    const src = source(holder);
    const answer = await encodedRange(src, request(shape));
    assertSameBytes(answer, encodeRangeResponse(src.rangeAtOnce(request(shape))), Deno.inspect(shape));
    // 10,000 keys of 7 bytes would fit a page of PAGE_BYTES twice over
    const reads = Math.ceil((10_000 - FIRST_PAGE_KVS) / MAX_PAGE_KVS);
    // chosen: read in pages, sorted in steps, then answered in pages, the first in the turn of the choice
    const chosen = shape.sortTarget !== undefined;
    const answers = chosen ? turnsToSort(10_000) + Math.ceil(10_000 / MAX_PAGE_KVS) - 1 : 0;
    assertEquals(src.turns, reads + answers, Deno.inspect(shape));
  }
});

Deno.test("range pages: sorted by a revision or the version as the store sorts, large columns too", async () => {
  const kv = (key: string, modRevision: number, version: number) => ({
    key: te.encode(key),
    createRevision: 1,
    modRevision,
    version,
    value: new Uint8Array(0),
    lease: 0n,
  });
  const big = 2 ** 40;
  const sorted = (kvs: ReturnType<typeof kv>[], shape: Partial<RangeRequest>) =>
    sortInSteps(kvs, listedOrder(request(shape))!, () => Promise.resolve(), 2, 3);
  for (const base of [0, big]) {
    // in key order, with ties
    const kvs = [kv("a", base + 5, 2), kv("b", base + 3, 1), kv("c", base + 5, 2), kv("d", base + 1, 3)];
    const keys = (got: ReturnType<typeof kv>[]) => got.map((x) => td.decode(x.key)).join("");
    const mod = SortTarget.MOD;
    const descend = SortOrder.DESCEND;
    assertEquals(keys(await sorted(kvs, { sortTarget: mod })), "dbac", `from ${base}`);
    assertEquals(keys(await sorted(kvs, { sortTarget: mod, sortOrder: descend })), "acbd", `from ${base}`);
    assertEquals(
      keys(await sorted(kvs, { sortTarget: SortTarget.VERSION, sortOrder: descend })),
      "dacb",
      `from ${base}`,
    );
    assertEquals(
      keys(await sorted(kvs, { sortTarget: SortTarget.CREATE, sortOrder: descend })),
      "abcd",
      `from ${base}`,
    );
  }
  // by key, only a filtered range read in ascending order is sorted, descending
  assertEquals(listedOrder(request({ sortOrder: SortOrder.DESCEND })), undefined);
  assertEquals(listedOrder(request({ minModRevision: 1 })), undefined);
  assertEquals(listedOrder(request({ minModRevision: 1, sortOrder: SortOrder.ASCEND })), undefined);
  const byKeyDown = listedOrder(request({ minModRevision: 1, sortOrder: SortOrder.DESCEND }))!;
  assert(byKeyDown(kv("a", 1, 1), kv("b", 1, 1)) > 0);
});
