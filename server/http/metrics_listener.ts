/**
 * The `--listen-metrics-urls` listeners: extra plain-HTTP ports, separate from the client port, that
 * serve the health endpoints (see health.ts) to probes and scrapers that should not share the client
 * port's gRPC traffic. Each is one `Deno.serve` (HTTP/1.1); `close` stops it gracefully.
 *
 * Only `http://` URLs are served: an `https://` metrics URL (which etcd serves with the client
 * certificate) makes {@link startMetricsListener} throw, so the member refuses to start rather than
 * serve something else.
 *
 * @module
 */
import type { HttpFallbackRequest, HttpFallbackResponse } from "../transport/grpc.ts";
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

/** Binds `url` (plain `http://` only) and serves `handler` on it. */
export function startMetricsListener(url: URL, handler: HttpHandler): MetricsListener {
  if (url.protocol !== "http:") {
    throw new MetricsUrlError(
      `etcd-ts: serving --listen-metrics-urls over ${url.protocol.replace(":", "")} is not implemented yet`,
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
