import { assertEquals } from "../../tests/assert.ts";
import { type TlsCredentials, type TlsSideConfig, tlsSideConfig } from "./credentials.ts";
import { addressRefusal, handshakeError, type HandshakeFacts, refusalOf, subjectAltNames } from "./verify.ts";

function creds(over: Partial<TlsSideConfig> = {}, revoked: string[] = []): TlsCredentials {
  const config = tlsSideConfig({
    certFile: "c",
    keyFile: "k",
    trustedCaFile: "ca",
    clientCertAuth: true,
    ...over,
  });
  return { config, revoked: new Set(revoked) } as unknown as TlsCredentials;
}

const good: HandshakeFacts = {
  protocol: "TLSv1.3",
  cipher: "TLS_AES_256_GCM_SHA384",
  authorized: true,
  certificate: {
    subject: { CN: "infra1" },
    subjectaltname: "DNS:infra1.example.com, DNS:*.etcd.local, IP Address:127.0.1.11, IP Address:::1",
    serialNumber: "0A1B",
  },
};

Deno.test("verify: subject alternative names are read as DNS names and normalized IPs", () => {
  assertEquals(subjectAltNames(good.certificate), {
    dns: ["infra1.example.com", "*.etcd.local"],
    ips: ["127.0.1.11", "0:0:0:0:0:0:0:1"],
  });
  assertEquals(subjectAltNames(undefined), { dns: [], ips: [] });
});

Deno.test("verify: what a side with client-certificate authentication refuses", () => {
  assertEquals(refusalOf(good, creds()), undefined);
  assertEquals(
    refusalOf({ ...good, certificate: undefined }, creds()),
    "tls: client didn't provide a certificate",
  );
  assertEquals(
    refusalOf({ ...good, authorized: false, authorizationError: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" }, creds()),
    'tls: failed to verify client certificate: x509: certificate signed by unknown authority (CN "infra1")',
  );
  assertEquals(
    refusalOf({ ...good, authorized: false, authorizationError: "CERT_HAS_EXPIRED" }, creds()),
    'tls: failed to verify client certificate: x509: certificate has expired or is not yet valid (CN "infra1")',
  );
  // revocation compares serial numbers whatever their leading zeros and case
  assertEquals(
    refusalOf(good, creds({}, ["A1B"])),
    'tls: certificate revoked (serial number A1B, CN "infra1")',
  );
  assertEquals(refusalOf(good, creds({ allowedCn: ["infra0", "infra1"] })), undefined);
  assertEquals(
    refusalOf(good, creds({ allowedCn: ["infra0"] })),
    'client certificate authentication failed: CommonName "infra1" is not allowed (allowed: infra0)',
  );
  for (const ok of ["infra1.example.com", "INFRA1.example.com", "x.etcd.local", "127.0.1.11", "::1"]) {
    assertEquals(refusalOf(good, creds({ allowedHostname: [ok] })), undefined, ok);
  }
  for (const bad of ["example.com", "a.b.etcd.local", "127.0.1.12"]) {
    assertEquals(
      refusalOf(good, creds({ allowedHostname: [bad] })),
      `client certificate authentication failed: no SAN of the certificate is an allowed host name (allowed: ${bad})`,
      bad,
    );
  }
});

Deno.test("verify: sides without client-certificate authentication accept any client", () => {
  const none = { ...good, certificate: undefined, authorized: false };
  assertEquals(refusalOf(none, creds({ clientCertAuth: false })), undefined);
  assertEquals(refusalOf(none, creds({ selfSigned: true })), undefined);
});

Deno.test("verify: a TLS 1.2 connection must use one of --cipher-suites", () => {
  const c = creds({ clientCertAuth: false, cipherSuites: ["ECDHE-ECDSA-AES128-GCM-SHA256"] });
  assertEquals(refusalOf({ protocol: "TLSv1.2", cipher: "ECDHE-ECDSA-AES128-GCM-SHA256" }, c), undefined);
  assertEquals(
    refusalOf({ protocol: "TLSv1.2", cipher: "ECDHE-ECDSA-AES256-GCM-SHA384" }, c),
    "tls: negotiated cipher suite ECDHE-ECDSA-AES256-GCM-SHA384 is not in --cipher-suites",
  );
  // TLS 1.3 suites are not configurable, as in etcd
  assertEquals(refusalOf({ protocol: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256" }, c), undefined);
});

Deno.test("verify: a peer's certificate must name the address it connects from", async () => {
  assertEquals(await addressRefusal(good.certificate, "127.0.1.11"), undefined);
  assertEquals(await addressRefusal(good.certificate, "::ffff:127.0.1.11"), undefined);
  assertEquals(
    await addressRefusal({ subject: { CN: "m" }, subjectaltname: "DNS:localhost" }, "127.0.0.1"),
    undefined,
  );
  assertEquals(
    await addressRefusal(good.certificate, "127.0.1.12"),
    'tls: certificate (CN "infra1") is not valid for 127.0.1.12 (its SAN: infra1.example.com, *.etcd.local, ' +
      "127.0.1.11, 0:0:0:0:0:0:0:1)",
  );
});

Deno.test("verify: handshake failures in etcd's words", () => {
  assertEquals(
    handshakeError(
      "received corrupt message of type InvalidContentType (SSL routines:ssl3_get_record:wrong version number)",
    ),
    "tls: first record does not look like a TLS handshake",
  );
  assertEquals(
    handshakeError("socket hang up"),
    "tls: the client closed the connection during the handshake",
  );
  assertEquals(handshakeError("something new"), "tls: something new");
});
