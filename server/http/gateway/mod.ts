/**
 * etcd's JSON gateway on the client port: the v3 API as JSON over plain HTTP (HTTP/1.1 or HTTP/2),
 * `POST /v3/<service>/<call>` with the request as the body, as grpc-gateway serves it in etcd 3.4.
 * Each request is turned into protobuf bytes (json.ts, from the generated tables of
 * server/pb/rpc_json.ts), handed to the same handler a gRPC call reaches through the router, and the
 * reply turned back into JSON. A reply handed over in parts (a long range, read in pages) is converted
 * and sent a part at a time. Streaming calls (watch, lease keep-alive, snapshot) answer with one
 * `{"result":...}` line per reply, sent as it comes.
 *
 * Also here: {@linkcode accessControl}, etcd's `--cors` and `--host-whitelist` over every plain HTTP
 * request of the client port.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import {
  type CallContext,
  type GrpcRouter,
  type HttpFallbackRequest,
  type HttpFallbackResponse,
  MessageParts,
  type ServerStream,
  type StreamCallbacks,
} from "../../transport/grpc.ts";
import { GrpcError, Status, toGrpcError } from "../../transport/status.ts";
import type { HttpHandler, PartialHttpHandler } from "../health.ts";
import { JsonRequestError, partsToJson, protoToJsonBytes, requestToProto, splitJson } from "./json.ts";
import { type GatewayRoute, routeOf } from "./routes.ts";

export { type GatewayRoute, PREFIXES, routeOf, ROUTES } from "./routes.ts";
export { JsonRequestError, protoToJson, requestToProto } from "./json.ts";

/** Options of {@linkcode gatewayHandler}. */
export interface GatewayOptions {
  /** `--enable-grpc-gateway`: when false, no path is served (etcd answers 404 for them then). */
  enabled: boolean;
  /** The address reported as the caller's (`CallContext.peer`); etcd's gateway calls from the member itself. */
  peer?: string;
}

