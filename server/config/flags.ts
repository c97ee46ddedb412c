/**
 * etcd 3.5's server flags as a table of records (see {@link FlagDef}): name, kind, default, usage, `--help`
 * group, the Config field filled and the config-file key. How a kind is parsed and stored lives in
 * `flag_kinds.ts`; which flags are refused as not implemented yet, in `unimplemented.ts`.
 *
 * @module
 */
import type { FlagDef } from "./flag_kinds.ts";
import { DEFAULT_LOG_ROTATION_CONFIG_JSON } from "./types.ts";
import { CLUSTERING_FLAGS, MEMBER_FLAGS, PROXY_FLAGS } from "./flags_member.ts";

/** The TLS flags of one side, clients or peers, with their config-file keys under `<side>-transport-security`. */
function tlsFlags(side: "client" | "peer"): FlagDef[] {
  const p = side === "peer" ? "peer-" : "";
  const key = side === "peer" ? "peer-transport-security" : "client-transport-security";
  const tls = side === "peer" ? "peerTls" : "clientTls";
  const who = side === "peer" ? "peer" : "client";
  return [
    {
      name: `${p}cert-file`,
      kind: "string",
      group: "security",
      def: "",
      usage: `Certificate (PEM) this member presents on its ${who} listeners.`,
      file: `${key}.cert-file`,
      field: `${tls}.certFile` as const,
    },
    {
      name: `${p}key-file`,
      kind: "string",
      group: "security",
      def: "",
      usage: `Private key (PEM) matching --${p}cert-file.`,
      file: `${key}.key-file`,
      field: `${tls}.keyFile` as const,
    },
    {
      name: side === "peer" ? "peer-client-cert-auth" : "client-cert-auth",
      kind: "bool",
      group: "security",
      def: "false",
      usage: `Require ${who}s to present a certificate signed by --${p}trusted-ca-file.`,
      file: `${key}.client-cert-auth`,
      field: `${tls}.clientCertAuth` as const,
    },
    {
      name: `${p}client-cert-file`,
      kind: "string",
      group: "security",
      def: "",
      usage: `Certificate this member uses when it acts as a ${who} itself (default: --${p}cert-file).`,
      file: `${key}.client-cert-file`,
      field: `${tls}.clientCertFile` as const,
    },
    {
      name: `${p}client-key-file`,
      kind: "string",
      group: "security",
      def: "",
      usage: `Private key matching --${p}client-cert-file.`,
      file: `${key}.client-key-file`,
      field: `${tls}.clientKeyFile` as const,
    },
    {
      name: `${p}trusted-ca-file`,
      kind: "string",
      group: "security",
      def: "",
      usage: `CA bundle used to verify ${who} certificates.`,
      file: `${key}.trusted-ca-file`,
      field: `${tls}.trustedCaFile` as const,
    },
    {
      name: side === "peer" ? "peer-auto-tls" : "auto-tls",
      kind: "bool",
      group: "security",
      def: "false",
      usage: `Generate a self-signed certificate for the ${who} listeners when none is given.`,
      file: `${key}.auto-tls`,
      field: `${tls}.autoTls` as const,
    },
    {
      name: side === "peer" ? "peer-crl-file" : "client-crl-file",
      kind: "string",
      group: "security",
      def: "",
      usage: `Certificate revocation list checked against ${who} certificates.`,
      file: null,
      field: `${tls}.crlFile` as const,
    },
    {
      name: side === "peer" ? "peer-cert-allowed-cn" : "client-cert-allowed-cn",
      kind: "list",
      group: "security",
      def: "",
      usage: `Comma-separated common names accepted in ${who} certificates (empty: any).`,
      file: `${key}.allowed-cn`,
      cli: side === "peer",
      field: `${tls}.allowedCn` as const,
    },
    {
      name: side === "peer" ? "peer-cert-allowed-hostname" : "client-cert-allowed-hostname",
      kind: "list",
      group: "security",
      def: "",
      usage: `Comma-separated SAN host names accepted in ${who} certificates (empty: any).`,
      file: `${key}.allowed-hostname`,
      field: `${tls}.allowedHostname` as const,
    },
  ];
}

/** Flags etcd 3.5 still accepts but no longer reads; given one, it warns and goes on. */
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

/**
 * etcd 3.5's server flags, plus the config-file keys etcd reads that have no flag of their own. The order
 * is that of `--help` within each group, and of messages that name several flags.
 */
