import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import type { HttpFallbackRequest, HttpFallbackResponse } from "../transport/grpc.ts";
import type { LogFields, Logger } from "../logger.ts";
import {
  composeHandlers,
  HEALTH_READ_TIMEOUT_MS,
  healthHandler,
  type HealthMember,
  healthMemberOf,
  type HealthSurface,
  notFound,
  type PartialHttpHandler,
} from "./health.ts";
import { startMetricsListener } from "./metrics_listener.ts";
import type { EtcdServer } from "../member/server.ts";
import { AlarmStore } from "../member/alarms.ts";
import { AlarmType, type RangeRequest } from "../pb/rpc.ts";
import { NONE } from "../../raft/types.ts";

/** A member whose state the test sets; it records the reads it was asked for. */
class FakeMember implements HealthMember {
  lead = true;
  active: string[] = [];
  learner = false;
  reads: boolean[] = [];
  /** What a read does; resolves by default. */
  onRead: (serializable: boolean) => Promise<void> = () => Promise.resolve();
  readonly serverVersion = "3.5.0";
  clusterVersion = "not_decided";
  leaderKnown(): boolean {
    return this.lead;
  }
  alarms(): string[] {
    return [...this.active];
  }
  isLearner(): boolean {
    return this.learner;
  }
  read(serializable: boolean): Promise<void> {
    this.reads.push(serializable);
    return this.onRead(serializable);
  }
}

/** Timers that fire only when the test says so. */
class ManualClock {
  timers = new Map<number, { fn: () => void; ms: number }>();
  private next = 1;
  setTimeout(fn: () => void, ms: number): number {
    this.timers.set(this.next, { fn, ms });
    return this.next++;
  }
  clearTimeout(id: number): void {
    this.timers.delete(id);
  }
  /** Fires every pending timer; returns their delays. */
  fireAll(): number[] {
    const due = [...this.timers.values()];
    this.timers.clear();
    for (const t of due) t.fn();
    return due.map((t) => t.ms);
  }
}

class Warnings implements Logger {
  lines: { msg: string; fields?: LogFields }[] = [];
  debug(): void {}
  info(): void {}
  warn(msg: string, fields?: LogFields): void {
    this.lines.push({ msg, fields });
  }
  error(msg: string, fields?: LogFields): void {
    this.lines.push({ msg, fields });
  }
  child(): Logger {
    return this;
  }
}

const CORS = {
  "Access-Control-Allow-Headers": "accept, content-type, authorization",
  "Access-Control-Allow-Methods": "POST, GET, OPTIONS, PUT, DELETE",
  "Access-Control-Allow-Origin": "*",
};
const TEXT = "text/plain; charset=utf-8";

function setup(surface: HealthSurface = "client") {
  const member = new FakeMember();
  const clock = new ManualClock();
  const logger = new Warnings();
  const handler = healthHandler(member, { surface, clock, requestTimeoutMs: 7000, logger });
  const get = async (path: string, method = "GET"): Promise<HttpFallbackResponse | undefined> =>
    await handler({ method, path, headers: new Map(), body: new Uint8Array(0) });
  return { member, clock, logger, handler, get };
}

function summary(res: HttpFallbackResponse | undefined): [number, string] | undefined {
  if (res === undefined) return undefined;
  return [res.status, typeof res.body === "string" ? res.body : new TextDecoder().decode(res.body)];
}

const HEALTHY: [number, string] = [200, '{"health":"true"}'];
const UNHEALTHY: [number, string] = [503, '{"health":"false"}\n'];

Deno.test("health: a member with a leader, no alarm and a working read is healthy, as etcd 3.4.23 says", async () => {
  const { member, clock, get } = setup();
  const res = await get("/health");
  assertEquals(summary(res), HEALTHY);
  assertEquals(res!.headers, { ...CORS, "Content-Type": TEXT });
  // one linearizable read, and its deadline was cleared
  assertEquals(member.reads, [false]);
  assertEquals(clock.timers.size, 0);
});

