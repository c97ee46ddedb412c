/**
 * etcd's health and version endpoints, answered as plain HTTP requests on the client port (HTTP/1.1 and
 * HTTP/2, through `ServeOptions.httpFallback`) and on the `--listen-metrics-urls` listener:
 *
 * - `GET /health`: etcd 3.4.23's answer byte for byte: `{"health":"true"}` with 200, or
 *   `{"health":"false"}` and a newline with 503 (Go's `http.Error`) when an alarm is active (`?exclude=NOSPACE`
 *   ignores that alarm, as does any alarm name given), when the member knows no leader, or when a
 *   linearizable read does not complete within {@link HEALTH_READ_TIMEOUT_MS}. `?serializable=true`, as in
 *   etcd 3.5, skips the leader check and reads the local state instead (etcd 3.4.23 ignores it).
 * - `GET /livez` and `GET /readyz`, as etcd 3.5 answers them: `ok` and a newline, or with `?verbose` one
 *   `[+]check ok` line per check first; a failed check makes it 503 with the `[-]check failed: reason`
 *   lines. `/livez` runs `serializable_read`; `/readyz` runs `data_corruption` (a CORRUPT alarm),
 *   `serializable_read`, `linearizable_read` and `non_learner`. `?exclude=check` leaves checks out, and
 *   each check also has its own path (`/readyz/linearizable_read`). etcd lists the checks in Go map order,
 *   which varies; here they come in the order above, one of the orders etcd prints.
 * - `GET /version` (client port only): `{"etcdserver":"...","etcdcluster":"..."}`.
 *
 * Any other method is 405 with `Allow: GET`; any other path is left to the next handler (see
 * {@link composeHandlers}), in the end 404 as Go's `ServeMux` answers. On the client port every answer
 * carries the CORS headers etcd's default `--cors` adds.
 *
 * The handlers are functions of a {@link HealthMember}, a small view of the member; {@link
 * healthMemberOf} builds it for an {@link EtcdServer}.
 *
 * @module
 */
import type { HttpFallbackRequest, HttpFallbackResponse } from "../transport/grpc.ts";
import type { Clock } from "../clock.ts";
import type { Logger } from "../logger.ts";
import type { EtcdServer } from "../member/server.ts";
import { ETCD_VERSION } from "../member/server.ts";
import { alarmName } from "../member/alarms.ts";
import { NONE } from "../../raft/types.ts";
import { Errors } from "../errors.ts";

/** What the health endpoints know about their member. */
export interface HealthMember {
  /** Whether the member knows a leader. */
  leaderKnown(): boolean;
  /** The types of the cluster's active alarms, by name (`NOSPACE`, `CORRUPT`). */
  alarms(): string[];
  /** Whether the member is a learner. */
  isLearner(): boolean;
  /**
   * A keys-only read of at most one key, as etcd's checks make it: through Raft's ReadIndex, or from the
   * local state when `serializable`. Rejects when the member cannot serve it.
   */
  read(serializable: boolean): Promise<void>;
  /** The member's own version (`etcdserver` of `/version`). */
  readonly serverVersion: string;
  /** The cluster's version (`etcdcluster` of `/version`): "3.5.0", or `not_decided` before the leader set it. */
  readonly clusterVersion: string;
}

/** A plain HTTP handler that answers some paths, and `undefined` for the others. */
export type PartialHttpHandler = (req: HttpFallbackRequest) => Promise<HttpFallbackResponse | undefined>;

/** A plain HTTP handler that answers every request. */
export type HttpHandler = (req: HttpFallbackRequest) => Promise<HttpFallbackResponse>;

/** How long `/health` waits for its linearizable read, as etcd 3.4's one-second QGET. */
export const HEALTH_READ_TIMEOUT_MS = 1000;

/** Where the endpoints are served: the client port or a `--listen-metrics-urls` listener. */
export type HealthSurface = "client" | "metrics";

/** What {@link healthHandler} needs besides the member. */
export interface HealthOptions {
  surface: HealthSurface;
  /** Bounds the reads. */
  clock: Pick<Clock, "setTimeout" | "clearTimeout">;
  /** How long a `/livez` or `/readyz` read may take (etcd's request timeout). */
  requestTimeoutMs: number;
  /** How long `/health`'s read may take; default {@link HEALTH_READ_TIMEOUT_MS}. */
  healthReadTimeoutMs?: number;
  /** Failed checks are logged here as warnings, as etcd logs them. */
  logger?: Logger;
}

