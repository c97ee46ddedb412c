/**
 * The fault proxy (proxy.ts) between small local servers: bytes pass unchanged and in order, delays are
 * what was asked (roughly: the machine is shared), a blackhole drops one way only, resets close the
 * connections of the moment (and again and again), faults can be limited to one named peer, buffers stay
 * bounded, and heal and close undo everything.
 */
import { assert, assertEquals } from "../assert.ts";
import { sleep, waitUntil } from "../helpers.ts";
import { FaultProxy, peerSender } from "./proxy.ts";

const HOST = "127.0.3.2";
const PROXY_HOST = "127.0.3.3";

/** A server on {@link HOST} that echoes (or, `sink`, only counts) what each connection sends. */
class TestServer {
  readonly listener: Deno.TcpListener;
  /** Bytes received, per connection in accept order. */
  readonly received: number[] = [];
  readonly conns = new Set<Deno.Conn>();
  readonly #serving: Promise<void>;

  constructor(readonly mode: "echo" | "sink" | "stall") {
    this.listener = Deno.listen({ hostname: HOST, port: 0 });
    this.#serving = this.#serve();
  }

  get port(): number {
    return this.listener.addr.port;
  }

  async #serve(): Promise<void> {
    const handlers: Promise<void>[] = [];
    try {
      for await (const conn of this.listener) {
        this.conns.add(conn);
        const index = this.received.push(0) - 1;
        handlers.push(this.#handle(conn, index));
      }
    } catch {
      // closed
    }
    await Promise.all(handlers);
  }

  async #handle(conn: Deno.Conn, index: number): Promise<void> {
    const buf = new Uint8Array(16 * 1024);
    try {
      if (this.mode === "stall") {
        // never reads: what is sent piles up in the socket, then in the proxy
        await conn.read(new Uint8Array(0)).catch(() => null);
        return;
      }
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        this.received[index] += n;
        if (this.mode === "echo") await writeAll(conn, buf.subarray(0, n));
      }
    } catch {
      // closed from our side, or reset
    } finally {
      this.conns.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  }

  async close(): Promise<void> {
    this.listener.close();
    for (const c of this.conns) {
      try {
        c.close();
      } catch {
        // already closed
      }
    }
    await this.#serving;
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

/** Reads exactly `n` bytes, or fewer when the connection ends. */
async function readN(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await conn.read(out.subarray(got));
    if (r === null) return out.subarray(0, got);
    got += r;
  }
  return out;
}

/** Whether the connection ends (EOF or error) within `ms`, reading and discarding what arrives. */
async function endsWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  const buf = new Uint8Array(4096);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((r) => timer = setTimeout(() => r(false), ms));
  const ended = (async () => {
    try {
      while ((await conn.read(buf)) !== null) { /* discard */ }
    } catch {
      // reset
    }
    return true;
  })();
  const result = await Promise.race([ended, timeout]);
  clearTimeout(timer);
  if (!result) {
    conn.close(); // lets the pending read finish
    await ended;
  }
  return result;
}

function dial(proxy: FaultProxy): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: proxy.addr.hostname, port: proxy.addr.port });
}

/** Round-trip time of `bytes` through an echo, in ms. */
async function roundTrip(conn: Deno.Conn, bytes = 16): Promise<number> {
  const data = new Uint8Array(bytes).fill(7);
  const start = performance.now();
  await writeAll(conn, data);
  const back = await readN(conn, bytes);
  assertEquals(back.length, bytes, "echo cut short");
  return performance.now() - start;
}

async function withProxy(
  mode: "echo" | "sink" | "stall",
  fn: (proxy: FaultProxy, server: TestServer) => Promise<void>,
  options: { identify?: (text: string) => string | undefined; maxQueuedBytes?: number } = {},
): Promise<void> {
  const server = new TestServer(mode);
  const proxy = FaultProxy.listen({
    hostname: PROXY_HOST,
    target: { hostname: HOST, port: server.port },
    seed: 7,
    ...options,
  });
  try {
    await fn(proxy, server);
  } finally {
    await proxy.close();
    await server.close();
  }
}

Deno.test("proxy: listens on 127.0.0.0/8 only", () => {
  let refused = false;
  try {
    FaultProxy.listen({ hostname: "0.0.0.0", target: { hostname: HOST, port: 1 } });
  } catch {
    refused = true;
  }
  assert(refused, "a proxy on 0.0.0.0 was allowed");
});

