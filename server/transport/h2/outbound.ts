/**
 * Responses out: HEADERS (+ CONTINUATION) and DATA frames written into the connection's output buffer,
 * within the peer's flow-control windows (stream and connection). What a window does not allow waits in
 * the stream's queue until WINDOW_UPDATE; trailers and the end of the stream follow the queue. Also
 * stream resets and the end of a stream on our side.
 *
 * @module
 */
import { frameMessage, HIGH_WATER_MARK, MessageParts, messagePrefix } from "../grpc.ts";
import { Status, type StatusCode } from "../status.ts";
import { ErrorCode, Flag, FrameType, writeFrameHeader, writeUint32 } from "./frames.ts";
import type { H2Session } from "./session.ts";
import type { H2Stream } from "./stream.ts";

const STATUS_TEXT: string[] = Array.from({ length: 17 }, (_, i) => String(i));
const OK_TRAILERS = ["grpc-status", "0", "grpc-message", ""];

// ---------------------------------------------------------------- gRPC calls

/** Response headers if not yet sent, then one gRPC message. */
export function sendMessage(c: H2Session, s: H2Stream, message: Uint8Array): void {
  if (c.streams.get(s.id) !== s) return;
  if (!s.headersSent) {
    s.headersSent = true;
    writeHeaders(c, s.id, s.responseHeaders, false, s.responseKey);
  }
  sendGrpcData(c, s, message);
  c.scheduleFlush();
}

/** A whole unary response: headers, the message, OK trailers. */
export function sendUnary(c: H2Session, s: H2Stream, message: Uint8Array | MessageParts): void {
  if (c.streams.get(s.id) !== s) return;
  s.headersSent = true;
  writeHeaders(c, s.id, s.responseHeaders, false, s.responseKey);
  if (message instanceof MessageParts) sendGrpcParts(c, s, message);
  else sendGrpcData(c, s, message);
  sendTrailers(c, s, OK_TRAILERS, "t0");
  c.scheduleFlush();
}

/** Ends the response with a status: trailers, or trailers-only before any message. */
export function sendStatus(c: H2Session, s: H2Stream, status: StatusCode, encodedMessage: string): void {
  if (c.streams.get(s.id) !== s) return;
  if (!s.headersSent) {
    s.headersSent = true;
    const r = s.responseHeaders;
    writeHeaders(
      c,
      s.id,
      [
        r[0],
        r[1],
        r[2],
        r[3],
        "grpc-status",
        STATUS_TEXT[status] ?? String(status),
        "grpc-message",
        encodedMessage,
      ],
      true,
      undefined,
    );
    localEnd(c, s);
  } else if (status === Status.OK && encodedMessage === "") {
    sendTrailers(c, s, OK_TRAILERS, "t0");
  } else {
    sendTrailers(c, s, [
      "grpc-status",
      STATUS_TEXT[status] ?? String(status),
      "grpc-message",
      encodedMessage,
    ]);
  }
  c.scheduleFlush();
}

/** Resolves once the stream's queued output plus the connection backlog is under the high-water mark. */
export function waitDrain(c: H2Session, s: H2Stream): Promise<void> {
  if (c.streams.get(s.id) !== s || s.pendingBytes + c.backlog < HIGH_WATER_MARK) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    (s.drainWaiters ??= []).push(resolve);
    c.drainWatch.add(s);
  });
}

function sendTrailers(c: H2Session, s: H2Stream, list: string[], key?: string): void {
  if (s.pendingBytes > 0) {
    s.trailers = list;
    s.trailersKey = key;
    return;
  }
  writeHeaders(c, s.id, list, true, key);
  localEnd(c, s);
}

/** Writes a gRPC message (5-byte prefix + bytes) as DATA frames, or queues it behind the windows. */
/**
 * A message from this size on, blocked by flow control, is queued without a copy: its encoder handed it
 * over (small messages may be views into buffers reused later, and are copied).
 */
const LARGE_MESSAGE = 1 << 20;

function sendGrpcData(c: H2Session, s: H2Stream, message: Uint8Array): void {
  const n = message.length;
  const total = n + 5;
  if (s.pendingBytes === 0 && total <= s.sendWindow && total <= c.sendWindow) {
    s.sendWindow -= total;
    c.sendWindow -= total;
    const w = c.out;
    const max = c.peerMaxFrame;
    let first = Math.min(total, max);
    writeFrameHeader(w, first, FrameType.DATA, 0, s.id);
    const b = w.buf;
    let i = w.len;
    b[i++] = 0;
    b[i++] = n >>> 24;
    b[i++] = (n >>> 16) & 0xff;
    b[i++] = (n >>> 8) & 0xff;
    b[i++] = n & 0xff;
    first -= 5;
    b.set(first === n ? message : message.subarray(0, first), i);
    w.len = i + first;
    let off = first;
    while (off < n) {
      const len = Math.min(n - off, max);
      writeFrameHeader(w, len, FrameType.DATA, 0, s.id);
      w.buf.set(message.subarray(off, off + len), w.len);
      w.len += len;
      off += len;
    }
    return;
  }
  if (n < LARGE_MESSAGE) {
    queue(c, s, frameMessage(message));
  } else {
    // queued as it is: a copy of many megabytes would take one turn
    queue(c, s, messagePrefix(n));
    queue(c, s, message);
  }
  drainStream(c, s);
}