/** What etcd adds to every answer of its client port under its default `--cors` (any origin). */
const CORS: Record<string, string> = {
  "Access-Control-Allow-Headers": "accept, content-type, authorization",
  "Access-Control-Allow-Methods": "POST, GET, OPTIONS, PUT, DELETE",
  "Access-Control-Allow-Origin": "*",
};

const TEXT = "text/plain; charset=utf-8";

/** Go's `http.Error`: the message and a newline, as text the browser must not sniff. */
function goError(status: number, message: string, extra: Record<string, string>): HttpFallbackResponse {
  return {
    status,
    headers: { ...extra, "Content-Type": TEXT, "X-Content-Type-Options": "nosniff" },
    body: message + "\n",
  };
}

/** The headers every answer on `surface` carries. */
function baseHeaders(surface: HealthSurface): Record<string, string> {
  return surface === "client" ? { ...CORS } : {};
}

/** Go's `ServeMux` answer to a path nothing serves. */
export function notFound(surface: HealthSurface): HttpFallbackResponse {
  return goError(404, "404 page not found", baseHeaders(surface));
}

/**
 * One handler of several: the first that answers a request does; 404 (as etcd answers on `surface`) when
 * none does. Absent handlers are skipped.
 */
export function composeHandlers(
  surface: HealthSurface,
  handlers: (PartialHttpHandler | undefined)[],
): HttpHandler {
  const present = handlers.filter((h): h is PartialHttpHandler => h !== undefined);
  return async (req) => {
    for (const h of present) {
      const res = await h(req);
      if (res !== undefined) return res;
    }
    return notFound(surface);
  };
}

/** A named check of `/livez` or `/readyz`: resolves when it passes, rejects with the reason otherwise. */
interface Check {
  name: string;
  run(): Promise<void>;
}

/** Runs `read` with a deadline of `ms`: rejects with etcd's timeout error when it takes longer. */
function bounded(clock: HealthOptions["clock"], ms: number, read: () => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = clock.setTimeout(() => reject(Errors.timeout()), ms);
    let started: Promise<void>;
    try {
      started = read();
    } catch (err) {
      started = Promise.reject(err);
    }
    started.then(resolve, reject).finally(() => clock.clearTimeout(timer));
  });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Splits a request path into its path and its query parameters. */
function parse(req: HttpFallbackRequest): { path: string; query: URLSearchParams } {
  const q = req.path.indexOf("?");
  return q < 0
    ? { path: req.path, query: new URLSearchParams() }
    : { path: req.path.slice(0, q), query: new URLSearchParams(req.path.slice(q + 1)) };
}

/**
 * The health endpoints of `member` (and `/version` on the client port). Answers `undefined` for the paths
 * it does not serve.
 */
