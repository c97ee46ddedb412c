import { assert, assertEquals } from "../../tests/assert.ts";
import { TLS12_CIPHER_SUITES, TLS13_CIPHER_SUITES, UNSUPPORTED_CIPHER_SUITES } from "./cipher_suites.ts";

Deno.test("config: the TLS 1.2 suites etcd-ts accepts, by Go's name, and the OpenSSL names of the six", () => {
  assertEquals(new Set(TLS12_CIPHER_SUITES.values()).size, 6);
  for (const [go, openssl] of TLS12_CIPHER_SUITES) {
    assert(go.startsWith("TLS_ECDHE_") && /_(GCM|POLY1305)/.test(go), go);
    assert(openssl.startsWith("ECDHE-") && /(GCM|POLY1305)/.test(openssl), openssl);
    // ECDSA and RSA suites map to their own kind
    assertEquals(go.includes("_ECDSA_"), openssl.includes("-ECDSA-"), go);
    assert(!UNSUPPORTED_CIPHER_SUITES.has(go) && !TLS13_CIPHER_SUITES.has(go), go);
  }
  // Go's short ChaCha20 names are aliases of the _SHA256 ones, as in etcd
  assertEquals(
    TLS12_CIPHER_SUITES.get("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"),
    TLS12_CIPHER_SUITES.get("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
  );
  assertEquals(
    TLS12_CIPHER_SUITES.get("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"),
    "ECDHE-ECDSA-CHACHA20-POLY1305",
  );
  for (const name of UNSUPPORTED_CIPHER_SUITES) {
    assert(/_(CBC|RC4|3DES)_|^TLS_RSA_WITH_/.test(name), name);
    assert(!TLS13_CIPHER_SUITES.has(name), name);
  }
});
