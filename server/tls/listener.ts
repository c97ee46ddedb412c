/**
 * TLS listeners and dials on `node:tls` (which, unlike `Deno.listenTls`, can ask for client
 * certificates), seen from above as plain byte streams: a {@linkcode SecureConn} reads and writes like a
 * `Deno.Conn`, so the HTTP/2 server and the peer transport serve it exactly as they serve cleartext.
 *
 * The listener takes new certificate files as they are rotated on disk (see
 * {@linkcode TlsCredentials.reload}), refuses connections that fail the checks of `verify.ts` before
 * anything is read from them, and reports every refused handshake in one line through `onRefused`.
 *
 * @module
 */
import tls from "node:tls";
import type { TlsCredentials } from "./credentials.ts";
import {
  addressRefusal,
  commonNameOf,
  handshakeError,
  type PeerCertificateFacts,
  refusalOf,
} from "./verify.ts";

/** A byte stream over TLS, read and written like a `Deno.Conn`. */
export interface SecureConn {
  /** Reads into `p`; resolves to the bytes read, or null at the end of the stream (or on an error). */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes all of `p`; resolves to its length once the TLS layer took it. `p` may be reused then. */
  write(p: Uint8Array): Promise<number>;
  /** Closes both directions. Safe to call twice. */
  close(): void;
  /** `host:port` of the other end. */
  readonly remoteAddr: string;
  /** The protocol chosen by ALPN ("h2", "http/1.1"), or undefined when the client offered none. */
  readonly alpn: string | undefined;
  /** The other end's certificate, when it presented one. */
  readonly peerCertificate: { commonName: string; raw?: Uint8Array } | undefined;
}

/** Chunks queued unread before the socket is paused. */
const READ_AHEAD_BYTES = 256 * 1024;

function hostPort(address: string | undefined, port: number | undefined): string {
  const a = address ?? "?";
  return a.includes(":") ? `[${a}]:${port}` : `${a}:${port}`;
}

/** Turns a connected TLS socket into a {@linkcode SecureConn}. */
function adapt(sock: tls.TLSSocket): SecureConn {
  const queue: Uint8Array[] = [];
  let queued = 0;
  let ended = false;
  let closed = false;
  let waiter: (() => void) | undefined;
  const wake = (): void => {
    const w = waiter;
    waiter = undefined;
    w?.();
  };
  sock.on("data", (chunk: Uint8Array) => {
    queue.push(chunk);
    queued += chunk.length;
    if (queued > READ_AHEAD_BYTES) sock.pause();
    wake();
  });
  const end = (): void => {
    ended = true;
    wake();
  };
  sock.on("end", end);
  sock.on("close", end);
  sock.on("error", end);
  const raw = sock.getPeerCertificate?.(true) as
    | (tls.DetailedPeerCertificate & PeerCertificateFacts)
    | undefined;
  const hasCert = raw !== undefined && raw !== null && Object.keys(raw).length > 0;
  return {
    remoteAddr: hostPort(sock.remoteAddress, sock.remotePort),
    alpn: typeof sock.alpnProtocol === "string" ? sock.alpnProtocol : undefined,
    peerCertificate: hasCert ? { commonName: commonNameOf(raw), raw: raw.raw } : undefined,
    async read(p: Uint8Array): Promise<number | null> {
      while (queue.length === 0) {
        if (ended || closed) return null;
        await new Promise<void>((r) => waiter = r);
      }
      let n = 0;
      while (n < p.length && queue.length > 0) {
        const head = queue[0];
        const take = Math.min(head.length, p.length - n);
        p.set(head.subarray(0, take), n);
        n += take;
        if (take === head.length) queue.shift();
        else queue[0] = head.subarray(take);
      }
      queued -= n;
      if (queued <= READ_AHEAD_BYTES && sock.isPaused()) sock.resume();
      return n;
    },
    write(p: Uint8Array): Promise<number> {
      if (closed || sock.destroyed) return Promise.reject(new Error("connection closed"));
      // the caller may reuse its buffer as soon as this resolves; the socket may hold on to it longer
      const copy = p.slice();
      return new Promise((resolve, reject) => {
        sock.write(copy, (err) => err ? reject(err) : resolve(p.length));
      });
    },
    close(): void {
      if (closed) return;
      closed = true;
      sock.destroy();
      wake();
    },
  };
}

