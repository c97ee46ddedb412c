import { assert, assertEquals } from "../../../tests/assert.ts";
import { freePorts } from "../../../tests/helpers.ts";
import { GrpcRouter } from "../grpc.ts";
import { serveNodeHttp2 } from "../node_http2.ts";
import { serveDenoH2 } from "./transport.ts";
import { eventually, h2Request, StreamingFallback } from "./stream_test_util.ts";

const HOST = "127.0.2.11";

for (const [name, transport] of [["h2", serveDenoH2], ["node", serveNodeHttp2]] as const) {
  Deno.test(`[${name}] HTTP/2 fallback: a streamed body goes out as it is produced, cancelled on reset`, async () => {
    const fallback = new StreamingFallback();
    const listener = await transport(new GrpcRouter(), {
      hostname: HOST,
      port: freePorts(HOST, 1)[0],
      maxReceiveMessageBytes: 1 << 20,
      httpFallback: fallback.handler,
    });
    const client = h2Request(HOST, listener.port, "/stream");
    try {
      await fallback.started;
      fallback.push("one\n");
      assertEquals(await client.status, 200);
      assertEquals(await client.until(4), "one\n");
      fallback.push("two\n");
      assertEquals(await client.until(8), "one\ntwo\n");
      assert(fallback.signal !== undefined && !fallback.signal.aborted, "the request is live");
      client.reset();
      assert(await eventually(() => fallback.cancelled), "the body is cancelled when the client resets");
      assert(fallback.signal.aborted, "the request's signal aborts");
    } finally {
      await client.close();
      await listener.close();
    }
  });

  Deno.test(`[${name}] HTTP/2 fallback: a streamed body larger than the windows arrives whole, then ends`, async () => {
    const fallback = new StreamingFallback(3 << 20);
    const listener = await transport(new GrpcRouter(), {
      hostname: HOST,
      port: freePorts(HOST, 1)[0],
      maxReceiveMessageBytes: 1 << 20,
      httpFallback: fallback.handler,
    });
    const client = h2Request(HOST, listener.port, "/big");
    try {
      const body = await client.ended;
      assertEquals(body.length, 3 << 20);
      // each 64 KiB piece is filled with its index: order and content survived flow control
      for (let i = 0; i < body.length; i += 64 * 1024) assertEquals(body[i], (i / (64 * 1024)) & 0xff);
    } finally {
      await client.close();
      await listener.close();
    }
  });

  Deno.test(`[${name}] HTTP/2 fallback: a finished body ends the stream`, async () => {
    const fallback = new StreamingFallback();
    const listener = await transport(new GrpcRouter(), {
      hostname: HOST,
      port: freePorts(HOST, 1)[0],
      maxReceiveMessageBytes: 1 << 20,
      httpFallback: fallback.handler,
    });
    const client = h2Request(HOST, listener.port, "/stream");
    try {
      await fallback.started;
      fallback.push("only\n");
      fallback.end();
      assertEquals(new TextDecoder().decode(await client.ended), "only\n");
      assert(!fallback.cancelled, "an ended body is not cancelled");
    } finally {
      await client.close();
      await listener.close();
    }
  });
}
