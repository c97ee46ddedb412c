/**
 * The serving side of the peer port: listeners, accepted connections, and the routing of each request by
 * its path. `/raft/stream/<from>` becomes an inbound message stream (read here), `/raft/snapshot` goes to
 * the snapshot receiver, and every other path to the GET handlers (`/version` and what the member
 * registers). Inbound streams get keepalives and are closed when their sender falls silent.
 *
 * @module
 */
import { hexId } from "../logger.ts";
import type { PeerContext } from "./context.ts";
import { errorText, isClosedError } from "./errors.ts";
import {
  ConnReader,
  formatHead,
  FRAME_HEADER_BYTES,
  frameLength,
  type HttpHead,
  MAX_HEAD_BYTES,
  PeerProtocolError,
  SNAPSHOT_PATH,
  STREAM_PREFIX,
  STREAM_PROTOCOL,
} from "./http.ts";
import { writeAll } from "../../storage/fs_util.ts";
import { checkIdentity, parseHexId } from "./identity.ts";
import { listenPeer, peerAddress, type PeerConn, type PeerListener } from "./net.ts";
import type { PeerHttpHandler, PeerHttpResponse } from "./options.ts";
import type { SnapshotReceiver } from "./snapshot_receiver.ts";
import { reasonPhrase } from "../http_status.ts";

const KEEPALIVE_FRAME = new Uint8Array(FRAME_HEADER_BYTES);
/** Largest body of a request to a GET handler (etcd 3.4's `/members/hashkv` carries a small JSON one). */
const MAX_GET_BODY_BYTES = 1024 * 1024;
/** A connection that is not a stream is closed when its sender is silent this long (or the idle timeout). */
const MIN_REQUEST_IDLE_MS = 10_000;

/** One accepted connection. */
interface Inbound {
  conn: PeerConn;
  lastRead: number;
  lastWrite: number;
  /** What the connection turned out to be once its head was read. */
  kind: "head" | "stream" | "snapshot" | "other";
  /** The sending member, once identified. */
  from: bigint | undefined;
  /** A keepalive write is in flight. */
  writing: boolean;
}

/** What the inbound side needs from the rest of the transport. */
export interface InboundDeps {
  /** Whether a member ID is a peer the transport knows. */
  isPeer(id: bigint): boolean;
  /** Serves `/raft/snapshot`. */
  snapshots: SnapshotReceiver;
  /** GET handlers by path (`/version` included). */
  handlers: Map<string, PeerHttpHandler>;
}

/** Accepts and serves the connections other members open to this one. */
export class InboundServer {
  private readonly listeners: PeerListener[] = [];
  private readonly ports: number[] = [];
  private readonly inbound = new Set<Inbound>();

  /**
   * @param ctx the transport's shared state.
   * @param deps the peers, the snapshot receiver and the GET handlers.
   */
  constructor(private readonly ctx: PeerContext, private readonly deps: InboundDeps) {}

  /** The TCP ports the listeners are bound to. */
  get boundPorts(): number[] {
    return [...this.ports];
  }

  /** Binds every URL and starts accepting; on failure closes what was bound and throws. */
  async listen(urls: URL[]): Promise<void> {
    try {
      for (const url of urls) {
        const l = await listenPeer(url, this.ctx.o.tls);
        this.listeners.push(l);
        this.ports.push(l.port);
        this.ctx.logger.info("listening for peers", { address: `${peerAddress(url).hostname}:${l.port}` });
      }
    } catch (err) {
      this.close();
      throw err;
    }
    for (const l of this.listeners) this.ctx.track(this.acceptLoop(l));
  }

  /** Closes the inbound connections from `id` (it was removed). */
  closeFrom(id: bigint): void {
    for (const inb of this.inbound) if (inb.from === id) inb.conn.close();
  }

  /** Closes the listeners and every inbound connection. */
  close(): void {
    for (const l of this.listeners) l.close();
    for (const inb of this.inbound) inb.conn.close();
  }