Deno.test("proxy: forwards both ways unchanged, in order even under jitter", async () => {
  await withProxy("echo", async (proxy) => {
    proxy.delay("both", 15, 14);
    const conn = await dial(proxy);
    // 200 numbered chunks written one by one: each is read (and delayed) on its own
    const sent = new Uint8Array(200 * 100);
    for (let i = 0; i < sent.length; i++) sent[i] = (i * 31 + (i >> 8)) & 0xff;
    const reading = readN(conn, sent.length);
    for (let i = 0; i < 200; i++) {
      await writeAll(conn, sent.subarray(i * 100, (i + 1) * 100));
      if (i % 20 === 0) await sleep(3);
    }
    const back = await reading;
    conn.close();
    assertEquals(back.length, sent.length);
    assert(back.every((b, i) => b === sent[i]), "bytes came back changed or out of order");
    assert(proxy.stats.delayedChunks > 2, `only ${proxy.stats.delayedChunks} chunks delayed`);
    assertEquals(proxy.stats.forwardedBytes.toMember, sent.length);
  });
});

Deno.test("proxy: delay and jitter per direction, measured on round trips", async () => {
  await withProxy("echo", async (proxy) => {
    const conn = await dial(proxy);
    // 80 ms toward the server, 40 ms back: a round trip takes at least 120 ms
    proxy.delay("toMember", 80);
    proxy.delay("fromMember", 40);
    const fixed: number[] = [];
    for (let i = 0; i < 5; i++) fixed.push(await roundTrip(conn));
    for (const t of fixed) assert(t >= 118 && t < 120 + 400, `round trip ${t.toFixed(1)} ms, wanted ~120`);
    // 50 ± 30 ms one way: between 20 and 80 ms, and not all the same
    proxy.delay("toMember", 50, 30);
    proxy.delay("fromMember", 0);
    const jittered: number[] = [];
    for (let i = 0; i < 12; i++) jittered.push(await roundTrip(conn));
    for (const t of jittered) assert(t >= 19 && t < 80 + 300, `round trip ${t.toFixed(1)} ms, wanted 20..80`);
    const spread = Math.max(...jittered) - Math.min(...jittered);
    assert(spread > 10, `jitter spread only ${spread.toFixed(1)} ms: ${jittered.map((t) => t.toFixed(0))}`);
    // without the delay, the fastest of a few round trips is well under the 20 ms minimum above
    proxy.heal();
    const healed: number[] = [];
    for (let i = 0; i < 5; i++) healed.push(await roundTrip(conn));
    assert(
      Math.min(...healed) < 15,
      `after heal round trips still take ${healed.map((t) => t.toFixed(1))} ms`,
    );
    conn.close();
  });
});

Deno.test("proxy: blackhole drops one way only; heal closes the broken connection", async () => {
  await withProxy("echo", async (proxy, server) => {
    // toward the server: it receives nothing, the sender's writes still succeed
    proxy.blackhole("toMember");
    const a = await dial(proxy);
    await writeAll(a, new Uint8Array(1000));
    await sleep(200);
    assertEquals(server.received, [0], "bytes went through a blackhole");
    assertEquals(proxy.stats.droppedBytes.toMember, 1000);
    // back from the server: it receives and echoes, the client gets nothing
    proxy.heal();
    assert(await endsWithin(a, 1000), "heal left a connection with lost bytes open");
    proxy.blackhole("fromMember");
    const b = await dial(proxy);
    await writeAll(b, new Uint8Array(500));
    await waitUntil(() => server.received[1] === 500, 2000, () => `server received ${server.received}`);
    await sleep(100);
    assertEquals(proxy.stats.droppedBytes.fromMember, 500);
    // once bytes were lost the direction stays dead, even after the rule changes without heal
    proxy.delay("fromMember", 0);
    await writeAll(b, new Uint8Array(10));
    assert(!(await endsWithin(b, 200)), "the connection ended by itself");
    assertEquals(proxy.stats.droppedBytes.fromMember, 510);
    proxy.heal();
    assertEquals(proxy.stats.closedBroken, 2);
    // a new connection works both ways again
    const c = await dial(proxy);
    assert((await roundTrip(c, 100)) < 1000);
    c.close();
  });
});

