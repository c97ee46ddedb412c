/**
 * gRPC over HTTP/2, behind a small interface: services register handlers on a {@linkcode GrpcRouter};
 * a {@linkcode GrpcTransport} (node:http2, or our own HTTP/2 framing on Deno.listen) serves them.
 *
 * The call semantics shared by every transport live here in {@linkcode GrpcCall}: routing with
 * grpc-go's messages, the length-prefixed message framing, receive limits, deadlines, unary dispatch,
 * streaming callbacks, cancellation and backpressure. A transport only moves bytes and headers.
 *
 * What clients see matches grpc-go as used by etcd 3.4 (checked against the real etcd):
 * - unknown service or method: UNIMPLEMENTED `unknown service S` / `unknown method M for service S`;
 *   a path without a `/` between service and method: RESOURCE_EXHAUSTED `malformed method name: "p"`;
 * - a unary call is dispatched on its first message (later ones are ignored, like grpc-go 1.26); a
 *   half-close without a message is UNKNOWN `EOF`, a truncated message UNKNOWN `unexpected EOF`;
 * - compressed flag without `grpc-encoding`: INTERNAL `grpc: compressed flag set with identity or empty
 *   encoding`; any `grpc-encoding` but identity: UNIMPLEMENTED `grpc: Decompressor is not installed for
 *   grpc-encoding "x"`; a flag other than 0 or 1: INTERNAL `grpc: received unexpected payload format N`;
 * - a message over the limit: RESOURCE_EXHAUSTED `grpc: received message larger than max (N vs. M)`;
 * - `grpc-timeout` elapsed: DEADLINE_EXCEEDED `context deadline exceeded`; a malformed `grpc-timeout` resets
 *   the stream with PROTOCOL_ERROR.
 *
 * @module
 */
import { allocBytes, concatBytes, copyBytes } from "../slab.ts";
import {
  encodeGrpcMessage,
  GrpcError,
  parseGrpcTimeout,
  Status,
  type StatusCode,
  toGrpcError,
} from "./status.ts";
import type { TlsCredentials } from "../tls/credentials.ts";

/** What a handler knows about the call it serves. */
export interface CallContext {
  /** The full method path, e.g. "/etcdserverpb.KV/Put". */
  readonly method: string;
  /** Request headers, lower-case names, without pseudo headers (`-bin` values stay base64). */
  readonly metadata: Map<string, string>;
  /** The client's address, "host:port". */
  readonly peer: string;
  /** Aborted when the client resets or cancels, the deadline passes, the connection dies or the server closes. */
  readonly signal: AbortSignal;
  /** The client's certificate, on TLS listeners that requested one. */
  readonly peerCertificate?: { commonName?: string; raw?: Uint8Array };
}

/**
 * Serves one unary call. Throw a {@linkcode GrpcError} for a non-OK status; anything else thrown becomes
 * UNKNOWN with the error's message.
 */
export type UnaryHandler = (
  request: Uint8Array,
  ctx: CallContext,
) => Uint8Array | MessageParts | Promise<Uint8Array | MessageParts>;

/**
 * One response message handed over in parts, which the transport sends one after the other without
 * joining them: a long range answer is tens of megabytes, and a copy of it costs the member's one thread
 * a turn of its own (first touching fresh memory is the slow part).
 */
export class MessageParts {
  /** `length` is the sum of the parts' lengths. */
  constructor(readonly parts: readonly Uint8Array[], readonly length: number) {}

  /** The parts joined into one array (for callers that need the message whole). */
  join(): Uint8Array {
    return concatBytes(this.parts);
  }
}

/** The sending half of a streaming call. */
export interface ServerStream {
  /** Queues one message; false once the transport buffer is above its high-water mark (or the call is over). */
  send(message: Uint8Array): boolean;
  /** Resolves when the buffer has drained (at least below half the high-water mark), or the call is over. */
  waitDrain(): Promise<void>;
  /** Ends the call: OK, or the given error's status. Later calls do nothing. */
  end(error?: GrpcError): void;
  /** True once the call is over, whoever ended it. */
  readonly closed: boolean;
}

