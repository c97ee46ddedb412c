/**
 * The `--listen-metrics-urls` listeners: extra ports, separate from the client port, that serve the
 * health endpoints and /metrics to probes and scrapers that should not share the client port's gRPC
 * traffic. An `http://` URL is one `Deno.serve` (HTTP/1.1); `close` stops it gracefully.
 *
 * An `https://` URL is served as etcd serves it: with the client side's TLS settings (`--cert-file`,
 * `--key-file`, and `--client-cert-auth` with `--trusted-ca-file` when set), over the same TLS transport as
 * the client port (HTTP/1.1 and HTTP/2, no gRPC service). Without client certificates it is refused with
 * etcd's words.
 *
 * @module
 */
import {
  GrpcRouter,
  type GrpcTransport,
  type HttpFallbackRequest,
  type HttpFallbackResponse,
} from "../transport/grpc.ts";
import type { TlsCredentials } from "../tls/credentials.ts";
import type { HttpHandler } from "./health.ts";

/** A serving metrics listener. */
export interface MetricsListener {
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /** Stops accepting, lets requests in flight finish, then closes the connections. */
  close(): Promise<void>;
}

/** Refused metrics URLs (scheme, path): a config error a caller reports like a bad flag. */
export class MetricsUrlError extends Error {
  readonly code = "METRICS_URL";
  constructor(message: string) {
    super(message);
    this.name = "MetricsUrlError";
  }
}

/** Binds a plain `http://` URL and serves `handler` on it (see {@link startSecureMetricsListener}). */
export function startMetricsListener(url: URL, handler: HttpHandler): MetricsListener {
  if (url.protocol !== "http:") {
    throw new MetricsUrlError(
      `etcd-ts: --listen-metrics-urls: unsupported scheme ${url.protocol.replace(":", "")}`,
    );
  }
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || 80);
  const server = Deno.serve({ hostname, port, onListen: () => {} }, async (req) => {
    const u = new URL(req.url);
    const headers = new Map<string, string>();
    for (const [k, v] of req.headers) headers.set(k.toLowerCase(), v);
    const fallback: HttpFallbackRequest = {
      method: req.method,
      path: u.pathname + u.search,
      headers,
      body: new Uint8Array(await req.arrayBuffer()),
    };
    let res: HttpFallbackResponse;
    try {
      res = await handler(fallback);
    } catch (err) {
      res = { status: 500, body: `${(err as Error)?.message ?? err}\n` };
    }
    const body = req.method === "HEAD" ? null : typeof res.body === "string" ? res.body : res.body.slice();
    return new Response(body, { status: res.status, headers: res.headers });
  });
  let closing: Promise<void> | undefined;
  return {
    port: server.addr.port,
    close(): Promise<void> {
      closing ??= server.shutdown().then(() => server.finished);
      return closing;
    },
  };
}

/** What an `https://` metrics URL needs: the client side's credentials and the client port's transport. */
export interface SecureMetricsOptions {
  /** The client TLS credentials; undefined when no client certificate is configured. */
  credentials: TlsCredentials | undefined;
  transport: GrpcTransport;
  /** One line per refused handshake or certificate. */
  onRefused?(remote: string, reason: string): void;
}

/** Requests larger than this are refused on a metrics port (they carry no bodies worth the name). */
const METRICS_MAX_REQUEST_BYTES = 1 << 20;

/** Binds an `https://` metrics URL with the client TLS settings and serves `handler` on it. */
export async function startSecureMetricsListener(
  url: URL,
  handler: HttpHandler,
  o: SecureMetricsOptions,
): Promise<MetricsListener> {
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || 443);
  if (o.credentials === undefined) {
    throw new MetricsUrlError(`cannot listen on TLS for ${url.host}: KeyFile and CertFile are not presented`);
  }
  const listener = await o.transport(new GrpcRouter(), {
    hostname,
    port,
    maxReceiveMessageBytes: METRICS_MAX_REQUEST_BYTES,
    httpFallback: handler,
    secure: { credentials: o.credentials, onRefused: o.onRefused },
  });
  return { port: listener.port, close: () => listener.close() };
}
