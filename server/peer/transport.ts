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
 * - `POST /raft/snapshot` with the whole encoded MsgSnap as a `Content-Length` body, on a connection of
 *   its own, so a multi-megabyte snapshot never sits in front of heartbeats. `204` means the receiver
 *   handed it to Raft.
 * - `GET /version` (and whatever the server registers, e.g. `/members`) answers JSON.
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
 * Nothing on the send path awaits: {@linkcode PeerTransport.send} encodes into a per-peer buffer and
 * returns. Dialing runs in the background with a backoff; messages for a peer without an established
 * stream are dropped and reported unreachable, and Raft retries them.
 *
 * @module
 */
import { type Message, MessageType } from "../../raft/types.ts";
import { decodeMessage, encodeMessage } from "../pb/raftpb.ts";
import { hexId } from "../logger.ts";
import {
  ConnReader,
  formatHead,
  formatResponse,
  FRAME_HEADER_BYTES,
  frameLength,
  type HttpHead,
  PeerProtocolError,
  putFrameLength,
  writeAll,
} from "./http.ts";
import { dialPeer, listenPeer, peerAddress, type PeerConn, type PeerListener } from "./net.ts";

/** Path prefix of the message streams. */
export const STREAM_PREFIX = "/raft/stream";
/** Path of snapshot uploads. */
export const SNAPSHOT_PATH = "/raft/snapshot";
/** The `Upgrade` token of a message stream. */
export const STREAM_PROTOCOL = "etcd-ts-raft-stream/1";

const MAX_HEAD_BYTES = 16 * 1024;
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const KEEPALIVE_FRAME = new Uint8Array(FRAME_HEADER_BYTES);

/** Encodes and decodes Raft messages; the default is protobuf (`server/pb/raftpb.ts`). */
export interface MessageCodec {
  encode(m: Message): Uint8Array;
  decode(b: Uint8Array): Message;
}

/** The protobuf codec, wire-compatible with etcd-io/raft's raftpb. */
export const protobufCodec: MessageCodec = { encode: encodeMessage, decode: decodeMessage };

/** Timers and the current time; `server/clock.ts`'s `Clock` has this shape. */
export interface PeerClock {
  now(): number;
  setInterval(fn: () => void, ms: number): number;
  clearInterval(id: number): void;
  setTimeout(fn: () => void, ms: number): number;
  clearTimeout(id: number): void;
}

const realClock: PeerClock = {
  now: () => Date.now(),
  setInterval: (fn, ms) => Number(setInterval(fn, ms)),
  clearInterval: (id) => clearInterval(id),
  setTimeout: (fn, ms) => Number(setTimeout(fn, ms)),
  clearTimeout: (id) => clearTimeout(id),
};

/** The logging the transport needs (a {@link Logger} fits). */
export interface PeerLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** An extra GET handler on the peer port. */
export type PeerHttpHandler = () => { status: number; body: string; contentType?: string };

/** How a {@linkcode PeerTransport} is set up. */
export interface PeerTransportOptions {
  /** This member's ID. */
  memberId: bigint;
  /** The cluster's ID; requests carrying another one are refused. */
  clusterId: bigint;
  /** Where to listen for peers (`http://host:port`; port 0 picks a free port). */
  listen: URL[];
  /** Every inbound Raft message, in order per sender, including MsgSnap with its snapshot data in full. */
  onMessage(m: Message): void;
  /** A send to that peer failed or was dropped (the driver calls `node.reportUnreachable`). */
  onUnreachable?(id: bigint): void;
  /** Outcome of sending a MsgSnap (the driver calls `node.reportSnapshot`). */
  onSnapshotStatus?(id: bigint, ok: boolean): void;
  logger: PeerLogger;
  /** Extra GET handlers on the peer port, e.g. "/members" → JSON (used when a member joins). */
  httpHandlers?: Map<string, PeerHttpHandler>;
  /** Message codec; protobuf unless a test swaps it. */
  codec?: MessageCodec;
  /** Time source for timers and timestamps. */
  clock?: PeerClock;
  /** Versions sent in `X-Server-Version` and reported by `GET /version`. Default 3.5.0 for both. */
  version?: { server: string; cluster: string };
  /** Messages waiting for one peer's stream before new ones are dropped. Default 4096. */
  maxQueueMessages?: number;
  /** Bytes waiting for one peer's stream before new messages are dropped. Default 64 MiB. */
  maxQueueBytes?: number;
  /** Largest message accepted on a stream. Default 256 MiB. */
  maxMessageBytes?: number;
  /** Largest snapshot upload accepted. Default 8 GiB. */
  maxSnapshotBytes?: number;
  /** A keepalive frame goes out on a stream idle for this long. Default 1000 ms. */
  keepaliveMs?: number;
  /** A stream that received nothing for this long is closed and redialed. Default 5000 ms. */
  idleTimeoutMs?: number;
  /** Dial plus handshake must finish within this. Default 5000 ms. */
  dialTimeoutMs?: number;
  /** First redial delay after a failure; doubles up to `backoffMaxMs`. Default 100 ms. */
  backoffMinMs?: number;
  /** Longest redial delay. Default 1000 ms. */
  backoffMaxMs?: number;
}

