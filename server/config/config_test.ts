import { assert, assertEquals, assertMatch, assertThrows } from "../../tests/assert.ts";
import { parse as parseYaml } from "yaml";
import {
  type Config,
  ConfigError,
  defaultConfig,
  formatUrl,
  NOT_YET_IMPLEMENTED,
  parseCommandLine,
  parseDurationMs,
  parseInitialCluster,
  type ParseResult,
  SETTINGS_WITHOUT_EFFECT_YET,
  validateConfig,
} from "./mod.ts";

const NOW = new Date("2026-11-25T04:00:00.000Z");

/**
 * The refused settings these parsing tests use: the server's set minus the settings that are parsed into
 * a Config but have no effect yet, so that their parsing is still exercised in every form (the last test
 * checks that the real set refuses them).
 */
const PARSED_ONLY = new Set([...NOT_YET_IMPLEMENTED].filter((n) => !SETTINGS_WITHOUT_EFFECT_YET.includes(n)));

function parse(
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

function run(
  args: string[],
  env: Record<string, string> = {},
  files: Record<string, string> = {},
): { config: Config; warnings: string[] } {
  const r = parse(args, env, files);
  if (r.kind !== "run") throw new Error(`expected to run, got exit ${r.code}: ${r.stderr}`);
  return r;
}

function exit(
  args: string[],
  env: Record<string, string> = {},
  files: Record<string, string> = {},
): { code: number; stdout: string; stderr: string } {
  const r = parse(args, env, files);
  if (r.kind !== "exit") throw new Error(`expected to exit, got a config for ${r.config.name}`);
  return r;
}

/** The JSON log lines of an exit's stderr. */
function logLines(stderr: string): Record<string, unknown>[] {
  return stderr.trim().split("\n").map((l) => JSON.parse(l));
}

/** The "failed to verify flags" error of an exit 1. */
function verifyError(
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
function plain(c: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) {
    if (v instanceof Map) out[k] = Object.fromEntries([...v].map(([n, us]) => [n, us.map(formatUrl)]));
    else if (Array.isArray(v)) out[k] = v.map((x) => (x instanceof URL ? formatUrl(x) : x));
    else out[k] = v;
  }
  return out;
}

function urlsOf(list: URL[]): string[] {
  return list.map(formatUrl);
}

/** Every flag etcd 3.5.33's `etcd` command defines (server/etcdmain/config.go). */
const ETCD_35_FLAGS = (
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

// ---------------------------------------------------------------------------------------------------------
// Defaults

Deno.test("config: defaults are etcd's", () => {
  const c = plain(defaultConfig());
  assertEquals(c, {
    name: "default",
    dataDir: "default.etcd",
    walDir: "",
    listenClientUrls: ["http://localhost:2379"],
    advertiseClientUrls: ["http://localhost:2379"],
    listenPeerUrls: ["http://localhost:2380"],
    initialAdvertisePeerUrls: ["http://localhost:2380"],
    initialCluster: { default: ["http://localhost:2380"] },
    initialClusterState: "new",
    initialClusterToken: "etcd-cluster",
    snapshotCount: 100000,
    heartbeatIntervalMs: 100,
    electionTimeoutMs: 1000,
    quotaBackendBytes: 0,
    maxRequestBytes: 1572864,
    maxTxnOps: 128,
    autoCompactionMode: "periodic",
    autoCompactionRetention: "0",
    clientTls: {
      certFile: "",
      keyFile: "",
      trustedCaFile: "",
      clientCertAuth: false,
      autoTls: false,
      crlFile: "",
      allowedCn: "",
      allowedHostname: "",
    },
    peerTls: {
      certFile: "",
      keyFile: "",
      trustedCaFile: "",
      clientCertAuth: false,
      autoTls: false,
      crlFile: "",
      allowedCn: "",
      allowedHostname: "",
    },
    discovery: "",
    discoverySrv: "",
    discoverySrvName: "",
    discoveryFallback: "proxy",
    discoveryProxy: "",
    strictReconfigCheck: true,
    enableV2: false,
    logLevel: "info",
    logOutputs: ["default"],
    experimentalWatchProgressNotifyIntervalMs: 600000,
    forceNewCluster: false,
    enablePprof: false,
    listenMetricsUrls: [],
    metrics: "basic",
    experimentalInitialCorruptCheck: false,
    maxSnapshots: 5,
    maxWals: 5,
    grpcKeepAliveMinTimeMs: 5000,
    grpcKeepAliveIntervalMs: 7200000,
    grpcKeepAliveTimeoutMs: 20000,
  });
  validateConfig(defaultConfig());
});

Deno.test("config: no flags gives the defaults, and etcd's warning about the data dir", () => {
  const { config, warnings } = run([]);
  assertEquals(plain(config), plain(defaultConfig()));
  assertEquals(warnings, ["'data-dir' was empty; using default default.etcd"]);
});

Deno.test("config: defaultConfig returns a fresh object each time", () => {
  const a = defaultConfig();
  a.listenClientUrls.push(new URL("http://127.0.0.1:1"));
  a.clientTls.certFile = "x";
  const b = defaultConfig();
  assertEquals(urlsOf(b.listenClientUrls), ["http://localhost:2379"]);
  assertEquals(b.clientTls.certFile, "");
});

// ---------------------------------------------------------------------------------------------------------
// Flag forms, as Go's flag package reads them

Deno.test("config: flags in every form Go's flag package accepts", async (t) => {
  for (const args of [["--name", "x"], ["--name=x"], ["-name", "x"], ["-name=x"]]) {
    await t.step(args.join(" "), () => {
      assertEquals(run(args).config.name, "x");
    });
  }
  await t.step("a value may start with a dash", () => {
    assertEquals(run(["--initial-cluster-token", "-tok", "--name", "n"]).config.initialClusterToken, "-tok");
  });
  await t.step("the last of repeated flags wins", () => {
    assertEquals(run(["--name", "a", "--name", "b"]).config.name, "b");
  });
  await t.step("booleans: bare, =true/=false and Go's other spellings", () => {
    assertEquals(run(["--force-new-cluster"]).config.forceNewCluster, true);
    assertEquals(run(["-force-new-cluster=true"]).config.forceNewCluster, true);
    assertEquals(run(["--force-new-cluster=false"]).config.forceNewCluster, false);
    assertEquals(run(["--strict-reconfig-check=0"]).config.strictReconfigCheck, false);
    assertEquals(run(["--strict-reconfig-check=F"]).config.strictReconfigCheck, false);
    assertEquals(
      run(["--experimental-initial-corrupt-check=T"]).config.experimentalInitialCorruptCheck,
      true,
    );
  });
  await t.step("integers in Go's base-0 syntax", () => {
    assertEquals(run(["--max-txn-ops", "0x10"]).config.maxTxnOps, 16);
    assertEquals(run(["--max-txn-ops", "010"]).config.maxTxnOps, 8);
    assertEquals(run(["--max-txn-ops", "0b11"]).config.maxTxnOps, 3);
    assertEquals(run(["--snapshot-count", "1_000"]).config.snapshotCount, 1000);
    assertEquals(run(["--quota-backend-bytes", "-1"]).config.quotaBackendBytes, -1);
    assertEquals(run(["--quota-backend-bytes", "8589934592"]).config.quotaBackendBytes, 8589934592);
  });
  await t.step("durations in Go's syntax", () => {
    const c = run([
      "--grpc-keepalive-min-time",
      "1m30s",
      "--grpc-keepalive-interval=1.5h",
      "--grpc-keepalive-timeout",
      "250ms",
      "--experimental-watch-progress-notify-interval",
      "2s",
    ]).config;
    assertEquals(c.grpcKeepAliveMinTimeMs, 90000);
    assertEquals(c.grpcKeepAliveIntervalMs, 5400000);
    assertEquals(c.grpcKeepAliveTimeoutMs, 250);
    assertEquals(c.experimentalWatchProgressNotifyIntervalMs, 2000);
  });
  await t.step("URL lists are sorted and deduplicated, as etcd's", () => {
    const c = run([
      "--listen-client-urls",
      "http://127.0.0.1:2479, http://127.0.0.1:2379,http://127.0.0.1:2479",
      "--advertise-client-urls",
      "HTTP://127.0.0.1:2379",
    ]).config;
    assertEquals(urlsOf(c.listenClientUrls), ["http://127.0.0.1:2379", "http://127.0.0.1:2479"]);
    assertEquals(urlsOf(c.advertiseClientUrls), ["http://127.0.0.1:2379"]);
  });
  await t.step("log outputs are deduplicated and sorted", () => {
    assertEquals(run(["--log-outputs", "stdout,stderr,stdout"]).config.logOutputs, ["stderr", "stdout"]);
  });
  await t.step("log files are opened before the member starts, only they", () => {
    const opened: string[] = [];
    const r = parseCommandLine(["--log-outputs", "stdout,/var/log/etcd.log"], {}, {
      version: "9.9.9",
      etcdVersion: "3.5.99",
      openLogFile: (path) => opened.push(path),
    });
    assertEquals(r.kind, "run");
    assertEquals(opened, ["/var/log/etcd.log"]);
  });
  await t.step("log level is case-insensitive like zap's", () => {
    assertEquals(run(["--log-level", "DEBUG"]).config.logLevel, "debug");
  });
  await t.step("flags etcd 3.5 ignores are accepted, with a warning", () => {
    const { config, warnings } = run(["-v", "--peer-heartbeat-interval=5", "--name", "x"]);
    assertEquals(config.name, "x");
    assert(warnings.includes("flag --v is no longer supported; ignoring it"), warnings.join("|"));
    assert(warnings.includes("flag --peer-heartbeat-interval is no longer supported; ignoring it"));
  });
});

Deno.test("config: every flag etcd 3.5 defines is accepted at its default", () => {
  for (const name of ETCD_35_FLAGS) {
    if (name === "version" || name === "config-file") continue;
    const args = [`--${name}=${defaultText(name)}`];
    // An explicit --listen-client-urls needs --advertise-client-urls, as in etcd.
    if (name === "listen-client-urls") args.push("--advertise-client-urls=http://localhost:2379");
    const r = parse(args);
    assert(r.kind === "run", `--${name}: ${r.kind === "exit" ? r.stderr : ""}`);
  }
});

/** etcd's default of a flag, as text (from the help output, which lists them). */
function defaultText(name: string): string {
  const help = exit(["--help"]).stdout;
  const m = new RegExp(`^  --${name.replaceAll(".", "\\.")} '(.*)'$`, "m").exec(help);
  if (m) return m[1].replace("${name}", "default");
  return "true"; // ignored flags
}

Deno.test("config: Go's flag errors exit 2 with the message and the usage", async (t) => {
  const cases: [string[], string][] = [
    [["--foo"], "flag provided but not defined: -foo"],
    [["-foo=1"], "flag provided but not defined: -foo"],
    [["---name", "x"], "bad flag syntax: ---name"],
    [["-=x"], "bad flag syntax: -=x"],
    [["--name"], "flag needs an argument: -name"],
    [
      ["--initial-cluster-state", "bogus"],
      'invalid value "bogus" for flag -initial-cluster-state: invalid value',
    ],
    [["--snapshot-count", "abc"], 'invalid value "abc" for flag -snapshot-count: parse error'],
    [["--snapshot-count=-1"], 'invalid value "-1" for flag -snapshot-count: parse error'],
    [["--heartbeat-interval", "-1"], 'invalid value "-1" for flag -heartbeat-interval: parse error'],
    [
      ["--max-txn-ops", "18446744073709551616"],
      'invalid value "18446744073709551616" for flag -max-txn-ops: value out of range',
    ],
    [["--grpc-keepalive-min-time", "5"], 'invalid value "5" for flag -grpc-keepalive-min-time: parse error'],
    [["--enable-v2=maybe"], 'invalid boolean value "maybe" for -enable-v2: parse error'],
    [["--discovery-fallback", "never"], 'invalid value "never" for flag -discovery-fallback: invalid value'],
    [
      ["--listen-client-urls", "http://127.0.0.1:1/x"],
      'invalid value "http://127.0.0.1:1/x" for flag -listen-client-urls: URL must not contain a path: http://127.0.0.1:1/x',
    ],
    [
      ["--listen-client-urls", "ftp://127.0.0.1:1"],
      'invalid value "ftp://127.0.0.1:1" for flag -listen-client-urls: URL scheme must be http, https, unix, or unixs: ftp://127.0.0.1:1',
    ],
    [
      ["--listen-client-urls", "127.0.0.1:1"],
      'invalid value "127.0.0.1:1" for flag -listen-client-urls: parse "127.0.0.1:1": first path segment in URL cannot contain colon',
    ],
    [
      ["--listen-peer-urls", "localhost:2380"],
      'invalid value "localhost:2380" for flag -listen-peer-urls: URL scheme must be http, https, unix, or unixs: localhost:2380',
    ],
    [
      ["--advertise-client-urls", "http://127.0.0.1"],
      'invalid value "http://127.0.0.1" for flag -advertise-client-urls: URL address does not have the form "host:port": http://127.0.0.1',
    ],
    [
      ["--initial-advertise-peer-urls", "http://127.0.0.1:x"],
      'invalid value "http://127.0.0.1:x" for flag -initial-advertise-peer-urls: parse "http://127.0.0.1:x": invalid port ":x" after host',
    ],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), () => {
      const r = exit(args);
      assertEquals(r.code, 2);
      assertEquals(r.stdout, "");
      const [first, second] = r.stderr.split("\n");
      assertEquals(first, message);
      assertEquals(second, "Usage:");
      assertMatch(r.stderr, /etcd-ts -h \| --help/);
    });
  }
});

