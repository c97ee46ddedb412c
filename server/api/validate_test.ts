import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { GrpcError } from "../transport/status.ts";
import { checkPutRequest, checkRangeRequest, checkTxnRequest } from "./validate.ts";
import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from "../pb/rpc.ts";

const enc = new TextEncoder();

function range(key: string, extra: Partial<RangeRequest> = {}): RangeRequest {
  return {
    key: enc.encode(key),
    rangeEnd: new Uint8Array(0),
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

function put(key: string, extra: Partial<PutRequest> = {}): RequestOp {
  return {
    requestPut: {
      key: enc.encode(key),
      value: enc.encode("v"),
      lease: 0n,
      prevKv: false,
      ignoreValue: false,
      ignoreLease: false,
      ...extra,
    },
  };
}

function del(key: string, end = ""): RequestOp {
  const d: DeleteRangeRequest = { key: enc.encode(key), rangeEnd: enc.encode(end), prevKv: false };
  return { requestDeleteRange: d };
}

function txn(success: RequestOp[], failure: RequestOp[] = []): TxnRequest {
  return { compare: [], success, failure };
}

function message(fn: () => void): string {
  const err = assertThrows(fn, GrpcError);
  return err.message;
}

Deno.test("range: empty key and bad sort options are refused", () => {
  assertEquals(message(() => checkRangeRequest(range(""))), "etcdserver: key is not provided");
  assertEquals(
    message(() => checkRangeRequest(range("a", { sortOrder: 3 }))),
    "etcdserver: invalid sort option",
  );
  assertEquals(
    message(() => checkRangeRequest(range("a", { sortTarget: 5 }))),
    "etcdserver: invalid sort option",
  );
  checkRangeRequest(range("a", { sortOrder: 2, sortTarget: 4 }));
});

Deno.test("put: ignore_value with a value, ignore_lease with a lease", () => {
  const p = put("k", { ignoreValue: true }).requestPut!;
  assertEquals(message(() => checkPutRequest(p)), "etcdserver: value is provided");
  const q = put("k", { ignoreLease: true, lease: 5n, value: new Uint8Array(0) }).requestPut!;
  assertEquals(message(() => checkPutRequest(q)), "etcdserver: lease is provided");
});

Deno.test("txn: too many ops counts the longest list", () => {
  checkTxnRequest(txn([put("a"), put("b")]), 2);
  assertEquals(
    message(() => checkTxnRequest(txn([put("a"), put("b"), put("c")]), 2)),
    "etcdserver: too many operations in txn request",
  );
});

Deno.test("txn: an empty op is refused as etcd does", () => {
  assertEquals(message(() => checkTxnRequest(txn([{}]), 128)), "etcdserver: key not found");
});

Deno.test("txn: duplicate puts and put inside a deleted range", () => {
  const dup = "etcdserver: duplicate key given in txn request";
  assertEquals(message(() => checkTxnRequest(txn([put("a"), put("a")]), 128)), dup);
  assertEquals(message(() => checkTxnRequest(txn([del("a", "c"), put("b")]), 128)), dup);
  assertEquals(message(() => checkTxnRequest(txn([del("b"), put("b")]), 128)), dup);
  // outside the deleted range, or in the other branch: fine
  checkTxnRequest(txn([del("a", "c"), put("c")]), 128);
  checkTxnRequest(txn([put("a")], [put("a")]), 128);
  // etcd compares a "\0" range end literally here, so a from-key delete does not clash with a put
  checkTxnRequest(txn([del("a", "\0"), put("zzz")]), 128);
});

Deno.test("txn: nested branches may both put a key, but not beside a put of it", () => {
  const dup = "etcdserver: duplicate key given in txn request";
  const nested = (s: RequestOp[], f: RequestOp[]): RequestOp => ({ requestTxn: txn(s, f) });
  checkTxnRequest(txn([nested([put("k")], [put("k")])]), 128);
  assertEquals(message(() => checkTxnRequest(txn([nested([put("k")], []), put("k")]), 128)), dup);
  assertEquals(message(() => checkTxnRequest(txn([nested([put("k")], []), del("k")]), 128)), dup);
});
