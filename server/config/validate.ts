/**
 * Validation of a {@link Config}, in etcd's words: etcd's `Config.Validate`, then the bootstrap checks of a
 * member without data. Used on every Config, whether parsed from the command line or built in code.
 *
 * @module
 */
import { LOG_LEVELS } from "../logger.ts";
import { loadFlag, sameValue } from "./flag_kinds.ts";
import { FLAGS } from "./flags.ts";
import { type Config, ConfigError, defaultConfig } from "./types.ts";
import { NOT_YET_IMPLEMENTED, REFUSED_IN_A_CONFIG } from "./unimplemented.ts";
import { TLS12_CIPHER_SUITES, UNSUPPORTED_CIPHER_SUITES } from "./cipher_suites.ts";
import { compareStrings, formatUrl, initialClusterString, parseDurationMs, reason } from "./values.ts";

const MAX_ELECTION_MS = 50_000;

/** etcd's error for an explicit `--listen-client-urls` without `--advertise-client-urls`. */
export const UNSET_ADVERTISE_CLIENT_URLS =
  "--advertise-client-urls is required when --listen-client-urls is set explicitly";

function invalid(message: string, flag?: string): never {
  throw new ConfigError(message, flag);
}

function isIp(host: string): boolean {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) return host.split(".").every((p) => Number(p) <= 255);
  return host.includes(":") && /^[0-9a-fA-F:.]+$/.test(host);
}

function checkUrls(flag: string, list: URL[], kind: "bind" | "advertise"): void {
  if (!Array.isArray(list)) invalid(`--${flag} must be a list of URLs`, flag);
  for (const u of list) {
    if (!(u instanceof URL)) invalid(`--${flag} must be a list of URLs, got ${JSON.stringify(u)}`, flag);
    const s = formatUrl(u);
    const scheme = u.protocol.slice(0, -1);
    if (scheme === "unix" || scheme === "unixs") continue;
    if (scheme !== "http" && scheme !== "https") {
      invalid(`URL scheme must be http, https, unix, or unixs: ${s} (--${flag})`, flag);
    }
    if (u.pathname !== "/" && u.pathname !== "") {
      invalid(`URL must not contain a path: ${s} (--${flag})`, flag);
    }
    const host = u.hostname.replace(/^\[|\]$/g, "");
    if (kind === "bind") {
      if (host !== "localhost" && !isIp(host)) {
        invalid(`expected IP in URL for binding (${s}) (--${flag})`, flag);
      }
    } else if (host === "") {
      const all = list.map(formatUrl).join(",");
      invalid(`--${flag} ${JSON.stringify(all)} must be "host:port" (unexpected empty host (${s}))`, flag);
    }
  }
}

function checkInteger(flag: string, v: number, min: number): void {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    invalid(`--${flag} must be an integer (set to ${v})`, flag);
  }
  if (v < min) invalid(`--${flag} must be ${min === 1 ? ">0" : `>=${min}`} (set to ${v})`, flag);
}

function checkDuration(flag: string, v: number, min: number): void {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min) {
    invalid(`--${flag} must be ${min > 0 ? ">0" : ">=0"} (set to ${v}ms)`, flag);
  }
}

/** Go's %q of a []string: ["a" "b"]. */
function goQuoteList(list: string[]): string {
  return `[${list.map((s) => JSON.stringify(s)).join(" ")}]`;
}

/**
 * Checks a configuration the way etcd does before it starts a member (etcd's `Config.Validate`, then the
 * bootstrap checks of a member without data: its name in `--initial-cluster`, its advertised peer URLs
 * matching that entry, no URL used twice). Throws {@link ConfigError} with a one-line message in etcd's
 * wording, followed by the flag in parentheses where etcd's text does not name it.
 */