Deno.test("config: a non-flag argument stops parsing and is refused like etcd's", () => {
  assertEquals(verifyError(["--name", "x", "extra"]), "'extra' is not a valid flag");
  // A boolean takes no separate value: "false" is an argument.
  assertEquals(verifyError(["--force-new-cluster", "false"]), "'false' is not a valid flag");
  assertEquals(verifyError(["--", "--name", "x"]), "'--name' is not a valid flag");
});

// ---------------------------------------------------------------------------------------------------------
// --version and --help

Deno.test("config: --version prints etcd-ts's release, then etcd's lines with Deno's in place of Go's", () => {
  for (const flag of ["--version", "-version", "--version=true"]) {
    const r = exit([flag, "--name", "x"]);
    assertEquals(r.code, 0);
    assertEquals(r.stderr, "");
    assertEquals(
      r.stdout,
      "etcd-ts Version: 9.9.9\netcd Version: 3.5.99\nGit SHA: Not provided\n" +
        `Deno Version: ${Deno.version.deno}\nDeno OS/Arch: ${Deno.build.os}/${Deno.build.arch}\n`,
    );
  }
  assertEquals(parse(["--version=false"]).kind, "run");
});

Deno.test("config: --help/-h print the usage on stderr and the flags by group on stdout", () => {
  for (const flag of ["-h", "--help", "-help", "--h=1"]) {
    const r = exit(["--name", "x", flag]);
    assertEquals(r.code, 0);
    assert(r.stderr.startsWith("Usage:\n"));
    assertMatch(r.stderr, /etcd-ts --config-file/);
    for (const group of ["Member:", "Clustering:", "Security:", "Logging:", "Experimental:", "Unsafe"]) {
      assert(r.stdout.includes(`\n${group}`), `help lacks ${group}`);
    }
  }
  const help = exit(["--help"]).stdout;
  assertMatch(help, /^ {2}--name 'default'\n {6}\S/m);
  assertMatch(help, /^ {2}--cert-file ''\n.*\[not implemented yet\]$/m);
  assert(!/^ {2}--name 'default'\n.*not implemented/m.test(help));
  // Every flag in the help is accepted, and every etcd flag (but the special ones) is in the help.
  const listed = [...help.matchAll(/^ {2}--([a-z0-9.-]+) /gm)].map((m) => m[1]);
  const hidden = new Set(["version", "config-file", "cluster-active-size", "cluster-remove-delay"]);
  for (const name of ETCD_35_FLAGS) {
    if (hidden.has(name) || name.startsWith("test.") || /^(config|force|v|vv|snapshot)$/.test(name)) continue;
    if (/^(max-result-buffer|max-retry-attempts|peer-heartbeat-interval|peer-election-timeout)$/.test(name)) {
      continue;
    }
    if (/^(retry-interval|cluster-sync-interval)$/.test(name)) continue;
    assert(listed.includes(name), `help lacks --${name}`);
  }
  for (const name of listed) assert(ETCD_35_FLAGS.includes(name), `help lists unknown --${name}`);
});

