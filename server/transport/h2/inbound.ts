/**
 * Frames in: bytes from the socket are cut into frames (a frame split across reads waits for the rest)
 * and each frame is handled here: the connection preface, SETTINGS, HEADERS + CONTINUATION decoded with
 * HPACK into new streams (gRPC calls or plain HTTP requests), DATA with our receive windows and
 * WINDOW_UPDATE, PING, RST_STREAM, GOAWAY, PRIORITY (parsed and ignored), and the peer's WINDOW_UPDATE
 * that lets queued output go on. A stream error resets that stream; a connection error sends GOAWAY and
 * closes this connection only.
 *
 * @module
 */
import { grpcContentType, START_PROTOCOL_ERROR } from "../grpc.ts";
import { HpackError } from "./hpack.ts";
import {
  DEFAULT_MAX_FRAME_SIZE,
  ErrorCode,
  Flag,
  FrameType,
  MAX_MAX_FRAME_SIZE,
  MAX_WINDOW,
  PREFACE,
  readUint32,
  Setting,
  writeFrameHeader,
  writeUint32,
} from "./frames.ts";
import { fallbackData, FallbackRequest } from "./fallback.ts";
import { abortStream, drainBlocked, drainStream, resetStream } from "./outbound.ts";
import { CONNECTION_WINDOW, EMPTY, type H2Session, STREAM_WINDOW } from "./session.ts";
import { H2Call, H2Stream } from "./stream.ts";

/** Largest header block (all HEADERS + CONTINUATION fragments) accepted. */
const MAX_HEADER_BLOCK = 256 * 1024;
/** Largest decoded header list accepted (RFC 9113 §6.5.2 sizes). */
const MAX_HEADER_LIST = 1 << 20;

/** A connection-level error: GOAWAY with `errorCode`, then close. */
class ConnectionError extends Error {
  readonly code = "H2_CONNECTION_ERROR";
  constructor(readonly errorCode: number, message: string) {
    super(message);
  }
}

