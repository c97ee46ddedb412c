/**
 * etcd-ts as a library: start an etcd member inside your own program, as etcd's `embed` package does.
 *
 * ```ts
 * import { defaultConfig, startEtcd } from "./mod.ts";
 * const config = defaultConfig();
 * config.dataDir = "/tmp/example.etcd";
 * const etcd = await startEtcd(config);
 * // ... clients talk to etcd.clientUrls ...
 * await etcd.close();
 * ```
 *
 * @module
 */
import { type Config, ConfigError, defaultConfig, formatUrl, validateConfig } from "./server/config/mod.ts";
import { createLogger, type Logger } from "./server/logger.ts";
import { EtcdServer } from "./server/member/server.ts";
import type { Clock } from "./server/clock.ts";
import type { FileSystem } from "./storage/fs.ts";
import { type GrpcListener, type GrpcTransport, type HttpFallbackRequest } from "./server/transport/grpc.ts";
import { listenTcp, serveDenoH2 } from "./server/transport/h2/transport.ts";
import { registerKv } from "./server/api/kv.ts";
import { registerCluster } from "./server/api/cluster.ts";
import { registerMaintenance } from "./server/api/maintenance.ts";
import { registerSnapshot } from "./server/api/snapshot.ts";
import { registerWatch } from "./server/api/watch.ts";
import { registerLease } from "./server/api/lease.ts";
import { registerLock } from "./server/api/lock.ts";
import { registerElection } from "./server/api/election.ts";
import { registerAuth } from "./server/api/auth.ts";
import { RequestAuth } from "./server/api/auth_checks.ts";
import { setUpTls } from "./server/tls/setup.ts";
import { LearnerAwareRouter } from "./server/api/learner.ts";
import { serveV2 } from "./server/v2/keys_api.ts";
import { v2ApiOf } from "./server/v2/member_api.ts";
import { composeHandlers, healthHandler, healthMemberOf, type HealthSurface } from "./server/http/health.ts";
import { accessControl, gatewayHandler } from "./server/http/gateway/mod.ts";
import { uiHandler } from "./server/http/ui/mod.ts";
import {
  type MetricsListener,
  startMetricsListener,
  startSecureMetricsListener,
} from "./server/http/metrics_listener.ts";
import { systemClock } from "./server/clock.ts";
import { processIoPollingAdvice } from "./server/io_polling.ts";
import { startBusyPoll } from "./server/busy_poll.ts";
import { glibcMallocTrim, IdleTrim } from "./server/memory/idle_trim.ts";
import { CorruptionChecks } from "./server/member/corruption.ts";
import { MemberMetrics } from "./server/metrics/member_metrics.ts";
import { metricsHandler as serveMetrics } from "./server/http/metrics.ts";

export type { Clock, Config, FileSystem, GrpcTransport, Logger };
export { ConfigError, defaultConfig, EtcdServer, validateConfig };
export { CLUSTER_VERSION, ETCD_VERSION } from "./server/member/server.ts";

/** grpc-go's allowance on top of --max-request-bytes for the rest of a request's envelope. */
const GRPC_OVERHEAD_BYTES = 512 * 1024;

/** The member stopped while starting: it was removed from its cluster (its data directory is spent). */
export class MemberRemovedError extends Error {
  readonly code = "MEMBER_REMOVED";
  constructor(reason: string) {
    super(reason);
    this.name = "MemberRemovedError";
  }
}

/** Things a caller may replace; production uses the defaults. */
export interface StartOptions {
  logger?: Logger;
  clock?: Clock;
  random?: () => number;
  /** The gRPC transport for cleartext client listeners. */
  transport?: GrpcTransport;
  /**
   * The file system of the data directory (WAL, snapshots, history file). Default: the real one; the
   * executable passes one with failpoints when `ETCD_TS_FAILPOINTS` is set (storage/failpoints.ts).
   */
  fs?: FileSystem;
}