// ---------------------------------------------------------------------------------------------------------
// Environment

Deno.test("config: ETCD_* variables set the flags not given on the command line", () => {
  const { config, warnings } = run(["--data-dir", "/tmp/d"], {
    ETCD_NAME: "infra1",
    ETCD_INITIAL_CLUSTER: "infra1=http://127.0.0.1:2380",
    ETCD_INITIAL_ADVERTISE_PEER_URLS: "http://127.0.0.1:2380",
    ETCD_FORCE_NEW_CLUSTER: "true",
    ETCD_GRPC_KEEPALIVE_TIMEOUT: "3s",
    ETCD_LISTEN_CLIENT_URLS: "http://127.0.0.1:2379",
    ETCD_ADVERTISE_CLIENT_URLS: "http://127.0.0.1:2379",
    ETCD_SNAPSHOT_COUNT: "",
    PATH: "/usr/bin",
  });
  assertEquals(config.name, "infra1");
  assertEquals(config.dataDir, "/tmp/d");
  assertEquals(plain(config).initialCluster, { infra1: ["http://127.0.0.1:2380"] });
  assertEquals(config.forceNewCluster, true);
  assertEquals(config.grpcKeepAliveTimeoutMs, 3000);
  assertEquals(urlsOf(config.listenClientUrls), ["http://127.0.0.1:2379"]);
  assertEquals(config.snapshotCount, 100000);
  // An empty variable is not used, so etcd reports it as unrecognized.
  assertEquals(warnings, ["unrecognized environment variable ETCD_SNAPSHOT_COUNT="]);
});

