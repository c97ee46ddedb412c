import { assert, assertEquals, assertThrows } from "../../../tests/assert.ts";
import {
  decodeLeaseKeepAliveRequest,
  decodeRangeRequest,
  decodeTxnRequest,
  decodeWatchRequest,
  encodeHashResponse,
  encodeRangeResponse,
  encodeWatchResponse,
  type ResponseHeader,
  type WatchResponse,
} from "../../pb/rpc.ts";
import { Prng } from "../../../tests/sim/prng.ts";
import { concatBytes } from "../../slab.ts";
import { watchResponse } from "../../api/watch.ts";
import {
  decodeBase64,
  JsonRequestError,
  parseJson,
  partsToJson,
  protoToJson,
  requestToProto,
  splitJson,
} from "./json.ts";

const te = new TextEncoder();
const b = (s: string) => te.encode(s);

Deno.test("requests: proto and lowerCamel names, int64 as numbers or strings, enums by name or number", () => {
  const r = decodeRangeRequest(requestToProto(
    "etcdserverpb.RangeRequest",
    '{"key":"Zm9v","rangeEnd":"Zm9w","limit":"5","revision":7,"sort_order":"DESCEND","sortTarget":2,' +
      '"serializable":true,"keys_only":null,"unknown":{"x":[1]}}',
  ));
  assertEquals(new TextDecoder().decode(r.key), "foo");
  assertEquals(new TextDecoder().decode(r.rangeEnd), "fop");
  assertEquals(r.limit, 5);
  assertEquals(r.revision, 7);
  assertEquals(r.sortOrder, 2);
  assertEquals(r.sortTarget, 2);
  assertEquals(r.serializable, true);
  assertEquals(r.keysOnly, false);
});

Deno.test("requests: nested messages, oneofs, repeated fields and 64-bit IDs stay exact", () => {
  const t = decodeTxnRequest(requestToProto(
    "etcdserverpb.TxnRequest",
    '{"compare":[{"key":"Zm9v","target":"VERSION","version":"0","result":"NOT_EQUAL"}],' +
      '"success":[{"request_put":{"key":"YQ==","value":"Yg==","lease":"9223372036854775807"}},{"requestRange":{}}]}',
  ));
  assertEquals(t.compare.length, 1);
  assertEquals(t.compare[0].result, 3);
  assertEquals(t.success.length, 2);
  assertEquals(t.success[0].requestPut?.lease, 9223372036854775807n);
  assert(t.success[1].requestRange !== undefined, "an empty sub-message is still present");
  const w = decodeWatchRequest(requestToProto(
    "etcdserverpb.WatchRequest",
    '{"create_request":{"key":"YQ==","filters":["NODELETE"],"prev_kv":true,"watch_id":"3"}}',
  ));
  assertEquals(w.createRequest?.filters, [1]);
  assertEquals(w.createRequest?.prevKv, true);
  assertEquals(w.createRequest?.watchId, 3);
  assertEquals(
    decodeLeaseKeepAliveRequest(requestToProto("etcdserverpb.LeaseKeepAliveRequest", '{"ID":-1}')).ID,
    -1n,
  );
});

Deno.test("requests: an empty, white-space or null body is the empty message; trailing text is ignored", () => {
  for (const body of ["", "  \n", "null", '{"key":"Zm9v"} trailing']) {
    const bytes = requestToProto("etcdserverpb.RangeRequest", body);
    if (body.includes("Zm9v")) assertEquals(bytes.length, 5);
    else assertEquals(bytes.length, 0, JSON.stringify(body));
  }
});

Deno.test("requests: errors in Go's words, as etcd's gateway answers them", () => {
  // each case checked against etcd 3.4.23's /v3/kv/range
  const cases: [string, string][] = [
    ["x", "invalid character 'x' looking for beginning of value"],
    ["{", "unexpected EOF"],
    ['{"key":1}', "json: cannot unmarshal number into Go value of type []uint8"],
    ['{"key":"!!"}', "illegal base64 data at input byte 0"],
    ['{"key":"Zm9"}', "illegal base64 data at input byte 0"],
    ['{"key":"Zm9v_-"}', "illegal base64 data at input byte 4"],
    ['{"limit":"abc"}', "invalid character 'a' looking for beginning of value"],
    ['{"limit":1.5}', "json: cannot unmarshal number 1.5 into Go value of type int64"],
    ['{"sort_order":"BAD"}', 'unknown value "BAD" for enum etcdserverpb.RangeRequest_SortOrder'],
    ["[]", "json: cannot unmarshal array into Go value of type map[string]json.RawMessage"],
    ['{"serializable":"true"}', "json: cannot unmarshal string into Go value of type bool"],
    ['{"key" 1}', "invalid character '1' after object key"],
    ['{"key":"a" "b"}', "invalid character '\"' after object key:value pair"],
  ];
  for (const [body, message] of cases) {
    const err = assertThrows(() => requestToProto("etcdserverpb.RangeRequest", body), JsonRequestError);
    assertEquals(err.message, message, body);
  }
});