/** What a streaming handler wants to hear about the receiving half. */
export interface StreamCallbacks {
  /** One request message. */
  onMessage(message: Uint8Array): void;
  /** The client will send nothing more (the call stays open until `end`). */
  onHalfClose(): void;
  /** The call ended without the handler ending it: reset, deadline, bad message, shutdown. */
  onCancel(): void;
}

/** Serves one streaming call (bidirectional or server-streaming). */
export type StreamHandler = (stream: ServerStream, ctx: CallContext) => StreamCallbacks;

/** A plain (non-gRPC) HTTP request, handed to {@linkcode ServeOptions.httpFallback}. */
export interface HttpFallbackRequest {
  method: string;
  /** The path with its query string. */
  path: string;
  /** Lower-case header names, without pseudo headers. */
  headers: Map<string, string>;
  body: Uint8Array;
  /** Aborted when the client is gone or the server shuts down (HTTP/1.1); a long poll stops on it. */
  signal?: AbortSignal;
}

/** The answer to a {@linkcode HttpFallbackRequest}. */
export interface HttpFallbackResponse {
  status: number;
  headers?: Record<string, string>;
  body: Uint8Array | string;
  /**
   * A body sent as it is produced (the gateway's watch, a long poll): when set, `body` is ignored and the
   * response ends when the stream ends; the transport cancels the stream when the client goes away.
   */
  stream?: ReadableStream<Uint8Array>;
}

/** What a transport needs to serve a router. */
export interface ServeOptions {
  hostname: string;
  /** 0 picks a free port; see {@linkcode GrpcListener.port}. */
  port: number;
  /**
   * Serve TLS with these credentials (re-read when rotated); `onRefused` hears of every refused
   * handshake or certificate, one line each.
   */
  secure?: { credentials: TlsCredentials; onRefused?(remote: string, reason: string): void };
  /**
   * PEM strings, for the node:http2 transport only; with `requestClientCert` clients must present a
   * certificate signed by `ca`.
   */
  tls?: { cert: string; key: string; ca?: string; requestClientCert?: boolean };
  /** Larger request messages fail with RESOURCE_EXHAUSTED. */
  maxReceiveMessageBytes: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; default 2^32-1 like etcd. */
  maxConcurrentStreams?: number;
  /** Non-gRPC requests (content-type not application/grpc), e.g. GET /health; default 404. */
  httpFallback?: (req: HttpFallbackRequest) => Promise<HttpFallbackResponse>;
  /**
   * Told of every read from and write to an HTTP/2 client (server/busy_poll.ts); the node:http2 transport
   * ignores it.
   */
  clientActivity?: ClientActivity;
}

/**
 * Hears of HTTP/2 clients' traffic: bytes read from and written to a connection (numbered by the listener),
 * streams opened (+1) and ended (-n).
 */
export interface ClientActivity {
  received(conn: number): void;
  answered(conn: number): void;
  streams(delta: number): void;
}

/** A bound, serving listener. */
export interface GrpcListener {
  readonly port: number;
  /** Graceful: stops accepting, ends open calls (UNAVAILABLE after a short grace), closes connections. */
  close(): Promise<void>;
}

/** Serves a router on a listener. */
export type GrpcTransport = (router: GrpcRouter, options: ServeOptions) => Promise<GrpcListener>;

/** Thrown by {@linkcode GrpcRouter} for a bad registration. */
export class GrpcRouterError extends Error {
  /** Stable error code of this class. */
  readonly code = "GRPC_ROUTER";
  constructor(message: string) {
    super(message);
    this.name = "GrpcRouterError";
  }
}

const KIND_UNARY = 1;
const KIND_STREAM = 2;

/**
 * The counters of one registered method, kept by an observer (metrics) and bumped by every call to it:
 * plain numbers, so that counting costs a call nothing beyond an increment.
 */
export interface GrpcMethodCounters {
  /** Calls started. */
  started: number;
  /** Request messages received (a unary call's one message included). */
  received: number;
  /** Response messages sent (a unary call's answer included). */
  sent: number;
  /** Calls ended, by status code (index 0 to 16; CANCELLED for a call the client gave up). */
  readonly handled: number[];
  /**
   * When set, each call reads `now()` (milliseconds) when it starts and when it ends, and `observe`
   * hears its duration.
   */
  readonly timing?: { now(): number; observe(ms: number): void };
}