/** A running member. */
export interface Etcd {
  readonly server: EtcdServer;
  /** The URLs the client listeners are bound to (with the real port when 0 was asked for). */
  readonly clientUrls: URL[];
  /** Stops serving, then stops Raft and closes the data files. */
  close(): Promise<void>;
  /**
   * Resolves with the reason when the member decides to stop (it was removed from the cluster); the
   * caller then closes it, as etcd's process exits.
   */
  readonly stopNotify: Promise<string>;
  /** Resolves when the member cannot go on (a failed write that is not retried): the process should exit. */
  readonly failedNotify: Promise<Error>;
}

/** Starts an etcd member from a validated configuration. */
export async function startEtcd(config: Config, options: StartOptions = {}): Promise<Etcd> {
  validateConfig(config);
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const ioPolling = processIoPollingAdvice();
  if (ioPolling !== undefined) logger.warn(ioPolling);
  // like etcd, fail on a busy client port before touching the data directory
  for (const url of config.listenClientUrls) {
    const { hostname, port } = listenAddress(url);
    if (port !== 0) listenTcp(hostname, port).close();
  }
  const clock = options.clock ?? systemClock;
  const tls = await setUpTls(config, { logger, clock });
  const refusals = (side: string) => (remote: string, reason: string): void =>
    logger.warn(`rejected connection on ${side} endpoint`, { "remote-addr": remote, error: reason });
  let server: EtcdServer;
  // what /metrics reports, in a registry of this member's own
  const metrics = new MemberMetrics({ level: config.metrics });
  try {
    server = await EtcdServer.start(config, {
      metrics,
      logger,
      clock,
      random: options.random,
      fs: options.fs,
      peerTls: tls.peer === undefined ? undefined : {
        credentials: tls.peer,
        checkPeerAddress: !config.peerSkipClientSanVerification,
        onRefused: refusals("peer"),
      },
    });
  } catch (err) {
    tls.close();
    throw err;
  }
  // other members ask this one for its key-space hash over the peer port (etcd's /members/hashkv)
  const corruption = new CorruptionChecks(server, config, logger);
  // a learner answers only what etcd lets learners answer
  const router = new LearnerAwareRouter(() => server.isLearner());
  router.observe(metrics.grpc);
  // every service checks its callers' permissions while auth is on
  const auth = new RequestAuth(server);
  registerKv(router, server, auth);
  registerCluster(router, server, auth);
  registerMaintenance(router, server, auth);
  registerSnapshot(router, server, auth);
  registerLease(router, server, auth);
  registerLock(router, server, (ctx) => auth.asCaller(server, ctx));
  registerElection(router, server, (ctx) => auth.asCaller(server, ctx));
  registerAuth(router, server);
  registerWatch(router, {
    hub: server.watchHub,
    header: (revision) => server.header(revision),
    progressNotifyIntervalMs: config.experimentalWatchProgressNotifyIntervalMs,
    maxRequestBytes: config.maxRequestBytes,
    clock: server.clock,
    auth: {
      get enabled() {
        return auth.enabled;
      },
      permit: (ctx, key, rangeEnd) => auth.watch(ctx, key, rangeEnd),
    },
  });
  // serve clients only once the member is part of a cluster with a leader, as etcd does; a member that
  // learns meanwhile that it was removed from the cluster stops instead
  try {
    const removed = server.stopNotify.then((reason) => new MemberRemovedError(reason));
    const outcome = await Promise.race([server.whenReady().then(() => undefined), removed]);
    if (outcome !== undefined) throw outcome;
    // --experimental-initial-corrupt-check: compare hashes with the peers before serving clients
    await corruption.initialCheck();
  } catch (err) {
    await server.close();
    tls.close();
    throw err;
  }
  corruption.start();
  // after a burst, a quiet member gives the memory it freed back to the system
  const mallocTrim = glibcMallocTrim();
  const idleTrim = mallocTrim === undefined ? undefined : new IdleTrim({
    trim: mallocTrim,
    activity: () => metrics.grpc.receivedTotal() + server.driver.appliedIndex,
    clock,
    logger,
  });
  idleTrim?.start();
  const transport = options.transport ?? serveDenoH2;
  // the v2 API etcd discovery needs, as etcd 3.4 serves it with --enable-v2
  const v2 = config.enableV2 ? v2ApiOf(server) : undefined;
  // plain HTTP: /health, /livez, /readyz (and /version on the client port) first, then the v2 API, else 404
  const healthMember = healthMemberOf(server);
  const health = (surface: HealthSurface) =>
    healthHandler(healthMember, {
      surface,
      clock: server.clock,
      requestTimeoutMs: server.requestTimeoutMs,
      logger,
    });
  const httpFallback = accessControl(
    composeHandlers("client", [
      health("client"),
      serveMetrics(metrics),
      config.enableUi ? uiHandler() : undefined,
      // etcd's JSON gateway (/v3/...), unless --enable-grpc-gateway=false
      gatewayHandler(router, { enabled: config.enableGrpcGateway }),
      v2 === undefined ? undefined : (req: HttpFallbackRequest) => serveV2(v2, req),
    ]),
    { cors: config.cors, hostWhitelist: config.hostWhitelist },
  );
  // after an answer, poll for the client's next request a little before sleeping (server/busy_poll.ts)
  const busyPoll = config.busyPollMs > 0 ? startBusyPoll(config.busyPollMs) : undefined;
  const listeners: GrpcListener[] = [];
  const metricsListeners: MetricsListener[] = [];
  const clientUrls: URL[] = [];
  try {
    for (const url of config.listenClientUrls) {
      const secure = url.protocol === "https:" && tls.client !== undefined;
      const listener = await transport(router, {
        ...listenAddress(url),
        maxReceiveMessageBytes: config.maxRequestBytes + GRPC_OVERHEAD_BYTES,
        httpFallback,
        clientActivity: busyPoll,
        ...(secure ? { secure: { credentials: tls.client!, onRefused: refusals("client") } } : {}),
      });
      listeners.push(listener);
      const bound = new URL(url.toString());
      bound.port = String(listener.port);
      clientUrls.push(bound);
      if (secure) {
        logger.info("serving client traffic securely", { address: `${url.hostname}:${listener.port}` });
      } else {
        logger.info("serving client traffic insecurely; this is strongly discouraged!", {
          address: `${url.hostname}:${listener.port}`,
        });
      }
    }
    // --listen-metrics-urls: the health endpoints on their own ports (https with the client TLS settings)
    for (const url of config.listenMetricsUrls) {
      const metricsHandler = composeHandlers("metrics", [health("metrics"), serveMetrics(metrics)]);
      const m = url.protocol === "https:"
        ? await startSecureMetricsListener(url, metricsHandler, {
          credentials: tls.client,
          transport,
          onRefused: refusals("client"),
        })
        : startMetricsListener(url, metricsHandler);
      metricsListeners.push(m);
      logger.info("serving metrics", { address: `${url.hostname}:${m.port}` });
    }
  } catch (err) {
    for (const l of listeners) await l.close();
    for (const m of metricsListeners) await m.close();
    corruption.stop();
    idleTrim?.stop();
    await server.close();
    tls.close();
    throw err;
  }
  logger.info("ready to serve client requests", { "client-urls": clientUrls.map(formatUrl).join(",") });
  let closing: Promise<void> | undefined;
  return {
    server,
    clientUrls,
    stopNotify: server.stopNotify,
    failedNotify: server.failedNotify,
    close(): Promise<void> {
      closing ??= (async () => {
        await Promise.all([...listeners.map((l) => l.close()), ...metricsListeners.map((m) => m.close())]);
        corruption.stop();
        idleTrim?.stop();
        await server.close();
        tls.close();
      })();
      return closing;
    },
  };
}

/** The host (without IPv6 brackets) and port a listen URL binds. */
function listenAddress(url: URL): { hostname: string; port: number } {
  return {
    hostname: url.hostname.replace(/^\[|\]$/g, ""),
    port: Number(url.port || (url.protocol === "https:" ? 443 : 80)),
  };
}
