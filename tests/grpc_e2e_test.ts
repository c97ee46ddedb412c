/**
 * The gRPC surface as a raw HTTP/2 client sees it: statuses for unknown methods, malformed and
 * oversized messages, broken streams; one bad request never disturbs the others.
 */
import http2 from "node:http2";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { ctlOk, HAVE_ETCDCTL, implementations, Member } from "./helpers.ts";

interface Reply {
  status: string | undefined;
  message: string | undefined;
  bytes: number;
}

function frame(body: Uint8Array, declaredLength = body.length): Uint8Array {
  const f = new Uint8Array(5 + body.length);
  new DataView(f.buffer).setUint32(1, declaredLength);
  f.set(body, 5);
  return f;
}

/** One unary call on its own connection; resolves as soon as the grpc-status is known. */
function call(endpoint: string, path: string, body: Uint8Array): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${endpoint}`);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`no answer to ${path}`));
    }, 10_000);
    let bytes = 0;
    const done = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] === undefined) return;
      clearTimeout(timer);
      resolve({ status: String(h["grpc-status"]), message: h["grpc-message"] as string | undefined, bytes });
      session.destroy();
    };
    session.on("error", () => {});
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
    });
    req.on("response", done);
    req.on("trailers", done);
    req.on("data", (d: Uint8Array) => bytes += d.length);
    req.on("error", () => {});
    req.end(body);
  });
}

const RANGE_A = new Uint8Array([0x0a, 0x01, 0x61]); // RangeRequest{key: "a"}

for (const impl of implementations()) {
  Deno.test({
    name: `[${impl}] gRPC errors stay with the request that caused them`,
    ignore: !HAVE_ETCDCTL,
    fn: async (t) => {
      const m = await Member.start({ impl, args: ["--max-request-bytes", "4096"] });
      const ep = m.endpoint;
      try {
        await t.step("unknown method and service: UNIMPLEMENTED", async () => {
          const a = await call(ep, "/etcdserverpb.KV/Nope", frame(RANGE_A));
          assertEquals([a.status, a.message], ["12", "unknown method Nope for service etcdserverpb.KV"]);
          const b = await call(ep, "/etcdserverpb.Nope/Put", frame(RANGE_A));
          assertEquals([b.status, b.message], ["12", "unknown service etcdserverpb.Nope"]);
        });
        await t.step("malformed protobuf: INTERNAL", async () => {
          const r = await call(ep, "/etcdserverpb.KV/Put", frame(new Uint8Array([0x0a, 0xff])));
          assertEquals(r.status, "13");
          assertMatch(r.message ?? "", /^grpc: error unmarshalling request: /);
          const r2 = await call(ep, "/etcdserverpb.KV/Range", frame(new Uint8Array([0x0a, 0x05, 0x61])));
          assertEquals(r2.status, "13");
        });
        await t.step("message over the limit: RESOURCE_EXHAUSTED", async () => {
          const limit = 4096 + 512 * 1024;
          const big = new Uint8Array(limit + 10);
          big[0] = 0x0a;
          const r = await call(ep, "/etcdserverpb.KV/Put", frame(big));
          assertEquals(r.status, "8");
          assertEquals(r.message, `grpc: received message larger than max (${limit + 10} vs. ${limit})`);
        });
        await t.step("a stream reset mid-message, then everyone else is still served", async () => {
          const session = http2.connect(`http://${ep}`);
          session.on("error", () => {});
          const req = session.request({
            ":method": "POST",
            ":path": "/etcdserverpb.KV/Put",
            "content-type": "application/grpc",
            te: "trailers",
          });
          req.on("error", () => {});
          // promises 100 bytes, sends 2, and resets the stream once those are written to the connection
          await new Promise<void>((resolve, reject) =>
            req.write(frame(new Uint8Array([0x0a, 0x01]), 100), (err) => err ? reject(err) : resolve())
          );
          req.close(http2.constants.NGHTTP2_CANCEL);
          session.destroy();
          const ok = await call(ep, "/etcdserverpb.KV/Range", frame(RANGE_A));
          assertEquals(ok.status, "0");
          assert(ok.bytes > 5, "a range answer carries a message");
          assertEquals(await ctlOk(ep, ["put", "still", "here"]), "OK\n");
        });
      } finally {
        await m.destroy();
      }
    },
  });
}
