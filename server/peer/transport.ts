/**
 * The peer transport: carries Raft messages between the members of a cluster over their peer URLs.
 *
 * Wire protocol (HTTP/1.1 on the peer port, learned from etcd's rafthttp but not compatible with it):
 *
 * - `POST /raft/stream/<from-id-hex>` with `Connection: Upgrade` opens the long-lived stream one member
 *   uses to send to another. Each member dials its own outbound stream to every peer, so a pair of
 *   members shares two TCP connections, one per direction. The receiver answers `101 Switching
 *   Protocols`; from then on the request direction carries frames (4-byte big-endian length + encoded
 *   `raftpb.Message`) and the response direction carries only zero-length keepalive frames. Messages
 *   queued during one event-loop turn leave in one write, and writes never wait for an answer.
 * - `POST /raft/snapshot` carries one MsgSnap on a connection of its own, so a large snapshot never sits
 *   in front of heartbeats: a frame with the message minus its image, then the image, streamed in
 *   chunks on both sides so neither holds it whole. `204` means the receiver handed it to Raft.
 * - `GET /version` (and whatever the server registers, e.g. `/members`, `/members/hashkv`) answers JSON.
 *   Handlers see the request's query and body; {@linkcode PeerTransport.handle} adds one at any time, and
 *   {@linkcode PeerTransport.request} asks another member's handler, over TLS with this member's peer
 *   credentials when its URL is `https://`.
 *
 * Every request carries `X-Etcd-Cluster-ID`, `X-Server-From`, `X-Raft-To` and `X-Server-Version` like
 * etcd's. A request from another cluster is refused with 412 (`request cluster ID mismatch` is logged on
 * both sides), one addressed to another member with 412 (`to field mismatch`), and one from a member this
 * transport does not know with 404.
 *
 * Why raw sockets and hand-written HTTP/1.1: on this machine, 200 000 frames of 60 bytes went through a
 * raw `Deno.connect`/`Deno.listen` pair at about 2.8 M frames/s, through a streaming `fetch` body into
 * `Deno.serve` at about 0.47 M frames/s; the fetch path also cannot carry anything back on the same
 * connection (keepalives) nor show when a write has reached the socket. The sockets are opened in
 * `net.ts` only, so TLS can be added there.
 *
 * The room, one file per concern: this facade; `stream_writer.ts` (outbound streams, queues, redial);
 * `inbound.ts` (the listeners and the routing of requests, inbound streams); `snapshot_sender.ts` and
 * `snapshot_receiver.ts`; `identity.ts` (the identity headers and their checks); `http.ts` (HTTP/1.1 and
 * frames); `net.ts` (sockets); `context.ts` (what they share); `options.ts` and `errors.ts`.
 *
 * @module
 */
import { type Message, MessageType } from "../../raft/types.ts";
import { PeerContext } from "./context.ts";
import { InboundServer } from "./inbound.ts";
import type {
  PeerAnswer,
  PeerHttpHandler,
  PeerRequestOptions,
  PeerTraffic,
  PeerTransportOptions,
  PeerTransportStats,
} from "./options.ts";
import { ConnReader, formatHead, MAX_HEAD_BYTES, PeerProtocolError } from "./http.ts";
import { PeerTimeoutError } from "./errors.ts";
import { dialPeer, type PeerConn } from "./net.ts";
import { writeAll } from "../../storage/fs_util.ts";
import { SnapshotReceiver } from "./snapshot_receiver.ts";
import { SnapshotSender } from "./snapshot_sender.ts";
import { StreamWriter, usableUrls } from "./stream_writer.ts";