Deno.test("replies: proto names, int64 as strings, base64 bytes, defaults omitted", () => {
  const bytes = encodeRangeResponse({
    header: { clusterId: 1461863924687572346n, memberId: 4258032970118675002n, revision: 2, raftTerm: 2 },
    kvs: [{
      key: b("foo"),
      createRevision: 2,
      modRevision: 2,
      version: 1,
      value: b("bar"),
      lease: 0n,
    }],
    more: false,
    count: 1,
  });
  // byte for byte what etcd 3.4.23 answered for the same range
  assertEquals(
    protoToJson("etcdserverpb.RangeResponse", bytes),
    '{"header":{"cluster_id":"1461863924687572346","member_id":"4258032970118675002","revision":"2",' +
      '"raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1",' +
      '"value":"YmFy"}],"count":"1"}',
  );
  assertEquals(
    protoToJson(
      "etcdserverpb.HashResponse",
      encodeHashResponse({
        header: { clusterId: 0n, memberId: 0n, revision: 0, raftTerm: 0 },
        hash: 2152914772,
      }),
    ),
    '{"header":{},"hash":2152914772}',
  );
});

Deno.test("replies: enums by etcd's names, present sub-messages even when empty", () => {
  const bytes = encodeWatchResponse({
    header: { clusterId: 1n, memberId: 2n, revision: 5, raftTerm: 2 },
    watchId: 0,
    created: false,
    canceled: false,
    compactRevision: 0,
    cancelReason: "<&>",
    fragment: false,
    events: [{
      type: 1,
      kv: {
        key: b("foo"),
        createRevision: 0,
        modRevision: 5,
        version: 0,
        value: new Uint8Array(),
        lease: 0n,
      },
    }],
  });
  assertEquals(
    protoToJson("etcdserverpb.WatchResponse", bytes),
    '{"header":{"cluster_id":"1","member_id":"2","revision":"5","raft_term":"2"},' +
      '"cancel_reason":"\\u003c\\u0026\\u003e","events":[{"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"5"}}]}',
  );
});

Deno.test("base64 as Go decodes it", () => {
  assertEquals([...decodeBase64("Zm9v")], [102, 111, 111]);
  assertEquals([...decodeBase64("Zg==")], [102]);
  assertEquals([...decodeBase64("Zm8=")], [102, 111]);
  assertEquals([...decodeBase64("Zm\r\n9v")], [102, 111, 111]);
  assertEquals(decodeBase64("").length, 0);
  assertThrows(() => decodeBase64("Zg="), JsonRequestError, "illegal base64 data at input byte 3");
  assertThrows(() => decodeBase64("Zg==x"), JsonRequestError, "illegal base64 data at input byte 4");
  assertThrows(() => decodeBase64("Z==="), JsonRequestError, "illegal base64 data at input byte 1");
});

Deno.test("a streaming body holds several JSON values", () => {
  assertEquals(splitJson('{"ID":1}\n{"ID":"2"} {}'), ['{"ID":1}', '{"ID":"2"}', "{}"]);
  assertEquals(splitJson("  "), []);
  assertThrows(
    () => splitJson('{"ID":1} x'),
    JsonRequestError,
    "invalid character 'x' looking for beginning of value",
  );
  assertEquals(parseJson("  "), undefined);
  assertEquals(parseJson('"a\\u0041\\n"'), { t: "string", v: "aA\n" });
});

/** The parts' pieces joined, and how many there were. */
function piecesOf(type: string, parts: Uint8Array[]): { text: string; count: number } {
  const pieces = partsToJson(type, parts);
  assert(pieces !== undefined, "convertible a part at a time");
  const all = [...pieces];
  return { text: new TextDecoder().decode(concatBytes(all)), count: all.length };
}

