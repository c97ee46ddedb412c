/**
 * Unit tests of the transport-independent call logic (framing, routing, limits, unary and streaming
 * dispatch, deadlines, cancellation), driven through a recording fake transport.
 */
import { assert, assertEquals, assertThrows } from "./test_util.ts";
import {
  frameMessage,
  GrpcCall,
  grpcContentType,
  GrpcRouter,
  GrpcRouterError,
  START_OK,
  START_PROTOCOL_ERROR,
  type StreamCallbacks,
} from "./grpc.ts";
import {
  decodeGrpcMessage,
  encodeGrpcMessage,
  GrpcError,
  parseGrpcTimeout,
  Status,
  type StatusCode,
} from "./status.ts";

type Event = ["headers"] | ["message", string] | ["unary", string] | ["status", StatusCode, string];

class FakeCall extends GrpcCall {
  readonly events: Event[] = [];
  buffered = 0;
  constructor(path: string, readonly headers = new Map<string, string>()) {
    super(path);
  }
  protected readMetadata(): Map<string, string> {
    return this.headers;
  }
  protected writeMessage(message: Uint8Array): void {
    this.events.push(["message", new TextDecoder().decode(message)]);
    this.buffered += message.length;
  }
  protected writeUnary(message: Uint8Array): void {
    this.events.push(["unary", new TextDecoder().decode(message)]);
  }
  protected writeStatus(status: StatusCode, encodedMessage: string): void {
    this.events.push(["status", status, encodedMessage]);
  }
  protected bufferedBytes(): number {
    return this.buffered;
  }
  waitDrain(): Promise<void> {
    return Promise.resolve();
  }
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

function framed(...messages: string[]): Uint8Array {
  const parts = messages.map((m) => frameMessage(text(m)));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function echoRouter(): GrpcRouter {
  return new GrpcRouter()
    .unary("/test.Echo/Echo", (req) => req)
    .unary("/test.Echo/Upper", async (req) => {
      await Promise.resolve();
      return text(str(req).toUpperCase());
    })
    .unary("/test.Echo/Fail", () => {
      throw new GrpcError(Status.NOT_FOUND, "etcdserver: requested lease not found");
    })
    .unary("/test.Echo/Crash", () => {
      throw new TypeError("boom");
    })
    .unary("/test.Echo/Reject", () => Promise.reject(new Error("late boom")));
}

function flush(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

Deno.test("router: grpc-go's answers for unknown services, methods and malformed paths", () => {
  const r = echoRouter();
  assertEquals(r.route("/test.Echo/Echo").kind, 1);
  assertEquals(r.route("/test.Echo/Nope").error?.message, "unknown method Nope for service test.Echo");
  assertEquals(r.route("/test.Echo/Nope").error?.status, Status.UNIMPLEMENTED);
  assertEquals(r.route("/test.Nope/Echo").error?.message, "unknown service test.Nope");
  assertEquals(r.route("/onlyone").error?.message, 'malformed method name: "/onlyone"');
  assertEquals(r.route("/onlyone").error?.status, Status.RESOURCE_EXHAUSTED);
  assertEquals(r.route("nopath").error?.message, 'malformed method name: "nopath"');
  assertThrows(() => r.unary("/test.Echo/Echo", (b) => b), GrpcRouterError, "twice");
  assertThrows(() => r.unary("Echo", (b) => b), GrpcRouterError, "bad method path");
  assertEquals(r.paths().length, 5);
});

Deno.test("status helpers: grpc-message percent-encoding, grpc-timeout, content-type", () => {
  assertEquals(encodeGrpcMessage("plain text"), "plain text");
  assertEquals(encodeGrpcMessage("100% é\n"), "100%25 %C3%A9%0A");
  assertEquals(decodeGrpcMessage("100%25 %C3%A9%0A"), "100% é\n");
  assertEquals(decodeGrpcMessage("bad %zz %"), "bad %zz %");
  assertEquals(parseGrpcTimeout("1n"), 1e-6);
  assertEquals(parseGrpcTimeout("250m"), 250);
  assertEquals(parseGrpcTimeout("5S"), 5000);
  assertEquals(parseGrpcTimeout("2H"), 7_200_000);
  assertEquals(parseGrpcTimeout("99999999H"), Infinity);
  assertEquals(parseGrpcTimeout("123456789S"), undefined, "more than 8 digits");
  assertEquals(parseGrpcTimeout("xx"), undefined);
  assertEquals(parseGrpcTimeout("5"), undefined);
  assertEquals(parseGrpcTimeout("5s"), undefined);
  assertEquals(grpcContentType("application/grpc"), "application/grpc");
  assertEquals(grpcContentType("application/grpc+proto"), "application/grpc+proto");
  assertEquals(grpcContentType("application/grpc; charset=utf-8"), "application/grpc+ charset=utf-8");
  assertEquals(grpcContentType("application/grpcx"), undefined);
  assertEquals(grpcContentType("application/json"), undefined);
  assertEquals(grpcContentType(undefined), undefined);
  const e = new GrpcError(Status.NOT_FOUND, "x");
  assertEquals([e.code, e.status, e.message, e instanceof Error], ["GRPC_ERROR", 5, "x", true]);
});

Deno.test("unary: dispatched on the first message whatever the chunking", async (t) => {
  const router = echoRouter();
  const body = framed("hello world");
  for (let split = 0; split <= body.length; split++) {
    const c = new FakeCall("/test.Echo/Echo");
    assertEquals(c.start(router, 1024, undefined, undefined), START_OK);
    c.receive(body.slice(0, split));
    if (split < body.length) {
      assertEquals(c.events, [], `nothing before the message is whole (split ${split})`);
    }
    c.receive(body.slice(split));
    c.receiveEnd();
    assertEquals(c.events, [["unary", "hello world"]], `split at ${split}`);
    assert(c.closed);
  }
  await t.step("byte by byte", () => {
    const c = new FakeCall("/test.Echo/Echo");
    c.start(router, 1024, undefined, undefined);
    for (const b of body) c.receive(new Uint8Array([b]));
    assertEquals(c.events, [["unary", "hello world"]]);
  });
  await t.step("answers without waiting for the half-close; later messages are ignored", () => {
    const c = new FakeCall("/test.Echo/Echo");
    c.start(router, 1024, undefined, undefined);
    c.receive(framed("one", "two"));
    c.receive(framed("three"));
    c.receiveEnd();
    assertEquals(c.events, [["unary", "one"]]);
  });
  await t.step("async handler", async () => {
    const c = new FakeCall("/test.Echo/Upper");
    c.start(router, 1024, undefined, undefined);
    c.receive(framed("abc"));
    assertEquals(c.events, []);
    await flush();
    assertEquals(c.events, [["unary", "ABC"]]);
  });
  await t.step("empty message", () => {
    const c = new FakeCall("/test.Echo/Echo");
    c.start(router, 1024, undefined, undefined);
    c.receive(framed(""));
    assertEquals(c.events, [["unary", ""]]);
  });
});

Deno.test("unary: errors and malformed input", async (t) => {
  const router = echoRouter();
  const run = async (path: string, input: Uint8Array[], end = true, encoding?: string): Promise<Event[]> => {
    const c = new FakeCall(path);
    c.start(router, 16, undefined, encoding);
    for (const chunk of input) c.receive(chunk);
    if (end) c.receiveEnd();
    await flush();
    return c.events;
  };
  await t.step("GrpcError keeps its status; other throws are UNKNOWN", async () => {
    assertEquals(await run("/test.Echo/Fail", [framed("x")]), [[
      "status",
      Status.NOT_FOUND,
      "etcdserver: requested lease not found",
    ]]);
    assertEquals(await run("/test.Echo/Crash", [framed("x")]), [["status", Status.UNKNOWN, "boom"]]);
    assertEquals(await run("/test.Echo/Reject", [framed("x")]), [["status", Status.UNKNOWN, "late boom"]]);
  });
  await t.step("unknown method answers at once", async () => {
    assertEquals(await run("/test.Echo/Nope", [], false), [[
      "status",
      Status.UNIMPLEMENTED,
      "unknown method Nope for service test.Echo",
    ]]);
  });
  await t.step("zero messages, truncated prefix, truncated message", async () => {
    assertEquals(await run("/test.Echo/Echo", []), [["status", Status.UNKNOWN, "EOF"]]);
    assertEquals(await run("/test.Echo/Echo", [new Uint8Array([0, 0])]), [[
      "status",
      Status.UNKNOWN,
      "unexpected EOF",
    ]]);
    assertEquals(await run("/test.Echo/Echo", [framed("abcdef").subarray(0, 8)]), [[
      "status",
      Status.UNKNOWN,
      "unexpected EOF",
    ]]);
  });
  await t.step("compression flags and encodings", async () => {
    const compressed = framed("x");
    compressed[0] = 1;
    assertEquals(await run("/test.Echo/Echo", [compressed]), [[
      "status",
      Status.INTERNAL,
      "grpc: compressed flag set with identity or empty encoding",
    ]]);
    const weird = framed("x");
    weird[0] = 2;
    assertEquals(await run("/test.Echo/Echo", [weird]), [[
      "status",
      Status.INTERNAL,
      "grpc: received unexpected payload format 2",
    ]]);
    assertEquals(await run("/test.Echo/Echo", [framed("x")], true, "gzip"), [[
      "status",
      Status.UNIMPLEMENTED,
      'grpc: Decompressor is not installed for grpc-encoding "gzip"',
    ]]);
    assertEquals(await run("/test.Echo/Echo", [framed("x")], true, "identity"), [["unary", "x"]]);
  });
  await t.step("over the limit: RESOURCE_EXHAUSTED as soon as the prefix is known", async () => {
    const big = framed("x".repeat(17));
    assertEquals(await run("/test.Echo/Echo", [big.subarray(0, 5)], false), [[
      "status",
      Status.RESOURCE_EXHAUSTED,
      "grpc: received message larger than max (17 vs. 16)",
    ]]);
    assertEquals(await run("/test.Echo/Echo", [framed("x".repeat(16))]), [["unary", "x".repeat(16)]]);
  });
  await t.step("percent-encoded status text", () => {
    const r = new GrpcRouter().unary("/t.S/M", () => {
      throw new GrpcError(Status.INVALID_ARGUMENT, "bad key 100%\u00e9");
    });
    const c = new FakeCall("/t.S/M");
    c.start(r, 16, undefined, undefined);
    c.receive(framed("x"));
    assertEquals(c.events, [["status", Status.INVALID_ARGUMENT, "bad key 100%25%C3%A9"]]);
  });
  await t.step("malformed grpc-timeout asks the transport for a PROTOCOL_ERROR reset", () => {
    const c = new FakeCall("/test.Echo/Echo");
    assertEquals(c.start(router, 16, "soon", undefined), START_PROTOCOL_ERROR);
    assert(c.closed);
    assertEquals(c.events, []);
  });
});

Deno.test("unary: deadline and cancellation abort the signal", async (t) => {
  await t.step("deadline", async () => {
    let signal: AbortSignal | undefined;
    const r = new GrpcRouter().unary("/t.S/Slow", (_req, ctx) => {
      signal = ctx.signal;
      return new Promise((resolve) => ctx.signal.addEventListener("abort", () => resolve(text("late"))));
    });
    const c = new FakeCall("/t.S/Slow");
    c.start(r, 16, "20m", undefined);
    c.receive(framed("x"));
    for (let i = 0; i < 100 && c.events.length === 0; i++) await new Promise((res) => setTimeout(res, 5));
    assertEquals(c.events, [["status", Status.DEADLINE_EXCEEDED, "context deadline exceeded"]]);
    assert(signal?.aborted);
    await flush();
    assertEquals(c.events.length, 1, "the late answer is dropped");
  });
  await t.step("cancel before the signal is first read: it reads as aborted", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((res) => release = res);
    let aborted: boolean | undefined;
    const r = new GrpcRouter().unary("/t.S/Wait", async (_req, ctx) => {
      await gate;
      aborted = ctx.signal.aborted;
      return text("x");
    });
    const c = new FakeCall("/t.S/Wait");
    c.start(r, 16, "10S", undefined);
    c.receive(framed("x"));
    c.cancel();
    release();
    await flush();
    assertEquals(aborted, true);
    assertEquals(c.events, [], "nothing is written after a cancel");
  });
  await t.step("context fields", () => {
    let seen: unknown;
    const r = new GrpcRouter().unary("/t.S/Ctx", (_req, ctx) => {
      seen = [ctx.method, ctx.metadata.get("token"), ctx.signal.aborted];
      return text("");
    });
    const c = new FakeCall("/t.S/Ctx", new Map([["token", "abc"]]));
    c.start(r, 16, undefined, undefined);
    c.receive(framed("x"));
    assertEquals(seen, ["/t.S/Ctx", "abc", false]);
  });
});

Deno.test("streaming: messages both ways, half-close, end, cancel", async (t) => {
  const log: string[] = [];
  const router = new GrpcRouter().stream("/t.S/Chat", (stream, ctx) => {
    log.push(`open ${ctx.method}`);
    const cb: StreamCallbacks = {
      onMessage(m) {
        const s = str(m);
        if (s === "fail") throw new GrpcError(Status.ABORTED, "no");
        stream.send(text(`echo ${s}`));
      },
      onHalfClose() {
        log.push("half-close");
        stream.end();
      },
      onCancel() {
        log.push("cancel");
      },
    };
    return cb;
  });
  await t.step("several messages per chunk and across chunks", () => {
    log.length = 0;
    const c = new FakeCall("/t.S/Chat");
    c.start(router, 64, undefined, undefined);
    const all = framed("a", "bb", "ccc");
    c.receive(all.subarray(0, 9));
    c.receive(all.subarray(9));
    c.receiveEnd();
    assertEquals(c.events, [["message", "echo a"], ["message", "echo bb"], ["message", "echo ccc"], [
      "status",
      Status.OK,
      "",
    ]]);
    assertEquals(log, ["open /t.S/Chat", "half-close"]);
    c.cancel();
    assertEquals(log, ["open /t.S/Chat", "half-close"], "no onCancel after a normal end");
  });
  await t.step("client reset: onCancel and the signal", () => {
    log.length = 0;
    const c = new FakeCall("/t.S/Chat");
    c.start(router, 64, undefined, undefined);
    const signal = c.signal;
    c.receive(framed("a"));
    c.cancel();
    assertEquals(log, ["open /t.S/Chat", "cancel"]);
    assert(signal.aborted);
    assert(c.closed);
    assertEquals(c.send(text("late")), false);
    assertEquals(c.events, [["message", "echo a"]]);
  });
  await t.step("a throwing onMessage ends the call with its status and cancels", () => {
    log.length = 0;
    const c = new FakeCall("/t.S/Chat");
    c.start(router, 64, undefined, undefined);
    c.receive(framed("fail", "more"));
    assertEquals(c.events, [["status", Status.ABORTED, "no"]]);
    assertEquals(log, ["open /t.S/Chat", "cancel"]);
  });
  await t.step("oversize and truncated messages end only this call", () => {
    log.length = 0;
    const c = new FakeCall("/t.S/Chat");
    c.start(router, 4, undefined, undefined);
    c.receive(framed("ok", "toolong"));
    assertEquals(c.events, [["message", "echo ok"], [
      "status",
      Status.RESOURCE_EXHAUSTED,
      "grpc: received message larger than max (7 vs. 4)",
    ]]);
    const d = new FakeCall("/t.S/Chat");
    d.start(router, 64, undefined, undefined);
    d.receive(framed("abc").subarray(0, 6));
    d.receiveEnd();
    assertEquals(d.events, [["status", Status.UNKNOWN, "unexpected EOF"]]);
    assertEquals(log, ["open /t.S/Chat", "cancel", "open /t.S/Chat", "cancel"]);
  });
  await t.step("server-side end with an error, and send after end", () => {
    const r = new GrpcRouter().stream("/t.S/Feed", (stream) => {
      stream.send(text("1"));
      stream.send(text("2"));
      stream.end(new GrpcError(Status.OUT_OF_RANGE, "compacted"));
      stream.end();
      return { onMessage() {}, onHalfClose() {}, onCancel() {} };
    });
    const c = new FakeCall("/t.S/Feed");
    c.start(r, 64, undefined, undefined);
    assertEquals(c.events, [["message", "1"], ["message", "2"], [
      "status",
      Status.OUT_OF_RANGE,
      "compacted",
    ]]);
    assertEquals(c.send(text("3")), false);
  });
  await t.step("send reports the high-water mark", () => {
    let results: boolean[] = [];
    const r = new GrpcRouter().stream("/t.S/Flood", (stream) => {
      const chunk = new Uint8Array(256 * 1024);
      results = [stream.send(chunk), stream.send(chunk), stream.send(chunk), stream.send(chunk)];
      return { onMessage() {}, onHalfClose() {}, onCancel() {} };
    });
    const c = new FakeCall("/t.S/Flood");
    c.start(r, 64, undefined, undefined);
    assertEquals(results, [true, true, true, false]);
    c.cancel();
  });
  await t.step("a throwing handler ends the call at once", () => {
    const r = new GrpcRouter().stream("/t.S/Bad", () => {
      throw new Error("nope");
    });
    const c = new FakeCall("/t.S/Bad");
    c.start(r, 64, undefined, undefined);
    assertEquals(c.events, [["status", Status.UNKNOWN, "nope"]]);
  });
  await t.step("deadline cancels a stream", async () => {
    log.length = 0;
    const c = new FakeCall("/t.S/Chat");
    c.start(router, 64, "10m", undefined);
    for (let i = 0; i < 100 && c.events.length === 0; i++) await new Promise((res) => setTimeout(res, 5));
    assertEquals(c.events, [["status", Status.DEADLINE_EXCEEDED, "context deadline exceeded"]]);
    assertEquals(log, ["open /t.S/Chat", "cancel"]);
  });
});
