/**
 * Our own HTTP/2 server for gRPC on Deno.listen: {@linkcode serveDenoH2}.
 *
 * @module
 */
export { serveDenoH2 } from "./transport.ts";
export { H2Connection, type H2ServerContext, type H2Socket } from "./connection.ts";
export { Http1Connection, type Http1Handler, type Http1Sink } from "./http1.ts";
