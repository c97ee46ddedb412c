import { assert, assertEquals, assertMatch } from "../../tests/assert.ts";
import { parseCommandLine } from "./parse.ts";
import { FLAGS } from "./flags.ts";
import { NOT_YET_IMPLEMENTED, REFUSED_IN_A_CONFIG, SETTINGS_WITHOUT_EFFECT_YET } from "./unimplemented.ts";
import { ETCD_35_FLAGS, exit, run } from "./test_util.ts";

Deno.test("config: NOT_YET_IMPLEMENTED covers the features etcd-ts lacks, and only etcd's flags", () => {
  // the gateway's settings and log rotation are implemented
  for (const name of ["cors", "host-whitelist", "enable-grpc-gateway", "enable-log-rotation"]) {
    assert(!NOT_YET_IMPLEMENTED.has(name), name);
  }
  // discovery and the v2 API it needs are implemented
  for (const name of ["discovery", "discovery-srv", "discovery-srv-name", "discovery-proxy", "enable-v2"]) {
    assert(!NOT_YET_IMPLEMENTED.has(name), name);
  }
  for (
    const name of ["proxy", "experimental-enable-v2v3", "enable-pprof", "max-wals"]
  ) {
    assert(NOT_YET_IMPLEMENTED.has(name), name);
  }
  // the metrics listener and /metrics (with --metrics basic or extensive) are implemented
  assert(!NOT_YET_IMPLEMENTED.has("listen-metrics-urls"));
  assert(!NOT_YET_IMPLEMENTED.has("metrics"));
  assert(!SETTINGS_WITHOUT_EFFECT_YET.includes("metrics"));
  // auth and the corruption checks are implemented
  for (
    const name of [
      "auth-token",
      "auth-token-ttl",
      "bcrypt-cost",
      "experimental-initial-corrupt-check",
      "experimental-corrupt-check-time",
    ]
  ) {
    assert(!NOT_YET_IMPLEMENTED.has(name), name);
  }
  // TLS is implemented: none of its flags is refused
  for (const f of FLAGS) {
    if (f.group === "security") {
      assert(!NOT_YET_IMPLEMENTED.has(f.name), f.name);
    }
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
    [
      ["--max-concurrent-streams", "100"],
      {},
      {},
      "etcd-ts: --max-concurrent-streams is not implemented yet\n",
    ],
    [
      ["--experimental-enable-v2v3", "/v2/"],
      {},
      {},
      '{"level":"warn","ts":"2026-11-25T04:00:00.000Z","caller":"server/config",' +
      '"msg":"--experimental-enable-v2v3 is deprecated in 3.5 and will be decommissioned in 3.6."}\n' +
      "etcd-ts: --experimental-enable-v2v3 is not implemented yet\n",
    ],
    [
      ["--proxy", "on"],
      {},
      {},
      '{"level":"warn","ts":"2026-11-25T04:00:00.000Z","caller":"server/config",' +
      '"msg":"--proxy is deprecated in 3.5 and will be decommissioned in 3.6."}\n' +
      "etcd-ts: --proxy is not implemented yet\n",
    ],
    [["--socket-reuse-port"], {}, {}, "etcd-ts: --socket-reuse-port is not implemented yet\n"],
    [["--pre-vote=false"], {}, {}, "etcd-ts: --pre-vote is not implemented yet\n"],
    [
      [],
      { ETCD_ENABLE_PPROF: "true" },
      {},
      "etcd-ts: --enable-pprof is not implemented yet (set by ETCD_ENABLE_PPROF)\n",
    ],
    [
      ["--pre-vote=false", "--socket-reuse-port"],
      {},
      {},
      "etcd-ts: --socket-reuse-port, --pre-vote are not implemented yet\n",
    ],
    [
      ["--config-file", "c.yml"],
      {},
      { "c.yml": "experimental-enable-distributed-tracing: true\n" },
      "etcd-ts: --experimental-enable-distributed-tracing is not implemented yet " +
      "(set by experimental-enable-distributed-tracing in c.yml)\n",
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
    // implemented: accepted by flag, variable and config file
    const urls = (c: { listenMetricsUrls: URL[] }) => c.listenMetricsUrls.map(String);
    assertEquals(urls(run(["--listen-metrics-urls", "http://127.0.0.1:2381"]).config), [
      "http://127.0.0.1:2381/",
    ]);
    assertEquals(urls(run([], { ETCD_LISTEN_METRICS_URLS: "http://127.0.0.1:2382" }).config), [
      "http://127.0.0.1:2382/",
    ]);
    assertEquals(
      urls(
        run(["--config-file", "c.yml"], {}, { "c.yml": "listen-metrics-urls: http://127.0.0.1:2381\n" })
          .config,
      ),
      ["http://127.0.0.1:2381/"],
    );
    run(["--config-file", "c.yml"], {}, {
      "c.yml":
        "client-transport-security:\n  auto-tls: false\nself-signed-cert-validity: 0\nenable-v2: false\n",
    });
  });
});

Deno.test("config: settings whose feature is missing are refused, not ignored", () => {
  for (
    const args of [["--grpc-keepalive-timeout=5s"], ["--max-wals=2"]]
  ) {
    const r = parseCommandLine(args, {}, { version: "9.9.9", etcdVersion: "3.5.99", readFile: () => "" });
    assertEquals(r.kind, "exit", args.join(" "));
    if (r.kind === "exit") {
      assertEquals(r.code, 1);
      assertMatch(r.stderr, new RegExp(`etcd-ts: ${args[0].split("=")[0]} is not implemented yet`));
    }
  }
  // runtime reconfiguration's settings and --metrics are implemented
  for (const args of [["--strict-reconfig-check=false"], ["--force-new-cluster"], ["--metrics=extensive"]]) {
    assertEquals(parseCommandLine(args, {}, { version: "9", etcdVersion: "3.5" }).kind, "run", args[0]);
  }
});

Deno.test("config: every refused setting is a flag of the table; a Config is checked for all but those without effect", () => {
  const names = new Set(FLAGS.map((f) => f.name));
  for (const name of NOT_YET_IMPLEMENTED) assert(names.has(name), name);
  for (const name of SETTINGS_WITHOUT_EFFECT_YET) assert(NOT_YET_IMPLEMENTED.has(name), name);
  assertEquals(
    [...REFUSED_IN_A_CONFIG],
    [...NOT_YET_IMPLEMENTED].filter((n) => !SETTINGS_WITHOUT_EFFECT_YET.includes(n)),
  );
});