/** Hears of the methods a router serves, once per method; its counters then follow every call. */
export interface GrpcObserver {
  /** The counters for `path` ("/package.Service/Method"), registered as unary or streaming. */
  method(path: string, streaming: boolean): GrpcMethodCounters;
}

/** A routing decision: a handler, or the error to answer with. @internal */
export interface Route {
  kind: 0 | 1 | 2;
  unary?: UnaryHandler;
  stream?: StreamHandler;
  error?: GrpcError;
  /** The method's counters, while an observer watches the router. */
  counters?: GrpcMethodCounters;
}

/** Maps method paths ("/package.Service/Method") to handlers. */
export class GrpcRouter {
  readonly #routes = new Map<string, Route>();
  readonly #services = new Set<string>();
  #observer: GrpcObserver | undefined;

  /**
   * Counts the calls of every method, registered now or later, with counters from `observer` (one set
   * per method, asked for once); without an observer calls count nothing.
   */
  observe(observer: GrpcObserver): this {
    this.#observer = observer;
    for (const [path, route] of this.#routes) {
      route.counters = observer.method(path, route.kind === KIND_STREAM);
    }
    return this;
  }

  /** Registers a unary method. */
  unary(path: string, handler: UnaryHandler): this {
    this.#add(path, { kind: KIND_UNARY, unary: handler });
    return this;
  }

  /** Registers a streaming method (bidirectional, client- or server-streaming). */
  stream(path: string, handler: StreamHandler): this {
    this.#add(path, { kind: KIND_STREAM, stream: handler });
    return this;
  }

  /** The registered paths, sorted. */
  paths(): string[] {
    return [...this.#routes.keys()].sort();
  }

  /** Finds the handler of a path, or the error grpc-go answers with. @internal */
  route(path: string): Route {
    const found = this.#routes.get(path);
    if (found !== undefined) return found;
    const sm = path.startsWith("/") ? path.slice(1) : path;
    const pos = sm.lastIndexOf("/");
    if (pos === -1) {
      return {
        kind: 0,
        error: new GrpcError(Status.RESOURCE_EXHAUSTED, `malformed method name: ${quote(path)}`),
      };
    }
    const service = sm.slice(0, pos);
    const method = sm.slice(pos + 1);
    const message = this.#services.has(service)
      ? `unknown method ${method} for service ${service}`
      : `unknown service ${service}`;
    return { kind: 0, error: new GrpcError(Status.UNIMPLEMENTED, message) };
  }

  #add(path: string, route: Route): void {
    const m = /^\/([^/]+)\/([^/]+)$/.exec(path);
    if (m === null) throw new GrpcRouterError(`bad method path ${JSON.stringify(path)}`);
    if (this.#routes.has(path)) throw new GrpcRouterError(`method ${path} registered twice`);
    if (this.#observer !== undefined) {
      route.counters = this.#observer.method(path, route.kind === KIND_STREAM);
    }
    this.#routes.set(path, route);
    this.#services.add(m[1]);
  }
}

/** Go's %q for the strings that reach it here. */
function quote(s: string): string {
  return JSON.stringify(s);
}

/** Bytes buffered for a stream above which `send` returns false. */
export const HIGH_WATER_MARK = 1 << 20;

/** grpc-go's UNAVAILABLE text when the server goes away under a call. */
export const TRANSPORT_CLOSING = "transport is closing";

/** The 5-byte gRPC prefix of an uncompressed message of `length` bytes. */
export function messagePrefix(length: number): Uint8Array {
  const prefix = new Uint8Array(5);
  new DataView(prefix.buffer).setUint32(1, length);
  return prefix;
}

/** Writes the 5-byte gRPC message prefix and the message into one new buffer. */
export function frameMessage(message: Uint8Array): Uint8Array {
  const n = message.length;
  const out = new Uint8Array(n + 5);
  out[1] = n >>> 24;
  out[2] = (n >>> 16) & 255;
  out[3] = (n >>> 8) & 255;
  out[4] = n & 255;
  out.set(message, 5);
  return out;
}

/**
 * The response content-type grpc-go sends for a request content-type: "application/grpc", or with the
 * request's subtype ("application/grpc+proto"). Undefined when the request is not gRPC.
 */
export function grpcContentType(requestType: string | undefined): string | undefined {
  if (requestType === undefined) return undefined;
  if (requestType === "application/grpc") return requestType;
  if (!requestType.startsWith("application/grpc")) return undefined;
  const c = requestType[16];
  if (c !== "+" && c !== ";") return undefined;
  const sub = requestType.slice(17);
  return sub === "" ? "application/grpc" : "application/grpc+" + sub;
}

const MODE_IGNORE = 0;
const MODE_UNARY_WAIT = 1;
const MODE_UNARY_RUN = 2;
const MODE_STREAM = 3;

const MAX_TIMER_MS = 0x7fffffff;
const EMPTY = new Uint8Array(0);
/** A fresh empty message (handlers may keep what they get, so none is shared). */
const EMPTY_MESSAGE = (): Uint8Array => new Uint8Array(0);

/** {@linkcode GrpcCall.start}: the call runs, or has already been answered with a status. @internal */
export const START_OK = 0;
/** {@linkcode GrpcCall.start}: the transport must reset the stream with PROTOCOL_ERROR (bad grpc-timeout). */
export const START_PROTOCOL_ERROR = 1;

/**
 * One gRPC call, transport-independent: a transport subclasses it for its stream type, feeds request
 * bytes in (`receive`, `receiveEnd`, `cancel`) and implements the four output primitives. @internal
 */
export abstract class GrpcCall implements CallContext, ServerStream {
  readonly method: string;
  peer = "";
  peerCertificate?: { commonName?: string; raw?: Uint8Array };
  /** True once the response is complete or the stream is gone. */
  closed = false;

