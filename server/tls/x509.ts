/**
 * The X.509 library (`@peculiar/x509`), loaded after the metadata polyfill its dependency injection
 * needs. Import X.509 classes from here, never from the package directly.
 *
 * @module
 */
import "reflect-metadata";

export * from "@peculiar/x509";