export function healthHandler(member: HealthMember, options: HealthOptions): PartialHttpHandler {
  const { surface, clock, logger } = options;
  const healthReadMs = options.healthReadTimeoutMs ?? HEALTH_READ_TIMEOUT_MS;
  const base = baseHeaders(surface);

  const read = (serializable: boolean, ms: number) => bounded(clock, ms, () => member.read(serializable));

  const livez: Check[] = [{ name: "serializable_read", run: () => read(true, options.requestTimeoutMs) }];
  const readyz: Check[] = [
    {
      name: "data_corruption",
      run: () =>
        member.alarms().includes("CORRUPT")
          ? Promise.reject(new Error("alarm activated: CORRUPT"))
          : Promise.resolve(),
    },
    { name: "serializable_read", run: () => read(true, options.requestTimeoutMs) },
    { name: "linearizable_read", run: () => read(false, options.requestTimeoutMs) },
    {
      name: "non_learner",
      run: () =>
        member.isLearner() ? Promise.reject(new Error("not supported for learner")) : Promise.resolve(),
    },
  ];

  /** etcd 3.4's /health: alarms, then the leader, then a read. */
  async function health(query: URLSearchParams): Promise<HttpFallbackResponse> {
    const excluded = new Set(query.getAll("exclude").filter((a) => a !== ""));
    const serializable = query.get("serializable") === "true";
    const reason = await unhealthy(excluded, serializable);
    if (reason === undefined) {
      return { status: 200, headers: { ...base, "Content-Type": TEXT }, body: '{"health":"true"}' };
    }
    logger?.warn("serving /health false", { reason });
    return goError(503, '{"health":"false"}', base);
  }

  async function unhealthy(excluded: Set<string>, serializable: boolean): Promise<string | undefined> {
    const alarm = member.alarms().find((a) => !excluded.has(a));
    if (alarm !== undefined) return `ALARM ${alarm}`;
    if (!serializable && !member.leaderKnown()) return "RAFT NO LEADER";
    try {
      await read(serializable, healthReadMs);
    } catch (err) {
      return `RANGE ERROR:${messageOf(err)}`;
    }
    return undefined;
  }

  /** etcd 3.5's /livez and /readyz: run the checks in turn, list them with `?verbose`. */
  async function runChecks(
    path: string,
    checks: Check[],
    query: URLSearchParams,
  ): Promise<HttpFallbackResponse> {
    let failed = false;
    let lines = "";
    for (const check of checks) {
      try {
        await check.run();
        lines += `[+]${check.name} ok\n`;
      } catch (err) {
        failed = true;
        lines += `[-]${check.name} failed: ${messageOf(err)}\n`;
      }
    }
    if (failed) {
      logger?.warn("health check error", { path, reason: lines });
      return goError(503, lines, base);
    }
    return {
      status: 200,
      headers: { ...base, "Content-Type": TEXT, "X-Content-Type-Options": "nosniff" },
      body: (query.has("verbose") ? lines : "") + "ok\n",
    };
  }

  /** The checks `path` runs: a registry's root (less `?exclude=`d ones) or one check's own path. */
  function checksOf(path: string, query: URLSearchParams): Check[] | undefined {
    for (const [root, checks] of [["/livez", livez], ["/readyz", readyz]] as const) {
      if (path === root) {
        const excluded = new Set(query.getAll("exclude"));
        return checks.filter((c) => !excluded.has(c.name));
      }
      const one = checks.find((c) => path === `${root}/${c.name}`);
      if (one !== undefined) return [one];
    }
    return undefined;
  }

  // the cluster version changes when the leader decides it: read at every request
  const versionBody = () =>
    JSON.stringify({
      etcdserver: member.serverVersion,
      etcdcluster: member.clusterVersion,
    });

  return async (req) => {
    const { path, query } = parse(req);
    const checks = checksOf(path, query);
    const served = path === "/health" || (path === "/version" && surface === "client") ||
      checks !== undefined;
    if (!served) return undefined;
    if (req.method !== "GET") return goError(405, "Method Not Allowed", { ...base, Allow: "GET" });
    if (path === "/health") return await health(query);
    if (checks !== undefined) return await runChecks(path, checks, query);
    return { status: 200, headers: { ...base, "Content-Type": "application/json" }, body: versionBody() };
  };
}

/** The {@link HealthMember} of a running member. */
export function healthMemberOf(server: EtcdServer): HealthMember {
  let stopped = false;
  void server.stopNotify.then(() => stopped = true);
  return {
    leaderKnown: () => server.driver.lead !== NONE,
    alarms: () => {
      const names = server.alarms.get().map((a) => alarmName(a.alarm));
      // a full disk is this member's NOSPACE, even before (or without) an alarm through Raft
      if (server.driver.noSpace && !names.includes("NOSPACE")) names.push("NOSPACE");
      return names;
    },
    isLearner: () => server.isLearner(),
    async read(serializable) {
      // a member that stopped itself, or whose Raft loop failed, serves nothing any more
      if (stopped) throw Errors.stopped();
      const failure = server.driver.fatalError;
      if (failure !== undefined) throw failure;
      await server.range({
        key: new Uint8Array(0),
        rangeEnd: new Uint8Array(0),
        limit: 1,
        revision: 0,
        sortOrder: 0,
        sortTarget: 0,
        serializable,
        keysOnly: true,
        countOnly: false,
        minModRevision: 0,
        maxModRevision: 0,
        minCreateRevision: 0,
        maxCreateRevision: 0,
      });
    },
    serverVersion: ETCD_VERSION,
    get clusterVersion() {
      return server.clusterVersion;
    },
  };
}
