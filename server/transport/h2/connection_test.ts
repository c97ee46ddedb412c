/**
 * HTTP/2 protocol behaviour, frame by frame, with a raw client: flow control, CONTINUATION, padding,
 * PING, stream limits, stream and connection errors, HPACK state, batching. The standard behaviour is
 * checked against both transports; error codes and encoder details against ours.
 */
import { GrpcRouter, type GrpcTransport } from "../grpc.ts";
import { serveNodeHttp2 } from "../node_http2.ts";
import { assert, assertEquals, frame, listen, type RawFrame, RawH2, unframe } from "../test_util.ts";
import { H2Connection } from "./connection.ts";
import { serveDenoH2 } from "./transport.ts";

const TRANSPORTS: [string, GrpcTransport][] = [["node", serveNodeHttp2], ["h2", serveDenoH2]];

const DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, PING = 6, GOAWAY = 7, WINDOW_UPDATE = 8;
const CONTINUATION = 9;
const END_STREAM = 1, END_HEADERS = 4, PADDED = 8, PRIORITY = 0x20;

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

function router(): GrpcRouter {
  return new GrpcRouter()
    .unary("/t.E/Echo", (req) => req)
    .stream("/t.E/Chat", (stream) => ({
      onMessage(m) {
        stream.send(m);
      },
      onHalfClose() {
        stream.end();
      },
      onCancel() {},
    }))
    .stream("/t.E/Hold", (stream) => ({
      onMessage(m) {
        stream.send(m);
      },
      onHalfClose() {},
      onCancel() {},
    }));
}

function header(f: RawFrame | undefined, name: string): string | undefined {
  return f?.headers?.find(([n]) => n === name)?.[1];
}

function u32(b: Uint8Array, i: number): number {
  return new DataView(b.buffer, b.byteOffset + i, 4).getUint32(0);
}

async function withConn(
  transport: GrpcTransport,
  fn: (c: RawH2, port: number) => Promise<void>,
  options: {
    settings?: [number, number][];
    maxConcurrentStreams?: number;
    headerTableSize?: number;
    maxReceiveMessageBytes?: number;
  } = {},
): Promise<void> {
  const l = await listen(transport, router(), {
    maxConcurrentStreams: options.maxConcurrentStreams,
    maxReceiveMessageBytes: options.maxReceiveMessageBytes ?? 1 << 20,
  });
  const c = await RawH2.connect(l.port, options.settings ?? [], { headerTableSize: options.headerTableSize });
  try {
    await fn(c, l.port);
  } finally {
    await c.close();
    await l.close();
  }
}

/** The reply to one unary call on stream `id`: DATA bytes and the trailers frame. */
async function reply(c: RawH2, id: number): Promise<{ messages: string[]; trailers?: RawFrame }> {
  const trailers = await c.next((f) => f.id === id && f.type === HEADERS && (f.flags & END_STREAM) !== 0);
  const data = c.frames.filter((f) => f.id === id && f.type === DATA);
  const all = new Uint8Array(data.reduce((n, f) => n + f.payload.length, 0));
  let off = 0;
  for (const f of data) {
    all.set(f.payload, off);
    off += f.payload.length;
  }
  return { messages: unframe(all).map(str), trailers };
}

