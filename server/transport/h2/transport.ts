/**
 * `serveDenoH2`: gRPC on our own HTTP/2 framing, over `Deno.listen` for cleartext (prior knowledge: what
 * etcdctl and gRPC clients speak to http:// endpoints) and over the TLS listener of `server/tls/` for
 * https:// endpoints (ALPN h2 or http/1.1; it can ask for client certificates). Either way, a connection
 * that does not open with the HTTP/2 preface is served as HTTP/1.1 by {@linkcode Http1Connection} (health
 * checks, the JSON gateway). A listener given PEM strings in `tls` is handed to the node:http2 transport.
 *
 * @module
 */
import type { GrpcListener, GrpcRouter, GrpcTransport, ServeOptions } from "../grpc.ts";
import { H2Connection, type H2ServerContext } from "./connection.ts";
import { Http1Connection } from "./http1.ts";
import { PREFACE } from "./frames.ts";
import { writeAll } from "../../../storage/fs_util.ts";
import { listenTls, type SecureConn } from "../../tls/listener.ts";

/** How long `close` lets running unary calls finish before ending them with UNAVAILABLE. */
const UNARY_GRACE_MS = 1_000;
/** How long `close` waits for connections to finish before dropping them. */
const CLOSE_GRACE_MS = 1_000;
const READ_BUFFER_BYTES = 64 * 1024;

/** An accepted connection, cleartext or TLS, as the servers below use it. */
interface ByteConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
  /** `host:port` of the client. */
  readonly peer: string;
  /** The client's certificate, on TLS listeners that asked for one. */
  readonly peerCertificate?: { commonName?: string; raw?: Uint8Array };
}

interface Served {
  h2?: H2Connection;
  http1?: Http1Connection;
  conn: ByteConn;
  done: Promise<void>;
}

