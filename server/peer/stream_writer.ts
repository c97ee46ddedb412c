/**
 * The outbound half of a peer: the long-lived stream this member dials to one other member, its send
 * queue, and the redial with backoff after a failure.
 *
 * Nothing here awaits on the send path: {@linkcode StreamWriter.enqueue} encodes a message into the
 * peer's buffer and schedules one flush for the current event-loop turn, so every message queued in that
 * turn leaves in one socket write. While a write is in flight new frames gather in a second buffer and go
 * out in the next write. Messages for a peer without an established stream are dropped and the peer is
 * reported unreachable; Raft sends them again. The answer direction of the stream carries only
 * keepalives; silence longer than the idle timeout ends the stream and a redial follows.
 *
 * @module
 */
import type { Message } from "../../raft/types.ts";
import { hexId } from "../logger.ts";
import type { PeerContext } from "./context.ts";
import type { PeerTraffic } from "./options.ts";
import { ClusterIdMismatchError, errorText, PeerRefusedError, PeerTimeoutError } from "./errors.ts";
import { MEMBER_REMOVED } from "./identity.ts";
import {
  ConnReader,
  formatHead,
  FRAME_HEADER_BYTES,
  MAX_HEAD_BYTES,
  PeerProtocolError,
  putFrameLength,
  STREAM_PREFIX,
  STREAM_PROTOCOL,
} from "./http.ts";
import { writeAll } from "../../storage/fs_util.ts";
import { identityHeaders, refusal } from "./identity.ts";
import { dialPeer, peerAddress, type PeerConn } from "./net.ts";

const INITIAL_BUFFER = 16 * 1024;
const EMPTY = new Uint8Array(0);

interface OutboundStream {
  conn: PeerConn;
  url: URL;
  lastRead: number;
  lastWrite: number;
}

/** Parses a peer's URLs, logging and skipping the ones that cannot be dialed. */
export function usableUrls(ctx: PeerContext, id: bigint, urls: string[]): URL[] {
  const out: URL[] = [];
  for (const s of urls) {
    try {
      peerAddress(s);
      out.push(new URL(s));
    } catch (err) {
      ctx.logger.warn("ignoring unusable peer URL", {
        "remote-peer-id": hexId(id),
        url: s,
        error: errorText(err),
      });
    }
  }
  return out;
}

/** One remote member as the sending side sees it: its URLs, its outbound stream and the queue for it. */
export class StreamWriter {
  /** The member's ID in hex, for headers and logs. */
  readonly hex: string;
  /** Where the member can be dialed. */
  urls: URL[];
  /** Index (mod urls.length) of the URL to dial next; moves on after a failure. */
  next = 0;
  /** When (clock ms) the stream became active; undefined while there is none. */
  activeSince: number | undefined;
  /** The last error dialing or streaming, cleared when a stream is established. */
  lastError: Error | undefined;
  /** Set when the member is removed; nothing restarts afterwards. */
  removed = false;

  private stream: OutboundStream | undefined;
  private dialing: AbortController | undefined;
  private retryTimer: number | undefined;
  private backoff: number;
  /** Frames waiting to be written: buf[0..len), `queued` messages (keepalives not counted). */
  private buf = new Uint8Array(INITIAL_BUFFER);
  private len = 0;
  private queued = 0;
  /** The buffer of the write in flight; becomes `buf` again when the next batch starts. */
  private spare = new Uint8Array(INITIAL_BUFFER);
  private writing = false;
  private flushScheduled = false;
  /** Set after a failure has been logged at warn level, so repeats go to debug. */
  private failing = false;
  /** The reason last logged at warn level while dials keep failing. */
  private loggedError: string | undefined;
  private queueFullLogged = false;
  /** Bytes sent to this member, for metrics. */
  private readonly traffic: PeerTraffic;

  /**
   * @param ctx the transport's shared state.
   * @param id the remote member's ID.
   * @param urls its usable peer URLs.
   */
  constructor(private readonly ctx: PeerContext, readonly id: bigint, urls: URL[]) {
    this.hex = hexId(id);
    this.traffic = ctx.trafficOf(id);
    this.urls = urls;
    this.backoff = ctx.backoffMinMs;
  }

  /** The URL to use now (dial or snapshot upload); undefined when the member has none. */
  get url(): URL | undefined {
    return this.urls.length === 0 ? undefined : this.urls[this.next % this.urls.length];
  }

