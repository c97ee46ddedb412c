/**
 * Helpers of the configuration tests: parseCommandLine with a fixed clock, in-memory files and log files,
 * and etcd 3.5's list of flags to compare the table with.
 *
 * @module
 */
import { assert, assertEquals } from "../../tests/assert.ts";
import { parse as parseYaml } from "yaml";
import { parseCommandLine } from "./parse.ts";
import type { Config, ParseResult } from "./types.ts";
import { NOT_YET_IMPLEMENTED, SETTINGS_WITHOUT_EFFECT_YET } from "./unimplemented.ts";
import { formatUrl } from "./values.ts";

/** The clock of every parse, so that log lines compare as text. */
export const NOW = new Date("2026-11-25T04:00:00.000Z");

/**
 * The refused settings these parsing tests use: the server's set minus the settings that are parsed into
 * a Config but have no effect yet, so that their parsing is still exercised in every form (the last test
 * checks that the real set refuses them).
 */
const PARSED_ONLY = new Set(
  [...NOT_YET_IMPLEMENTED].filter((n) => !SETTINGS_WITHOUT_EFFECT_YET.includes(n)),
);

/** parseCommandLine with the test clock, PARSED_ONLY, the YAML parser and in-memory files and log files. */
export function parse(
  args: string[],
  env: Record<string, string> = {},
  files: Record<string, string> = {},
): ParseResult {
  return parseCommandLine(args, env, {
    version: "9.9.9",
    etcdVersion: "3.5.99",
    unimplemented: PARSED_ONLY,
    parseYaml,
    now: () => NOW,
    readFile: (path) => {
      if (path in files) return files[path];
      throw new Deno.errors.NotFound(`readfile '${path}'`);
    },
    openLogFile: (path) => {
      if (path.startsWith("/missing/")) throw new Deno.errors.NotFound(`open '${path}'`);
      if (path.startsWith("/etc/")) throw new Deno.errors.PermissionDenied(`open '${path}'`);
    },
  });
}

/** {@link parse} that must give a configuration to run. */
export function run(
  args: string[],
  env: Record<string, string> = {},
  files: Record<string, string> = {},
): { config: Config; warnings: string[] } {
  const r = parse(args, env, files);
  if (r.kind !== "run") throw new Error(`expected to run, got exit ${r.code}: ${r.stderr}`);
  return r;
}

/** {@link parse} that must give an exit. */
export function exit(
  args: string[],
  env: Record<string, string> = {},
  files: Record<string, string> = {},
): { code: number; stdout: string; stderr: string } {
  const r = parse(args, env, files);
  if (r.kind !== "exit") throw new Error(`expected to exit, got a config for ${r.config.name}`);
  return r;
}

/** The JSON log lines of an exit's stderr. */
export function logLines(stderr: string): Record<string, unknown>[] {
  return stderr.trim().split("\n").map((l) => JSON.parse(l));
}

/** The "failed to verify flags" error of an exit 1. */
export function verifyError(
  args: string[],
  env: Record<string, string> = {},
  files: Record<string, string> = {},
): string {
  const r = exit(args, env, files);
  assertEquals(r.code, 1, r.stderr);
  const line = logLines(r.stderr).find((l) => l.msg === "failed to verify flags");
  assert(line, `no "failed to verify flags" line in ${r.stderr}`);
  assertEquals(line.level, "warn");
  assertEquals(line.ts, NOW.toISOString());
  return line.error as string;
}

/** A Config with URLs and maps as plain strings, for deep comparison (URL objects compare equal otherwise). */
export function plain(c: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) {
    if (v instanceof Map) out[k] = Object.fromEntries([...v].map(([n, us]) => [n, us.map(formatUrl)]));
    else if (Array.isArray(v)) out[k] = v.map((x) => (x instanceof URL ? formatUrl(x) : x));
    else out[k] = v;
  }
  return out;
}

/** URLs as etcd writes them. */
export function urlsOf(list: URL[]): string[] {
  return list.map(formatUrl);
}