Deno.test("health: no leader is 503 without trying a read; serializable=true skips the leader and reads locally", async () => {
  const { member, logger, get } = setup();
  member.lead = false;
  const res = await get("/health");
  assertEquals(summary(res), UNHEALTHY);
  assertEquals(res!.headers, { ...CORS, "Content-Type": TEXT, "X-Content-Type-Options": "nosniff" });
  assertEquals(member.reads, []);
  assertEquals(logger.lines, [{ msg: "serving /health false", fields: { reason: "RAFT NO LEADER" } }]);
  assertEquals(summary(await get("/health?serializable=true")), HEALTHY);
  assertEquals(member.reads, [true]);
  // only "true" counts, as in etcd
  assertEquals(summary(await get("/health?serializable=1")), UNHEALTHY);
  assertEquals(member.reads, [true]);
});

Deno.test("health: an active alarm is 503 unless excluded by name; every alarm must be excluded", async () => {
  const { member, logger, get } = setup();
  member.active = ["NOSPACE"];
  assertEquals(summary(await get("/health")), UNHEALTHY);
  assertEquals(logger.lines.at(-1)?.fields, { reason: "ALARM NOSPACE" });
  assertEquals(summary(await get("/health?exclude=CORRUPT")), UNHEALTHY);
  assertEquals(summary(await get("/health?exclude=NOSPACE")), HEALTHY);
  // the alarm is checked first, even for a serializable check
  assertEquals(summary(await get("/health?serializable=true")), UNHEALTHY);
  member.active = ["NOSPACE", "CORRUPT"];
  assertEquals(summary(await get("/health?exclude=NOSPACE")), UNHEALTHY);
  assertEquals(logger.lines.at(-1)?.fields, { reason: "ALARM CORRUPT" });
  assertEquals(summary(await get("/health?exclude=NOSPACE&exclude=CORRUPT")), HEALTHY);
  assertEquals(summary(await get("/health?exclude=&exclude=NOSPACE")), UNHEALTHY);
});

Deno.test("health: a failed read is 503; a read that hangs fails at its one-second deadline", async () => {
  const { member, clock, logger, get } = setup();
  member.onRead = () => Promise.reject(new Error("etcdserver: server stopped"));
  assertEquals(summary(await get("/health")), UNHEALTHY);
  assertEquals(logger.lines.at(-1)?.fields, { reason: "RANGE ERROR:etcdserver: server stopped" });
  assertEquals(clock.timers.size, 0);

  member.onRead = () => new Promise(() => {});
  const pending = get("/health");
  let settled = false;
  void pending.then(() => settled = true);
  await Promise.resolve();
  await Promise.resolve();
  assert(!settled, "answered before its deadline");
  assertEquals(clock.fireAll(), [HEALTH_READ_TIMEOUT_MS]);
  assertEquals(summary(await pending), UNHEALTHY);
  assertEquals(logger.lines.at(-1)?.fields, { reason: "RANGE ERROR:etcdserver: request timed out" });
});

Deno.test("health: other methods are 405 with Allow: GET, as Go's http.Error writes it", async () => {
  const { member, get } = setup();
  for (const path of ["/health", "/version", "/livez", "/readyz", "/readyz/non_learner"]) {
    for (const method of ["POST", "HEAD", "PUT"]) {
      const res = await get(path, method);
      assertEquals(summary(res), [405, "Method Not Allowed\n"], `${method} ${path}`);
      assertEquals(res!.headers, {
        ...CORS,
        Allow: "GET",
        "Content-Type": TEXT,
        "X-Content-Type-Options": "nosniff",
      });
    }
  }
  assertEquals(member.reads, []);
});

Deno.test("health: /version on the client port; the metrics port has neither /version nor CORS", async () => {
  const client = setup("client");
  // undecided until the leader sets the cluster version, then what it set
  assertEquals(summary(await client.get("/version")), [
    200,
    '{"etcdserver":"3.5.0","etcdcluster":"not_decided"}',
  ]);
  client.member.clusterVersion = "3.5.0";
  const res = await client.get("/version");
  assertEquals(summary(res), [200, '{"etcdserver":"3.5.0","etcdcluster":"3.5.0"}']);
  assertEquals(res!.headers, { ...CORS, "Content-Type": "application/json" });

  const metrics = setup("metrics");
  assertEquals(await metrics.get("/version"), undefined);
  const h = await metrics.get("/health");
  assertEquals(summary(h), HEALTHY);
  assertEquals(h!.headers, { "Content-Type": TEXT });
  assertEquals(summary(await metrics.get("/livez")), [200, "ok\n"]);
});

