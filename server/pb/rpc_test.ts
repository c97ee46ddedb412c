import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import * as pb from "./rpc.ts";
import { ProtobufDecodeError, Writer } from "./wire.ts";
import { loadSchema } from "./gen/main.ts";
import {
  crossCheck,
  hex,
  loadEtcdProtos,
  pbjsEncode,
  prng,
  randomMessage,
  type Reached,
  unhex,
} from "./test_util.ts";

const enc = new TextEncoder();
const b = (s: string): Uint8Array => enc.encode(s);
const EMPTY = new Uint8Array(0);

/** A member ID with the top bit set (uint64 beyond int64). */
const TOP_BIT_ID = 0x8e9e05c52164694dn;
/** The largest lease ID etcd can hand out. */
const MAX_LEASE = 0x7fffffffffffffffn;

const header: pb.ResponseHeader = {
  clusterId: 0xcdf818194e3a8c32n,
  memberId: TOP_BIT_ID,
  revision: 2 ** 40 + 3,
  raftTerm: 9,
};
const zeroHeader: pb.ResponseHeader = { clusterId: 0n, memberId: 0n, revision: 0, raftTerm: 0 };

function kv(key: string, value: string, rev = 5): pb.KeyValue {
  return {
    key: b(key),
    createRevision: rev - 1,
    modRevision: rev,
    version: 2,
    value: b(value),
    lease: MAX_LEASE,
  };
}

const rangeRequest: pb.RangeRequest = {
  key: b("a"),
  rangeEnd: b("z"),
  limit: 10,
  revision: -1,
  sortOrder: pb.SortOrder.DESCEND,
  sortTarget: pb.SortTarget.MOD,
  serializable: true,
  keysOnly: true,
  countOnly: true,
  minModRevision: 1,
  maxModRevision: 2 ** 50,
  minCreateRevision: 3,
  maxCreateRevision: 4,
};
const rangeResponse: pb.RangeResponse = {
  header,
  kvs: [kv("a", "1"), kv("b", "x".repeat(300))],
  more: true,
  count: 2,
};
const putRequest: pb.PutRequest = {
  key: b("foo"),
  value: b("bar"),
  lease: MAX_LEASE,
  prevKv: true,
  ignoreValue: true,
  ignoreLease: true,
};
const putResponse: pb.PutResponse = { header, prevKv: kv("foo", "old") };
const deleteRequest: pb.DeleteRangeRequest = { key: b("a"), rangeEnd: b("\0"), prevKv: true };
const deleteResponse: pb.DeleteRangeResponse = { header, deleted: 2, prevKvs: [kv("a", "1"), kv("b", "2")] };

function compare(target: number, v: Partial<pb.Compare>): pb.Compare {
  return {
    result: pb.CompareResult.NOT_EQUAL,
    target,
    key: b("k"),
    rangeEnd: EMPTY,
    version: 0,
    createRevision: 0,
    modRevision: 0,
    value: EMPTY,
    lease: 0n,
    ...v,
  };
}

const compares: pb.Compare[] = [
  compare(pb.CompareTarget.VERSION, { result: pb.CompareResult.EQUAL }), // version 0 still on the wire
  compare(pb.CompareTarget.CREATE, { createRevision: 7, rangeEnd: b("kz") }),
  compare(pb.CompareTarget.MOD, { modRevision: -1, result: pb.CompareResult.LESS }),
  // an empty value, still on the wire
  compare(pb.CompareTarget.VALUE, { value: EMPTY, result: pb.CompareResult.GREATER }),
  compare(pb.CompareTarget.LEASE, { lease: MAX_LEASE }),
];

const txnRequest: pb.TxnRequest = {
  compare: compares,
  success: [
    { requestRange: rangeRequest },
    { requestPut: putRequest },
    { requestDeleteRange: deleteRequest },
    { requestTxn: { compare: [compares[0]], success: [{ requestPut: putRequest }], failure: [] } },
  ],
  failure: [{ requestRange: { ...rangeRequest, revision: 0 } }],
};
const txnResponse: pb.TxnResponse = {
  header,
  succeeded: true,
  responses: [
    { responseRange: rangeResponse },
    { responsePut: putResponse },
    { responseDeleteRange: deleteResponse },
    { responseTxn: { header, succeeded: false, responses: [{ responsePut: { header } }] } },
  ],
};