export function validateConfig(c: Config, unimplemented: ReadonlySet<string> = NOT_YET_IMPLEMENTED): void {
  // Logging first, as etcd sets up its logger before anything else.
  if (!(LOG_LEVELS as readonly string[]).includes(c.logLevel)) {
    invalid(`unrecognized level: ${JSON.stringify(c.logLevel)} (--log-level)`, "log-level");
  }
  if (!Array.isArray(c.logOutputs) || c.logOutputs.length === 0) {
    invalid("--log-outputs must name at least one output", "log-outputs");
  }
  if (c.logOutputs.length > 1 && c.logOutputs.includes("default")) {
    invalid(`multi logoutput for "default" is not supported yet (--log-outputs)`, "log-outputs");
  }
  if (c.logOutputs.includes("systemd/journal")) {
    invalid("--log-outputs=systemd/journal is not supported by etcd-ts", "log-outputs");
  }

  checkUrls("listen-peer-urls", c.listenPeerUrls, "bind");
  checkUrls("listen-client-urls", c.listenClientUrls, "bind");
  checkUrls("listen-metrics-urls", c.listenMetricsUrls, "bind");
  checkUrls("initial-advertise-peer-urls", c.initialAdvertisePeerUrls, "advertise");
  checkUrls("advertise-client-urls", c.advertiseClientUrls, "advertise");
  if (!(c.initialCluster instanceof Map)) {
    invalid("--initial-cluster must be a Map of member names to URLs", "initial-cluster");
  }
  for (const [, list] of c.initialCluster) checkUrls("initial-cluster", list, "advertise");

  if (c.initialClusterState !== "new" && c.initialClusterState !== "existing") {
    invalid(
      `unexpected clusterState ${JSON.stringify(c.initialClusterState)} (--initial-cluster-state)`,
      "initial-cluster-state",
    );
  }
  const bootstrapSources = [c.discovery !== "", c.initialCluster.size > 0, c.discoverySrv !== ""];
  if (bootstrapSources.filter(Boolean).length > 1) {
    invalid(
      'multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or "discovery-srv"',
      "discovery",
    );
  }

  checkInteger("heartbeat-interval", c.heartbeatIntervalMs, 0);
  checkInteger("election-timeout", c.electionTimeoutMs, 0);
  if (c.heartbeatIntervalMs === 0) {
    invalid(`--heartbeat-interval must be >0 (set to ${c.heartbeatIntervalMs}ms)`, "heartbeat-interval");
  }
  if (c.electionTimeoutMs === 0) {
    invalid(`--election-timeout must be >0 (set to ${c.electionTimeoutMs}ms)`, "election-timeout");
  }
  if (5 * c.heartbeatIntervalMs > c.electionTimeoutMs) {
    invalid(
      `--election-timeout[${c.electionTimeoutMs}ms] should be at least as 5 times as ` +
        `--heartbeat-interval[${c.heartbeatIntervalMs}ms]`,
      "election-timeout",
    );
  }
  if (c.electionTimeoutMs > MAX_ELECTION_MS) {
    invalid(
      `--election-timeout[${c.electionTimeoutMs}ms] is too long, ` +
        `and should be set less than ${MAX_ELECTION_MS}ms`,
      "election-timeout",
    );
  }
  if (c.listenClientUrls.length > 0 && c.advertiseClientUrls.length === 0) {
    invalid(UNSET_ADVERTISE_CLIENT_URLS, "advertise-client-urls");
  }
  if (c.autoCompactionMode !== "periodic" && c.autoCompactionMode !== "revision") {
    invalid(`unknown auto-compaction-mode ${JSON.stringify(c.autoCompactionMode)}`, "auto-compaction-mode");
  }
  const retention = c.autoCompactionRetention === "" ? "0" : c.autoCompactionRetention;
  if (!/^\+?[0-9]+$/.test(retention)) {
    try {
      parseDurationMs(retention);
    } catch (err) {
      invalid(
        `error parsing CompactionRetention: ${reason(err)} (--auto-compaction-retention)`,
        "auto-compaction-retention",
      );
    }
  }

  // Numbers etcd's unsigned flags cannot even express wrongly, and a few it accepts but cannot work with.
  checkInteger("snapshot-count", c.snapshotCount, 1);
  checkInteger("max-request-bytes", c.maxRequestBytes, 1);
  checkInteger("max-txn-ops", c.maxTxnOps, 1);
  checkInteger("max-snapshots", c.maxSnapshots, 0);
  checkInteger("max-wals", c.maxWals, 0);
  checkInteger("quota-backend-bytes", c.quotaBackendBytes, Number.MIN_SAFE_INTEGER);
  checkDuration("grpc-keepalive-min-time", c.grpcKeepAliveMinTimeMs, 0);
  checkDuration("grpc-keepalive-interval", c.grpcKeepAliveIntervalMs, 0);
  checkDuration("grpc-keepalive-timeout", c.grpcKeepAliveTimeoutMs, 0);
  checkDuration(
    "experimental-watch-progress-notify-interval",
    c.experimentalWatchProgressNotifyIntervalMs,
    1e-6,
  );
  if (c.metrics !== "basic" && c.metrics !== "extensive") {
    invalid(`--metrics must be "basic" or "extensive" (set to ${JSON.stringify(c.metrics)})`, "metrics");
  }
  if (c.discoveryFallback !== "proxy" && c.discoveryFallback !== "exit") {
    invalid(
      `--discovery-fallback must be "proxy" or "exit" (set to ${JSON.stringify(c.discoveryFallback)})`,
      "discovery-fallback",
    );
  }

  checkTls(c);

  // Settings with a Config field whose feature is not there yet.
  const defaults = defaultConfig();
  for (const f of FLAGS) {
    if (!unimplemented.has(f.name) || !REFUSED_IN_A_CONFIG.has(f.name)) continue;
    const value = loadFlag(c, f);
    if (value !== undefined && !sameValue(value, loadFlag(defaults, f)!)) {
      invalid(`--${f.name} is not implemented yet`, f.name);
    }
  }

  verifyBootstrap(c);
}

