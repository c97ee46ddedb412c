/**
 * The settings etcd accepts that etcd-ts does not implement yet: the one list to edit when a feature lands.
 *
 * @module
 */

/**
 * Settings that have a Config field and are parsed, but that nothing acts on yet (gRPC keepalive, WAL file
 * retention). The command line refuses
 * them like the rest of {@link NOT_YET_IMPLEMENTED}; {@link validateConfig} does not look at their fields, so
 * a Config built in code may carry any value there.
 */
export const SETTINGS_WITHOUT_EFFECT_YET: readonly string[] = [
  "grpc-keepalive-min-time",
  "grpc-keepalive-interval",
  "grpc-keepalive-timeout",
  "max-wals",
];

/**
 * Flags (names without dashes, as on etcd's command line; `client-cert-allowed-cn` is the config file's
 * `client-transport-security.allowed-cn`) that etcd accepts but etcd-ts does not implement yet. Setting one
 * to anything but its default (by flag, `ETCD_*` variable or config-file key) makes etcd-ts refuse to
 * start. Remove a name here when its feature lands; this set is the only switch.
 */
export const NOT_YET_IMPLEMENTED: ReadonlySet<string> = new Set([
  // v2 API emulation and proxy
  "experimental-enable-v2v3",
  "v2-deprecation",
  "proxy",
  "proxy-failure-wait",
  "proxy-refresh-interval",
  "proxy-dial-timeout",
  "proxy-write-timeout",
  "proxy-read-timeout",
  // monitoring and logging
  "enable-pprof",
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
  "socket-reuse-port",
  "socket-reuse-address",
  "raft-read-timeout",
  "raft-write-timeout",
  "pre-vote",
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

/**
 * The settings of {@link NOT_YET_IMPLEMENTED} that {@link validateConfig} also refuses on a Config built in
 * code, where their field differs from etcd's default: all but {@link SETTINGS_WITHOUT_EFFECT_YET}.
 */
export const REFUSED_IN_A_CONFIG: ReadonlySet<string> = new Set(
  [...NOT_YET_IMPLEMENTED].filter((n) => !SETTINGS_WITHOUT_EFFECT_YET.includes(n)),
);
