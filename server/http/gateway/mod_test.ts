import { assert, assertEquals } from "../../../tests/assert.ts";
import { setImmediate } from "node:timers";
import {
  type CallContext,
  GrpcRouter,
  type HttpFallbackRequest,
  type HttpFallbackResponse,
  MessageParts,
} from "../../transport/grpc.ts";
import { concatBytes } from "../../slab.ts";
import { GrpcError, Status } from "../../transport/status.ts";
import {
  decodeRangeRequest,
  decodeWatchRequest,
  encodeLeaseKeepAliveResponse,
  encodeRangeResponse,
  encodeWatchResponse,
} from "../../pb/rpc.ts";
import {
  accessControl,
  gatewayHandler,
  hostnameOf,
  httpStatusOf,
  protoToJson,
  routeOf,
  ROUTES,
} from "./mod.ts";

const te = new TextEncoder();
const HEADER = { clusterId: 7n, memberId: 8n, revision: 3, raftTerm: 2 };

function req(
  path: string,
  body = "{}",
  headers: Record<string, string> = {},
  method = "POST",
): HttpFallbackRequest {
  return { method, path, headers: new Map(Object.entries(headers)), body: te.encode(body) };
}

function text(res: HttpFallbackResponse | undefined): string {
  assert(res !== undefined, "answered");
  return typeof res.body === "string" ? res.body : new TextDecoder().decode(res.body);
}

async function readAll(stream: ReadableStream<Uint8Array>, lines: number): Promise<string[]> {
  const reader = stream.getReader();
  let buf = "";
  while (buf.split("\n").length - 1 < lines) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return buf.split("\n").filter((l) => l !== "");
}

