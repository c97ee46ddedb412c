import { assert, assertEquals } from "../../../tests/assert.ts";
import { freePorts } from "../../../tests/helpers.ts";
import { GrpcRouter, type HttpFallbackResponse } from "../grpc.ts";
import { serveNodeHttp2 } from "../node_http2.ts";
import { Http1Connection } from "./http1.ts";
import { serveDenoH2 } from "./transport.ts";
import { eventually, StreamingFallback } from "./stream_test_util.ts";

const HOST = "127.0.2.12";
const te = new TextEncoder();
const td = new TextDecoder();

/** A connection over a recording sink, answering every request with `answer()`. */
function connection(answer: () => HttpFallbackResponse, drained?: () => Promise<void>) {
  const out: string[] = [];
  let closed = false;
  let signal: AbortSignal | undefined;
  const conn = new Http1Connection(
    {
      write: (b) => out.push(td.decode(b)),
      close: () => (closed = true),
      ...(drained ? { drained } : {}),
    },
    (req) => {
      signal = req.signal;
      return Promise.resolve(answer());
    },
    1 << 20,
  );
  return { conn, out, closed: () => closed, signal: () => signal };
}

function body(pieces: string[], onCancel?: () => void): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (i < pieces.length) c.enqueue(te.encode(pieces[i++]));
      else c.close();
    },
    cancel: onCancel,
  });
}

Deno.test("HTTP/1.1: a streamed body is sent chunked, one chunk per piece, and the connection stays open", async () => {
  let drains = 0;
  const t = connection(
    () => ({
      status: 200,
      headers: { "content-type": "application/json" },
      body: "",
      stream: body(["ab", "", "cde"]),
    }),
    () => {
      drains++;
      return Promise.resolve();
    },
  );
  t.conn.feed(te.encode("POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"));
  assert(await eventually(() => t.out.join("").endsWith("0\r\n\r\n")), t.out.join(""));
  const text = t.out.join("");
  assert(text.startsWith("HTTP/1.1 200 OK\r\n"), text);
  assert(text.includes("Transfer-Encoding: chunked\r\n"), text);
  assert(!text.includes("Content-Length"), text);
  assert(text.endsWith("\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"), JSON.stringify(text));
  assertEquals(drains, 2, "the writer waits for the sink after each chunk");
  assert(!t.closed(), "keep-alive");
  // the next request on the connection is answered after the stream
  t.conn.feed(te.encode("POST /again HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  assert(await eventually(() => t.out.join("").split("HTTP/1.1 200 OK").length === 3));
  t.conn.shutdown();
});

Deno.test("HTTP/1.1: the body is cancelled and the signal aborted when the client goes away", async () => {
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(te.encode("first"));
    },
    cancel() {
      cancelled = true;
    },
  });
  const t = connection(() => ({ status: 200, body: "", stream }));
  t.conn.feed(te.encode("POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  assert(await eventually(() => t.out.join("").includes("5\r\nfirst\r\n")), t.out.join(""));
  assert(!t.signal()!.aborted);
  t.conn.end();
  assert(await eventually(() => cancelled), "the stream is cancelled");
  assert(t.signal()!.aborted, "the request's signal aborted");
  assert(await eventually(() => t.closed()), "the connection closes");
  assert(!t.out.join("").includes("0\r\n\r\n"), "no final chunk after the client left");
});

Deno.test("HTTP/1.0: a streamed body is sent as is and ends with the connection", async () => {
  const t = connection(() => ({ status: 200, body: "", stream: body(["x", "y"]) }));
  t.conn.feed(te.encode("POST /s HTTP/1.0\r\nContent-Length: 0\r\n\r\n"));
  assert(await eventually(() => t.closed()));
  const text = t.out.join("");
  assert(text.includes("Connection: close\r\n"), text);
  assert(text.endsWith("\r\n\r\nxy"), JSON.stringify(text));
});

for (const [name, transport] of [["h2", serveDenoH2], ["node", serveNodeHttp2]] as const) {
  Deno.test(`[${name}] HTTP/1.1 over a socket: fetch reads the stream as it comes; aborting cancels it`, async () => {
    const fallback = new StreamingFallback();
    const listener = await transport(new GrpcRouter(), {
      hostname: HOST,
      port: freePorts(HOST, 1)[0],
      maxReceiveMessageBytes: 1 << 20,
      httpFallback: fallback.handler,
    });
    const abort = new AbortController();
    try {
      const res = fetch(`http://${HOST}:${listener.port}/stream`, {
        method: "POST",
        body: "{}",
        signal: abort.signal,
      });
      await fallback.started;
      fallback.push("one\n");
      const r = await res;
      assertEquals(r.status, 200);
      const reader = r.body!.getReader();
      assertEquals(td.decode((await reader.read()).value), "one\n");
      fallback.push("two\n");
      assertEquals(td.decode((await reader.read()).value), "two\n");
      abort.abort();
      await reader.cancel().catch(() => {});
      assert(await eventually(() => fallback.cancelled), "the body is cancelled when the client goes away");
    } finally {
      await listener.close();
    }
  });
}
