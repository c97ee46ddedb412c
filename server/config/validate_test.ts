import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { type Config, ConfigError, defaultConfig } from "./types.ts";
import { tlsWarnings, validateConfig } from "./validate.ts";
import { exit, logLines, run, verifyError } from "./test_util.ts";

/** The TLS 1.2 suites etcd-ts names in its refusals. */
const SUPPORTED = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, " +
  "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, " +
  "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";

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
    // TLS. The https, cert/key pair and unknown-suite messages were checked against etcd 3.4.23, which words
    // them as 3.5 does; 3.4 has no --tls-*-version nor --self-signed-cert-validity, and takes CBC suites.
    [
      ["--listen-client-urls", "https://127.0.0.1:2379", "--advertise-client-urls", "https://127.0.0.1:2379"],
      "TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:2379 with HTTPS scheme",
    ],
    [
      [
        "--listen-peer-urls",
        "https://127.0.0.1:2380",
        "--initial-advertise-peer-urls",
        "https://127.0.0.1:2380",
        "--initial-cluster",
        "default=https://127.0.0.1:2380",
      ],
      "cannot listen on TLS for 127.0.0.1:2380: KeyFile and CertFile are not presented " +
      "(--peer-cert-file, --peer-key-file)",
    ],
    // etcd says so only once it serves TLS with the files; with http URLs alone it ignores them.
    [
      ["--cert-file", "s.crt"],
      "KeyFile and CertFile must both be present[key: , cert: s.crt] (--cert-file, --key-file)",
    ],
    [
      ["--peer-client-key-file", "c.key"],
      "ClientKeyFile and ClientCertFile must both be present or both absent: key: c.key, cert: ] " +
      "(--peer-client-cert-file, --peer-client-key-file)",
    ],
    [["--tls-min-version", "TLS1.1"], 'unexpected TLS version "TLS1.1" (must be one of: TLS1.2, TLS1.3)'],
    [["--tls-max-version", "1.3"], 'unexpected TLS version "1.3" (must be one of: TLS1.2, TLS1.3)'],
    [
      ["--tls-min-version", "TLS1.3", "--tls-max-version", "TLS1.2"],
      "min version (TLS1.3) is greater than max version (TLS1.2)",
    ],
    [
      ["--tls-min-version", "TLS1.3", "--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
      "cipher suites cannot be configured when only TLS1.3 is enabled",
    ],
    [
      ["--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_FOO"],
      'unexpected TLS cipher suite "TLS_FOO"',
    ],
    [
      ["--cipher-suites", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"],
      'TLS cipher suite "TLS_RSA_WITH_3DES_EDE_CBC_SHA" is not supported by etcd-ts, whose TLS stack has ' +
      "only these TLS 1.2 suites: " + SUPPORTED + " (--cipher-suites)",
    ],
    [
      ["--self-signed-cert-validity", "0"],
      "selfSignedCertValidity is invalid,it should be greater than 0 (--self-signed-cert-validity)",
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
  await t.step("ETCD_* variables and the config file are checked alike", () => {
    assertEquals(verifyError([], { ETCD_CIPHER_SUITES: "TLS_FOO" }), 'unexpected TLS cipher suite "TLS_FOO"');
    assertEquals(
      verifyError([], { ETCD_TLS_MAX_VERSION: "TLS1.4" }),
      'unexpected TLS version "TLS1.4" (must be one of: TLS1.2, TLS1.3)',
    );
    assertEquals(
      verifyError(["--config-file", "c.yml"], {}, {
        "c.yml": "peer-transport-security:\n  client-cert-file: c.crt\n",
      }),
      "ClientKeyFile and ClientCertFile must both be present or both absent: key: , cert: c.crt] " +
        "(--peer-client-cert-file, --peer-client-key-file)",
    );
    assertEquals(
      verifyError(["--config-file", "c.yml"], {}, {
        "c.yml": "tls-min-version: TLS1.3\ncipher-suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n",
      }),
      "cipher suites cannot be configured when only TLS1.3 is enabled",
    );
  });
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
      "multiple discovery or bootstrap flags are set. " +
      'Choose one of "initial-cluster", "discovery", "discovery-endpoints" or "discovery-srv"',
    ],
    [
      (c) => {
        c.initialCluster = new Map();
        c.discoveryToken = "t";
      },
      "discovery-token",
      "both --discovery-token and --discovery-endpoints must be set",
    ],
    [
      (c) => {
        c.initialCluster = new Map();
        c.discovery = "http://d/x";
        c.discoveryEndpoints = ["127.0.0.1:2379"];
        c.discoveryToken = "t";
      },
      "discovery",
      "multiple discovery or bootstrap flags are set. " +
      'Choose one of "initial-cluster", "discovery", "discovery-endpoints" or "discovery-srv"',
    ],
    [
      (c) => {
        c.initialCluster = new Map();
        c.discoveryProxy = "http://proxy:3128";
        c.discoveryEndpoints = ["127.0.0.1:2379"];
        c.discoveryToken = "t";
      },
      "discovery-token",
      "both v2 discovery settings (discovery, discovery-proxy) and v3 discovery settings (discovery-token, " +
      "discovery-endpoints, discovery-cert, discovery-key, discovery-cacert, discovery-user, " +
      "discovery-password) are set",
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
      (c) => (c.busyPollMs = -0.5),
      "busy-poll-duration",
      "--busy-poll-duration must be >=0 (set to -0.5ms)",
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
    [
      (c) => (c.listenClientUrls = [new URL("https://127.0.0.1:2379")]),
      "cert-file",
      "TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:2379 with HTTPS scheme",
    ],
    [
      (c) => (c.listenClientUrls = [new URL("unixs://localhost:2379")]),
      "cert-file",
      "TLS key/cert (--cert-file, --key-file) must be provided for client url unixs://localhost:2379 with HTTPS scheme",
    ],
    [
      (c) => (c.listenPeerUrls = [new URL("https://127.0.0.1:2380")]),
      "peer-cert-file",
      "cannot listen on TLS for 127.0.0.1:2380: KeyFile and CertFile are not presented " +
      "(--peer-cert-file, --peer-key-file)",
    ],
    [
      (c) => {
        c.listenPeerUrls = [new URL("https://127.0.0.1:2380")];
        c.listenClientUrls = [new URL("https://127.0.0.1:2379")];
      },
      "peer-cert-file",
      "cannot listen on TLS for 127.0.0.1:2380: KeyFile and CertFile are not presented " +
      "(--peer-cert-file, --peer-key-file)",
    ],
    [
      (c) => (c.clientTls.certFile = "server.pem"),
      "key-file",
      "KeyFile and CertFile must both be present[key: , cert: server.pem] (--cert-file, --key-file)",
    ],
    [
      (c) => (c.peerTls.keyFile = "peer.key"),
      "peer-cert-file",
      "KeyFile and CertFile must both be present[key: peer.key, cert: ] (--peer-cert-file, --peer-key-file)",
    ],
    [
      (c) => (c.clientTls.clientCertFile = "client.pem"),
      "client-key-file",
      "ClientKeyFile and ClientCertFile must both be present or both absent: key: , cert: client.pem] " +
      "(--client-cert-file, --client-key-file)",
    ],
    [
      (c) => (c.peerTls.clientKeyFile = "client.key"),
      "peer-client-cert-file",
      "ClientKeyFile and ClientCertFile must both be present or both absent: key: client.key, cert: ] " +
      "(--peer-client-cert-file, --peer-client-key-file)",
    ],
    [
      (c) => (c.tlsMinVersion = "TLS1.1" as Config["tlsMinVersion"]),
      "tls-min-version",
      'unexpected TLS version "TLS1.1" (must be one of: TLS1.2, TLS1.3)',
    ],
    [
      (c) => (c.tlsMinVersion = "" as Config["tlsMinVersion"]),
      "tls-min-version",
      'unexpected TLS version "" (must be one of: TLS1.2, TLS1.3)',
    ],
    [
      (c) => (c.tlsMaxVersion = "tls1.3" as Config["tlsMaxVersion"]),
      "tls-max-version",
      'unexpected TLS version "tls1.3" (must be one of: TLS1.2, TLS1.3)',
    ],
    [
      (c) => {
        c.tlsMinVersion = "TLS1.3";
        c.tlsMaxVersion = "TLS1.2";
      },
      "tls-min-version",
      "min version (TLS1.3) is greater than max version (TLS1.2)",
    ],
    [
      (c) => {
        c.tlsMinVersion = "TLS1.3";
        c.cipherSuites = ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"];
      },
      "cipher-suites",
      "cipher suites cannot be configured when only TLS1.3 is enabled",
    ],
    [
      (c) => (c.cipherSuites = ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_FOO"]),
      "cipher-suites",
      'unexpected TLS cipher suite "TLS_FOO"',
    ],
    [
      (c) => (c.cipherSuites = ["TLS_RSA_WITH_AES_128_CBC_SHA"]),
      "cipher-suites",
      'TLS cipher suite "TLS_RSA_WITH_AES_128_CBC_SHA" is not supported by etcd-ts, whose TLS stack has only ' +
      "these TLS 1.2 suites: " + SUPPORTED + " (--cipher-suites)",
    ],
    [
      (c) => (c.cipherSuites = ["TLS_AES_128_GCM_SHA256"]),
      "cipher-suites",
      'TLS cipher suite "TLS_AES_128_GCM_SHA256" is a TLS 1.3 suite; TLS 1.3 suites are always enabled and ' +
      "cannot be configured, --cipher-suites takes TLS 1.2 suites: " + SUPPORTED,
    ],
    [
      (c) => (c.cipherSuites = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" as unknown as string[]),
      "cipher-suites",
      "--cipher-suites must be a list of strings",
    ],
    [
      (c) => (c.selfSignedCertValidity = 0),
      "self-signed-cert-validity",
      "selfSignedCertValidity is invalid,it should be greater than 0 (--self-signed-cert-validity)",
    ],
    [
      (c) => (c.selfSignedCertValidity = 1.5),
      "self-signed-cert-validity",
      "selfSignedCertValidity is invalid,it should be greater than 0 (--self-signed-cert-validity)",
    ],
    [(c) => (c.enablePprof = true), "enable-pprof", "--enable-pprof is not implemented yet"],
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
  await t.step("accepted: https URLs with certificates or auto-TLS, TLS versions and suites", () => {
    const c = defaultConfig();
    c.listenClientUrls = [new URL("https://127.0.0.1:2379"), new URL("http://127.0.0.1:22379")];
    c.clientTls.certFile = "server.crt";
    c.clientTls.keyFile = "server.key";
    c.listenPeerUrls = [new URL("https://127.0.0.1:2380")];
    c.initialAdvertisePeerUrls = [new URL("https://127.0.0.1:2380")];
    c.initialCluster = new Map([["default", [new URL("https://127.0.0.1:2380")]]]);
    c.peerTls.autoTls = true;
    c.tlsMaxVersion = "TLS1.2";
    c.cipherSuites = ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"];
    c.selfSignedCertValidity = 10;
    // the http URL serves without TLS, which etcd warns about
    assertEquals(validateConfig(c), [
      "scheme is HTTP while key and cert files are present; ignoring key and cert files " +
      "(client-url: http://127.0.0.1:22379)",
    ]);
  });
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

Deno.test("config: a Config built in code may carry the settings without effect yet, not other missing ones", () => {
  const c = defaultConfig();
  c.maxWals = 2;
  c.metrics = "extensive";
  c.strictReconfigCheck = false;
  c.grpcKeepAliveTimeoutMs = 1;
  validateConfig(c);
  c.enablePprof = true;
  const err = assertThrows(() => validateConfig(c), ConfigError) as ConfigError;
  assertEquals(err.message, "--enable-pprof is not implemented yet");
  // With the setting no longer in the refused set, it passes.
  validateConfig(c, new Set());
});

Deno.test("config: what etcd warns about rather than refuses comes back from validateConfig", async (t) => {
  await t.step("nothing for etcd's defaults", () => {
    assertEquals(validateConfig(defaultConfig()), []);
  });
  await t.step(
    "files on http URLs, client-certificate auth on them, auto-TLS beside files; peers first",
    () => {
      const c = defaultConfig();
      c.clientTls.certFile = "s.crt";
      c.clientTls.keyFile = "s.key";
      c.clientTls.clientCertAuth = true;
      c.peerTls.certFile = "p.crt";
      c.peerTls.keyFile = "p.key";
      c.peerTls.autoTls = true;
      c.peerTls.clientCertAuth = true;
      assertEquals(tlsWarnings(c), [
        "ignoring peer auto TLS since certs given",
        "scheme is HTTP while key and cert files are present; ignoring key and cert files " +
        "(peer-url: http://localhost:2380)",
        "scheme is HTTP while --peer-client-cert-auth is enabled; ignoring client cert auth for this URL " +
        "(peer-url: http://localhost:2380)",
        "scheme is HTTP while key and cert files are present; ignoring key and cert files " +
        "(client-url: http://localhost:2379)",
        "scheme is HTTP while --client-cert-auth is enabled; ignoring client cert auth for this URL " +
        "(client-url: http://localhost:2379)",
      ]);
      assertEquals(validateConfig(c), tlsWarnings(c));
    },
  );
  await t.step("https URLs served by files, with auto-TLS set as well: only the auto-TLS warning", () => {
    const c = defaultConfig();
    c.listenClientUrls = [new URL("https://127.0.0.1:2379")];
    c.advertiseClientUrls = [new URL("https://127.0.0.1:2379")];
    c.clientTls.certFile = "s.crt";
    c.clientTls.keyFile = "s.key";
    c.clientTls.autoTls = true;
    c.clientTls.clientCertAuth = true;
    assertEquals(validateConfig(c), ["ignoring client auto TLS since certs given"]);
  });
  await t.step("the command line accepts such a configuration; the warnings are left to the caller", () => {
    const { config, warnings } = run(["--cert-file=s.crt", "--key-file=s.key", "--auto-tls"]);
    assertEquals(config.clientTls.autoTls, true);
    assertEquals(warnings.filter((w) => w.includes("TLS") || w.includes("scheme")), []);
    assertEquals(tlsWarnings(config).length, 2);
  });
});