for (const [name, transport] of TRANSPORTS) {
  Deno.test(`[${name}] h2: SETTINGS, PING, and a tiny flow-control window`, async () => {
    await withConn(transport, async (c) => {
      const settings = await c.next((f) => f.type === SETTINGS && (f.flags & 1) === 0);
      assert(settings !== undefined, "server SETTINGS");
      await c.frame(PING, 0, 0, [1, 2, 3, 4, 5, 6, 7, 8]);
      const pong = await c.next((f) => f.type === PING);
      assertEquals([pong?.flags, [...(pong?.payload ?? [])]], [1, [1, 2, 3, 4, 5, 6, 7, 8]]);
      const body = "x".repeat(1000);
      await c.request(1, "/t.E/Echo");
      await c.message(1, body);
      await c.next((f) => f.id === 1 && f.type === DATA);
      await new Promise((r) => setTimeout(r, 50));
      assertEquals(c.dataOn(1), 100, "no more than the 100-byte window");
      await c.windowUpdate(1, 10_000);
      const r = await reply(c, 1);
      assertEquals([header(r.trailers, "grpc-status"), r.messages], ["0", [body]]);
    }, { settings: [[4, 100]] });
  });

  Deno.test(`[${name}] h2: CONTINUATION, padding, priority`, async () => {
    await withConn(transport, async (c) => {
      const block = RawH2.requestBlock("/t.E/Echo", [["x-long", "v".repeat(300)]]);
      const a = block.slice(0, 10), b = block.slice(10, 200), d = block.slice(200);
      // HEADERS with PADDED and PRIORITY flags, then two CONTINUATION frames
      await c.frame(HEADERS, PADDED | PRIORITY, 1, [3, 0, 0, 0, 0, 16, ...a, 0, 0, 0]);
      await c.frame(CONTINUATION, 0, 1, b);
      await c.frame(CONTINUATION, END_HEADERS, 1, d);
      // a padded DATA frame carrying the message
      const msg = frame("padded");
      await c.frame(DATA, PADDED | END_STREAM, 1, [4, ...msg, 0, 0, 0, 0]);
      const r = await reply(c, 1);
      assertEquals([header(r.trailers, "grpc-status"), r.messages], ["0", ["padded"]]);
    });
  });

  // node:http2 (nghttp2 in Deno) answers these two with GOAWAY for the whole connection instead.
  Deno.test({
    name: `[${name}] h2: streams over the concurrency limit are refused`,
    ignore: name === "node",
  }, async () => {
    await withConn(transport, async (c) => {
      const settings = await c.next((f) => f.type === SETTINGS && (f.flags & 1) === 0);
      const advertised = new Map<number, number>();
      for (let i = 0; i + 6 <= (settings?.payload.length ?? 0); i += 6) {
        advertised.set((settings!.payload[i] << 8) | settings!.payload[i + 1], u32(settings!.payload, i + 2));
      }
      assertEquals(advertised.get(3), 2, "MAX_CONCURRENT_STREAMS advertised");
      await c.request(1, "/t.E/Chat");
      await c.request(3, "/t.E/Chat");
      await c.request(5, "/t.E/Chat");
      const rst = await c.next((f) => f.type === RST_STREAM);
      assertEquals([rst?.id, u32(rst!.payload, 0)], [5, 7], "REFUSED_STREAM");
      await c.message(1, "one");
      await c.message(3, "three");
      const [r1, r3] = [await reply(c, 1), await reply(c, 3)];
      assertEquals([r1.messages, r3.messages], [["one"], ["three"]]);
      // once those are done, a new stream is accepted again
      await c.request(7, "/t.E/Echo");
      await c.message(7, "seven");
      assertEquals((await reply(c, 7)).messages, ["seven"]);
    }, { maxConcurrentStreams: 2 });
  });

  Deno.test(
    { name: `[${name}] h2: a stream error resets only that stream`, ignore: name === "node" },
    async () => {
      await withConn(transport, async (c) => {
        await c.request(1, "/t.E/Chat");
        await c.request(3, "/t.E/Chat");
        await c.windowUpdate(1, 0); // a zero increment is a stream error
        const rst = await c.next((f) => f.type === RST_STREAM && f.id === 1);
        assertEquals(u32(rst!.payload, 0), 1, "PROTOCOL_ERROR");
        await c.message(3, "still here");
        assertEquals((await reply(c, 3)).messages, ["still here"]);
        assert(!c.closed, "the connection stays up");
      });
    },
  );

  Deno.test(`[${name}] h2: the peer's HPACK table size 0 is respected`, async () => {
    await withConn(transport, async (c) => {
      for (let i = 1; i <= 7; i += 2) {
        await c.request(i, "/t.E/Echo");
        await c.message(i, `call ${i}`);
        const r = await reply(c, i);
        assertEquals([header(r.trailers, "grpc-status"), r.messages], ["0", [`call ${i}`]]);
      }
      const errors = c.frames.filter((f) => f.type === GOAWAY);
      assertEquals(errors, []);
    }, { settings: [[1, 0]], headerTableSize: 0 });
  });

  Deno.test(`[${name}] h2: connection errors close only that connection`, async () => {
    const l = await listen(transport, router());
    const cases: [string, number, (c: RawH2) => Promise<void>][] = [
      ["frame over the max size", 6, (c) => c.send(RawH2.encode(PING, 0, 0, new Uint8Array(20_000)))],
      ["DATA on stream 0", 1, (c) => c.frame(DATA, 0, 0, [1, 2, 3])],
      ["header block interrupted", 1, async (c) => {
        await c.frame(HEADERS, 0, 1, RawH2.requestBlock("/t.E/Echo").slice(0, 5));
        await c.frame(PING, 0, 0, [0, 0, 0, 0, 0, 0, 0, 0]);
      }],
      ["undecodable header block", 9, (c) => c.frame(HEADERS, END_HEADERS, 1, [0x80])],
      ["connection window overflow", 3, (c) => c.windowUpdate(0, 0x7fffffff)],
      ["even stream id", 1, (c) => c.frame(HEADERS, END_HEADERS, 2, RawH2.requestBlock("/t.E/Echo"))],
      ["PUSH_PROMISE from a client", 1, (c) => c.frame(5, END_HEADERS, 1, [0, 0, 0, 2])],
    ];
    try {
      for (const [what, code, act] of cases) {
        const c = await RawH2.connect(l.port);
        try {
          await c.next((f) => f.type === SETTINGS);
          await act(c);
          const goaway = await c.next((f) => f.type === GOAWAY);
          assert(await c.waitClosed(), `${what}: connection closed`);
          if (name === "h2") assertEquals(goaway ? u32(goaway.payload, 4) : -1, code, `${what}: GOAWAY code`);
        } finally {
          await c.close();
        }
      }
      // garbage instead of the preface
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: l.port });
      await conn.write(text("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + "z".repeat(40)));
      const buf = new Uint8Array(1024);
      let closed = false;
      for (let i = 0; i < 100 && !closed; i++) closed = (await conn.read(buf).catch(() => null)) === null;
      conn.close();
      assert(closed, "bad preface: closed");
      // everyone else is still served
      const ok = await RawH2.connect(l.port);
      await ok.request(1, "/t.E/Echo");
      await ok.message(1, "fine");
      assertEquals((await reply(ok, 1)).messages, ["fine"]);
      await ok.close();
    } finally {
      await l.close();
    }
  });

  Deno.test(`[${name}] h2: graceful close ends streams with UNAVAILABLE and closes without GOAWAY`, async () => {
    const l = await listen(transport, router());
    const c = await RawH2.connect(l.port);
    try {
      await c.request(1, "/t.E/Chat");
      await c.message(1, "hi", false);
      await c.next((f) => f.type === DATA && f.id === 1);
      const closing = l.close();
      const status = await c.next((f) => f.id === 1 && f.type === HEADERS && (f.flags & END_STREAM) !== 0);
      assertEquals(header(status, "grpc-status"), "14");
      assert(await c.waitClosed(), "closed");
      await closing;
      // etcd 3.4 sends none either, and Deno's node:http2 clients crash on one with calls in flight
      assertEquals(c.frames.filter((f) => f.type === GOAWAY).length, 0, "no GOAWAY");
    } finally {
      await c.close();
      await l.close();
    }
  });
}