/** grpc-gateway's HTTP status for a gRPC status code. */
export function httpStatusOf(code: number): number {
  switch (code) {
    case Status.OK:
      return 200;
    case Status.CANCELLED:
      return 408;
    case Status.INVALID_ARGUMENT:
    case Status.OUT_OF_RANGE:
      return 400;
    case Status.DEADLINE_EXCEEDED:
      return 504;
    case Status.NOT_FOUND:
      return 404;
    case Status.ALREADY_EXISTS:
    case Status.ABORTED:
      return 409;
    case Status.PERMISSION_DENIED:
      return 403;
    case Status.RESOURCE_EXHAUSTED:
      return 429;
    case Status.FAILED_PRECONDITION:
      return 412;
    case Status.UNIMPLEMENTED:
      return 501;
    case Status.UNAVAILABLE:
      return 503;
    case Status.UNAUTHENTICATED:
      return 401;
    default: // UNKNOWN, INTERNAL, DATA_LOSS
      return 500;
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  408: "Request Timeout",
  409: "Conflict",
  412: "Precondition Failed",
  429: "Too Many Requests",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

const JSON_TYPE = { "content-type": "application/json" };
const OK_HEADERS = { ...JSON_TYPE, "grpc-metadata-content-type": "application/grpc" };

/** The JSON body of a failed unary call: `{"error":...,"message":...,"code":n}`. */
export function errorJson(code: number, message: string): string {
  const m = JSON.stringify(message);
  return `{"error":${m},"message":${m},"code":${code}}`;
}

/** A failed call's response. */
export function errorResponse(code: number, message: string): HttpFallbackResponse {
  return { status: httpStatusOf(code), headers: { ...JSON_TYPE }, body: errorJson(code, message) };
}

/** The line a streaming call ends with when it fails after it began. */
export function streamErrorJson(code: number, message: string): string {
  const http = httpStatusOf(code);
  return `{"error":{"grpc_code":${code},"http_code":${http},"message":${JSON.stringify(message)},` +
    `"http_status":${JSON.stringify(STATUS_TEXT[http] ?? "")}}}`;
}

function plain(status: number, text: string): HttpFallbackResponse {
  return {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" },
    body: text,
  };
}

/**
 * The metadata a gateway call carries, from the HTTP headers as grpc-gateway forwards them:
 * `Authorization` (etcd's auth token), and `Grpc-Metadata-<name>` headers under `<name>`.
 */
export function metadataOf(headers: Map<string, string>): Map<string, string> {
  const md = new Map<string, string>();
  for (const [name, value] of headers) {
    if (name === "authorization") md.set(name, value);
    else if (name.startsWith("grpc-metadata-")) md.set(name.slice("grpc-metadata-".length), value);
  }
  return md;
}

/** The signal of a call: aborted when the request's is, or when `extra` aborts. */
function callSignal(req: HttpFallbackRequest, extra: AbortController): AbortSignal {
  return req.signal === undefined ? extra.signal : AbortSignal.any([req.signal, extra.signal]);
}

/**
 * The gateway as a partial HTTP handler: answers POSTs to the gateway's routes under `/v3/` and
 * `/v3beta/`, `Not Found` for other paths under them and `Method Not Allowed` for other methods on a
 * route; `undefined` for everything else (and for everything when disabled).
 */
export function gatewayHandler(router: GrpcRouter, options: GatewayOptions): PartialHttpHandler {
  return (req) => {
    if (!options.enabled) return Promise.resolve(undefined);
    const q = req.path.indexOf("?");
    const path = q < 0 ? req.path : req.path.slice(0, q);
    if (!path.startsWith("/v3/") && !path.startsWith("/v3beta/")) return Promise.resolve(undefined);
    const route = routeOf(path);
    if (route === undefined) return Promise.resolve(plain(404, "Not Found\n"));
    if (req.method !== "POST") return Promise.resolve(plain(405, "Method Not Allowed\n"));
    return route.stream ? serveStream(router, route, req, options) : serveUnary(router, route, req, options);
  };
}

async function serveUnary(
  router: GrpcRouter,
  route: GatewayRoute,
  req: HttpFallbackRequest,
  options: GatewayOptions,
): Promise<HttpFallbackResponse> {
  let request: Uint8Array;
  try {
    request = requestToProto(route.request, req.body);
  } catch (err) {
    if (err instanceof JsonRequestError) return errorResponse(Status.INVALID_ARGUMENT, err.message);
    throw err;
  }
  const handler = router.route(route.method);
  if (handler.unary === undefined) {
    const e = handler.error ?? new GrpcError(Status.UNIMPLEMENTED, `unknown method ${route.method}`);
    return errorResponse(e.status, e.message);
  }
  const done = new AbortController();
  const ctx: CallContext = {
    method: route.method,
    metadata: metadataOf(req.headers),
    peer: options.peer ?? "127.0.0.1:0",
    signal: callSignal(req, done),
  };
  try {
    const answer = await handler.unary(request, ctx);
    if (answer instanceof MessageParts) {
      // a long answer (a range read in pages): converted and sent a part at a time
      const pieces = partsToJson(route.response, answer.parts);
      if (pieces !== undefined) {
        return { status: 200, headers: { ...OK_HEADERS }, body: "", stream: piecesBody(pieces) };
      }
    }
    const reply = answer instanceof MessageParts ? answer.join() : answer;
    return { status: 200, headers: { ...OK_HEADERS }, body: protoToJsonBytes(route.response, reply) };
  } catch (err) {
    const e = toGrpcError(err);
    return errorResponse(e.status, e.message);
  } finally {
    done.abort();
  }
}

/**
 * A body of pieces, each made when the transport asks for it, on a later turn of the event loop than the
 * one before: other clients are served between two pieces.
 */
function piecesBody(pieces: Iterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = pieces[Symbol.iterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      await new Promise((resolve) => setImmediate(resolve));
      const next = it.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    cancel() {
      it.return?.();
    },
  });
}

/** The request messages of a streaming call: every JSON value of the body, as grpc-gateway reads them. */
function requestsOf(type: string, body: Uint8Array): Uint8Array[] {
  return splitJson(new TextDecoder().decode(body)).map((text) => requestToProto(type, text));
}

const encoder = new TextEncoder();

async function serveStream(
  router: GrpcRouter,
  route: GatewayRoute,
  req: HttpFallbackRequest,
  options: GatewayOptions,
): Promise<HttpFallbackResponse> {
  let requests: Uint8Array[];
  try {
    requests = requestsOf(route.request, req.body);
  } catch (err) {
    // grpc-gateway reads a streaming call's body after the call began: its errors are UNKNOWN
    if (err instanceof JsonRequestError) return errorResponse(Status.UNKNOWN, err.message);
    throw err;
  }
  const handler = router.route(route.method);
  if (handler.stream === undefined) {
    const e = handler.error ?? new GrpcError(Status.UNIMPLEMENTED, `unknown method ${route.method}`);
    return errorResponse(e.status, e.message);
  }
  const cancel = new AbortController();
  const ctx: CallContext = {
    method: route.method,
    metadata: metadataOf(req.headers),
    peer: options.peer ?? "127.0.0.1:0",
    signal: callSignal(req, cancel),
  };

  // replies queue here until the HTTP stream pulls them; headers go out with the first one, as
  // grpc-gateway's first flush does
  const pending: Uint8Array[] = [];
  let buffered = 0;
  let ended = false;
  let wake: (() => void) | undefined;
  let drained: (() => void) | undefined;
  const notify = (): void => {
    wake?.();
    wake = undefined;
  };
  const HIGH = 1 << 20;
  // set once the handler has started; `stop` may run before (a client already gone)
  const started: { callbacks?: StreamCallbacks } = {};
  const stream: ServerStream = {
    send(message) {
      if (ended) return false;
      const line = protoToJsonBytes(route.response, message, '{"result":', "}\n");
      pending.push(line);
      buffered += line.length;
      notify();
      return buffered < HIGH;
    },
    waitDrain() {
      if (ended || buffered < HIGH / 2) return Promise.resolve();
      return new Promise((resolve) => {
        drained = resolve;
      });
    },
    end(error) {
      if (ended) return;
      if (error !== undefined) {
        pending.push(encoder.encode(`${streamErrorJson(error.status, error.message)}\n`));
      }
      ended = true;
      cancel.abort();
      notify();
      drained?.();
    },
    get closed() {
      return ended;
    },
  };
  const stop = (): void => {
    if (ended) return;
    ended = true;
    cancel.abort();
    drained?.();
    notify();
    started.callbacks?.onCancel();
  };
  req.signal?.addEventListener("abort", stop, { once: true });
  if (req.signal?.aborted) return { status: 200, headers: { ...OK_HEADERS }, body: "" };
  const callbacks = handler.stream(stream, ctx);
  started.callbacks = callbacks;
  for (const r of requests) {
    if (ended) break;
    callbacks.onMessage(r);
  }
  if (!ended) callbacks.onHalfClose();

  const next = async (): Promise<Uint8Array | undefined> => {
    while (pending.length === 0 && !ended) await new Promise<void>((resolve) => (wake = resolve));
    const chunk = pending.shift();
    if (chunk !== undefined) {
      buffered -= chunk.length;
      if (buffered < HIGH / 2) {
        drained?.();
        drained = undefined;
      }
    }
    return chunk;
  };
  const first = await next();
  if (first === undefined) {
    // ended before any reply: an empty 200, as grpc-gateway's stream forwarder writes
    return { status: 200, headers: { ...OK_HEADERS }, body: "" };
  }
  let sentFirst = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!sentFirst) {
        sentFirst = true;
        controller.enqueue(first);
        return;
      }
      const chunk = await next();
      if (chunk === undefined) controller.close();
      else controller.enqueue(chunk);
    },
    cancel() {
      stop();
    },
  });
  return { status: 200, headers: { ...OK_HEADERS }, body: "", stream: body };
}