  /**
   * Queues `m` for the stream, or drops it (reporting the peer unreachable) when there is no stream, the
   * queue is full, or it cannot be encoded.
   */
  enqueue(m: Message): void {
    const ctx = this.ctx;
    if (this.stream === undefined) return ctx.drop(this.id, 1);
    if (this.queued >= ctx.maxQueueMessages || this.len >= ctx.maxQueueBytes) {
      if (!this.queueFullLogged) {
        this.queueFullLogged = true;
        ctx.logger.warn("dropped internal Raft message since sending buffer is full", {
          "local-member-id": ctx.idHex,
          "remote-peer-id": this.hex,
          "queued-messages": this.queued,
          "queued-bytes": this.len,
        });
      }
      return ctx.drop(this.id, 1);
    }
    let data: Uint8Array;
    try {
      data = ctx.codec.encode(m);
    } catch (err) {
      ctx.logger.error("failed to encode Raft message", {
        "remote-peer-id": this.hex,
        error: errorText(err),
      });
      return ctx.drop(this.id, 1);
    }
    this.append(data);
    this.queued++;
    this.scheduleFlush();
  }

  /** Replaces the URLs; a stream to a URL no longer listed is closed and redialed. */
  setUrls(urls: URL[], started: boolean): void {
    this.urls = urls;
    this.next = 0;
    const s = this.stream;
    if (s !== undefined && urls.some((u) => u.href === s.url.href)) return;
    this.shut();
    this.backoff = this.ctx.backoffMinMs;
    if (started) this.connect();
  }

  /** Starts dialing unless a stream, a dial or a pending redial exists. */
  connect(): void {
    if (this.ctx.stopped || this.removed || this.stream || this.dialing || this.retryTimer !== undefined) {
      return;
    }
    const url = this.url;
    if (url === undefined) return;
    const ac = new AbortController();
    this.dialing = ac;
    this.ctx.track(this.dial(url, ac));
  }

  /** Keepalive when the stream is idle, and its end when the peer has been silent too long. */
  tick(now: number): void {
    const s = this.stream;
    if (s === undefined) return;
    if (now - s.lastRead > this.ctx.idleTimeoutMs) {
      this.breakStream(s, new PeerTimeoutError(`nothing heard for ${now - s.lastRead}ms`));
    } else if (now - s.lastWrite >= this.ctx.keepaliveMs && this.len === 0 && !this.writing) {
      this.append(EMPTY);
      this.scheduleFlush();
    }
  }