const watchCreate: pb.WatchCreateRequest = {
  key: b("w"),
  rangeEnd: b("x"),
  startRevision: 17,
  progressNotify: true,
  filters: [pb.FilterType.NOPUT, pb.FilterType.NODELETE],
  prevKv: true,
  watchId: 3,
  fragment: true,
};
const watchResponse: pb.WatchResponse = {
  header,
  watchId: 3,
  created: true,
  canceled: true,
  compactRevision: 12,
  cancelReason: "mvcc: required revision has been compacted — ünïcode",
  fragment: true,
  events: [
    { type: pb.EventType.PUT, kv: kv("a", "1"), prevKv: kv("a", "0", 4) },
    { type: pb.EventType.DELETE, kv: { ...kv("b", ""), version: 0, createRevision: 0 } },
    { type: pb.EventType.PUT, kv: kv("c", "y".repeat(200)) },
  ],
};

const member = (id: bigint, name: string): pb.Member => ({
  ID: id,
  name,
  peerURLs: ["http://10.0.0.1:2380", "https://[::1]:2380"],
  clientURLs: ["http://10.0.0.1:2379"],
  isLearner: name === "learner",
});
const members = [member(TOP_BIT_ID, "infra1"), member(1n, "learner"), member(0xffffffffffffffffn, "")];

/** One row per message: its protobufjs name, our codec, and a sample with every field set. */
// deno-lint-ignore no-explicit-any
type Row = [string, (m: any) => Uint8Array, (b: Uint8Array) => any, unknown];

const rows: Row[] = [
  ["mvccpb.Event", pb.encodeEvent, pb.decodeEvent, watchResponse.events[0]],
  ["etcdserverpb.RangeRequest", pb.encodeRangeRequest, pb.decodeRangeRequest, rangeRequest],
  ["etcdserverpb.RangeResponse", pb.encodeRangeResponse, pb.decodeRangeResponse, rangeResponse],
  ["etcdserverpb.PutRequest", pb.encodePutRequest, pb.decodePutRequest, putRequest],
  ["etcdserverpb.PutResponse", pb.encodePutResponse, pb.decodePutResponse, putResponse],
  ["etcdserverpb.PutResponse", pb.encodePutResponse, pb.decodePutResponse, { header }],
  [
    "etcdserverpb.DeleteRangeRequest",
    pb.encodeDeleteRangeRequest,
    pb.decodeDeleteRangeRequest,
    deleteRequest,
  ],
  [
    "etcdserverpb.DeleteRangeResponse",
    pb.encodeDeleteRangeResponse,
    pb.decodeDeleteRangeResponse,
    deleteResponse,
  ],
  ["etcdserverpb.TxnRequest", pb.encodeTxnRequest, pb.decodeTxnRequest, txnRequest],
  ["etcdserverpb.TxnResponse", pb.encodeTxnResponse, pb.decodeTxnResponse, txnResponse],
  ["etcdserverpb.CompactionRequest", pb.encodeCompactionRequest, pb.decodeCompactionRequest, {
    revision: 99,
    physical: true,
  }],
  ["etcdserverpb.CompactionResponse", pb.encodeCompactionResponse, pb.decodeCompactionResponse, { header }],
  ["etcdserverpb.WatchRequest", pb.encodeWatchRequest, pb.decodeWatchRequest, { createRequest: watchCreate }],
  ["etcdserverpb.WatchRequest", pb.encodeWatchRequest, pb.decodeWatchRequest, {
    cancelRequest: { watchId: 5 },
  }],
  ["etcdserverpb.WatchRequest", pb.encodeWatchRequest, pb.decodeWatchRequest, { progressRequest: {} }],
  ["etcdserverpb.WatchResponse", pb.encodeWatchResponse, pb.decodeWatchResponse, watchResponse],
  ["etcdserverpb.LeaseGrantRequest", pb.encodeLeaseGrantRequest, pb.decodeLeaseGrantRequest, {
    TTL: 60,
    ID: MAX_LEASE,
  }],
  ["etcdserverpb.LeaseGrantResponse", pb.encodeLeaseGrantResponse, pb.decodeLeaseGrantResponse, {
    header,
    ID: MAX_LEASE,
    TTL: 60,
    error: "lease exists",
  }],
  ["etcdserverpb.LeaseRevokeRequest", pb.encodeLeaseRevokeRequest, pb.decodeLeaseRevokeRequest, { ID: 7n }],
  ["etcdserverpb.LeaseRevokeResponse", pb.encodeLeaseRevokeResponse, pb.decodeLeaseRevokeResponse, {
    header,
  }],
  ["etcdserverpb.LeaseKeepAliveRequest", pb.encodeLeaseKeepAliveRequest, pb.decodeLeaseKeepAliveRequest, {
    ID: MAX_LEASE,
  }],
  ["etcdserverpb.LeaseKeepAliveResponse", pb.encodeLeaseKeepAliveResponse, pb.decodeLeaseKeepAliveResponse, {
    header,
    ID: 0x694d77aa9e38260fn,
    TTL: 30,
  }],
  ["etcdserverpb.LeaseTimeToLiveRequest", pb.encodeLeaseTimeToLiveRequest, pb.decodeLeaseTimeToLiveRequest, {
    ID: 1n,
    keys: true,
  }],
  [
    "etcdserverpb.LeaseTimeToLiveResponse",
    pb.encodeLeaseTimeToLiveResponse,
    pb.decodeLeaseTimeToLiveResponse,
    {
      header,
      ID: 1n,
      TTL: -1,
      grantedTTL: 100,
      keys: [b("k1"), b("k2"), EMPTY],
    },
  ],
  ["etcdserverpb.LeaseLeasesRequest", pb.encodeLeaseLeasesRequest, pb.decodeLeaseLeasesRequest, {}],
  ["etcdserverpb.LeaseLeasesResponse", pb.encodeLeaseLeasesResponse, pb.decodeLeaseLeasesResponse, {
    header,
    leases: [{ ID: 1n }, { ID: MAX_LEASE }, { ID: 0n }],
  }],
  ["etcdserverpb.LeaseCheckpointRequest", pb.encodeLeaseCheckpointRequest, pb.decodeLeaseCheckpointRequest, {
    checkpoints: [{ ID: 2n, remainingTTL: 5 }, { ID: MAX_LEASE, remainingTTL: 0 }],
  }],
  ["etcdserverpb.MemberListRequest", pb.encodeMemberListRequest, pb.decodeMemberListRequest, {
    linearizable: true,
  }],
  ["etcdserverpb.MemberListResponse", pb.encodeMemberListResponse, pb.decodeMemberListResponse, {
    header,
    members,
  }],
  ["etcdserverpb.StatusRequest", pb.encodeStatusRequest, pb.decodeStatusRequest, {}],
  ["etcdserverpb.StatusResponse", pb.encodeStatusResponse, pb.decodeStatusResponse, {
    header,
    version: "3.5.0",
    dbSize: 2 ** 33,
    leader: TOP_BIT_ID,
    raftIndex: 1234,
    raftTerm: 5,
    raftAppliedIndex: 1233,
    errors: ["a", "b"],
    dbSizeInUse: 4096,
    isLearner: true,
  }],
  ["etcdserverpb.MoveLeaderRequest", pb.encodeMoveLeaderRequest, pb.decodeMoveLeaderRequest, {
    targetID: TOP_BIT_ID,
  }],
  ["etcdserverpb.MoveLeaderResponse", pb.encodeMoveLeaderResponse, pb.decodeMoveLeaderResponse, { header }],
];