const TLS_VERSIONS = ["TLS1.2", "TLS1.3"];

/** The TLS settings: versions, cipher suites, files given in pairs, https URLs with something to serve. */
function checkTls(c: Config): void {
  for (const [flag, v] of [["tls-min-version", c.tlsMinVersion], ["tls-max-version", c.tlsMaxVersion]]) {
    if (v === "" && flag === "tls-max-version") continue;
    if (!TLS_VERSIONS.includes(v)) {
      invalid(`unexpected TLS version ${JSON.stringify(v)} (must be one of: TLS1.2, TLS1.3)`, flag);
    }
  }
  if (
    c.tlsMaxVersion !== "" && TLS_VERSIONS.indexOf(c.tlsMinVersion) > TLS_VERSIONS.indexOf(c.tlsMaxVersion)
  ) {
    invalid(
      `min version (${c.tlsMinVersion}) is greater than max version (${c.tlsMaxVersion})`,
      "tls-min-version",
    );
  }
  const suites = c.cipherSuites.split(",").map((x) => x.trim()).filter((x) => x !== "");
  if (suites.length > 0 && c.tlsMinVersion === "TLS1.3") {
    invalid("cipher suites cannot be configured when only TLS1.3 is enabled", "cipher-suites");
  }
  for (const name of suites) {
    if (TLS12_CIPHER_SUITES.has(name)) continue;
    if (UNSUPPORTED_CIPHER_SUITES.has(name)) {
      invalid(
        `TLS cipher suite ${JSON.stringify(name)} is not supported by etcd-ts (supported: ${
          [...TLS12_CIPHER_SUITES.keys()].join(", ")
        })`,
        "cipher-suites",
      );
    }
    invalid(`unexpected TLS cipher suite ${JSON.stringify(name)}`, "cipher-suites");
  }
  checkInteger("self-signed-cert-validity", c.selfSignedCertValidity, 0); // 0 means 1, as in etcd
  for (const [side, t] of [["", c.clientTls], ["peer-", c.peerTls]] as const) {
    if ((t.certFile === "") !== (t.keyFile === "")) {
      invalid(`--${side}cert-file and --${side}key-file must be given together`, `${side}cert-file`);
    }
    if ((t.clientCertFile === "") !== (t.clientKeyFile === "")) {
      invalid(
        `--${side}client-cert-file and --${side}client-key-file must be given together`,
        `${side}client-cert-file`,
      );
    }
  }
  const serves = (t: Config["clientTls"]): boolean => t.certFile !== "" || t.autoTls;
  for (const u of c.listenClientUrls) {
    if (u.protocol === "https:" && !serves(c.clientTls)) {
      invalid(
        `TLS key/cert (--cert-file, --key-file) must be provided for client url ${
          formatUrl(u)
        } with HTTPS scheme`,
        "cert-file",
      );
    }
  }
  for (const u of c.listenPeerUrls) {
    if (u.protocol === "https:" && !serves(c.peerTls)) {
      invalid(
        `TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url ${
          formatUrl(u)
        } with HTTPS scheme`,
        "peer-cert-file",
      );
    }
  }
  for (
    const [flag, list] of [["listen-client-urls", c.listenClientUrls], [
      "listen-peer-urls",
      c.listenPeerUrls,
    ]] as const
  ) {
    for (const u of list) {
      if (u.protocol === "unixs:") {
        invalid(`unixs URLs are not supported by etcd-ts: ${formatUrl(u)} (--${flag})`, flag);
      }
    }
  }
}