/** Counters of a transport's traffic. */
export interface PeerTransportStats {
  /** Messages written to outbound streams. */
  framesSent: number;
  /** Socket writes on outbound streams (batches); keepalives included. */
  writes: number;
  /** Bytes written to outbound streams. */
  bytesSent: number;
  /** Messages received on inbound streams and snapshot uploads. */
  framesReceived: number;
  /** Socket reads on inbound streams. */
  reads: number;
  /** Messages dropped on the send side: unknown peer, no stream, full queue, or lost with a stream. */
  dropped: number;
  /** Inbound messages or requests refused (wrong cluster, wrong recipient, unknown sender, malformed). */
  refused: number;
  snapshotsSent: number;
  snapshotsFailed: number;
  snapshotsReceived: number;
  /** Outbound streams established (first connects and reconnects). */
  connects: number;
}

/** A peer answered our request with a cluster ID other than ours. */
export class ClusterIdMismatchError extends Error {
  /** Stable error code of this class. */
  readonly code = "CLUSTER_ID_MISMATCH";

  /**
   * @param localClusterId our cluster ID (hex).
   * @param remoteClusterId the peer's cluster ID (hex), empty when it did not say.
   */
  constructor(readonly localClusterId: string, readonly remoteClusterId: string) {
    super(`cluster ID mismatch (local ${localClusterId}, remote ${remoteClusterId || "unknown"})`);
    this.name = "ClusterIdMismatchError";
  }
}

/** A peer refused a stream or snapshot request for another reason than the cluster ID. */
export class PeerRefusedError extends Error {
  /** Stable error code of this class. */
  readonly code = "PEER_REFUSED";

  /**
   * @param status the HTTP status the peer answered.
   * @param reason the body of its answer.
   */
  constructor(readonly status: number, readonly reason: string) {
    super(`peer refused the request: ${status} ${reason}`);
    this.name = "PeerRefusedError";
  }
}

/** A connection attempt or a stream timed out. */
export class PeerTimeoutError extends Error {
  /** Stable error code of this class. */
  readonly code = "PEER_TIMEOUT";

  /** @param message what timed out. */
  constructor(message: string) {
    super(message);
    this.name = "PeerTimeoutError";
  }
}

interface OutboundStream {
  conn: PeerConn;
  url: URL;
  lastRead: number;
  lastWrite: number;
}

interface Peer {
  id: bigint;
  hex: string;
  urls: URL[];
  /** Index (mod urls.length) of the URL to dial next; moves on after a failure. */
  next: number;
  stream: OutboundStream | undefined;
  dialing: AbortController | undefined;
  retryTimer: number | undefined;
  backoff: number;
  activeSince: number | undefined;
  /** Frames waiting to be written: buf[0..len), `queued` messages (keepalives not counted). */
  buf: Uint8Array;
  len: number;
  queued: number;
  /** The buffer of the write in flight; becomes `buf` again when the next batch starts. */
  spare: Uint8Array;
  writing: boolean;
  flushScheduled: boolean;
  snapshot: AbortController | undefined;
  lastError: Error | undefined;
  /** Set after a failure has been logged at warn level, so repeats go to debug. */
  failing: boolean;
  queueFullLogged: boolean;
  removed: boolean;
}

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

const INITIAL_BUFFER = 16 * 1024;

