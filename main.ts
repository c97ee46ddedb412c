/**
 * The etcd-ts executable: etcd's flags, ETCD_* variables or a config file -> Config -> a running member.
 *
 * @module
 */
import { parseCommandLine } from "./server/config/mod.ts";
import { createLogger } from "./server/logger.ts";
import { parseLogRotationConfig } from "./server/log_rotation.ts";
import { ETCD_VERSION, type FileSystem, MemberRemovedError, startEtcd } from "./mod.ts";
import { denoFs } from "./storage/fs.ts";
import { reexecWithIoPolling } from "./server/io_polling.ts";
import { applyMallocSettings, processMallocEnvironment } from "./server/memory/malloc_settings.ts";

/** etcd-ts's own release. */
export const VERSION = "0.1.0";

/**
 * The longest a graceful shutdown may take before the process exits anyway (non-zero): a leadership
 * hand-over is bounded by two election timeouts, open calls by the listeners' grace.
 */
const SHUTDOWN_TIMEOUT_MS = 30_000;

/** Whether a config file may be read: only then is the YAML library loaded. */
function mayReadConfigFile(args: string[], env: Record<string, string>): boolean {
  return env.ETCD_CONFIG_FILE !== undefined || args.some((a) => /^--?config-file(=|$)/.test(a));
}

async function main(): Promise<number> {
  if (Deno.args[0] === "snapshot") {
    // offline backup commands (etcdctl's/etcdutl's snapshot status and restore), loaded only when used
    const { snapshotCommand } = await import("./server/snapshot/cli.ts");
    const r = await snapshotCommand(Deno.args.slice(1));
    if (r.stdout) await Deno.stdout.write(new TextEncoder().encode(r.stdout));
    if (r.stderr) await Deno.stderr.write(new TextEncoder().encode(r.stderr));
    return r.code;
  }
  // ETCD_TS_FAILPOINTS is etcd-ts's own (see below), not one of etcd's ETCD_* settings
  const { ETCD_TS_FAILPOINTS: failpointSpec, ...env } = Deno.env.toObject();
  const parseYaml = mayReadConfigFile(Deno.args, env) ? (await import("yaml")).parse : undefined;
  const parsed = parseCommandLine(Deno.args, env, {
    version: VERSION,
    etcdVersion: ETCD_VERSION,
    readFile: (p) => Deno.readTextFileSync(p),
    parseYaml,
  });
  if (parsed.kind === "exit") {
    if (parsed.stdout) await Deno.stdout.write(new TextEncoder().encode(parsed.stdout));
    if (parsed.stderr) await Deno.stderr.write(new TextEncoder().encode(parsed.stderr));
    return parsed.code;
  }
  const { config } = parsed;
  // the event loop must poll the network after every turn (server/io_polling.ts): unless the variable
  // says so already, this process now becomes the same command with it set, and starts over; glibc's
  // one heap for all threads (server/memory/malloc_settings.ts) is set in the same step
  reexecWithIoPolling(processMallocEnvironment());
  // long-lived blocks of a megabyte and more in mappings of their own (server/memory/malloc_settings.ts)
  applyMallocSettings();
  // storage faults on purpose (etcd's gofail): only a member started with the variable loads the module
  // and gets the wrapped file system; every other member uses the real one, unchanged
  let failpoints: { fs: FileSystem; active: string } | undefined;
  if (failpointSpec) {
    const { FailpointSpecError, formatFailpoints, parseFailpoints, withFailpoints } = await import(
      "./storage/failpoints.ts"
    );
    try {
      const points = parseFailpoints(failpointSpec);
      failpoints = { fs: withFailpoints(denoFs, points), active: formatFailpoints(points) };
    } catch (err) {
      if (!(err instanceof FailpointSpecError)) throw err;
      await Deno.stderr.write(new TextEncoder().encode(err.message + "\n"));
      return 2;
    }
  }
  const logger = createLogger({
    level: config.logLevel,
    outputs: config.logOutputs,
    rotation: config.enableLogRotation ? parseLogRotationConfig(config.logRotationConfigJson) : undefined,
  });
  for (const w of parsed.warnings) logger.warn(w);
  if (failpoints?.active) {
    logger.warn("failpoints are enabled: storage faults will be injected", { failpoints: failpoints.active });
  }
  let etcd;
  try {
    etcd = await startEtcd(config, { logger, fs: failpoints?.fs });
  } catch (err) {
    if (err instanceof MemberRemovedError) {
      // as etcd: a removed member says so and ends without an error
      logger.warn("the data-dir used by this member must be removed", { "data-dir": config.dataDir });
      return 0;
    }
    logger.error("failed to start etcd", { error: err instanceof Error ? err.message : String(err) });
    return 1;
  }
  const stopped = Promise.withResolvers<number>();
  let shuttingDown = false;
  const onSignal = (signal: Deno.Signal) => () => {
    if (shuttingDown) {
      // a second signal: the operator does not want to wait
      logger.warn("received signal again; exiting at once", { signal });
      stopped.resolve(1);
      return;
    }
    shuttingDown = true;
    logger.info("received signal; shutting down", { signal });
    // graceful: stop accepting, let calls in flight end, hand leadership over, make the log durable
    const deadline = setTimeout(() => {
      logger.warn("graceful shutdown took too long; exiting", { "timeout-ms": SHUTDOWN_TIMEOUT_MS });
      stopped.resolve(1);
    }, SHUTDOWN_TIMEOUT_MS);
    etcd.close().then(() => stopped.resolve(0), () => stopped.resolve(1)).finally(() =>
      clearTimeout(deadline)
    );
  };
  Deno.addSignalListener("SIGINT", onSignal("SIGINT"));
  Deno.addSignalListener("SIGTERM", onSignal("SIGTERM"));
  // a member removed from its cluster stops, and the process ends, as etcd's does
  // a member whose storage failed cannot go on: it exits non-zero, and its supervisor's restart recovers
  // from the WAL (a full disk is not this: the member waits for space and goes on by itself)
  etcd.failedNotify.then((err) => {
    logger.error("the member cannot go on after a storage failure; exiting", { error: err.message });
    etcd.close().finally(() => stopped.resolve(1));
  });
  etcd.stopNotify.then((reason) => {
    logger.warn("stopping", { reason });
    logger.warn("the data-dir used by this member must be removed", { "data-dir": config.dataDir });
    etcd.close().then(() => stopped.resolve(0), () => stopped.resolve(1));
  });
  return await stopped.promise;
}

if (import.meta.main) Deno.exit(await main());
