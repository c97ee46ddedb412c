/**
 * One server-side HTTP/2 connection (RFC 9113) serving gRPC calls, independent of the socket: bytes
 * come in through `receive`, frames go out through an {@linkcode H2Socket} in batches — everything
 * produced during one turn of the event loop leaves in a single write.
 *
 * Covered: the connection preface, SETTINGS and their ACK, HEADERS + CONTINUATION with HPACK, DATA with
 * flow control both ways (stream and connection windows, WINDOW_UPDATE), PING, RST_STREAM, GOAWAY,
 * PRIORITY (parsed and ignored), the concurrent-stream limit, frame-size limits and padding. Stream
 * errors reset one stream; connection errors send GOAWAY and close this connection only.
 *
 * @module
 */
import {
  GrpcCall,
  grpcContentType,
  type GrpcRouter,
  HIGH_WATER_MARK,
  type HttpFallbackResponse,
  type ServeOptions,
  START_PROTOCOL_ERROR,
  TRANSPORT_CLOSING,
} from "../grpc.ts";
import { Status, type StatusCode } from "../status.ts";
import { ByteWriter, HpackDecoder, HpackEncoder, HpackError } from "./hpack.ts";
import {
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
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

/** Where a connection writes. */
export interface H2Socket {
  /** Writes all of `bytes`; the buffer is left alone until the promise settles. */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes the socket. */
  close(): void;
}

/** What the connection serves, shared by the connections of a listener. */
export interface H2ServerContext {
  readonly router: GrpcRouter;
  readonly options: ServeOptions;
  /** Set when the listener is shutting down: new streams are refused. */
  closing: boolean;
}

/** `waitDrain` resolves below this (half the high-water mark, so senders do not flap at the mark). */
const LOW_WATER_MARK = HIGH_WATER_MARK / 2;
/** Our receive window for each stream (SETTINGS_INITIAL_WINDOW_SIZE). */
const STREAM_WINDOW = 1 << 20;
/** Our receive window for the whole connection. */
const CONNECTION_WINDOW = 16 << 20;
/** Largest header block (all HEADERS + CONTINUATION fragments) accepted. */
const MAX_HEADER_BLOCK = 256 * 1024;
/** Largest decoded header list accepted (RFC 9113 §6.5.2 sizes). */
const MAX_HEADER_LIST = 1 << 20;
/** Output bytes queued after which reading pauses. */
const READ_PAUSE_BYTES = 4 << 20;
/** The write buffer kept between writes; bigger ones are dropped after use. */
const KEEP_BUFFER_BYTES = 256 * 1024;

const STATUS_TEXT: string[] = Array.from({ length: 17 }, (_, i) => String(i));
const OK_TRAILERS = ["grpc-status", "0", "grpc-message", ""];
const GRPC_RESPONSE = [":status", "200", "content-type", "application/grpc"];
const EMPTY = new Uint8Array(0);

/** One HTTP/2 stream: flow-control state and output queue, and what serves it. */
class H2Stream {
  /** What we may still send (the peer's window for this stream). */
  sendWindow: number;
  /** What the peer may still send us. */
  recvWindow = STREAM_WINDOW;
  remoteEnded = false;
  headersSent = false;
  /** Output waiting for flow-control window: buffers and the read offset in the first. */
  pending: Uint8Array[] | undefined = undefined;
  pendingOffset = 0;
  pendingBytes = 0;
  /** Header list to send once `pending` drains (trailers), and whether to end with an empty DATA. */
  trailers: string[] | undefined = undefined;
  trailersKey: string | undefined = undefined;
  endAfterData = false;
  drainWaiters: (() => void)[] | undefined = undefined;
  call: H2Call | undefined = undefined;
  fallback: FallbackRequest | undefined = undefined;
  /** Response headers for gRPC, and their cache key. */
  responseHeaders: string[] = GRPC_RESPONSE;
  responseKey = "h";

  constructor(readonly id: number, sendWindow: number) {
    this.sendWindow = sendWindow;
  }
}

/** A gRPC call on an HTTP/2 stream of an {@linkcode H2Connection}. */
class H2Call extends GrpcCall {
  constructor(
    readonly conn: H2Connection,
    readonly stream: H2Stream,
    path: string,
    readonly headers: string[],
  ) {
    super(path);
  }

  protected readMetadata(): Map<string, string> {
    const m = new Map<string, string>();
    const h = this.headers;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i];
      if (name.charCodeAt(0) === 58) continue; // ':'
      const prev = m.get(name);
      m.set(name, prev === undefined ? h[i + 1] : `${prev}, ${h[i + 1]}`);
    }
    return m;
  }

  protected writeMessage(message: Uint8Array): void {
    this.conn.sendMessage(this.stream, message);
  }

  protected writeUnary(message: Uint8Array): void {
    this.conn.sendUnary(this.stream, message);
  }

  protected writeStatus(status: StatusCode, encodedMessage: string): void {
    this.conn.sendStatus(this.stream, status, encodedMessage);
  }

  protected bufferedBytes(): number {
    return this.stream.pendingBytes + this.conn.backlog;
  }

  waitDrain(): Promise<void> {
    return this.conn.waitDrain(this.stream);
  }
}