Deno.test("config: unknown ETCD_* variables are warnings", () => {
  const { config, warnings } = run([], { ETCD_FOO: "1", ETCD_NAME: "x", ETCDCTL_API: "3" });
  assertEquals(config.name, "x");
  assertEquals(warnings, [
    "unrecognized environment variable ETCD_FOO=1",
    "'data-dir' was empty; using default x.etcd",
  ]);
});

Deno.test("config: a bad ETCD_* value is refused with etcd's message", () => {
  assertEquals(
    verifyError([], { ETCD_SNAPSHOT_COUNT: "abc" }),
    'invalid value "abc" for ETCD_SNAPSHOT_COUNT: parse error',
  );
  assertEquals(
    verifyError([], { ETCD_INITIAL_CLUSTER_STATE: "bogus" }),
    'invalid value "bogus" for ETCD_INITIAL_CLUSTER_STATE: invalid value',
  );
  assertEquals(
    verifyError([], { ETCD_FORCE_NEW_CLUSTER: "yes" }),
    'invalid value "yes" for ETCD_FORCE_NEW_CLUSTER: parse error',
  );
});

Deno.test("config: a flag and its variable both set is fatal, as in etcd 3.5", () => {
  for (const env of [{ ETCD_NAME: "a" }, { ETCD_NAME: "" }, { ETCD_NAME: "b" }]) {
    const r = exit(["--name", "b"], env);
    assertEquals(r.code, 1);
    assertEquals(r.stdout, "");
    assertEquals(logLines(r.stderr), [{
      level: "fatal",
      ts: NOW.toISOString(),
      caller: "pkg/flags",
      msg:
        "conflicting environment variable is shadowed by corresponding command-line flag (either unset environment variable or disable flag))",
      "environment-variable": "ETCD_NAME",
    }]);
  }
  // Warnings about earlier variables come first.
  const r = exit(["-force-new-cluster"], { ETCD_BOGUS: "1", ETCD_FORCE_NEW_CLUSTER: "false" });
  const lines = logLines(r.stderr);
  assertEquals(lines.map((l) => l.level), ["warn", "fatal"]);
  assertEquals(lines[0].msg, "unrecognized environment variable ETCD_BOGUS=1");
  assertEquals(lines[1]["environment-variable"], "ETCD_FORCE_NEW_CLUSTER");
});

Deno.test("config: ETCD_VERSION is special and ignored with a warning", () => {
  const { warnings } = run(["--data-dir", "d"], { ETCD_VERSION: "true" });
  assertEquals(warnings, ["cannot set special environment variable ETCD_VERSION=true; ignoring it"]);
});

// ---------------------------------------------------------------------------------------------------------
// Config file

const FILE = `
name: infra0
data-dir: /var/lib/etcd
wal-dir: /wal
snapshot-count: 5000
heartbeat-interval: 50
election-timeout: 500
listen-peer-urls: http://127.0.0.1:2380
listen-client-urls: http://127.0.0.1:2379,http://127.0.0.1:22379
initial-advertise-peer-urls: http://127.0.0.1:2380
advertise-client-urls: http://127.0.0.1:2379
initial-cluster: infra0=http://127.0.0.1:2380,infra1=http://127.0.0.1:2480
initial-cluster-state: existing
initial-cluster-token: tok
strict-reconfig-check: false
quota-backend-bytes: 8589934592
max-request-bytes: 1024
max-txn-ops: 64
auto-compaction-mode: revision
auto-compaction-retention: 1000
grpc-keepalive-min-time: 7000000000
grpc-keepalive-interval: 1h
log-level: debug
log-outputs: [stderr]
logger: zap
metrics: extensive
force-new-cluster: true
max-snapshots: 0
max-wals: 2
experimental-initial-corrupt-check: true
client-transport-security:
  cert-file: ""
  auto-tls: false
peer-transport-security:
  client-cert-auth: false
`;