  /** Keepalives on inbound streams, and the end of connections whose sender went silent. */
  tick(now: number): void {
    const ctx = this.ctx;
    for (const inb of this.inbound) {
      if (inb.kind !== "stream" || inb.from === undefined) {
        // a request head, a snapshot body or a one-shot answer: closed when the sender goes silent
        if (now - inb.lastRead > Math.max(ctx.idleTimeoutMs, MIN_REQUEST_IDLE_MS)) inb.conn.close();
        continue;
      }
      if (now - inb.lastRead > ctx.idleTimeoutMs) {
        inb.conn.close();
      } else if (now - inb.lastWrite >= ctx.keepaliveMs && !inb.writing) {
        inb.writing = true;
        ctx.track(
          writeAll(inb.conn, KEEPALIVE_FRAME).then(
            () => {
              inb.lastWrite = ctx.clock.now();
              inb.writing = false;
            },
            () => inb.conn.close(),
          ),
        );
      }
    }
  }

  private async acceptLoop(l: PeerListener): Promise<void> {
    const ctx = this.ctx;
    // ends when the listener is closed
    while (!ctx.stopped) {
      let conn: PeerConn;
      try {
        conn = await l.accept();
      } catch (err) {
        if (ctx.stopped || isClosedError(err)) return;
        ctx.logger.warn("failed to accept peer connection", { error: errorText(err) });
        // e.g. out of file descriptors: pause instead of spinning
        await ctx.sleep(50);
        continue;
      }
      if (ctx.stopped) {
        conn.close();
        return;
      }
      ctx.track(this.serveConn(conn));
    }
  }

  private async serveConn(conn: PeerConn): Promise<void> {
    const ctx = this.ctx;
    const now = ctx.clock.now();
    const inb: Inbound = {
      conn,
      lastRead: now,
      lastWrite: now,
      kind: "head",
      from: undefined,
      writing: false,
    };
    this.inbound.add(inb);
    const reader = new ConnReader(conn, 16 * 1024);
    reader.onRead = () => inb.lastRead = ctx.clock.now();
    try {
      const head = await reader.readHead(MAX_HEAD_BYTES);
      if (head === null) return;
      const method = head.a;
      const q = head.b.indexOf("?");
      const path = q < 0 ? head.b : head.b.slice(0, q);
      inb.kind = path.startsWith(STREAM_PREFIX + "/")
        ? "stream"
        : path === SNAPSHOT_PATH
        ? "snapshot"
        : "other";
      if (inb.kind === "stream") {
        await this.serveStream(inb, reader, method, path, head);
      } else if (inb.kind === "snapshot") {
        if (method !== "POST") return this.methodNotAllowed(conn, "POST");
        const from = await checkIdentity(ctx, conn, head, this.deps.isPeer);
        if (from === undefined) return;
        inb.from = from;
        await this.deps.snapshots.serve(conn, reader, head, from);
      } else {
        await this.serveGet(conn, reader, head, path, q < 0 ? "" : head.b.slice(q + 1));
      }
    } catch (err) {
      if (!ctx.stopped && !isClosedError(err)) {
        ctx.logger.debug("peer connection ended with an error", {
          remote: conn.remoteAddr,
          error: errorText(err),
        });
        if (err instanceof PeerProtocolError) ctx.stats.refused++;
      }
    } finally {
      this.inbound.delete(inb);
      conn.close();
    }
  }

  private methodNotAllowed(conn: PeerConn, allow: string): Promise<void> {
    return this.ctx.respond(conn, 405, "Method Not Allowed", "Method Not Allowed\n", { Allow: allow });
  }

