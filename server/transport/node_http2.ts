/**
 * The gRPC transport on `node:http2`, for cleartext (h2c prior knowledge) and TLS listeners. Mutual TLS
 * works here (Deno.listenTls cannot request client certificates), so TLS always uses this transport.
 *
 * Cleartext connections are sniffed: the HTTP/2 preface goes to the HTTP/2 server, anything else to a
 * small HTTP/1.1 server for {@linkcode ServeOptions.httpFallback} (health checks, the JSON gateway).
 * TLS connections negotiate h2 or http/1.1 with ALPN.
 *
 * @module
 */
import type http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Readable } from "node:stream";
import type { TLSSocket } from "node:tls";
import {
  frameMessage,
  GrpcCall,
  grpcContentType,
  type GrpcListener,
  type GrpcRouter,
  type GrpcTransport,
  HIGH_WATER_MARK,
  type HttpFallbackRequest,
  type HttpFallbackResponse,
  type MessageParts,
  messagePrefix,
  type ServeOptions,
  START_PROTOCOL_ERROR,
  TRANSPORT_CLOSING,
} from "./grpc.ts";
import { Status, type StatusCode } from "./status.ts";
import { Http1Connection } from "./h2/http1.ts";

/** How long `close` lets running unary calls finish before ending them with UNAVAILABLE. */
const UNARY_GRACE_MS = 1_000;
/** How long `close` waits for connections to go away before destroying them. */
const SESSION_GRACE_MS = 1_000;

const CALL = Symbol("grpc call");
const PEER = Symbol("peer");
const CERT = Symbol("peer certificate");

type PeerCertificate = { commonName?: string; raw?: Uint8Array };
type Http2Stream = http2.ServerHttp2Stream & { [CALL]?: NodeCall };
type Session = http2.ServerHttp2Session & { [PEER]?: string; [CERT]?: PeerCertificate | null };

const OK_TRAILERS = Object.freeze({ "grpc-status": "0", "grpc-message": "" });
const GRPC_HEADERS = Object.freeze({ ":status": 200, "content-type": "application/grpc" });

interface ServerState {
  readonly router: GrpcRouter;
  readonly options: ServeOptions;
  readonly tls: boolean;
  readonly calls: Set<NodeCall>;
  closing: boolean;
}

/** One gRPC call on a node:http2 stream. */
class NodeCall extends GrpcCall {
  readonly #stream: Http2Stream;
  readonly #headers: http2.IncomingHttpHeaders;
  readonly #responseHeaders: Readonly<Record<string, string | number>>;
  #headersSent = false;
  #trailers: Readonly<Record<string, string>> = OK_TRAILERS;

  readonly #calls: Set<NodeCall>;

  constructor(
    stream: Http2Stream,
    headers: http2.IncomingHttpHeaders,
    contentType: string,
    calls: Set<NodeCall>,
  ) {
    super(headers[":path"] ?? "");
    this.#stream = stream;
    this.#calls = calls;
    this.#headers = headers;
    this.#responseHeaders = contentType === "application/grpc"
      ? GRPC_HEADERS
      : { ":status": 200, "content-type": contentType };
  }