Deno.test("config: --config-file reads etcd's YAML keys", () => {
  const { config, warnings } = run(["--config-file", "etcd.yml"], {}, { "etcd.yml": FILE });
  assertEquals(warnings, []);
  const c = plain(config);
  assertEquals(c.name, "infra0");
  assertEquals(c.dataDir, "/var/lib/etcd");
  assertEquals(c.walDir, "/wal");
  assertEquals(c.snapshotCount, 5000);
  assertEquals([c.heartbeatIntervalMs, c.electionTimeoutMs], [50, 500]);
  assertEquals(c.listenClientUrls, ["http://127.0.0.1:22379", "http://127.0.0.1:2379"]);
  assertEquals(c.initialCluster, { infra0: ["http://127.0.0.1:2380"], infra1: ["http://127.0.0.1:2480"] });
  assertEquals(c.initialClusterState, "existing");
  assertEquals(c.initialClusterToken, "tok");
  assertEquals(c.strictReconfigCheck, false);
  assertEquals(c.quotaBackendBytes, 8589934592);
  assertEquals([c.maxRequestBytes, c.maxTxnOps], [1024, 64]);
  assertEquals([c.autoCompactionMode, c.autoCompactionRetention], ["revision", "1000"]);
  assertEquals(c.grpcKeepAliveMinTimeMs, 7000); // etcd's YAML durations are nanoseconds
  assertEquals(c.grpcKeepAliveIntervalMs, 3600000);
  assertEquals([c.logLevel, c.logOutputs, c.metrics], ["debug", ["stderr"], "extensive"]);
  assertEquals([c.forceNewCluster, c.maxSnapshots, c.maxWals, c.experimentalInitialCorruptCheck], [
    true,
    0,
    2,
    true,
  ]);
});

Deno.test("config: with a config file, other flags and ETCD_* variables are ignored", () => {
  const files = { "etcd.yml": "name: fromfile\n" };
  const { config, warnings } = run(["--config-file=etcd.yml", "--name", "flag"], {
    ETCD_NAME: "env",
    ETCD_X: "1",
  }, files);
  assertEquals(config.name, "fromfile");
  assertEquals(warnings, [
    "a config file is in use; ignoring the other command-line flags: --name",
    "'data-dir' was empty; using default fromfile.etcd",
  ]);
  assertEquals(config.dataDir, "fromfile.etcd");
  // The default initial cluster follows the name, as etcd's does.
  assertEquals(plain(config).initialCluster, { fromfile: ["http://localhost:2380"] });
  // ETCD_CONFIG_FILE works like the flag.
  assertEquals(run([], { ETCD_CONFIG_FILE: "etcd.yml", ETCD_NAME: "env" }, files).config.name, "fromfile");
  // An explicit --listen-client-urls in a file does not drop the default advertise URL (unlike the flag).
  const r = run(["--config-file", "f.yml"], {}, { "f.yml": "listen-client-urls: http://127.0.0.1:2379\n" });
  assertEquals(urlsOf(r.config.advertiseClientUrls), ["http://localhost:2379"]);
  // An empty file is etcd's defaults.
  assertEquals(plain(run(["--config-file", "e.yml"], {}, { "e.yml": "" }).config), plain(defaultConfig()));
});

Deno.test("config: config file errors", async (t) => {
  const cases: [string, string][] = [
    ["snapshot-count: abc\n", 'config file c.yml: snapshot-count must be an integer, not "abc"'],
    ["snapshot-count: -5\n", "config file c.yml: snapshot-count must be a non-negative integer, not -5"],
    ["force-new-cluster: yes\n", 'config file c.yml: force-new-cluster must be true or false, not "yes"'],
    ["name: [a, b]\n", 'config file c.yml: name must be a string, not ["a","b"]'],
    [
      "grpc-keepalive-timeout: soon\n",
      'config file c.yml: grpc-keepalive-timeout: time: invalid duration "soon"',
    ],
    [
      "listen-client-urls: http://127.0.0.1:1/x\n",
      "unexpected error setting up listen-client-urls: URL must not contain a path: http://127.0.0.1:1/x",
    ],
    ["initial-cluster-state: bogus\n", 'unexpected clusterState "bogus" (--initial-cluster-state)'],
    ["client-transport-security: 5\n", "config file c.yml: client-transport-security must be a mapping"],
    ["- a\n- b\n", "config file c.yml: the top level must be a mapping of keys to values"],
  ];
  for (const [text, message] of cases) {
    await t.step(text.trim(), () => {
      assertEquals(verifyError(["--config-file", "c.yml"], {}, { "c.yml": text }), message);
    });
  }
  await t.step("missing file", () => {
    assertEquals(verifyError(["--config-file", "nope.yml"]), "open nope.yml: no such file or directory");
  });
  await t.step("YAML syntax", () => {
    assertMatch(
      verifyError(["--config-file", "c.yml"], {}, { "c.yml": "name: [x\n" }),
      /^error converting YAML to JSON: /,
    );
  });
  await t.step("unknown keys are ignored with a warning", () => {
    const { warnings } = run(["--config-file", "c.yml"], {}, { "c.yml": "data-dir: d\nbogus: 1\n" });
    assertEquals(warnings, ['unrecognized key "bogus" in config file c.yml; ignoring it']);
  });
  await t.step("null values keep the default, scalars become strings", () => {
    const { config } = run(["--config-file", "c.yml"], {}, {
      "c.yml": "wal-dir:\ninitial-cluster-token: 42\n",
    });
    assertEquals([config.walDir, config.initialClusterToken], ["", "42"]);
  });
});

// ---------------------------------------------------------------------------------------------------------
// How etcd completes the configuration

Deno.test("config: --name alone renames the default initial cluster and data dir, as etcd does", () => {
  const c = plain(run(["--name", "infra9"]).config);
  assertEquals(c.initialCluster, { infra9: ["http://localhost:2380"] });
  assertEquals(c.dataDir, "infra9.etcd");
  // Even an explicit --initial-cluster equal to the default is renamed (etcd compares the value).
  const d = plain(run(["--name", "n", "--initial-cluster", "default=http://localhost:2380"]).config);
  assertEquals(d.initialCluster, { n: ["http://localhost:2380"] });
  // The renamed cluster takes the advertised peer URLs.
  const e = plain(run(["--name", "n", "--initial-advertise-peer-urls", "http://127.0.0.1:2390"]).config);
  assertEquals(e.initialCluster, { n: ["http://127.0.0.1:2390"] });
});