/** A non-gRPC request on a stream, for {@linkcode ServeOptions.httpFallback}. */
class FallbackRequest {
  parts: Uint8Array[] = [];
  size = 0;
  constructor(readonly method: string, readonly path: string, readonly headers: string[]) {}
}

/** A connection-level error: GOAWAY with `errorCode`, then close. */
class ConnectionError extends Error {
  readonly code = "H2_CONNECTION_ERROR";
  constructor(readonly errorCode: number, message: string) {
    super(message);
  }
}

/** One server-side HTTP/2 connection. */
export class H2Connection {
  readonly #sock: H2Socket;
  readonly #ctx: H2ServerContext;
  readonly #peer: string;
  readonly #decoder = new HpackDecoder();
  readonly #encoder = new HpackEncoder();
  readonly #maxStreams: number;
  readonly #maxReceive: number;

  #out = new ByteWriter(64 * 1024);
  #spare = new ByteWriter(64 * 1024);
  readonly #hbuf = new ByteWriter(512);
  #inflight = 0;
  #writing = false;
  #flushQueued = false;
  readonly #flushNow = (): void => void this.#flush();

  #input: Uint8Array | undefined = undefined;
  /**
   * Reused buffers for a frame split across reads: the partial frame is kept in `#carry` and joined with
   * the next chunk in `#join`. Frame payloads are only read during `receive` (consumers copy what they
   * keep), so both can be overwritten on the next read; allocating them per read made tens of MB of
   * garbage under load.
   */
  #carry: Uint8Array = EMPTY;
  #join: Uint8Array = EMPTY;
  #prefaceSeen = 0;
  #settingsSeen = false;
  /** An open header block: its stream, flags and fragments. */
  #blockStream = 0;
  #blockEndStream = false;
  #blockParts: Uint8Array[] = [];
  #blockSize = 0;

  readonly #streams = new Map<number, H2Stream>();
  readonly #blocked = new Set<H2Stream>();
  readonly #drainWatch = new Set<H2Stream>();
  #lastStreamId = 0;

  #peerMaxFrame = DEFAULT_MAX_FRAME_SIZE;
  #peerInitialWindow = DEFAULT_WINDOW;
  #sendWindow = DEFAULT_WINDOW;
  #recvWindow = DEFAULT_WINDOW;