/** etcd's bootstrap checks (`VerifyBootstrap` / `VerifyJoinExisting`) for a member started from flags. */
function verifyBootstrap(c: Config): void {
  const discovering = c.discovery !== "" || c.discoverySrv !== "";
  if (c.initialClusterState === "new" && discovering) return; // the member list comes from discovery
  const mine = c.initialCluster.get(c.name);
  if (!mine) {
    invalid(
      `couldn't find local name ${
        JSON.stringify(c.name)
      } in the initial cluster configuration (--initial-cluster)`,
      "initial-cluster",
    );
  }
  if (c.initialClusterState === "new") advertiseMatchesCluster(c, mine);
  const seen = new Set<string>();
  for (const [, list] of c.initialCluster) {
    for (const u of list) {
      const s = formatUrl(u);
      if (seen.has(s)) {
        invalid(
          `initial cluster ${initialClusterString(c.initialCluster)} has duplicate url`,
          "initial-cluster",
        );
      }
      seen.add(s);
    }
  }
  if (c.initialClusterState === "existing" && c.discovery !== "") {
    invalid("discovery URL should not be set when joining existing initial cluster", "discovery");
  }
}

/**
 * The member's `--initial-advertise-peer-urls` must be exactly its `--initial-cluster` entry. etcd also
 * resolves DNS names before giving up; etcd-ts compares the URLs as written (etcd never resolves
 * "localhost", and IP literals resolve to themselves).
 */
function advertiseMatchesCluster(c: Config, mine: URL[]): void {
  const cluster = mine.map(formatUrl).sort(compareStrings);
  const advertised = c.initialAdvertisePeerUrls.map(formatUrl).sort(compareStrings);
  let detail: string;
  if (cluster.length !== advertised.length) {
    detail = `len(${goQuoteList(advertised)}) != len(${goQuoteList(cluster)})`;
  } else {
    const i = cluster.findIndex((u, k) => u !== advertised[k]);
    if (i < 0) return;
    detail = `resolved urls: ${JSON.stringify(advertised[i])} != ${JSON.stringify(cluster[i])}`;
  }
  const clusterSet = new Set(cluster);
  const advertisedSet = new Set(advertised);
  const missingFromAdvertised = cluster.filter((u) => !advertisedSet.has(u));
  if (missingFromAdvertised.length > 0) {
    invalid(
      `--initial-cluster has ${
        missingFromAdvertised.map((u) => `${c.name}=${u}`).join(",")
      } but missing from ` +
        `--initial-advertise-peer-urls=${advertised.join(",")} (${detail})`,
      "initial-advertise-peer-urls",
    );
  }
  const missingFromCluster = advertised.filter((u) => !clusterSet.has(u));
  const mineString = advertised.map((u) => `${c.name}=${u}`).join(",");
  if (missingFromCluster.length > 0) {
    invalid(
      `--initial-advertise-peer-urls has ${
        missingFromCluster.join(",")
      } but missing from --initial-cluster=${mineString}`,
      "initial-advertise-peer-urls",
    );
  }
  invalid(
    `failed to resolve ${advertised.join(",")} to match --initial-cluster=${mineString} (${detail})`,
    "initial-advertise-peer-urls",
  );
}
