/**
 * The same behaviour suite against every gRPC transport, with a real gRPC client (@grpc/grpc-js, no
 * proto: identity serializers on Buffers) and a raw node:http2 client for what grpc-js hides.
 */
// A real gRPC client for tests only; deno.json is not ours to change, and 1.14.7 is the version deno.lock
// already holds (through etcd3).
// deno-lint-ignore no-import-prefix
import * as grpc from "npm:@grpc/grpc-js@1.14.7";
import http2 from "node:http2";
import { GrpcRouter, type GrpcTransport, HIGH_WATER_MARK, MessageParts, type ServerStream } from "./grpc.ts";
import { GrpcError, Status } from "./status.ts";
import { serveNodeHttp2 } from "./node_http2.ts";
import { serveDenoH2 } from "./h2/transport.ts";
import {
  assert,
  assertEquals,
  eventually,
  frame,
  listen,
  makeCerts,
  rawCall,
  RawH2,
  unframe,
} from "./test_util.ts";

/** The transports under test; each gets the whole suite. */
export const TRANSPORTS: [string, GrpcTransport][] = [["node", serveNodeHttp2], ["h2", serveDenoH2]];

const id = (b: Buffer): Buffer => b;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

interface UnaryResult {
  value?: Buffer;
  error?: grpc.ServiceError;
}

function unary(
  client: grpc.Client,
  path: string,
  body: Uint8Array | string,
  metadata = new grpc.Metadata(),
  options: grpc.CallOptions = {},
): Promise<UnaryResult> & { call?: grpc.ClientUnaryCall } {
  let call: grpc.ClientUnaryCall | undefined;
  const p: Promise<UnaryResult> & { call?: grpc.ClientUnaryCall } = new Promise((resolve) => {
    call = client.makeUnaryRequest(
      path,
      id,
      id,
      Buffer.from(typeof body === "string" ? text(body) : body),
      metadata,
      options,
      (error: grpc.ServiceError | null, value?: Buffer) => resolve(error ? { error } : { value }),
    );
  });
  p.call = call;
  return p;
}

interface StreamResult {
  messages: string[];
  status: grpc.StatusObject;
}

function collect(call: grpc.ClientReadableStream<Buffer> | grpc.ClientDuplexStream<Buffer, Buffer>): Promise<
  StreamResult
> {
  return new Promise((resolve) => {
    const messages: string[] = [];
    call.on("data", (b: Buffer) => messages.push(str(b)));
    call.on("error", () => {});
    call.on("status", (status: grpc.StatusObject) => {
      // 'status' can precede the last 'data' events; let them land.
      setTimeout(() => resolve({ messages, status }), 0);
    });
  });
}

function testRouter(): GrpcRouter {
  return new GrpcRouter()
    .unary("/test.Echo/Echo", (req) => req)
    .unary("/test.Echo/Parts", (req) => {
      // "N|M": one message in N parts of M bytes, byte i of the message being i % 251
      const [n, m] = str(req).split("|").map(Number);
      const parts = Array.from({ length: n }, (_, p) => new Uint8Array(m).map((_, i) => (p * m + i) % 251));
      return Promise.resolve(new MessageParts(parts, n * m));
    })
    .unary("/test.Echo/Fail", (req) => {
      const [code, message] = str(req).split("|");
      throw new GrpcError(Number(code) as 5, message);
    })
    .unary("/test.Echo/Crash", () => Promise.reject(new TypeError("handler blew up")))
    .unary("/test.Echo/Meta", (_req, ctx) =>
      text(JSON.stringify({
        method: ctx.method,
        token: ctx.metadata.get("token"),
        peer: ctx.peer,
        cn: ctx.peerCertificate?.commonName ?? null,
        raw: ctx.peerCertificate?.raw !== undefined,
      })))
    .stream("/test.Echo/Chat", (stream) => ({
      onMessage(m) {
        stream.send(m);
      },
      onHalfClose() {
        stream.send(text("bye"));
        stream.end();
      },
      onCancel() {},
    }))
    .stream("/test.Echo/Count", (stream) => {
      let n = 0;
      return {
        onMessage(m) {
          n = Number(str(m));
          for (let i = 1; i <= n; i++) stream.send(text(String(i)));
          if (n === 13) stream.end(new GrpcError(Status.OUT_OF_RANGE, "unlucky"));
          else stream.end();
        },
        onHalfClose() {},
        onCancel() {},
      };
    });
}