Deno.test("replies in parts: a piece per part, together the same bytes as the parts joined", () => {
  const rng = new Prng(7);
  const kvs = Array.from({ length: 300 }, (_, i) => ({
    key: b(`key/${i}/ü`),
    createRevision: i + 1,
    modRevision: i + 1000,
    version: i % 3,
    value: Uint8Array.from({ length: i % 7 === 0 ? 0 : rng.int(2000) }, () => rng.int(256)),
    lease: i % 5 === 0 ? 7587890123456789012n : 0n,
  }));
  const header = { clusterId: 1461863924687572346n, memberId: 2n, revision: 1400, raftTerm: 3 };
  const none = undefined as unknown as typeof header;
  for (let round = 0; round < 20; round++) {
    // as the range pager hands a long range over: the header, pages of kvs, then more and count
    const parts = [encodeRangeResponse({ header, kvs: [], more: false, count: 0 })];
    for (let at = 0; at < kvs.length;) {
      const n = 1 + rng.int(80);
      parts.push(encodeRangeResponse({ header: none, kvs: kvs.slice(at, at + n), more: false, count: 0 }));
      at += n;
    }
    const more = round % 2 === 0;
    parts.push(encodeRangeResponse({ header: none, kvs: [], more, count: round === 3 ? 0 : 1234 }));
    // the tail may even go with the last page
    if (round % 4 === 1) parts.splice(-2, 2, concatBytes(parts.slice(-2)));
    const whole = protoToJson("etcdserverpb.RangeResponse", concatBytes(parts));
    const { text, count } = piecesOf("etcdserverpb.RangeResponse", parts);
    assertEquals(count, parts.length);
    if (text !== whole) {
      let at = 0;
      while (text[at] === whole[at]) at++;
      throw new Error(
        `round ${round}: the pieces differ from the whole at ${at}: ${text.slice(at, at + 40)}`,
      );
    }
    const json = JSON.parse(text);
    assertEquals(json.kvs.length, kvs.length);
    assertEquals(json.more, more ? true : undefined);
  }
  // nothing but the header, or nothing at all
  assertEquals(
    piecesOf("etcdserverpb.RangeResponse", [encodeRangeResponse({ header, kvs: [], more: false, count: 0 })])
      .text,
    protoToJson(
      "etcdserverpb.RangeResponse",
      encodeRangeResponse({ header, kvs: [], more: false, count: 0 }),
    ),
  );
  assertEquals(piecesOf("etcdserverpb.RangeResponse", []).text, "{}");
  assertEquals(piecesOf("etcdserverpb.RangeResponse", [new Uint8Array(), new Uint8Array()]).text, "{}");
});

Deno.test("replies in parts: fields before the list, lists after lists, and parts out of order refused", () => {
  const event = (i: number) => ({
    type: i % 2,
    kv: { key: b(`k${i}`), createRevision: 1, modRevision: i, version: 1, value: b("<v>"), lease: 0n },
  });
  // the parts carry no header but the first's (the codec leaves an absent one out)
  const none = undefined as unknown as ResponseHeader;
  const watch = (w: Partial<WatchResponse>) => encodeWatchResponse(watchResponse({ header: none, ...w }));
  const header = { clusterId: 1n, memberId: 2n, revision: 5, raftTerm: 2 };
  const parts = [
    watch({ header, watchId: 3 }),
    watch({ cancelReason: "a <b> & c" }),
    watch({ events: [event(1), event(2)] }),
    watch({}),
    watch({ events: [event(3)] }),
  ];
  const whole = protoToJson("etcdserverpb.WatchResponse", concatBytes(parts));
  assertEquals(piecesOf("etcdserverpb.WatchResponse", parts).text, whole);
  assertEquals(JSON.parse(whole).events.length, 3);
  // a field that comes before one of an earlier part, or a single field in two parts: joined instead
  assertEquals(partsToJson("etcdserverpb.WatchResponse", [parts[2], parts[0]]), undefined);
  assertEquals(partsToJson("etcdserverpb.WatchResponse", [parts[1], parts[1]]), undefined);
  assertEquals(partsToJson("etcdserverpb.NoSuchResponse", parts), undefined);
});
