/**
 * The TLS material of one side of a member (its client listeners, or its peer listeners and dials): the
 * PEM files the operator named, read into the options `node:tls` takes, re-read when they change on disk.
 *
 * A listener asks {@linkcode TlsCredentials.serverOptions} for its secure context and subscribes to
 * {@linkcode TlsCredentials.onChange}; a dialing member asks {@linkcode TlsCredentials.clientOptions}.
 * What the runtime's TLS stack does not check by itself (revocation lists, allowed names, cipher suites)
 * is checked after the handshake by `verify.ts`, with the lists kept here.
 *
 * @module
 */
import type { ConnectionOptions, SecureContextOptions, TlsOptions } from "node:tls";
import { loadX509, type X509Certificate } from "./x509.ts";
import { parseBundle } from "./chain.ts";

/** Where one side's files are, and what it asks of the other end. */
export interface TlsSideConfig {
  certFile: string;
  keyFile: string;
  /** CA bundle that signs the other end's certificates ("" = the system's roots when dialing). */
  trustedCaFile: string;
  /** The other end must present a certificate signed by `trustedCaFile`. */
  clientCertAuth: boolean;
  crlFile: string;
  /** Certificate and key this member presents when it dials (default: certFile and keyFile). */
  clientCertFile: string;
  clientKeyFile: string;
  /** Common names accepted in the other end's certificate (empty: any). */
  allowedCn: string[];
  /** Host names (SAN) accepted in the other end's certificate (empty: any). */
  allowedHostname: string[];
  /** OpenSSL names of the TLS 1.2 suites allowed (empty: the runtime's). */
  cipherSuites: string[];
  minVersion: "TLSv1.2" | "TLSv1.3";
  maxVersion?: "TLSv1.2" | "TLSv1.3";
  /** Self-signed (auto-TLS): dials do not verify the other end, listeners do not ask for certificates. */
  selfSigned: boolean;
}

/**
 * A side's configuration: `certFile` and `keyFile`, plus whatever `over` sets; the rest is what a side
 * without those flags has (no CA file, no client-certificate authentication, no CRL, any names, the
 * runtime's suites, TLS 1.2 at least, the operator's own certificate).
 */
export function tlsSideConfig(
  over: Partial<TlsSideConfig> & Pick<TlsSideConfig, "certFile" | "keyFile">,
): TlsSideConfig {
  return {
    trustedCaFile: "",
    clientCertAuth: false,
    crlFile: "",
    clientCertFile: "",
    clientKeyFile: "",
    allowedCn: [],
    allowedHostname: [],
    cipherSuites: [],
    minVersion: "TLSv1.2",
    selfSigned: false,
    ...over,
  };
}

/** How files are read; `denoFiles` unless a test swaps it. */
export interface TlsFileReader {
  readTextFile(path: string): Promise<string>;
  /** A token that changes when the file does (modification time and size). */
  version(path: string): Promise<string>;
}

/** Reads files from the local disk. */
export const denoFiles: TlsFileReader = {
  readTextFile: (path) => Deno.readTextFile(path),
  async version(path) {
    const s = await Deno.stat(path);
    return `${s.mtime?.getTime() ?? 0}/${s.size}/${s.ino ?? 0}`;
  },
};

/** A file of the TLS configuration that cannot be used; the message names the file and why. */
export class TlsFileError extends Error {
  /** Stable error code of this class. */
  readonly code = "TLS_FILE";
  constructor(message: string) {
    super(message);
    this.name = "TlsFileError";
  }
}

interface Material {
  cert: string;
  key: string;
  ca?: string;
  clientCert: string;
  clientKey: string;
  /** Revoked serial numbers, upper-case hex without leading zeros. */
  revoked: ReadonlySet<string>;
  /** The certificates of the CA file. */
  trusted: X509Certificate[];
}

/** Upper-case hex without leading zeros, as `getPeerCertificate().serialNumber` and CRLs are compared. */
export function normalizeSerial(hex: string): string {
  return hex.replace(/[^0-9a-fA-F]/g, "").toUpperCase().replace(/^0+(?=.)/, "");
}

/** One side's loaded files, and the listeners to tell when they change. */
export class TlsCredentials {
  readonly config: TlsSideConfig;
  #m: Material;
  #versions: string;
  readonly #reader: TlsFileReader;
  readonly #listeners = new Set<() => void>();

  private constructor(config: TlsSideConfig, reader: TlsFileReader, m: Material, versions: string) {
    this.config = config;
    this.#reader = reader;
    this.#m = m;
    this.#versions = versions;
  }

  /** Reads every file of `config`; throws {@linkcode TlsFileError} naming the first that is unusable. */
  static async load(config: TlsSideConfig, reader: TlsFileReader = denoFiles): Promise<TlsCredentials> {
    const versions = await fileVersions(config, reader);
    return new TlsCredentials(config, reader, await readMaterial(config, reader), versions);
  }

  /**
   * Options for a `node:tls` server: certificate, trust, client certificates, versions, ALPN. Client
   * certificates are asked for but not enforced by the handshake: {@linkcode refusalOf} does that.
   */
  serverOptions(alpn?: string[]): TlsOptions {
    const c = this.config;
    const verify = c.clientCertAuth && !c.selfSigned;
    return {
      ...this.secureContext(),
      requestCert: verify,
      // the chain is checked right after the handshake (verify.ts), where the reason can be told: the
      // runtime's TLS stack reports a rejected client certificate only as a hung-up socket
      rejectUnauthorized: false,
      ...(alpn === undefined ? {} : { ALPNProtocols: alpn }),
    };
  }