async function withServer(
  transport: GrpcTransport,
  router: GrpcRouter,
  fn: (port: number, client: grpc.Client) => Promise<void>,
  maxReceiveMessageBytes = 1 << 20,
): Promise<void> {
  const listener = await listen(transport, router, { maxReceiveMessageBytes });
  const client = new grpc.Client(`127.0.0.1:${listener.port}`, grpc.credentials.createInsecure());
  try {
    await fn(listener.port, client);
  } finally {
    client.close();
    await listener.close();
  }
}

for (const [name, transport] of TRANSPORTS) {
  Deno.test(`[${name}] unary: roundtrip, metadata, status codes`, async (t) => {
    await withServer(transport, testRouter(), async (port, client) => {
      await t.step("echo, small and large", async () => {
        assertEquals(str((await unary(client, "/test.Echo/Echo", "hello")).value!), "hello");
        assertEquals((await unary(client, "/test.Echo/Echo", "")).value?.length, 0);
        const big = new Uint8Array(900_000).map((_, i) => i % 251);
        const r = await unary(client, "/test.Echo/Echo", big);
        assertEquals(r.value?.length, big.length);
        assert(r.value!.every((b, i) => b === big[i]), "large body intact");
      });
      await t.step("a message handed over in parts arrives whole, past flow control too", async () => {
        for (const [n, m] of [[1, 10], [3, 1000], [40, 100_000]]) {
          const r = await unary(client, "/test.Echo/Parts", `${n}|${m}`);
          assertEquals(r.value?.length, n * m);
          assert(r.value!.every((b, i) => b === i % 251), `${n} parts of ${m} bytes intact`);
        }
        // calls on the same connection are answered while a large one drains
        const [large, small] = await Promise.all([
          unary(client, "/test.Echo/Parts", "40|100000"),
          unary(client, "/test.Echo/Echo", "meanwhile"),
        ]);
        assertEquals([large.value?.length, str(small.value!)], [4_000_000, "meanwhile"]);
      });
      await t.step("many concurrent calls on one connection", async () => {
        const all = await Promise.all(
          Array.from({ length: 200 }, (_, i) => unary(client, "/test.Echo/Echo", `m${i}`)),
        );
        assertEquals(all.map((r) => str(r.value!)), Array.from({ length: 200 }, (_, i) => `m${i}`));
      });
      await t.step("metadata, method and peer reach the handler", async () => {
        const md = new grpc.Metadata();
        md.set("token", "abc.def");
        const r = JSON.parse(str((await unary(client, "/test.Echo/Meta", "", md)).value!));
        assertEquals(r.method, "/test.Echo/Meta");
        assertEquals(r.token, "abc.def");
        assert(/^127\.0\.0\.1:\d+$/.test(r.peer), r.peer);
        assertEquals(r.cn, null);
      });
      await t.step("GrpcError status and message, percent-encoded on the wire", async () => {
        const a = await unary(client, "/test.Echo/Fail", "5|etcdserver: requested lease not found");
        assertEquals([a.error?.code, a.error?.details], [5, "etcdserver: requested lease not found"]);
        const b = await unary(client, "/test.Echo/Fail", "3|100% sure: caf\u00e9\nnewline");
        assertEquals([b.error?.code, b.error?.details], [3, "100% sure: caf\u00e9\nnewline"]);
        const raw = await rawCall(port, "/test.Echo/Fail", { chunks: [frame("9|50% \u00e9")] });
        assertEquals([raw.status, raw.message], ["9", "50%25 %C3%A9"]);
      });
      await t.step("any other throw is UNKNOWN with its message", async () => {
        const r = await unary(client, "/test.Echo/Crash", "");
        assertEquals([r.error?.code, r.error?.details], [Status.UNKNOWN, "handler blew up"]);
      });
      await t.step("unknown method and service", async () => {
        const a = await unary(client, "/test.Echo/Nope", "");
        assertEquals([a.error?.code, a.error?.details], [12, "unknown method Nope for service test.Echo"]);
        const b = await unary(client, "/test.Nope/Echo", "");
        assertEquals([b.error?.code, b.error?.details], [12, "unknown service test.Nope"]);
      });
    });
  });

  Deno.test(`[${name}] wire format: headers, trailers, trailers-only, edge cases`, async (t) => {
    await withServer(transport, testRouter(), async (port) => {
      await t.step("OK: headers, one message, trailers with grpc-status 0", async () => {
        const r = await rawCall(port, "/test.Echo/Echo", { chunks: [frame("hi")] });
        assertEquals(r.headers?.[":status"], 200);
        assertEquals(r.headers?.["content-type"], "application/grpc");
        assertEquals(r.headers?.["grpc-status"], undefined);
        assertEquals(r.trailers?.["grpc-status"], "0");
        assertEquals(r.trailers?.["grpc-message"], "");
        assertEquals(unframe(r.data).map(str), ["hi"]);
      });
      await t.step("error before any message: trailers-only", async () => {
        const r = await rawCall(port, "/test.Echo/Fail", { chunks: [frame("7|denied")] });
        assertEquals([r.headers?.[":status"], r.headers?.["grpc-status"], r.headers?.["grpc-message"]], [
          200,
          "7",
          "denied",
        ]);
        assertEquals(r.trailers, undefined);
        assertEquals(r.data.length, 0);
      });
      await t.step("content-type subtype is echoed", async () => {
        const r = await rawCall(port, "/test.Echo/Echo", {
          chunks: [frame("x")],
          headers: { "content-type": "application/grpc+proto" },
        });
        assertEquals([r.headers?.["content-type"], r.status], ["application/grpc+proto", "0"]);
      });
      await t.step("malformed path, zero messages, truncated message", async () => {
        const a = await rawCall(port, "/onlyone", { chunks: [frame("x")] });
        assertEquals([a.status, a.message], ["8", 'malformed method name: "/onlyone"']);
        const b = await rawCall(port, "/test.Echo/Echo", {});
        assertEquals([b.status, b.message], ["2", "EOF"]);
        const c = await rawCall(port, "/test.Echo/Echo", { chunks: [frame("abc", 0, 10)] });
        assertEquals([c.status, c.message], ["2", "unexpected EOF"]);
      });
      await t.step("compressed flag, unknown encoding, bad payload format", async () => {
        const a = await rawCall(port, "/test.Echo/Echo", { chunks: [frame("x", 1)] });
        assertEquals([a.status, a.message], [
          "13",
          "grpc: compressed flag set with identity or empty encoding",
        ]);
        const b = await rawCall(port, "/test.Echo/Echo", {
          chunks: [frame("x", 1)],
          headers: { "grpc-encoding": "gzip" },
        });
        assertEquals([b.status, b.message], [
          "12",
          'grpc: Decompressor is not installed for grpc-encoding "gzip"',
        ]);
        const c = await rawCall(port, "/test.Echo/Echo", { chunks: [frame("x", 2)] });
        assertEquals([c.status, c.message], ["13", "grpc: received unexpected payload format 2"]);
      });
      await t.step("a unary call is answered on its first message, before the half-close", async () => {
        const r = await rawCall(port, "/test.Echo/Echo", {
          chunks: [frame("early")],
          end: false,
          timeoutMs: 1000,
        });
        assertEquals([r.status, unframe(r.data).map(str)], ["0", ["early"]]);
      });
      await t.step("one message written in many pieces, several in one piece", async () => {
        const f = frame("pieces");
        const r = await rawCall(port, "/test.Echo/Echo", {
          chunks: Array.from(f, (b) => new Uint8Array([b])),
        });
        assertEquals([r.status, unframe(r.data).map(str)], ["0", ["pieces"]]);
        const all = new Uint8Array([...frame("a"), ...frame("bb"), ...frame("ccc")]);
        const s = await rawCall(port, "/test.Echo/Chat", { chunks: [all] });
        assertEquals([s.status, unframe(s.data).map(str)], ["0", ["a", "bb", "ccc", "bye"]]);
      });
      await t.step("malformed grpc-timeout resets the stream with PROTOCOL_ERROR", async () => {
        const r = await rawCall(port, "/test.Echo/Echo", {
          chunks: [frame("x")],
          headers: { "grpc-timeout": "123456789S" },
        });
        assertEquals([r.status, r.rstCode], [undefined, http2.constants.NGHTTP2_PROTOCOL_ERROR]);
      });
    });
  });

  Deno.test(`[${name}] oversized messages fail alone`, async () => {
    const limit = 64 * 1024;
    await withServer(transport, testRouter(), async (port, client) => {
      const big = new Uint8Array(limit + 10);
      const over = unary(client, "/test.Echo/Echo", big);
      const fine = unary(client, "/test.Echo/Echo", new Uint8Array(limit));
      const [a, b] = await Promise.all([over, fine]);
      assertEquals([a.error?.code, a.error?.details], [
        Status.RESOURCE_EXHAUSTED,
        `grpc: received message larger than max (${limit + 10} vs. ${limit})`,
      ]);
      assertEquals(b.value?.length, limit);
      // A client still sending its oversized body is stopped; the connection keeps serving.
      // (grpc-go, and so the real etcd, answer and reset the stream with NO_ERROR; node:http2's client
      // then never closes its side, hence the short timeout.)
      const raw = await rawCall(port, "/test.Echo/Echo", {
        chunks: [frame(new Uint8Array(3 * limit))],
        timeoutMs: 500,
      });
      assertEquals(raw.status, "8");
      assertEquals(str((await unary(client, "/test.Echo/Echo", "after")).value!), "after");
    }, limit);
  });

  Deno.test(`[${name}] streaming: bidi and server streaming`, async (t) => {
    await withServer(transport, testRouter(), async (port, client) => {
      await t.step("bidi: many messages both ways", async () => {
        const call = client.makeBidiStreamRequest("/test.Echo/Chat", id, id);
        const done = collect(call);
        const n = 2000;
        for (let i = 0; i < n; i++) call.write(Buffer.from(text(`m${i}`)));
        call.end();
        const r = await done;
        assertEquals(r.status.code, 0);
        assertEquals(r.messages.length, n + 1);
        assertEquals(r.messages[0], "m0");
        assertEquals(r.messages[n - 1], `m${n - 1}`);
        assertEquals(r.messages[n], "bye");
      });
      await t.step("server streaming, OK and with an error after messages", async () => {
        const ok = await collect(
          client.makeServerStreamRequest("/test.Echo/Count", id, id, Buffer.from("5")),
        );
        assertEquals([ok.status.code, ok.messages], [0, ["1", "2", "3", "4", "5"]]);
        const bad = await collect(
          client.makeServerStreamRequest("/test.Echo/Count", id, id, Buffer.from("13")),
        );
        assertEquals([bad.status.code, bad.status.details], [11, "unlucky"]);
        // grpc-js drops buffered messages on an error status; the raw client sees them all, then trailers.
        const raw = await rawCall(port, "/test.Echo/Count", { chunks: [frame("13")] });
        assertEquals(unframe(raw.data).length, 13);
        assertEquals([raw.headers?.["grpc-status"], raw.trailers?.["grpc-status"], raw.message], [
          undefined,
          "11",
          "unlucky",
        ]);
      });
      await t.step("large messages on a stream", async () => {
        const call = client.makeBidiStreamRequest("/test.Echo/Chat", id, id);
        const done = collect(call);
        const chunk = new Uint8Array(200_000).fill(7);
        for (let i = 0; i < 20; i++) call.write(Buffer.from(chunk));
        call.end();
        const r = await done;
        assertEquals([r.status.code, r.messages.length], [0, 21]);
        assertEquals(r.messages[3].length, 200_000);
      });
    });
  });

  Deno.test(`[${name}] cancellation and deadlines reach the handler`, async (t) => {
    const seen = {
      unaryAborted: false,
      streamCancelled: false,
      streamAborted: false,
      deadlineAborted: false,
    };
    const router = new GrpcRouter()
      .unary("/test.Slow/Wait", (_req, ctx) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener("abort", () => {
            if (ctx.metadata.has("grpc-timeout")) seen.deadlineAborted = true;
            else seen.unaryAborted = true;
            resolve(text("too late"));
          });
        }))
      .stream("/test.Slow/Stream", (stream, ctx) => {
        ctx.signal.addEventListener("abort", () => seen.streamAborted = true);
        return {
          onMessage(m) {
            stream.send(m);
          },
          onHalfClose() {},
          onCancel() {
            seen.streamCancelled = true;
          },
        };
      });
    await withServer(transport, router, async (port, client) => {
      await t.step("client cancels a unary call", async () => {
        const p = unary(client, "/test.Slow/Wait", "x");
        await new Promise((r) => setTimeout(r, 100));
        p.call!.cancel();
        const r = await p;
        assertEquals(r.error?.code, Status.CANCELLED);
        assert(await eventually(() => seen.unaryAborted), "ctx.signal aborted");
      });
      await t.step("client cancels a stream", async () => {
        const call = client.makeBidiStreamRequest("/test.Slow/Stream", id, id);
        const got = new Promise<string>((r) => call.once("data", (b: Buffer) => r(str(b))));
        call.on("error", () => {});
        call.write(Buffer.from("ping"));
        assertEquals(await got, "ping");
        call.cancel();
        assert(await eventually(() => seen.streamCancelled), "onCancel fired");
        assert(seen.streamAborted, "ctx.signal aborted");
      });
      await t.step("grpc-timeout: DEADLINE_EXCEEDED from the server and the signal aborts", async () => {
        const started = Date.now();
        const r = await rawCall(port, "/test.Slow/Wait", {
          chunks: [frame("x")],
          headers: { "grpc-timeout": "150m" },
        });
        assertEquals([r.status, r.message], ["4", "context deadline exceeded"]);
        assert(Date.now() - started >= 140, "not before the deadline");
        assert(await eventually(() => seen.deadlineAborted), "signal aborted on deadline");
      });
      await t.step("a stream reset mid-message, then the connection still serves", async () => {
        const session = http2.connect(`http://127.0.0.1:${port}`);
        session.on("error", () => {});
        await rawCall(port, "/test.Echo/Nope", {
          session,
          chunks: [frame("abc", 0, 100)],
          end: false,
          timeoutMs: 300,
          then: (req) => setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), 50),
        });
        const r = await rawCall(port, "/test.Slow/Stream", {
          session,
          chunks: [frame("still")],
          timeoutMs: 300,
        });
        assertEquals(unframe(r.data).map(str), ["still"]);
        session.destroy();
      });
    });
  });

  Deno.test(`[${name}] backpressure: send reports the high-water mark, waitDrain resumes`, async () => {
    const chunk = new Uint8Array(64 * 1024).fill(1);
    const report = { beforeFull: 0, sawFalse: false, drained: false, total: 0 };
    const router = new GrpcRouter().stream("/test.Flood/Go", (stream: ServerStream) => {
      void (async () => {
        for (let i = 0; i < 1000; i++) {
          report.total++;
          if (!stream.send(chunk)) {
            report.sawFalse = true;
            break;
          }
          report.beforeFull++;
        }
        await stream.waitDrain();
        report.drained = true;
        stream.send(text("last"));
        stream.end();
      })();
      return { onMessage() {}, onHalfClose() {}, onCancel() {} };
    });
    await withServer(transport, router, async (port) => {
      // A client that grants no flow-control window beyond the initial 64 KiB: the server's output piles up.
      const c = await RawH2.connect(port);
      try {
        await c.request(1, "/test.Flood/Go");
        await c.message(1, "");
        assert(await eventually(() => report.sawFalse), "send returned false");
        await new Promise((r) => setTimeout(r, 50));
        assertEquals(report.drained, false);
        assert(
          report.beforeFull * chunk.length >= HIGH_WATER_MARK / 2,
          `sent ${report.beforeFull} before full`,
        );
        assert(
          report.beforeFull * chunk.length <= HIGH_WATER_MARK * 8,
          `sent ${report.beforeFull} before full`,
        );
        assert(c.dataOn(1) <= 65_535, `no more than the window was sent (${c.dataOn(1)})`);
        // Open the windows: everything drains, waitDrain resolves, the call ends.
        await c.windowUpdate(0, 1 << 30);
        await c.windowUpdate(1, 1 << 30);
        const trailers = await c.next((f) => f.type === 1 && f.id === 1 && (f.flags & 1) === 1);
        assert(report.drained, "waitDrain resolved");
        assertEquals(trailers?.headers?.find(([n]) => n === "grpc-status")?.[1], "0");
        assertEquals(c.dataOn(1), report.total * (chunk.length + 5) + 4 + 5);
      } finally {
        await c.close();
      }
    });
  });

  Deno.test(`[${name}] non-gRPC requests go to httpFallback (HTTP/1.1 and HTTP/2)`, async () => {
    const router = testRouter();
    const listener = await listen(transport, router, {
      httpFallback: (req) =>
        Promise.resolve(
          req.path === "/health"
            ? { status: 200, headers: { "content-type": "application/json" }, body: '{"health":"true"}' }
            : { status: 418, body: `${req.method} ${req.path} ${req.body.length} ${req.headers.get("x-a")}` },
        ),
    });
    const plain = await listen(transport, router);
    try {
      const h = await fetch(`http://127.0.0.1:${listener.port}/health`);
      assertEquals([h.status, h.headers.get("content-type"), await h.text()], [
        200,
        "application/json",
        '{"health":"true"}',
      ]);
      const p = await fetch(`http://127.0.0.1:${listener.port}/v3/kv/put`, {
        method: "POST",
        body: "abcd",
        headers: { "x-a": "b" },
      });
      assertEquals([p.status, await p.text()], [418, "POST /v3/kv/put 4 b"]);
      const none = await fetch(`http://127.0.0.1:${plain.port}/health`);
      assertEquals([none.status, await none.text()], [404, "404 page not found\n"]);
      const session = http2.connect(`http://127.0.0.1:${listener.port}`);
      session.on("error", () => {});
      const h2 = await new Promise<[unknown, string]>((resolve) => {
        const req = session.request({ ":method": "GET", ":path": "/health" });
        let body = "";
        let status: unknown;
        req.on("response", (hd) => status = hd[":status"]);
        req.on("data", (d: Uint8Array) => body += str(d));
        req.on("close", () => resolve([status, body]));
        req.end();
      });
      session.destroy();
      assertEquals(h2, [200, '{"health":"true"}']);
    } finally {
      await listener.close();
      await plain.close();
    }
  });

  Deno.test(`[${name}] a connection-level protocol error only closes that connection`, async () => {
    await withServer(transport, testRouter(), async (port, client) => {
      assertEquals(str((await unary(client, "/test.Echo/Echo", "before")).value!), "before");
      for (
        const garbage of [
          // preface, empty SETTINGS, then DATA on stream 0 (a connection error)
          [
            ...text("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            0,
            0,
            0,
            4,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
          ],
          // not HTTP at all
          [...text("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"), 1, 2, 3],
          // a frame header promising more than the max frame size
          [
            ...text("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            0,
            0,
            0,
            4,
            0,
            0,
            0,
            0,
            0,
            0xff,
            0xff,
            0xff,
            1,
            5,
            0,
            0,
            0,
            1,
          ],
        ]
      ) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        await conn.write(new Uint8Array(garbage));
        const buf = new Uint8Array(4096);
        let closed = false;
        for (let i = 0; i < 50 && !closed; i++) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) closed = true;
        }
        conn.close();
        assert(closed, "the server closed the bad connection");
      }
      assertEquals(str((await unary(client, "/test.Echo/Echo", "after")).value!), "after");
    });
  });

  Deno.test(`[${name}] graceful close: streams end UNAVAILABLE, running unary calls finish`, async () => {
    let release: () => void = () => {};
    const router = testRouter().unary("/test.Slow/Short", () =>
      new Promise((resolve) => {
        release = () => resolve(text("finished"));
      }));
    const listener = await listen(transport, router);
    const client = new grpc.Client(`127.0.0.1:${listener.port}`, grpc.credentials.createInsecure());
    try {
      const call = client.makeBidiStreamRequest("/test.Echo/Chat", id, id);
      const streamDone = collect(call);
      call.write(Buffer.from("hi"));
      const slow = unary(client, "/test.Slow/Short", "");
      await new Promise((r) => setTimeout(r, 100));
      const started = Date.now();
      const closing = listener.close();
      setTimeout(() => release(), 100);
      const s = await streamDone;
      assertEquals([s.status.code, s.messages], [Status.UNAVAILABLE, ["hi"]]);
      assertEquals(str((await slow).value!), "finished");
      await closing;
      assert(Date.now() - started < 3000, "closed within a bounded time");
      const after = await unary(client, "/test.Echo/Echo", "x", undefined, { deadline: Date.now() + 1000 });
      assert(after.error !== undefined, "nothing is served after close");
    } finally {
      client.close();
      await listener.close();
    }
  });
}

