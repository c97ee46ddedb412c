/**
 * Chains of certificates checked against the CA file the operator gave, and nothing else: the runtime's
 * TLS stack adds its built-in public roots to any CA it is given, where etcd trusts only
 * `--trusted-ca-file` / `--peer-trusted-ca-file`. Every certificate a member accepts from another end
 * (a client's, a peer's, the server's it dials) is checked here once per connection.
 *
 * @module
 */
import { loadX509, type X509, type X509Certificate } from "./x509.ts";

/** How many intermediate certificates a chain may have. */
const MAX_DEPTH = 8;

/** The certificates of a PEM bundle (a CA file). */
export async function parseBundle(pem: string): Promise<X509Certificate[]> {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return [];
  const x509 = await loadX509();
  return blocks.map((b) => new x509.X509Certificate(b));
}

function inForce(c: X509Certificate, now: Date): boolean {
  return c.notBefore.getTime() <= now.getTime() && now.getTime() <= c.notAfter.getTime();
}

async function signedBy(c: X509Certificate, issuer: X509Certificate): Promise<boolean> {
  if (c.issuer !== issuer.subject) return false;
  try {
    return await c.verify({ publicKey: issuer.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}

function isCa(x509: X509, c: X509Certificate): boolean {
  return c.getExtension(x509.BasicConstraintsExtension)?.ca === true;
}

/**
 * Why the certificate `leaf` (DER), with the intermediates the other end sent, does not chain to one of
 * `trusted`, in Go's words; undefined when it does.
 */
export async function chainError(
  leaf: Uint8Array,
  presented: Uint8Array[],
  trusted: readonly X509Certificate[],
  now: Date = new Date(),
): Promise<string | undefined> {
  const x509 = await loadX509();
  let current: X509Certificate;
  try {
    current = new x509.X509Certificate(new Uint8Array(leaf));
  } catch {
    return "x509: malformed certificate";
  }
  const intermediates = presented.flatMap((der) => {
    try {
      const c = new x509.X509Certificate(new Uint8Array(der));
      return isCa(x509, c) ? [c] : [];
    } catch {
      return [];
    }
  });
  for (let depth = 0; depth <= MAX_DEPTH; depth++) {
    if (!inForce(current, now)) return "x509: certificate has expired or is not yet valid";
    for (const ca of trusted) {
      if (await signedBy(current, ca)) {
        return inForce(ca, now) ? undefined : "x509: certificate has expired or is not yet valid";
      }
    }
    let next: X509Certificate | undefined;
    for (const c of intermediates) {
      if (c !== current && await signedBy(current, c)) {
        next = c;
        break;
      }
    }
    if (next === undefined) break;
    current = next;
  }
  return "x509: certificate signed by unknown authority";
}
