/**
 * The X.509 library (`@peculiar/x509` and the metadata polyfill it needs), loaded on first use: the two
 * cost about 20 MB of resident memory, which a member that parses and makes no certificate (one without
 * TLS, or with TLS but no CA file, CRL or auto-TLS) never pays. Take the library's classes from
 * {@linkcode loadX509} and its types from here; never import the package (or `x509_library.ts`) directly.
 *
 * @module
 */
import type * as X509Library from "./x509_library.ts";

export type { Extension, X509Certificate } from "./x509_library.ts";

/** The library's exports. */
export type X509 = typeof X509Library;

let loaded: X509 | undefined;

/** The library, imported the first time it is asked for. */
export async function loadX509(): Promise<X509> {
  return loaded ??= await import("./x509_library.ts");
}
