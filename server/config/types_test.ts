import { assertEquals } from "../../tests/assert.ts";
import { defaultConfig } from "./types.ts";
import { validateConfig } from "./validate.ts";
import { plain, run, urlsOf } from "./test_util.ts";

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
      clientCertFile: "",
      clientKeyFile: "",
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
      clientCertFile: "",
      clientKeyFile: "",
    },
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
    logRotationConfigJson:
      '{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}',
    enableGrpcGateway: true,
    cors: ["*"],
    hostWhitelist: ["*"],
    enableUi: true,
    busyPollMs: 0.5,
    experimentalWatchProgressNotifyIntervalMs: 600000,
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
    grpcKeepAliveMinTimeMs: 5000,
    grpcKeepAliveIntervalMs: 7200000,
    grpcKeepAliveTimeoutMs: 20000,
    selfSignedCertValidity: 1,
    cipherSuites: [],
    tlsMinVersion: "TLS1.2",
    tlsMaxVersion: "",
    peerSkipClientSanVerification: false,
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
