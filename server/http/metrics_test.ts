import { assert, assertEquals } from "../../tests/assert.ts";
import type { HttpFallbackRequest } from "../transport/grpc.ts";
import { composeHandlers } from "./health.ts";
import { METRICS_PATH, metricsHandler } from "./metrics.ts";
import { startMetricsListener } from "./metrics_listener.ts";
import { MemberMetrics } from "../metrics/member_metrics.ts";
import { freePorts } from "../../tests/helpers.ts";

function request(path: string, method = "GET"): HttpFallbackRequest {
  return { method, path, headers: new Map(), body: new Uint8Array(0) };
}

Deno.test("metrics handler: answers /metrics (any method, any query) in Prometheus's text format", async () => {
  const metrics = new MemberMetrics({ processMetrics: false });
  metrics.leaderChanges = 3;
  const h = metricsHandler(metrics);
  for (const [path, method] of [[METRICS_PATH, "GET"], ["/metrics?x=1", "GET"], [METRICS_PATH, "POST"]]) {
    const res = await h(request(path, method));
    assert(res !== undefined, path);
    assertEquals(res.status, 200);
    assertEquals(res.headers?.["Content-Type"], "text/plain; version=0.0.4; charset=utf-8");
    assert(String(res.body).includes("\netcd_server_leader_changes_seen_total 3\n"), String(res.body));
  }
  assertEquals(await h(request("/metricsx")), undefined);
  assertEquals(await h(request("/health")), undefined);
});

Deno.test("metrics handler: served on a metrics listener after the health endpoints", async () => {
  const [port] = freePorts("127.0.2.31", 1);
  const metrics = new MemberMetrics({ processMetrics: false });
  const listener = startMetricsListener(
    new URL(`http://127.0.2.31:${port}`),
    composeHandlers("metrics", [metricsHandler(metrics)]),
  );
  try {
    const res = await fetch(`http://127.0.2.31:${port}/metrics`);
    assertEquals(res.status, 200);
    assertEquals(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    assert(text.includes("# TYPE etcd_server_has_leader gauge"), text);
    const missing = await fetch(`http://127.0.2.31:${port}/nothing`);
    assertEquals(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await listener.close();
  }
});