export { SNAPSHOT_CHUNK_BYTES, SNAPSHOT_PATH, STREAM_PREFIX, STREAM_PROTOCOL } from "./http.ts";
export { ClusterIdMismatchError, PeerRefusedError, PeerTimeoutError } from "./errors.ts";
export {
  type IncomingImage,
  type MessageCodec,
  type PeerAnswer,
  type PeerHttpHandler,
  type PeerHttpRequest,
  type PeerHttpResponse,
  type PeerLogger,
  type PeerRequestOptions,
  type PeerTraffic,
  type PeerTransportOptions,
  type PeerTransportStats,
  protobufCodec,
} from "./options.ts";
import { concatBytes } from "../slab.ts";

/** The peer transport of one member. See the module documentation for the protocol. */
export class PeerTransport {
  /** Traffic counters, for tests and metrics. */
  readonly stats: PeerTransportStats;

  private readonly ctx: PeerContext;
  private readonly peers = new Map<bigint, StreamWriter>();
  private readonly server: InboundServer;
  private readonly snapshots: SnapshotSender;
  private readonly handlers: Map<string, PeerHttpHandler>;
  /** Cancels each {@linkcode request} in flight (`stop` calls them). */
  private readonly requests = new Set<() => void>();
  private ticker: number | undefined;
  private started = false;
  /** When each peer was last probed for `onRoundTrip` (clock ms), and the probes in flight. */
  private readonly probed = new Map<bigint, number>();
  private readonly probing = new Set<bigint>();

  /** @param options see {@linkcode PeerTransportOptions}. */
  constructor(options: PeerTransportOptions) {
    const ctx = new PeerContext(options);
    this.ctx = ctx;
    this.stats = ctx.stats;
    const versionBody = JSON.stringify({ etcdserver: ctx.serverVersion, etcdcluster: ctx.clusterVersion });
    const handlers = new Map<string, PeerHttpHandler>([[
      "/version",
      () => ({ status: 200, body: versionBody, contentType: "application/json" }),
    ]]);
    for (const [path, h] of options.httpHandlers ?? []) handlers.set(path, h);
    this.handlers = handlers;
    this.server = new InboundServer(ctx, {
      isPeer: (id) => this.peers.has(id),
      snapshots: new SnapshotReceiver(ctx),
      handlers,
    });
    this.snapshots = new SnapshotSender(ctx);
  }

  /** The TCP ports the listeners are bound to, in the order of `listen`. */
  get boundPorts(): number[] {
    return this.server.boundPorts;
  }

  /** Binds every listen URL and starts dialing known peers; resolves once all listeners are bound. */
  async start(): Promise<void> {
    const ctx = this.ctx;
    if (this.started || ctx.stopped) throw new Error("peer transport already started or stopped");
    this.started = true;
    try {
      await this.server.listen(ctx.o.listen);
    } catch (err) {
      ctx.stopped = true;
      throw err;
    }
    const tick = Math.max(10, Math.min(ctx.keepaliveMs, ctx.idleTimeoutMs) / 2);
    this.ticker = ctx.clock.setInterval(() => this.tick(), tick);
    for (const p of this.peers.values()) p.connect();
  }

  /** Adds a peer reachable at `urls` (its peer URLs) and starts dialing it. Re-adding updates its URLs. */
  addPeer(id: bigint, urls: string[]): void {
    const ctx = this.ctx;
    if (ctx.stopped || id === ctx.memberId) return;
    if (this.peers.has(id)) return this.updatePeer(id, urls);
    const p = new StreamWriter(ctx, id, usableUrls(ctx, id, urls));
    this.peers.set(id, p);
    ctx.logger.info("added remote peer", { "local-member-id": ctx.idHex, "remote-peer-id": p.hex, urls });
    if (this.started) p.connect();
  }

  /** Forgets a peer: closes its streams (both directions), its snapshot upload, and drops its queue. */
  removePeer(id: bigint): void {
    const p = this.peers.get(id);
    if (p === undefined) return;
    this.peers.delete(id);
    p.removed = true;
    p.shut();
    this.snapshots.abort(id);
    this.server.closeFrom(id);
    this.ctx.logger.info("removed remote peer", {
      "local-member-id": this.ctx.idHex,
      "remote-peer-id": p.hex,
    });
  }

