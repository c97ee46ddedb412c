/**
 * `GET /metrics`: the member's metrics in Prometheus's text format (`text/plain; version=0.0.4;
 * charset=utf-8`), on the client port and on the `--listen-metrics-urls` listeners, as etcd serves them.
 * Like etcd's promhttp handler it answers any method the same way, and only its exact path (a query
 * string is ignored). Metric names and what they measure: server/metrics/README.md.
 *
 * @module
 */
import type { HttpFallbackRequest, HttpFallbackResponse } from "../transport/grpc.ts";
import type { PartialHttpHandler } from "./health.ts";

/** Where Prometheus scrapes a member. */
export const METRICS_PATH = "/metrics";

/** What the handler exposes: a member's metrics (server/metrics/member_metrics.ts). */
export interface MetricsSource {
  /** The exposition's content type. */
  readonly contentType: string;
  /** Every metric, in that format. */
  text(): Promise<string>;
}

/** Answers `/metrics` with `source`'s metrics; any other path is left to the next handler. */
export function metricsHandler(source: MetricsSource): PartialHttpHandler {
  return async (req: HttpFallbackRequest): Promise<HttpFallbackResponse | undefined> => {
    const q = req.path.indexOf("?");
    const path = q < 0 ? req.path : req.path.slice(0, q);
    if (path !== METRICS_PATH) return undefined;
    return { status: 200, headers: { "Content-Type": source.contentType }, body: await source.text() };
  };
}