Deno.test("health: paths it does not serve are left to the next handler", async () => {
  const { get } = setup();
  for (
    const path of [
      "/",
      "/health/",
      "/healthz",
      "/livez/",
      "/livez/linearizable_read",
      "/readyz/nope",
      "/v2/keys",
    ]
  ) {
    assertEquals(await get(path), undefined, path);
  }
});

Deno.test("livez: ok, or with ?verbose the check first; a failed local read is 503 with the reason", async () => {
  const { member, get } = setup();
  const ok = await get("/livez");
  assertEquals(summary(ok), [200, "ok\n"]);
  assertEquals(ok!.headers, { ...CORS, "Content-Type": TEXT, "X-Content-Type-Options": "nosniff" });
  assertEquals(summary(await get("/livez?verbose")), [200, "[+]serializable_read ok\nok\n"]);
  assertEquals(member.reads, [true, true]);
  // no leader and alarms do not make a member dead
  member.lead = false;
  member.active = ["NOSPACE", "CORRUPT"];
  assertEquals(summary(await get("/livez")), [200, "ok\n"]);
  member.onRead = () => Promise.reject(new Error("etcdserver: server stopped"));
  const dead = await get("/livez");
  assertEquals(summary(dead), [503, "[-]serializable_read failed: etcdserver: server stopped\n\n"]);
  assertEquals(dead!.headers, { ...CORS, "Content-Type": TEXT, "X-Content-Type-Options": "nosniff" });
  assertEquals(summary(await get("/livez/serializable_read")), [
    503,
    "[-]serializable_read failed: etcdserver: server stopped\n\n",
  ]);
  assertEquals(summary(await get("/livez?exclude=serializable_read")), [200, "ok\n"]);
});

Deno.test("readyz: etcd 3.5's four checks; CORRUPT, a failed linearizable read or a learner make it 503", async () => {
  const { member, clock, get } = setup();
  const all = "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\n";
  assertEquals(summary(await get("/readyz")), [200, "ok\n"]);
  assertEquals(summary(await get("/readyz?verbose=1")), [200, all + "ok\n"]);
  assertEquals(member.reads, [true, false, true, false]);
  // NOSPACE is not one of the checks
  member.active = ["NOSPACE"];
  assertEquals(summary(await get("/readyz")), [200, "ok\n"]);
  member.active = ["CORRUPT"];
  assertEquals(summary(await get("/readyz")), [
    503,
    all.replace("[+]data_corruption ok", "[-]data_corruption failed: alarm activated: CORRUPT") + "\n",
  ]);
  assertEquals(summary(await get("/readyz?exclude=data_corruption&exclude=nope")), [200, "ok\n"]);
  assertEquals(summary(await get("/readyz/serializable_read")), [200, "ok\n"]);
  assertEquals(summary(await get("/readyz/data_corruption?verbose")), [
    503,
    "[-]data_corruption failed: alarm activated: CORRUPT\n\n",
  ]);
  member.active = [];

  member.learner = true;
  assertEquals(summary(await get("/readyz/non_learner")), [
    503,
    "[-]non_learner failed: not supported for learner\n\n",
  ]);
  member.learner = false;

  // without a leader the linearizable read hangs until the request timeout
  member.onRead = (serializable) => serializable ? Promise.resolve() : new Promise(() => {});
  member.reads = [];
  const pending = get("/readyz");
  // fire only once the linearizable read was asked for (the serializable read before it has its own timer)
  for (let i = 0; i < 20 && member.reads.length < 2; i++) await Promise.resolve();
  assertEquals(member.reads, [true, false]);
  assertEquals(clock.fireAll(), [7000]);
  assertEquals(summary(await pending), [
    503,
    all.replace("[+]linearizable_read ok", "[-]linearizable_read failed: etcdserver: request timed out") +
    "\n",
  ]);
});

