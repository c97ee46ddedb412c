/**
 * The member's configuration: the {@link Config} type, etcd's defaults, validation, and the command line
 * shell around it — etcd 3.5's server flags (in the forms Go's `flag` package accepts), the matching
 * `ETCD_*` environment variables, and etcd's YAML configuration file (`--config-file`).
 *
 * ```ts
 * const options = { version: "0.1.0", etcdVersion: "3.5.0" };
 * const parsed = parseCommandLine(Deno.args, Deno.env.toObject(), options);
 * if (parsed.kind === "run") console.log(parsed.config.name);
 * ```
 *
 * @module
 */
import { formatLogLine, LOG_LEVELS, type LogLevel } from "../logger.ts";

// ---------------------------------------------------------------------------------------------------------
// Types and defaults

/** TLS settings of one side, clients or peers (etcd's `--cert-file` ... and `--peer-cert-file` ... flags). */
export interface TlsConfig {
  certFile: string;
  keyFile: string;
  trustedCaFile: string;
  clientCertAuth: boolean;
  autoTls: boolean;
  crlFile: string;
  /** Comma-separated common names a client certificate may carry ("" = any). */
  allowedCn: string;
  /** Comma-separated SAN host names a client certificate may carry ("" = any). */
  allowedHostname: string;
}

/** Everything a member needs to start; see {@link defaultConfig} for etcd's defaults. */
export interface Config {
  name: string;
  dataDir: string;
  /** "" means `<dataDir>/member/wal`. */
  walDir: string;
  listenClientUrls: URL[];
  advertiseClientUrls: URL[];
  listenPeerUrls: URL[];
  initialAdvertisePeerUrls: URL[];
  /** Member name → its peer URLs; empty when the cluster comes from discovery. */
  initialCluster: Map<string, URL[]>;
  initialClusterState: "new" | "existing";
  initialClusterToken: string;
  snapshotCount: number;
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  /** 0 means the default quota of 2 GiB; a negative value disables the quota. */
  quotaBackendBytes: number;
  maxRequestBytes: number;
  maxTxnOps: number;
  autoCompactionMode: "periodic" | "revision";
  autoCompactionRetention: string;
  clientTls: TlsConfig;
  peerTls: TlsConfig;
  discovery: string;
  discoverySrv: string;
  discoverySrvName: string;
  discoveryFallback: "proxy" | "exit";
  discoveryProxy: string;
  strictReconfigCheck: boolean;
  enableV2: boolean;
  logLevel: LogLevel;
  /** etcd's `--log-outputs`: `default`, `stderr`, `stdout` or file paths. */
  logOutputs: string[];
  experimentalWatchProgressNotifyIntervalMs: number;
  forceNewCluster: boolean;
  enablePprof: boolean;
  listenMetricsUrls: URL[];
  metrics: "basic" | "extensive";
  experimentalInitialCorruptCheck: boolean;
  maxSnapshots: number;
  maxWals: number;
  grpcKeepAliveMinTimeMs: number;
  grpcKeepAliveIntervalMs: number;
  grpcKeepAliveTimeoutMs: number;
}

/** A configuration etcd-ts refuses; the message is one line and names the flag at fault. */
export class ConfigError extends Error {
  readonly code = "CONFIG_ERROR";
  /** The flag at fault (without dashes), when one is. */
  readonly flag: string | undefined;
  constructor(message: string, flag?: string) {
    super(message);
    this.name = "ConfigError";
    this.flag = flag;
  }
}

/** What {@link parseCommandLine} decided: start with a configuration, or exit with output. */
export type ParseResult =
  | { kind: "run"; config: Config; warnings: string[] }
  | { kind: "exit"; code: number; stdout: string; stderr: string };

/** Options of {@link parseCommandLine}. */
export interface ParseOptions {
  /** etcd-ts's release, printed by `--version` as `etcd-ts Version`. */
  version: string;
  /**
   * The etcd release whose API etcd-ts speaks (what it reports to clients), printed by `--version` as
   * `etcd Version`, the line scripts read from `etcd --version`.
   */
  etcdVersion: string;
  /**
   * The settings that are refused when set to anything but etcd's default because the feature is not
   * there yet; defaults to {@link NOT_YET_IMPLEMENTED}. Parsing itself does not depend on it.
   */
  unimplemented?: ReadonlySet<string>;
  /**
   * Parses the YAML of a `--config-file`. Injected so that the YAML library is loaded only by programs
   * that read config files (it costs ~10 MB of memory); without it a config file is refused.
   */
  parseYaml?: (text: string) => unknown;
  /** Reads the `--config-file`; defaults to `Deno.readTextFileSync`. */
  readFile?: (path: string) => string;
  /**
   * Opens (creating it if missing) a log file named by `--log-outputs`, and closes it again: a file the
   * member could not log to is refused before it starts, as etcd does. Defaults to `Deno.openSync`.
   */
  openLogFile?: (path: string) => void;
  /** Clock for the timestamps of the JSON log lines printed on failure. */
  now?: () => Date;
}

const DEFAULT_NAME = "default";
const DEFAULT_LISTEN_PEER_URL = "http://localhost:2380";
const DEFAULT_LISTEN_CLIENT_URL = "http://localhost:2379";
const DEFAULT_INITIAL_CLUSTER = `${DEFAULT_NAME}=${DEFAULT_LISTEN_PEER_URL}`;
const DEFAULT_SNAPSHOT_COUNT = 100_000;
const DEFAULT_WATCH_PROGRESS_NOTIFY_MS = 10 * 60 * 1000;
const MAX_ELECTION_MS = 50_000;
const UNSET_ADVERTISE_CLIENT_URLS =
  "--advertise-client-urls is required when --listen-client-urls is set explicitly";

function emptyTls(): TlsConfig {
  return {
    certFile: "",
    keyFile: "",
    trustedCaFile: "",
    clientCertAuth: false,
    autoTls: false,
    crlFile: "",
    allowedCn: "",
    allowedHostname: "",
  };
}