/** How a TLS listener is set up. */
export interface TlsListenOptions {
  hostname: string;
  port: number;
  /** ALPN protocols offered, in order of preference. */
  alpn?: string[];
  /** Peers' listeners also check that a client certificate names the address it connects from. */
  checkPeerAddress?: boolean;
  /** One line per refused connection: the other end, and why. */
  onRefused?(remote: string, reason: string): void;
  /** What to write to a connection refused after its handshake before closing it (default: nothing). */
  refusalReply?(reason: string): Uint8Array;
}

/** How long a refused connection may take to read the reply and close before it is cut off. */
const REFUSAL_GRACE_MS = 2000;

/** A bound TLS listener. */
export interface SecureListener {
  /** The next connection that passed its handshake and checks; rejects once the listener is closed. */
  accept(): Promise<SecureConn>;
  /** Stops listening (open connections stay). Safe to call twice. */
  close(): void;
  readonly port: number;
}

/** Binds a TLS listener; a busy address fails in Go's words, as etcd reports it. */
export async function listenTls(creds: TlsCredentials, o: TlsListenOptions): Promise<SecureListener> {
  const ready: SecureConn[] = [];
  let acceptor: { resolve(c: SecureConn): void; reject(e: Error): void } | undefined;
  let closed = false;
  const server = tls.createServer(creds.serverOptions(o.alpn));
  const unsubscribe = creds.onChange(() => server.setSecureContext(creds.secureContext()));
  const refuse = (sock: tls.TLSSocket, reason: string): void => {
    o.onRefused?.(hostPort(sock.remoteAddress, sock.remotePort), reason);
    const reply = o.refusalReply?.(reason);
    if (reply === undefined) {
      sock.destroy();
      return;
    }
    // tell the other end why, then let it close; it is cut off if it does not within a grace period
    sock.end(reply);
    const timer = setTimeout(() => sock.destroy(), REFUSAL_GRACE_MS);
    sock.once("close", () => clearTimeout(timer));
    sock.on("error", () => {});
    sock.resume();
  };
  server.on("secureConnection", (sock: tls.TLSSocket) => {
    sock.setNoDelay(true);
    const cert = sock.getPeerCertificate?.() as PeerCertificateFacts | undefined;
    const certificate = cert !== undefined && cert !== null && Object.keys(cert).length > 0
      ? cert
      : undefined;
    const reason = refusalOf({
      protocol: sock.getProtocol(),
      cipher: sock.getCipher()?.name,
      certificate,
      authorized: sock.authorized,
      authorizationError: sock.authorizationError === null ? undefined : String(sock.authorizationError),
    }, creds);
    if (reason !== undefined) return refuse(sock, reason);
    const deliver = (): void => {
      const conn = adapt(sock);
      if (acceptor !== undefined) {
        const a = acceptor;
        acceptor = undefined;
        a.resolve(conn);
      } else ready.push(conn);
    };
    if (o.checkPeerAddress && certificate !== undefined && creds.config.clientCertAuth) {
      sock.pause();
      void addressRefusal(certificate, sock.remoteAddress).then((why) => {
        if (why !== undefined) return refuse(sock, why);
        deliver();
        sock.resume();
      });
      return;
    }
    deliver();
  });
  server.on("tlsClientError", (err: Error, sock: tls.TLSSocket) => {
    // after a failed handshake the address is known only to the TCP socket underneath
    const tcp = (sock as tls.TLSSocket & { _parent?: { remoteAddress?: string; remotePort?: number } })
      ?._parent;
    const address = sock?.remoteAddress ?? tcp?.remoteAddress;
    const port = sock?.remotePort ?? tcp?.remotePort;
    o.onRefused?.(address === undefined ? "unknown" : hostPort(address, port), handshakeError(err.message));
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const host = o.hostname.includes(":") ? `[${o.hostname}]` : o.hostname;
      if (err.code === "EADDRINUSE") {
        reject(new Deno.errors.AddrInUse(`listen tcp ${host}:${o.port}: bind: address already in use`));
      } else if (err.code === "EADDRNOTAVAIL") {
        reject(new Error(`listen tcp ${host}:${o.port}: bind: cannot assign requested address`));
      } else reject(err);
    };
    server.once("error", onError);
    server.listen(o.port, o.hostname, () => {
      server.off("error", onError);
      resolve();
    });
  });
  server.on("error", () => {});
  const address = server.address();
  return {
    port: typeof address === "object" && address !== null ? address.port : o.port,
    accept(): Promise<SecureConn> {
      const next = ready.shift();
      if (next !== undefined) return Promise.resolve(next);
      if (closed) return Promise.reject(new Error("listener closed"));
      return new Promise((resolve, reject) => acceptor = { resolve, reject });
    },
    close(): void {
      if (closed) return;
      closed = true;
      unsubscribe();
      server.close();
      for (const c of ready.splice(0)) c.close();
      acceptor?.reject(new Error("listener closed"));
      acceptor = undefined;
    },
  };
}

