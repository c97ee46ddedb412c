/**
 * Sending a snapshot: one `POST /raft/snapshot` per MsgSnap, on a connection of its own so that a large
 * image never sits in front of heartbeats, and at most one at a time per peer.
 *
 * The body (see `snapshot_receiver.ts` for its layout) is the MsgSnap without its image as one frame,
 * then the image, pulled from a {@linkcode ByteStream} one chunk at a time: the next chunk is asked for
 * only once the previous one has been written to the socket, so a slow receiver holds the sender back
 * instead of making it buffer. The image comes from the member's `snapshotStream` option, or is the
 * message's own `snapshot.data`. The receiver may answer before the body is complete (a refusal); the
 * upload then stops and reports that answer.
 *
 * @module
 */
import type { Message } from "../../raft/types.ts";
import { type ByteStream, streamOf } from "../../storage/byte_stream.ts";
import type { PeerContext } from "./context.ts";
import { ClusterIdMismatchError, errorText, PeerTimeoutError } from "./errors.ts";
import {
  ConnReader,
  formatHead,
  FRAME_HEADER_BYTES,
  type HttpHead,
  MAX_HEAD_BYTES,
  PeerProtocolError,
  putFrameLength,
  SNAPSHOT_CHUNK_BYTES,
  SNAPSHOT_PATH,
} from "./http.ts";
import { writeAll } from "../../storage/fs_util.ts";
import { identityHeaders, refusal } from "./identity.ts";
import { dialPeer, type PeerConn } from "./net.ts";
import type { StreamWriter } from "./stream_writer.ts";

const EMPTY = new Uint8Array(0);
/** How long a failed upload waits for an answer that may explain the failure. */
const ANSWER_GRACE_MS = 1000;

/** The image source failed or did not deliver the bytes it announced. */
class ImageSourceError extends Error {
  /** Stable error code of this class. */
  readonly code = "SNAPSHOT_IMAGE_SOURCE";

  constructor(message: string) {
    super(message);
    this.name = "ImageSourceError";
  }
}

/** The MsgSnap as it leads the upload: everything but the image. */
function withoutImage(m: Message): Message {
  return m.snapshot ? { ...m, snapshot: { metadata: m.snapshot.metadata, data: EMPTY } } : m;
}

/** Uploads snapshots to peers. */
export class SnapshotSender {
  private readonly inFlight = new Map<bigint, AbortController>();

  /** @param ctx the transport's shared state. */
  constructor(private readonly ctx: PeerContext) {}

  /**
   * Starts uploading the MsgSnap `m` to `p` in the background. The outcome goes to `onSnapshotStatus`,
   * a failure also to `onUnreachable`; both after this call returns.
   */
  send(p: StreamWriter, m: Message): void {
    const ctx = this.ctx;
    const fail = (reason: string): void => {
      ctx.stats.snapshotsFailed++;
      ctx.logger.warn("failed to send database snapshot", { "remote-peer-id": p.hex, error: reason });
      queueMicrotask(() => ctx.snapshotStatus(p.id, false));
      ctx.reportUnreachable(p.id);
    };
    if (this.inFlight.has(p.id)) return fail("a snapshot to this peer is already in flight");
    const url = p.url;
    if (url === undefined) return fail("peer has no usable URL");
    let lead: Uint8Array;
    try {
      lead = ctx.codec.encode(withoutImage(m));
    } catch (err) {
      return fail(`encoding failed: ${errorText(err)}`);
    }
    let image: ByteStream;
    try {
      image = ctx.o.snapshotStream ? ctx.o.snapshotStream(m) : streamOf(m.snapshot?.data ?? EMPTY);
    } catch (err) {
      return fail(`opening the snapshot image failed: ${errorText(err)}`);
    }
    const ac = new AbortController();
    this.inFlight.set(p.id, ac);
    ctx.track(this.post(p, url, m, lead, image, ac));
  }

  /** Stops the upload to `id`, if any, without reporting it (the peer was removed, or the transport stops). */
  abort(id: bigint): void {
    this.inFlight.get(id)?.abort();
    this.inFlight.delete(id);
  }

  /** Stops every upload. */
  abortAll(): void {
    for (const id of [...this.inFlight.keys()]) this.abort(id);
  }