/** Bytes from the socket. The chunk is not kept (the caller may reuse it). */
export function receive(c: H2Session, chunk: Uint8Array): void {
  if (c.dead) return;
  let buf = chunk;
  if (c.input !== undefined) {
    const need = c.input.length + chunk.length;
    if (c.join.length < need) {
      c.join = new Uint8Array(Math.max(need, 2 * c.join.length, 32 * 1024));
    }
    c.join.set(c.input);
    c.join.set(chunk, c.input.length);
    buf = c.join.subarray(0, need);
    c.input = undefined;
  }
  let off = 0;
  const end = buf.length;
  try {
    if (c.prefaceSeen < PREFACE.length) {
      while (c.prefaceSeen < PREFACE.length && off < end) {
        if (buf[off++] !== PREFACE[c.prefaceSeen++]) {
          throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "bad connection preface");
        }
      }
    }
    while (end - off >= 9) {
      const length = (buf[off] << 16) | (buf[off + 1] << 8) | buf[off + 2];
      if (length > DEFAULT_MAX_FRAME_SIZE) {
        throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} bytes`);
      }
      if (end - off - 9 < length) break;
      const type = buf[off + 3];
      const flags = buf[off + 4];
      const id = readUint32(buf, off + 5) & 0x7fffffff;
      const payload = buf.subarray(off + 9, off + 9 + length);
      off += 9 + length;
      onFrame(c, type, flags, id, payload);
      if (c.dead) return;
    }
  } catch (err) {
    if (err instanceof ConnectionError) fatal(c, err.errorCode, err.message);
    else if (err instanceof HpackError) fatal(c, ErrorCode.COMPRESSION_ERROR, err.message);
    else fatal(c, ErrorCode.INTERNAL_ERROR, String((err as Error)?.message ?? err));
    return;
  }
  if (off < end) {
    const rest = end - off;
    if (c.carry.length < rest) {
      c.carry = new Uint8Array(Math.max(rest, 2 * c.carry.length, 32 * 1024));
    }
    c.carry.set(buf.subarray(off, end));
    c.input = c.carry.subarray(0, rest);
  }
}

/** Connection error: GOAWAY with a code and reason, every stream cancelled, then close. */
function fatal(c: H2Session, code: number, reason: string): void {
  if (c.dead) return;
  c.dead = true;
  writeFrameHeader(c.out, 8 + reason.length, FrameType.GOAWAY, 0, 0);
  writeUint32(c.out, c.lastStreamId);
  writeUint32(c.out, code);
  for (let i = 0; i < reason.length; i++) c.out.buf[c.out.len++] = reason.charCodeAt(i) & 0x7f;
  c.cancelAll();
  c.finishAndClose();
}

function onFrame(c: H2Session, type: number, flags: number, id: number, payload: Uint8Array): void {
  if (!c.settingsSeen) {
    if (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "expected SETTINGS first");
    }
    c.settingsSeen = true;
  }
  if (c.blockStream !== 0 && (type !== FrameType.CONTINUATION || id !== c.blockStream)) {
    throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "header block interrupted");
  }
  switch (type) {
    case FrameType.DATA:
      onData(c, flags, id, payload);
      break;
    case FrameType.HEADERS:
      onHeaders(c, flags, id, payload);
      break;
    case FrameType.CONTINUATION:
      if (c.blockStream === 0) {
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "stray CONTINUATION");
      }
      addFragment(c, payload);
      if (flags & Flag.END_HEADERS) endBlock(c);
      break;
    case FrameType.PRIORITY:
      if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0");
      if (payload.length !== 5) resetStream(c, id, ErrorCode.FRAME_SIZE_ERROR);
      break;
    case FrameType.RST_STREAM:
      onReset(c, id, payload);
      break;
    case FrameType.SETTINGS:
      onSettings(c, flags, id, payload);
      break;
    case FrameType.PUSH_PROMISE:
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE from a client");
    case FrameType.PING:
      if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PING on a stream");
      if (payload.length !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "PING size");
      if ((flags & Flag.ACK) === 0) {
        writeFrameHeader(c.out, 8, FrameType.PING, Flag.ACK, 0);
        c.out.buf.set(payload, c.out.len);
        c.out.len += 8;
        c.scheduleFlush();
      }
      break;
    case FrameType.GOAWAY:
      if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
      if (payload.length < 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY size");
      c.goawayReceived = true;
      if (c.streams.size === 0) c.finishAndClose();
      break;
    case FrameType.WINDOW_UPDATE:
      onWindowUpdate(c, id, payload);
      break;
    default:
      break; // unknown frame types are ignored
  }
}

function onSettings(c: H2Session, flags: number, id: number, p: Uint8Array): void {
  if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream");
  if (flags & Flag.ACK) {
    if (p.length !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with payload");
    return;
  }
  if (p.length % 6 !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS size");
  for (let i = 0; i < p.length; i += 6) {
    const key = (p[i] << 8) | p[i + 1];
    const value = readUint32(p, i + 2);
    switch (key) {
      case Setting.HEADER_TABLE_SIZE:
        c.encoder.setPeerMaxTableSize(value);
        break;
      case Setting.ENABLE_PUSH:
        if (value > 1) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "ENABLE_PUSH");
        break;
      case Setting.INITIAL_WINDOW_SIZE: {
        if (value > MAX_WINDOW) {
          throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE");
        }
        const delta = value - c.peerInitialWindow;
        c.peerInitialWindow = value;
        for (const s of c.streams.values()) {
          s.sendWindow += delta;
          if (s.sendWindow > MAX_WINDOW) {
            throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "window overflow");
          }
        }
        break;
      }
      case Setting.MAX_FRAME_SIZE:
        if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE) {
          throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "MAX_FRAME_SIZE");
        }
        c.peerMaxFrame = value;
        break;
      default:
        break;
    }
  }
  writeFrameHeader(c.out, 0, FrameType.SETTINGS, Flag.ACK, 0);
  drainBlocked(c);
  c.scheduleFlush();
}

function onWindowUpdate(c: H2Session, id: number, p: Uint8Array): void {
  if (p.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE size");
  const inc = readUint32(p, 0) & 0x7fffffff;
  if (id === 0) {
    if (inc === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
    c.sendWindow += inc;
    if (c.sendWindow > MAX_WINDOW) {
      throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "window overflow");
    }
    drainBlocked(c);
    return;
  }
  const s = c.streams.get(id);
  if (s === undefined) {
    if (id > c.lastStreamId) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE on idle stream");
    }
    return;
  }
  if (inc === 0) {
    abortStream(c, s, ErrorCode.PROTOCOL_ERROR);
    return;
  }
  s.sendWindow += inc;
  if (s.sendWindow > MAX_WINDOW) {
    abortStream(c, s, ErrorCode.FLOW_CONTROL_ERROR);
    return;
  }
  if (s.pendingBytes > 0 || s.trailers !== undefined || s.endAfterData) drainStream(c, s);
  c.notifyDrain();
}

function onReset(c: H2Session, id: number, p: Uint8Array): void {
  if (p.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM size");
  if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0");
  if (id > c.lastStreamId) {
    throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on idle stream");
  }
  const s = c.streams.get(id);
  if (s === undefined) return;
  c.forget(s);
  s.call?.cancel();
}

function onData(c: H2Session, flags: number, id: number, payload: Uint8Array): void {
  if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
  const size = payload.length;
  if (size > c.recvWindow) {
    throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "connection window exceeded");
  }
  c.recvWindow -= size;
  if (c.recvWindow <= CONNECTION_WINDOW / 2) {
    writeFrameHeader(c.out, 4, FrameType.WINDOW_UPDATE, 0, 0);
    writeUint32(c.out, CONNECTION_WINDOW - c.recvWindow);
    c.recvWindow = CONNECTION_WINDOW;
    c.scheduleFlush();
  }
  let data = payload;
  if (flags & Flag.PADDED) {
    if (size === 0 || payload[0] >= size) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "bad padding");
    }
    data = payload.subarray(1, size - payload[0]);
  }
  const s = c.streams.get(id);
  if (s === undefined) {
    if (id > c.lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on idle stream");
    return; // a stream we already closed: the bytes were counted, nothing else to do
  }
  if (s.remoteEnded) {
    abortStream(c, s, ErrorCode.STREAM_CLOSED);
    return;
  }
  if (size > s.recvWindow) {
    abortStream(c, s, ErrorCode.FLOW_CONTROL_ERROR);
    return;
  }
  s.recvWindow -= size;
  const end = (flags & Flag.END_STREAM) !== 0;
  if (end) s.remoteEnded = true;
  const call = s.call;
  if (call !== undefined) {
    if (data.length > 0) call.receive(data);
    if (end) call.receiveEnd();
  } else if (s.fallback !== undefined) {
    fallbackData(c, s, s.fallback, data, end);
  }
  if (!end && s.recvWindow <= STREAM_WINDOW / 2 && c.streams.get(id) === s) {
    writeFrameHeader(c.out, 4, FrameType.WINDOW_UPDATE, 0, id);
    writeUint32(c.out, STREAM_WINDOW - s.recvWindow);
    s.recvWindow = STREAM_WINDOW;
    c.scheduleFlush();
  }
}

function onHeaders(c: H2Session, flags: number, id: number, payload: Uint8Array): void {
  if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0");
  let start = 0;
  let end = payload.length;
  if (flags & Flag.PADDED) {
    if (end === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "bad padding");
    const pad = payload[0];
    start = 1;
    if (pad > end - start) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "bad padding");
    end -= pad;
  }
  if (flags & Flag.PRIORITY) {
    if (end - start < 5) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "HEADERS priority");
    start += 5;
  }
  if (start > end) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "bad padding");
  c.blockStream = id;
  c.blockEndStream = (flags & Flag.END_STREAM) !== 0;
  c.blockParts.length = 0;
  c.blockSize = 0;
  const fragment = payload.subarray(start, end);
  if (flags & Flag.END_HEADERS) {
    c.blockStream = 0;
    headerBlock(c, id, fragment, c.blockEndStream);
  } else {
    addFragment(c, fragment);
  }
}

function addFragment(c: H2Session, fragment: Uint8Array): void {
  c.blockSize += fragment.length;
  if (c.blockSize > MAX_HEADER_BLOCK) {
    throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "header block too large");
  }
  c.blockParts.push(fragment.slice());
}

function endBlock(c: H2Session): void {
  const id = c.blockStream;
  c.blockStream = 0;
  const block = new Uint8Array(c.blockSize);
  let off = 0;
  for (const p of c.blockParts) {
    block.set(p, off);
    off += p.length;
  }
  c.blockParts.length = 0;
  headerBlock(c, id, block, c.blockEndStream);
}

/** A complete header block: decode it (always, to keep HPACK in step), then open or end a stream. */
function headerBlock(c: H2Session, id: number, block: Uint8Array, endStream: boolean): void {
  const headers: string[] = [];
  const listSize = c.decoder.decode(block, headers);
  if ((id & 1) === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "even stream id from a client");
  if (id <= c.lastStreamId) {
    const s = c.streams.get(id);
    if (s === undefined) return; // trailers of a stream we closed
    if (!endStream || s.remoteEnded) {
      abortStream(c, s, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    // request trailers: only the end of the stream matters
    s.remoteEnded = true;
    if (s.call !== undefined) s.call.receiveEnd();
    else if (s.fallback !== undefined) fallbackData(c, s, s.fallback, EMPTY, true);
    return;
  }
  c.lastStreamId = id;
  if (c.draining || c.ctx.closing || c.streams.size >= c.maxStreams) {
    resetStream(c, id, ErrorCode.REFUSED_STREAM);
    return;
  }
  if (listSize > MAX_HEADER_LIST) {
    resetStream(c, id, ErrorCode.ENHANCE_YOUR_CALM);
    return;
  }
  let method: string | undefined;
  let path: string | undefined;
  let contentType: string | undefined;
  let timeout: string | undefined;
  let encoding: string | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    switch (name) {
      case ":method":
        method = headers[i + 1];
        break;
      case ":path":
        path = headers[i + 1];
        break;
      case "content-type":
        contentType = headers[i + 1];
        break;
      case "grpc-timeout":
        timeout = headers[i + 1];
        break;
      case "grpc-encoding":
        encoding = headers[i + 1];
        break;
    }
  }
  if (method === undefined || path === undefined || path === "") {
    resetStream(c, id, ErrorCode.PROTOCOL_ERROR);
    return;
  }
  const s = new H2Stream(id, c.peerInitialWindow);
  s.remoteEnded = endStream;
  c.addStream(s);
  const ct = grpcContentType(contentType);
  if (ct === undefined) {
    s.fallback = new FallbackRequest(method, path, headers);
    if (endStream) fallbackData(c, s, s.fallback, EMPTY, true);
    return;
  }
  if (ct !== "application/grpc") {
    s.responseHeaders = [":status", "200", "content-type", ct];
    s.responseKey = "h:" + ct;
  }
  const call = new H2Call(c, s, path, headers);
  call.peer = c.peer;
  call.peerCertificate = c.peerCertificate;
  s.call = call;
  if (call.start(c.ctx.router, c.maxReceive, timeout, encoding) === START_PROTOCOL_ERROR) {
    c.forget(s);
    resetStream(c, id, ErrorCode.PROTOCOL_ERROR);
    return;
  }
  if (endStream && c.streams.get(id) === s) call.receiveEnd();
}