/** A router with a fake Range (echoes the key as a kv, or fails), Watch and LeaseKeepAlive. */
function testRouter(seen: CallContext[]): GrpcRouter {
  const router = new GrpcRouter();
  router.unary("/etcdserverpb.KV/Range", (raw, ctx) => {
    seen.push(ctx);
    const r = decodeRangeRequest(raw);
    if (r.revision === 99) {
      throw new GrpcError(Status.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision");
    }
    if (r.revision === 98) throw new GrpcError(Status.UNAUTHENTICATED, "etcdserver: invalid auth token");
    return encodeRangeResponse({
      header: HEADER,
      kvs: [{ key: r.key, createRevision: 2, modRevision: 3, version: 1, value: te.encode("v"), lease: 0n }],
      more: false,
      count: 1,
    });
  });
  router.stream("/etcdserverpb.Watch/Watch", (stream, ctx) => {
    seen.push(ctx);
    let n = 0;
    return {
      onMessage(raw) {
        const w = decodeWatchRequest(raw);
        if (w.createRequest === undefined) return;
        stream.send(encodeWatchResponse({
          header: HEADER,
          watchId: n++,
          created: true,
          canceled: false,
          compactRevision: 0,
          cancelReason: "",
          fragment: false,
          events: [],
        }));
      },
      onHalfClose() {},
      onCancel() {
        ctx.metadata.set("cancelled", "yes");
      },
    };
  });
  router.stream("/etcdserverpb.Lease/LeaseKeepAlive", (stream) => ({
    onMessage() {
      stream.send(encodeLeaseKeepAliveResponse({ header: HEADER, ID: 5n, TTL: 10 }));
    },
    onHalfClose() {
      stream.end(new GrpcError(Status.NOT_FOUND, "etcdserver: requested lease not found"));
    },
    onCancel() {},
  }));
  return router;
}

Deno.test("routes: etcd 3.4's paths, under /v3/ and /v3beta/ but not /v3alpha/", () => {
  assertEquals(routeOf("/v3/kv/range")?.method, "/etcdserverpb.KV/Range");
  assertEquals(routeOf("/v3beta/kv/range")?.method, "/etcdserverpb.KV/Range");
  assertEquals(routeOf("/v3alpha/kv/range"), undefined);
  assertEquals(routeOf("/v3/kv/lease/revoke")?.method, "/etcdserverpb.Lease/LeaseRevoke");
  assertEquals(routeOf("/v3/kv/lease/grant"), undefined);
  assertEquals(routeOf("/v3/maintenance/hash")?.method, "/etcdserverpb.Maintenance/Hash");
  assertEquals(routeOf("/v3/maintenance/hashkv"), undefined);
  assertEquals(routeOf("/v3/auth/status"), undefined);
  assertEquals(
    routeOf("/v3/maintenance/transfer-leadership")?.method,
    "/etcdserverpb.Maintenance/MoveLeader",
  );
  assertEquals(ROUTES.size, 41);
  assertEquals([...ROUTES.values()].filter((r) => r.stream).map((r) => r.method), [
    "/etcdserverpb.Watch/Watch",
    "/etcdserverpb.Lease/LeaseKeepAlive",
    "/etcdserverpb.Maintenance/Snapshot",
  ]);
});

Deno.test("gRPC codes map to grpc-gateway's HTTP statuses", () => {
  const expected: [number, number][] = [
    [0, 200],
    [1, 408],
    [2, 500],
    [3, 400],
    [4, 504],
    [5, 404],
    [6, 409],
    [7, 403],
    [8, 429],
    [9, 412],
    [10, 409],
    [11, 400],
    [12, 501],
    [13, 500],
    [14, 503],
    [15, 500],
    [16, 401],
  ];
  for (const [code, status] of expected) assertEquals(httpStatusOf(code), status, `code ${code}`);
});

Deno.test("unary calls: JSON in, the handler's reply as etcd's JSON out, the token as metadata", async () => {
  const seen: CallContext[] = [];
  const gw = gatewayHandler(testRouter(seen), { enabled: true });
  const res = await gw(
    req("/v3/kv/range", '{"key":"Zm9v"}', { authorization: "tok", "grpc-metadata-x": "y", accept: "*/*" }),
  );
  assertEquals(res?.status, 200);
  assertEquals(res?.headers?.["content-type"], "application/json");
  assertEquals(
    text(res),
    '{"header":{"cluster_id":"7","member_id":"8","revision":"3","raft_term":"2"},"kvs":[{"key":"Zm9v",' +
      '"create_revision":"2","mod_revision":"3","version":"1","value":"dg=="}],"count":"1"}',
  );
  assertEquals(seen[0].method, "/etcdserverpb.KV/Range");
  assertEquals([...seen[0].metadata], [["authorization", "tok"], ["x", "y"]]);
  assert(seen[0].signal.aborted, "the call's signal is released once answered");
  // /v3beta/ is the same route
  assertEquals((await gw(req("/v3beta/kv/range?x=1", '{"key":"Zm9v"}')))?.status, 200);
});

Deno.test("unary calls: a reply in parts goes out a part at a time, other work running in between", async () => {
  const router = new GrpcRouter();
  const none = undefined as unknown as typeof HEADER;
  const kv = (i: number) => ({
    key: te.encode(`k${i}`),
    createRevision: 2,
    modRevision: 3 + i,
    version: 1,
    value: te.encode("v".repeat(i)),
    lease: 0n,
  });
  const parts = [encodeRangeResponse({ header: HEADER, kvs: [], more: false, count: 0 })];
  for (let p = 0; p < 8; p++) {
    parts.push(
      encodeRangeResponse({
        header: none,
        kvs: [kv(3 * p), kv(3 * p + 1), kv(3 * p + 2)],
        more: false,
        count: 0,
      }),
    );
  }
  parts.push(encodeRangeResponse({ header: none, kvs: [], more: false, count: 24 }));
  const joined = new MessageParts(parts, parts.reduce((n, p) => n + p.length, 0)).join();
  router.unary("/etcdserverpb.KV/Range", () => new MessageParts(parts, joined.length));
  const gw = gatewayHandler(router, { enabled: true });
  const res = await gw(req("/v3/kv/range", '{"key":"aw==","range_end":"bA=="}'));
  assertEquals(res?.status, 200);
  assert(res?.stream !== undefined, "a body sent as it is made");
  // something else queued on the event loop all along: it must run between any two pieces
  let ticks = 0;
  let ticking = true;
  const tick = (): void => {
    ticks++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  const reader = res.stream.getReader();
  const pieces: Uint8Array[] = [];
  const seenAt: number[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pieces.push(value);
      seenAt.push(ticks);
    }
  } finally {
    ticking = false;
  }
  assertEquals(pieces.length, parts.length);
  for (let i = 1; i < seenAt.length; i++) {
    assert(seenAt[i] > seenAt[i - 1], `other work ran before piece ${i}`);
  }
  const body = new TextDecoder().decode(concatBytes(pieces));
  assertEquals(body, protoToJson("etcdserverpb.RangeResponse", joined));
  assertEquals(JSON.parse(body).kvs.length, 24);
});

Deno.test("unary calls: errors as etcd's error JSON and status", async () => {
  const gw = gatewayHandler(testRouter([]), { enabled: true });
  const future = await gw(req("/v3/kv/range", '{"key":"Zm9v","revision":"99"}'));
  assertEquals(future?.status, 400);
  assertEquals(
    text(future),
    '{"error":"etcdserver: mvcc: required revision is a future revision","message":"etcdserver: mvcc: ' +
      'required revision is a future revision","code":11}',
  );
  assertEquals((await gw(req("/v3/kv/range", '{"key":"Zm9v","revision":98}')))?.status, 401);
  const bad = await gw(req("/v3/kv/range", "x"));
  assertEquals(bad?.status, 400);
  assertEquals(JSON.parse(text(bad)).code, 3);
  // a route the router lacks: UNIMPLEMENTED
  const unimpl = await gw(req("/v3/kv/put", "{}"));
  assertEquals(unimpl?.status, 501);
  assertEquals(JSON.parse(text(unimpl)).code, 12);
});

Deno.test("paths: Not Found under /v3/, Method Not Allowed, others left to the next handler", async () => {
  const gw = gatewayHandler(testRouter([]), { enabled: true });
  const nf = await gw(req("/v3/kv/nope"));
  assertEquals([nf?.status, text(nf)], [404, "Not Found\n"]);
  const na = await gw(req("/v3/kv/range", "", {}, "GET"));
  assertEquals([na?.status, text(na)], [405, "Method Not Allowed\n"]);
  assertEquals(await gw(req("/v3alpha/kv/range")), undefined);
  assertEquals(await gw(req("/health", "", {}, "GET")), undefined);
  const off = gatewayHandler(testRouter([]), { enabled: false });
  assertEquals(await off(req("/v3/kv/range")), undefined);
});

Deno.test("streams: one result line per reply, headers with the first, cancelled with the client", async () => {
  const seen: CallContext[] = [];
  const gw = gatewayHandler(testRouter(seen), { enabled: true });
  const client = new AbortController();
  const request = req("/v3/watch", '{"create_request":{"key":"YQ=="}}\n{"create_request":{"key":"Yg=="}}');
  request.signal = client.signal;
  const res = await gw(request);
  assertEquals(res?.status, 200);
  assert(res?.stream !== undefined, "streamed");
  const lines = await readAll(res.stream, 2);
  assertEquals(lines, [
    '{"result":{"header":{"cluster_id":"7","member_id":"8","revision":"3","raft_term":"2"},"created":true}}',
    '{"result":{"header":{"cluster_id":"7","member_id":"8","revision":"3","raft_term":"2"},"watch_id":"1","created":true}}',
  ]);
  assert(!seen[0].signal.aborted, "the watch stays open after the body");
  client.abort();
  assert(seen[0].signal.aborted, "the client going away cancels the call");
  assertEquals(seen[0].metadata.get("cancelled"), "yes");
});

Deno.test("streams: an error after replies ends the body with grpc-gateway's error line", async () => {
  const gw = gatewayHandler(testRouter([]), { enabled: true });
  const res = await gw(req("/v3/lease/keepalive", '{"ID":5}'));
  assert(res?.stream !== undefined, "streamed");
  const lines = await readAll(res.stream, 10);
  assertEquals(lines, [
    '{"result":{"header":{"cluster_id":"7","member_id":"8","revision":"3","raft_term":"2"},"ID":"5","TTL":"10"}}',
    '{"error":{"grpc_code":5,"http_code":404,"message":"etcdserver: requested lease not found","http_status":"Not Found"}}',
  ]);
  // a body that is not JSON: refused before the call, as UNKNOWN (grpc-gateway reads it in the call)
  const bad = await gw(req("/v3/watch", "x"));
  assertEquals([bad?.status, JSON.parse(text(bad)).code], [500, 2]);
});

Deno.test("access control: --host-whitelist refuses other hosts with 421", async () => {
  const inner = (_: HttpFallbackRequest) => Promise.resolve({ status: 200, body: "ok" });
  const strict = accessControl(inner, { cors: ["*"], hostWhitelist: ["example.com"] });
  const refused = await strict(req("/health", "", { host: "evil.test:2379" }, "GET"));
  assertEquals(refused.status, 421);
  assert(text(refused).includes('etcd --host-whitelist "evil.test"'), text(refused));
  assertEquals((await strict(req("/health", "", { host: "example.com:2379" }, "GET"))).status, 200);
  const open = accessControl(inner, { cors: ["*"], hostWhitelist: ["*"] });
  assertEquals((await open(req("/health", "", { host: "evil.test" }, "GET"))).status, 200);
  assertEquals(hostnameOf("[::1]:2379"), "::1");
  assertEquals(hostnameOf("a.b:1"), "a.b");
  assertEquals(hostnameOf("a.b"), "a.b");
});

Deno.test("access control: CORS headers on every answer, OPTIONS answered directly", async () => {
  let reached = 0;
  const inner = (_: HttpFallbackRequest) => {
    reached++;
    return Promise.resolve({ status: 200, headers: { "content-type": "application/json" }, body: "{}" });
  };
  const any = accessControl(inner, { cors: ["*"], hostWhitelist: ["*"] });
  const res = await any(req("/v3/kv/range"));
  assertEquals(res.headers?.["access-control-allow-origin"], "*");
  assertEquals(res.headers?.["access-control-allow-methods"], "POST, GET, OPTIONS, PUT, DELETE");
  assertEquals(res.headers?.["access-control-allow-headers"], "accept, content-type, authorization");
  assertEquals(res.headers?.["content-type"], "application/json");
  const pre = await any(req("/v3/kv/range", "", { origin: "http://x" }, "OPTIONS"));
  assertEquals([pre.status, text(pre), reached], [200, "", 1]);
  const some = accessControl(inner, { cors: ["http://good"], hostWhitelist: ["*"] });
  assertEquals(
    (await some(req("/v3/kv/range", "", { origin: "http://good" }))).headers?.["access-control-allow-origin"],
    "http://good",
  );
  assertEquals(
    (await some(req("/v3/kv/range", "", { origin: "http://bad" }))).headers?.["access-control-allow-origin"],
    undefined,
  );
});
