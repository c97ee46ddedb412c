import { assertEquals } from "../../tests/assert.ts";
import { makeCerts } from "../transport/test_util.ts";
import { chainError, parseBundle } from "./chain.ts";
import { loadX509 } from "./x509.ts";

const { X509Certificate } = await loadX509();
const der = (pem: string): Uint8Array => new Uint8Array(new X509Certificate(pem).rawData);

Deno.test("chain: a certificate must chain to the CA file and be in force", async () => {
  const certs = await makeCerts();
  try {
    const trusted = await parseBundle(certs.ca);
    assertEquals(trusted.length, 1);
    assertEquals(await chainError(der(certs.memberCert), [], trusted), undefined);
    assertEquals(
      await chainError(der(certs.strangerMemberCert), [], trusted),
      "x509: certificate signed by unknown authority",
    );
    // the other CA's certificate sent along as an "intermediate" does not help: it is not trusted
    const otherCa = await Deno.readTextFile(`${certs.dir}/other-ca.crt`);
    assertEquals(
      await chainError(der(certs.strangerMemberCert), [der(otherCa)], trusted),
      "x509: certificate signed by unknown authority",
    );
    // trusting both CAs (a bundle) accepts both
    assertEquals(
      await chainError(der(certs.strangerMemberCert), [], await parseBundle(certs.ca + otherCa)),
      undefined,
    );
    // outside its validity (checked at a given time)
    const later = new Date(Date.now() + 10 * 24 * 3600 * 1000);
    assertEquals(
      await chainError(der(certs.memberCert), [], trusted, later),
      "x509: certificate has expired or is not yet valid",
    );
    assertEquals(await chainError(new Uint8Array([1, 2, 3]), [], trusted), "x509: malformed certificate");
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});