/** grpc-js under Deno refuses an IP address as TLS server name: name the server "localhost". */
const SNI = { "grpc.ssl_target_name_override": "localhost" };

Deno.test("[node] TLS and mutual TLS", async (t) => {
  const certs = await makeCerts();
  try {
    const router = testRouter();
    await t.step("server TLS", async () => {
      const listener = await listen(serveNodeHttp2, router, {
        tls: { cert: certs.serverCert, key: certs.serverKey },
      });
      const client = new grpc.Client(
        `127.0.0.1:${listener.port}`,
        grpc.credentials.createSsl(Buffer.from(certs.ca)),
        SNI,
      );
      try {
        const r = JSON.parse(str((await unary(client, "/test.Echo/Meta", "")).value!));
        assertEquals(r.cn, null);
        const httpClient = Deno.createHttpClient({ caCerts: [certs.ca] });
        const h = await fetch(`https://localhost:${listener.port}/health`, { client: httpClient });
        assertEquals([h.status, await h.text()], [404, "404 page not found\n"]);
        httpClient.close();
      } finally {
        client.close();
        await listener.close();
      }
    });
    await t.step("mutual TLS: client certificate required and seen by the handler", async () => {
      const listener = await listen(serveNodeHttp2, router, {
        tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, requestClientCert: true },
      });
      const good = new grpc.Client(
        `127.0.0.1:${listener.port}`,
        grpc.credentials.createSsl(
          Buffer.from(certs.ca),
          Buffer.from(certs.clientKey),
          Buffer.from(certs.clientCert),
        ),
        SNI,
      );
      const anonymous = new grpc.Client(
        `127.0.0.1:${listener.port}`,
        grpc.credentials.createSsl(Buffer.from(certs.ca)),
        SNI,
      );
      const stranger = new grpc.Client(
        `127.0.0.1:${listener.port}`,
        grpc.credentials.createSsl(
          Buffer.from(certs.ca),
          Buffer.from(certs.strangerKey),
          Buffer.from(certs.strangerCert),
        ),
        SNI,
      );
      try {
        const r = JSON.parse(str((await unary(good, "/test.Echo/Meta", "")).value!));
        assertEquals([r.cn, r.raw], ["client-a", true]);
        const deadline = () => ({ deadline: Date.now() + 3000 });
        const a = await unary(anonymous, "/test.Echo/Echo", "x", undefined, deadline());
        assert(a.error !== undefined && a.value === undefined, "a client without a certificate is refused");
        const s = await unary(stranger, "/test.Echo/Echo", "x", undefined, deadline());
        assert(s.error !== undefined && s.value === undefined, "a certificate from another CA is refused");
      } finally {
        good.close();
        anonymous.close();
        stranger.close();
        await listener.close();
      }
    });
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("[h2] client activity: reads, writes and open streams are reported, and streams end at zero", async () => {
  const seen = { received: 0, answered: 0, open: 0, maxOpen: 0 };
  const conns = { received: new Set<number>(), answered: new Set<number>() };
  const clientActivity = {
    received: (conn: number) => {
      seen.received++;
      conns.received.add(conn);
    },
    answered: (conn: number) => {
      seen.answered++;
      conns.answered.add(conn);
    },
    streams: (delta: number) => {
      seen.open += delta;
      seen.maxOpen = Math.max(seen.maxOpen, seen.open);
    },
  };
  const listener = await listen(serveDenoH2, testRouter(), { clientActivity });
  const client = new grpc.Client(`127.0.0.1:${listener.port}`, grpc.credentials.createInsecure());
  try {
    for (let i = 0; i < 3; i++) {
      assertEquals(str((await unary(client, "/test.Echo/Echo", `m${i}`)).value!), `m${i}`);
    }
    assert(seen.received >= 3 && seen.answered >= 3, `reads and writes reported: ${JSON.stringify(seen)}`);
    assert(await eventually(() => seen.open === 0), `unary streams end: ${JSON.stringify(seen)}`);
    assertEquals(seen.maxOpen, 1);
    assertEquals([conns.received.size, conns.answered.size], [1, 1], "one connection");
    assertEquals([...conns.received], [...conns.answered], "numbered the same both ways");
    // a streaming call stays open until it ends; one still open when the server closes is counted out too
    const chat = client.makeBidiStreamRequest("/test.Echo/Chat", id, id);
    chat.on("error", () => {});
    chat.write(Buffer.from(text("hi")));
    await new Promise((r) => chat.once("data", r));
    assertEquals(seen.open, 1);
    const answered = seen.answered;
    assertEquals(str((await unary(client, "/test.Echo/Echo", "during")).value!), "during");
    assertEquals(seen.maxOpen, 2);
    assert(seen.answered > answered);
    assert(await eventually(() => seen.open === 1), "the unary call ended, the stream still open");
    // a connection that drops with a stream open
    const raw = await RawH2.connect(listener.port);
    await raw.request(1, "/test.Echo/Chat");
    assert(await eventually(() => seen.open === 2), "the raw stream is open");
    assertEquals(conns.received.size, 2, "a second connection, a second number");
    raw.conn.close();
    assert(await eventually(() => seen.open === 1), "the dropped connection's stream is counted out");
  } finally {
    await listener.close();
    client.close();
  }
  assertEquals(seen.open, 0);
});