Deno.test("[h2] h2: repeated responses cost two bytes of header each (HPACK dynamic table)", async () => {
  await withConn(serveDenoH2, async (c) => {
    for (let i = 1; i <= 5; i += 2) {
      await c.request(i, "/t.E/Echo");
      await c.message(i, "x");
      await reply(c, i);
    }
    const blocks = c.frames.filter((f) => f.type === HEADERS && f.id > 1).map((f) => f.payload.length);
    assertEquals(blocks, [2, 2, 2, 2], "response headers and trailers are dynamic-table indexes");
  });
});

Deno.test("[h2] h2: client GOAWAY lets running calls finish, then the connection closes", async () => {
  await withConn(serveDenoH2, async (c) => {
    await c.request(1, "/t.E/Chat");
    await c.frame(GOAWAY, 0, 0, [0, 0, 0, 1, 0, 0, 0, 0]);
    await c.message(1, "last words");
    const r = await reply(c, 1);
    assertEquals(r.messages, ["last words"]);
    assert(await c.waitClosed(), "closed after the last stream");
  });
});

Deno.test("[h2] h2: DATA after END_STREAM is a stream error; the connection goes on", async () => {
  await withConn(serveDenoH2, async (c) => {
    await c.request(1, "/t.E/Hold");
    await c.message(1, "a", true);
    await c.next((f) => f.type === DATA && f.id === 1);
    await c.message(1, "b", false);
    const rst = await c.next((f) => f.type === RST_STREAM && f.id === 1);
    assertEquals(u32(rst!.payload, 0), 5, "STREAM_CLOSED");
    await c.request(3, "/t.E/Echo");
    await c.message(3, "ok");
    assertEquals((await reply(c, 3)).messages, ["ok"]);
  });
});