/** Every flag etcd 3.5.33's `etcd` command defines (server/etcdmain/config.go). */
export const ETCD_35_FLAGS = (
  "advertise-client-urls auth-token auth-token-ttl auto-compaction-mode auto-compaction-retention auto-tls " +
  "backend-batch-interval backend-batch-limit backend-bbolt-freelist-type bcrypt-cost cert-file cipher-suites " +
  "client-cert-allowed-hostname client-cert-auth client-cert-file client-crl-file client-key-file " +
  "cluster-active-size cluster-remove-delay cluster-sync-interval config config-file cors data-dir discovery " +
  "discovery-fallback discovery-proxy discovery-srv discovery-srv-name election-timeout enable-grpc-gateway " +
  "enable-log-rotation enable-pprof enable-v2 experimental-bootstrap-defrag-threshold-megabytes " +
  "experimental-compact-hash-check-enabled experimental-compact-hash-check-time " +
  "experimental-compaction-batch-limit experimental-compaction-sleep-interval experimental-corrupt-check-time " +
  "experimental-distributed-tracing-address experimental-distributed-tracing-instance-id " +
  "experimental-distributed-tracing-sampling-rate experimental-distributed-tracing-service-name " +
  "experimental-downgrade-check-time experimental-enable-distributed-tracing experimental-enable-lease-checkpoint " +
  "experimental-enable-lease-checkpoint-persist experimental-enable-v2v3 experimental-initial-corrupt-check " +
  "experimental-memory-mlock experimental-peer-skip-client-san-verification experimental-snapshot-catchup-entries " +
  "experimental-stop-grpc-service-on-defrag experimental-txn-mode-write-with-shared-buffer " +
  "experimental-warning-apply-duration experimental-watch-progress-notify-interval force force-new-cluster " +
  "grpc-keepalive-interval grpc-keepalive-min-time grpc-keepalive-timeout heartbeat-interval host-whitelist " +
  "initial-advertise-peer-urls initial-cluster initial-cluster-state initial-cluster-token " +
  "initial-election-tick-advance key-file listen-client-http-urls listen-client-urls listen-metrics-urls " +
  "listen-peer-urls log-level log-outputs log-rotation-config-json logger max-concurrent-streams " +
  "max-request-bytes max-result-buffer max-retry-attempts max-snapshots max-txn-ops max-wals metrics name " +
  "peer-auto-tls peer-cert-allowed-cn peer-cert-allowed-hostname peer-cert-file peer-client-cert-auth " +
  "peer-client-cert-file peer-client-key-file peer-crl-file peer-election-timeout peer-heartbeat-interval " +
  "peer-key-file peer-trusted-ca-file pre-vote proxy proxy-dial-timeout proxy-failure-wait proxy-read-timeout " +
  "proxy-refresh-interval proxy-write-timeout quota-backend-bytes raft-read-timeout raft-write-timeout " +
  "retry-interval self-signed-cert-validity snapshot snapshot-count socket-reuse-address socket-reuse-port " +
  "strict-reconfig-check test.coverprofile test.outputdir tls-max-version tls-min-version trusted-ca-file " +
  "unsafe-no-fsync v v2-deprecation version vv wal-dir"
).split(" ");

/** The v3 discovery flags etcd 3.6 added beside its v2 discovery ones (server/etcdmain/config.go). */
export const ETCD_36_DISCOVERY_FLAGS = (
  "discovery-token discovery-endpoints discovery-dial-timeout discovery-request-timeout " +
  "discovery-keepalive-time discovery-keepalive-timeout discovery-insecure-transport " +
  "discovery-insecure-skip-tls-verify discovery-cert discovery-key discovery-cacert discovery-user " +
  "discovery-password"
).split(" ");

/** etcd's default of a flag, as text (from the help output, which lists them). */
export function defaultText(name: string): string {
  const help = exit(["--help"]).stdout;
  const m = new RegExp(`^  --${name.replaceAll(".", "\\.")} '(.*)'$`, "m").exec(help);
  if (m) return m[1].replace("${name}", "default");
  return "true"; // ignored flags
}
