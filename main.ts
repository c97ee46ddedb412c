/**
 * The etcd-ts executable: etcd's flags, ETCD_* variables or a config file → Config → a running member.
 *
 * @module
 */
import { parseCommandLine } from "./server/config/mod.ts";
import { createLogger } from "./server/logger.ts";
import { ETCD_VERSION, MemberRemovedError, startEtcd } from "./mod.ts";

/** etcd-ts's own release. */
export const VERSION = "0.1.0";

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
  const env = Deno.env.toObject();
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
  const logger = createLogger({ level: config.logLevel, outputs: config.logOutputs });
  for (const w of parsed.warnings) logger.warn(w);
  let etcd;
  try {
    etcd = await startEtcd(config, { logger });
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
  const onSignal = (signal: Deno.Signal) => () => {
    logger.info("received signal; shutting down", { signal });
    etcd.close().then(() => stopped.resolve(0), () => stopped.resolve(1));
  };
  Deno.addSignalListener("SIGINT", onSignal("SIGINT"));
  Deno.addSignalListener("SIGTERM", onSignal("SIGTERM"));
  // a member removed from its cluster stops, and the process ends, as etcd's does
  etcd.stopNotify.then((reason) => {
    logger.warn("stopping", { reason });
    logger.warn("the data-dir used by this member must be removed", { "data-dir": config.dataDir });
    etcd.close().then(() => stopped.resolve(0), () => stopped.resolve(1));
  });
  return await stopped.promise;
}

if (import.meta.main) Deno.exit(await main());
