/**
 * Auto-TLS: the self-signed certificate a member makes for `--auto-tls` / `--peer-auto-tls` when it is
 * given none. As etcd makes it: ECDSA P-521, subject O=etcd, the listen hosts as subject alternative
 * names, valid for `--self-signed-cert-validity` years, `cert.pem` and `key.pem` (mode 0600) in
 * `<data-dir>/fixtures/client` or `.../peer`. Two differences users of etcd ask for: the advertised hosts
 * are named too, and the files are kept only while they are valid and name every host asked for;
 * otherwise new ones are made (etcd never renews them).
 *
 * Keys come from WebCrypto, certificates from `@peculiar/x509`.
 *
 * @module
 */
import { isIP } from "node:net";
import { join } from "node:path";
import * as x509 from "./x509.ts";

/** What {@linkcode ensureSelfSignedCert} makes or checks. */
export interface SelfSignedOptions {
  /** Directory holding cert.pem and key.pem; created (mode 0700) when missing. */
  dir: string;
  /** Host names and IP addresses (IPv6 without brackets) the certificate must name. */
  hosts: string[];
  /** Validity in years; at least 1. */
  validityYears: number;
  /** The clock; default the system's. */
  now?: () => Date;
}

/** The files in use, and whether they were just made. */
export interface SelfSignedResult {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
  /** True when new files were written; `reason` says why ("missing", "expired", "hosts changed", "unreadable"). */
  generated: boolean;
  reason?: string;
  notAfter: Date;
}

const ALGORITHM = { name: "ECDSA", namedCurve: "P-521", hash: "SHA-512" } as const;
/** A certificate this close to its end is replaced rather than reused. */
const RENEW_BEFORE_MS = 60 * 60 * 1000;

/** Hosts a certificate can name: unspecified addresses (0.0.0.0, ::) and empty names are left out. */
function nameable(hosts: string[]): string[] {
  const out = new Set<string>();
  for (const h of hosts) {
    const host = h.replace(/^\[|\]$/g, "").toLowerCase();
    if (host === "" || host === "0.0.0.0" || host === "::") continue;
    out.add(host);
  }
  return [...out];
}

/** Makes the certificate and key unless usable ones are already in `o.dir`. */
export async function ensureSelfSignedCert(o: SelfSignedOptions): Promise<SelfSignedResult> {
  const now = (o.now ?? (() => new Date()))();
  const certFile = join(o.dir, "cert.pem");
  const keyFile = join(o.dir, "key.pem");
  const hosts = nameable(o.hosts);
  const reason = await unusable(certFile, keyFile, hosts, now);
  if (reason === undefined) {
    const cert = await Deno.readTextFile(certFile);
    return {
      certFile,
      keyFile,
      cert,
      key: await Deno.readTextFile(keyFile),
      generated: false,
      notAfter: new x509.X509Certificate(cert).notAfter,
    };
  }
  try {
    await Deno.mkdir(o.dir, { recursive: true, mode: 0o700 });
    const { cert, key, notAfter } = await generate(hosts, Math.max(1, o.validityYears), now);
    await writePrivate(keyFile, key);
    await writePrivate(certFile, cert);
    return { certFile, keyFile, cert, key, generated: true, reason, notAfter };
  } catch (err) {
    throw new Error(`cannot generate cert: ${err instanceof Error ? err.message : err} (in ${o.dir})`);
  }
}

async function writePrivate(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(path, text, { mode: 0o600 });
  await Deno.chmod(path, 0o600); // the mode of an existing file is not changed by the write
}

/** Why the files cannot be reused, or undefined when they can. */
async function unusable(
  certFile: string,
  keyFile: string,
  hosts: string[],
  now: Date,
): Promise<string | undefined> {
  let certText: string;
  let keyText: string;
  try {
    certText = await Deno.readTextFile(certFile);
    keyText = await Deno.readTextFile(keyFile);
  } catch {
    return "missing";
  }
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(certText);
    const key = await crypto.subtle.importKey("pkcs8", pemBody(keyText), ALGORITHM, true, ["sign"]);
    // the key must be the certificate's: sign with one, verify with the other
    const probe = new Uint8Array(32);
    const signature = await crypto.subtle.sign(ALGORITHM, key, probe);
    const publicKey = await cert.publicKey.export(ALGORITHM, ["verify"]);
    if (!await crypto.subtle.verify(ALGORITHM, publicKey, signature, probe)) return "unreadable";
  } catch {
    return "unreadable";
  }
  if (
    cert.notBefore.getTime() > now.getTime() || cert.notAfter.getTime() - RENEW_BEFORE_MS <= now.getTime()
  ) {
    return "expired";
  }
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const named = new Set<string>();
  for (const n of san?.names.items ?? []) {
    named.add(n.type === "ip" ? normalizeIp(n.value) : n.value.toLowerCase());
  }
  for (const h of hosts) if (!named.has(isIP(h) ? normalizeIp(h) : h)) return "hosts changed";
  return undefined;
}

function normalizeIp(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeros = tail === undefined ? [] : new Array(8 - h.length - t.length).fill("0");
  return [...h, ...zeros, ...t].map((x) => parseInt(x, 16).toString(16)).join(":");
}

function pemBody(pem: string): Uint8Array<ArrayBuffer> {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

async function generate(
  hosts: string[],
  years: number,
  now: Date,
): Promise<{ cert: string; key: string; notAfter: Date }> {
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]) as CryptoKeyPair;
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + years);
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] &= 0x7f; // a positive serial number
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: [...serial].map((b) => b.toString(16).padStart(2, "0")).join(""),
    name: "O=etcd",
    notBefore: now,
    notAfter,
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.SubjectAlternativeNameExtension(
        hosts.map((h) => isIP(h) ? { type: "ip" as const, value: h } : { type: "dns" as const, value: h }),
      ),
    ],
  });
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const key = `-----BEGIN PRIVATE KEY-----\n${
    btoa(String.fromCharCode(...pkcs8)).match(/.{1,64}/g)!.join("\n")
  }\n-----END PRIVATE KEY-----\n`;
  return { cert: cert.toString("pem") + "\n", key, notAfter: cert.notAfter };
}