Deno.test("every message round-trips with every field set", () => {
  for (const [name, encode, decode, sample] of rows) {
    const bytes = encode(sample);
    assertEquals(decode(bytes), sample, name);
    assertEquals(hex(encode(decode(bytes))), hex(bytes), `${name}: re-encoding is stable`);
  }
});

Deno.test("every message matches protobufjs byte for byte and both ways", async () => {
  const root = await loadEtcdProtos();
  for (const [name, encode, decode, sample] of rows) {
    crossCheck(root.lookupType(name), sample, encode, decode);
  }
});

Deno.test("random messages of each generated type match protobufjs both ways", async () => {
  const [root, schema] = await Promise.all([loadEtcdProtos(), loadSchema()]);
  const codec = pb as unknown as Record<string, (x: unknown) => unknown>;
  const rand = prng(20260601);
  const reached: Reached = new Set();
  const exported = schema.messages.filter((m) => m.exported);
  for (const msg of exported) {
    const encode = codec[`encode${msg.name}`] as ((m: unknown) => Uint8Array) | undefined;
    const decode = codec[`decode${msg.name}`] as ((b: Uint8Array) => unknown) | undefined;
    assert(encode && decode, `${msg.fullName}: encode${msg.name} and decode${msg.name} are exported`);
    const type = root.lookupType(msg.fullName);
    for (let i = 0; i < 60; i++) {
      const sample = randomMessage(schema, msg, rand, reached);
      crossCheck(type, sample, encode, decode);
      assertEquals(decode(encode(sample)), sample, `${msg.fullName}: round trip`);
    }
  }
  // the messages only nested in others were all built (and so checked) inside their parents
  assertEquals([...reached].sort(), schema.messages.map((m) => m.fullName).sort());
  // and the codec exports exactly the listed messages' functions
  const fns = Object.keys(pb).filter((k) => /^(en|de)code/.test(k)).sort();
  assertEquals(fns, exported.flatMap((m) => [`decode${m.name}`, `encode${m.name}`]).sort());
});