function fromDeno(conn: Deno.Conn): ByteConn {
  const a = conn.remoteAddr as Deno.NetAddr;
  try {
    (conn as Deno.TcpConn).setNoDelay(true);
  } catch {
    // not a TCP socket
  }
  return {
    peer: a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`,
    read: (p) => conn.read(p),
    write: (p) => conn.write(p),
    close: () => conn.close(),
  };
}

function fromSecure(conn: SecureConn): ByteConn {
  return {
    peer: conn.remoteAddr,
    peerCertificate: conn.peerCertificate,
    read: (p) => conn.read(p),
    write: (p) => conn.write(p),
    close: () => conn.close(),
  };
}

async function readSome(conn: ByteConn, buf: Uint8Array): Promise<number | null> {
  try {
    return await conn.read(buf);
  } catch {
    return null;
  }
}

/** Numbers the connections served, for the `ClientActivity` of `ServeOptions`. */
let connections = 0;

/** Serves one accepted connection until it closes. */
async function serveConn(ctx: H2ServerContext, conn: ByteConn, served: Served): Promise<void> {
  const buf = new Uint8Array(READ_BUFFER_BYTES);
  // Enough bytes to tell the HTTP/2 preface from an HTTP/1 request line.
  let filled = 0;
  while (filled < 4) {
    const n = await readSome(conn, buf.subarray(filled));
    if (n === null) {
      closeQuietly(conn);
      return;
    }
    filled += n;
    if (buf[0] !== PREFACE[0]) break;
  }
  const isH2 = buf[0] === PREFACE[0] && buf[1] === PREFACE[1] && buf[2] === PREFACE[2] &&
    buf[3] === PREFACE[3];
  if (!isH2) {
    await serveHttp1(ctx, conn, buf, filled, served);
    return;
  }
  let closed = false;
  const activity = ctx.options.clientActivity;
  const connNumber = ++connections;
  const h2 = new H2Connection(
    {
      write: (bytes) => writeAll(conn, bytes),
      written: activity === undefined ? undefined : () => activity.answered(connNumber),
      close: () => {
        if (closed) return;
        closed = true;
        closeQuietly(conn);
      },
    },
    ctx,
    conn.peer,
    conn.peerCertificate,
  );
  served.h2 = h2;
  h2.receive(buf.subarray(0, filled));
  for (;;) {
    const wait = h2.readable();
    if (wait !== undefined) await wait;
    if (closed) break;
    const n = await readSome(conn, buf);
    if (n === null) break;
    activity?.received(connNumber);
    h2.receive(buf.subarray(0, n));
  }
  h2.socketEnded();
  await h2.closed;
}

async function serveHttp1(
  ctx: H2ServerContext,
  conn: ByteConn,
  buf: Uint8Array,
  filled: number,
  served: Served,
): Promise<void> {
  let closed = false;
  let writes = Promise.resolve();
  const http = new Http1Connection(
    {
      write: (bytes) => {
        const copy = bytes.slice();
        writes = writes.then(() => writeAll(conn, copy)).catch(() => {});
      },
      close: () => {
        if (closed) return;
        closed = true;
        void writes.then(() => closeQuietly(conn));
      },
      // a streamed response waits for the socket, so a slow client slows its producer
      drained: () => writes,
    },
    (req) => {
      const fallback = ctx.options.httpFallback;
      if (fallback === undefined) {
        return Promise.resolve({
          status: 404,
          headers: { "content-type": "text/plain" },
          body: "404 page not found\n",
        });
      }
      return fallback(req);
    },
    ctx.options.maxReceiveMessageBytes,
  );
  served.http1 = http;
  if (ctx.closing) http.shutdown();
  http.feed(buf.subarray(0, filled));
  while (!closed) {
    const n = await readSome(conn, buf);
    if (n === null) break;
    http.feed(buf.subarray(0, n));
  }
  http.end();
  await writes;
  if (!closed) {
    closed = true;
    closeQuietly(conn);
  }
}

function closeQuietly(conn: ByteConn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** Binds a TCP listener; a busy or foreign address fails in Go's words, as etcd reports it. */
export function listenTcp(hostname: string, port: number): Deno.TcpListener {
  try {
    return Deno.listen({ hostname, port, transport: "tcp" });
  } catch (err) {
    const host = hostname.includes(":") ? `[${hostname}]` : hostname;
    if (err instanceof Deno.errors.AddrInUse) {
      throw new Error(`listen tcp ${host}:${port}: bind: address already in use`);
    }
    if (err instanceof Deno.errors.AddrNotAvailable) {
      throw new Error(`listen tcp ${host}:${port}: bind: cannot assign requested address`);
    }
    throw err;
  }
}

/**
 * Serves a router with our own HTTP/2 implementation (h2c with prior knowledge, plus HTTP/1.1 for
 * non-gRPC requests; over TLS with `secure`). With `tls`, serves through node:http2 instead.
 */
export const serveDenoH2: GrpcTransport = async (
  router: GrpcRouter,
  options: ServeOptions,
): Promise<GrpcListener> => {
  if (options.tls !== undefined) {
    // node:http2 is loaded only for TLS listeners (it can ask for client certificates)
    const { serveNodeHttp2 } = await import("../node_http2.ts");
    return await serveNodeHttp2(router, options);
  }
  const secure = options.secure;
  const listener: { accept(): Promise<ByteConn>; close(): void; port: number } = secure === undefined
    ? denoListener(listenTcp(options.hostname, options.port))
    : secureListener(
      await listenTls(secure.credentials, {
        hostname: options.hostname,
        port: options.port,
        alpn: ["h2", "http/1.1"],
        onRefused: secure.onRefused,
      }),
    );
  const ctx: H2ServerContext = { router, options, closing: false };
  const served = new Set<Served>();
  const accepting = (async () => {
    for (;;) {
      let conn: ByteConn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      const entry: Served = { conn, done: Promise.resolve() };
      entry.done = serveConn(ctx, conn, entry).catch(() => closeQuietly(conn)).finally(() =>
        served.delete(entry)
      );
      served.add(entry);
    }
  })();

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    ctx.closing = true;
    try {
      listener.close();
    } catch {
      // already closed
    }
    await accepting;
    for (const s of served) {
      s.h2?.drain();
      s.http1?.shutdown();
    }
    await waitUntil(
      () => [...served].every((s) => s.h2 === undefined || s.h2.drained),
      UNARY_GRACE_MS,
    );
    for (const s of served) s.h2?.abortAll();
    const all = Promise.all([...served].map((s) => s.done));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((r) => timer = setTimeout(() => r(true), CLOSE_GRACE_MS)),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      for (const s of served) {
        s.h2?.destroy();
        closeQuietly(s.conn);
      }
      await all;
    }
  };
  return {
    port: listener.port,
    close(): Promise<void> {
      return closing ??= close();
    },
  };
};

function denoListener(l: Deno.TcpListener): { accept(): Promise<ByteConn>; close(): void; port: number } {
  return {
    port: (l.addr as Deno.NetAddr).port,
    accept: async () => fromDeno(await l.accept()),
    close: () => l.close(),
  };
}

function secureListener(
  l: Awaited<ReturnType<typeof listenTls>>,
): { accept(): Promise<ByteConn>; close(): void; port: number } {
  return { port: l.port, accept: async () => fromSecure(await l.accept()), close: () => l.close() };
}

async function waitUntil(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}
