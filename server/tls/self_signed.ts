/**
 * Auto-TLS: the self-signed certificate a member makes for `--auto-tls` / `--peer-auto-tls` when it is
 * given none. As etcd makes it (client/pkg/transport/listener.go `SelfCert`): ECDSA P-521 signed with
 * SHA-512, subject O=etcd, a random 128-bit serial, key usage digitalSignature + keyEncipherment, extended
 * key usage serverAuth + clientAuth, the hosts as subject alternative names (IP SANs for addresses, DNS
 * SANs for names), valid from now for `--self-signed-cert-validity` years, written as `cert.pem` and
 * `key.pem` (PKCS#8, mode 0600) in `<data-dir>/fixtures/client` or `.../peer`.
 *
 * Two differences users of etcd ask for: the caller passes the advertised hosts too (they are deduplicated
 * here, and unspecified addresses such as `0.0.0.0` and `::` are left out), and files found on restart are
 * kept only while they are usable: parseable, the key the certificate's, valid for more than another hour,
 * and naming every host asked for. Otherwise new ones are made (etcd never renews them).
 *
 * Keys come from WebCrypto, certificates from `@peculiar/x509`.
 *
 * @module
 */
import { join } from "node:path";
import { parseIp } from "./ip.ts";
import { type Extension, loadX509, type X509Certificate } from "./x509.ts";

/** What {@linkcode ensureSelfSignedCert} makes or checks. */
export interface SelfSignedOptions {
  /** Directory to hold cert.pem and key.pem; created (mode 0700) when missing. */
  dir: string;
  /** Host names and IP addresses (IPv6 without brackets) the certificate must cover. */
  hosts: string[];
  /** Validity in years (etcd's --self-signed-cert-validity, default 1); must be >= 1. */
  validityYears: number;
  /** The clock (injected so tests can make certificates that are already expired); default () => new Date(). */
  now?: () => Date;
}

/** The files in use, and whether they were just made. */
export interface SelfSignedResult {
  certFile: string;
  keyFile: string;
  /** PEM text of both, as written or found. */
  cert: string;
  key: string;
  /**
   * True when new files were written; `reason` says why: "missing" (no files), "unreadable" (a file
   * cannot be read or parsed), "key mismatch" (key.pem is not the certificate's key), "expired" (past
   * or within an hour of its end), "not yet valid" (starts in the future: the clock went back) or
   * "hosts changed" (a host asked for is not among its names).
   */
  generated: boolean;
  reason?: string;
  notAfter: Date;
}

/** Why a self-signed certificate could not be made; the message names the file and the cause. */
export class SelfSignedCertError extends Error {
  /** Stable code for callers and logs. */
  readonly code = "ERR_SELF_SIGNED_CERT";

  /** `why` follows etcd's "cannot generate cert: " prefix. */
  constructor(why: string, options?: ErrorOptions) {
    super(`cannot generate cert: ${why}`, options);
    this.name = "SelfSignedCertError";
  }
}

const ALGORITHM = { name: "ECDSA", namedCurve: "P-521", hash: "SHA-512" } as const;
/** A certificate this close to its end is replaced rather than reused. */
const RENEW_BEFORE_MS = 60 * 60 * 1000;

/** One subject alternative name: `key` identifies it for comparison (IPs by their bytes). */
interface SanName {
  type: "ip" | "dns";
  /** The text handed to @peculiar/x509 (IPv6 fully expanded, as its parser needs). */
  value: string;
  key: string;
}

/**
 * Makes `cert.pem` and `key.pem` in `o.dir` unless usable ones are already there, and returns what is in
 * use. Throws {@linkcode SelfSignedCertError} when the files cannot be made.
 */