  /** The secure context alone (what `server.setSecureContext` takes after a rotation). */
  secureContext(): SecureContextOptions {
    const m = this.#m;
    return {
      cert: m.cert,
      key: m.key,
      ...(m.ca === undefined ? {} : { ca: m.ca }),
      minVersion: this.config.minVersion,
      ...(this.config.maxVersion === undefined ? {} : { maxVersion: this.config.maxVersion }),
    };
  }

  /** Options for dialing another member with `node:tls`. */
  clientOptions(): ConnectionOptions {
    const m = this.#m;
    return {
      cert: m.clientCert,
      key: m.clientKey,
      ...(m.ca === undefined ? {} : { ca: m.ca }),
      // the chain and the name are checked after the handshake against the CA file alone (listener.ts)
      rejectUnauthorized: false,
      minVersion: this.config.minVersion,
      ...(this.config.maxVersion === undefined ? {} : { maxVersion: this.config.maxVersion }),
    };
  }

  /** The certificates of the CA file (empty without one): the only roots the other end may chain to. */
  get trusted(): readonly X509Certificate[] {
    return this.#m.trusted;
  }

  /** Serial numbers revoked by the CRL file (normalized, see {@linkcode normalizeSerial}). */
  get revoked(): ReadonlySet<string> {
    return this.#m.revoked;
  }

  /** Calls `fn` after the files changed and were read again; returns the unsubscriber. */
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Reads the files again if any changed since the last read. Resolves to true when the new material was
   * taken. A half-written rotation (a key that does not parse yet, a missing file) keeps the old material
   * and rejects with the reason; the next call tries again.
   */
  async reload(): Promise<boolean> {
    const versions = await fileVersions(this.config, this.#reader);
    if (versions === this.#versions) return false;
    const m = await readMaterial(this.config, this.#reader);
    this.#m = m;
    this.#versions = versions;
    for (const fn of this.#listeners) fn();
    return true;
  }
}

function filesOf(c: TlsSideConfig): string[] {
  return [c.certFile, c.keyFile, c.trustedCaFile, c.crlFile, c.clientCertFile, c.clientKeyFile]
    .filter((f) => f !== "");
}

async function fileVersions(c: TlsSideConfig, reader: TlsFileReader): Promise<string> {
  const parts: string[] = [];
  for (const f of filesOf(c)) {
    try {
      parts.push(`${f}:${await reader.version(f)}`);
    } catch (err) {
      throw new TlsFileError(`open ${f}: ${describe(err)}`);
    }
  }
  return parts.join("|");
}

async function readPem(reader: TlsFileReader, path: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await reader.readTextFile(path);
  } catch (err) {
    throw new TlsFileError(`open ${path}: ${describe(err)}`);
  }
  if (!text.includes("-----BEGIN ")) throw new TlsFileError(`${path}: no PEM ${what} found`);
  return text;
}

async function readMaterial(c: TlsSideConfig, reader: TlsFileReader): Promise<Material> {
  const cert = await readPem(reader, c.certFile, "certificate");
  const key = await readPem(reader, c.keyFile, "private key");
  const clientCert = c.clientCertFile === "" ? cert : await readPem(reader, c.clientCertFile, "certificate");
  const clientKey = c.clientKeyFile === "" ? key : await readPem(reader, c.clientKeyFile, "private key");
  const ca = c.trustedCaFile === "" ? undefined : await readPem(reader, c.trustedCaFile, "certificate");
  const revoked = new Set<string>();
  if (c.crlFile !== "") {
    const text = await readPem(reader, c.crlFile, "CRL");
    const { X509Crl } = await loadX509();
    try {
      for (const block of text.match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g) ?? []) {
        for (const entry of new X509Crl(block).entries) revoked.add(normalizeSerial(entry.serialNumber));
      }
    } catch (err) {
      throw new TlsFileError(`${c.crlFile}: cannot parse the revocation list: ${describe(err)}`);
    }
  }
  // node:tls is loaded by the first side with TLS, not by every member
  const { createSecureContext } = await import("node:tls");
  usable(createSecureContext, c.certFile, cert, key, ca);
  if (c.clientCertFile !== "") usable(createSecureContext, c.clientCertFile, clientCert, clientKey, ca);
  let trusted: X509Certificate[] = [];
  if (ca !== undefined) {
    try {
      trusted = await parseBundle(ca);
    } catch (err) {
      throw new TlsFileError(`${c.trustedCaFile}: cannot parse the CA certificates: ${describe(err)}`);
    }
  }
  return { cert, key, ca, clientCert, clientKey, revoked, trusted };
}

/** Throws when the TLS stack cannot use the pair (a key that does not match, a damaged certificate). */
function usable(
  createSecureContext: typeof import("node:tls").createSecureContext,
  file: string,
  cert: string,
  key: string,
  ca: string | undefined,
): void {
  try {
    createSecureContext({ cert, key, ...(ca === undefined ? {} : { ca }) });
  } catch (err) {
    throw new TlsFileError(`${file}: cannot use the certificate and key: ${describe(err)}`);
  }
}

function describe(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file or directory";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  return err instanceof Error ? err.message : String(err);
}