  protected readMetadata(): Map<string, string> {
    const m = new Map<string, string>();
    for (const [k, v] of Object.entries(this.#headers)) {
      if (k[0] === ":" || v === undefined) continue;
      m.set(k, Array.isArray(v) ? v.join(", ") : String(v));
    }
    return m;
  }

  protected writeMessage(message: Uint8Array): void {
    const s = this.#stream;
    if (s.destroyed) return;
    if (!this.#headersSent) {
      this.#headersSent = true;
      s.respond(this.#responseHeaders, { waitForTrailers: true });
    }
    s.write(frameMessage(message));
  }

  protected writeUnary(message: Uint8Array): void {
    const s = this.#stream;
    if (s.destroyed) return;
    this.#headersSent = true;
    s.respond(this.#responseHeaders, { waitForTrailers: true });
    s.end(frameMessage(message));
  }

  protected override writeUnaryParts(message: MessageParts): void {
    const s = this.#stream;
    if (s.destroyed) return;
    this.#headersSent = true;
    s.respond(this.#responseHeaders, { waitForTrailers: true });
    // the prefix, then the parts as they are: node:http2 queues what flow control holds back
    s.write(messagePrefix(message.length));
    for (const p of message.parts) s.write(p);
    s.end();
  }

  protected writeStatus(status: StatusCode, encodedMessage: string): void {
    const s = this.#stream;
    if (s.destroyed) return;
    if (!this.#headersSent) {
      this.#headersSent = true;
      s.respond({
        ...this.#responseHeaders,
        "grpc-status": String(status),
        "grpc-message": encodedMessage,
      }, { endStream: true });
      return;
    }
    if (status !== Status.OK || encodedMessage !== "") {
      this.#trailers = { "grpc-status": String(status), "grpc-message": encodedMessage };
    }
    s.end();
  }

  protected bufferedBytes(): number {
    return this.#stream.writableLength;
  }

  waitDrain(): Promise<void> {
    const s = this.#stream;
    if (this.closed || s.destroyed || s.writableLength < HIGH_WATER_MARK) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        s.off("drain", done);
        s.off("close", done);
        resolve();
      };
      s.on("drain", done);
      s.on("close", done);
    });
  }

  /** The stream is gone: forget the call, and cancel it unless it completed. */
  static onClose(this: Http2Stream): void {
    const call = this[CALL];
    if (call === undefined) return;
    call.#calls.delete(call);
    call.cancel();
  }

  /** Sends the trailers when node asks for them. */
  static onWantTrailers(this: Http2Stream): void {
    const call = this[CALL];
    if (call !== undefined && !this.destroyed) this.sendTrailers(call.#trailers);
  }
}

function onData(this: Http2Stream, chunk: Uint8Array): void {
  this[CALL]!.receive(chunk);
}

function onEnd(this: Http2Stream): void {
  this[CALL]!.receiveEnd();
}

function onStreamError(): void {
  // 'close' follows and cancels the call
}

function peerOf(session: Session): string {
  let peer = session[PEER];
  if (peer === undefined) {
    const sock = session.socket;
    const host = sock?.remoteAddress ?? "";
    peer = session[PEER] = `${host.includes(":") ? `[${host}]` : host}:${sock?.remotePort ?? 0}`;
  }
  return peer;
}

function certificateOf(session: Session): PeerCertificate | undefined {
  let cert = session[CERT];
  if (cert === undefined) {
    cert = null;
    try {
      const c = (session.socket as TLSSocket).getPeerCertificate?.();
      if (c && (c.raw || c.subject)) {
        const cn = c.subject?.CN;
        cert = {
          commonName: Array.isArray(cn) ? cn[0] : cn,
          raw: c.raw ? new Uint8Array(c.raw) : undefined,
        };
      }
    } catch {
      cert = null;
    }
    session[CERT] = cert;
  }
  return cert ?? undefined;
}

function headerMap(headers: Record<string, string | string[] | undefined>): Map<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of Object.entries(headers)) {
    if (k[0] === ":" || v === undefined) continue;
    m.set(k.toLowerCase(), Array.isArray(v) ? v.join(", ") : v);
  }
  return m;
}

const NOT_FOUND: HttpFallbackResponse = {
  status: 404,
  headers: { "content-type": "text/plain" },
  body: "404 page not found\n",
};

async function answerFallback(
  options: ServeOptions,
  req: HttpFallbackRequest,
): Promise<HttpFallbackResponse> {
  if (options.httpFallback === undefined) return NOT_FOUND;
  try {
    return await options.httpFallback(req);
  } catch (err) {
    return {
      status: 500,
      headers: { "content-type": "text/plain" },
      body: `${(err as Error)?.message ?? err}\n`,
    };
  }
}

function readBody(stream: Readable, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const parts: Uint8Array[] = [];
    let total = 0;
    stream.on("data", (c: Uint8Array) => {
      total += c.length;
      if (total > limit) {
        reject(new Error("request body too large"));
        return;
      }
      parts.push(c);
    });
    stream.on("end", () => resolve(Buffer.concat(parts)));
    stream.on("error", reject);
  });
}

async function serveHttp2Fallback(
  state: ServerState,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
): Promise<void> {
  stream.on("error", onStreamError);
  let body: Uint8Array;
  try {
    body = await readBody(stream, state.options.maxReceiveMessageBytes);
  } catch {
    if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    return;
  }
  const gone = goneSignal(stream);
  const res = await answerFallback(state.options, {
    method: String(headers[":method"] ?? "GET"),
    path: String(headers[":path"] ?? "/"),
    headers: headerMap(headers),
    body,
    signal: gone,
  });
  if (stream.destroyed) {
    void res.stream?.cancel().catch(() => {});
    return;
  }
  const out: Record<string, string | number> = { ":status": res.status };
  for (const [k, v] of Object.entries(res.headers ?? {})) out[k.toLowerCase()] = v;
  stream.respond(out);
  if (res.stream !== undefined) {
    await pipeBody(res.stream, stream, gone);
    if (!stream.destroyed) stream.end();
    return;
  }
  stream.end(typeof res.body === "string" ? Buffer.from(res.body) : res.body);
}