/** etcd's defaults: the configuration of a plain `etcd` run with no flags. */
export function defaultConfig(): Config {
  return {
    name: DEFAULT_NAME,
    dataDir: `${DEFAULT_NAME}.etcd`,
    walDir: "",
    listenClientUrls: [new URL(DEFAULT_LISTEN_CLIENT_URL)],
    advertiseClientUrls: [new URL(DEFAULT_LISTEN_CLIENT_URL)],
    listenPeerUrls: [new URL(DEFAULT_LISTEN_PEER_URL)],
    initialAdvertisePeerUrls: [new URL(DEFAULT_LISTEN_PEER_URL)],
    initialCluster: new Map([[DEFAULT_NAME, [new URL(DEFAULT_LISTEN_PEER_URL)]]]),
    initialClusterState: "new",
    initialClusterToken: "etcd-cluster",
    snapshotCount: DEFAULT_SNAPSHOT_COUNT,
    heartbeatIntervalMs: 100,
    electionTimeoutMs: 1000,
    quotaBackendBytes: 0,
    maxRequestBytes: 1572864,
    maxTxnOps: 128,
    autoCompactionMode: "periodic",
    autoCompactionRetention: "0",
    clientTls: emptyTls(),
    peerTls: emptyTls(),
    discovery: "",
    discoverySrv: "",
    discoverySrvName: "",
    discoveryFallback: "proxy",
    discoveryProxy: "",
    strictReconfigCheck: true,
    enableV2: false,
    logLevel: "info",
    logOutputs: ["default"],
    experimentalWatchProgressNotifyIntervalMs: DEFAULT_WATCH_PROGRESS_NOTIFY_MS,
    forceNewCluster: false,
    enablePprof: false,
    listenMetricsUrls: [],
    metrics: "basic",
    experimentalInitialCorruptCheck: false,
    maxSnapshots: 5,
    maxWals: 5,
    grpcKeepAliveMinTimeMs: 5_000,
    grpcKeepAliveIntervalMs: 2 * 60 * 60 * 1000,
    grpcKeepAliveTimeoutMs: 20_000,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Values as Go parses them

/** A flag value Go's flag package would refuse; `reason` is the text after the colon in Go's message. */
class BadValue extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

function parseGoBool(s: string): boolean {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(s)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(s)) return false;
  throw new BadValue("parse error");
}

/** strconv.ParseUint/ParseInt with base 0 (so 0x1f, 0o17, 017, 0b101 and 1_000 work), as Go's flags do. */
function parseGoInteger(s: string, signed: boolean, bits: 32 | 64): number {
  let body = s;
  let negative = false;
  if (signed && (body.startsWith("+") || body.startsWith("-"))) {
    negative = body.startsWith("-");
    body = body.slice(1);
  }
  let digits: string;
  if (/^0[xX](_?[0-9a-fA-F])+$/.test(body)) digits = "0x" + body.slice(2);
  else if (/^0[bB](_?[01])+$/.test(body)) digits = "0b" + body.slice(2);
  else if (/^0[oO](_?[0-7])+$/.test(body)) digits = "0o" + body.slice(2);
  else if (/^0(_?[0-7])+$/.test(body)) digits = "0o" + body.slice(1);
  else if (/^(0|[1-9](_?[0-9])*)$/.test(body)) digits = body;
  else throw new BadValue("parse error");
  let v = BigInt(digits.replaceAll("_", ""));
  if (negative) v = -v;
  const max = signed ? (1n << BigInt(bits - 1)) - 1n : (1n << BigInt(bits)) - 1n;
  const min = signed ? -(1n << BigInt(bits - 1)) : 0n;
  if (v > max || v < min) throw new BadValue("value out of range");
  return Number(v);
}

const DURATION_UNITS_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go duration (`time.ParseDuration`: "1h30m", "250ms", "1.5s", "0") into milliseconds.
 * Throws an Error whose message is Go's (`time: invalid duration "x"`).
 */
export function parseDurationMs(text: string): number {
  const quoted = JSON.stringify(text);
  let s = text;
  let negative = false;
  if (s.startsWith("-") || s.startsWith("+")) {
    negative = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") throw new Error(`time: invalid duration ${quoted}`);
  let total = 0;
  while (s !== "") {
    const m = /^([0-9]*)(?:\.([0-9]*))?/.exec(s)!;
    const whole = m[1];
    const frac = m[2];
    if (whole === "" && (frac === undefined || frac === "")) {
      throw new Error(`time: invalid duration ${quoted}`);
    }
    s = s.slice(m[0].length);
    const unitMatch = /^[^0-9.]*/.exec(s)!;
    const unit = unitMatch[0];
    if (unit === "") throw new Error(`time: missing unit in duration ${quoted}`);
    const scale = DURATION_UNITS_MS[unit];
    if (scale === undefined) {
      throw new Error(`time: unknown unit ${JSON.stringify(unit)} in duration ${quoted}`);
    }
    s = s.slice(unit.length);
    total += Number(`${whole || "0"}.${frac || "0"}`) * scale;
  }
  return negative ? -total : total;
}

function parseGoDurationFlag(s: string): number {
  try {
    return parseDurationMs(s);
  } catch {
    throw new BadValue("parse error");
  }
}

/** Splits `host:port` as Go's net.SplitHostPort does; returns an error text or the host. */
function splitHostPort(hostport: string): { host: string } | { error: string } {
  const missing = { error: `address ${hostport}: missing port in address` };
  if (hostport.startsWith("[")) {
    const end = hostport.indexOf("]");
    if (end < 0) return { error: `address ${hostport}: missing ']' in address` };
    if (end + 1 === hostport.length) return missing;
    if (hostport[end + 1] !== ":") return missing;
    if (hostport.indexOf(":", end + 2) >= 0) {
      return { error: `address ${hostport}: too many colons in address` };
    }
    return { host: hostport.slice(1, end) };
  }
  const i = hostport.lastIndexOf(":");
  if (i < 0) return missing;
  const host = hostport.slice(0, i);
  if (host.includes(":")) return { error: `address ${hostport}: too many colons in address` };
  return { host };
}

/**
 * One URL as etcd's `types.NewURLs` takes it: http/https with `host:port` and no path, or unix/unixs.
 * Returns the URL written the way Go writes it (scheme in lower case).
 */
function parseEtcdUrl(raw: string): string {
  const input = raw.trim();
  const quoted = JSON.stringify(input);
  const schemeMatch = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(input);
  if (!schemeMatch) {
    const firstSegment = input.split("/")[0];
    if (firstSegment.includes(":")) {
      throw new BadValue(`parse ${quoted}: first path segment in URL cannot contain colon`);
    }
    throw new BadValue(`URL scheme must be http, https, unix, or unixs: ${input}`);
  }
  const scheme = schemeMatch[1].toLowerCase();
  const rest = input.slice(schemeMatch[0].length);
  const text = scheme + ":" + rest;
  if (scheme === "unix" || scheme === "unixs") {
    try {
      new URL(text);
    } catch {
      throw new BadValue(`parse ${quoted}: invalid URL`);
    }
    return text;
  }
  if (scheme !== "http" && scheme !== "https") {
    throw new BadValue(`URL scheme must be http, https, unix, or unixs: ${input}`);
  }
  let host = "";
  let after = rest;
  if (rest.startsWith("//")) {
    const end = rest.slice(2).search(/[/?#]/);
    const authority = end < 0 ? rest.slice(2) : rest.slice(2, 2 + end);
    after = end < 0 ? "" : rest.slice(2 + end);
    host = authority.slice(authority.lastIndexOf("@") + 1);
    const portMatch = /:([^\]]*)$/.exec(host);
    if (portMatch && !/^[0-9]*$/.test(portMatch[1])) {
      throw new BadValue(`parse ${quoted}: invalid port ${JSON.stringify(":" + portMatch[1])} after host`);
    }
  }
  if ("error" in splitHostPort(host)) {
    throw new BadValue(`URL address does not have the form "host:port": ${input}`);
  }
  const path = after.split(/[?#]/)[0];
  if (path !== "") throw new BadValue(`URL must not contain a path: ${input}`);
  try {
    new URL(text);
  } catch {
    throw new BadValue(`parse ${quoted}: invalid URL`);
  }
  return text;
}

/** A comma-separated URL list as etcd's URL flags take it: each URL checked, then sorted and deduplicated. */
function parseUrlList(s: string): string[] {
  const urls = s.split(",").map(parseEtcdUrl);
  return [...new Set(urls)].sort(compareBytes);
}

function compareBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Writes a URL the way etcd does (Go's `url.URL.String()` for the URLs etcd accepts): no trailing slash
 * after the host. Use it wherever a URL is compared with or hashed like etcd's (member IDs, member lists).
 */
export function formatUrl(u: URL): string {
  if (u.host === "") return u.href;
  const auth = u.username ? `${u.username}${u.password ? ":" + u.password : ""}@` : "";
  const path = u.pathname === "/" ? "" : u.pathname;
  return `${u.protocol}//${auth}${u.host}${path}${u.search}${u.hash}`;
}

/**
 * Parses an `--initial-cluster` value (`name=url,name=url,...`; a name may repeat to give a member several
 * URLs) into member name → sorted peer URLs, as etcd's `types.NewURLsMap`. Throws {@link ConfigError}.
 */
export function parseInitialCluster(s: string): Map<string, URL[]> {
  const byName = new Map<string, string[]>();
  for (const item of s.split(",")) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    const name = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? "" : item.slice(eq + 1);
    byName.set(name, [...(byName.get(name) ?? []), value]);
  }
  const out = new Map<string, URL[]>();
  for (const [name, raws] of byName) {
    let urls: string[];
    try {
      urls = raws.map(parseEtcdUrl).sort(compareBytes);
    } catch (err) {
      const reason = err instanceof BadValue ? err.reason : String(err);
      throw new ConfigError(
        `error setting up initial cluster: ${reason} (--initial-cluster)`,
        "initial-cluster",
      );
    }
    out.set(name, urls.map((u) => new URL(u)));
  }
  return out;
}

function initialClusterString(m: Map<string, URL[]>): string {
  const pairs: string[] = [];
  for (const [name, urls] of m) for (const u of urls) pairs.push(`${name}=${formatUrl(u)}`);
  return pairs.sort(compareBytes).join(",");
}

// ---------------------------------------------------------------------------------------------------------
// The flags

type FlagType =
  | "string"
  | "bool"
  | "uint"
  | "uint32"
  | "int"
  | "duration"
  | "urls"
  | "list"
  | "set"
  | "choice"
  | "ignored";
type FlagValue = string | boolean | number | string[];
type Group =
  | "member"
  | "clustering"
  | "proxy"
  | "security"
  | "auth"
  | "monitoring"
  | "logging"
  | "tracing"
  | "experimental"
  | "unsafe"
  | "hidden";

interface FlagDef {
  readonly name: string;
  readonly type: FlagType;
  readonly group: Group;
  /** etcd's default, written as on the command line. */
  readonly def: string;
  readonly usage: string;
  readonly choices?: readonly string[];
  /** Key in the YAML config file ("a.b" for a nested key); `null`: cannot be set from a file. */
  readonly file?: string | null;
  /** Other values that mean the same as the default (an unset value etcd fills in later). */
  readonly alsoDefault?: readonly FlagValue[];
  /** `false`: only a config-file key, no command-line flag. */
  readonly cli?: boolean;
  /** Stores a value into the Config. */
  readonly set?: (c: Config, v: FlagValue) => void;
  /** Reads the value back from a Config (to tell a non-default setting in {@link validateConfig}). */
  readonly get?: (c: Config) => FlagValue;
}

const str = (v: FlagValue): string => v as string;
const num = (v: FlagValue): number => v as number;
const bool = (v: FlagValue): boolean => v as boolean;
const urls = (v: FlagValue): URL[] => (v as string[]).map((u) => new URL(u));
const urlStrings = (us: URL[]): string[] => us.map(formatUrl);

function tlsFlags(side: "client" | "peer"): FlagDef[] {
  const p = side === "peer" ? "peer-" : "";
  const key = side === "peer" ? "peer-transport-security" : "client-transport-security";
  const tls = (c: Config): TlsConfig => (side === "peer" ? c.peerTls : c.clientTls);
  const who = side === "peer" ? "peer" : "client";
  return [
    {
      name: `${p}cert-file`,
      type: "string",
      group: "security",
      def: "",
      usage: `Certificate (PEM) this member presents on its ${who} listeners.`,
      file: `${key}.cert-file`,
      set: (c, v) => (tls(c).certFile = str(v)),
      get: (c) => tls(c).certFile,
    },
    {
      name: `${p}key-file`,
      type: "string",
      group: "security",
      def: "",
      usage: `Private key (PEM) matching --${p}cert-file.`,
      file: `${key}.key-file`,
      set: (c, v) => (tls(c).keyFile = str(v)),
      get: (c) => tls(c).keyFile,
    },
    {
      name: side === "peer" ? "peer-client-cert-auth" : "client-cert-auth",
      type: "bool",
      group: "security",
      def: "false",
      usage: `Require ${who}s to present a certificate signed by --${p}trusted-ca-file.`,
      file: `${key}.client-cert-auth`,
      set: (c, v) => (tls(c).clientCertAuth = bool(v)),
      get: (c) => tls(c).clientCertAuth,
    },
    {
      name: `${p}client-cert-file`,
      type: "string",
      group: "security",
      def: "",
      usage: `Certificate this member uses when it acts as a ${who} itself (default: --${p}cert-file).`,
      file: `${key}.client-cert-file`,
    },
    {
      name: `${p}client-key-file`,
      type: "string",
      group: "security",
      def: "",
      usage: `Private key matching --${p}client-cert-file.`,
      file: `${key}.client-key-file`,
    },
    {
      name: `${p}trusted-ca-file`,
      type: "string",
      group: "security",
      def: "",
      usage: `CA bundle used to verify ${who} certificates.`,
      file: `${key}.trusted-ca-file`,
      set: (c, v) => (tls(c).trustedCaFile = str(v)),
      get: (c) => tls(c).trustedCaFile,
    },
    {
      name: side === "peer" ? "peer-auto-tls" : "auto-tls",
      type: "bool",
      group: "security",
      def: "false",
      usage: `Generate a self-signed certificate for the ${who} listeners when none is given.`,
      file: `${key}.auto-tls`,
      set: (c, v) => (tls(c).autoTls = bool(v)),
      get: (c) => tls(c).autoTls,
    },
    {
      name: side === "peer" ? "peer-crl-file" : "client-crl-file",
      type: "string",
      group: "security",
      def: "",
      usage: `Certificate revocation list checked against ${who} certificates.`,
      file: null,
      set: (c, v) => (tls(c).crlFile = str(v)),
      get: (c) => tls(c).crlFile,
    },
    {
      name: side === "peer" ? "peer-cert-allowed-cn" : "client-cert-allowed-cn",
      type: "list",
      group: "security",
      def: "",
      usage: `Comma-separated common names accepted in ${who} certificates (empty: any).`,
      file: `${key}.allowed-cn`,
      cli: side === "peer",
      set: (c, v) => (tls(c).allowedCn = (v as string[]).join(",")),
      get: (c) => splitList(tls(c).allowedCn),
    },
    {
      name: side === "peer" ? "peer-cert-allowed-hostname" : "client-cert-allowed-hostname",
      type: "list",
      group: "security",
      def: "",
      usage: `Comma-separated SAN host names accepted in ${who} certificates (empty: any).`,
      file: `${key}.allowed-hostname`,
      set: (c, v) => (tls(c).allowedHostname = (v as string[]).join(",")),
      get: (c) => splitList(tls(c).allowedHostname),
    },
  ];
}

function splitList(s: string): string[] {
  return s.split(",").filter((x) => x !== "");
}

const IGNORED_FLAGS = [
  "cluster-active-size",
  "cluster-remove-delay",
  "cluster-sync-interval",
  "config",
  "force",
  "max-result-buffer",
  "max-retry-attempts",
  "peer-heartbeat-interval",
  "peer-election-timeout",
  "retry-interval",
  "snapshot",
  "v",
  "vv",
  "test.coverprofile",
  "test.outputdir",
];

/** etcd 3.5's flags that it reports as deprecated when they are given. */
const DEPRECATED_FLAGS = new Set([
  "enable-v2",
  "experimental-enable-v2v3",
  "proxy",
  "proxy-failure-wait",
  "proxy-refresh-interval",
  "proxy-dial-timeout",
  "proxy-write-timeout",
  "proxy-read-timeout",
]);

const FLAGS: readonly FlagDef[] = [
  {
    name: "config-file",
    type: "string",
    group: "hidden",
    def: "",
    usage: "",
    file: null,
  },
  // Member
  {
    name: "name",
    type: "string",
    group: "member",
    def: DEFAULT_NAME,
    usage: "This member's name; it must match its entry in --initial-cluster.",
    set: (c, v) => (c.name = str(v)),
  },
  {
    name: "data-dir",
    type: "string",
    group: "member",
    def: "${name}.etcd",
    usage: "Directory holding the member's write-ahead log, snapshots and key space.",
    set: (c, v) => (c.dataDir = str(v)),
  },
  {
    name: "wal-dir",
    type: "string",
    group: "member",
    def: "",
    usage: "Put the write-ahead log in this directory instead of <data-dir>/member/wal.",
    set: (c, v) => (c.walDir = str(v)),
  },
  {
    name: "snapshot-count",
    type: "uint",
    group: "member",
    def: "100000",
    usage: "Applied entries between two snapshots of the key space (0 picks the default).",
    set: (c, v) => (c.snapshotCount = num(v)),
  },
  {
    name: "heartbeat-interval",
    type: "uint",
    group: "member",
    def: "100",
    usage: "Milliseconds between two leader heartbeats; also the length of one Raft tick.",
    set: (c, v) => (c.heartbeatIntervalMs = num(v)),
  },
  {
    name: "election-timeout",
    type: "uint",
    group: "member",
    def: "1000",
    usage: "Milliseconds a follower waits without hearing from a leader before it runs for election.",
    set: (c, v) => (c.electionTimeoutMs = num(v)),
  },
  {
    name: "initial-election-tick-advance",
    type: "bool",
    group: "member",
    def: "true",
    usage: "On boot, skip most of the first election timeout so a leader is elected sooner.",
  },
  {
    name: "listen-peer-urls",
    type: "urls",
    group: "member",
    def: DEFAULT_LISTEN_PEER_URL,
    usage: "Comma-separated URLs to accept traffic from other members on.",
    set: (c, v) => (c.listenPeerUrls = urls(v)),
  },
  {
    name: "listen-client-urls",
    type: "urls",
    group: "member",
    def: DEFAULT_LISTEN_CLIENT_URL,
    usage: "Comma-separated URLs to serve clients (gRPC and HTTP) on.",
    set: (c, v) => (c.listenClientUrls = urls(v)),
  },
  {
    name: "listen-client-http-urls",
    type: "urls",
    group: "member",
    def: "",
    usage: "Comma-separated URLs serving only the HTTP API, taking it off --listen-client-urls.",
  },
  {
    name: "max-snapshots",
    type: "uint",
    group: "member",
    def: "5",
    usage: "How many snapshot files to keep on disk (0: keep all).",
    set: (c, v) => (c.maxSnapshots = num(v)),
  },
  {
    name: "max-wals",
    type: "uint",
    group: "member",
    def: "5",
    usage: "How many WAL files to keep on disk (0: keep all).",
    set: (c, v) => (c.maxWals = num(v)),
  },
  {
    name: "quota-backend-bytes",
    type: "int",
    group: "member",
    def: "0",
    usage: "Key-space size that raises the NOSPACE alarm and turns writes off (0: 2 GiB).",
    set: (c, v) => (c.quotaBackendBytes = num(v)),
  },
  {
    name: "backend-bbolt-freelist-type",
    type: "string",
    group: "member",
    def: "map",
    alsoDefault: [""],
    usage: "Free-list layout of etcd's bbolt database (array or map); etcd-ts has no bbolt.",
  },
  {
    name: "backend-batch-interval",
    type: "duration",
    group: "member",
    def: "0s",
    usage: "Longest time a backend write transaction stays open before it is committed.",
  },
  {
    name: "backend-batch-limit",
    type: "int",
    group: "member",
    def: "0",
    usage: "Most writes batched into one backend transaction.",
  },
  {
    name: "max-txn-ops",
    type: "uint",
    group: "member",
    def: "128",
    usage: "Most operations one transaction may hold in any of its branches.",
    set: (c, v) => (c.maxTxnOps = num(v)),
  },
  {
    name: "max-request-bytes",
    type: "uint",
    group: "member",
    def: "1572864",
    usage: "Largest client request, in bytes, the member accepts.",
    set: (c, v) => (c.maxRequestBytes = num(v)),
  },
  {
    name: "max-concurrent-streams",
    type: "uint32",
    group: "member",
    def: "4294967295",
    usage: "Most HTTP/2 streams one client connection may have open.",
  },
  {
    name: "enable-grpc-gateway",
    type: "bool",
    group: "member",
    def: "true",
    usage: "Serve the JSON mapping of the v3 API (/v3/...) next to gRPC.",
  },
  {
    name: "grpc-keepalive-min-time",
    type: "duration",
    group: "member",
    def: "5s",
    usage: "Shortest interval a client may ping the server at.",
    set: (c, v) => (c.grpcKeepAliveMinTimeMs = num(v)),
  },
  {
    name: "grpc-keepalive-interval",
    type: "duration",
    group: "member",
    def: "2h0m0s",
    usage: "How often the server pings an idle client connection (0 disables).",
    set: (c, v) => (c.grpcKeepAliveIntervalMs = num(v)),
  },
  {
    name: "grpc-keepalive-timeout",
    type: "duration",
    group: "member",
    def: "20s",
    usage: "How long the server waits for a ping reply before it drops the connection (0 disables).",
    set: (c, v) => (c.grpcKeepAliveTimeoutMs = num(v)),
  },
  {
    name: "socket-reuse-port",
    type: "bool",
    group: "member",
    def: "false",
    usage: "Set SO_REUSEPORT on the listeners.",
    file: "socket-options.reuse-port",
  },
  {
    name: "socket-reuse-address",
    type: "bool",
    group: "member",
    def: "false",
    usage: "Set SO_REUSEADDR on the listeners.",
    file: "socket-options.reuse-address",
  },
  {
    name: "raft-read-timeout",
    type: "duration",
    group: "member",
    def: "5s",
    usage: "Read deadline on peer connections (at least 5s).",
    file: null,
  },
  {
    name: "raft-write-timeout",
    type: "duration",
    group: "member",
    def: "5s",
    usage: "Write deadline on peer connections (at least 5s).",
    file: null,
  },
  // Clustering
  {
    name: "initial-advertise-peer-urls",
    type: "urls",
    group: "clustering",
    def: DEFAULT_LISTEN_PEER_URL,
    usage: "Comma-separated peer URLs other members should use to reach this one.",
    set: (c, v) => (c.initialAdvertisePeerUrls = urls(v)),
  },
  {
    name: "initial-cluster",
    type: "string",
    group: "clustering",
    def: DEFAULT_INITIAL_CLUSTER,
    usage: "The founding members, as name=peer-url pairs separated by commas.",
  },
  {
    name: "initial-cluster-state",
    type: "choice",
    group: "clustering",
    def: "new",
    choices: ["new", "existing"],
    usage: "'new' to bootstrap a cluster, 'existing' to join one; ignored once the data dir has a WAL.",
    set: (c, v) => (c.initialClusterState = str(v) as Config["initialClusterState"]),
  },
  {
    name: "initial-cluster-token",
    type: "string",
    group: "clustering",
    def: "etcd-cluster",
    usage: "Token mixed into member and cluster IDs so separate clusters never share IDs.",
    set: (c, v) => (c.initialClusterToken = str(v)),
  },
  {
    name: "advertise-client-urls",
    type: "urls",
    group: "clustering",
    def: DEFAULT_LISTEN_CLIENT_URL,
    usage: "Comma-separated client URLs published to clients; required with --listen-client-urls.",
    set: (c, v) => (c.advertiseClientUrls = urls(v)),
  },
  {
    name: "discovery",
    type: "string",
    group: "clustering",
    def: "",
    usage: "Discovery service URL to find the founding members through.",
    set: (c, v) => (c.discovery = str(v)),
    get: (c) => c.discovery,
  },
  {
    name: "discovery-fallback",
    type: "choice",
    group: "clustering",
    def: "proxy",
    choices: ["proxy", "exit"],
    usage: "What to do when discovery fails: 'exit', or 'proxy' (v2 proxy mode).",
    set: (c, v) => (c.discoveryFallback = str(v) as Config["discoveryFallback"]),
    get: (c) => c.discoveryFallback,
  },
  {
    name: "discovery-proxy",
    type: "string",
    group: "clustering",
    def: "",
    usage: "HTTP proxy for requests to the discovery service.",
    set: (c, v) => (c.discoveryProxy = str(v)),
    get: (c) => c.discoveryProxy,
  },
  {
    name: "discovery-srv",
    type: "string",
    group: "clustering",
    def: "",
    usage: "DNS domain whose SRV records list the founding members.",
    set: (c, v) => (c.discoverySrv = str(v)),
    get: (c) => c.discoverySrv,
  },
  {
    name: "discovery-srv-name",
    type: "string",
    group: "clustering",
    def: "",
    usage: "Suffix of the SRV service names looked up with --discovery-srv.",
    set: (c, v) => (c.discoverySrvName = str(v)),
    get: (c) => c.discoverySrvName,
  },
  {
    name: "strict-reconfig-check",
    type: "bool",
    group: "clustering",
    def: "true",
    usage: "Refuse membership changes that could leave the cluster without a quorum.",
    set: (c, v) => (c.strictReconfigCheck = bool(v)),
  },
  {
    name: "pre-vote",
    type: "bool",
    group: "clustering",
    def: "true",
    usage: "Run Raft's pre-vote phase so a rejoining member cannot disrupt a healthy leader.",
  },
  {
    name: "auto-compaction-retention",
    type: "string",
    group: "clustering",
    def: "0",
    usage:
      "History to keep when compacting automatically: a duration (hours if no unit) or revisions (0: off).",
    set: (c, v) => (c.autoCompactionRetention = str(v)),
  },
  {
    name: "auto-compaction-mode",
    type: "string",
    group: "clustering",
    def: "periodic",
    usage: "How --auto-compaction-retention is read: 'periodic' (time) or 'revision' (count).",
    set: (c, v) => (c.autoCompactionMode = str(v) as Config["autoCompactionMode"]),
  },
  {
    name: "enable-v2",
    type: "bool",
    group: "clustering",
    def: "false",
    usage: "Serve the deprecated v2 API.",
    set: (c, v) => (c.enableV2 = bool(v)),
    get: (c) => c.enableV2,
  },
  {
    name: "experimental-enable-v2v3",
    type: "string",
    group: "clustering",
    def: "",
    usage: "Key prefix under which to emulate the v2 API on the v3 store.",
  },
  {
    name: "v2-deprecation",
    type: "choice",
    group: "clustering",
    def: "not-yet",
    alsoDefault: [""],
    choices: ["not-yet", "write-only", "write-only-skip-check", "write-only-drop-data", "gone"],
    usage: "Stage of the v2 store's retirement.",
  },
  // Proxy
  {
    name: "proxy",
    type: "choice",
    group: "proxy",
    def: "off",
    choices: ["off", "readonly", "on"],
    usage: "Run as a v2 proxy: 'off', 'readonly' or 'on'.",
  },
  {
    name: "proxy-failure-wait",
    type: "uint",
    group: "proxy",
    def: "5000",
    usage: "Milliseconds a failed endpoint stays out of rotation.",
  },
  {
    name: "proxy-refresh-interval",
    type: "uint",
    group: "proxy",
    def: "30000",
    usage: "Milliseconds between refreshes of the endpoint list.",
  },
  {
    name: "proxy-dial-timeout",
    type: "uint",
    group: "proxy",
    def: "1000",
    usage: "Milliseconds to wait for a connection (0: no limit).",
  },
  {
    name: "proxy-write-timeout",
    type: "uint",
    group: "proxy",
    def: "5000",
    usage: "Milliseconds to wait for a write (0: no limit).",
  },
  {
    name: "proxy-read-timeout",
    type: "uint",
    group: "proxy",
    def: "0",
    usage: "Milliseconds to wait for a read (0: no limit).",
  },
  // Security
  ...tlsFlags("client"),
  ...tlsFlags("peer"),
  {
    name: "self-signed-cert-validity",
    type: "uint",
    group: "security",
    def: "1",
    usage: "Years the certificates made by --auto-tls and --peer-auto-tls stay valid.",
  },
  {
    name: "cipher-suites",
    type: "list",
    group: "security",
    def: "",
    usage: "Comma-separated TLS cipher suites to offer (empty: the runtime's choice).",
  },
  {
    name: "experimental-peer-skip-client-san-verification",
    type: "bool",
    group: "security",
    def: "false",
    usage: "Do not check the SAN of certificates presented by peers.",
  },
  {
    name: "tls-min-version",
    type: "string",
    group: "security",
    def: "TLS1.2",
    usage: "Oldest TLS version accepted: TLS1.2 or TLS1.3.",
  },
  {
    name: "tls-max-version",
    type: "string",
    group: "security",
    def: "",
    usage: "Newest TLS version accepted: TLS1.2 or TLS1.3 (empty: the runtime's).",
  },
  {
    name: "cors",
    type: "set",
    group: "security",
    def: "*",
    usage: "Comma-separated origins allowed for cross-origin requests ('*': any).",
  },
  {
    name: "host-whitelist",
    type: "set",
    group: "security",
    def: "*",
    usage: "Comma-separated Host header values accepted on insecure listeners ('*': any).",
  },
  // Auth
  {
    name: "auth-token",
    type: "string",
    group: "auth",
    def: "simple",
    usage: "Kind of auth token and its options: 'simple' or 'jwt,...'.",
  },
  {
    name: "bcrypt-cost",
    type: "uint",
    group: "auth",
    def: "10",
    usage: "bcrypt work factor for stored passwords.",
  },
  {
    name: "auth-token-ttl",
    type: "uint",
    group: "auth",
    def: "300",
    usage: "Seconds a 'simple' auth token lives.",
  },
  // Profiling and monitoring
  {
    name: "enable-pprof",
    type: "bool",
    group: "monitoring",
    def: "false",
    usage: "Serve runtime profiles under /debug/pprof/ on the client URLs.",
    set: (c, v) => (c.enablePprof = bool(v)),
    get: (c) => c.enablePprof,
  },
  {
    name: "metrics",
    type: "string",
    group: "monitoring",
    def: "basic",
    usage: "Metrics detail: 'basic', or 'extensive' to add gRPC latency histograms.",
    set: (c, v) => (c.metrics = str(v) as Config["metrics"]),
  },
  {
    name: "listen-metrics-urls",
    type: "urls",
    group: "monitoring",
    def: "",
    usage: "Extra comma-separated URLs serving only /metrics and /health.",
    set: (c, v) => (c.listenMetricsUrls = urls(v)),
    get: (c) => urlStrings(c.listenMetricsUrls),
  },
  // Logging
  {
    name: "logger",
    type: "string",
    group: "logging",
    def: "zap",
    usage: "Logger implementation; only 'zap' (JSON lines) exists.",
  },
  {
    name: "log-outputs",
    type: "set",
    group: "logging",
    def: "default",
    usage: "Where logs go: 'default' or 'stderr', 'stdout', or file paths, comma-separated.",
    set: (c, v) => (c.logOutputs = [...(v as string[])]),
  },
  {
    name: "log-level",
    type: "string",
    group: "logging",
    def: "info",
    usage: "Least severe level logged: debug, info, warn, error, panic or fatal.",
    set: (c, v) => (c.logLevel = str(v) as LogLevel),
  },
  {
    name: "enable-log-rotation",
    type: "bool",
    group: "logging",
    def: "false",
    usage: "Rotate the log file named by --log-outputs.",
  },
  {
    name: "log-rotation-config-json",
    type: "string",
    group: "logging",
    def: '{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}',
    usage: "Rotation limits, as JSON, used with --enable-log-rotation.",
  },
  // Distributed tracing
  {
    name: "experimental-enable-distributed-tracing",
    type: "bool",
    group: "tracing",
    def: "false",
    usage: "Export OpenTelemetry traces.",
  },
  {
    name: "experimental-distributed-tracing-address",
    type: "string",
    group: "tracing",
    def: "localhost:4317",
    usage: "Address of the trace collector.",
  },
  {
    name: "experimental-distributed-tracing-service-name",
    type: "string",
    group: "tracing",
    def: "etcd",
    usage: "Service name attached to the traces.",
  },
  {
    name: "experimental-distributed-tracing-instance-id",
    type: "string",
    group: "tracing",
    def: "",
    usage: "Instance ID attached to the traces; unique per member.",
  },
  {
    name: "experimental-distributed-tracing-sampling-rate",
    type: "int",
    group: "tracing",
    def: "0",
    usage: "Spans sampled per million.",
  },
  // Experimental
  {
    name: "experimental-initial-corrupt-check",
    type: "bool",
    group: "experimental",
    def: "false",
    usage: "Compare the key-space hash with the other members before serving.",
    set: (c, v) => (c.experimentalInitialCorruptCheck = bool(v)),
  },
  {
    name: "experimental-corrupt-check-time",
    type: "duration",
    group: "experimental",
    def: "0s",
    usage: "Interval between periodic corruption checks across the cluster (0: off).",
  },
  {
    name: "experimental-compact-hash-check-enabled",
    type: "bool",
    group: "experimental",
    def: "false",
    usage: "Have the leader compare the followers' hashes after compactions.",
  },
  {
    name: "experimental-compact-hash-check-time",
    type: "duration",
    group: "experimental",
    def: "1m0s",
    usage: "Interval of those compaction hash checks.",
  },
  {
    name: "experimental-enable-lease-checkpoint",
    type: "bool",
    group: "experimental",
    def: "false",
    usage: "Have the leader checkpoint lease TTLs so a new leader does not reset them.",
  },
  {
    name: "experimental-enable-lease-checkpoint-persist",
    type: "bool",
    group: "experimental",
    def: "false",
    usage: "Also persist the checkpointed TTLs (needs --experimental-enable-lease-checkpoint).",
  },
  {
    name: "experimental-compaction-batch-limit",
    type: "int",
    group: "experimental",
    def: "0",
    usage: "Most revisions removed per compaction batch.",
  },
  {
    name: "experimental-compaction-sleep-interval",
    type: "duration",
    group: "experimental",
    def: "0s",
    usage: "Pause between two compaction batches.",
  },
  {
    name: "experimental-watch-progress-notify-interval",
    type: "duration",
    group: "experimental",
    def: "10m0s",
    usage: "Interval of progress notifications on watches that asked for them.",
    set: (c, v) => (c.experimentalWatchProgressNotifyIntervalMs = num(v)),
  },
  {
    name: "experimental-downgrade-check-time",
    type: "duration",
    group: "experimental",
    def: "5s",
    usage: "Interval between two checks of a cluster downgrade's progress.",
  },
  {
    name: "experimental-warning-apply-duration",
    type: "duration",
    group: "experimental",
    def: "100ms",
    usage: "Log a warning for requests whose apply takes longer than this.",
  },
  {
    name: "experimental-memory-mlock",
    type: "bool",
    group: "experimental",
    def: "false",
    usage: "Lock the backend's pages in RAM.",
  },
  {
    name: "experimental-txn-mode-write-with-shared-buffer",
    type: "bool",
    group: "experimental",
    def: "true",
    usage: "Let write transactions read through the shared read buffer.",
  },
  {
    name: "experimental-stop-grpc-service-on-defrag",
    type: "bool",
    group: "experimental",
    def: "false",
    usage: "Report the gRPC service as not serving while a defragmentation runs.",
  },
  {
    name: "experimental-bootstrap-defrag-threshold-megabytes",
    type: "uint",
    group: "experimental",
    def: "0",
    usage: "Defragment at boot when that frees at least this many megabytes (0: never).",
  },
  {
    name: "experimental-snapshot-catchup-entries",
    type: "uint",
    group: "experimental",
    def: "5000",
    usage: "Log entries kept after a snapshot so slow followers can catch up without one.",
    file: "experimental-snapshot-catch-up-entries",
  },
  // Unsafe
  {
    name: "force-new-cluster",
    type: "bool",
    group: "unsafe",
    def: "false",
    usage: "Restart as a one-member cluster from this member's data, dropping the other members.",
    set: (c, v) => (c.forceNewCluster = bool(v)),
  },
  {
    name: "unsafe-no-fsync",
    type: "bool",
    group: "unsafe",
    def: "false",
    usage: "Never fsync; a crash can lose acknowledged writes.",
  },
  // Version
  { name: "version", type: "bool", group: "hidden", def: "false", usage: "", file: null },
  ...IGNORED_FLAGS.map((name): FlagDef => ({
    name,
    type: "ignored",
    group: "hidden",
    def: "",
    usage: "",
    file: null,
  })),
];

const FLAG_BY_NAME: ReadonlyMap<string, FlagDef> = new Map(
  FLAGS.filter((f) => f.cli !== false).map((f) => [f.name, f]),
);
const FLAG_BY_FILE_KEY: ReadonlyMap<string, FlagDef> = new Map(
  FLAGS.filter((f) => f.file !== null).map((f) => [f.file ?? f.name, f]),
);

/**
 * Settings that have a Config field and are parsed, but that nothing acts on yet (gRPC keepalive, metrics,
 * force-new-cluster, reconfiguration and corruption checks, WAL file retention).
 */
export const SETTINGS_WITHOUT_EFFECT_YET: readonly string[] = [
  "grpc-keepalive-min-time",
  "grpc-keepalive-interval",
  "grpc-keepalive-timeout",
  "metrics",
  "force-new-cluster",
  "strict-reconfig-check",
  "experimental-initial-corrupt-check",
  "max-wals",
];

/**
 * Flags (names without dashes, as on etcd's command line; `client-cert-allowed-cn` is the config file's
 * `client-transport-security.allowed-cn`) that etcd accepts but etcd-ts does not implement yet. Setting one
 * to anything but its default — by flag, `ETCD_*` variable or config-file key — makes etcd-ts refuse to
 * start. Remove a name here when its feature lands; this set is the only switch.
 */
export const NOT_YET_IMPLEMENTED: ReadonlySet<string> = new Set([
  // TLS
  "cert-file",
  "key-file",
  "client-cert-auth",
  "client-cert-file",
  "client-key-file",
  "trusted-ca-file",
  "auto-tls",
  "client-crl-file",
  "client-cert-allowed-cn",
  "client-cert-allowed-hostname",
  "peer-cert-file",
  "peer-key-file",
  "peer-client-cert-auth",
  "peer-client-cert-file",
  "peer-client-key-file",
  "peer-trusted-ca-file",
  "peer-auto-tls",
  "peer-crl-file",
  "peer-cert-allowed-cn",
  "peer-cert-allowed-hostname",
  "self-signed-cert-validity",
  "cipher-suites",
  "experimental-peer-skip-client-san-verification",
  "tls-min-version",
  "tls-max-version",
  "cors",
  "host-whitelist",
  // discovery
  "discovery",
  "discovery-srv",
  "discovery-srv-name",
  "discovery-proxy",
  "discovery-fallback",
  // v2 API and proxy
  "enable-v2",
  "experimental-enable-v2v3",
  "v2-deprecation",
  "proxy",
  "proxy-failure-wait",
  "proxy-refresh-interval",
  "proxy-dial-timeout",
  "proxy-write-timeout",
  "proxy-read-timeout",
  // auth
  "auth-token",
  "bcrypt-cost",
  "auth-token-ttl",
  // monitoring and logging
  "enable-pprof",
  "listen-metrics-urls",
  "enable-log-rotation",
  "log-rotation-config-json",
  "experimental-enable-distributed-tracing",
  "experimental-distributed-tracing-address",
  "experimental-distributed-tracing-service-name",
  "experimental-distributed-tracing-instance-id",
  "experimental-distributed-tracing-sampling-rate",
  // tuning etcd-ts has no equivalent for yet
  ...SETTINGS_WITHOUT_EFFECT_YET,
  "listen-client-http-urls",
  "initial-election-tick-advance",
  "backend-bbolt-freelist-type",
  "backend-batch-interval",
  "backend-batch-limit",
  "max-concurrent-streams",
  "enable-grpc-gateway",
  "socket-reuse-port",
  "socket-reuse-address",
  "raft-read-timeout",
  "raft-write-timeout",
  "pre-vote",
  "experimental-corrupt-check-time",
  "experimental-compact-hash-check-enabled",
  "experimental-compact-hash-check-time",
  "experimental-enable-lease-checkpoint",
  "experimental-enable-lease-checkpoint-persist",
  "experimental-compaction-batch-limit",
  "experimental-compaction-sleep-interval",
  "experimental-downgrade-check-time",
  "experimental-warning-apply-duration",
  "experimental-memory-mlock",
  "experimental-txn-mode-write-with-shared-buffer",
  "experimental-stop-grpc-service-on-defrag",
  "experimental-bootstrap-defrag-threshold-megabytes",
  "experimental-snapshot-catchup-entries",
  "unsafe-no-fsync",
]);

/** Parses a flag's text (command line or environment) into its typed value; throws {@link BadValue}. */
function parseFlagText(f: FlagDef, text: string): FlagValue {
  switch (f.type) {
    case "string":
      return text;
    case "bool":
      return parseGoBool(text);
    case "ignored":
      return true;
    case "uint":
      return parseGoInteger(text, false, 64);
    case "uint32":
      return parseGoInteger(text, false, 32);
    case "int":
      return parseGoInteger(text, true, 64);
    case "duration":
      return parseGoDurationFlag(text);
    case "urls":
      // etcd's URL flags accept "" and then keep their default.
      return text === "" ? defaultValue(f) : parseUrlList(text);
    case "list":
      return splitList(text);
    case "set":
      return [...new Set(splitList(text))].sort(compareBytes);
    case "choice":
      if (!f.choices!.includes(text)) throw new BadValue("invalid value");
      return text;
  }
}

function defaultValue(f: FlagDef): FlagValue {
  if (f.type === "urls") return f.def === "" ? [] : parseUrlList(f.def);
  return parseFlagText(f, f.def);
}

function sameValue(a: FlagValue, b: FlagValue): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

// ---------------------------------------------------------------------------------------------------------
// Help and version

const USAGE = `Usage:

  etcd-ts [flags]
    Run an etcd member.

  etcd-ts --version
    Print version information and exit.

  etcd-ts -h | --help
    Print this help and exit.

  etcd-ts --config-file <path>
    Take the whole configuration from a YAML file in etcd's format; every other flag and ETCD_*
    variable is then ignored.
`;

const GROUP_TITLES: [Group, string][] = [
  ["member", "Member"],
  ["clustering", "Clustering"],
  ["proxy", "Proxy (etcd v2)"],
  ["security", "Security"],
  ["auth", "Auth"],
  ["monitoring", "Profiling and monitoring"],
  ["logging", "Logging"],
  ["tracing", "Distributed tracing (experimental)"],
  ["experimental", "Experimental"],
  ["unsafe", "Unsafe (can break the guarantees of consensus; use with care)"],
];

function helpText(): string {
  const lines = [
    "",
    "Every flag --some-flag can also be given as the environment variable ETCD_SOME_FLAG; a flag and its",
    "variable may not both be set. Flags marked [not implemented yet] are accepted only at their default.",
  ];
  for (const [group, title] of GROUP_TITLES) {
    lines.push("", `${title}:`);
    for (const f of FLAGS) {
      if (f.group !== group || f.cli === false) continue;
      lines.push(`  --${f.name} '${f.def}'`);
      lines.push(`      ${f.usage}${NOT_YET_IMPLEMENTED.has(f.name) ? " [not implemented yet]" : ""}`);
    }
  }
  return lines.join("\n") + "\n";
}

function versionText(version: string, etcdVersion: string): string {
  return [
    `etcd-ts Version: ${version}`,
    `etcd Version: ${etcdVersion}`,
    "Git SHA: Not provided",
    `Deno Version: ${Deno.version.deno}`,
    `Deno OS/Arch: ${Deno.build.os}/${Deno.build.arch}`,
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------------------
// Command line, environment and config file

/** Go's flag package refusing the command line: print the message and the usage, exit 2. */
class FlagSyntaxError extends Error {}
class HelpRequested extends Error {}

interface ParsedArgs {
  values: Map<string, FlagValue>;
  /** Flags set on the command line, in order. */
  set: string[];
  positional: string[];
}

/** The command line as Go's `flag.FlagSet.Parse` reads it (`-x`, `--x`, `-x=v`, `-x v`), up to a non-flag. */
function parseArgs(args: string[]): ParsedArgs {
  const values = new Map<string, FlagValue>();
  const set: string[] = [];
  let i = 0;
  while (i < args.length) {
    const s = args[i];
    if (s.length < 2 || s[0] !== "-") break;
    let dashes = 1;
    if (s[1] === "-") {
      dashes = 2;
      if (s.length === 2) {
        i++;
        break;
      }
    }
    let name = s.slice(dashes);
    if (name.length === 0 || name[0] === "-" || name[0] === "=") {
      throw new FlagSyntaxError(`bad flag syntax: ${s}`);
    }
    i++;
    let value: string | undefined;
    const eq = name.indexOf("=", 1);
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const f = FLAG_BY_NAME.get(name);
    if (!f) {
      if (name === "help" || name === "h") throw new HelpRequested();
      throw new FlagSyntaxError(`flag provided but not defined: -${name}`);
    }
    if (f.type === "bool" || f.type === "ignored") {
      try {
        values.set(name, value === undefined ? true : parseFlagText(f, value));
      } catch (err) {
        throw new FlagSyntaxError(
          `invalid boolean value ${JSON.stringify(value)} for -${name}: ${reason(err)}`,
        );
      }
    } else {
      if (value === undefined) {
        if (i >= args.length) throw new FlagSyntaxError(`flag needs an argument: -${name}`);
        value = args[i++];
      }
      try {
        values.set(name, parseFlagText(f, value));
      } catch (err) {
        throw new FlagSyntaxError(`invalid value ${JSON.stringify(value)} for flag -${name}: ${reason(err)}`);
      }
    }
    if (!set.includes(name)) set.push(name);
  }
  return { values, set, positional: args.slice(i) };
}

function reason(err: unknown): string {
  return err instanceof BadValue ? err.reason : err instanceof Error ? err.message : String(err);
}

function envName(flag: string): string {
  return "ETCD_" + flag.replaceAll("-", "_").toUpperCase();
}

/** Where each setting came from, for messages. */
type Sources = Map<string, string>;

/** The caller named by the log lines parseCommandLine prints. */
const CALLER = "server/config";

const CONFLICT_MESSAGE =
  "conflicting environment variable is shadowed by corresponding command-line flag (either unset environment variable or disable flag))";

/**
 * Turns etcd's command line, environment and (when asked for) config file into a validated {@link Config},
 * or into what to print and the exit code, as etcd 3.5 does:
 *
 * - flag syntax errors and unknown flags: Go's message and the usage on stderr, exit 2;
 * - `--help`/`-h`: the usage on stderr and the flags on stdout, exit 0; `--version`: exit 0;
 * - a flag given both on the command line and as its `ETCD_*` variable: a fatal JSON log line, exit 1;
 * - unknown `ETCD_*` variables: warnings;
 * - with `--config-file` (or `ETCD_CONFIG_FILE`), other flags and variables are ignored;
 * - a flag of {@link NOT_YET_IMPLEMENTED} set to a non-default value: `etcd-ts: --x is not implemented yet`,
 *   exit 1;
 * - any other refused setting: a JSON warn line "failed to verify flags" with the error, exit 1.
 */
export function parseCommandLine(
  args: string[],
  env: Record<string, string>,
  options: ParseOptions,
): ParseResult {
  const now = options.now ?? (() => new Date());
  const warnings: string[] = [];
  const line = (level: LogLevel, caller: string, msg: string, fields?: Record<string, unknown>): string =>
    formatLogLine(level, now(), caller, msg, fields) + "\n";
  const warningLines = (): string => warnings.map((w) => line("warn", CALLER, w)).join("");
  const exitWith = (code: number, stderr: string, stdout = ""): ParseResult => ({
    kind: "exit",
    code,
    stdout,
    stderr,
  });
  const fail = (message: string): ParseResult => {
    let stderr = warningLines() + line("warn", CALLER, "failed to verify flags", { error: message });
    if (message === UNSET_ADVERTISE_CLIENT_URLS) {
      stderr += line("warn", CALLER, "advertise client URLs are not set", { error: message });
    }
    return exitWith(1, stderr);
  };

  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(args);
  } catch (err) {
    if (err instanceof HelpRequested) return exitWith(0, USAGE + "\n", helpText());
    if (err instanceof FlagSyntaxError) return exitWith(2, `${err.message}\n${USAGE}\n`);
    throw err;
  }
  if (parsed.positional.length > 0) return fail(`'${parsed.positional[0]}' is not a valid flag`);
  if (parsed.values.get("version") === true) {
    return exitWith(0, "", versionText(options.version, options.etcdVersion));
  }

  const values = new Map<string, FlagValue>();
  const sources: Sources = new Map();
  const configFile = (parsed.values.get("config-file") as string | undefined) || env["ETCD_CONFIG_FILE"] ||
    "";
  const fromFile = configFile !== "";
  if (fromFile) {
    const ignored = parsed.set.filter((n) => n !== "config-file");
    if (ignored.length > 0) {
      warnings.push(
        `a config file is in use; ignoring the other command-line flags: ${
          ignored.map((n) => "--" + n).join(" ")
        }`,
      );
    }
    try {
      readConfigFile(
        configFile,
        options.readFile ?? ((p) => Deno.readTextFileSync(p)),
        options.parseYaml,
        values,
        sources,
        warnings,
      );
    } catch (err) {
      if (err instanceof ConfigError) return fail(err.message);
      throw err;
    }
  } else {
    const envEffect = applyEnvironment(parsed, env, values, sources, warnings);
    if (envEffect.conflict !== undefined) {
      const fatal = line("fatal", "pkg/flags", CONFLICT_MESSAGE, {
        "environment-variable": envEffect.conflict,
      });
      return exitWith(1, warningLines() + fatal);
    }
    if (envEffect.error !== undefined) return fail(envEffect.error);
    for (const name of parsed.set) {
      if (DEPRECATED_FLAGS.has(name)) {
        warnings.push(`--${name} is deprecated in 3.5 and will be decommissioned in 3.6.`);
      }
      if (FLAG_BY_NAME.get(name)?.type === "ignored") {
        warnings.push(`flag --${name} is no longer supported; ignoring it`);
      }
    }
  }

  const unimplementedSet = options.unimplemented ?? NOT_YET_IMPLEMENTED;
  const unimplemented = notImplemented(values, sources, unimplementedSet);
  if (unimplemented.length > 0) {
    const names = unimplemented.map(([n]) => `--${n}`).join(", ");
    const from = unimplemented.map(([, s]) => s).filter((s) => s !== "").join(", ");
    const verb = unimplemented.length === 1 ? "is" : "are";
    return exitWith(
      1,
      warningLines() + `etcd-ts: ${names} ${verb} not implemented yet${from ? ` (set by ${from})` : ""}\n`,
    );
  }

  const logger = values.get("logger");
  if (logger === "capnslog") return fail("--logger=capnslog is removed in v3.5");
  if (logger !== undefined && logger !== "zap") {
    return fail(`unknown logger option ${JSON.stringify(logger)}`);
  }

  let config: Config;
  try {
    config = buildConfig(values, fromFile);
    validateConfig(config, unimplementedSet);
    checkLogFiles(config.logOutputs, options.openLogFile ?? openForAppend);
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message);
    throw err;
  }
  if (!values.get("data-dir")) warnings.push(`'data-dir' was empty; using default ${config.dataDir}`);
  return { kind: "run", config, warnings };
}

/** etcd's `SetFlagsFromEnv` and `verifyEnv`: variables fill the flags not given on the command line. */
function applyEnvironment(
  parsed: ParsedArgs,
  env: Record<string, string>,
  values: Map<string, FlagValue>,
  sources: Sources,
  warnings: string[],
): { conflict?: string; error?: string } {
  for (const [name, v] of parsed.values) {
    values.set(name, v);
    sources.set(name, "");
  }
  const environment = { ...env };
  const version = environment["ETCD_VERSION"];
  if (version !== undefined && version !== "") {
    warnings.push(`cannot set special environment variable ETCD_VERSION=${version}; ignoring it`);
    delete environment["ETCD_VERSION"];
  }
  const alreadySet = new Set(parsed.set.map(envName));
  const used = new Set<string>();
  let error: string | undefined;
  for (const f of [...FLAG_BY_NAME.values()].sort((a, b) => compareBytes(a.name, b.name))) {
    const key = envName(f.name);
    if (alreadySet.has(key)) continue;
    const text = environment[key];
    if (text === undefined || text === "") continue;
    used.add(key);
    try {
      values.set(f.name, parseFlagText(f, text));
      sources.set(f.name, key);
    } catch (err) {
      error = `invalid value ${JSON.stringify(text)} for ${key}: ${reason(err)}`;
    }
  }
  for (const [key, text] of Object.entries(environment)) {
    if (used.has(key)) continue;
    if (alreadySet.has(key)) return { conflict: key };
    if (key.startsWith("ETCD_")) warnings.push(`unrecognized environment variable ${key}=${text}`);
  }
  return { error };
}

/** The text Go's os.Open gives after "open <path>: " for the errors a user can fix. */
function goOpenError(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file or directory";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.IsADirectory) return "is a directory";
  return err instanceof Error ? err.message : String(err);
}

function openForAppend(path: string): void {
  Deno.openSync(path, { append: true, create: true }).close();
}

/** etcd opens every log file of `--log-outputs` while it checks its flags; one it cannot open is refused. */
function checkLogFiles(outputs: readonly string[], open: (path: string) => void): void {
  for (const out of outputs) {
    if (out === "default" || out === "stderr" || out === "stdout") continue;
    try {
      open(out);
    } catch (err) {
      throw new ConfigError(
        `open sink ${JSON.stringify(out)}: open ${out}: ${goOpenError(err)} (--log-outputs)`,
        "log-outputs",
      );
    }
  }
}

function readConfigFile(
  path: string,
  readFile: (path: string) => string,
  parseYaml: ((text: string) => unknown) | undefined,
  values: Map<string, FlagValue>,
  sources: Sources,
  warnings: string[],
): void {
  if (!parseYaml) throw new ConfigError(`no YAML parser to read config file ${path}`);
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    throw new ConfigError(`open ${path}: ${goOpenError(err)}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    const msg = (err instanceof Error ? err.message : String(err)).split("\n")[0];
    throw new ConfigError(`error converting YAML to JSON: ${msg} (config file ${path})`);
  }
  if (doc === null || doc === undefined) return;
  if (!isMapping(doc)) {
    throw new ConfigError(`config file ${path}: the top level must be a mapping of keys to values`);
  }
  const visit = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [k, raw] of Object.entries(obj)) {
      const key = prefix + k;
      const f = FLAG_BY_FILE_KEY.get(key);
      if (!f) {
        if (
          prefix === "" &&
          ["client-transport-security", "peer-transport-security", "socket-options"].includes(k)
        ) {
          if (raw === null) continue;
          if (!isMapping(raw)) throw new ConfigError(`config file ${path}: ${k} must be a mapping`);
          visit(raw, key + ".");
          continue;
        }
        warnings.push(`unrecognized key ${JSON.stringify(key)} in config file ${path}; ignoring it`);
        continue;
      }
      if (raw === null || raw === undefined) continue;
      values.set(f.name, fileValue(f, key, raw, path));
      sources.set(f.name, `${key} in ${path}`);
    }
  };
  visit(doc, "");
  // etcd raises a zero certificate validity in a config file to its default of one year.
  if (values.get("self-signed-cert-validity") === 0) values.set("self-signed-cert-validity", 1);
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A config-file value converted to the flag's type, as etcd's YAML → JSON → Go struct decoding does. */
function fileValue(f: FlagDef, key: string, raw: unknown, path: string): FlagValue {
  const bad = (want: string): ConfigError =>
    new ConfigError(`config file ${path}: ${key} must be ${want}, not ${JSON.stringify(raw)}`, f.name);
  switch (f.type) {
    case "string":
      if (typeof raw === "object") throw bad("a string");
      return String(raw);
    case "bool":
      if (typeof raw !== "boolean") throw bad("true or false");
      return raw;
    case "uint":
    case "uint32":
    case "int": {
      if (typeof raw !== "number" || !Number.isInteger(raw)) throw bad("an integer");
      if (f.type !== "int" && raw < 0) throw bad("a non-negative integer");
      return raw;
    }
    case "duration":
      // etcd decodes durations in YAML as integer nanoseconds; a Go duration string is accepted as well.
      if (typeof raw === "number" && Number.isInteger(raw)) return raw / 1e6;
      if (typeof raw === "string") {
        try {
          return parseDurationMs(raw);
        } catch (err) {
          throw new ConfigError(`config file ${path}: ${key}: ${reason(err)}`, f.name);
        }
      }
      throw bad('a duration in nanoseconds or a duration string such as "5s"');
    case "urls":
      if (typeof raw !== "string") throw bad("a comma-separated string of URLs");
      if (raw === "") return defaultValue(f);
      try {
        return parseUrlList(raw);
      } catch (err) {
        throw new ConfigError(`unexpected error setting up ${key}: ${reason(err)}`, f.name);
      }
    case "list":
    case "set": {
      let items: string[];
      if (typeof raw === "string") items = splitList(raw);
      else if (Array.isArray(raw) && raw.every((x) => typeof x !== "object")) items = raw.map(String);
      else throw bad("a list of strings");
      return f.type === "set" ? [...new Set(items)].sort(compareBytes) : items;
    }
    case "choice": {
      if (typeof raw === "object") throw bad("a string");
      const s = String(raw);
      if (f.name === "initial-cluster-state") return s; // checked by validateConfig, with etcd's message
      if (!f.choices!.includes(s)) {
        throw new ConfigError(
          `config file ${path}: ${key} must be one of ${f.choices!.join(", ")}, not ${s}`,
          f.name,
        );
      }
      return s;
    }
    case "ignored":
      return true;
  }
}

/** The not-yet-implemented settings that differ from etcd's default, with where they came from. */
function notImplemented(
  values: Map<string, FlagValue>,
  sources: Sources,
  unimplemented: ReadonlySet<string>,
): [string, string][] {
  const out: [string, string][] = [];
  for (const f of FLAGS) {
    if (!unimplemented.has(f.name) || !values.has(f.name)) continue;
    const v = values.get(f.name)!;
    const isDefault = sameValue(v, defaultValue(f)) || (f.alsoDefault ?? []).some((d) => sameValue(v, d));
    if (!isDefault) out.push([f.name, sources.get(f.name) ?? ""]);
  }
  return out;
}

function buildConfig(values: Map<string, FlagValue>, fromFile: boolean): Config {
  const c = defaultConfig();
  for (const f of FLAGS) {
    const v = values.get(f.name);
    if (v !== undefined && f.set) f.set(c, v);
  }
  if (values.has("log-level")) c.logLevel = c.logLevel.toLowerCase() as LogLevel;
  if (c.dataDir === "" || !values.has("data-dir")) c.dataDir = `${c.name}.etcd`;
  // etcd: "updating snapshot-count to default".
  if (c.snapshotCount === 0) c.snapshotCount = DEFAULT_SNAPSHOT_COUNT;
  if (c.experimentalWatchProgressNotifyIntervalMs === 0) {
    c.experimentalWatchProgressNotifyIntervalMs = DEFAULT_WATCH_PROGRESS_NOTIFY_MS;
  }

  // --initial-cluster: discovery replaces the default one, and while the value is still the default a
  // member with its own name gets "<name>=<advertised peer URLs>" (etcd's UpdateDefaultClusterFromName).
  let cluster = (values.get("initial-cluster") as string | undefined) ?? DEFAULT_INITIAL_CLUSTER;
  const discovering = c.discovery !== "" || c.discoverySrv !== "" || (!fromFile && c.discoverySrvName !== "");
  if (discovering && (fromFile ? cluster === DEFAULT_INITIAL_CLUSTER : !values.has("initial-cluster"))) {
    cluster = "";
  }
  if (
    c.name !== DEFAULT_NAME && cluster === DEFAULT_INITIAL_CLUSTER && c.initialAdvertisePeerUrls.length > 0
  ) {
    const n = c.name === "" ? DEFAULT_NAME : c.name;
    cluster = c.initialAdvertisePeerUrls.map((u) => `${n}=${formatUrl(u)}`).join(",");
  }
  c.initialCluster = parseInitialCluster(cluster);

  // On the command line, an explicit --listen-client-urls needs an explicit --advertise-client-urls.
  if (!fromFile && values.has("listen-client-urls") && !values.has("advertise-client-urls")) {
    const proxy = values.get("proxy") ?? "off";
    const mayBeProxy = proxy !== "off" || (c.discovery !== "" && c.discoveryFallback === "proxy");
    if (!mayBeProxy) c.advertiseClientUrls = [];
  }
  return c;
}

// ---------------------------------------------------------------------------------------------------------
// Validation

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

  // Settings with a Config field whose feature is not there yet.
  const defaults = defaultConfig();
  for (const f of FLAGS) {
    if (f.get && unimplemented.has(f.name) && !sameValue(f.get(c), f.get(defaults))) {
      invalid(`--${f.name} is not implemented yet`, f.name);
    }
  }

  verifyBootstrap(c);
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
  const cluster = mine.map(formatUrl).sort(compareBytes);
  const advertised = c.initialAdvertisePeerUrls.map(formatUrl).sort(compareBytes);
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