/** Options of {@linkcode accessControl}: etcd's `--cors` and `--host-whitelist`. */
export interface AccessOptions {
  /** Allowed origins; `*` allows any (the default). */
  cors: readonly string[];
  /** Host names accepted in `Host` on plain-text requests; `*` (the default) or empty accepts any. */
  hostWhitelist: readonly string[];
}

/** The host name of a `Host` header, without the port (an IPv6 literal without brackets). */
export function hostnameOf(host: string): string {
  const v6 = /^\[([^\]]*)\](?::\d*)?$/.exec(host);
  if (v6) return v6[1];
  const colon = host.lastIndexOf(":");
  if (colon >= 0 && host.indexOf(":") === colon) return host.slice(0, colon);
  return host;
}

function refusedHost(host: string): string {
  return `
etcd received your request, but the Host header was unrecognized.

To fix this, choose one of the following options:
- Enable TLS, then any HTTPS request will be allowed.
- Add the hostname you want to use to the whitelist in settings.
  - e.g. etcd --host-whitelist ${JSON.stringify(host)}

This requirement has been added to help prevent "DNS Rebinding" attacks (CVE-2018-5702).
`;
}

/**
 * Wraps the client port's plain HTTP handler with etcd's access control: a request whose `Host` is not
 * whitelisted gets 421 (etcd refuses it to prevent DNS rebinding), the CORS headers go on every answer
 * (with `*`, or with the request's `Origin` when it is allowed), and `OPTIONS` (a preflight) is answered
 * 200 without reaching the handler.
 */
export function accessControl(handler: HttpHandler, options: AccessOptions): HttpHandler {
  const anyHost = options.hostWhitelist.length === 0 || options.hostWhitelist.includes("*");
  const hosts = new Set(options.hostWhitelist);
  const anyOrigin = options.cors.includes("*");
  const origins = new Set(options.cors);
  return async (req) => {
    const host = hostnameOf(req.headers.get("host") ?? req.headers.get(":authority") ?? "");
    if (!anyHost && !hosts.has(host)) {
      return {
        status: 421,
        headers: { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" },
        body: `${refusedHost(host)}\n`,
      };
    }
    const origin = req.headers.get("origin");
    const allowed = anyOrigin ? "*" : origin !== undefined && origins.has(origin) ? origin : undefined;
    const cors: Record<string, string> = allowed === undefined ? {} : {
      "access-control-allow-methods": "POST, GET, OPTIONS, PUT, DELETE",
      "access-control-allow-origin": allowed,
      "access-control-allow-headers": "accept, content-type, authorization",
    };
    if (req.method === "OPTIONS") return { status: 200, headers: cors, body: "" };
    const res = await handler(req);
    if (allowed === undefined) return res;
    return { ...res, headers: { ...cors, ...(res.headers ?? {}) } };
  };
}