  #goawaySent = false;
  #goawayReceived = false;
  #dead = false;
  #socketClosed = false;
  #resolveClosed!: () => void;
  /** Settles when the socket is closed. */
  readonly closed: Promise<void> = new Promise((r) => this.#resolveClosed = r);
  #resumeReading: (() => void) | undefined = undefined;

  constructor(sock: H2Socket, ctx: H2ServerContext, peer: string) {
    this.#sock = sock;
    this.#ctx = ctx;
    this.#peer = peer;
    this.#maxStreams = ctx.options.maxConcurrentStreams ?? 0xffffffff;
    this.#maxReceive = ctx.options.maxReceiveMessageBytes;
    // Our SETTINGS, then a connection window far above the 64 KiB default.
    const w = this.#out;
    const settings: [number, number][] = [
      [Setting.MAX_CONCURRENT_STREAMS, this.#maxStreams],
      [Setting.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
    ];
    writeFrameHeader(w, settings.length * 6, FrameType.SETTINGS, 0, 0);
    for (const [id, v] of settings) {
      w.byte(0);
      w.byte(id);
      writeUint32(w, v);
    }
    writeFrameHeader(w, 4, FrameType.WINDOW_UPDATE, 0, 0);
    writeUint32(w, CONNECTION_WINDOW - DEFAULT_WINDOW);
    this.#recvWindow = CONNECTION_WINDOW;
    this.#scheduleFlush();
  }

  /** Bytes queued for the socket and not yet written. */
  get backlog(): number {
    return this.#out.len + this.#inflight;
  }

  /** Open streams. */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** Resolves when reading may go on (output backlog below its limit); undefined when it may now. */
  readable(): Promise<void> | undefined {
    if (this.backlog < READ_PAUSE_BYTES || this.#socketClosed) return undefined;
    return new Promise((r) => this.#resumeReading = r);
  }

  // ---------------------------------------------------------------- input

  /** Bytes from the socket. The chunk is not kept (the caller may reuse it). */
  receive(chunk: Uint8Array): void {
    if (this.#dead) return;
    let buf = chunk;
    if (this.#input !== undefined) {
      const need = this.#input.length + chunk.length;
      if (this.#join.length < need) {
        this.#join = new Uint8Array(Math.max(need, 2 * this.#join.length, 32 * 1024));
      }
      this.#join.set(this.#input);
      this.#join.set(chunk, this.#input.length);
      buf = this.#join.subarray(0, need);
      this.#input = undefined;
    }
    let off = 0;
    const end = buf.length;
    try {
      if (this.#prefaceSeen < PREFACE.length) {
        while (this.#prefaceSeen < PREFACE.length && off < end) {
          if (buf[off++] !== PREFACE[this.#prefaceSeen++]) {
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
        this.#frame(type, flags, id, payload);
        if (this.#dead) return;
      }
    } catch (err) {
      if (err instanceof ConnectionError) this.#fatal(err.errorCode, err.message);
      else if (err instanceof HpackError) this.#fatal(ErrorCode.COMPRESSION_ERROR, err.message);
      else this.#fatal(ErrorCode.INTERNAL_ERROR, String((err as Error)?.message ?? err));
      return;
    }
    if (off < end) {
      const rest = end - off;
      if (this.#carry.length < rest) {
        this.#carry = new Uint8Array(Math.max(rest, 2 * this.#carry.length, 32 * 1024));
      }
      this.#carry.set(buf.subarray(off, end));
      this.#input = this.#carry.subarray(0, rest);
    }
  }

  /** The socket is gone (peer closed, reset, or read error). */
  socketEnded(): void {
    this.#dead = true;
    this.#cancelAll();
    this.#closeSocket();
  }

  #frame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (!this.#settingsSeen) {
      if (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0) {
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "expected SETTINGS first");
      }
      this.#settingsSeen = true;
    }
    if (this.#blockStream !== 0 && (type !== FrameType.CONTINUATION || id !== this.#blockStream)) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "header block interrupted");
    }
    switch (type) {
      case FrameType.DATA:
        this.#onData(flags, id, payload);
        break;
      case FrameType.HEADERS:
        this.#onHeaders(flags, id, payload);
        break;
      case FrameType.CONTINUATION:
        if (this.#blockStream === 0) {
          throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "stray CONTINUATION");
        }
        this.#addFragment(payload);
        if (flags & Flag.END_HEADERS) this.#endBlock();
        break;
      case FrameType.PRIORITY:
        if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0");
        if (payload.length !== 5) this.#resetStream(id, ErrorCode.FRAME_SIZE_ERROR);
        break;
      case FrameType.RST_STREAM:
        this.#onReset(id, payload);
        break;
      case FrameType.SETTINGS:
        this.#onSettings(flags, id, payload);
        break;
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE from a client");
      case FrameType.PING:
        if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PING on a stream");
        if (payload.length !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "PING size");
        if ((flags & Flag.ACK) === 0) {
          writeFrameHeader(this.#out, 8, FrameType.PING, Flag.ACK, 0);
          this.#out.buf.set(payload, this.#out.len);
          this.#out.len += 8;
          this.#scheduleFlush();
        }
        break;
      case FrameType.GOAWAY:
        if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
        if (payload.length < 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY size");
        this.#goawayReceived = true;
        if (this.#streams.size === 0) this.#finishAndClose();
        break;
      case FrameType.WINDOW_UPDATE:
        this.#onWindowUpdate(id, payload);
        break;
      default:
        break; // unknown frame types are ignored
    }
  }

  #onSettings(flags: number, id: number, p: Uint8Array): void {
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
          this.#encoder.setPeerMaxTableSize(value);
          break;
        case Setting.ENABLE_PUSH:
          if (value > 1) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "ENABLE_PUSH");
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) {
            throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE");
          }
          const delta = value - this.#peerInitialWindow;
          this.#peerInitialWindow = value;
          for (const s of this.#streams.values()) {
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
          this.#peerMaxFrame = value;
          break;
        default:
          break;
      }
    }
    writeFrameHeader(this.#out, 0, FrameType.SETTINGS, Flag.ACK, 0);
    this.#drainBlocked();
    this.#scheduleFlush();
  }

  #onWindowUpdate(id: number, p: Uint8Array): void {
    if (p.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE size");
    const inc = readUint32(p, 0) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      this.#sendWindow += inc;
      if (this.#sendWindow > MAX_WINDOW) {
        throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "window overflow");
      }
      this.#drainBlocked();
      return;
    }
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (id > this.#lastStreamId) {
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE on idle stream");
      }
      return;
    }
    if (inc === 0) {
      this.#abortStream(s, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    s.sendWindow += inc;
    if (s.sendWindow > MAX_WINDOW) {
      this.#abortStream(s, ErrorCode.FLOW_CONTROL_ERROR);
      return;
    }
    if (s.pendingBytes > 0 || s.trailers !== undefined || s.endAfterData) this.#drainStream(s);
    this.#notifyDrain();
  }

  #onReset(id: number, p: Uint8Array): void {
    if (p.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM size");
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (id > this.#lastStreamId) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on idle stream");
    }
    const s = this.#streams.get(id);
    if (s === undefined) return;
    this.#forget(s);
    s.call?.cancel();
  }

  #onData(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
    const size = payload.length;
    if (size > this.#recvWindow) {
      throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "connection window exceeded");
    }
    this.#recvWindow -= size;
    if (this.#recvWindow <= CONNECTION_WINDOW / 2) {
      writeFrameHeader(this.#out, 4, FrameType.WINDOW_UPDATE, 0, 0);
      writeUint32(this.#out, CONNECTION_WINDOW - this.#recvWindow);
      this.#recvWindow = CONNECTION_WINDOW;
      this.#scheduleFlush();
    }
    let data = payload;
    if (flags & Flag.PADDED) {
      if (size === 0 || payload[0] >= size) {
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "bad padding");
      }
      data = payload.subarray(1, size - payload[0]);
    }
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (id > this.#lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on idle stream");
      return; // a stream we already closed: the bytes were counted, nothing else to do
    }
    if (s.remoteEnded) {
      this.#abortStream(s, ErrorCode.STREAM_CLOSED);
      return;
    }
    if (size > s.recvWindow) {
      this.#abortStream(s, ErrorCode.FLOW_CONTROL_ERROR);
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
      this.#fallbackData(s, s.fallback, data, end);
    }
    if (!end && s.recvWindow <= STREAM_WINDOW / 2 && this.#streams.get(id) === s) {
      writeFrameHeader(this.#out, 4, FrameType.WINDOW_UPDATE, 0, id);
      writeUint32(this.#out, STREAM_WINDOW - s.recvWindow);
      s.recvWindow = STREAM_WINDOW;
      this.#scheduleFlush();
    }
  }

  #onHeaders(flags: number, id: number, payload: Uint8Array): void {
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
    this.#blockStream = id;
    this.#blockEndStream = (flags & Flag.END_STREAM) !== 0;
    this.#blockParts.length = 0;
    this.#blockSize = 0;
    const fragment = payload.subarray(start, end);
    if (flags & Flag.END_HEADERS) {
      this.#blockStream = 0;
      this.#headerBlock(id, fragment, this.#blockEndStream);
    } else {
      this.#addFragment(fragment);
    }
  }

  #addFragment(fragment: Uint8Array): void {
    this.#blockSize += fragment.length;
    if (this.#blockSize > MAX_HEADER_BLOCK) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "header block too large");
    }
    this.#blockParts.push(fragment.slice());
  }

  #endBlock(): void {
    const id = this.#blockStream;
    this.#blockStream = 0;
    const block = new Uint8Array(this.#blockSize);
    let off = 0;
    for (const p of this.#blockParts) {
      block.set(p, off);
      off += p.length;
    }
    this.#blockParts.length = 0;
    this.#headerBlock(id, block, this.#blockEndStream);
  }

  /** A complete header block: decode it (always, to keep HPACK in step), then open or end a stream. */
  #headerBlock(id: number, block: Uint8Array, endStream: boolean): void {
    const headers: string[] = [];
    const listSize = this.#decoder.decode(block, headers);
    if ((id & 1) === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "even stream id from a client");
    if (id <= this.#lastStreamId) {
      const s = this.#streams.get(id);
      if (s === undefined) return; // trailers of a stream we closed
      if (!endStream || s.remoteEnded) {
        this.#abortStream(s, ErrorCode.PROTOCOL_ERROR);
        return;
      }
      // request trailers: only the end of the stream matters
      s.remoteEnded = true;
      if (s.call !== undefined) s.call.receiveEnd();
      else if (s.fallback !== undefined) this.#fallbackData(s, s.fallback, EMPTY, true);
      return;
    }
    this.#lastStreamId = id;
    if (this.#goawaySent || this.#ctx.closing || this.#streams.size >= this.#maxStreams) {
      this.#resetStream(id, ErrorCode.REFUSED_STREAM);
      return;
    }
    if (listSize > MAX_HEADER_LIST) {
      this.#resetStream(id, ErrorCode.ENHANCE_YOUR_CALM);
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
      this.#resetStream(id, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    const s = new H2Stream(id, this.#peerInitialWindow);
    s.remoteEnded = endStream;
    this.#streams.set(id, s);
    const ct = grpcContentType(contentType);
    if (ct === undefined) {
      s.fallback = new FallbackRequest(method, path, headers);
      if (endStream) this.#fallbackData(s, s.fallback, EMPTY, true);
      return;
    }
    if (ct !== "application/grpc") {
      s.responseHeaders = [":status", "200", "content-type", ct];
      s.responseKey = "h:" + ct;
    }
    const call = new H2Call(this, s, path, headers);
    call.peer = this.#peer;
    s.call = call;
    if (call.start(this.#ctx.router, this.#maxReceive, timeout, encoding) === START_PROTOCOL_ERROR) {
      this.#forget(s);
      this.#resetStream(id, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    if (endStream && this.#streams.get(id) === s) call.receiveEnd();
  }

  // ---------------------------------------------------------------- fallback (plain HTTP on h2)

  #fallbackData(s: H2Stream, f: FallbackRequest, data: Uint8Array, end: boolean): void {
    f.size += data.length;
    if (f.size > this.#maxReceive) {
      this.#abortStream(s, ErrorCode.REFUSED_STREAM);
      return;
    }
    if (data.length > 0) f.parts.push(data.slice());
    if (end) void this.#serveFallback(s, f);
  }

  async #serveFallback(s: H2Stream, f: FallbackRequest): Promise<void> {
    const body = new Uint8Array(f.size);
    let off = 0;
    for (const p of f.parts) {
      body.set(p, off);
      off += p.length;
    }
    const headers = new Map<string, string>();
    for (let i = 0; i < f.headers.length; i += 2) {
      if (f.headers[i].charCodeAt(0) !== 58) headers.set(f.headers[i], f.headers[i + 1]);
    }
    let res: HttpFallbackResponse;
    const fallback = this.#ctx.options.httpFallback;
    try {
      res = fallback === undefined
        ? { status: 404, headers: { "content-type": "text/plain" }, body: "404 page not found\n" }
        : await fallback({ method: f.method, path: f.path, headers, body });
    } catch (err) {
      res = {
        status: 500,
        headers: { "content-type": "text/plain" },
        body: `${(err as Error)?.message ?? err}\n`,
      };
    }
    if (this.#streams.get(s.id) !== s || this.#dead) return;
    const list = [":status", String(res.status)];
    for (const [k, v] of Object.entries(res.headers ?? {})) list.push(k.toLowerCase(), String(v));
    const bytes = typeof res.body === "string" ? new TextEncoder().encode(res.body) : res.body;
    this.#writeHeaders(s.id, list, bytes.length === 0, undefined);
    s.headersSent = true;
    this.#scheduleFlush();
    if (bytes.length === 0) {
      this.#localEnd(s);
      return;
    }
    this.#queue(s, bytes.slice());
    s.endAfterData = true;
    this.#drainStream(s);
  }

  // ---------------------------------------------------------------- output for calls

  /** Response headers if not yet sent, then one gRPC message. */
  sendMessage(s: H2Stream, message: Uint8Array): void {
    if (this.#streams.get(s.id) !== s) return;
    if (!s.headersSent) {
      s.headersSent = true;
      this.#writeHeaders(s.id, s.responseHeaders, false, s.responseKey);
    }
    this.#sendGrpcData(s, message);
    this.#scheduleFlush();
  }

  /** A whole unary response: headers, the message, OK trailers. */
  sendUnary(s: H2Stream, message: Uint8Array): void {
    if (this.#streams.get(s.id) !== s) return;
    s.headersSent = true;
    this.#writeHeaders(s.id, s.responseHeaders, false, s.responseKey);
    this.#sendGrpcData(s, message);
    this.#sendTrailers(s, OK_TRAILERS, "t0");
    this.#scheduleFlush();
  }

  /** Ends the response with a status: trailers, or trailers-only before any message. */
  sendStatus(s: H2Stream, status: StatusCode, encodedMessage: string): void {
    if (this.#streams.get(s.id) !== s) return;
    if (!s.headersSent) {
      s.headersSent = true;
      const r = s.responseHeaders;
      this.#writeHeaders(
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
      this.#localEnd(s);
    } else if (status === Status.OK && encodedMessage === "") {
      this.#sendTrailers(s, OK_TRAILERS, "t0");
    } else {
      this.#sendTrailers(s, [
        "grpc-status",
        STATUS_TEXT[status] ?? String(status),
        "grpc-message",
        encodedMessage,
      ]);
    }
    this.#scheduleFlush();
  }

  /** Resolves once the stream's queued output plus the connection backlog is under the high-water mark. */
  waitDrain(s: H2Stream): Promise<void> {
    if (this.#streams.get(s.id) !== s || s.pendingBytes + this.backlog < HIGH_WATER_MARK) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      (s.drainWaiters ??= []).push(resolve);
      this.#drainWatch.add(s);
    });
  }

  #sendTrailers(s: H2Stream, list: string[], key?: string): void {
    if (s.pendingBytes > 0) {
      s.trailers = list;
      s.trailersKey = key;
      return;
    }
    this.#writeHeaders(s.id, list, true, key);
    this.#localEnd(s);
  }

  /** Writes a gRPC message (5-byte prefix + bytes) as DATA frames, or queues it behind the windows. */
  #sendGrpcData(s: H2Stream, message: Uint8Array): void {
    const n = message.length;
    const total = n + 5;
    if (s.pendingBytes === 0 && total <= s.sendWindow && total <= this.#sendWindow) {
      s.sendWindow -= total;
      this.#sendWindow -= total;
      const w = this.#out;
      const max = this.#peerMaxFrame;
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
    const framed = new Uint8Array(total);
    framed[1] = n >>> 24;
    framed[2] = (n >>> 16) & 0xff;
    framed[3] = (n >>> 8) & 0xff;
    framed[4] = n & 0xff;
    framed.set(message, 5);
    this.#queue(s, framed);
    this.#drainStream(s);
  }

  #queue(s: H2Stream, bytes: Uint8Array): void {
    (s.pending ??= []).push(bytes);
    s.pendingBytes += bytes.length;
    this.#blocked.add(s);
  }

  /** Sends what the windows allow of a stream's queue, then its trailers or final empty DATA. */
  #drainStream(s: H2Stream): void {
    const w = this.#out;
    const q = s.pending;
    while (s.pendingBytes > 0 && q !== undefined) {
      const allow = Math.min(s.sendWindow, this.#sendWindow, this.#peerMaxFrame);
      if (allow <= 0) {
        this.#scheduleFlush();
        return;
      }
      const head = q[0];
      const n = Math.min(allow, head.length - s.pendingOffset);
      writeFrameHeader(w, n, FrameType.DATA, 0, s.id);
      w.buf.set(head.subarray(s.pendingOffset, s.pendingOffset + n), w.len);
      w.len += n;
      s.sendWindow -= n;
      this.#sendWindow -= n;
      s.pendingBytes -= n;
      s.pendingOffset += n;
      if (s.pendingOffset === head.length) {
        q.shift();
        s.pendingOffset = 0;
      }
    }
    this.#blocked.delete(s);
    if (s.trailers !== undefined) {
      const list = s.trailers;
      s.trailers = undefined;
      this.#writeHeaders(s.id, list, true, s.trailersKey);
      this.#localEnd(s);
    } else if (s.endAfterData) {
      s.endAfterData = false;
      writeFrameHeader(w, 0, FrameType.DATA, Flag.END_STREAM, s.id);
      this.#localEnd(s);
    }
    this.#scheduleFlush();
  }

  #drainBlocked(): void {
    if (this.#blocked.size === 0) return;
    for (const s of [...this.#blocked]) {
      if (this.#sendWindow <= 0) break;
      this.#drainStream(s);
    }
    this.#notifyDrain();
  }

  /** HEADERS (+ CONTINUATION) for a header list. */
  #writeHeaders(id: number, list: readonly string[], endStream: boolean, key: string | undefined): void {
    const h = this.#hbuf;
    h.reset();
    this.#encoder.encode(list, h, key);
    const w = this.#out;
    const max = this.#peerMaxFrame;
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
  #localEnd(s: H2Stream): void {
    if (!s.remoteEnded) this.#resetStream(s.id, ErrorCode.NO_ERROR);
    this.#forget(s);
  }

  /** Drops a stream from the connection's tables. */
  #forget(s: H2Stream): void {
    if (this.#streams.get(s.id) !== s) return;
    this.#streams.delete(s.id);
    this.#blocked.delete(s);
    s.pending = undefined;
    s.pendingBytes = 0;
    s.trailers = undefined;
    if (s.drainWaiters !== undefined) {
      for (const r of s.drainWaiters) r();
      s.drainWaiters = undefined;
    }
    this.#drainWatch.delete(s);
    if (this.#streams.size === 0 && (this.#goawayReceived || this.#goawaySent)) this.#finishAndClose();
  }

  /** Stream error: reset it and cancel what serves it. */
  #abortStream(s: H2Stream, code: number): void {
    this.#resetStream(s.id, code);
    this.#forget(s);
    s.call?.cancel();
  }

  #resetStream(id: number, code: number): void {
    writeFrameHeader(this.#out, 4, FrameType.RST_STREAM, 0, id);
    writeUint32(this.#out, code);
    this.#scheduleFlush();
  }

  #notifyDrain(): void {
    if (this.#drainWatch.size === 0) return;
    const backlog = this.backlog;
    for (const s of [...this.#drainWatch]) {
      if (s.pendingBytes + backlog < LOW_WATER_MARK) {
        this.#drainWatch.delete(s);
        const waiters = s.drainWaiters;
        s.drainWaiters = undefined;
        if (waiters !== undefined) { for (const r of waiters) r(); }
      }
    }
  }

  // ---------------------------------------------------------------- shutdown

  /** Graceful shutdown, step 1: GOAWAY, and streaming calls end with UNAVAILABLE. */
  goAway(): void {
    if (this.#dead || this.#goawaySent) return;
    this.#goawaySent = true;
    writeFrameHeader(this.#out, 8, FrameType.GOAWAY, 0, 0);
    writeUint32(this.#out, this.#lastStreamId);
    writeUint32(this.#out, ErrorCode.NO_ERROR);
    for (const s of [...this.#streams.values()]) {
      if (s.call?.streaming) s.call.abortWith(Status.UNAVAILABLE, TRANSPORT_CLOSING);
    }
    this.#scheduleFlush();
    if (this.#streams.size === 0) this.#finishAndClose();
  }

  /** Graceful shutdown, step 2: whatever still runs ends with UNAVAILABLE; then the socket closes. */
  abortAll(): void {
    for (const s of [...this.#streams.values()]) {
      if (s.call !== undefined) s.call.abortWith(Status.UNAVAILABLE, TRANSPORT_CLOSING);
      else this.#abortStream(s, ErrorCode.CANCEL);
    }
    this.#finishAndClose();
  }

  /** Closes the socket now, without flushing. */
  destroy(): void {
    this.#dead = true;
    this.#cancelAll();
    this.#closeSocket();
  }

  #fatal(code: number, reason: string): void {
    if (this.#dead) return;
    this.#dead = true;
    writeFrameHeader(this.#out, 8 + reason.length, FrameType.GOAWAY, 0, 0);
    writeUint32(this.#out, this.#lastStreamId);
    writeUint32(this.#out, code);
    for (let i = 0; i < reason.length; i++) this.#out.buf[this.#out.len++] = reason.charCodeAt(i) & 0x7f;
    this.#cancelAll();
    this.#finishAndClose();
  }

  #cancelAll(): void {
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    this.#blocked.clear();
    for (const s of streams) {
      s.call?.cancel();
      if (s.drainWaiters !== undefined) { for (const r of s.drainWaiters) r(); }
      s.drainWaiters = undefined;
    }
    this.#drainWatch.clear();
  }

  #closeAfterFlush = false;

  /** Closes the socket once what is queued has been written. */
  #finishAndClose(): void {
    this.#closeAfterFlush = true;
    if (!this.#writing && this.#out.len === 0) this.#closeSocket();
    else this.#scheduleFlush();
  }

  #closeSocket(): void {
    if (this.#socketClosed) return;
    this.#socketClosed = true;
    this.#dead = true;
    try {
      this.#sock.close();
    } catch {
      // already closed
    }
    this.#resumeReading?.();
    this.#resumeReading = undefined;
    this.#resolveClosed();
  }

  // ---------------------------------------------------------------- writing

  #scheduleFlush(): void {
    if (this.#flushQueued || this.#writing) return;
    this.#flushQueued = true;
    queueMicrotask(this.#flushNow);
  }

  async #flush(): Promise<void> {
    this.#flushQueued = false;
    if (this.#writing) return;
    while (this.#out.len > 0 && !this.#socketClosed) {
      const w = this.#out;
      this.#out = this.#spare;
      this.#spare = w;
      this.#writing = true;
      this.#inflight = w.len;
      try {
        await this.#sock.write(w.bytes());
      } catch {
        this.#writing = false;
        this.#inflight = 0;
        this.socketEnded();
        return;
      }
      this.#writing = false;
      this.#inflight = 0;
      if (w.buf.length > KEEP_BUFFER_BYTES) this.#spare = new ByteWriter(64 * 1024);
      else w.reset();
      this.#notifyDrain();
      if (this.#resumeReading !== undefined && this.backlog < READ_PAUSE_BYTES) {
        const r = this.#resumeReading;
        this.#resumeReading = undefined;
        r();
      }
    }
    if (this.#closeAfterFlush && this.#out.len === 0) this.#closeSocket();
  }
}
