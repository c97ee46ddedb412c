/**
 * A throwaway PKI for end-to-end TLS tests, made with the real `openssl` CLI as an operator following
 * etcd's guide would: a CA, an unrelated second CA, member certificates (serving and client use, the
 * member's IP and name as SANs), client certificates, and a revocation list.
 *
 * ```ts
 * const pki = await Pki.create();
 * const infra0 = await pki.member("infra0", "127.0.1.10");
 * const root = await pki.client("root");
 * await pki.revoke(root); // then pki.crl is the list naming it
 * ```
 *
 * @module
 */
import { join } from "node:path";

/** A certificate and its key, as files. */
export interface CertFiles {
  cert: string;
  key: string;
}

/** Runs the openssl CLI in `dir`; throws with its error output when it fails. */
export async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

/** `openssl req` arguments for a new unencrypted P-256 key. */
export const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** The CA, its files, and everything it issued, in one temporary directory. */
export class Pki {
  private serial = 0;
  private constructor(readonly dir: string) {}

  /** The CA's certificate: what members and clients trust. */
  get ca(): string {
    return join(this.dir, "ca.crt");
  }

  /** The second CA's certificate. */
  get otherCa(): string {
    return join(this.dir, "other-ca.crt");
  }

  /** The CA's revocation list (after {@linkcode revoke}). */
  get crl(): string {
    return join(this.dir, "crl.pem");
  }

  /** Makes both CAs and an empty revocation list. */
  static async create(): Promise<Pki> {
    const dir = await Deno.makeTempDir({ prefix: "etcd-pki-" });
    const pki = new Pki(dir);
    for (const ca of ["ca", "other-ca"]) {
      await openssl(dir, [
        "req",
        "-x509",
        ...EC,
        "-keyout",
        `${ca}.key`,
        "-out",
        `${ca}.crt`,
        "-subj",
        `/CN=${ca}`,
        "-days",
        "2",
      ]);
    }
    await Deno.writeTextFile(join(dir, "index.txt"), "");
    await Deno.writeTextFile(join(dir, "crlnumber"), "01\n");
    await Deno.writeTextFile(
      join(dir, "ca.cnf"),
      `[ca]\ndefault_ca=d\n[d]\ndatabase=${dir}/index.txt\ncrlnumber=${dir}/crlnumber\ndefault_md=sha256\n` +
        "default_crl_days=2\n",
    );
    await pki.writeCrl();
    return pki;
  }

  private async issue(cn: string, ext: string, ca: "ca" | "other-ca"): Promise<CertFiles> {
    const base = `${cn}-${++this.serial}`;
    await Deno.writeTextFile(join(this.dir, `${base}.ext`), ext);
    await openssl(this.dir, [
      "req",
      ...EC,
      "-keyout",
      `${base}.key`,
      "-out",
      `${base}.csr`,
      "-subj",
      `/CN=${cn}`,
    ]);
    await openssl(this.dir, [
      "x509",
      "-req",
      "-in",
      `${base}.csr`,
      "-CA",
      `${ca}.crt`,
      "-CAkey",
      `${ca}.key`,
      "-set_serial",
      String(1000 + this.serial),
      "-days",
      "2",
      "-extfile",
      `${base}.ext`,
      "-out",
      `${base}.crt`,
    ]);
    return { cert: join(this.dir, `${base}.crt`), key: join(this.dir, `${base}.key`) };
  }

  /** A member's certificate: CN `cn`, for serving and dialing, naming `ip`, localhost and `dnsNames`. */
  member(cn: string, ip: string, ca: "ca" | "other-ca" = "ca", dnsNames: string[] = []): Promise<CertFiles> {
    const names = ["localhost", ...dnsNames].map((n) => `DNS:${n}`).join(",");
    return this.issue(
      cn,
      `subjectAltName=IP:${ip},${names}\nextendedKeyUsage=serverAuth,clientAuth\n`,
      ca,
    );
  }

  /** A client's certificate with common name `cn`. */
  client(cn: string, ca: "ca" | "other-ca" = "ca"): Promise<CertFiles> {
    return this.issue(cn, "extendedKeyUsage=clientAuth\n", ca);
  }

  /** Revokes a certificate of the CA and rewrites {@linkcode crl}. */
  async revoke(c: CertFiles): Promise<void> {
    await openssl(this.dir, [
      "ca",
      "-config",
      "ca.cnf",
      "-keyfile",
      "ca.key",
      "-cert",
      "ca.crt",
      "-revoke",
      c.cert,
    ]);
    await this.writeCrl();
  }

  private async writeCrl(): Promise<void> {
    await openssl(this.dir, [
      "ca",
      "-config",
      "ca.cnf",
      "-keyfile",
      "ca.key",
      "-cert",
      "ca.crt",
      "-gencrl",
      "-out",
      "crl.pem",
    ]);
  }

  /** Removes every file. */
  async destroy(): Promise<void> {
    await Deno.remove(this.dir, { recursive: true });
  }
}
