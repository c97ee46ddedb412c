/**
 * Sockets of the peer port: the one place where peer listeners are opened and peer connections dialed.
 *
 * Everything above this module sees a {@linkcode PeerConn} (read, write, close) and a
 * {@linkcode PeerListener} (accept, close), never a `Deno.Conn` directly. Only cleartext `http://` URLs
 * are served today. Peer TLS will plug in here: `Deno.listenTls` cannot ask for client certificates, so
 * the TLS listener will likely be a `node:tls` server adapted to {@linkcode PeerConn}; the rest of the
 * transport does not change.
 *
 * @module
 */

/** A byte stream to or from another member (TCP today, TLS later). */
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

/**
 * Parses a peer URL into the address to listen on or dial. Throws {@linkcode PeerUrlError} for schemes
 * etcd-ts does not serve yet (`https`, `unix`, `unixs`) and for malformed URLs.
 */
export function peerAddress(url: URL | string): PeerAddress {
  let u: URL;
  try {
    u = typeof url === "string" ? new URL(url) : url;
  } catch {
    throw new PeerUrlError(`invalid peer URL ${JSON.stringify(String(url))}`);
  }
  if (u.protocol === "https:" || u.protocol === "unixs:") {
    throw new PeerUrlError(`peer TLS is not implemented yet (${u.href})`);
  }
  if (u.protocol !== "http:") throw new PeerUrlError(`unsupported peer URL scheme ${u.protocol} (${u.href})`);
  const hostname = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  if (hostname === "") throw new PeerUrlError(`peer URL ${u.href} has no host`);
  const port = u.port === "" ? 80 : Number(u.port);
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

/** Opens a listener for `url` (only `http://host:port` for now). */
export function listenPeer(url: URL): PeerListener {
  const { hostname, port } = peerAddress(url);
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

/** Dials the member listening at `url`; `signal` aborts the attempt. */
export async function dialPeer(url: URL, signal: AbortSignal): Promise<PeerConn> {
  const { hostname, port } = peerAddress(url);
  const conn = await Deno.connect({ hostname, port, transport: "tcp", signal });
  return fromDeno(conn);
}