  #mode = MODE_IGNORE;
  #streaming = false;
  #unary: UnaryHandler | undefined = undefined;
  #callbacks: StreamCallbacks | undefined = undefined;
  #maxReceive = 0;
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #controller: AbortController | undefined = undefined;
  #aborted = false;
  #metadata: Map<string, string> | undefined = undefined;
  /** An incomplete 5-byte prefix, and how much of it arrived. */
  #prefix: Uint8Array | undefined = undefined;
  #prefixFill = 0;
  /** The message being received (its final buffer, filled as bytes arrive), and how full it is. */
  #message: Uint8Array | undefined = undefined;
  #messageFill = 0;
  /** The method's counters when its router is observed; `#startedAt` is set when they time calls. */
  #counters: GrpcMethodCounters | undefined = undefined;
  #startedAt = 0;

  constructor(method: string) {
    this.method = method;
  }

  // ---- for transports to implement ----

  /** All request headers but pseudo ones, lower-case. */
  protected abstract readMetadata(): Map<string, string>;
  /** Sends the response headers if not yet sent, then one message (unframed; the transport frames it). */
  protected abstract writeMessage(message: Uint8Array): void;
  /** Sends headers, one message and OK trailers: a whole unary response. */
  protected abstract writeUnary(message: Uint8Array): void;
  /** {@link writeUnary} of a message in parts; transports that can send them as they are override it. */
  protected writeUnaryParts(message: MessageParts): void {
    this.writeUnary(message.join());
  }
  /** Ends the response with trailers, or a trailers-only response if no headers went out yet. */
  protected abstract writeStatus(status: StatusCode, encodedMessage: string): void;
  /** Bytes queued for this stream and not yet written to the socket. */
  protected abstract bufferedBytes(): number;
  /** Resolves when the output buffer has drained or the stream is gone. */
  abstract waitDrain(): Promise<void>;

  // ---- CallContext ----

  get metadata(): Map<string, string> {
    return this.#metadata ??= this.readMetadata();
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(new GrpcError(Status.CANCELLED, "context canceled"));
    }
    return this.#controller.signal;
  }

  // ---- called by the transport ----

