/**
 * The member's configuration as a value: the {@link Config} type, etcd's defaults, and the error and result
 * types of parsing and validation. Everything else in this room turns text into these values or checks them.
 *
 * @module
 */
import type { LogLevel } from "../logger.ts";

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
  /** Certificate this member presents when it dials as a client ("" = certFile). */
  clientCertFile: string;
  /** Key of clientCertFile ("" = keyFile). */
  clientKeyFile: string;
}

/** A TLS version as etcd's `--tls-min-version` / `--tls-max-version` name it. */
export type TlsVersion = "TLS1.2" | "TLS1.3";

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
  /** Member name -> its peer URLs; empty when the cluster comes from discovery. */
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
  /** v3 discovery (etcd 3.6): the registry token, with {@link Config.discoveryEndpoints}. */
  discoveryToken: string;
  /** v3 discovery: client URLs of the cluster that holds the registry. */
  discoveryEndpoints: string[];
  discoveryDialTimeoutMs: number;
  discoveryRequestTimeoutMs: number;
  discoveryKeepAliveTimeMs: number;
  discoveryKeepAliveTimeoutMs: number;
  discoveryInsecureTransport: boolean;
  discoveryInsecureSkipTlsVerify: boolean;
  discoveryCert: string;
  discoveryKey: string;
  discoveryCacert: string;
  discoveryUser: string;
  discoveryPassword: string;
  strictReconfigCheck: boolean;
  enableV2: boolean;
  logLevel: LogLevel;
  /** etcd's `--log-outputs`: `default`, `stderr`, `stdout` or file paths. */
  logOutputs: string[];
  /** `--enable-log-rotation`: rotate the one log file of {@link Config.logOutputs}. */
  enableLogRotation: boolean;
  /** `--log-rotation-config-json`: etcd's lumberjack settings (maxsize MB, maxage days, maxbackups, ...). */
  logRotationConfigJson: string;
  /** `--enable-grpc-gateway`: serve the JSON mapping of the v3 API under /v3/ on the client URLs. */
  enableGrpcGateway: boolean;
  /** `--cors`: origins allowed for cross-origin requests on the client URLs; `*` allows any. */
  cors: string[];
  /** `--host-whitelist`: Host header values accepted on insecure client listeners; `*` accepts any. */
  hostWhitelist: string[];
  /** `--enable-ui`: serve the dashboard at /ui on the client URLs. */
  enableUi: boolean;
  /** `--busy-poll-duration`: how long a member polls for a client's next request after answering (ms; 0: never). */
  busyPollMs: number;
  experimentalWatchProgressNotifyIntervalMs: number;
  forceNewCluster: boolean;
  enablePprof: boolean;
  listenMetricsUrls: URL[];
  metrics: "basic" | "extensive";
  experimentalInitialCorruptCheck: boolean;
  /** Interval of the leader's periodic corruption check; 0: off. */
  experimentalCorruptCheckTimeMs: number;
  /** `--auth-token`: `simple`, or `jwt` followed by its options (`,pub-key=...,priv-key=...,sign-method=...`). */
  authToken: string;
  /** Seconds a simple token lives after its last use. */
  authTokenTtlSeconds: number;
  /** bcrypt's work factor for new passwords. */
  bcryptCost: number;
  maxSnapshots: number;
  maxWals: number;
  grpcKeepAliveMinTimeMs: number;
  grpcKeepAliveIntervalMs: number;
  grpcKeepAliveTimeoutMs: number;
  /** Years the certificates made by `--auto-tls` / `--peer-auto-tls` stay valid (a positive integer). */
  selfSignedCertValidity: number;
  /**
   * The TLS 1.2 cipher suites to accept, in Go's (IANA) names, in the order given; empty: the TLS stack's
   * choice. Only the names of `TLS12_CIPHER_SUITES` (`cipher_suites.ts`) pass validation.
   */
  cipherSuites: string[];
  /** The oldest TLS version accepted. */
  tlsMinVersion: TlsVersion;
  /** The newest TLS version accepted; "" = the newest the TLS stack has. */
  tlsMaxVersion: "" | TlsVersion;
  /** Do not check that a peer's certificate names the address it connects from. */
  peerSkipClientSanVerification: boolean;
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

/** etcd's member name when none is given. */
export const DEFAULT_NAME = "default";
/** etcd's `--listen-peer-urls` and `--initial-advertise-peer-urls`. */
export const DEFAULT_LISTEN_PEER_URL = "http://localhost:2380";
/** etcd's `--listen-client-urls` and `--advertise-client-urls`. */
export const DEFAULT_LISTEN_CLIENT_URL = "http://localhost:2379";
/** etcd's `--initial-cluster`: the default member alone. */
export const DEFAULT_INITIAL_CLUSTER = `${DEFAULT_NAME}=${DEFAULT_LISTEN_PEER_URL}`;
/** etcd's `--snapshot-count`, also what a count of 0 stands for. */
export const DEFAULT_SNAPSHOT_COUNT = 100_000;
/** etcd's default `--log-rotation-config-json`. */
export const DEFAULT_LOG_ROTATION_CONFIG_JSON =
  '{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}';
/** etcd's watch progress interval, also what an interval of 0 stands for. */
export const DEFAULT_WATCH_PROGRESS_NOTIFY_MS = 10 * 60 * 1000;

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
    clientCertFile: "",
    clientKeyFile: "",
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
    discoveryToken: "",
    discoveryEndpoints: [],
    discoveryDialTimeoutMs: 2000,
    discoveryRequestTimeoutMs: 5000,
    discoveryKeepAliveTimeMs: 2000,
    discoveryKeepAliveTimeoutMs: 6000,
    discoveryInsecureTransport: true,
    discoveryInsecureSkipTlsVerify: false,
    discoveryCert: "",
    discoveryKey: "",
    discoveryCacert: "",
    discoveryUser: "",
    discoveryPassword: "",
    strictReconfigCheck: true,
    enableV2: false,
    logLevel: "info",
    logOutputs: ["default"],
    enableLogRotation: false,
    logRotationConfigJson: DEFAULT_LOG_ROTATION_CONFIG_JSON,
    enableGrpcGateway: true,
    cors: ["*"],
    hostWhitelist: ["*"],
    enableUi: true,
    busyPollMs: 0.5,
    experimentalWatchProgressNotifyIntervalMs: DEFAULT_WATCH_PROGRESS_NOTIFY_MS,
    forceNewCluster: false,
    enablePprof: false,
    listenMetricsUrls: [],
    metrics: "basic",
    experimentalInitialCorruptCheck: false,
    experimentalCorruptCheckTimeMs: 0,
    authToken: "simple",
    authTokenTtlSeconds: 300,
    bcryptCost: 10,
    maxSnapshots: 5,
    maxWals: 5,
    grpcKeepAliveMinTimeMs: 5_000,
    grpcKeepAliveIntervalMs: 2 * 60 * 60 * 1000,
    grpcKeepAliveTimeoutMs: 20_000,
    selfSignedCertValidity: 1,
    cipherSuites: [],
    tlsMinVersion: "TLS1.2",
    tlsMaxVersion: "",
    peerSkipClientSanVerification: false,
  };
}