/** One gRPC message given in parts: its length prefix, then the parts queued as they are. */
function sendGrpcParts(c: H2Session, s: H2Stream, message: MessageParts): void {
  queue(c, s, messagePrefix(message.length));
  for (const p of message.parts) if (p.length > 0) queue(c, s, p);
  drainStream(c, s);
}

// ---------------------------------------------------------------- queues and windows

/** Appends bytes to a stream's output queue (sent by {@linkcode drainStream}). */
export function queue(c: H2Session, s: H2Stream, bytes: Uint8Array): void {
  (s.pending ??= []).push(bytes);
  s.pendingBytes += bytes.length;
  c.blocked.add(s);
}

/**
 * Bytes of DATA moved into the connection's output per turn; the rest follows once the socket has taken
 * them. A client that opens a window of many megabytes would otherwise have all of it copied in one turn
 * (and the output buffer grown for it), holding every other request on the connection's member.
 */
const DRAIN_SLICE = 192 * 1024;

/** Sends what the windows allow of a stream's queue, then its trailers or final empty DATA. */
export function drainStream(c: H2Session, s: H2Stream): void {
  const w = c.out;
  const q = s.pending;
  while (s.pendingBytes > 0 && q !== undefined) {
    const allow = Math.min(s.sendWindow, c.sendWindow, c.peerMaxFrame);
    if (allow <= 0 || w.len >= DRAIN_SLICE) {
      // a full slice is drained again after the write (see H2Session.afterWrite)
      c.scheduleFlush();
      return;
    }
    const head = q[0];
    const n = Math.min(allow, head.length - s.pendingOffset);
    writeFrameHeader(w, n, FrameType.DATA, 0, s.id);
    w.buf.set(head.subarray(s.pendingOffset, s.pendingOffset + n), w.len);
    w.len += n;
    s.sendWindow -= n;
    c.sendWindow -= n;
    s.pendingBytes -= n;
    s.pendingOffset += n;
    if (s.pendingOffset === head.length) {
      q.shift();
      s.pendingOffset = 0;
    }
  }
  c.blocked.delete(s);
  if (s.trailers !== undefined) {
    const list = s.trailers;
    s.trailers = undefined;
    writeHeaders(c, s.id, list, true, s.trailersKey);
    localEnd(c, s);
  } else if (s.endAfterData) {
    s.endAfterData = false;
    writeFrameHeader(w, 0, FrameType.DATA, Flag.END_STREAM, s.id);
    localEnd(c, s);
  }
  c.scheduleFlush();
}

/** After the windows grew: drains the blocked streams while the connection window lasts. */
export function drainBlocked(c: H2Session): void {
  if (c.blocked.size === 0) return;
  for (const s of [...c.blocked]) {
    if (c.sendWindow <= 0) break;
    drainStream(c, s);
  }
  c.notifyDrain();
}

// ---------------------------------------------------------------- frames

/** HEADERS (+ CONTINUATION) for a header list. */
export function writeHeaders(
  c: H2Session,
  id: number,
  list: readonly string[],
  endStream: boolean,
  key: string | undefined,
): void {
  const h = c.hbuf;
  h.reset();
  c.encoder.encode(list, h, key);
  const w = c.out;
  const max = c.peerMaxFrame;
  const total = h.len;
  const endFlag = endStream ? Flag.END_STREAM : 0;
  if (total <= max) {
    writeFrameHeader(w, total, FrameType.HEADERS, endFlag | Flag.END_HEADERS, id);
    w.buf.set(h.bytes(), w.len);
    w.len += total;
    return;
  }
  let off = 0;
  while (off < total) {
    const n = Math.min(max, total - off);
    const last = off + n === total ? Flag.END_HEADERS : 0;
    writeFrameHeader(
      w,
      n,
      off === 0 ? FrameType.HEADERS : FrameType.CONTINUATION,
      (off === 0 ? endFlag : 0) | last,
      id,
    );
    w.buf.set(h.buf.subarray(off, off + n), w.len);
    w.len += n;
    off += n;
  }
}

/** We sent END_STREAM: the stream is done; reset it if the client is still sending (as grpc-go does). */
export function localEnd(c: H2Session, s: H2Stream): void {
  if (!s.remoteEnded) resetStream(c, s.id, ErrorCode.NO_ERROR);
  c.forget(s);
}

/** Stream error: reset it and cancel what serves it. */
export function abortStream(c: H2Session, s: H2Stream, code: number): void {
  resetStream(c, s.id, code);
  c.forget(s);
  s.call?.cancel();
}

/** RST_STREAM with an error code. */
export function resetStream(c: H2Session, id: number, code: number): void {
  writeFrameHeader(c.out, 4, FrameType.RST_STREAM, 0, id);
  writeUint32(c.out, code);
  c.scheduleFlush();
}