/** How a dial is made. */
export interface TlsDialOptions {
  hostname: string;
  port: number;
  signal: AbortSignal;
  alpn?: string[];
}

/**
 * Dials `hostname:port` over TLS with the side's client certificate; `signal` aborts the attempt.
 * A dial that verifies the other end goes through Deno's own TLS client, which costs less per write than
 * `node:tls` (members send many small messages); self-signed (auto-TLS) dials, which do not verify, need
 * `node:tls`.
 */
export function dialTls(creds: TlsCredentials, o: TlsDialOptions): Promise<SecureConn> {
  if (!creds.config.selfSigned) return dialNative(creds, o);
  return dialNode(creds, o);
}

async function dialNative(creds: TlsCredentials, o: TlsDialOptions): Promise<SecureConn> {
  if (o.signal.aborted) throw o.signal.reason ?? new Error("dial aborted");
  const c = creds.clientOptions();
  const dial = Deno.connectTls({
    hostname: o.hostname,
    port: o.port,
    cert: c.cert as string,
    key: c.key as string,
    ...(typeof c.ca === "string" ? { caCerts: [c.ca] } : {}),
    ...(o.alpn === undefined ? {} : { alpnProtocols: o.alpn }),
  });
  // connectTls takes no signal: an aborted dial closes the connection as soon as it exists
  let aborted = false;
  const onAbort = (): void => {
    aborted = true;
  };
  o.signal.addEventListener("abort", onAbort, { once: true });
  let conn: Deno.TlsConn | undefined;
  try {
    conn = await Promise.race([
      dial,
      new Promise<never>((_, reject) =>
        o.signal.addEventListener("abort", () => reject(o.signal.reason ?? new Error("dial aborted")), {
          once: true,
        })
      ),
    ]);
    const hs = await conn.handshake();
    if (aborted) throw o.signal.reason ?? new Error("dial aborted");
    return nativeConn(conn, hs.alpnProtocol ?? undefined);
  } catch (err) {
    if (conn === undefined) void dial.then((late) => late.close(), () => {});
    else closeQuietly(conn);
    throw err;
  } finally {
    o.signal.removeEventListener("abort", onAbort);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** A connection of Deno's TLS client as a {@linkcode SecureConn}. */
function nativeConn(conn: Deno.TlsConn, alpn: string | undefined): SecureConn {
  const a = conn.remoteAddr;
  let closed = false;
  return {
    remoteAddr: hostPort(a.hostname, a.port),
    alpn,
    peerCertificate: undefined,
    async read(p: Uint8Array): Promise<number | null> {
      try {
        return await conn.read(p);
      } catch {
        return null;
      }
    },
    async write(p: Uint8Array): Promise<number> {
      let off = 0;
      while (off < p.length) off += await conn.write(off === 0 ? p : p.subarray(off));
      return p.length;
    },
    close(): void {
      if (closed) return;
      closed = true;
      closeQuietly(conn);
    },
  };
}

/** A dial with `node:tls`, which can skip verification (self-signed peers). */
function dialNode(creds: TlsCredentials, o: TlsDialOptions): Promise<SecureConn> {
  return new Promise((resolve, reject) => {
    if (o.signal.aborted) return reject(o.signal.reason ?? new Error("dial aborted"));
    const sock = tls.connect({
      ...creds.clientOptions(),
      host: o.hostname,
      port: o.port,
      ...(o.alpn === undefined ? {} : { ALPNProtocols: o.alpn }),
      // a name for SNI and verification; an IP address is checked against the certificate's IP SANs
      ...(isIpLiteral(o.hostname) ? {} : { servername: o.hostname }),
    });
    const onAbort = (): void => {
      sock.destroy();
      reject(o.signal.reason ?? new Error("dial aborted"));
    };
    o.signal.addEventListener("abort", onAbort, { once: true });
    sock.once("secureConnect", () => {
      o.signal.removeEventListener("abort", onAbort);
      sock.setNoDelay(true);
      resolve(adapt(sock));
    });
    sock.once("error", (err) => {
      o.signal.removeEventListener("abort", onAbort);
      sock.destroy();
      reject(err);
    });
  });
}

function isIpLiteral(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}
