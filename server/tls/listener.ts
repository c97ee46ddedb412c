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
import type { DetailedPeerCertificate, TLSSocket } from "node:tls";
import type { TlsCredentials } from "./credentials.ts";
import { chainError } from "./chain.ts";
import {
  addressRefusal,
  commonNameOf,
  handshakeError,
  namesHost,
  type PeerCertificateFacts,
  refusalOf,
  subjectAltNames,
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
function adapt(sock: TLSSocket): SecureConn {
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
    | (DetailedPeerCertificate & PeerCertificateFacts)
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
      // the caller may reuse its buffer as soon as this resolves; the socket may hold on to it longer.
      // Below the socket's high-water mark the write counts as done at once (waiting for its callback
      // costs a turn of the event loop per batch); above it, once the socket drained.
      if (sock.write(p.slice())) return Promise.resolve(p.length);
      return new Promise((resolve, reject) => {
        const done = (): void => {
          sock.off("drain", done);
          sock.off("close", done);
          if (sock.destroyed) reject(new Error("connection closed"));
          else resolve(p.length);
        };
        sock.once("drain", done);
        sock.once("close", done);
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
  const { createServer } = await import("node:tls");
  const ready: SecureConn[] = [];
  let acceptor: { resolve(c: SecureConn): void; reject(e: Error): void } | undefined;
  let closed = false;
  const server = createServer(creds.serverOptions(o.alpn));
  const unsubscribe = creds.onChange(() => server.setSecureContext(creds.secureContext()));
  const refuse = (sock: TLSSocket, reason: string): void => {
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
  const deliver = (sock: TLSSocket): void => {
    const conn = adapt(sock);
    if (acceptor !== undefined) {
      const a = acceptor;
      acceptor = undefined;
      a.resolve(conn);
    } else ready.push(conn);
  };
  server.on("secureConnection", (sock: TLSSocket) => {
    sock.setNoDelay(true);
    // nothing is read until the checks are done
    sock.pause();
    void admission(sock, creds, o).then((why) => {
      if (why !== undefined) return refuse(sock, why);
      deliver(sock);
      sock.resume();
    }, (err) => refuse(sock, `tls: ${err instanceof Error ? err.message : err}`));
  });
  server.on("tlsClientError", (err: Error, sock: TLSSocket) => {
    // after a failed handshake the address is known only to the TCP socket underneath
    const tcp = (sock as TLSSocket & { _parent?: { remoteAddress?: string; remotePort?: number } })
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

/** The certificate the other end sent (DER) and the intermediates it sent with it. */
function presentedChain(sock: TLSSocket): { leaf?: Uint8Array; rest: Uint8Array[] } {
  const first = sock.getPeerCertificate?.(true) as DetailedPeerCertificate | undefined;
  if (first === undefined || first === null || first.raw === undefined) return { rest: [] };
  const rest: Uint8Array[] = [];
  let c = first.issuerCertificate;
  for (let i = 0; i < 8 && c !== undefined && c !== null && c.raw !== undefined && c !== first; i++) {
    rest.push(c.raw);
    if (c.issuerCertificate === c) break;
    c = c.issuerCertificate;
  }
  return { leaf: first.raw, rest };
}

/** Why a connection that finished its handshake may not be served, or undefined. */
async function admission(
  sock: TLSSocket,
  creds: TlsCredentials,
  o: TlsListenOptions,
): Promise<string | undefined> {
  const cert = sock.getPeerCertificate?.() as PeerCertificateFacts | undefined;
  const certificate = cert !== undefined && cert !== null && Object.keys(cert).length > 0 ? cert : undefined;
  const verifying = creds.config.clientCertAuth && !creds.config.selfSigned;
  let chain: string | undefined;
  if (verifying && certificate !== undefined && creds.trusted.length > 0) {
    const { leaf, rest } = presentedChain(sock);
    chain = leaf === undefined ? "x509: malformed certificate" : await chainError(leaf, rest, creds.trusted);
  }
  const reason = refusalOf({
    protocol: sock.getProtocol(),
    cipher: sock.getCipher()?.name,
    certificate,
    // with a CA file, its certificates alone decide; without one, the runtime's roots do
    authorized: creds.trusted.length > 0 ? chain === undefined : sock.authorized,
    authorizationError: chain ??
      (sock.authorizationError === null ? undefined : String(sock.authorizationError)),
  }, creds);
  if (reason !== undefined) return reason;
  if (o.checkPeerAddress && certificate !== undefined && verifying) {
    return await addressRefusal(certificate, sock.remoteAddress);
  }
  return undefined;
}

/** How a dial is made. */
export interface TlsDialOptions {
  hostname: string;
  port: number;
  signal: AbortSignal;
  alpn?: string[];
}

/**
 * Dials `hostname:port` over TLS with the side's client certificate; `signal` aborts the attempt. Unless
 * the side is self-signed (auto-TLS), the other end's certificate must chain to the CA file and name
 * `hostname`; both are checked here, after the handshake, as the runtime's checks would also accept its
 * built-in public roots.
 */
export async function dialTls(creds: TlsCredentials, o: TlsDialOptions): Promise<SecureConn> {
  const { connect } = await import("node:tls");
  return await new Promise((resolve, reject) => {
    if (o.signal.aborted) return reject(o.signal.reason ?? new Error("dial aborted"));
    const sock = connect({
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
      sock.setNoDelay(true);
      sock.pause();
      void serverRefusal(sock, creds, o.hostname).then((why) => {
        o.signal.removeEventListener("abort", onAbort);
        if (why !== undefined) {
          sock.destroy();
          return reject(new Error(`tls: failed to verify certificate: ${why}`));
        }
        const conn = adapt(sock);
        sock.resume();
        resolve(conn);
      }, (err) => {
        sock.destroy();
        reject(err);
      });
    });
    sock.once("error", (err) => {
      o.signal.removeEventListener("abort", onAbort);
      sock.destroy();
      reject(err);
    });
  });
}

/** Why the certificate of the member dialed at `hostname` is not to be trusted, or undefined. */
async function serverRefusal(
  sock: TLSSocket,
  creds: TlsCredentials,
  hostname: string,
): Promise<string | undefined> {
  if (creds.config.selfSigned) return undefined;
  const { leaf, rest } = presentedChain(sock);
  if (leaf === undefined) return "x509: no certificate";
  if (creds.trusted.length > 0) {
    const chain = await chainError(leaf, rest, creds.trusted);
    if (chain !== undefined) return chain;
  } else if (!sock.authorized) {
    return `x509: ${sock.authorizationError ?? "certificate not trusted"}`;
  }
  const cert = sock.getPeerCertificate() as PeerCertificateFacts;
  if (!namesHost(cert, hostname)) {
    const { dns, ips } = subjectAltNames(cert);
    return `x509: certificate is valid for ${[...dns, ...ips].join(", ") || "no host"}, not ${hostname}`;
  }
  return undefined;
}

function isIpLiteral(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}
