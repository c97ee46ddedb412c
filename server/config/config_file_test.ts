import { assertEquals, assertMatch } from "../../tests/assert.ts";
import { defaultConfig } from "./types.ts";
import { plain, run, urlsOf, verifyError } from "./test_util.ts";

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