Deno.test("config: a repeated name in --initial-cluster gives a member several URLs, sorted", () => {
  const c = run([
    "--name",
    "a",
    "--initial-advertise-peer-urls",
    "http://127.0.0.1:24312,http://127.0.0.1:24311",
    "--initial-cluster",
    "a=http://127.0.0.1:24312,a=http://127.0.0.1:24311,b=http://127.0.0.1:24313",
  ]).config;
  assertEquals(plain(c).initialCluster, {
    a: ["http://127.0.0.1:24311", "http://127.0.0.1:24312"],
    b: ["http://127.0.0.1:24313"],
  });
  assertEquals(
    [...parseInitialCluster("x=http://h:1,,y=https://[::1]:2")].map(([n, us]) => [n, urlsOf(us)]),
    [["x", ["http://h:1"]], ["y", ["https://[::1]:2"]]],
  );
});

Deno.test("config: snapshot-count 0 means etcd's default", () => {
  assertEquals(run(["--snapshot-count", "0"]).config.snapshotCount, 100000);
  assertEquals(
    run(["--experimental-watch-progress-notify-interval", "0"]).config
      .experimentalWatchProgressNotifyIntervalMs,
    600000,
  );
});

Deno.test("config: deprecated flags at their default are accepted with etcd's warning", () => {
  const { warnings } = run(["--enable-v2=false", "--data-dir", "d"]);
  assertEquals(warnings, ["--enable-v2 is deprecated in 3.5 and will be decommissioned in 3.6."]);
});

// ---------------------------------------------------------------------------------------------------------
// Validation

Deno.test("config: validation errors, one line each, in etcd's words", async (t) => {
  const cases: [string[], string][] = [
    [
      ["--listen-client-urls", "http://127.0.0.1:2379"],
      "--advertise-client-urls is required when --listen-client-urls is set explicitly",
    ],
    [
      ["--heartbeat-interval", "300"],
      "--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]",
    ],
    [["--heartbeat-interval", "0"], "--heartbeat-interval must be >0 (set to 0ms)"],
    [["--election-timeout", "0"], "--election-timeout must be >0 (set to 0ms)"],
    [
      ["--election-timeout", "60000"],
      "--election-timeout[60000ms] is too long, and should be set less than 50000ms",
    ],
    [["--auto-compaction-mode", "foo"], 'unknown auto-compaction-mode "foo"'],
    [
      ["--auto-compaction-retention", "soon"],
      'error parsing CompactionRetention: time: invalid duration "soon" (--auto-compaction-retention)',
    ],
    [["--log-level", "bogus"], 'unrecognized level: "bogus" (--log-level)'],
    [
      ["--log-outputs", "default,stdout"],
      'multi logoutput for "default" is not supported yet (--log-outputs)',
    ],
    [
      ["--log-outputs", "stderr,/missing/etcd.log"],
      'open sink "/missing/etcd.log": open /missing/etcd.log: no such file or directory (--log-outputs)',
    ],
    [
      ["--log-outputs", "/etc/etcd.log"],
      'open sink "/etc/etcd.log": open /etc/etcd.log: permission denied (--log-outputs)',
    ],
    [["--logger", "capnslog"], "--logger=capnslog is removed in v3.5"],
    [["--logger", "glog"], 'unknown logger option "glog"'],
    [["--max-txn-ops", "0"], "--max-txn-ops must be >0 (set to 0)"],
    [["--max-request-bytes", "0"], "--max-request-bytes must be >0 (set to 0)"],
    [["--metrics", "some"], '--metrics must be "basic" or "extensive" (set to "some")'],
    [
      ["--listen-peer-urls", "http://example.com:2380"],
      "expected IP in URL for binding (http://example.com:2380) (--listen-peer-urls)",
    ],
    [
      ["--name", "x", "--initial-cluster", "y=http://localhost:2380"],
      'couldn\'t find local name "x" in the initial cluster configuration (--initial-cluster)',
    ],
    [
      ["--initial-advertise-peer-urls", "http://127.0.0.1:2390"],
      '--initial-cluster has default=http://localhost:2380 but missing from --initial-advertise-peer-urls=http://127.0.0.1:2390 (resolved urls: "http://127.0.0.1:2390" != "http://localhost:2380")',
    ],
    [
      [
        "--name",
        "a",
        "--initial-cluster",
        "a=http://127.0.0.1:2391,a=http://127.0.0.1:2390",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:2390",
      ],
      '--initial-cluster has a=http://127.0.0.1:2391 but missing from --initial-advertise-peer-urls=http://127.0.0.1:2390 (len(["http://127.0.0.1:2390"]) != len(["http://127.0.0.1:2390" "http://127.0.0.1:2391"]))',
    ],
    [
      [
        "--name",
        "a",
        "--initial-cluster",
        "a=http://127.0.0.1:2390",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:2390,http://127.0.0.1:2391",
      ],
      "--initial-advertise-peer-urls has http://127.0.0.1:2391 but missing from --initial-cluster=a=http://127.0.0.1:2390,a=http://127.0.0.1:2391",
    ],
    [
      [
        "--name",
        "a",
        "--initial-cluster",
        "a=http://127.0.0.1:2391,b=http://127.0.0.1:2391",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:2391",
      ],
      "initial cluster a=http://127.0.0.1:2391,b=http://127.0.0.1:2391 has duplicate url",
    ],
    [
      ["--initial-cluster", "default=foo"],
      "error setting up initial cluster: URL scheme must be http, https, unix, or unixs: foo (--initial-cluster)",
    ],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), () => {
      assertEquals(verifyError(args), message);
    });
  }
  await t.step("the missing advertise URL gets etcd's second warning", () => {
    const lines = logLines(exit(["--listen-client-urls", "http://127.0.0.1:2379"]).stderr);
    assertEquals(lines.map((l) => l.msg), ["failed to verify flags", "advertise client URLs are not set"]);
  });
});