Deno.test("proxy: reset closes the connections of the moment, resetEvery keeps doing it", async () => {
  await withProxy("echo", async (proxy) => {
    const a = await dial(proxy);
    const b = await dial(proxy);
    await roundTrip(a);
    await roundTrip(b);
    assertEquals(proxy.reset(), 2);
    assert(await endsWithin(a, 1000), "a reset connection stayed open");
    assert(await endsWithin(b, 1000), "a reset connection stayed open");
    // a new connection after the reset works
    const c = await dial(proxy);
    await roundTrip(c);
    // every 100 ms: each new connection is closed within a period or two
    proxy.resetEvery(100);
    for (const conn of [c, await dial(proxy), await dial(proxy)]) {
      const start = performance.now();
      assert(await endsWithin(conn, 1500), "a connection survived periodic resets");
      assert(performance.now() - start < 1500);
    }
    assert(proxy.stats.resets >= 4, `${proxy.stats.resets} resets`);
    proxy.heal();
    const d = await dial(proxy);
    await roundTrip(d);
    assert(!(await endsWithin(d, 350)), "resets went on after heal");
  });
});

Deno.test("proxy: faults limited to one named peer", async () => {
  const hello = (name: string) =>
    new TextEncoder().encode(`GET / HTTP/1.1\r\nX-Server-From: ${name}\r\n\r\n`);
  await withProxy("echo", async (proxy, server) => {
    const a = await dial(proxy);
    const b = await dial(proxy);
    await writeAll(a, hello("aa01"));
    await writeAll(b, hello("bb02"));
    await readN(a, hello("aa01").length);
    await readN(b, hello("bb02").length);
    assertEquals(proxy.connections().names.sort(), ["aa01", "bb02"]);
    proxy.blackhole("toMember", "aa01");
    proxy.delay("fromMember", 100, 0, "bb02");
    await writeAll(a, new Uint8Array(300));
    const t = await roundTrip(b, 300);
    assert(t >= 98, `bb02's delay not applied: ${t.toFixed(1)} ms`);
    await sleep(100);
    assertEquals(server.received, [hello("aa01").length, hello("bb02").length + 300]);
    // resets of one name spare the others
    assertEquals(proxy.reset("bb02"), 1);
    assert(await endsWithin(b, 1000));
    assertEquals(proxy.connections().names, ["aa01"]);
    a.close();
  }, { identify: peerSender });
});

Deno.test("proxy: a receiver that does not read holds the sender back (bounded queues)", async () => {
  const limit = 256 * 1024;
  await withProxy("stall", async (proxy) => {
    const conn = await dial(proxy);
    let written = 0;
    const chunk = new Uint8Array(64 * 1024);
    const writing = (async () => {
      try {
        for (let i = 0; i < 1024; i++) written += await conn.write(chunk);
      } catch {
        // closed at the end of the test
      }
    })();
    await sleep(800);
    // 64 MiB offered; what left the client is the proxy's queue plus a few socket buffers
    assert(written < 32 * 1024 * 1024, `${written} bytes written to a receiver that never reads`);
    assert(
      proxy.stats.maxQueuedBytes <= limit + 64 * 1024,
      `the proxy queued ${proxy.stats.maxQueuedBytes} bytes`,
    );
    assert(proxy.stats.maxQueuedBytes > 0, "nothing reached the proxy's queue");
    conn.close();
    await writing;
  }, { maxQueuedBytes: limit });
});

Deno.test("proxy: close ends every connection and the listener", async () => {
  const server = new TestServer("echo");
  const proxy = FaultProxy.listen({ hostname: PROXY_HOST, target: { hostname: HOST, port: server.port } });
  try {
    proxy.delay("both", 500);
    proxy.resetEvery(10_000);
    const a = await dial(proxy);
    await writeAll(a, new Uint8Array(10)); // held in the proxy by the delay
    await sleep(50);
    await proxy.close();
    assert(await endsWithin(a, 1000), "a connection outlived close()");
    let refused = false;
    try {
      (await dial(proxy)).close();
    } catch {
      refused = true;
    }
    assert(refused, "the proxy still accepts connections after close()");
    assertEquals(server.received, [0], "held bytes were sent after close()");
  } finally {
    await proxy.close();
    await server.close();
  }
});

Deno.test("proxy: a target that is down closes the dialer's connection", async () => {
  const server = new TestServer("echo");
  const port = server.port;
  await server.close();
  const proxy = FaultProxy.listen({ hostname: PROXY_HOST, target: { hostname: HOST, port } });
  try {
    const a = await dial(proxy);
    assert(await endsWithin(a, 2000), "the connection to a dead target stayed open");
  } finally {
    await proxy.close();
  }
});