  /** Stops everything running for the peer without reporting it (removal, URL change, stop). */
  shut(): void {
    this.dialing?.abort();
    this.dialing = undefined;
    if (this.retryTimer !== undefined) this.ctx.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.stream) {
      this.stream.conn.close();
      this.stream = undefined;
    }
    this.activeSince = undefined;
    this.len = 0;
    this.queued = 0;
  }

  private append(data: Uint8Array): void {
    const need = this.len + FRAME_HEADER_BYTES + data.length;
    if (need > this.buf.length) {
      const grown = new Uint8Array(Math.max(need, this.buf.length * 2));
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
    }
    putFrameLength(this.buf, this.len, data.length);
    this.buf.set(data, this.len + FRAME_HEADER_BYTES);
    this.len = need;
  }

  private scheduleFlush(): void {
    if (this.writing || this.flushScheduled) return;
    this.flushScheduled = true;
    // a microtask runs after the current synchronous run of send() calls: they all share one write
    queueMicrotask(() => this.ctx.track(this.flush()));
  }

  /** Writes queued frames; while a write is in flight new frames gather and go out in the next one. */
  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const s = this.stream;
    const ctx = this.ctx;
    if (this.writing || s === undefined || this.len === 0) return;
    this.writing = true;
    try {
      while (this.len > 0 && this.stream === s && !ctx.stopped) {
        const out = this.buf.subarray(0, this.len);
        ctx.stats.writes++;
        ctx.stats.framesSent += this.queued;
        ctx.stats.bytesSent += this.len;
        this.traffic.sent += this.len;
        const big = this.buf;
        this.buf = this.spare;
        this.spare = big;
        this.len = 0;
        this.queued = 0;
        this.queueFullLogged = false;
        await writeAll(s.conn, out);
        s.lastWrite = ctx.clock.now();
        // give back memory after a burst
        if (this.spare.length > 1024 * 1024) this.spare = new Uint8Array(INITIAL_BUFFER);
      }
    } catch (err) {
      this.breakStream(s, err);
    } finally {
      this.writing = false;
      if (this.len > 0 && this.stream !== undefined && !ctx.stopped) this.scheduleFlush();
    }
  }

  private async dial(url: URL, ac: AbortController): Promise<void> {
    const ctx = this.ctx;
    let conn: PeerConn | undefined;
    let timedOut = false;
    const timer = ctx.clock.setTimeout(() => {
      timedOut = true;
      ac.abort();
      conn?.close();
    }, ctx.dialTimeoutMs);
    const onAbort = (): void => conn?.close();
    ac.signal.addEventListener("abort", onAbort, { once: true });
    try {
      conn = await dialPeer(url, ac.signal, ctx.o.tls);
      if (ac.signal.aborted) throw new PeerTimeoutError("dial aborted");
      const reader = new ConnReader(conn, 4096);
      await writeAll(
        conn,
        formatHead(`POST ${STREAM_PREFIX}/${ctx.idHex} HTTP/1.1`, {
          "Host": url.host,
          "Connection": "Upgrade",
          "Upgrade": STREAM_PROTOCOL,
          "Content-Type": "application/octet-stream",
          ...identityHeaders(ctx, this.hex),
        }),
      );
      const head = await reader.readHead(MAX_HEAD_BYTES);
      if (head === null) throw new PeerProtocolError("peer closed the connection before answering");
      if (head.b !== "101") throw await refusal(ctx, head, reader);
      if (this.dialing !== ac || ctx.stopped || this.removed || ac.signal.aborted) {
        conn.close();
        return;
      }
      this.dialing = undefined;
      ctx.clock.clearTimeout(timer);
      ac.signal.removeEventListener("abort", onAbort);
      this.establish(conn, reader, url);
      conn = undefined;
    } catch (err) {
      conn?.close();
      if (this.dialing === ac) this.dialing = undefined;
      if (ctx.stopped || this.removed || (ac.signal.aborted && !timedOut)) return;
      this.dialFailed(url, timedOut ? new PeerTimeoutError(`dialing ${url.href} timed out`) : err);
    } finally {
      ctx.clock.clearTimeout(timer);
      ac.signal.removeEventListener("abort", onAbort);
    }
  }

  private dialFailed(url: URL, err: unknown): void {
    const ctx = this.ctx;
    const e = err instanceof Error ? err : new Error(String(err));
    this.lastError = e;
    this.next++;
    const fields = {
      "local-member-id": ctx.idHex,
      "remote-peer-id": this.hex,
      "remote-peer-url": url.href,
      error: e.message,
    };
    if (e instanceof PeerRefusedError && e.status === 410) {
      // the peer says this member was removed from the cluster: the member stops, as etcd's does
      ctx.logger.error(MEMBER_REMOVED, { "local-member-id": ctx.idHex, "remote-peer-id": this.hex });
      ctx.o.onRemovedFromCluster?.();
    } else if (e instanceof ClusterIdMismatchError) {
      ctx.logger[this.failing ? "debug" : "warn"]("request sent was ignored due to cluster ID mismatch", {
        ...fields,
        "local-member-cluster-id": ctx.cidHex,
        "remote-peer-cluster-id": e.remoteClusterId,
      });
      ctx.reportUnreachable(this.id);
    } else if (!this.failing || e.message !== this.loggedError) {
      // a new reason is worth a line (the peer was down, now it refuses our certificate); a repeat is not
      ctx.logger.warn("failed to dial remote peer", fields);
      this.loggedError = e.message;
    } else {
      ctx.logger.debug("failed to dial remote peer", fields);
    }
    this.failing = true;
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.ctx.stopped || this.removed || this.retryTimer !== undefined) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.ctx.backoffMaxMs);
    this.retryTimer = this.ctx.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
  }

  private establish(conn: PeerConn, reader: ConnReader, url: URL): void {
    const ctx = this.ctx;
    const now = ctx.clock.now();
    const s: OutboundStream = { conn, url, lastRead: now, lastWrite: now };
    this.stream = s;
    this.activeSince = now;
    this.backoff = ctx.backoffMinMs;
    this.lastError = undefined;
    this.failing = false;
    ctx.stats.connects++;
    ctx.logger.info("established TCP streaming connection with remote peer", {
      "local-member-id": ctx.idHex,
      "remote-peer-id": this.hex,
      "remote-peer-url": url.href,
    });
    reader.onRead = () => s.lastRead = ctx.clock.now();
    ctx.track(this.readAnswers(s, reader));
  }

  /** The answer direction of an outbound stream carries only keepalives; its end means the stream ended. */
  private async readAnswers(s: OutboundStream, reader: ConnReader): Promise<void> {
    try {
      while (this.stream === s && !this.ctx.stopped) {
        reader.start = reader.end;
        if (!(await reader.fill())) throw new PeerProtocolError("closed by the remote peer");
      }
    } catch (err) {
      this.breakStream(s, err);
    }
  }

  /** Ends the stream after an error: drops its queue, reports the peer, and redials later. */
  private breakStream(s: OutboundStream, err: unknown): void {
    const ctx = this.ctx;
    if (this.stream !== s) return;
    this.stream = undefined;
    this.activeSince = undefined;
    s.conn.close();
    const lost = this.queued;
    this.len = 0;
    this.queued = 0;
    if (ctx.stopped || this.removed) return;
    this.lastError = err instanceof Error ? err : new Error(String(err));
    ctx.logger.warn("lost TCP streaming connection with remote peer", {
      "local-member-id": ctx.idHex,
      "remote-peer-id": this.hex,
      "remote-peer-url": s.url.href,
      error: errorText(err),
    });
    this.failing = true;
    ctx.drop(this.id, lost);
    this.scheduleRetry();
  }
}
