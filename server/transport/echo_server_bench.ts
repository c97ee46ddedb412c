/**
 * Starts a trivial echo gRPC server for load tests with h2load:
 *
 *     deno run -A server/transport/echo_server_bench.ts node|h2 PORT [CERT KEY]
 *     h2load -n 200000 -c 10 -m 10 -H 'content-type: application/grpc' -H 'te: trailers' \
 *       -d body http://127.0.0.1:PORT/test.Echo/Echo
 *
 * With a certificate and key (PEM files) it serves TLS instead, and h2load takes an https:// URL.
 *
 * @module
 */
import { GrpcRouter, type GrpcTransport } from "./grpc.ts";
import { serveNodeHttp2 } from "./node_http2.ts";
import { serveDenoH2 } from "./h2/transport.ts";
import { TlsCredentials, tlsSideConfig } from "../tls/credentials.ts";

const transports: Record<string, GrpcTransport> = { node: serveNodeHttp2, h2: serveDenoH2 };
const [name = "node", portArg = "24180", certFile, keyFile] = Deno.args;
const transport = transports[name];
if (transport === undefined) throw new Error(`unknown transport ${name}; try ${Object.keys(transports)}`);
const router = new GrpcRouter().unary("/test.Echo/Echo", (req) => req);
const tls = certFile === undefined
  ? {}
  : name === "node"
  ? { tls: { cert: await Deno.readTextFile(certFile), key: await Deno.readTextFile(keyFile) } }
  : {
    secure: {
      credentials: await TlsCredentials.load(tlsSideConfig({ certFile, keyFile })),
    },
  };
const listener = await transport(router, {
  hostname: "127.0.0.1",
  port: Number(portArg),
  maxReceiveMessageBytes: 4 << 20,
  ...tls,
});
console.log(`echo (${name}) on 127.0.0.1:${listener.port}`);
Deno.addSignalListener("SIGTERM", () => {
  void listener.close().then(() => Deno.exit(0));
});
