/**
 * What is checked of a TLS connection after its handshake, beyond what the runtime's TLS stack checks
 * (the chain to the trusted CA, the versions): the revocation list, the allowed common names and host
 * names, the negotiated cipher suite, and for peers the address in the certificate. etcd checks the same
 * things at the same point (its TLS listener wrapper), and a refused connection is closed before any
 * request is read from it.
 *
 * @module
 */
import { normalizeSerial, type TlsCredentials } from "./credentials.ts";
import { ipVersion } from "./ip.ts";

/** The facts of one established connection that the checks look at. */
export interface HandshakeFacts {
  /** "TLSv1.2", "TLSv1.3". */
  protocol: string | null;
  /** The negotiated suite in OpenSSL's naming (as `getCipher().name`). */
  cipher?: string;
  /** The other end's certificate, when it sent one. */
  certificate?: PeerCertificateFacts;
  /** The other end's IP address. */
  remoteAddress?: string;
  /** Whether the certificate chains to the trusted CA (`TLSSocket.authorized`). */
  authorized?: boolean;
  /** Why it does not (`TLSSocket.authorizationError`, an OpenSSL code such as `CERT_HAS_EXPIRED`). */
  authorizationError?: string;
}

/** The chain errors the runtime reports, in the words Go's TLS stack (and so etcd) uses for them. */
function chainError(code: string | undefined): string {
  switch (code) {
    case "CERT_HAS_EXPIRED":
    case "CERT_NOT_YET_VALID":
      return "x509: certificate has expired or is not yet valid";
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "UNABLE_TO_GET_ISSUER_CERT":
    case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
    case "SELF_SIGNED_CERT_IN_CHAIN":
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
    case "CERT_SIGNATURE_FAILURE":
      return "x509: certificate signed by unknown authority";
    default:
      return `x509: ${code ?? "certificate not trusted"}`;
  }
}

/** The parts of a certificate the checks read (the shape of `getPeerCertificate()`). */
export interface PeerCertificateFacts {
  subject?: { CN?: string | string[] };
  /** "DNS:a, IP Address:127.0.0.1" */
  subjectaltname?: string;
  serialNumber?: string;
}

/** The common name of a certificate ("" when it has none). */
export function commonNameOf(cert: PeerCertificateFacts | undefined): string {
  const cn = cert?.subject?.CN;
  return Array.isArray(cn) ? cn[0] ?? "" : cn ?? "";
}

/** The DNS names and IP addresses of a certificate's subject alternative names. */
export function subjectAltNames(cert: PeerCertificateFacts | undefined): { dns: string[]; ips: string[] } {
  const dns: string[] = [];
  const ips: string[] = [];
  for (const part of (cert?.subjectaltname ?? "").split(",")) {
    const p = part.trim();
    if (p.startsWith("DNS:")) dns.push(p.slice(4).toLowerCase());
    else if (p.startsWith("IP Address:")) ips.push(normalizeIp(p.slice(11)));
  }
  return { dns, ips };
}

function normalizeIp(ip: string): string {
  const s = ip.trim().replace(/^::ffff:(?=\d+\.)/i, "");
  return ipVersion(s) === 6 ? expandV6(s) : s;
}

function expandV6(ip: string): string {
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeros = tail === undefined ? [] : new Array(8 - h.length - t.length).fill("0");
  return [...h, ...zeros, ...t].map((x) => parseInt(x, 16).toString(16)).join(":");
}

/**
 * Why an established connection must be closed, or undefined when it may be served. Only certificates the
 * side asked for are looked at: a side without client-certificate authentication accepts any client; a
 * side with it refuses a missing certificate, one that does not chain to the trusted CA, a revoked one,
 * and one whose names are not allowed.
 */
