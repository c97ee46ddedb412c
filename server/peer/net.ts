/**
 * Sockets of the peer port: the one place where peer listeners are opened and peer connections dialed.
 *
 * Everything above this module sees a {@linkcode PeerConn} (read, write, close) and a
 * {@linkcode PeerListener} (accept, close), never a `Deno.Conn` directly. `http://` URLs are plain TCP;
 * `https://` URLs go through the TLS listener and dialer of `server/tls/` with the member's peer
 * credentials ({@linkcode PeerTls}), mutual TLS when `--peer-client-cert-auth` is on.
 *
 * @module
 */
import type { TlsCredentials } from "../tls/credentials.ts";
import { dialTls, listenTls } from "../tls/listener.ts";

/** A byte stream to or from another member (TCP or TLS). */
export interface PeerConn {
  /** Reads into `p`; resolves to the number of bytes read, or `null` at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some prefix of `p`; resolves to the number of bytes written. */
  write(p: Uint8Array): Promise<number>;
  /** Closes both directions; pending reads and writes fail. Safe to call twice. */
  close(): void;
  /** `host:port` of the other end, for logs. */
  readonly remoteAddr: string;
}

/** A bound peer listener. */
export interface PeerListener {
  /** The next inbound connection; rejects once the listener is closed. */
  accept(): Promise<PeerConn>;
  /** Stops listening. Safe to call twice. */
  close(): void;
  /** The bound TCP port (useful when listening on port 0). */
  readonly port: number;
}

/** A peer URL that cannot be listened on or dialed. */
export class PeerUrlError extends Error {
  /** Stable error code of this class. */
  readonly code = "PEER_URL_INVALID";

  /** @param message what is wrong with the URL. */
  constructor(message: string) {
    super(message);
    this.name = "PeerUrlError";
  }
}

/** Where a peer URL points: hostname without IPv6 brackets, and the port. */
export interface PeerAddress {
  hostname: string;
  port: number;
}

/** The member's peer TLS: its credentials, and where refused connections are reported. */
export interface PeerTls {
  credentials: TlsCredentials;
  /** Check that a peer's certificate names the address it connects from (etcd's default). */
  checkPeerAddress: boolean;
  /** One line per refused inbound connection. */
  onRefused?(remote: string, reason: string): void;
}

/**
 * Parses a peer URL into the address to listen on or dial. Throws {@linkcode PeerUrlError} for schemes
 * etcd-ts does not serve (`unix`, `unixs`) and for malformed URLs.
 */
export function peerAddress(url: URL | string): PeerAddress {
  let u: URL;
  try {
    u = typeof url === "string" ? new URL(url) : url;
  } catch {
    throw new PeerUrlError(`invalid peer URL ${JSON.stringify(String(url))}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new PeerUrlError(`unsupported peer URL scheme ${u.protocol} (${u.href})`);
  }
  const hostname = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  if (hostname === "") throw new PeerUrlError(`peer URL ${u.href} has no host`);
  const port = u.port === "" ? (u.protocol === "https:" ? 443 : 80) : Number(u.port);
  return { hostname, port };
}

function fromDeno(conn: Deno.Conn): PeerConn {
  const addr = conn.remoteAddr as Deno.NetAddr;
  const remoteAddr = addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
  if ("setNoDelay" in conn) {
    // frames are batched by the transport itself; Nagle would only add latency to heartbeats
    (conn as Deno.TcpConn).setNoDelay(true);
    (conn as Deno.TcpConn).setKeepAlive(true);
  }
  let closed = false;
  return {
    remoteAddr,
    read: (p) => conn.read(p),
    write: (p) => conn.write(p),
    close(): void {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch {
        // already gone
      }
    },
  };
}

/** Opens a listener for `url`; an `https://` URL needs `tls`. */
export async function listenPeer(url: URL, tls?: PeerTls): Promise<PeerListener> {
  const { hostname, port } = peerAddress(url);
  if (url.protocol === "https:") {
    if (tls === undefined) throw new PeerUrlError(`no peer TLS credentials for ${url.href}`);
    const l = await listenTls(tls.credentials, {
      hostname,
      port,
      checkPeerAddress: tls.checkPeerAddress,
      onRefused: tls.onRefused,
      // the dialing member reads this as the answer to its request and logs the reason
      refusalReply: (reason) => {
        const body = new TextEncoder().encode(`${reason}\n`);
        const head = new TextEncoder().encode(
          "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n" +
            `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
        );
        const out = new Uint8Array(head.length + body.length);
        out.set(head);
        out.set(body, head.length);
        return out;
      },
    });
    return { port: l.port, accept: () => l.accept(), close: () => l.close() };
  }
  const listener = Deno.listen({ hostname, port, transport: "tcp" });
  let closed = false;
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async accept(): Promise<PeerConn> {
      return fromDeno(await listener.accept());
    },
    close(): void {
      if (closed) return;
      closed = true;
      try {
        listener.close();
      } catch {
        // already closed
      }
    },
  };
}

/** Dials the member listening at `url`; `signal` aborts the attempt. An `https://` URL needs `tls`. */
export async function dialPeer(url: URL, signal: AbortSignal, tls?: PeerTls): Promise<PeerConn> {
  const { hostname, port } = peerAddress(url);
  if (url.protocol === "https:") {
    if (tls === undefined) throw new PeerUrlError(`no peer TLS credentials for ${url.href}`);
    return await dialTls(tls.credentials, { hostname, port, signal });
  }
  const conn = await Deno.connect({ hostname, port, transport: "tcp", signal });
  return fromDeno(conn);
}
