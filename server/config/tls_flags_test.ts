import { assertEquals } from "../../tests/assert.ts";
import { defaultConfig } from "./types.ts";
import { exit, run } from "./test_util.ts";

Deno.test("config: the TLS flags reach their fields from flags, ETCD_* variables and a config file", async (t) => {
  const https = [
    "--listen-client-urls",
    "https://127.0.0.1:2379",
    "--advertise-client-urls",
    "https://127.0.0.1:2379",
  ];
  await t.step("flags", () => {
    const { config: c } = run([
      ...https,
      "--cert-file=s.crt",
      "--key-file=s.key",
      "--client-cert-auth",
      "--trusted-ca-file=ca.crt",
      "--client-crl-file=crl.pem",
      "--client-cert-allowed-hostname=a.example",
      "--client-cert-file=c.crt",
      "--client-key-file=c.key",
      "--peer-auto-tls",
      "--peer-cert-allowed-cn=infra0,infra1",
      "--self-signed-cert-validity=3",
      "--cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
      "--tls-max-version=TLS1.2",
      "--experimental-peer-skip-client-san-verification",
    ]);
    assertEquals(c.clientTls, {
      certFile: "s.crt",
      keyFile: "s.key",
      trustedCaFile: "ca.crt",
      clientCertAuth: true,
      autoTls: false,
      crlFile: "crl.pem",
      allowedCn: "",
      allowedHostname: "a.example",
      clientCertFile: "c.crt",
      clientKeyFile: "c.key",
    });
    assertEquals([c.peerTls.autoTls, c.peerTls.allowedCn], [true, "infra0,infra1"]);
    assertEquals(
      [
        c.selfSignedCertValidity,
        c.cipherSuites,
        c.tlsMinVersion,
        c.tlsMaxVersion,
        c.peerSkipClientSanVerification,
      ],
      [
        3,
        ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
        "TLS1.2",
        "TLS1.2",
        true,
      ],
    );
  });
  await t.step("ETCD_* variables", () => {
    const { config: c } = run(https, {
      ETCD_AUTO_TLS: "true",
      ETCD_PEER_CLIENT_CERT_AUTH: "true",
      ETCD_TLS_MIN_VERSION: "TLS1.3",
      ETCD_PEER_CLIENT_CERT_FILE: "p.crt",
      ETCD_PEER_CLIENT_KEY_FILE: "p.key",
    });
    assertEquals([c.clientTls.autoTls, c.peerTls.clientCertAuth, c.tlsMinVersion], [true, true, "TLS1.3"]);
    assertEquals([c.peerTls.clientCertFile, c.peerTls.clientKeyFile], ["p.crt", "p.key"]);
  });
  await t.step("a config file", () => {
    const { config: c } = run(["--config-file", "c.yml"], {}, {
      "c.yml": "listen-client-urls: https://127.0.0.1:2379\nadvertise-client-urls: https://127.0.0.1:2379\n" +
        "client-transport-security:\n  cert-file: s.crt\n  key-file: s.key\n  client-cert-auth: true\n" +
        "  allowed-cn: root\n" +
        "peer-transport-security:\n  auto-tls: true\nself-signed-cert-validity: 2\ntls-max-version: TLS1.3\n",
    });
    assertEquals([c.clientTls.certFile, c.clientTls.keyFile, c.clientTls.clientCertAuth], [
      "s.crt",
      "s.key",
      true,
    ]);
    assertEquals([c.peerTls.autoTls, c.selfSignedCertValidity, c.tlsMaxVersion], [true, 2, "TLS1.3"]);
  });
  await t.step("the peer side's flags fill peerTls only", () => {
    const { config: c } = run([
      "--peer-cert-file=p.crt",
      "--peer-key-file=p.key",
      "--peer-client-cert-auth",
      "--peer-trusted-ca-file=pca.crt",
      "--peer-crl-file=pcrl.pem",
      "--peer-cert-allowed-hostname=m1.example",
      "--peer-client-cert-file=pc.crt",
      "--peer-client-key-file=pc.key",
    ]);
    assertEquals(c.peerTls, {
      certFile: "p.crt",
      keyFile: "p.key",
      trustedCaFile: "pca.crt",
      clientCertAuth: true,
      autoTls: false,
      crlFile: "pcrl.pem",
      allowedCn: "",
      allowedHostname: "m1.example",
      clientCertFile: "pc.crt",
      clientKeyFile: "pc.key",
    });
    assertEquals(c.clientTls, defaultConfig().clientTls);
  });
  await t.step("cipher suites keep their order; an empty --tls-min-version is etcd's TLS1.2", () => {
    const { config: c } = run([
      "--cipher-suites",
      "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
      "--tls-min-version=",
    ]);
    assertEquals(c.cipherSuites, [
      "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
      "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ]);
    assertEquals([c.tlsMinVersion, c.tlsMaxVersion], ["TLS1.2", ""]);
  });
  await t.step("more ETCD_* variables", () => {
    const { config: c } = run([], {
      ETCD_CIPHER_SUITES: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
      ETCD_SELF_SIGNED_CERT_VALIDITY: "5",
      ETCD_EXPERIMENTAL_PEER_SKIP_CLIENT_SAN_VERIFICATION: "true",
      ETCD_CLIENT_CERT_FILE: "c.crt",
      ETCD_CLIENT_KEY_FILE: "c.key",
      ETCD_PEER_CERT_ALLOWED_CN: "infra",
      ETCD_CLIENT_CRL_FILE: "crl.pem",
    });
    assertEquals(c.cipherSuites, [
      "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ]);
    assertEquals([c.selfSignedCertValidity, c.peerSkipClientSanVerification], [5, true]);
    assertEquals([c.clientTls.clientCertFile, c.clientTls.clientKeyFile], ["c.crt", "c.key"]);
    assertEquals([c.peerTls.allowedCn, c.clientTls.crlFile], ["infra", "crl.pem"]);
  });
  await t.step("every key of etcd's transport-security sections, and the top-level TLS keys", () => {
    const side = (p: string) =>
      `  cert-file: ${p}s.crt\n  key-file: ${p}s.key\n  client-cert-file: ${p}c.crt\n` +
      `  client-key-file: ${p}c.key\n  client-cert-auth: true\n  trusted-ca-file: ${p}ca.crt\n` +
      `  auto-tls: true\n  allowed-cn: ${p}cn\n  allowed-hostname: ${p}host\n`;
    const { config: c, warnings } = run(["--config-file", "c.yml"], {}, {
      "c.yml": "client-transport-security:\n" + side("") + "peer-transport-security:\n" + side("p") +
        "cipher-suites:\n  - TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256\n" +
        "  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n" +
        "tls-min-version: TLS1.2\ntls-max-version: TLS1.3\nself-signed-cert-validity: 0\n",
    });
    for (const [p, t] of [["", c.clientTls], ["p", c.peerTls]] as const) {
      assertEquals(t, {
        certFile: `${p}s.crt`,
        keyFile: `${p}s.key`,
        trustedCaFile: `${p}ca.crt`,
        clientCertAuth: true,
        autoTls: true,
        crlFile: "",
        allowedCn: `${p}cn`,
        allowedHostname: `${p}host`,
        clientCertFile: `${p}c.crt`,
        clientKeyFile: `${p}c.key`,
      });
    }
    assertEquals(c.cipherSuites, [
      "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ]);
    // etcd raises a config file's zero validity to one year
    assertEquals([c.tlsMinVersion, c.tlsMaxVersion, c.selfSignedCertValidity], ["TLS1.2", "TLS1.3", 1]);
    assertEquals(warnings, ["'data-dir' was empty; using default default.etcd"]);
  });
  await t.step("keys etcd 3.5's config file does not have are warned about and ignored", () => {
    const { config: c, warnings } = run(["--config-file", "c.yml"], {}, {
      "c.yml": "experimental-peer-skip-client-san-verification: true\n" +
        "client-transport-security:\n  crl-file: crl.pem\n",
    });
    assertEquals([c.peerSkipClientSanVerification, c.clientTls.crlFile], [false, ""]);
    assertEquals(warnings.slice(0, 2), [
      'unrecognized key "experimental-peer-skip-client-san-verification" in config file c.yml; ignoring it',
      'unrecognized key "client-transport-security.crl-file" in config file c.yml; ignoring it',
    ]);
  });
  await t.step("an https URL with nothing to serve it is refused in etcd's words", () => {
    const r = exit(https);
    assertEquals(r.code, 1);
    const line = JSON.parse(r.stderr.trim().split("\n").at(-1)!);
    assertEquals([line.level, line.msg, line.error], [
      "warn",
      "failed to verify flags",
      "TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:2379 with HTTPS scheme",
    ]);
  });
});
