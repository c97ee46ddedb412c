/**
 * Validation of a {@link Config}, in etcd's words: etcd's `Config.Validate`, then the bootstrap checks of a
 * member without data. Used on every Config, whether parsed from the command line or built in code.
 *
 * @module
 */
import { LOG_LEVELS } from "../logger.ts";
import { checkRotationOutputs, parseLogRotationConfig } from "../log_rotation.ts";
import { loadFlag, sameValue } from "./flag_kinds.ts";
import { FLAGS } from "./flags.ts";
import { type Config, ConfigError, defaultConfig, type TlsConfig, type TlsVersion } from "./types.ts";
import { NOT_YET_IMPLEMENTED, REFUSED_IN_A_CONFIG } from "./unimplemented.ts";
import { TLS12_CIPHER_SUITES, TLS13_CIPHER_SUITES, UNSUPPORTED_CIPHER_SUITES } from "./cipher_suites.ts";
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
 *
 * @returns the warnings etcd logs about an accepted configuration ({@link tlsWarnings}), for the caller
 * to log; `parseCommandLine` does not add them to its own warnings.
 */
export function validateConfig(
  c: Config,
  unimplemented: ReadonlySet<string> = NOT_YET_IMPLEMENTED,
): string[] {
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
  if (c.enableLogRotation) {
    try {
      checkRotationOutputs(c.logOutputs);
    } catch (err) {
      invalid((err as Error).message, "log-outputs");
    }
    try {
      parseLogRotationConfig(c.logRotationConfigJson);
    } catch (err) {
      invalid((err as Error).message, "log-rotation-config-json");
    }
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
  const bootstrapSources = [
    c.discovery !== "",
    c.initialCluster.size > 0,
    c.discoverySrv !== "",
    c.discoveryEndpoints.length > 0,
  ];
  if (bootstrapSources.filter(Boolean).length > 1) {
    invalid(
      "multiple discovery or bootstrap flags are set. " +
        'Choose one of "initial-cluster", "discovery", "discovery-endpoints" or "discovery-srv"',
      "discovery",
    );
  }
  checkV3Discovery(c);

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
  checkDuration("busy-poll-duration", c.busyPollMs, 0);
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
  return tlsWarnings(c);
}

const TLS_VERSIONS: readonly string[] = ["TLS1.2", "TLS1.3"] satisfies readonly TlsVersion[];

/** etcd's `GetTLSVersion` error. */
function unexpectedTlsVersion(v: unknown, flag: string): never {
  invalid(`unexpected TLS version ${JSON.stringify(v)} (must be one of: ${TLS_VERSIONS.join(", ")})`, flag);
}

/** The TLS 1.2 suites etcd-ts has, without the aliases, for messages. */
function supportedSuites(): string {
  return [...TLS12_CIPHER_SUITES.keys()].filter((n) => !/_POLY1305$/.test(n)).join(", ");
}

/** etcd's `updateCipherSuites` for one name, plus the names etcd knows that etcd-ts has no use for. */
function checkCipherSuite(name: unknown): void {
  if (typeof name !== "string") invalid("--cipher-suites must be a list of strings", "cipher-suites");
  if (TLS12_CIPHER_SUITES.has(name)) return;
  if (UNSUPPORTED_CIPHER_SUITES.has(name)) {
    invalid(
      `TLS cipher suite ${JSON.stringify(name)} is not supported by etcd-ts, whose TLS stack has only ` +
        `these TLS 1.2 suites: ${supportedSuites()} (--cipher-suites)`,
      "cipher-suites",
    );
  }
  if (TLS13_CIPHER_SUITES.has(name)) {
    invalid(
      `TLS cipher suite ${JSON.stringify(name)} is a TLS 1.3 suite; TLS 1.3 suites are always enabled and ` +
        `cannot be configured, --cipher-suites takes TLS 1.2 suites: ${supportedSuites()}`,
      "cipher-suites",
    );
  }
  invalid(`unexpected TLS cipher suite ${JSON.stringify(name)}`, "cipher-suites");
}

const isSecure = (u: URL): boolean => u.protocol === "https:" || u.protocol === "unixs:";
/** A side has certificate files when either file is named (etcd's `!TLSInfo.Empty()`). */
const hasFiles = (t: TlsConfig): boolean => t.certFile !== "" || t.keyFile !== "";

/**
 * The TLS settings, in the order etcd meets them: versions and suites (`Config.Validate`), suite names
 * (`updateCipherSuites`), the auto-TLS validity (`SelfCert`), certificate and key given in pairs
 * (`TLSInfo.ServerConfig`), then the peer listeners before the client ones, each TLS URL needing files
 * or auto-TLS (`configurePeerListeners`, `configureClientListeners`).
 */
function checkTls(c: Config): void {
  if (!TLS_VERSIONS.includes(c.tlsMinVersion)) unexpectedTlsVersion(c.tlsMinVersion, "tls-min-version");
  if (c.tlsMaxVersion !== "" && !TLS_VERSIONS.includes(c.tlsMaxVersion)) {
    unexpectedTlsVersion(c.tlsMaxVersion, "tls-max-version");
  }
  // "" is the newest version the TLS stack has.
  if (
    c.tlsMaxVersion !== "" && TLS_VERSIONS.indexOf(c.tlsMinVersion) > TLS_VERSIONS.indexOf(c.tlsMaxVersion)
  ) {
    invalid(
      `min version (${c.tlsMinVersion}) is greater than max version (${c.tlsMaxVersion})`,
      "tls-min-version",
    );
  }
  if (!Array.isArray(c.cipherSuites)) invalid("--cipher-suites must be a list of strings", "cipher-suites");
  if (c.tlsMinVersion === "TLS1.3" && c.cipherSuites.length > 0) {
    invalid("cipher suites cannot be configured when only TLS1.3 is enabled", "cipher-suites");
  }
  for (const name of c.cipherSuites) checkCipherSuite(name);

  // etcd refuses 0 only once it makes a certificate, etcd-ts always; a config file's 0 is raised to 1 by then.
  const years = c.selfSignedCertValidity;
  if (typeof years !== "number" || !Number.isInteger(years) || years < 1) {
    invalid(
      "selfSignedCertValidity is invalid,it should be greater than 0 (--self-signed-cert-validity)",
      "self-signed-cert-validity",
    );
  }

  for (const [p, t] of [["peer-", c.peerTls], ["", c.clientTls]] as const) {
    if ((t.certFile === "") !== (t.keyFile === "")) {
      invalid(
        `KeyFile and CertFile must both be present[key: ${t.keyFile}, cert: ${t.certFile}] ` +
          `(--${p}cert-file, --${p}key-file)`,
        t.certFile === "" ? `${p}cert-file` : `${p}key-file`,
      );
    }
    if ((t.clientCertFile === "") !== (t.clientKeyFile === "")) {
      invalid(
        "ClientKeyFile and ClientCertFile must both be present or both absent: " +
          `key: ${t.clientKeyFile}, cert: ${t.clientCertFile}] (--${p}client-cert-file, --${p}client-key-file)`,
        t.clientCertFile === "" ? `${p}client-cert-file` : `${p}client-key-file`,
      );
    }
  }

  for (const u of c.listenPeerUrls) {
    if (isSecure(u) && !hasFiles(c.peerTls) && !c.peerTls.autoTls) {
      // etcd names the address its listener is bound to; etcd-ts names it as written.
      const address = u.protocol === "unixs:" ? u.host + u.pathname : u.host;
      invalid(
        `cannot listen on TLS for ${address}: KeyFile and CertFile are not presented ` +
          "(--peer-cert-file, --peer-key-file)",
        "peer-cert-file",
      );
    }
  }
  for (const u of c.listenClientUrls) {
    if (isSecure(u) && !hasFiles(c.clientTls) && !c.clientTls.autoTls) {
      invalid(
        `TLS key/cert (--cert-file, --key-file) must be provided for client url ${
          formatUrl(u)
        } with HTTPS scheme`,
        "cert-file",
      );
    }
  }
  for (
    const [flag, list] of [["listen-peer-urls", c.listenPeerUrls], [
      "listen-client-urls",
      c.listenClientUrls,
    ]] as const
  ) {
    for (const u of list) {
      if (u.protocol === "unixs:") {
        invalid(`unixs URLs are not supported by etcd-ts: ${formatUrl(u)} (--${flag})`, flag);
      }
    }
  }
}

/**
 * What etcd warns about, without refusing it, when it sets up its listeners: certificate files next to
 * `--auto-tls` (the files win), and files or client-certificate authentication on a side's http (or unix)
 * URLs, which serve without TLS. One line each, in etcd's words, with the URL in parentheses; peers first.
 */
export function tlsWarnings(c: Config): string[] {
  const out: string[] = [];
  for (const side of ["peer", "client"] as const) {
    const t = side === "peer" ? c.peerTls : c.clientTls;
    const urls = side === "peer" ? c.listenPeerUrls : c.listenClientUrls;
    if (t.autoTls && hasFiles(t)) out.push(`ignoring ${side} auto TLS since certs given`);
    for (const u of urls) {
      if (isSecure(u)) continue;
      const where = `(${side}-url: ${formatUrl(u)})`;
      if (hasFiles(t)) {
        out.push(`scheme is HTTP while key and cert files are present; ignoring key and cert files ${where}`);
      }
      if (t.clientCertAuth) {
        const flag = side === "peer" ? "--peer-client-cert-auth" : "--client-cert-auth";
        out.push(`scheme is HTTP while ${flag} is enabled; ignoring client cert auth for this URL ${where}`);
      }
    }
  }
  return out;
}

/** The v3 discovery settings (etcd 3.6): a token and endpoints together, never beside v2 discovery's. */
function checkV3Discovery(c: Config): void {
  const v3 = c.discoveryEndpoints.length > 0 || c.discoveryToken !== "" || c.discoveryCert !== "" ||
    c.discoveryKey !== "" || c.discoveryCacert !== "" || c.discoveryUser !== "" || c.discoveryPassword !== "";
  if (v3 && (c.discovery !== "" || c.discoveryProxy !== "")) {
    invalid(
      "both v2 discovery settings (discovery, discovery-proxy) and v3 discovery settings (discovery-token, " +
        "discovery-endpoints, discovery-cert, discovery-key, discovery-cacert, discovery-user, " +
        "discovery-password) are set",
      "discovery-token",
    );
  }
  if ((c.discoveryToken !== "") !== (c.discoveryEndpoints.length > 0)) {
    invalid("both --discovery-token and --discovery-endpoints must be set", "discovery-token");
  }
  for (const e of c.discoveryEndpoints) {
    if (!/^(https?:\/\/)?[^/\s]+$/.test(e.replace(/\/$/, ""))) {
      invalid(
        `--discovery-endpoints: ${JSON.stringify(e)} is not a host:port or http(s) URL`,
        "discovery-endpoints",
      );
    }
  }
  checkDuration("discovery-dial-timeout", c.discoveryDialTimeoutMs, 0);
  checkDuration("discovery-request-timeout", c.discoveryRequestTimeoutMs, 0);
  checkDuration("discovery-keepalive-time", c.discoveryKeepAliveTimeMs, 0);
  checkDuration("discovery-keepalive-timeout", c.discoveryKeepAliveTimeoutMs, 0);
}

/** etcd's bootstrap checks (`VerifyBootstrap` / `VerifyJoinExisting`) for a member started from flags. */
function verifyBootstrap(c: Config): void {
  const discovering = c.discovery !== "" || c.discoverySrv !== "" || c.discoveryEndpoints.length > 0;
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