/** A signal aborted when a node stream closes (the client reset it, went away, or the response ended). */
function goneSignal(emitter: { on(event: "close", listener: () => void): unknown }): AbortSignal {
  const gone = new AbortController();
  emitter.on("close", () => gone.abort());
  return gone.signal;
}

/** The writable side of a node stream, as {@linkcode pipeBody} uses it. */
interface NodeWritable {
  readonly destroyed: boolean;
  write(chunk: Uint8Array): boolean;
  once(event: "drain" | "close", listener: () => void): unknown;
  off(event: "drain" | "close", listener: () => void): unknown;
}

/**
 * Writes a streamed response body as it is produced, waiting for `drain` when the stream's buffer is
 * full; cancels the body when `gone` aborts.
 */
async function pipeBody(
  body: ReadableStream<Uint8Array>,
  out: NodeWritable,
  gone: AbortSignal,
): Promise<void> {
  const reader = body.getReader();
  const onGone = (): void => void reader.cancel().catch(() => {});
  if (gone.aborted) onGone();
  else gone.addEventListener("abort", onGone, { once: true });
  try {
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch {
        break; // the producer failed: end the body where it is
      }
      if (next.done || out.destroyed) break;
      if (next.value.length === 0) continue;
      if (!out.write(next.value)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            out.off("drain", done);
            out.off("close", done);
            resolve();
          };
          out.once("drain", done);
          out.once("close", done);
        });
      }
    }
  } finally {
    gone.removeEventListener("abort", onGone);
    reader.releaseLock();
  }
}

async function serveHttp1(
  state: ServerState,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  let body: Uint8Array;
  try {
    body = await readBody(req, state.options.maxReceiveMessageBytes);
  } catch {
    res.statusCode = 413;
    res.end();
    return;
  }
  const gone = goneSignal(res);
  const answer = await answerFallback(state.options, {
    method: req.method ?? "GET",
    path: req.url ?? "/",
    headers: headerMap(req.headers),
    body,
    signal: gone,
  });
  res.statusCode = answer.status;
  for (const [k, v] of Object.entries(answer.headers ?? {})) res.setHeader(k, v);
  if (answer.stream !== undefined) {
    // no Content-Length: node sends the body chunked
    res.flushHeaders();
    await pipeBody(answer.stream, res, gone);
    if (!res.destroyed) res.end();
    return;
  }
  res.end(typeof answer.body === "string" ? Buffer.from(answer.body) : answer.body);
}

function onStream(state: ServerState, stream: Http2Stream, headers: http2.IncomingHttpHeaders): void {
  const contentType = grpcContentType(headers["content-type"]);
  if (contentType === undefined) {
    void serveHttp2Fallback(state, stream, headers);
    return;
  }
  const call = new NodeCall(stream, headers, contentType, state.calls);
  const session = stream.session as Session | undefined;
  if (session !== undefined) {
    call.peer = peerOf(session);
    if (state.tls) call.peerCertificate = certificateOf(session);
  }
  stream[CALL] = call;
  stream.on("error", onStreamError);
  stream.on("wantTrailers", NodeCall.onWantTrailers);
  stream.on("close", NodeCall.onClose);
  if (state.closing) {
    call.start(state.router, state.options.maxReceiveMessageBytes, undefined, undefined);
    call.abortWith(Status.UNAVAILABLE, TRANSPORT_CLOSING);
    return;
  }
  const timeout = headers["grpc-timeout"];
  const encoding = headers["grpc-encoding"];
  const r = call.start(
    state.router,
    state.options.maxReceiveMessageBytes,
    typeof timeout === "string" ? timeout : undefined,
    typeof encoding === "string" ? encoding : undefined,
  );
  if (r === START_PROTOCOL_ERROR) {
    stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
    return;
  }
  if (call.closed) return;
  state.calls.add(call);
  stream.on("data", onData);
  stream.on("end", onEnd);
}

const PREFACE_HEAD = [0x50, 0x52, 0x49, 0x20]; // "PRI "

/** Reads until the first bytes tell an HTTP/2 preface from anything else, then hands the socket over. */
function sniff(socket: net.Socket, then: (isH2: boolean, head: Uint8Array) => void): void {
  let head = new Uint8Array(0);
  const onData = (chunk: Uint8Array): void => {
    const b = new Uint8Array(head.length + chunk.length);
    b.set(head);
    b.set(chunk, head.length);
    head = b;
    let isH2 = true;
    for (let i = 0; i < PREFACE_HEAD.length && i < head.length; i++) {
      if (head[i] !== PREFACE_HEAD[i]) isH2 = false;
    }
    if (isH2 && head.length < PREFACE_HEAD.length) return;
    socket.off("data", onData);
    socket.pause();
    then(isH2, Buffer.from(head.buffer, head.byteOffset, head.length));
    socket.resume();
  };
  socket.on("data", onData);
}

