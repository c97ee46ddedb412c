import { assertEquals } from "../../tests/assert.ts";
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
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
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