Deno.test("[h2] h2: everything produced in one turn leaves in one socket write", async () => {
  const writes: Uint8Array[] = [];
  let closed = false;
  const conn = new H2Connection(
    {
      write: (b) => {
        writes.push(b.slice());
        return Promise.resolve();
      },
      close: () => closed = true,
    },
    { router: router(), options: { hostname: "", port: 0, maxReceiveMessageBytes: 1 << 20 }, closing: false },
    "test:1",
  );
  const input: Uint8Array[] = [
    text("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    RawH2.encode(SETTINGS, 0, 0, []),
  ];
  const n = 100;
  for (let i = 0; i < n; i++) {
    const id = 2 * i + 1;
    input.push(RawH2.encode(HEADERS, END_HEADERS, id, RawH2.requestBlock("/t.E/Echo")));
    input.push(RawH2.encode(DATA, END_STREAM, id, frame(`m${i}`)));
  }
  const all = new Uint8Array(input.reduce((s, b) => s + b.length, 0));
  let off = 0;
  for (const b of input) {
    all.set(b, off);
    off += b.length;
  }
  conn.receive(all);
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(writes.length, 1, "one write");
  let trailers = 0;
  for (let o = 0; o + 9 <= writes[0].length;) {
    const len = (writes[0][o] << 16) | (writes[0][o + 1] << 8) | writes[0][o + 2];
    if (writes[0][o + 3] === HEADERS && (writes[0][o + 4] & END_STREAM) !== 0) trailers++;
    assert(writes[0][o + 3] !== RST_STREAM, "no resets: every request had ended");
    o += 9 + len;
  }
  assertEquals(trailers, n, "all responses in it");
  conn.destroy();
  assert(closed);
  await conn.closed;
});

Deno.test("[h2] h2: WINDOW_UPDATE frames keep a long upload flowing", async () => {
  await withConn(serveDenoH2, async (c) => {
    // 3 MiB through a 1 MiB stream window and the connection window: the server must open both.
    const big = new Uint8Array(3 << 20).fill(9);
    const msg = frame(big);
    await c.request(1, "/t.E/Echo");
    const chunk = 16_384;
    let sent = 0;
    let granted = 65_535; // the default until the server's SETTINGS arrive
    const seen = (): number =>
      c.frames.filter((f) => f.type === WINDOW_UPDATE && f.id === 1).reduce(
        (n, f) => n + u32(f.payload, 0),
        0,
      );
    await c.next((f) => f.type === SETTINGS && (f.flags & 1) === 0);
    granted = 1 << 20;
    for (let i = 0; sent < msg.length && i < 10_000; i++) {
      const allowed = granted + seen() - sent;
      if (allowed <= 0) {
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
      const n = Math.min(chunk, allowed, msg.length - sent);
      await c.frame(DATA, sent + n === msg.length ? END_STREAM : 0, 1, msg.subarray(sent, sent + n));
      sent += n;
    }
    assertEquals(sent, msg.length, "all sent within the windows");
    await c.windowUpdate(0, 8 << 20);
    await c.windowUpdate(1, 8 << 20);
    const trailers = await c.next(
      (f) => f.id === 1 && f.type === HEADERS && (f.flags & END_STREAM) !== 0,
      10_000,
    );
    assertEquals(header(trailers, "grpc-status"), "0");
    assertEquals(c.dataOn(1), msg.length);
  }, { settings: [[4, 1 << 24]], maxReceiveMessageBytes: 8 << 20 });
});
