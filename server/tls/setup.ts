/**
 * A member's TLS at startup: from its configuration to the credentials of its client side and its peer
 * side, as etcd decides them. A side gets credentials only when one of its listen URLs is `https://`:
 * the operator's files when given, else (with `--auto-tls` / `--peer-auto-tls`) a self-signed
 * certificate kept under `<data-dir>/fixtures/<side>`. The operator's files are watched while the
 * member runs: a rotation on disk reaches new connections within {@linkcode RELOAD_INTERVAL_MS}.
 *
 * @module
 */
import { join } from "node:path";
import type { Config, TlsConfig } from "../config/types.ts";
import { TLS12_CIPHER_SUITES } from "../config/cipher_suites.ts";
import type { Clock } from "../clock.ts";
import type { Logger } from "../logger.ts";
import { denoFiles, TlsCredentials, type TlsFileReader, tlsSideConfig } from "./credentials.ts";
import { ensureSelfSignedCert } from "./self_signed.ts";

/** How often the operator's certificate files are looked at for a rotation. */
export const RELOAD_INTERVAL_MS = 1000;

/** The credentials of both sides (undefined for a side without `https://` listen URLs). */
export interface MemberTls {
  client?: TlsCredentials;
  peer?: TlsCredentials;
  /** Stops watching the files. */
  close(): void;
}

/** What {@linkcode setUpTls} uses besides the configuration. */
export interface TlsSetupDeps {
  logger: Logger;
  clock: Clock;
  reader?: TlsFileReader;
  /** The time self-signed certificates are made and checked at. */
  now?: () => Date;
}

type Side = "client" | "peer";

/** Builds the credentials of both sides and starts watching the operator's files. */
export async function setUpTls(config: Config, deps: TlsSetupDeps): Promise<MemberTls> {
  const client = await sideCredentials("client", config, deps);
  const peer = await sideCredentials("peer", config, deps);
  const watched = [client, peer].filter((c): c is TlsCredentials => c !== undefined && !c.config.selfSigned);
  const failures = new Map<TlsCredentials, string>();
  let timer: number | undefined;
  if (watched.length > 0) {
    timer = deps.clock.setInterval(() => {
      for (const c of watched) {
        c.reload().then((changed) => {
          failures.delete(c);
          if (changed) deps.logger.info("reloaded TLS certificate files", { "cert-file": c.config.certFile });
        }, (err) => {
          // a rotation caught half-written is tried again on the next tick; say so once per cause
          const why = err instanceof Error ? err.message : String(err);
          if (failures.get(c) === why) return;
          failures.set(c, why);
          deps.logger.warn("cannot reload TLS certificate files; keeping the previous ones", { error: why });
        });
      }
    }, RELOAD_INTERVAL_MS);
  }
  return {
    client,
    peer,
    close(): void {
      if (timer !== undefined) deps.clock.clearInterval(timer);
      timer = undefined;
    },
  };
}

async function sideCredentials(
  side: Side,
  config: Config,
  deps: TlsSetupDeps,
): Promise<TlsCredentials | undefined> {
  const t: TlsConfig = side === "client" ? config.clientTls : config.peerTls;
  // https:// metrics URLs are served with the client side's certificate, as etcd serves them
  const listen = side === "client"
    ? [...config.listenClientUrls, ...config.listenMetricsUrls]
    : config.listenPeerUrls;
  const advertised = side === "client" ? config.advertiseClientUrls : config.initialAdvertisePeerUrls;
  const secureUrls = listen.filter((u) => u.protocol === "https:");
  const hasFiles = t.certFile !== "" && t.keyFile !== "";
  if (secureUrls.length === 0) {
    if (hasFiles) {
      deps.logger.warn("scheme is HTTP while key and cert files are present; ignoring key and cert files", {
        side,
      });
    }
    return undefined;
  }
  const common = {
    cipherSuites: config.cipherSuites.map((name) => TLS12_CIPHER_SUITES.get(name) ?? name),
    minVersion: config.tlsMinVersion === "TLS1.3" ? "TLSv1.3" as const : "TLSv1.2" as const,
    ...(config.tlsMaxVersion === "" ? {} : {
      maxVersion: config.tlsMaxVersion === "TLS1.3" ? "TLSv1.3" as const : "TLSv1.2" as const,
    }),
    allowedCn: splitList(t.allowedCn),
    allowedHostname: splitList(t.allowedHostname),
  };
  if (hasFiles) {
    if (t.autoTls) {
      deps.logger.warn(`ignoring ${side} auto TLS since certs given`, { "cert-file": t.certFile });
    }
    const sideConfig = tlsSideConfig({
      certFile: t.certFile,
      keyFile: t.keyFile,
      trustedCaFile: t.trustedCaFile,
      clientCertAuth: t.clientCertAuth,
      crlFile: t.crlFile,
      clientCertFile: t.clientCertFile,
      clientKeyFile: t.clientKeyFile,
      ...common,
    });
    return await TlsCredentials.load(sideConfig, deps.reader ?? denoFiles);
  }
  // validation refuses https client and peer URLs without files or auto-TLS; an https metrics URL
  // without either has no certificate to serve with (startSecureMetricsListener says so, as etcd does)
  if (!t.autoTls) return undefined;
  const hosts = [...new Set([...listen, ...advertised].map((u) => u.hostname.replace(/^\[|\]$/g, "")))];
  const made = await ensureSelfSignedCert({
    dir: join(config.dataDir, "fixtures", side),
    hosts,
    validityYears: config.selfSignedCertValidity,
    now: deps.now,
  });
  deps.logger.info(
    made.generated ? "generated a self-signed certificate" : "reusing a self-signed certificate",
    {
      side,
      "cert-file": made.certFile,
      hosts: hosts.join(","),
      "not-after": made.notAfter.toISOString(),
      ...(made.reason === undefined ? {} : { reason: made.reason }),
    },
  );
  deps.logger.warn(
    side === "peer"
      ? "peer auto TLS: traffic between members is encrypted, but members are not authenticated"
      : "client auto TLS: traffic is encrypted, but this member's certificate cannot be verified by clients",
    { side },
  );
  if (t.clientCertAuth) {
    deps.logger.warn(`${side} certificate authentication is not possible with auto TLS; ignoring it`, {
      side,
    });
  }
  // a self-signed side checks no names (verify.ts): the allowed lists have nothing to act on
  return await TlsCredentials.load(
    tlsSideConfig({ certFile: made.certFile, keyFile: made.keyFile, selfSigned: true, ...common }),
    deps.reader ?? denoFiles,
  );
}

function splitList(s: string): string[] {
  return s.split(",").map((x) => x.trim()).filter((x) => x !== "");
}