/** Parses etcd's hex ID form (1-16 hex digits); undefined when malformed. */
function parseHexId(s: string | undefined): bigint | undefined {
  if (s === undefined || !/^[0-9a-fA-F]{1,16}$/.test(s)) return undefined;
  return BigInt("0x" + s);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** True for the errors a socket reports when it is closed under a pending operation. */
function isClosedError(err: unknown): boolean {
  return err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted ||
    (err instanceof Error && err.name === "AbortError");
}

/** The peer transport of one member. See the module documentation for the protocol. */
export class PeerTransport {
  /** Traffic counters, for tests and metrics. */
  readonly stats: PeerTransportStats = {
    framesSent: 0,
    writes: 0,
    bytesSent: 0,
    framesReceived: 0,
    reads: 0,
    dropped: 0,
    refused: 0,
    snapshotsSent: 0,
    snapshotsFailed: 0,
    snapshotsReceived: 0,
    connects: 0,
  };

  private readonly o: PeerTransportOptions;
  private readonly codec: MessageCodec;
  private readonly clock: PeerClock;
  private readonly idHex: string;
  private readonly cidHex: string;
  private readonly serverVersion: string;
  private readonly handlers: Map<string, PeerHttpHandler>;
  private readonly maxQueueMessages: number;
  private readonly maxQueueBytes: number;
  private readonly maxMessageBytes: number;
  private readonly maxSnapshotBytes: number;
  private readonly keepaliveMs: number;
  private readonly idleTimeoutMs: number;
  private readonly dialTimeoutMs: number;
  private readonly backoffMinMs: number;
  private readonly backoffMaxMs: number;

  private readonly peers = new Map<bigint, Peer>();
  private readonly listeners: PeerListener[] = [];
  private readonly ports: number[] = [];
  private readonly inbound = new Set<Inbound>();
  private readonly tasks = new Set<Promise<void>>();
  private readonly unreachable = new Set<bigint>();
  private unreachableScheduled = false;
  private ticker: number | undefined;
  private started = false;
  private stopped = false;

  /** @param options see {@linkcode PeerTransportOptions}. */
  constructor(options: PeerTransportOptions) {
    this.o = options;
    this.codec = options.codec ?? protobufCodec;
    this.clock = options.clock ?? realClock;
    this.idHex = hexId(options.memberId);
    this.cidHex = hexId(options.clusterId);
    const version = options.version ?? { server: "3.5.0", cluster: "3.5.0" };
    this.serverVersion = version.server;
    const versionBody = JSON.stringify({ etcdserver: version.server, etcdcluster: version.cluster });
    this.handlers = new Map([[
      "/version",
      () => ({ status: 200, body: versionBody, contentType: "application/json" }),
    ]]);
    for (const [path, h] of options.httpHandlers ?? []) this.handlers.set(path, h);
    this.maxQueueMessages = options.maxQueueMessages ?? 4096;
    this.maxQueueBytes = options.maxQueueBytes ?? 64 * 1024 * 1024;
    this.maxMessageBytes = options.maxMessageBytes ?? 256 * 1024 * 1024;
    this.maxSnapshotBytes = options.maxSnapshotBytes ?? 8 * 1024 * 1024 * 1024;
    this.keepaliveMs = options.keepaliveMs ?? 1000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 5000;
    this.dialTimeoutMs = options.dialTimeoutMs ?? 5000;
    this.backoffMinMs = options.backoffMinMs ?? 100;
    this.backoffMaxMs = options.backoffMaxMs ?? 1000;
  }

  /** The TCP ports the listeners are bound to, in the order of `listen`. */
  get boundPorts(): number[] {
    return [...this.ports];
  }

  /** Binds every listen URL and starts dialing known peers; resolves once all listeners are bound. */
  start(): Promise<void> {
    if (this.started || this.stopped) {
      return Promise.reject(new Error("peer transport already started or stopped"));
    }
    this.started = true;
    try {
      for (const url of this.o.listen) {
        const l = listenPeer(url);
        this.listeners.push(l);
        this.ports.push(l.port);
        this.o.logger.info("listening for peers", { address: `${peerAddress(url).hostname}:${l.port}` });
      }
    } catch (err) {
      for (const l of this.listeners) l.close();
      this.stopped = true;
      return Promise.reject(err);
    }
    for (const l of this.listeners) this.track(this.acceptLoop(l));
    const tick = Math.max(10, Math.min(this.keepaliveMs, this.idleTimeoutMs) / 2);
    this.ticker = this.clock.setInterval(() => this.tick(), tick);
    for (const p of this.peers.values()) this.connect(p);
    return Promise.resolve();
  }

  /** Adds a peer reachable at `urls` (its peer URLs) and starts dialing it. Re-adding updates its URLs. */
  addPeer(id: bigint, urls: string[]): void {
    if (this.stopped || id === this.o.memberId) return;
    if (this.peers.has(id)) return this.updatePeer(id, urls);
    const p: Peer = {
      id,
      hex: hexId(id),
      urls: this.parseUrls(id, urls),
      next: 0,
      stream: undefined,
      dialing: undefined,
      retryTimer: undefined,
      backoff: this.backoffMinMs,
      activeSince: undefined,
      buf: new Uint8Array(INITIAL_BUFFER),
      len: 0,
      queued: 0,
      spare: new Uint8Array(INITIAL_BUFFER),
      writing: false,
      flushScheduled: false,
      snapshot: undefined,
      lastError: undefined,
      failing: false,
      queueFullLogged: false,
      removed: false,
    };
    this.peers.set(id, p);
    this.o.logger.info("added remote peer", { "local-member-id": this.idHex, "remote-peer-id": p.hex, urls });
    if (this.started) this.connect(p);
  }

  /** Forgets a peer: closes its streams (both directions) and drops what is queued for it. */
  removePeer(id: bigint): void {
    const p = this.peers.get(id);
    if (p === undefined) return;
    this.peers.delete(id);
    p.removed = true;
    this.shutPeer(p);
    for (const inb of this.inbound) if (inb.from === id) inb.conn.close();
    this.o.logger.info("removed remote peer", { "local-member-id": this.idHex, "remote-peer-id": p.hex });
  }

  /** Replaces a peer's URLs; a stream to a URL no longer listed is closed and redialed. */
  updatePeer(id: bigint, urls: string[]): void {
    const p = this.peers.get(id);
    if (p === undefined || this.stopped) return;
    p.urls = this.parseUrls(id, urls);
    p.next = 0;
    const keep = p.stream !== undefined && p.urls.some((u) => u.href === p.stream!.url.href);
    this.o.logger.info("updated remote peer", {
      "local-member-id": this.idHex,
      "remote-peer-id": p.hex,
      urls,
    });
    if (keep) return;
    this.shutPeer(p);
    p.backoff = this.backoffMinMs;
    if (this.started) this.connect(p);
  }

  /**
   * Queues messages for their recipients and returns at once. Messages for unknown peers, for peers
   * without an established stream, or beyond a peer's queue bound are dropped, and the peer is reported
   * unreachable (after this call returns). MsgSnap goes on its own connection.
   */
  send(messages: Message[]): void {
    if (this.stopped) return;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      const p = this.peers.get(m.to);
      if (p === undefined) {
        if (m.to !== this.o.memberId) this.drop(m.to, 1);
        continue;
      }
      if (m.type === MessageType.Snap) {
        this.sendSnapshot(p, m);
        continue;
      }
      if (p.stream === undefined) {
        this.drop(p.id, 1);
        continue;
      }
      if (p.queued >= this.maxQueueMessages || p.len >= this.maxQueueBytes) {
        if (!p.queueFullLogged) {
          p.queueFullLogged = true;
          this.o.logger.warn("dropped internal Raft message since sending buffer is full", {
            "local-member-id": this.idHex,
            "remote-peer-id": p.hex,
            "queued-messages": p.queued,
            "queued-bytes": p.len,
          });
        }
        this.drop(p.id, 1);
        continue;
      }
      let data: Uint8Array;
      try {
        data = this.codec.encode(m);
      } catch (err) {
        this.o.logger.error("failed to encode Raft message", {
          "remote-peer-id": p.hex,
          error: errorText(err),
        });
        this.drop(p.id, 1);
        continue;
      }
      this.append(p, data);
      p.queued++;
      this.scheduleFlush(p);
    }
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
    if (this.stopped && this.tasks.size === 0) return;
    this.stopped = true;
    if (this.ticker !== undefined) this.clock.clearInterval(this.ticker);
    this.ticker = undefined;
    for (const l of this.listeners) l.close();
    for (const p of this.peers.values()) this.shutPeer(p);
    for (const inb of this.inbound) inb.conn.close();
    this.unreachable.clear();
    // every task ends once its socket is closed; new tasks are not started after `stopped`
    for (let i = 0; i < 100 && this.tasks.size > 0; i++) await Promise.allSettled([...this.tasks]);
  }

  // ---- sending --------------------------------------------------------------------------------------

  private parseUrls(id: bigint, urls: string[]): URL[] {
    const out: URL[] = [];
    for (const s of urls) {
      try {
        peerAddress(s);
        out.push(new URL(s));
      } catch (err) {
        this.o.logger.warn("ignoring unusable peer URL", {
          "remote-peer-id": hexId(id),
          url: s,
          error: errorText(err),
        });
      }
    }
    return out;
  }

  private drop(id: bigint, n: number): void {
    this.stats.dropped += n;
    this.reportUnreachable(id);
  }

  private reportUnreachable(id: bigint): void {
    if (this.stopped || this.o.onUnreachable === undefined) return;
    this.unreachable.add(id);
    if (this.unreachableScheduled) return;
    this.unreachableScheduled = true;
    queueMicrotask(() => {
      this.unreachableScheduled = false;
      const ids = [...this.unreachable];
      this.unreachable.clear();
      for (const id of ids) {
        if (this.stopped) return;
        try {
          this.o.onUnreachable?.(id);
        } catch (err) {
          this.o.logger.error("onUnreachable failed", { error: errorText(err) });
        }
      }
    });
  }

  private append(p: Peer, data: Uint8Array): void {
    const need = p.len + FRAME_HEADER_BYTES + data.length;
    if (need > p.buf.length) {
      const grown = new Uint8Array(Math.max(need, p.buf.length * 2));
      grown.set(p.buf.subarray(0, p.len));
      p.buf = grown;
    }
    putFrameLength(p.buf, p.len, data.length);
    p.buf.set(data, p.len + FRAME_HEADER_BYTES);
    p.len = need;
  }

  private scheduleFlush(p: Peer): void {
    if (p.writing || p.flushScheduled) return;
    p.flushScheduled = true;
    // a microtask runs after the current synchronous run of send() calls: they all share one write
    queueMicrotask(() => this.track(this.flush(p)));
  }

  /** Writes queued frames; while a write is in flight new frames gather and go out in the next one. */
  private async flush(p: Peer): Promise<void> {
    p.flushScheduled = false;
    const s = p.stream;
    if (p.writing || s === undefined || p.len === 0) return;
    p.writing = true;
    try {
      while (p.len > 0 && p.stream === s && !this.stopped) {
        const out = p.buf.subarray(0, p.len);
        this.stats.writes++;
        this.stats.framesSent += p.queued;
        this.stats.bytesSent += p.len;
        const big = p.buf;
        p.buf = p.spare;
        p.spare = big;
        p.len = 0;
        p.queued = 0;
        p.queueFullLogged = false;
        await writeAll(s.conn, out);
        s.lastWrite = this.clock.now();
        // give back memory after a burst
        if (p.spare.length > 1024 * 1024) p.spare = new Uint8Array(INITIAL_BUFFER);
      }
    } catch (err) {
      this.breakStream(p, s, err);
    } finally {
      p.writing = false;
      if (p.len > 0 && p.stream !== undefined && !this.stopped) this.scheduleFlush(p);
    }
  }

  private connect(p: Peer): void {
    if (this.stopped || p.removed || p.stream || p.dialing || p.retryTimer !== undefined) return;
    if (p.urls.length === 0) return;
    const url = p.urls[p.next % p.urls.length];
    const ac = new AbortController();
    p.dialing = ac;
    this.track(this.dial(p, url, ac));
  }

  private async dial(p: Peer, url: URL, ac: AbortController): Promise<void> {
    let conn: PeerConn | undefined;
    let timedOut = false;
    const timer = this.clock.setTimeout(() => {
      timedOut = true;
      ac.abort();
      conn?.close();
    }, this.dialTimeoutMs);
    const onAbort = (): void => conn?.close();
    ac.signal.addEventListener("abort", onAbort, { once: true });
    try {
      conn = await dialPeer(url, ac.signal);
      if (ac.signal.aborted) throw new PeerTimeoutError("dial aborted");
      const reader = new ConnReader(conn, 4096);
      await writeAll(
        conn,
        formatHead(`POST ${STREAM_PREFIX}/${this.idHex} HTTP/1.1`, {
          "Host": url.host,
          "Connection": "Upgrade",
          "Upgrade": STREAM_PROTOCOL,
          "Content-Type": "application/octet-stream",
          ...this.identityHeaders(p),
        }),
      );
      const head = await reader.readHead(MAX_HEAD_BYTES);
      if (head === null) throw new PeerProtocolError("peer closed the connection before answering");
      if (head.b !== "101") throw await this.refusal(head, reader);
      if (p.dialing !== ac || this.stopped || p.removed || ac.signal.aborted) {
        conn.close();
        return;
      }
      p.dialing = undefined;
      this.clock.clearTimeout(timer);
      ac.signal.removeEventListener("abort", onAbort);
      this.establish(p, conn, reader, url);
      conn = undefined;
    } catch (err) {
      conn?.close();
      if (p.dialing === ac) p.dialing = undefined;
      if (this.stopped || p.removed || (ac.signal.aborted && !timedOut)) return;
      this.dialFailed(p, url, timedOut ? new PeerTimeoutError(`dialing ${url.href} timed out`) : err);
    } finally {
      this.clock.clearTimeout(timer);
      ac.signal.removeEventListener("abort", onAbort);
    }
  }

  private identityHeaders(p: Peer): Record<string, string> {
    return {
      "X-Server-From": this.idHex,
      "X-Raft-To": p.hex,
      "X-Etcd-Cluster-ID": this.cidHex,
      "X-Server-Version": this.serverVersion,
    };
  }

  /** The error for a non-success answer, reading its (small) body. */
  private async refusal(head: HttpHead, reader: ConnReader): Promise<Error> {
    const status = Number(head.b);
    let reason = head.c;
    const len = Number(head.headers.get("content-length") ?? "0");
    if (Number.isSafeInteger(len) && len > 0 && len <= MAX_ERROR_BODY_BYTES) {
      try {
        reason = new TextDecoder().decode(await reader.readBody(len)).trim();
      } catch {
        // keep the reason phrase
      }
    }
    if (status === 412 && reason.includes("cluster ID mismatch")) {
      return new ClusterIdMismatchError(this.cidHex, head.headers.get("x-etcd-cluster-id") ?? "");
    }
    return new PeerRefusedError(status, reason);
  }

  private dialFailed(p: Peer, url: URL, err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    p.lastError = e;
    p.next++;
    const fields = {
      "local-member-id": this.idHex,
      "remote-peer-id": p.hex,
      "remote-peer-url": url.href,
      error: e.message,
    };
    if (e instanceof ClusterIdMismatchError) {
      this.o.logger[p.failing ? "debug" : "warn"]("request sent was ignored due to cluster ID mismatch", {
        ...fields,
        "local-member-cluster-id": this.cidHex,
        "remote-peer-cluster-id": e.remoteClusterId,
      });
      this.reportUnreachable(p.id);
    } else if (!p.failing) {
      this.o.logger.warn("failed to dial remote peer", fields);
    } else {
      this.o.logger.debug("failed to dial remote peer", fields);
    }
    p.failing = true;
    this.scheduleRetry(p);
  }

  private scheduleRetry(p: Peer): void {
    if (this.stopped || p.removed || p.retryTimer !== undefined) return;
    const delay = p.backoff;
    p.backoff = Math.min(p.backoff * 2, this.backoffMaxMs);
    p.retryTimer = this.clock.setTimeout(() => {
      p.retryTimer = undefined;
      this.connect(p);
    }, delay);
  }

  private establish(p: Peer, conn: PeerConn, reader: ConnReader, url: URL): void {
    const now = this.clock.now();
    const s: OutboundStream = { conn, url, lastRead: now, lastWrite: now };
    p.stream = s;
    p.activeSince = now;
    p.backoff = this.backoffMinMs;
    p.lastError = undefined;
    p.failing = false;
    this.stats.connects++;
    this.o.logger.info("established TCP streaming connection with remote peer", {
      "local-member-id": this.idHex,
      "remote-peer-id": p.hex,
      "remote-peer-url": url.href,
    });
    reader.onRead = () => s.lastRead = this.clock.now();
    this.track(this.readOutbound(p, s, reader));
  }

  /** The answer direction of an outbound stream carries only keepalives; its end means the stream ended. */
  private async readOutbound(p: Peer, s: OutboundStream, reader: ConnReader): Promise<void> {
    try {
      while (p.stream === s && !this.stopped) {
        reader.start = reader.end;
        if (!(await reader.fill())) throw new PeerProtocolError("closed by the remote peer");
      }
    } catch (err) {
      this.breakStream(p, s, err);
    }
  }

  /** Ends an outbound stream after an error: drops its queue, reports the peer, and redials later. */
  private breakStream(p: Peer, s: OutboundStream, err: unknown): void {
    if (p.stream !== s) return;
    p.stream = undefined;
    p.activeSince = undefined;
    s.conn.close();
    const lost = p.queued;
    p.len = 0;
    p.queued = 0;
    if (this.stopped || p.removed) return;
    p.lastError = err instanceof Error ? err : new Error(String(err));
    this.o.logger.warn("lost TCP streaming connection with remote peer", {
      "local-member-id": this.idHex,
      "remote-peer-id": p.hex,
      "remote-peer-url": s.url.href,
      error: errorText(err),
    });
    p.failing = true;
    this.drop(p.id, lost);
    this.scheduleRetry(p);
  }

  /** Stops everything running for a peer without reporting it (removal, URL change, stop). */
  private shutPeer(p: Peer): void {
    p.dialing?.abort();
    p.dialing = undefined;
    if (p.retryTimer !== undefined) this.clock.clearTimeout(p.retryTimer);
    p.retryTimer = undefined;
    if (p.stream) {
      p.stream.conn.close();
      p.stream = undefined;
    }
    p.activeSince = undefined;
    p.len = 0;
    p.queued = 0;
    if (p.removed || this.stopped) {
      p.snapshot?.abort();
      p.snapshot = undefined;
    }
  }

  private sendSnapshot(p: Peer, m: Message): void {
    const fail = (reason: string): void => {
      this.stats.snapshotsFailed++;
      this.o.logger.warn("failed to send database snapshot", { "remote-peer-id": p.hex, error: reason });
      queueMicrotask(() => {
        if (!this.stopped) this.o.onSnapshotStatus?.(p.id, false);
      });
      this.reportUnreachable(p.id);
    };
    if (p.snapshot !== undefined) return fail("a snapshot to this peer is already in flight");
    if (p.urls.length === 0) return fail("peer has no usable URL");
    let body: Uint8Array;
    try {
      body = this.codec.encode(m);
    } catch (err) {
      return fail(`encoding failed: ${errorText(err)}`);
    }
    const ac = new AbortController();
    p.snapshot = ac;
    this.track(this.postSnapshot(p, m, body, ac));
  }

  private async postSnapshot(p: Peer, m: Message, body: Uint8Array, ac: AbortController): Promise<void> {
    const url = p.urls[p.next % p.urls.length];
    const fields = {
      "local-member-id": this.idHex,
      "remote-peer-id": p.hex,
      "remote-peer-url": url.href,
      "snapshot-index": m.snapshot?.metadata.index ?? 0,
      "snapshot-size": body.length,
    };
    let conn: PeerConn | undefined;
    // generous: a minute plus one second per megabyte
    const timeoutMs = 60_000 + Math.ceil(body.length / 1000);
    let timedOut = false;
    const timer = this.clock.setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, timeoutMs);
    const onAbort = (): void => conn?.close();
    ac.signal.addEventListener("abort", onAbort, { once: true });
    const started = this.clock.now();
    try {
      this.o.logger.info("sending database snapshot", fields);
      conn = await dialPeer(url, ac.signal);
      if (ac.signal.aborted) throw new PeerTimeoutError("snapshot send aborted");
      const reader = new ConnReader(conn, 4096);
      await writeAll(
        conn,
        formatHead(`POST ${SNAPSHOT_PATH} HTTP/1.1`, {
          "Host": url.host,
          "Content-Type": "application/octet-stream",
          "Content-Length": body.length,
          "Connection": "close",
          ...this.identityHeaders(p),
        }),
      );
      await writeAll(conn, body);
      const head = await reader.readHead(MAX_HEAD_BYTES);
      if (head === null) throw new PeerProtocolError("peer closed the connection before answering");
      if (head.b !== "204" && head.b !== "200") throw await this.refusal(head, reader);
      if (p.snapshot === ac) p.snapshot = undefined;
      if (this.stopped) return;
      this.stats.snapshotsSent++;
      this.o.logger.info("sent database snapshot", { ...fields, took: `${this.clock.now() - started}ms` });
      this.o.onSnapshotStatus?.(p.id, true);
    } catch (err) {
      if (p.snapshot === ac) p.snapshot = undefined;
      if (this.stopped || p.removed) return;
      this.stats.snapshotsFailed++;
      const e = timedOut ? new PeerTimeoutError(`snapshot send timed out after ${timeoutMs}ms`) : err;
      this.o.logger.warn("failed to send database snapshot", { ...fields, error: errorText(e) });
      if (e instanceof ClusterIdMismatchError) p.lastError = e;
      this.o.onSnapshotStatus?.(p.id, false);
      this.reportUnreachable(p.id);
    } finally {
      this.clock.clearTimeout(timer);
      ac.signal.removeEventListener("abort", onAbort);
      conn?.close();
    }
  }

  // ---- receiving ------------------------------------------------------------------------------------

  private track(task: Promise<void>): void {
    this.tasks.add(task);
    task.finally(() => this.tasks.delete(task));
  }

  private async acceptLoop(l: PeerListener): Promise<void> {
    // ends when the listener is closed
    while (!this.stopped) {
      let conn: PeerConn;
      try {
        conn = await l.accept();
      } catch (err) {
        if (this.stopped || isClosedError(err)) return;
        this.o.logger.warn("failed to accept peer connection", { error: errorText(err) });
        // e.g. out of file descriptors: pause instead of spinning
        await new Promise<void>((resolve) => this.clock.setTimeout(resolve, 50));
        continue;
      }
      if (this.stopped) {
        conn.close();
        return;
      }
      this.track(this.serveConn(conn));
    }
  }

  private async serveConn(conn: PeerConn): Promise<void> {
    const now = this.clock.now();
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
    reader.onRead = () => inb.lastRead = this.clock.now();
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
        await this.serveSnapshot(inb, reader, method, head);
      } else {
        await this.serveGet(conn, method, path);
      }
    } catch (err) {
      if (!this.stopped && !isClosedError(err)) {
        this.o.logger.debug("peer connection ended with an error", {
          remote: conn.remoteAddr,
          error: errorText(err),
        });
        if (err instanceof PeerProtocolError) this.stats.refused++;
      }
    } finally {
      this.inbound.delete(inb);
      conn.close();
    }
  }

  private async respond(
    conn: PeerConn,
    status: number,
    reason: string,
    body: string,
    extra: Record<string, string> = {},
    contentType?: string,
  ): Promise<void> {
    await writeAll(
      conn,
      formatResponse(status, reason, body, { "X-Etcd-Cluster-ID": this.cidHex, ...extra }, contentType),
    );
  }

  private async serveGet(conn: PeerConn, method: string, path: string): Promise<void> {
    const h = this.handlers.get(path);
    if (h === undefined) return this.respond(conn, 404, "Not Found", "404 page not found\n");
    if (method !== "GET") {
      return this.respond(conn, 405, "Method Not Allowed", "Method Not Allowed\n", { Allow: "GET" });
    }
    let r: ReturnType<PeerHttpHandler>;
    try {
      r = h();
    } catch (err) {
      this.o.logger.error("peer HTTP handler failed", { path, error: errorText(err) });
      return this.respond(conn, 500, "Internal Server Error", "internal server error\n");
    }
    const reason = r.status === 200 ? "OK" : "Status";
    await this.respond(conn, r.status, reason, r.body, {}, r.contentType ?? "application/json");
  }

  /**
   * Checks the identity headers of a stream or snapshot request; answers and returns undefined when the
   * request is refused, returns the sender's ID otherwise.
   */
  private async checkIdentity(conn: PeerConn, head: HttpHead): Promise<bigint | undefined> {
    const h = head.headers;
    const remoteCid = h.get("x-etcd-cluster-id") ?? "";
    const fromHex = h.get("x-server-from") ?? "";
    if (parseHexId(remoteCid) !== this.o.clusterId) {
      this.stats.refused++;
      this.o.logger.warn("request cluster ID mismatch", {
        "local-member-id": this.idHex,
        "local-member-cluster-id": this.cidHex,
        "remote-peer-server-name": fromHex,
        "remote-peer-cluster-id": remoteCid,
      });
      await this.respond(conn, 412, "Precondition Failed", "cluster ID mismatch\n");
      return undefined;
    }
    const to = h.get("x-raft-to");
    if (parseHexId(to) !== this.o.memberId) {
      this.stats.refused++;
      this.o.logger.warn("ignored request; ID mismatch", {
        "local-member-id": this.idHex,
        "remote-peer-server-name": fromHex,
        "remote-peer-id-header": to ?? "",
      });
      await this.respond(conn, 412, "Precondition Failed", "to field mismatch\n");
      return undefined;
    }
    const from = parseHexId(fromHex);
    if (from === undefined || !this.peers.has(from)) {
      this.stats.refused++;
      this.o.logger.warn("failed to find remote peer in cluster", {
        "local-member-id": this.idHex,
        "remote-peer-id": fromHex,
      });
      await this.respond(conn, 404, "Not Found", "error sender not found\n");
      return undefined;
    }
    return from;
  }

  private async serveStream(
    inb: Inbound,
    reader: ConnReader,
    method: string,
    path: string,
    head: HttpHead,
  ): Promise<void> {
    const conn = inb.conn;
    if (method !== "POST") {
      return this.respond(conn, 405, "Method Not Allowed", "Method Not Allowed\n", { Allow: "POST" });
    }
    const from = await this.checkIdentity(conn, head);
    if (from === undefined) return;
    if (parseHexId(path.slice(STREAM_PREFIX.length + 1)) !== from) {
      this.stats.refused++;
      return this.respond(conn, 400, "Bad Request", "sender in path and X-Server-From differ\n");
    }
    // a new stream from a peer replaces an older one (the peer reconnected; the old one is dead)
    for (const other of this.inbound) if (other !== inb && other.from === from) other.conn.close();
    inb.from = from;
    await writeAll(
      conn,
      formatHead("HTTP/1.1 101 Switching Protocols", {
        "Connection": "Upgrade",
        "Upgrade": STREAM_PROTOCOL,
        "X-Etcd-Cluster-ID": this.cidHex,
        "X-Server-Version": this.serverVersion,
      }),
    );
    inb.lastWrite = this.clock.now();
    const fromHex = hexId(from);
    this.o.logger.debug("accepted TCP streaming connection from remote peer", {
      "local-member-id": this.idHex,
      "remote-peer-id": fromHex,
      remote: conn.remoteAddr,
    });
    let toMismatchLogged = false;
    // ends with the connection (peer closed it, removePeer, stop, idle timeout)
    while (!this.stopped) {
      while (reader.available >= FRAME_HEADER_BYTES) {
        const len = frameLength(reader.buf, reader.start);
        if (len > this.maxMessageBytes) {
          throw new PeerProtocolError(`message of ${len} bytes exceeds the limit of ${this.maxMessageBytes}`);
        }
        if (reader.available < FRAME_HEADER_BYTES + len) {
          reader.reserve(FRAME_HEADER_BYTES + len);
          break;
        }
        const at = reader.start + FRAME_HEADER_BYTES;
        reader.start = at + len;
        if (len === 0) continue; // keepalive
        // a copy: decoded byte fields are views into their input, and the read buffer is reused
        const m = this.codec.decode(reader.buf.slice(at, at + len));
        if (m.to !== this.o.memberId) {
          this.stats.refused++;
          if (!toMismatchLogged) {
            toMismatchLogged = true;
            this.o.logger.warn("ignored message addressed to another member", {
              "local-member-id": this.idHex,
              "remote-peer-id": fromHex,
              "message-to": hexId(m.to),
            });
          }
          continue;
        }
        this.stats.framesReceived++;
        this.deliver(m);
      }
      const readsBefore = reader.reads;
      if (!(await reader.fill())) return;
      this.stats.reads += reader.reads - readsBefore;
    }
  }

  private deliver(m: Message): void {
    try {
      this.o.onMessage(m);
    } catch (err) {
      this.o.logger.error("failed to process Raft message", {
        "local-member-id": this.idHex,
        "remote-peer-id": hexId(m.from),
        error: errorText(err),
      });
    }
  }

  private async serveSnapshot(
    inb: Inbound,
    reader: ConnReader,
    method: string,
    head: HttpHead,
  ): Promise<void> {
    const conn = inb.conn;
    if (method !== "POST") {
      return this.respond(conn, 405, "Method Not Allowed", "Method Not Allowed\n", { Allow: "POST" });
    }
    const from = await this.checkIdentity(conn, head);
    if (from === undefined) return;
    const lenText = head.headers.get("content-length");
    const len = lenText === undefined || !/^\d+$/.test(lenText) ? NaN : Number(lenText);
    if (!Number.isSafeInteger(len)) return this.respond(conn, 411, "Length Required", "length required\n");
    if (len > this.maxSnapshotBytes) {
      this.stats.refused++;
      return this.respond(conn, 413, "Payload Too Large", "snapshot too large\n");
    }
    inb.from = from;
    const started = this.clock.now();
    const body = await reader.readBody(len);
    let m: Message;
    try {
      m = this.codec.decode(body);
    } catch (err) {
      this.stats.refused++;
      this.o.logger.warn("failed to decode snapshot message", {
        "remote-peer-id": hexId(from),
        error: errorText(err),
      });
      return this.respond(conn, 400, "Bad Request", "error decoding raft message\n");
    }
    if (m.type !== MessageType.Snap) {
      this.stats.refused++;
      return this.respond(
        conn,
        400,
        "Bad Request",
        `unexpected raft message type ${m.type} on snapshot path\n`,
      );
    }
    if (m.to !== this.o.memberId) {
      this.stats.refused++;
      return this.respond(conn, 412, "Precondition Failed", "to field mismatch\n");
    }
    this.o.logger.info("received database snapshot", {
      "local-member-id": this.idHex,
      "remote-peer-id": hexId(from),
      "snapshot-index": m.snapshot?.metadata.index ?? 0,
      "snapshot-size": len,
      took: `${this.clock.now() - started}ms`,
    });
    this.stats.framesReceived++;
    this.stats.snapshotsReceived++;
    try {
      this.o.onMessage(m);
    } catch (err) {
      this.o.logger.error("failed to process Raft snapshot message", { error: errorText(err) });
      return this.respond(conn, 500, "Internal Server Error", "error processing raft message\n");
    }
    await this.respond(conn, 204, "No Content", "");
  }

  // ---- timers ---------------------------------------------------------------------------------------

  /** Keepalives, idle timeouts, and slow request heads. */
  private tick(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    for (const p of this.peers.values()) {
      const s = p.stream;
      if (s === undefined) continue;
      if (now - s.lastRead > this.idleTimeoutMs) {
        this.breakStream(p, s, new PeerTimeoutError(`nothing heard for ${now - s.lastRead}ms`));
      } else if (now - s.lastWrite >= this.keepaliveMs && p.len === 0 && !p.writing) {
        this.append(p, KEEPALIVE_FRAME.subarray(FRAME_HEADER_BYTES));
        this.scheduleFlush(p);
      }
    }
    for (const inb of this.inbound) {
      if (inb.kind !== "stream" || inb.from === undefined) {
        // a request head, a snapshot body or a one-shot answer: closed when the sender goes silent
        if (now - inb.lastRead > Math.max(this.idleTimeoutMs, 10_000)) inb.conn.close();
        continue;
      }
      if (now - inb.lastRead > this.idleTimeoutMs) {
        inb.conn.close();
      } else if (now - inb.lastWrite >= this.keepaliveMs && !inb.writing) {
        inb.writing = true;
        this.track(
          writeAll(inb.conn, KEEPALIVE_FRAME).then(
            () => {
              inb.lastWrite = this.clock.now();
              inb.writing = false;
            },
            () => inb.conn.close(),
          ),
        );
      }
    }
  }
}