  private async post(
    p: StreamWriter,
    url: URL,
    m: Message,
    lead: Uint8Array,
    image: ByteStream,
    ac: AbortController,
  ): Promise<void> {
    const ctx = this.ctx;
    const fields = {
      "local-member-id": ctx.idHex,
      "remote-peer-id": p.hex,
      "remote-peer-url": url.href,
      "snapshot-index": m.snapshot?.metadata.index ?? 0,
      "snapshot-size": image.size,
    };
    let conn: PeerConn | undefined;
    // generous: a minute plus one second per megabyte
    const timeoutMs = 60_000 + Math.ceil(image.size / 1000);
    let timedOut = false;
    const timer = ctx.clock.setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, timeoutMs);
    const onAbort = (): void => conn?.close();
    ac.signal.addEventListener("abort", onAbort, { once: true });
    const started = ctx.clock.now();
    try {
      ctx.logger.info("sending database snapshot", fields);
      conn = await dialPeer(url, ac.signal, ctx.o.tls);
      if (ac.signal.aborted) throw new PeerTimeoutError("snapshot send aborted");
      await this.upload(conn, url, p.hex, lead, image);
      if (this.inFlight.get(p.id) === ac) this.inFlight.delete(p.id);
      if (ctx.stopped) return;
      ctx.stats.snapshotsSent++;
      ctx.logger.info("sent database snapshot", { ...fields, took: `${ctx.clock.now() - started}ms` });
      ctx.snapshotStatus(p.id, true);
    } catch (err) {
      if (this.inFlight.get(p.id) === ac) this.inFlight.delete(p.id);
      if (ctx.stopped || p.removed) return;
      ctx.stats.snapshotsFailed++;
      const e = timedOut ? new PeerTimeoutError(`snapshot send timed out after ${timeoutMs}ms`) : err;
      ctx.logger.warn("failed to send database snapshot", { ...fields, error: errorText(e) });
      if (e instanceof ClusterIdMismatchError) p.lastError = e;
      ctx.snapshotStatus(p.id, false);
      ctx.reportUnreachable(p.id);
    } finally {
      ctx.clock.clearTimeout(timer);
      ac.signal.removeEventListener("abort", onAbort);
      conn?.close();
    }
  }

  /** Writes the request and its body, and resolves once the receiver accepted it; throws otherwise. */
  private async upload(
    conn: PeerConn,
    url: URL,
    toHex: string,
    lead: Uint8Array,
    image: ByteStream,
  ): Promise<void> {
    const ctx = this.ctx;
    const reader = new ConnReader(conn, 4096);
    // the answer can come before the body is complete (a refusal): it is watched for from the start
    let answered = false;
    const answer: Promise<HttpHead | null> = reader.readHead(MAX_HEAD_BYTES);
    answer.then(() => answered = true, () => answered = true);
    const head = formatHead(`POST ${SNAPSHOT_PATH} HTTP/1.1`, {
      "Host": url.host,
      "Content-Type": "application/octet-stream",
      "Content-Length": FRAME_HEADER_BYTES + lead.length + image.size,
      "Connection": "close",
      ...identityHeaders(ctx, toHex),
    });
    const first = new Uint8Array(head.length + FRAME_HEADER_BYTES + lead.length);
    first.set(head);
    putFrameLength(first, head.length, lead.length);
    first.set(lead, head.length + FRAME_HEADER_BYTES);
    let complete = false;
    try {
      await writeAll(conn, first);
      complete = await this.writeImage(conn, image, () => answered);
    } catch (err) {
      if (err instanceof ImageSourceError) {
        // the receiver sees the body cut short and drops what it got
        conn.close();
        answer.catch(() => {});
        throw err;
      }
      // the socket failed: a refusal may have closed it, and its answer may still be readable
      const h = await this.within(answer, ANSWER_GRACE_MS);
      if (h !== null && h.b !== "204" && h.b !== "200") throw await refusal(ctx, h, reader);
      throw err;
    }
    const h = await answer;
    if (h === null) throw new PeerProtocolError("peer closed the connection before answering");
    if (h.b !== "204" && h.b !== "200") throw await refusal(ctx, h, reader);
    if (!complete) throw new PeerProtocolError("peer answered before the snapshot was complete");
  }

  /** `answer`, or null when it fails or takes longer than `ms`. */
  private within(answer: Promise<HttpHead | null>, ms: number): Promise<HttpHead | null> {
    return new Promise((resolve) => {
      const timer = this.ctx.clock.setTimeout(() => resolve(null), ms);
      answer.then(resolve, () => resolve(null)).finally(() => this.ctx.clock.clearTimeout(timer));
    });
  }

  /**
   * Writes the image chunk by chunk, pulling the next chunk only after the previous one is written.
   * Resolves true when all of it went out, false when the receiver answered first.
   */
  private async writeImage(conn: PeerConn, image: ByteStream, answered: () => boolean): Promise<boolean> {
    let it: Iterator<Uint8Array>;
    try {
      it = image.chunks()[Symbol.iterator]();
    } catch (err) {
      throw new ImageSourceError(`reading the snapshot image failed: ${errorText(err)}`);
    }
    let sent = 0;
    try {
      for (;;) {
        if (answered()) return false;
        let r: IteratorResult<Uint8Array>;
        try {
          r = it.next();
        } catch (err) {
          throw new ImageSourceError(`reading the snapshot image failed: ${errorText(err)}`);
        }
        if (r.done) break;
        const chunk = r.value;
        if (sent + chunk.length > image.size) {
          throw new ImageSourceError(`snapshot image larger than the announced ${image.size} bytes`);
        }
        // a chunk larger than the usual size (e.g. an image already in memory) goes out in usual pieces
        for (let off = 0; off < chunk.length; off += SNAPSHOT_CHUNK_BYTES) {
          await writeAll(conn, chunk.subarray(off, Math.min(chunk.length, off + SNAPSHOT_CHUNK_BYTES)));
        }
        sent += chunk.length;
      }
    } finally {
      try {
        it.return?.();
      } catch {
        // the source's own cleanup failed; the upload's outcome is decided already
      }
    }
    if (sent !== image.size) {
      throw new ImageSourceError(`snapshot image of ${sent} bytes, ${image.size} announced`);
    }
    return true;
  }
}
