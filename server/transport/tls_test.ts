/**
 * The project's HTTP/2 server over the TLS listener of `server/tls/`: gRPC and HTTP/1.1 chosen by ALPN on
 * one port, client certificates required and their common name seen by handlers, refusals (no
 * certificate, another CA, a revoked one, a common name not allowed) reported in one line each, garbage
 * and plain HTTP on the port leaving it serving, and certificate files rotated on disk taken by new
 * connections.
 */
// deno-lint-ignore no-import-prefix
import * as grpc from "npm:@grpc/grpc-js@1.14.7";
import tls from "node:tls";
import { GrpcRouter } from "./grpc.ts";
import { serveDenoH2 } from "./h2/transport.ts";
import { assert, assertEquals, eventually, listen, makeCerts, openssl, type TestCerts } from "./test_util.ts";
import { TlsCredentials, type TlsSideConfig, tlsSideConfig } from "../tls/credentials.ts";

const id = (b: Buffer): Buffer => b;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);
/** grpc-js under Deno refuses an IP address as TLS server name: name the server "localhost". */
const SNI = { "grpc.ssl_target_name_override": "localhost" };

function router(): GrpcRouter {
  return new GrpcRouter()
    .unary("/test.Echo/Echo", (req) => req)
    .unary("/test.Echo/Cn", (_req, ctx) => text(ctx.peerCertificate?.commonName ?? "(none)"));
}

function sideConfig(dir: string, over: Partial<TlsSideConfig> = {}): TlsSideConfig {
  return tlsSideConfig({
    certFile: `${dir}/server.crt`,
    keyFile: `${dir}/server.key`,
    trustedCaFile: `${dir}/ca.crt`,
    clientCertAuth: true,
    ...over,
  });
}

function call(port: number, method: string, key?: string, cert?: string, ca?: string): Promise<string> {
  const client = new grpc.Client(
    `127.0.0.1:${port}`,
    grpc.credentials.createSsl(
      Buffer.from(ca!),
      key === undefined ? null : Buffer.from(key),
      cert === undefined ? null : Buffer.from(cert),
    ),
    SNI,
  );
  return new Promise<string>((resolve, reject) => {
    client.makeUnaryRequest(
      method,
      id,
      id,
      Buffer.from("hi"),
      new grpc.Metadata(),
      { deadline: Date.now() + 3000 },
      (err: grpc.ServiceError | null, value?: Buffer) => err ? reject(err) : resolve(str(value!)),
    );
  }).finally(() => client.close());
}

/** A revocation list from the test CA naming the client certificate. */
async function revokeClient(certs: TestCerts): Promise<string> {
  const d = certs.dir;
  await Deno.writeTextFile(`${d}/index.txt`, "");
  await Deno.writeTextFile(`${d}/crlnumber`, "01\n");
  await Deno.writeTextFile(
    `${d}/ca.cnf`,
    `[ca]\ndefault_ca=d\n[d]\ndatabase=${d}/index.txt\ncrlnumber=${d}/crlnumber\ndefault_md=sha256\n` +
      "default_crl_days=2\n",
  );
  const ca = ["-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt"];
  await openssl(d, ["ca", ...ca, "-revoke", "client.crt"]);
  await openssl(d, ["ca", ...ca, "-gencrl", "-out", "crl.pem"]);
  return `${d}/crl.pem`;
}

/** The subject CN of the certificate a new TLS connection to `port` is shown. */
function servedCn(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => {
      const cn = s.getPeerCertificate().subject?.CN;
      s.destroy();
      resolve(Array.isArray(cn) ? cn[0] : cn ?? "");
    });
    s.on("error", reject);
  });
}