export const FLAGS: readonly FlagDef[] = [
  {
    name: "config-file",
    kind: "string",
    group: "hidden",
    def: "",
    usage: "",
    file: null,
  },
  ...MEMBER_FLAGS,
  ...CLUSTERING_FLAGS,
  ...PROXY_FLAGS,
  // Security
  ...tlsFlags("client"),
  ...tlsFlags("peer"),
  {
    name: "self-signed-cert-validity",
    kind: "uint",
    group: "security",
    def: "1",
    usage: "Years the certificates made by --auto-tls and --peer-auto-tls stay valid.",
    field: "selfSignedCertValidity",
  },
  {
    name: "cipher-suites",
    kind: "strings",
    group: "security",
    def: "",
    usage: "Comma-separated TLS 1.2 cipher suites to accept, in Go's names; only the ECDHE AEAD ones " +
      "(AES-GCM, ChaCha20-Poly1305) exist in etcd-ts (empty: all of those).",
    field: "cipherSuites",
  },
  {
    name: "experimental-peer-skip-client-san-verification",
    kind: "bool",
    group: "security",
    def: "false",
    usage: "Do not check the SAN of certificates presented by peers.",
    // etcd 3.5 reads it from the command line only; its config file has no such key.
    file: null,
    field: "peerSkipClientSanVerification",
  },
  {
    name: "tls-min-version",
    kind: "string",
    group: "security",
    def: "TLS1.2",
    usage: "Oldest TLS version accepted: TLS1.2 or TLS1.3.",
    field: "tlsMinVersion",
  },
  {
    name: "tls-max-version",
    kind: "string",
    group: "security",
    def: "",
    usage: "Newest TLS version accepted: TLS1.2 or TLS1.3 (empty: the runtime's).",
    field: "tlsMaxVersion",
  },
  {
    name: "cors",
    kind: "set",
    group: "security",
    def: "*",
    usage: "Comma-separated origins allowed for cross-origin requests ('*': any).",
    field: "cors",
  },
  {
    name: "host-whitelist",
    kind: "set",
    group: "security",
    def: "*",
    usage: "Comma-separated Host header values accepted on insecure listeners ('*': any).",
    field: "hostWhitelist",
  },
  // Auth
  {
    name: "auth-token",
    kind: "string",
    group: "auth",
    def: "simple",
    usage: "Kind of auth token and its options: 'simple' or 'jwt,...'.",
    field: "authToken",
  },
  {
    name: "bcrypt-cost",
    kind: "uint",
    group: "auth",
    def: "10",
    usage: "bcrypt work factor for stored passwords.",
    field: "bcryptCost",
  },
  {
    name: "auth-token-ttl",
    kind: "uint",
    group: "auth",
    def: "300",
    usage: "Seconds a 'simple' auth token lives.",
    field: "authTokenTtlSeconds",
  },
  // Profiling and monitoring
  {
    name: "enable-pprof",
    kind: "bool",
    group: "monitoring",
    def: "false",
    usage: "Serve runtime profiles under /debug/pprof/ on the client URLs.",
    field: "enablePprof",
  },
  {
    name: "metrics",
    kind: "string",
    group: "monitoring",
    def: "basic",
    usage: "Metrics detail: 'basic', or 'extensive' to add gRPC latency histograms.",
    field: "metrics",
  },
  {
    name: "listen-metrics-urls",
    kind: "urls",
    group: "monitoring",
    def: "",
    usage: "Extra comma-separated URLs serving only /metrics and /health.",
    field: "listenMetricsUrls",
  },
  // Logging
  {
    name: "logger",
    kind: "string",
    group: "logging",
    def: "zap",
    usage: "Logger implementation; only 'zap' (JSON lines) exists.",
  },
  {
    name: "log-outputs",
    kind: "set",
    group: "logging",
    def: "default",
    usage: "Where logs go: 'default' or 'stderr', 'stdout', or file paths, comma-separated.",
    field: "logOutputs",
  },
  {
    name: "log-level",
    kind: "string",
    group: "logging",
    def: "info",
    usage: "Least severe level logged: debug, info, warn, error, panic or fatal.",
    field: "logLevel",
  },
  {
    name: "enable-log-rotation",
    kind: "bool",
    group: "logging",
    def: "false",
    usage: "Rotate the log file named by --log-outputs.",
    field: "enableLogRotation",
  },
  {
    name: "log-rotation-config-json",
    kind: "string",
    group: "logging",
    def: DEFAULT_LOG_ROTATION_CONFIG_JSON,
    usage: "Rotation limits, as JSON, used with --enable-log-rotation.",
    field: "logRotationConfigJson",
  },
  // Distributed tracing
  {
    name: "experimental-enable-distributed-tracing",
    kind: "bool",
    group: "tracing",
    def: "false",
    usage: "Export OpenTelemetry traces.",
  },
  {
    name: "experimental-distributed-tracing-address",
    kind: "string",
    group: "tracing",
    def: "localhost:4317",
    usage: "Address of the trace collector.",
  },
  {
    name: "experimental-distributed-tracing-service-name",
    kind: "string",
    group: "tracing",
    def: "etcd",
    usage: "Service name attached to the traces.",
  },
  {
    name: "experimental-distributed-tracing-instance-id",
    kind: "string",
    group: "tracing",
    def: "",
    usage: "Instance ID attached to the traces; unique per member.",
  },
  {
    name: "experimental-distributed-tracing-sampling-rate",
    kind: "int",
    group: "tracing",
    def: "0",
    usage: "Spans sampled per million.",
  },
  // Experimental
  {
    name: "experimental-initial-corrupt-check",
    kind: "bool",
    group: "experimental",
    def: "false",
    usage: "Compare the key-space hash with the other members before serving.",
    field: "experimentalInitialCorruptCheck",
  },
  {
    name: "experimental-corrupt-check-time",
    kind: "duration",
    group: "experimental",
    def: "0s",
    usage: "Interval between periodic corruption checks across the cluster (0: off).",
    field: "experimentalCorruptCheckTimeMs",
  },
  {
    name: "experimental-compact-hash-check-enabled",
    kind: "bool",
    group: "experimental",
    def: "false",
    usage: "Have the leader compare the followers' hashes after compactions.",
  },
  {
    name: "experimental-compact-hash-check-time",
    kind: "duration",
    group: "experimental",
    def: "1m0s",
    usage: "Interval of those compaction hash checks.",
  },
  {
    name: "experimental-enable-lease-checkpoint",
    kind: "bool",
    group: "experimental",
    def: "false",
    usage: "Have the leader checkpoint lease TTLs so a new leader does not reset them.",
  },
  {
    name: "experimental-enable-lease-checkpoint-persist",
    kind: "bool",
    group: "experimental",
    def: "false",
    usage: "Also persist the checkpointed TTLs (needs --experimental-enable-lease-checkpoint).",
  },
  {
    name: "experimental-compaction-batch-limit",
    kind: "int",
    group: "experimental",
    def: "0",
    usage: "Most revisions removed per compaction batch.",
  },
  {
    name: "experimental-compaction-sleep-interval",
    kind: "duration",
    group: "experimental",
    def: "0s",
    usage: "Pause between two compaction batches.",
  },
  {
    name: "experimental-watch-progress-notify-interval",
    kind: "duration",
    group: "experimental",
    def: "10m0s",
    usage: "Interval of progress notifications on watches that asked for them.",
    field: "experimentalWatchProgressNotifyIntervalMs",
  },
  {
    name: "experimental-downgrade-check-time",
    kind: "duration",
    group: "experimental",
    def: "5s",
    usage: "Interval between two checks of a cluster downgrade's progress.",
  },
  {
    name: "experimental-warning-apply-duration",
    kind: "duration",
    group: "experimental",
    def: "100ms",
    usage: "Log a warning for requests whose apply takes longer than this.",
  },
  {
    name: "experimental-memory-mlock",
    kind: "bool",
    group: "experimental",
    def: "false",
    usage: "Lock the backend's pages in RAM.",
  },
  {
    name: "experimental-txn-mode-write-with-shared-buffer",
    kind: "bool",
    group: "experimental",
    def: "true",
    usage: "Let write transactions read through the shared read buffer.",
  },
  {
    name: "experimental-stop-grpc-service-on-defrag",
    kind: "bool",
    group: "experimental",
    def: "false",
    usage: "Report the gRPC service as not serving while a defragmentation runs.",
  },
  {
    name: "experimental-bootstrap-defrag-threshold-megabytes",
    kind: "uint",
    group: "experimental",
    def: "0",
    usage: "Defragment at boot when that frees at least this many megabytes (0: never).",
  },
  {
    name: "experimental-snapshot-catchup-entries",
    kind: "uint",
    group: "experimental",
    def: "5000",
    usage: "Log entries kept after a snapshot so slow followers can catch up without one.",
    file: "experimental-snapshot-catch-up-entries",
  },
  // Unsafe
  {
    name: "force-new-cluster",
    kind: "bool",
    group: "unsafe",
    def: "false",
    usage: "Restart as a one-member cluster from this member's data, dropping the other members.",
    field: "forceNewCluster",
  },
  {
    name: "unsafe-no-fsync",
    kind: "bool",
    group: "unsafe",
    def: "false",
    usage: "Never fsync; a crash can lose acknowledged writes.",
  },
  // Version
  { name: "version", kind: "bool", group: "hidden", def: "false", usage: "", file: null },
  ...IGNORED_FLAGS.map((name): FlagDef => ({
    name,
    kind: "ignored",
    group: "hidden",
    def: "",
    usage: "",
    file: null,
  })),
];

/** The command-line flags (and so the `ETCD_*` variables) by name. */
export const FLAG_BY_NAME: ReadonlyMap<string, FlagDef> = new Map(
  FLAGS.filter((f) => f.cli !== false).map((f) => [f.name, f]),
);
/** The flags by their config-file key. */
export const FLAG_BY_FILE_KEY: ReadonlyMap<string, FlagDef> = new Map(
  FLAGS.filter((f) => f.file !== null).map((f) => [f.file ?? f.name, f]),
);