  /**
   * A registered GET handler: the request's body (with a `Content-Length`, at most
   * {@link MAX_GET_BODY_BYTES}) is read first, then the handler answers.
   */
  private async serveGet(
    conn: PeerConn,
    reader: ConnReader,
    head: HttpHead,
    path: string,
    query: string,
  ): Promise<void> {
    const ctx = this.ctx;
    const h = this.deps.handlers.get(path);
    if (h === undefined) return ctx.respond(conn, 404, "Not Found", "404 page not found\n");
    if (head.a !== "GET") return this.methodNotAllowed(conn, "GET");
    if (head.headers.has("transfer-encoding")) {
      return ctx.respond(conn, 411, "Length Required", "a request body needs a Content-Length\n");
    }
    const length = Number(head.headers.get("content-length") ?? "0");
    if (!Number.isSafeInteger(length) || length < 0) {
      ctx.stats.refused++;
      return ctx.respond(conn, 400, "Bad Request", "malformed Content-Length\n");
    }
    if (length > MAX_GET_BODY_BYTES) {
      return ctx.respond(conn, 413, "Request Entity Too Large", "request body too large\n");
    }
    const body = length === 0 ? new Uint8Array(0) : await reader.readBody(length);
    let r: PeerHttpResponse;
    try {
      r = await h({
        path,
        query: new URLSearchParams(query),
        headers: head.headers,
        body,
        remoteAddr: conn.remoteAddr,
      });
    } catch (err) {
      ctx.logger.error("peer HTTP handler failed", { path, error: errorText(err) });
      return ctx.respond(conn, 500, "Internal Server Error", "internal server error\n");
    }
    if (ctx.stopped) return;
    await ctx.respond(
      conn,
      r.status,
      reasonPhrase(r.status),
      r.body,
      {},
      r.contentType ?? "application/json",
    );
  }

  private async serveStream(
    inb: Inbound,
    reader: ConnReader,
    method: string,
    path: string,
    head: HttpHead,
  ): Promise<void> {
    const ctx = this.ctx;
    const conn = inb.conn;
    if (method !== "POST") return this.methodNotAllowed(conn, "POST");
    const from = await checkIdentity(ctx, conn, head, this.deps.isPeer);
    if (from === undefined) return;
    if (parseHexId(path.slice(STREAM_PREFIX.length + 1)) !== from) {
      ctx.stats.refused++;
      return ctx.respond(conn, 400, "Bad Request", "sender in path and X-Server-From differ\n");
    }
    // a new stream from a peer replaces an older one (the peer reconnected; the old one is dead)
    for (const other of this.inbound) {
      if (other !== inb && other.kind === "stream" && other.from === from) other.conn.close();
    }
    inb.from = from;
    await writeAll(
      conn,
      formatHead("HTTP/1.1 101 Switching Protocols", {
        "Connection": "Upgrade",
        "Upgrade": STREAM_PROTOCOL,
        "X-Etcd-Cluster-ID": ctx.cidHex,
        "X-Server-Version": ctx.serverVersion,
      }),
    );
    inb.lastWrite = ctx.clock.now();
    const fromHex = hexId(from);
    const traffic = ctx.trafficOf(from);
    ctx.logger.debug("accepted TCP streaming connection from remote peer", {
      "local-member-id": ctx.idHex,
      "remote-peer-id": fromHex,
      remote: conn.remoteAddr,
    });
    let toMismatchLogged = false;
    // ends with the connection (peer closed it, removePeer, stop, idle timeout)
    while (!ctx.stopped) {
      while (reader.available >= FRAME_HEADER_BYTES) {
        const len = frameLength(reader.buf, reader.start);
        if (len > ctx.maxMessageBytes) {
          throw new PeerProtocolError(`message of ${len} bytes exceeds the limit of ${ctx.maxMessageBytes}`);
        }
        if (reader.available < FRAME_HEADER_BYTES + len) {
          reader.reserve(FRAME_HEADER_BYTES + len);
          break;
        }
        const at = reader.start + FRAME_HEADER_BYTES;
        reader.start = at + len;
        traffic.received += FRAME_HEADER_BYTES + len;
        if (len === 0) continue; // keepalive
        // a copy: decoded byte fields are views into their input, and the read buffer is reused
        const m = ctx.codec.decode(reader.buf.slice(at, at + len));
        if (m.to !== ctx.memberId) {
          ctx.stats.refused++;
          if (!toMismatchLogged) {
            toMismatchLogged = true;
            ctx.logger.warn("ignored message addressed to another member", {
              "local-member-id": ctx.idHex,
              "remote-peer-id": fromHex,
              "message-to": hexId(m.to),
            });
          }
          continue;
        }
        ctx.stats.framesReceived++;
        ctx.deliver(m);
      }
      const readsBefore = reader.reads;
      if (!(await reader.fill())) return;
      ctx.stats.reads += reader.reads - readsBefore;
    }
  }
}