export function refusalOf(
  facts: HandshakeFacts,
  creds: TlsCredentials,
): string | undefined {
  const c = creds.config;
  if (facts.protocol === "TLSv1.2" && c.cipherSuites.length > 0 && facts.cipher !== undefined) {
    if (!c.cipherSuites.includes(facts.cipher)) {
      return `tls: negotiated cipher suite ${facts.cipher} is not in --cipher-suites`;
    }
  }
  const cert = facts.certificate;
  if (!c.clientCertAuth || c.selfSigned) return undefined;
  if (cert === undefined) return "tls: client didn't provide a certificate";
  if (facts.authorized === false) {
    const why = facts.authorizationError?.startsWith("x509: ")
      ? facts.authorizationError
      : chainError(facts.authorizationError);
    return `tls: failed to verify client certificate: ${why} (CN ${JSON.stringify(commonNameOf(cert))})`;
  }
  if (cert.serialNumber !== undefined && creds.revoked.has(normalizeSerial(cert.serialNumber))) {
    return `tls: certificate revoked (serial number ${normalizeSerial(cert.serialNumber)}, CN ${
      JSON.stringify(commonNameOf(cert))
    })`;
  }
  if (c.allowedCn.length > 0 && !c.allowedCn.includes(commonNameOf(cert))) {
    return `client certificate authentication failed: CommonName ${
      JSON.stringify(commonNameOf(cert))
    } is not allowed (allowed: ${c.allowedCn.join(",")})`;
  }
  if (c.allowedHostname.length > 0) {
    const { dns, ips } = subjectAltNames(cert);
    const ok = c.allowedHostname.some((h) => {
      const name = h.toLowerCase();
      return ipVersion(name) !== 0
        ? ips.includes(normalizeIp(name))
        : dns.some((d) => matchesDnsName(d, name));
    });
    if (!ok) {
      return `client certificate authentication failed: no SAN of the certificate is an allowed host name ` +
        `(allowed: ${c.allowedHostname.join(",")})`;
    }
  }
  return undefined;
}

/** Whether a certificate names `host` (an IP address among its IP SANs, or a name among its DNS SANs). */
export function namesHost(cert: PeerCertificateFacts | undefined, host: string): boolean {
  const { dns, ips } = subjectAltNames(cert);
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return ipVersion(h) !== 0 ? ips.includes(normalizeIp(h)) : dns.some((d) => matchesDnsName(d, h));
}

/** A DNS SAN against a host name, with one leading `*.` label as a wildcard. */
function matchesDnsName(san: string, name: string): boolean {
  if (san === name) return true;
  if (!san.startsWith("*.")) return false;
  const dot = name.indexOf(".");
  return dot > 0 && name.slice(dot + 1) === san.slice(2);
}

/**
 * For a member's peer listener: why the certificate does not name the address the connection comes
 * from, or undefined when one of its IP addresses is that address or one of its DNS names resolves to
 * it. etcd makes the same check unless `--experimental-peer-skip-client-san-verification` is given.
 */
export async function addressRefusal(
  cert: PeerCertificateFacts | undefined,
  remoteAddress: string | undefined,
): Promise<string | undefined> {
  if (cert === undefined || remoteAddress === undefined) return undefined;
  const remote = normalizeIp(remoteAddress);
  const { dns, ips } = subjectAltNames(cert);
  if (ips.includes(remote)) return undefined;
  const { lookup } = await import("node:dns/promises");
  for (const name of dns) {
    try {
      const found = await lookup(name, { all: true });
      if (found.some((a) => normalizeIp(a.address) === remote)) return undefined;
    } catch {
      // a name that does not resolve names no address
    }
  }
  return `tls: certificate (CN ${JSON.stringify(commonNameOf(cert))}) is not valid for ${remote}` +
    ` (its SAN: ${[...dns, ...ips].join(", ") || "none"})`;
}

/**
 * A failed handshake as the runtime reports it, in Go's words where etcd's users know them (etcd logs
 * `rejected connection ... tls: first record does not look like a TLS handshake` for plain HTTP).
 */
export function handshakeError(message: string): string {
  if (/InvalidContentType|wrong version number/i.test(message)) {
    return "tls: first record does not look like a TLS handshake";
  }
  if (/Tls12NotOffered|ProtocolVersion|unsupported protocol|protocol version/i.test(message)) {
    return `tls: client offered only unsupported versions (${message})`;
  }
  if (/NoCipherSuitesInCommon|no shared cipher|HandshakeFailure/i.test(message)) {
    return `tls: no cipher suite supported by both client and server (${message})`;
  }
  if (/socket hang up|ECONNRESET/i.test(message)) {
    return "tls: the client closed the connection during the handshake";
  }
  return `tls: ${message}`;
}