  /**
   * Routes the call and arms its deadline. Answers at once (trailers-only) when the method is unknown
   * or the encoding unsupported. `timeout` and `encoding` are the raw header values, if any.
   */
  start(
    router: GrpcRouter,
    maxReceiveMessageBytes: number,
    timeout: string | undefined,
    encoding: string | undefined,
  ): number {
    let ms = Infinity;
    if (timeout !== undefined) {
      const t = parseGrpcTimeout(timeout);
      if (t === undefined) {
        this.closed = true;
        return START_PROTOCOL_ERROR;
      }
      ms = t;
    }
    const route = router.route(this.method);
    if (route.error !== undefined) {
      this.#finish(route.error.status, route.error.message);
      return START_OK;
    }
    if (encoding !== undefined && encoding !== "identity") {
      this.#finish(
        Status.UNIMPLEMENTED,
        `grpc: Decompressor is not installed for grpc-encoding ${quote(encoding)}`,
      );
      return START_OK;
    }
    this.#maxReceive = maxReceiveMessageBytes;
    const counters = route.counters;
    if (counters !== undefined) {
      this.#counters = counters;
      counters.started++;
      if (counters.timing !== undefined) this.#startedAt = counters.timing.now();
    }
    if (ms <= MAX_TIMER_MS) this.#timer = setTimeout(GrpcCall.#onDeadline, ms, this);
    if (route.kind === KIND_UNARY) {
      this.#unary = route.unary;
      this.#mode = MODE_UNARY_WAIT;
    } else {
      this.#mode = MODE_STREAM;
      this.#streaming = true;
      try {
        this.#callbacks = route.stream!(this, this);
      } catch (err) {
        const e = toGrpcError(err);
        this.#finish(e.status, e.message);
      }
    }
    return START_OK;
  }

  /**
   * Request bytes, in any chunking. The chunk is only read during the call (the transport may reuse
   * it): each message is copied once, into a buffer of its own that the handler may keep.
   */
  receive(chunk: Uint8Array): void {
    const end = chunk.length;
    let off = 0;
    while (off < end && (this.#mode === MODE_STREAM || this.#mode === MODE_UNARY_WAIT)) {
      const pending = this.#message;
      if (pending !== undefined) {
        const take = Math.min(pending.length - this.#messageFill, end - off);
        pending.set(chunk.subarray(off, off + take), this.#messageFill);
        this.#messageFill += take;
        off += take;
        if (this.#messageFill === pending.length) {
          this.#message = undefined;
          this.#deliver(pending);
        }
        continue;
      }
      let len: number;
      if (this.#prefixFill > 0 || end - off < 5) {
        const p = this.#prefix ??= new Uint8Array(5);
        while (this.#prefixFill < 5 && off < end) p[this.#prefixFill++] = chunk[off++];
        if (this.#prefixFill < 5) return;
        this.#prefixFill = 0;
        len = this.#checkPrefix(p, 0);
        if (len < 0) return;
      } else {
        len = this.#checkPrefix(chunk, off);
        if (len < 0) return;
        off += 5;
        if (end - off >= len) {
          const message = copyBytes(chunk.subarray(off, off + len));
          off += len;
          this.#deliver(message);
          continue;
        }
      }
      this.#message = allocBytes(len);
      this.#messageFill = 0;
      if (len === 0) {
        this.#message = undefined;
        this.#deliver(EMPTY_MESSAGE());
      }
    }
  }

  /** Checks a message prefix; the message length, or -1 after failing the call. */
  #checkPrefix(buf: Uint8Array, off: number): number {
    const flag = buf[off];
    const len = buf[off + 1] * 0x1000000 + ((buf[off + 2] << 16) | (buf[off + 3] << 8) | buf[off + 4]);
    if (flag !== 0) {
      this.#fail(
        Status.INTERNAL,
        flag === 1
          ? "grpc: compressed flag set with identity or empty encoding"
          : `grpc: received unexpected payload format ${flag}`,
      );
      return -1;
    }
    if (len > this.#maxReceive) {
      this.#fail(
        Status.RESOURCE_EXHAUSTED,
        `grpc: received message larger than max (${len} vs. ${this.#maxReceive})`,
      );
      return -1;
    }
    return len;
  }

  #deliver(message: Uint8Array): void {
    if (this.#counters !== undefined) this.#counters.received++;
    if (this.#mode === MODE_UNARY_WAIT) {
      this.#runUnary(message);
      return;
    }
    try {
      this.#callbacks!.onMessage(message);
    } catch (err) {
      const e = toGrpcError(err);
      this.#fail(e.status, e.message);
    }
  }

  #partial(): boolean {
    return this.#message !== undefined || this.#prefixFill > 0;
  }

  /** The client half-closed its side (END_STREAM). */
  receiveEnd(): void {
    const mode = this.#mode;
    if (mode === MODE_UNARY_WAIT) {
      this.#fail(Status.UNKNOWN, this.#partial() ? "unexpected EOF" : "EOF");
    } else if (mode === MODE_STREAM) {
      if (this.#partial()) {
        this.#fail(Status.UNKNOWN, "unexpected EOF");
        return;
      }
      try {
        this.#callbacks?.onHalfClose();
      } catch (err) {
        const e = toGrpcError(err);
        this.#fail(e.status, e.message);
      }
    }
  }

  /** The stream is gone without a response: client reset, connection lost. Nothing more is written. */
  cancel(): void {
    if (this.closed && this.#mode === MODE_IGNORE) return;
    if (!this.closed) this.#ended(Status.CANCELLED);
    this.closed = true;
    this.#stop();
    this.#abort();
  }

  /** Ends the call with a status chosen by the server (shutdown) and tells the handler. */
  abortWith(status: StatusCode, message: string): void {
    this.#fail(status, message);
  }

  /** True for streaming calls (whose handlers may never end by themselves). */
  get streaming(): boolean {
    return this.#streaming;
  }

  // ---- ServerStream ----

  send(message: Uint8Array): boolean {
    if (this.closed) return false;
    if (this.#counters !== undefined) this.#counters.sent++;
    this.writeMessage(message);
    return this.bufferedBytes() < HIGH_WATER_MARK;
  }

  end(error?: GrpcError): void {
    if (this.closed) return;
    if (error === undefined) this.#finish(Status.OK, "");
    else {
      const e = toGrpcError(error);
      this.#finish(e.status, e.message);
    }
  }

  // ---- internals ----

  #runUnary(message: Uint8Array): void {
    this.#mode = MODE_UNARY_RUN;
    let result: Uint8Array | MessageParts | Promise<Uint8Array | MessageParts>;
    try {
      result = this.#unary!(message, this);
    } catch (err) {
      this.#unaryError(err);
      return;
    }
    if (result instanceof Uint8Array || result instanceof MessageParts) this.#unaryReply(result);
    else void this.#awaitUnary(result);
  }

  async #awaitUnary(pending: Promise<Uint8Array | MessageParts>): Promise<void> {
    let result: Uint8Array | MessageParts;
    try {
      result = await pending;
    } catch (err) {
      this.#unaryError(err);
      return;
    }
    this.#unaryReply(result);
  }

  #unaryReply(result: Uint8Array | MessageParts): void {
    if (this.closed) return;
    this.closed = true;
    this.#stop();
    if (this.#counters !== undefined) {
      this.#counters.sent++;
      this.#ended(Status.OK);
    }
    if (result instanceof MessageParts) this.writeUnaryParts(result);
    else this.writeUnary(result instanceof Uint8Array ? result : EMPTY);
  }

  #unaryError(err: unknown): void {
    if (this.closed) return;
    const e = toGrpcError(err);
    this.#finish(e.status, e.message);
  }

  /** Ends with a status, then tells the handler (signal, onCancel). */
  #fail(status: StatusCode, message: string): void {
    if (this.closed) {
      this.#stop();
      return;
    }
    this.#finish(status, message);
    this.#abort();
  }

  #finish(status: StatusCode, message: string): void {
    if (this.closed) return;
    this.closed = true;
    this.#stop();
    this.#ended(status);
    this.writeStatus(status, encodeGrpcMessage(message));
  }

  /** Counts the end of the call with `status`, once the call is routed to an observed method. */
  #ended(status: StatusCode): void {
    const c = this.#counters;
    if (c === undefined) return;
    this.#counters = undefined;
    c.handled[status]++;
    if (c.timing !== undefined) c.timing.observe(c.timing.now() - this.#startedAt);
  }

  #stop(): void {
    this.#mode = MODE_IGNORE;
    this.#message = undefined;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#controller?.abort(new GrpcError(Status.CANCELLED, "context canceled"));
    const cb = this.#callbacks;
    if (cb !== undefined) {
      this.#callbacks = undefined;
      try {
        cb.onCancel();
      } catch {
        // the call is over; nobody is left to tell
      }
    }
  }

  static #onDeadline(call: GrpcCall): void {
    call.#timer = undefined;
    call.#fail(Status.DEADLINE_EXCEEDED, "context deadline exceeded");
  }
}