export async function ensureSelfSignedCert(o: SelfSignedOptions): Promise<SelfSignedResult> {
  if (!Number.isInteger(o.validityYears) || o.validityYears < 1) {
    throw new SelfSignedCertError(
      `validity must be a whole number of years, at least 1 (got ${o.validityYears})`,
    );
  }
  const now = (o.now ?? (() => new Date()))();
  const certFile = join(o.dir, "cert.pem");
  const keyFile = join(o.dir, "key.pem");
  const names = sanNames(o.hosts);

  const found = await inspect(certFile, keyFile, names, now);
  if ("notAfter" in found) {
    return { certFile, keyFile, ...found, generated: false };
  }

  try {
    await Deno.mkdir(o.dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new SelfSignedCertError(`cannot create directory ${o.dir}: ${messageOf(err)}`, { cause: err });
  }
  let made: { cert: string; key: string; notAfter: Date };
  try {
    made = await generate(names, o.validityYears, now);
  } catch (err) {
    throw new SelfSignedCertError(messageOf(err), { cause: err });
  }
  // the key first: a crash between the two leaves a pair that does not match, which is replaced next time
  await writePrivate(keyFile, made.key);
  await writePrivate(certFile, made.cert);
  return { certFile, keyFile, ...made, generated: true, reason: found.reason };
}

/** The names a certificate for `hosts` carries: deduplicated, unspecified addresses and blanks left out. */
function sanNames(hosts: string[]): SanName[] {
  const out = new Map<string, SanName>();
  for (const raw of hosts) {
    const host = raw.trim().replace(/^\[(.*)\]$/, "$1");
    const ip = parseIp(host.replace(/%.*$/, "")); // a zone (fe80::1%eth0) is not part of the address
    let name: SanName;
    if (ip !== undefined) {
      if (ip.every((b) => b === 0)) continue; // 0.0.0.0, ::
      name = { type: "ip", value: formatIp(ip), key: `ip:${hex(ip)}` };
    } else {
      const dns = host.toLowerCase().replace(/\.$/, "");
      if (dns === "") continue;
      name = { type: "dns", value: dns, key: `dns:${dns}` };
    }
    if (!out.has(name.key)) out.set(name.key, name);
  }
  return [...out.values()];
}

/** The files, when they can be reused; otherwise why not. */
async function inspect(
  certFile: string,
  keyFile: string,
  names: SanName[],
  now: Date,
): Promise<{ cert: string; key: string; notAfter: Date } | { reason: string }> {
  let cert: string;
  let key: string;
  try {
    cert = await Deno.readTextFile(certFile);
    key = await Deno.readTextFile(keyFile);
  } catch (err) {
    return { reason: err instanceof Deno.errors.NotFound ? "missing" : "unreadable" };
  }
  const x509 = await loadX509();
  let parsed: X509Certificate;
  let publicKey: CryptoKey;
  let privateKey: CryptoKey;
  try {
    parsed = new x509.X509Certificate(cert);
    publicKey = await parsed.publicKey.export(ALGORITHM, ["verify"]);
    privateKey = await crypto.subtle.importKey("pkcs8", pemBody(key), ALGORITHM, false, ["sign"]);
  } catch {
    return { reason: "unreadable" };
  }
  // the key must be the certificate's: sign with one, verify with the other
  const probe = crypto.getRandomValues(new Uint8Array(32));
  const signature = await crypto.subtle.sign(ALGORITHM, privateKey, probe);
  if (!await crypto.subtle.verify(ALGORITHM, publicKey, signature, probe)) return { reason: "key mismatch" };

  if (parsed.notBefore.getTime() > now.getTime()) return { reason: "not yet valid" };
  if (parsed.notAfter.getTime() - RENEW_BEFORE_MS <= now.getTime()) return { reason: "expired" };

  const named = new Set<string>();
  for (const n of parsed.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? []) {
    if (n.type === "dns") named.add(`dns:${n.value.toLowerCase()}`);
    if (n.type === "ip") {
      const ip = parseIp(n.value);
      if (ip !== undefined) named.add(`ip:${hex(ip)}`);
    }
  }
  if (names.some((n) => !named.has(n.key))) return { reason: "hosts changed" };
  return { cert, key, notAfter: parsed.notAfter };
}

async function generate(
  names: SanName[],
  years: number,
  now: Date,
): Promise<{ cert: string; key: string; notAfter: Date }> {
  const x509 = await loadX509();
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + years);
  const extensions: Extension[] = [
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
      true,
    ),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    new x509.BasicConstraintsExtension(false, undefined, true),
  ];
  // GeneralNames may not be empty (RFC 5280), so no extension when every host was left out
  if (names.length > 0) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension(names.map(({ type, value }) => ({ type, value }))),
    );
  }
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    // the library drops leading zero bytes and keeps the integer positive
    serialNumber: hex(crypto.getRandomValues(new Uint8Array(16))),
    name: "O=etcd",
    notBefore: now,
    notAfter,
    keys,
    signingAlgorithm: ALGORITHM,
    extensions,
  });
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const key = `-----BEGIN PRIVATE KEY-----\n${
    btoa(String.fromCharCode(...pkcs8)).match(/.{1,64}/g)!.join("\n")
  }\n-----END PRIVATE KEY-----\n`;
  return { cert: cert.toString("pem") + "\n", key, notAfter: cert.notAfter };
}

/**
 * Writes `text` to `path` with mode 0600: into a new file beside it, then renamed over it, so the text is
 * never readable under a looser mode an old file had, and a reader never sees half a file.
 */
async function writePrivate(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  try {
    await Deno.remove(tmp).catch(() => {});
    await Deno.writeTextFile(tmp, text, { mode: 0o600, createNew: true });
    await Deno.chmod(tmp, 0o600); // the umask may have changed it
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw new SelfSignedCertError(`cannot write ${path}: ${messageOf(err)}`, { cause: err });
  }
}

/** Dotted quad, or all eight IPv6 groups (the form @peculiar/x509's own parser reads correctly). */
function formatIp(ip: Uint8Array): string {
  if (ip.length === 4) return ip.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip[i] << 8) | ip[i + 1]).toString(16));
  return groups.join(":");
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function pemBody(pem: string): Uint8Array<ArrayBuffer> {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
