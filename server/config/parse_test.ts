import { assert, assertEquals, assertMatch } from "../../tests/assert.ts";
import { parseCommandLine } from "./parse.ts";
import { parseInitialCluster } from "./values.ts";
import { exit, logLines, NOW, plain, run, urlsOf, verifyError } from "./test_util.ts";

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
    assertEquals(run(["--busy-poll-duration", "250us"]).config.busyPollMs, 0.25);
    assertEquals(run(["--busy-poll-duration=0"]).config.busyPollMs, 0);
    assertEquals(run([]).config.busyPollMs, 0.5);
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

Deno.test("config: discovery replaces --initial-cluster; asking for etcd's v2 proxy fallback is refused", () => {
  const { config } = run(["--name", "infra0", "--discovery", "https://discovery.etcd.io/abc"]);
  assertEquals(config.initialCluster.size, 0);
  assertEquals(config.discovery, "https://discovery.etcd.io/abc");
  run(["--discovery", "https://discovery.etcd.io/abc", "--discovery-fallback", "exit"]);
  assertEquals(
    verifyError(["--discovery", "https://discovery.etcd.io/abc", "--discovery-fallback", "proxy"]),
    "--discovery-fallback=proxy needs the v2 proxy, which etcd-ts does not have; " +
      "use --discovery-fallback=exit (a member that finds the cluster full then exits)",
  );
  const v3 = run([
    "--discovery-token",
    "tok",
    "--discovery-endpoints",
    "http://127.0.0.1:2379,127.0.0.2:2379",
  ]).config;
  assertEquals(v3.discoveryEndpoints, ["http://127.0.0.1:2379", "127.0.0.2:2379"]);
  assertEquals(v3.initialCluster.size, 0);
});
