import { assert, assertEquals, assertThrows } from "../../../tests/assert.ts";
import {
  decodeLeaseKeepAliveRequest,
  decodeRangeRequest,
  decodeTxnRequest,
  decodeWatchRequest,
  encodeHashResponse,
  encodeRangeResponse,
  encodeWatchResponse,
} from "../../pb/rpc.ts";
import { decodeBase64, JsonRequestError, parseJson, protoToJson, requestToProto, splitJson } from "./json.ts";

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