Deno.test("defaults are omitted on encode and filled in on decode", async (t) => {
  await t.step("an all-default request encodes to nothing", () => {
    const zeroRange = pb.decodeRangeRequest(EMPTY);
    assertEquals(pb.encodeRangeRequest(zeroRange).length, 0);
    assertEquals(zeroRange, {
      key: EMPTY,
      rangeEnd: EMPTY,
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
    });
    assertEquals(pb.decodePutRequest(EMPTY), {
      key: EMPTY,
      value: EMPTY,
      lease: 0n,
      prevKv: false,
      ignoreValue: false,
      ignoreLease: false,
    });
    assertEquals(pb.decodeWatchRequest(EMPTY), {});
    // a TxnRequest whose one success op is an empty RequestOp
    assertEquals(pb.decodeTxnRequest(unhex("1200")).success, [{}]);
  });
  await t.step("responses always carry their header; a missing one decodes as zeros", () => {
    assertEquals(hex(pb.encodeCompactionResponse({ header: zeroHeader })), "0a00");
    assertEquals(pb.decodeCompactionResponse(EMPTY), { header: zeroHeader });
    assertEquals(pb.decodeRangeResponse(EMPTY), { header: zeroHeader, kvs: [], more: false, count: 0 });
    assertEquals(pb.decodeEvent(unhex("0801")).kv, {
      key: EMPTY,
      createRevision: 0,
      modRevision: 0,
      version: 0,
      value: EMPTY,
      lease: 0n,
    });
  });
  await t.step("absent properties encode as defaults", () => {
    const partial = { header, kvs: [{ key: b("k") }] } as unknown as pb.RangeResponse;
    const full: pb.RangeResponse = {
      header,
      kvs: [{ key: b("k"), createRevision: 0, modRevision: 0, version: 0, value: EMPTY, lease: 0n }],
      more: false,
      count: 0,
    };
    assertEquals(hex(pb.encodeRangeResponse(partial)), hex(pb.encodeRangeResponse(full)));
  });
});

/** A TxnRequest holding only `c`, as bytes. */
function encodeCompare(c: pb.Compare): Uint8Array {
  return pb.encodeTxnRequest({ compare: [c], success: [], failure: [] });
}

Deno.test("Compare writes the target's value field even when it holds the default", () => {
  // TxnRequest field 1 holding: result=EQUAL(0, omitted), target=VERSION(0, omitted), key "k", version 0
  // present as field 4
  assertEquals(hex(encodeCompare(compares[0])), "0a05" + "1a016b" + "2000");
  // target VALUE with an empty value: field 7 with length 0
  assertEquals(hex(encodeCompare(compares[3])), "0a09" + "0801" + "1003" + "1a016b" + "3a00");
  const c = pb.decodeTxnRequest(encodeCompare(compares[1])).compare[0];
  assertEquals(c.createRevision, 7);
  assertEquals(c.rangeEnd, b("kz"));
});

Deno.test("64-bit values: IDs exact as bigint, revisions as numbers, -1 as a 10-byte varint", async () => {
  const root = await loadEtcdProtos();
  const put = pb.encodePutRequest({ ...putRequest, lease: MAX_LEASE });
  assertEquals(pb.decodePutRequest(put).lease, MAX_LEASE);
  const list = pb.decodeMemberListResponse(pb.encodeMemberListResponse({ header, members }));
  assertEquals(list.members[0].ID, TOP_BIT_ID);
  assertEquals(
    pb.decodeMoveLeaderRequest(pb.encodeMoveLeaderRequest({ targetID: 0xffffffffffffffffn })).targetID,
    2n ** 64n - 1n,
  );
  assertEquals(pb.decodeCompactionResponse(pb.encodeCompactionResponse({ header })).header, header);

  const minus1 = pb.encodeRangeRequest({ ...pb.decodeRangeRequest(EMPTY), revision: -1 });
  assertEquals(hex(minus1), "20" + "ffffffffffffffffff01");
  assertEquals(pb.decodeRangeRequest(minus1).revision, -1);
  const type = root.lookupType("etcdserverpb.RangeRequest");
  assertEquals(hex(pbjsEncode(type, { revision: -1 })), hex(minus1));
  assertEquals(String(type.toObject(type.decode(minus1), { longs: String }).revision), "-1");

  // a revision beyond 2^53 cannot be a number: refused rather than rounded
  const huge = pbjsEncode(type, { revision: 2n ** 60n });
  assertThrows(() => pb.decodeRangeRequest(huge), ProtobufDecodeError, "53 bits");
});