Deno.test("the HTTP/2 server over TLS", async (t) => {
  const certs = await makeCerts();
  const refused: string[] = [];
  const onRefused = (_remote: string, reason: string): void => void refused.push(reason);
  try {
    await t.step("mutual TLS: gRPC works, the CN reaches the handler, strangers are refused", async () => {
      const credentials = await TlsCredentials.load(sideConfig(certs.dir));
      const l = await listen(serveDenoH2, router(), { secure: { credentials, onRefused } });
      try {
        assertEquals(
          await call(l.port, "/test.Echo/Cn", certs.clientKey, certs.clientCert, certs.ca),
          "client-a",
        );
        refused.length = 0;
        const anonymous = await call(l.port, "/test.Echo/Echo", undefined, undefined, certs.ca).catch((e) =>
          e
        );
        assert(anonymous instanceof Error, "a client without a certificate is refused");
        const stranger = await call(
          l.port,
          "/test.Echo/Echo",
          certs.strangerKey,
          certs.strangerCert,
          certs.ca,
        )
          .catch((e) => e);
        assert(stranger instanceof Error, "a certificate from another CA is refused");
        assert(await eventually(() => refused.length >= 2), `both were reported: ${refused}`);
        // in Go's words, as etcd logs them
        assertEquals(refused.length, 2, refused.join("; "));
        assertEquals(refused[0], "tls: client didn't provide a certificate");
        assertEquals(
          refused[1],
          'tls: failed to verify client certificate: x509: certificate signed by unknown authority (CN "stranger")',
        );
        // HTTP/1.1 by ALPN on the same port reaches the fallback (404 here: no handler)
        const http = Deno.createHttpClient({
          caCerts: [certs.ca],
          cert: certs.clientCert,
          key: certs.clientKey,
          http2: false,
        });
        try {
          const r = await fetch(`https://localhost:${l.port}/health`, { client: http });
          assertEquals([r.status, await r.text()], [404, "404 page not found\n"]);
        } finally {
          http.close();
        }
        assertEquals(
          await call(l.port, "/test.Echo/Echo", certs.clientKey, certs.clientCert, certs.ca),
          "hi",
        );
      } finally {
        await l.close();
      }
    });

    await t.step(
      "a revoked certificate and a common name not allowed are refused after the handshake",
      async () => {
        const crlFile = await revokeClient(certs);
        for (const over of [{ crlFile }, { allowedCn: ["someone-else"] }]) {
          const credentials = await TlsCredentials.load(sideConfig(certs.dir, over));
          const l = await listen(serveDenoH2, router(), { secure: { credentials, onRefused } });
          refused.length = 0;
          try {
            const r = await call(l.port, "/test.Echo/Echo", certs.clientKey, certs.clientCert, certs.ca)
              .catch((e) => e);
            assert(r instanceof Error, `refused with ${JSON.stringify(over)}`);
            assert(await eventually(() => refused.length === 1), "reported once");
            const expected = over.crlFile !== undefined
              ? /certificate revoked/
              : /client certificate authentication failed: CommonName/;
            assert(expected.test(refused[0]), refused[0]);
          } finally {
            await l.close();
          }
        }
      },
    );

    await t.step("garbage, plain HTTP and half handshakes leave the port serving", async () => {
      refused.length = 0;
      const credentials = await TlsCredentials.load(sideConfig(certs.dir, { clientCertAuth: false }));
      const l = await listen(serveDenoH2, router(), { secure: { credentials, onRefused } });
      const held: Deno.Conn[] = [];
      try {
        for (
          const bytes of ["GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\x16\x03\x01\x02\x00\x01", "\x00".repeat(300)]
        ) {
          const c = await Deno.connect({ hostname: "127.0.0.1", port: l.port });
          await c.write(new TextEncoder().encode(bytes));
          held.push(c);
        }
        assertEquals(await call(l.port, "/test.Echo/Echo", undefined, undefined, certs.ca), "hi");
        // plain HTTP is reported as etcd reports it; the half handshake is still held open
        assert(
          await eventually(() => refused.includes("tls: first record does not look like a TLS handshake")),
          refused.join("; "),
        );
      } finally {
        for (const c of held) c.close();
        await l.close();
      }
    });

    await t.step("certificate files rotated on disk are served to new connections", async () => {
      const dir = await Deno.makeTempDir({ prefix: "tls-rotate-" });
      try {
        await Deno.copyFile(`${certs.dir}/server.crt`, `${dir}/server.crt`);
        await Deno.copyFile(`${certs.dir}/server.key`, `${dir}/server.key`);
        await Deno.copyFile(`${certs.dir}/ca.crt`, `${dir}/ca.crt`);
        const credentials = await TlsCredentials.load(sideConfig(dir, { clientCertAuth: false }));
        const l = await listen(serveDenoH2, router(), { secure: { credentials, onRefused } });
        try {
          assertEquals(await servedCn(l.port, certs.ca), "localhost");
          assertEquals(await credentials.reload(), false, "nothing changed yet");
          // a certificate with another CN for the same key, from the same CA
          await openssl(certs.dir, [
            "req",
            "-new",
            "-key",
            "server.key",
            "-subj",
            "/CN=rotated",
            "-out",
            "r.csr",
          ]);
          await openssl(certs.dir, [
            "x509",
            "-req",
            "-in",
            "r.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "rotated.crt",
          ]);
          await Deno.copyFile(`${certs.dir}/rotated.crt`, `${dir}/server.crt`);
          assertEquals(await credentials.reload(), true, "the change is seen");
          assertEquals(await servedCn(l.port, certs.ca), "rotated");
          assertEquals(await call(l.port, "/test.Echo/Echo", undefined, undefined, certs.ca), "hi");
          // a half-written rotation keeps the old material
          await Deno.writeTextFile(`${dir}/server.key`, "not a key");
          const failed = await credentials.reload().then(() => undefined, (e) => e);
          assert(failed instanceof Error, "an unusable key is reported");
          assertEquals(await servedCn(l.port, certs.ca), "rotated");
        } finally {
          await l.close();
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});