/** Serves HTTP/1.x on a cleartext socket with {@linkcode Http1Connection}. */
function serveHttp1Socket(state: ServerState, socket: net.Socket): void {
  const conn = new Http1Connection(
    {
      write: (bytes) => {
        if (!socket.destroyed) socket.write(bytes);
      },
      close: () => socket.end(),
      drained: () =>
        socket.destroyed || socket.writableLength < HIGH_WATER_MARK
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
            const done = (): void => {
              socket.off("drain", done);
              socket.off("close", done);
              resolve();
            };
            socket.once("drain", done);
            socket.once("close", done);
          }),
    },
    (req) => answerFallback(state.options, req),
    state.options.maxReceiveMessageBytes,
  );
  socket.on("data", (chunk: Uint8Array) => conn.feed(chunk));
  socket.on("end", () => conn.end());
  socket.on("close", () => conn.end());
}

/** Serves a router with node:http2 (h2c with prior knowledge, or TLS with ALPN h2 / http/1.1). */
export const serveNodeHttp2: GrpcTransport = async (
  router: GrpcRouter,
  options: ServeOptions,
): Promise<GrpcListener> => {
  const state: ServerState = {
    router,
    options,
    tls: options.tls !== undefined,
    calls: new Set(),
    closing: false,
  };
  const settings: http2.Settings = {
    maxConcurrentStreams: options.maxConcurrentStreams ?? 0xffffffff,
    initialWindowSize: 1 << 20,
  };
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<net.Socket>();
  const trackSession = (session: http2.ServerHttp2Session): void => {
    sessions.add(session);
    session.on("error", () => {});
    session.on("close", () => sessions.delete(session));
  };
  const h1Handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    void serveHttp1(state, req, res);
  };

  let listening: net.Server;
  if (options.tls !== undefined) {
    const t = options.tls;
    const secure = http2.createSecureServer({
      cert: t.cert,
      key: t.key,
      ca: t.ca,
      requestCert: t.requestClientCert ?? false,
      rejectUnauthorized: t.requestClientCert ?? false,
      allowHTTP1: true,
      settings,
    });
    secure.on("stream", (stream, headers) => onStream(state, stream as Http2Stream, headers));
    secure.on("session", trackSession);
    secure.on("request", (req, res) => {
      if (req.httpVersion !== "2.0") {
        h1Handler(req as unknown as http.IncomingMessage, res as unknown as http.ServerResponse);
      }
    });
    secure.on("secureConnection", (sock: net.Socket) => {
      sockets.add(sock);
      sock.on("close", () => sockets.delete(sock));
    });
    secure.on("tlsClientError", () => {});
    listening = secure;
  } else {
    const h2 = http2.createServer({ settings });
    h2.on("stream", (stream, headers) => onStream(state, stream as Http2Stream, headers));
    h2.on("session", trackSession);
    listening = net.createServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {});
      sniff(socket, (isH2, head) => {
        socket.unshift(head);
        if (isH2) h2.emit("connection", socket);
        else serveHttp1Socket(state, socket);
      });
    });
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    listening.once("error", onError);
    listening.listen(options.port, options.hostname, () => {
      listening.off("error", onError);
      resolve();
    });
  });
  listening.on("error", () => {});
  const port = (listening.address() as net.AddressInfo).port;

  let closed: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    state.closing = true;
    const serverClosed = new Promise<void>((resolve) => listening.close(() => resolve()));
    // No GOAWAY (`session.close()` sends one; see H2Session.startDraining for why not): calls arriving
    // now are refused, the running ones end, then the sockets close.
    for (const call of [...state.calls]) {
      if (call.streaming) call.abortWith(Status.UNAVAILABLE, TRANSPORT_CLOSING);
    }
    await waitUntil(() => state.calls.size === 0, UNARY_GRACE_MS);
    for (const call of [...state.calls]) call.abortWith(Status.UNAVAILABLE, TRANSPORT_CLOSING);
    for (const sock of sockets) sock.end();
    await waitUntil(() => sessions.size === 0 && sockets.size === 0, SESSION_GRACE_MS);
    for (const s of sessions) s.destroy();
    for (const sock of sockets) sock.destroy();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([serverClosed, new Promise<void>((r) => timer = setTimeout(r, SESSION_GRACE_MS))]);
    clearTimeout(timer);
  };
  return {
    port,
    close(): Promise<void> {
      return closed ??= close();
    },
  };
};

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitUntil(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await delay(10);
}