  /** Replaces a peer's URLs; a stream to a URL no longer listed is closed and redialed. */
  updatePeer(id: bigint, urls: string[]): void {
    const ctx = this.ctx;
    const p = this.peers.get(id);
    if (p === undefined || ctx.stopped) return;
    ctx.logger.info("updated remote peer", { "local-member-id": ctx.idHex, "remote-peer-id": p.hex, urls });
    p.setUrls(usableUrls(ctx, id, urls), this.started);
  }

  /**
   * Queues messages for their recipients and returns at once. Messages for unknown peers, for peers
   * without an established stream, or beyond a peer's queue bound are dropped, and the peer is reported
   * unreachable (after this call returns). MsgSnap goes on its own connection.
   */
  send(messages: Message[]): void {
    const ctx = this.ctx;
    if (ctx.stopped) return;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      const p = this.peers.get(m.to);
      if (p === undefined) {
        if (m.to !== ctx.memberId) ctx.drop(m.to, 1);
      } else if (m.type === MessageType.Snap) {
        this.snapshots.send(p, m);
      } else {
        p.enqueue(m);
      }
    }
  }

  /**
   * Serves GET `path` on the peer port with `handler` from now on (replacing the one registered for it,
   * `/version` included); works before and after `start`.
   */
  handle(path: string, handler: PeerHttpHandler): void {
    this.handlers.set(path, handler);
  }

  /**
   * Asks the member at `url` (one of its peer URLs) for `path` on a connection of its own, dialed with
   * this member's peer TLS credentials for an `https://` URL, and reads the whole answer. The request
   * carries `X-Etcd-Cluster-ID`, `X-Server-From` and `X-Server-Version`. Rejects with a
   * {@linkcode PeerTimeoutError} when dial, request and answer take longer than `timeoutMs`, with
   * another error when the connection fails or the answer is malformed, and once the transport stops.
   * Any HTTP status resolves: the caller reads it.
   */
  async request(url: string | URL, path: string, options: PeerRequestOptions = {}): Promise<PeerAnswer> {
    const ctx = this.ctx;
    if (ctx.stopped) throw new Error("peer transport stopped");
    const u = typeof url === "string" ? new URL(url) : url;
    const timeoutMs = options.timeoutMs ?? ctx.dialTimeoutMs;
    const maxBody = options.maxBodyBytes ?? 16 * 1024 * 1024;
    const abort = new AbortController();
    let conn: PeerConn | undefined;
    let ended: Error | undefined;
    const cancel = (why: Error) => {
      ended ??= why;
      abort.abort(why);
      conn?.close();
    };
    const timer = ctx.clock.setTimeout(
      () => cancel(new PeerTimeoutError(`request to ${u.origin}${path} timed out after ${timeoutMs}ms`)),
      timeoutMs,
    );
    const stopped = () => cancel(new Error("peer transport stopped"));
    this.requests.add(stopped);
    try {
      conn = await dialPeer(u, abort.signal, ctx.o.tls);
      if (ended) throw ended;
      const body = new TextEncoder().encode(options.body ?? "");
      const headers: Record<string, string | number> = {
        "Host": u.host,
        "X-Server-From": ctx.idHex,
        "X-Etcd-Cluster-ID": ctx.cidHex,
        "X-Server-Version": ctx.serverVersion,
        "Connection": "close",
      };
      if (options.body !== undefined) {
        headers["Content-Type"] = options.contentType ?? "application/json";
        headers["Content-Length"] = body.length;
      }
      const head = formatHead(`${options.method ?? "GET"} ${path} HTTP/1.1`, headers);
      const out = new Uint8Array(head.length + body.length);
      out.set(head);
      out.set(body, head.length);
      await writeAll(conn, out);
      const reader = new ConnReader(conn, 16 * 1024);
      const answer = await reader.readHead(MAX_HEAD_BYTES);
      if (answer === null) throw new PeerProtocolError("connection closed before an answer");
      const status = Number(answer.b);
      if (!Number.isInteger(status)) throw new PeerProtocolError(`malformed status ${answer.b}`);
      const length = Number(answer.headers.get("content-length") ?? "-1");
      let bytes: Uint8Array;
      if (Number.isSafeInteger(length) && length >= 0) {
        if (length > maxBody) throw new PeerProtocolError(`answer of ${length} bytes exceeds ${maxBody}`);
        bytes = await reader.readBody(length);
      } else {
        bytes = await readToEnd(reader, maxBody);
      }
      return { status, headers: answer.headers, body: new TextDecoder().decode(bytes) };
    } catch (err) {
      throw ended ?? err;
    } finally {
      ctx.clock.clearTimeout(timer);
      this.requests.delete(stopped);
      conn?.close();
    }
  }

  /** Bytes on the Raft streams by peer (for metrics); records stay after a peer is removed. */
  traffic(): ReadonlyMap<bigint, PeerTraffic> {
    return this.ctx.traffic;
  }

  /** When (clock ms) the outbound stream to `id` became active; undefined while it is not. */
  activeSince(id: bigint): number | undefined {
    return this.peers.get(id)?.activeSince;
  }

  /** The last error dialing or streaming to `id`, cleared when a stream is established. */
  lastError(id: bigint): Error | undefined {
    return this.peers.get(id)?.lastError;
  }

  /** Closes listeners, connections and timers, and waits for every background task to end. */
  async stop(): Promise<void> {
    const ctx = this.ctx;
    if (ctx.stopped && !ctx.busy) return;
    ctx.stopped = true;
    if (this.ticker !== undefined) ctx.clock.clearInterval(this.ticker);
    this.ticker = undefined;
    this.server.close();
    for (const cancel of [...this.requests]) cancel();
    for (const p of this.peers.values()) p.shut();
    this.snapshots.abortAll();
    // every task ends once its socket is closed; new tasks are not started after `stopped`
    await ctx.drain();
  }

  /** Keepalives, idle timeouts, and slow request heads. */
  private tick(): void {
    const ctx = this.ctx;
    if (ctx.stopped) return;
    const now = ctx.clock.now();
    for (const p of this.peers.values()) p.tick(now);
    this.server.tick(now);
    if (ctx.o.onRoundTrip !== undefined) this.probe(now, ctx.o.onRoundTrip);
  }

  /** Starts a round-trip probe (`GET /version`) of every peer due for one and not being probed. */
  private probe(now: number, observe: (id: bigint, ms: number) => void): void {
    const ctx = this.ctx;
    const every = ctx.o.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
    for (const [id, p] of this.peers) {
      const url = p.url;
      if (url === undefined || this.probing.has(id) || now - (this.probed.get(id) ?? -Infinity) < every) {
        continue;
      }
      this.probed.set(id, now);
      this.probing.add(id);
      ctx.track(
        this.request(url, "/version", { timeoutMs: every }).then(
          (answer) => {
            if (answer.status === 200 && !ctx.stopped) observe(id, ctx.clock.now() - now);
          },
          () => {}, // an unreachable peer has no round trip; its stream reports it
        ).finally(() => this.probing.delete(id)),
      );
    }
  }
}

/** etcd's prober interval (its connection read timeout less a second). */
const DEFAULT_PROBE_INTERVAL_MS = 4000;

/** An answer without a `Content-Length`: everything up to the end of the connection. */
async function readToEnd(reader: ConnReader, max: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(16 * 1024);
  for (;;) {
    const n = await reader.readSome(buf);
    if (n === null) break;
    total += n;
    if (total > max) throw new PeerProtocolError(`answer exceeds ${max} bytes`);
    parts.push(buf.slice(0, n));
  }
  return concatBytes(parts);
}