Deno.test("composeHandlers: the first answer wins, absent handlers are skipped, else etcd's 404", async () => {
  const { handler } = setup();
  const seen: string[] = [];
  const v2: PartialHttpHandler = (req: HttpFallbackRequest) => {
    seen.push(req.path);
    return Promise.resolve(
      req.path.startsWith("/v2/") ? { status: 200, body: "v2" } : undefined,
    );
  };
  const all = composeHandlers("client", [handler, undefined, v2]);
  const req = (path: string) => ({ method: "GET", path, headers: new Map(), body: new Uint8Array(0) });
  assertEquals(summary(await all(req("/health"))), HEALTHY);
  assertEquals(summary(await all(req("/v2/keys/a"))), [200, "v2"]);
  const missing = await all(req("/nope"));
  assertEquals(summary(missing), [404, "404 page not found\n"]);
  assertEquals(missing!.headers, { ...CORS, "Content-Type": TEXT, "X-Content-Type-Options": "nosniff" });
  assertEquals(seen, ["/v2/keys/a", "/nope"]);
  assertEquals(notFound("metrics").headers, { "Content-Type": TEXT, "X-Content-Type-Options": "nosniff" });
});

Deno.test("metrics listener: serves the handler over HTTP/1.1, HEAD without a body, and stops on close", async () => {
  const { handler } = setup("metrics");
  const listener = startMetricsListener(new URL("http://127.0.0.1:0"), composeHandlers("metrics", [handler]));
  const base = `http://127.0.0.1:${listener.port}`;
  try {
    const h = await fetch(`${base}/health`);
    assertEquals([h.status, h.headers.get("content-type"), await h.text()], [200, TEXT, '{"health":"true"}']);
    const v = await fetch(`${base}/version`);
    assertEquals([v.status, await v.text()], [404, "404 page not found\n"]);
    const head = await fetch(`${base}/health`, { method: "HEAD" });
    assertEquals([head.status, head.headers.get("allow"), await head.text()], [405, "GET", ""]);
    const post = await fetch(`${base}/livez?verbose`, { method: "POST", body: "x" });
    assertEquals([post.status, await post.text()], [405, "Method Not Allowed\n"]);
    const l = await fetch(`${base}/livez?verbose`);
    assertEquals([l.status, await l.text()], [200, "[+]serializable_read ok\nok\n"]);
  } finally {
    await listener.close();
  }
  await listener.close(); // twice is fine
  await assertRejects(() => fetch(`${base}/health`));
});

Deno.test("healthMemberOf: leader, alarms and reads of a member; a stopped or failed member reads nothing", async () => {
  const stop = Promise.withResolvers<string>();
  const ranges: RangeRequest[] = [];
  const alarms = new AlarmStore();
  const driver: { lead: bigint; fatalError: Error | undefined; noSpace: boolean } = {
    lead: 7n,
    fatalError: undefined,
    noSpace: false,
  };
  const server = {
    driver,
    alarms,
    stopNotify: stop.promise,
    isLearner: () => false,
    clusterVersion: "not_decided",
    range: (r: RangeRequest) => {
      ranges.push(r);
      return Promise.resolve({});
    },
  } as unknown as EtcdServer;
  const m = healthMemberOf(server);
  assert(m.leaderKnown());
  driver.lead = NONE;
  assert(!m.leaderKnown());
  assertEquals(m.alarms(), []);
  alarms.activate(2n, AlarmType.CORRUPT);
  alarms.activate(1n, AlarmType.NOSPACE);
  assertEquals(m.alarms(), ["NOSPACE", "CORRUPT"]);
  // a full disk is NOSPACE for this member, without an alarm through Raft
  alarms.deactivate(1n, AlarmType.NOSPACE);
  assertEquals(m.alarms(), ["CORRUPT"]);
  driver.noSpace = true;
  assertEquals(m.alarms(), ["CORRUPT", "NOSPACE"]);
  driver.noSpace = false;
  assertEquals([m.serverVersion, m.clusterVersion], ["3.5.0", "not_decided"]);
  (server as unknown as { clusterVersion: string }).clusterVersion = "3.5.0";
  assertEquals(m.clusterVersion, "3.5.0");

  await m.read(false);
  await m.read(true);
  assertEquals(ranges.map((r) => [r.serializable, r.keysOnly, r.limit, r.key.length]), [
    [false, true, 1, 0],
    [true, true, 1, 0],
  ]);
  driver.fatalError = new Error("fsync failed");
  await assertRejects(() => m.read(true), Error, "fsync failed");
  driver.fatalError = undefined;
  stop.resolve("removed");
  await stop.promise;
  await assertRejects(() => m.read(true), Error, "etcdserver: server stopped");
  assertEquals(ranges.length, 2);
});
