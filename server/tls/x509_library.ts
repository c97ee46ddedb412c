/**
 * The X.509 library (`@peculiar/x509`), after the metadata polyfill its dependency injection needs.
 * Loaded only through {@linkcode loadX509} in `x509.ts`: import nothing from here but types.
 *
 * @module
 */
import "reflect-metadata";

export * from "@peculiar/x509";