Deno.test("config: validateConfig refuses bad programmatic configurations with ConfigError", async (t) => {
  const cases: [(c: Config) => void, string, string][] = [
    [
      (c) => (c.listenClientUrls = [new URL("ftp://127.0.0.1:1")]),
      "listen-client-urls",
      "URL scheme must be http, https, unix, or unixs: ftp://127.0.0.1:1 (--listen-client-urls)",
    ],
    [
      (c) => (c.listenClientUrls = [new URL("http://127.0.0.1:1/v3")]),
      "listen-client-urls",
      "URL must not contain a path: http://127.0.0.1:1/v3 (--listen-client-urls)",
    ],
    [
      (c) => (c.advertiseClientUrls = ["http://x:1" as unknown as URL]),
      "advertise-client-urls",
      '--advertise-client-urls must be a list of URLs, got "http://x:1"',
    ],
    [
      (c) => (c.initialClusterState = "bogus" as Config["initialClusterState"]),
      "initial-cluster-state",
      'unexpected clusterState "bogus" (--initial-cluster-state)',
    ],
    [
      (c) => (c.discovery = "http://d/x"),
      "discovery",
      'multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or "discovery-srv"',
    ],
    [
      (c) => (c.heartbeatIntervalMs = 1.5),
      "heartbeat-interval",
      "--heartbeat-interval must be an integer (set to 1.5)",
    ],
    [(c) => (c.snapshotCount = 0), "snapshot-count", "--snapshot-count must be >0 (set to 0)"],
    [(c) => (c.maxSnapshots = -1), "max-snapshots", "--max-snapshots must be >=0 (set to -1)"],
    [
      (c) => (c.grpcKeepAliveTimeoutMs = -1),
      "grpc-keepalive-timeout",
      "--grpc-keepalive-timeout must be >=0 (set to -1ms)",
    ],
    [
      (c) => (c.autoCompactionMode = "hourly" as Config["autoCompactionMode"]),
      "auto-compaction-mode",
      'unknown auto-compaction-mode "hourly"',
    ],
    [
      (c) => (c.logLevel = "DEBUG" as Config["logLevel"]),
      "log-level",
      'unrecognized level: "DEBUG" (--log-level)',
    ],
    [
      (c) => (c.logOutputs = ["systemd/journal"]),
      "log-outputs",
      "--log-outputs=systemd/journal is not supported by etcd-ts",
    ],
    [(c) => (c.clientTls.certFile = "server.pem"), "cert-file", "--cert-file is not implemented yet"],
    [(c) => (c.peerTls.autoTls = true), "peer-auto-tls", "--peer-auto-tls is not implemented yet"],
    [(c) => (c.enableV2 = true), "enable-v2", "--enable-v2 is not implemented yet"],
    [
      (c) => (c.listenMetricsUrls = [new URL("http://127.0.0.1:2381")]),
      "listen-metrics-urls",
      "--listen-metrics-urls is not implemented yet",
    ],
    [
      (c) => (c.initialCluster = new Map()),
      "initial-cluster",
      'couldn\'t find local name "default" in the initial cluster configuration (--initial-cluster)',
    ],
    [
      (c) => {
        c.initialClusterState = "existing";
        c.initialCluster = new Map([["other", [new URL("http://127.0.0.1:1")]]]);
      },
      "initial-cluster",
      'couldn\'t find local name "default" in the initial cluster configuration (--initial-cluster)',
    ],
  ];
  for (const [mutate, flag, message] of cases) {
    await t.step(message, () => {
      const c = defaultConfig();
      mutate(c);
      const err = assertThrows(() => validateConfig(c), ConfigError) as ConfigError;
      assertEquals(err.message, message);
      assertEquals(err.code, "CONFIG_ERROR");
      assertEquals(err.flag, flag);
      assert(!err.message.includes("\n"));
    });
  }
  await t.step("accepted: an existing member, quota off, revision compaction, unix and port 0 URLs", () => {
    const c = defaultConfig();
    c.initialClusterState = "existing";
    c.quotaBackendBytes = -1;
    c.autoCompactionMode = "revision";
    c.autoCompactionRetention = "1000";
    c.listenClientUrls = [new URL("http://127.0.0.1:0"), new URL("unix://localhost:2379")];
    c.listenPeerUrls = [new URL("http://[::1]:2380")];
    validateConfig(c);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Not yet implemented

Deno.test("config: NOT_YET_IMPLEMENTED covers the features etcd-ts lacks, and only etcd's flags", () => {
  for (
    const name of [
      "cert-file",
      "key-file",
      "client-cert-auth",
      "trusted-ca-file",
      "auto-tls",
      "peer-cert-file",
    ]
  ) {
    assert(NOT_YET_IMPLEMENTED.has(name), name);
  }
  for (
    const name of [
      "discovery",
      "discovery-srv",
      "discovery-srv-name",
      "discovery-proxy",
      "discovery-fallback",
    ]
  ) {
    assert(NOT_YET_IMPLEMENTED.has(name), name);
  }
  for (
    const name of ["proxy", "enable-v2", "enable-pprof", "listen-metrics-urls", "auth-token", "cipher-suites"]
  ) {
    assert(NOT_YET_IMPLEMENTED.has(name), name);
  }
  for (const name of ["tls-min-version", "tls-max-version", "self-signed-cert-validity"]) {
    assert(NOT_YET_IMPLEMENTED.has(name), name);
  }
  for (
    const name of ["name", "data-dir", "listen-client-urls", "initial-cluster", "log-level", "snapshot-count"]
  ) {
    assert(!NOT_YET_IMPLEMENTED.has(name), name);
  }
  for (const name of NOT_YET_IMPLEMENTED) {
    assert(ETCD_35_FLAGS.includes(name) || name === "client-cert-allowed-cn", `unknown flag ${name}`);
  }
});

Deno.test("config: a not-yet-implemented flag set to anything but its default refuses to start", async (t) => {
  const cases: [string[], Record<string, string>, Record<string, string>, string][] = [
    [["--cert-file", "server.pem"], {}, {}, "etcd-ts: --cert-file is not implemented yet\n"],
    [["--auto-tls"], {}, {}, "etcd-ts: --auto-tls is not implemented yet\n"],
    [["--discovery-srv", "example.com"], {}, {}, "etcd-ts: --discovery-srv is not implemented yet\n"],
    [
      ["--proxy", "on"],
      {},
      {},
      '{"level":"warn","ts":"2026-11-25T04:00:00.000Z","caller":"server/config",' +
      '"msg":"--proxy is deprecated in 3.5 and will be decommissioned in 3.6."}\n' +
      "etcd-ts: --proxy is not implemented yet\n",
    ],
    [["--auth-token", "jwt,pub-key=a.pem"], {}, {}, "etcd-ts: --auth-token is not implemented yet\n"],
    [["--pre-vote=false"], {}, {}, "etcd-ts: --pre-vote is not implemented yet\n"],
    [
      [],
      { ETCD_ENABLE_PPROF: "true" },
      {},
      "etcd-ts: --enable-pprof is not implemented yet (set by ETCD_ENABLE_PPROF)\n",
    ],
    [
      ["--cert-file", "a", "--key-file", "b"],
      {},
      {},
      "etcd-ts: --cert-file, --key-file are not implemented yet\n",
    ],
    [
      ["--config-file", "c.yml"],
      {},
      { "c.yml": "client-transport-security:\n  cert-file: server.pem\n" },
      "etcd-ts: --cert-file is not implemented yet (set by client-transport-security.cert-file in c.yml)\n",
    ],
    [
      ["--config-file", "c.yml"],
      {},
      { "c.yml": "peer-transport-security:\n  allowed-cn: [etcd]\n" },
      "etcd-ts: --peer-cert-allowed-cn is not implemented yet (set by peer-transport-security.allowed-cn in c.yml)\n",
    ],
    [
      ["--config-file", "c.yml"],
      {},
      { "c.yml": "listen-metrics-urls: http://127.0.0.1:2381\n" },
      "etcd-ts: --listen-metrics-urls is not implemented yet (set by listen-metrics-urls in c.yml)\n",
    ],
  ];
  for (const [args, env, files, stderr] of cases) {
    await t.step([...args, ...Object.keys(env)].join(" "), () => {
      const { code, stdout, stderr: err } = exit(args, env, files);
      assertEquals({ code, stdout, stderr: err }, { code: 1, stdout: "", stderr });
    });
  }
  await t.step("at their defaults they are accepted", () => {
    run([
      "--auto-tls=false",
      "--cert-file=",
      "--proxy=off",
      "--auth-token=simple",
      "--discovery-fallback=proxy",
      "--tls-min-version=TLS1.2",
      "--cors=*",
      "--self-signed-cert-validity=1",
      "--pre-vote",
      "--max-concurrent-streams=4294967295",
      "--grpc-keepalive-interval=2h",
      "--experimental-compact-hash-check-time=60s",
      "--backend-bbolt-freelist-type=",
      "--v2-deprecation=not-yet",
    ]);
    run(["--backend-bbolt-freelist-type=map"]);
    run(["--config-file", "c.yml"], {}, {
      "c.yml":
        "client-transport-security:\n  auto-tls: false\nself-signed-cert-validity: 0\nenable-v2: false\n",
    });
  });
});

// ---------------------------------------------------------------------------------------------------------
// Helpers

Deno.test("config: parseDurationMs reads Go durations", () => {
  assertEquals(parseDurationMs("0"), 0);
  assertEquals(parseDurationMs("1h30m"), 5400000);
  assertEquals(parseDurationMs("1.5s"), 1500);
  assertEquals(parseDurationMs("-2m"), -120000);
  assertEquals(parseDurationMs("100us"), 0.1);
  assertEquals(parseDurationMs(".5h"), 1800000);
  assertThrows(() => parseDurationMs("5"), Error, 'time: missing unit in duration "5"');
  assertThrows(() => parseDurationMs("5q"), Error, 'time: unknown unit "q" in duration "5q"');
  assertThrows(() => parseDurationMs(""), Error, 'time: invalid duration ""');
  assertThrows(() => parseDurationMs("h"), Error, 'time: invalid duration "h"');
});

Deno.test("config: formatUrl writes URLs as etcd does", () => {
  assertEquals(formatUrl(new URL("http://127.0.0.1:2380")), "http://127.0.0.1:2380");
  assertEquals(formatUrl(new URL("https://[::1]:2379/")), "https://[::1]:2379");
  assertEquals(formatUrl(new URL("unix://localhost:2379")), "unix://localhost:2379");
});

Deno.test("config: settings whose feature is missing are refused, not ignored", () => {
  for (
    const args of [["--force-new-cluster"], ["--grpc-keepalive-timeout=5s"], ["--max-wals=2"], [
      "--metrics=extensive",
    ]]
  ) {
    const r = parseCommandLine(args, {}, { version: "9.9.9", etcdVersion: "3.5.99", readFile: () => "" });
    assertEquals(r.kind, "exit", args.join(" "));
    if (r.kind === "exit") {
      assertEquals(r.code, 1);
      assertMatch(r.stderr, new RegExp(`etcd-ts: ${args[0].split("=")[0]} is not implemented yet`));
    }
  }
  // etcd's defaults stay accepted
  assertEquals(
    parseCommandLine(["--strict-reconfig-check=true"], {}, { version: "9", etcdVersion: "3.5" }).kind,
    "run",
  );
});