/** Unknown fields of every wire type, as a newer client might send. */
function unknownFields(): Uint8Array {
  const w = new Writer();
  w.tag(1000, 0);
  w.int64(-7);
  w.tag(99, 1);
  w.fixed64(123);
  w.tag(50, 2);
  w.bytes(b("from the future"));
  w.tag(51, 3);
  w.tag(1, 0);
  w.uint32(1);
  w.tag(51, 4);
  w.tag(52, 5);
  w.fixed32(9);
  return w.finish();
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

Deno.test("unknown fields are skipped, at the top level and inside nested messages", () => {
  const extra = unknownFields();
  for (const [name, encode, decode, sample] of rows) {
    const bytes = encode(sample);
    assertEquals(decode(concat(extra, bytes, extra)), sample, name);
  }
  // inside a nested KeyValue of a RangeResponse: field 2 carrying unknown + known fields
  const w = new Writer();
  w.tag(2, 2);
  const mark = w.beginLength();
  w.raw(extra);
  w.raw(pb.encodeEvent({ type: pb.EventType.PUT, kv: kv("n", "v") }).subarray(2)); // the kv inside
  w.raw(extra);
  w.endLength(mark);
  assertEquals(pb.decodeRangeResponse(w.finish()).kvs, [kv("n", "v")]);
});

Deno.test("malformed input throws ProtobufDecodeError", async (t) => {
  const put = pb.encodePutRequest(putRequest);
  await t.step("every truncation of a message is refused", () => {
    for (let i = 1; i < put.length; i++) {
      // cutting inside a field must fail; cutting between fields gives a valid shorter message
      try {
        pb.decodePutRequest(put.subarray(0, i));
      } catch (err) {
        assert(err instanceof ProtobufDecodeError, `cut at ${i}: ${err}`);
      }
    }
    assertThrows(() => pb.decodePutRequest(put.subarray(0, 1)), ProtobufDecodeError, "unexpected EOF");
    assertThrows(() => pb.decodePutRequest(put.subarray(0, 4)), ProtobufDecodeError, "unexpected EOF");
    const range = pb.encodeRangeResponse(rangeResponse);
    assertThrows(() => pb.decodeRangeResponse(range.subarray(0, range.length - 1)), ProtobufDecodeError);
  });
  await t.step("a huge length", () => {
    assertThrows(() => pb.decodePutRequest(unhex("0affffffff0f01")), ProtobufDecodeError, "unexpected EOF");
    assertThrows(() => pb.decodeTxnRequest(unhex("12ffffffffffffffff7f")), ProtobufDecodeError);
    assertThrows(() => pb.decodeWatchRequest(unhex("0a8080808080808080ff01")), ProtobufDecodeError);
  });
  await t.step("a nested length beyond its parent", () => {
    // TxnRequest{success: RequestOp{requestPut(len 3){key(len 5)...}}} although the buffer holds 5 more
    assertThrows(
      () => pb.decodeTxnRequest(unhex("1209" + "1203" + "0a05" + "61" + "62636465")),
      ProtobufDecodeError,
    );
  });
  await t.step("bad wire types", () => {
    assertThrows(() => pb.decodePutRequest(unhex("0f00")), ProtobufDecodeError, "illegal wireType 7");
    assertThrows(() => pb.decodePutRequest(unhex("0e00")), ProtobufDecodeError, "illegal wireType 6");
    assertThrows(() => pb.decodePutRequest(unhex("7c")), ProtobufDecodeError, "illegal wireType 4");
    assertThrows(
      () => pb.decodePutRequest(unhex("0c")),
      ProtobufDecodeError,
      "wrong wireType = 4 for field 1",
    );
    assertThrows(() => pb.decodeStatusRequest(unhex("0f")), ProtobufDecodeError, "illegal wireType");
  });
  await t.step("a known field with the wrong wire type", () => {
    assertThrows(
      () => pb.decodePutRequest(unhex("0801")),
      ProtobufDecodeError,
      "wrong wireType = 0 for field 1",
    );
    assertThrows(() => pb.decodePutRequest(unhex("1a0101")), ProtobufDecodeError, "for field 3");
    assertThrows(() => pb.decodeRangeResponse(unhex("1001")), ProtobufDecodeError, "for field 2");
    // a Compare (in a TxnRequest) whose field 64, bytes, arrives as a varint
    assertThrows(() => pb.decodeTxnRequest(unhex("0a03800401")), ProtobufDecodeError, "for field 64");
    assertThrows(() => pb.decodeWatchResponse(unhex("5801")), ProtobufDecodeError, "for field 11");
  });
  await t.step("field number 0", () => {
    assertThrows(() => pb.decodeRangeRequest(unhex("0001")), ProtobufDecodeError, "illegal tag 0");
  });
  await t.step("absurdly deep txn nesting is refused, not a stack overflow", () => {
    let inner = pb.encodeTxnRequest({ compare: [], success: [], failure: [] });
    for (let i = 0; i < 600; i++) {
      const op = concat(unhex("22"), varint(inner.length), inner); // RequestOp{requestTxn}
      inner = concat(unhex("12"), varint(op.length), op); // TxnRequest{success: [op]}
    }
    assertThrows(() => pb.decodeTxnRequest(inner), ProtobufDecodeError, "depth");
  });
});

function varint(n: number): Uint8Array {
  const w = new Writer(8);
  w.uint32(n);
  return w.finish();
}

Deno.test("fuzz: corrupted messages decode or throw ProtobufDecodeError, nothing else", () => {
  const rand = prng(20240601);
  let refused = 0;
  let decoded = 0;
  const samples = rows.map(([, encode, decode, sample]) => ({ bytes: encode(sample), decode }));
  for (let iter = 0; iter < 4000; iter++) {
    const { bytes, decode } = samples[Math.floor(rand() * samples.length)];
    const copy = bytes.slice(0, Math.max(0, bytes.length - Math.floor(rand() * 3)));
    const flips = 1 + Math.floor(rand() * 3);
    for (let f = 0; f < flips && copy.length > 0; f++) {
      copy[Math.floor(rand() * copy.length)] = Math.floor(rand() * 256);
    }
    try {
      decode(copy);
      decoded++;
    } catch (err) {
      assert(err instanceof ProtobufDecodeError, `iteration ${iter}: ${err}`);
      refused++;
    }
  }
  assert(refused > 500 && decoded > 500, `refused ${refused}, decoded ${decoded}`);
});

Deno.test("encoders do not leak state between calls (shared writer)", () => {
  const big = pb.encodeRangeResponse(rangeResponse);
  const small = pb.encodePutResponse({ header: zeroHeader });
  assertEquals(hex(small), "0a00");
  assertEquals(hex(pb.encodeRangeResponse(rangeResponse)), hex(big));
  // an encoder that throws midway leaves nothing behind for the next one
  assertThrows(() =>
    pb.encodeRangeResponse({ header, kvs: [null as unknown as pb.KeyValue], more: false, count: 0 })
  );
  assertEquals(hex(pb.encodePutResponse({ header: zeroHeader })), "0a00");
});

Deno.test("outputs sharing the writer's slabs never overlap", () => {
  const kept: [number, Uint8Array][] = [];
  for (let i = 0; i < 5000; i++) {
    // sizes from a few bytes to above the pooled limit, so slabs fill up and get replaced
    const value = new Uint8Array((i * 37) % 9000).fill(i & 0xff);
    kept.push([i, pb.encodePutRequest({ ...putRequest, key: b(`k${i}`), value })]);
  }
  for (const [i, bytes] of kept) {
    const r = pb.decodePutRequest(bytes);
    assertEquals(new TextDecoder().decode(r.key), `k${i}`);
    assertEquals(r.value.length, (i * 37) % 9000);
    assert(r.value.every((x) => x === (i & 0xff)), `value of message ${i} intact`);
  }
});

Deno.test("decoded bytes are views into the input (zero copy)", () => {
  const input = pb.encodePutRequest(putRequest);
  const r = pb.decodePutRequest(input);
  assert(r.key.buffer === input.buffer, "key shares the input's buffer");
  assert(r.value.buffer === input.buffer, "value shares the input's buffer");
});
