import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { makeCerts } from "../transport/test_util.ts";
import { serveDenoH2 } from "../transport/h2/transport.ts";
import { TlsCredentials, tlsSideConfig } from "../tls/credentials.ts";
import type { HttpHandler } from "./health.ts";
import { MetricsUrlError, startMetricsListener, startSecureMetricsListener } from "./metrics_listener.ts";

const hello: HttpHandler = (req) =>
  Promise.resolve(
    req.path === "/health"
      ? { status: 200, headers: { "Content-Type": "text/plain" }, body: '{"health":"true"}' }
      : { status: 404, body: "404 page not found\n" },
  );

Deno.test("metrics listener: https:// needs the client certificate, as etcd says", async () => {
  let thrown: unknown;
  try {
    await startSecureMetricsListener(new URL("https://127.0.0.1:23801"), hello, {
      credentials: undefined,
      transport: serveDenoH2,
    });
  } catch (err) {
    thrown = err;
  }
  assert(thrown instanceof MetricsUrlError, String(thrown));
  assertEquals(
    (thrown as Error).message,
    "cannot listen on TLS for 127.0.0.1:23801: KeyFile and CertFile are not presented",
  );
  // the plain listener never serves https in the clear
  let plain: unknown;
  try {
    startMetricsListener(new URL("https://127.0.0.1:0"), hello);
  } catch (err) {
    plain = err;
  }
  assert(plain instanceof MetricsUrlError, String(plain));
});

Deno.test("metrics listener: https:// with client-cert-auth serves clients with a trusted certificate only", async () => {
  const certs = await makeCerts();
  const credentials = await TlsCredentials.load(tlsSideConfig({
    certFile: `${certs.dir}/server.crt`,
    keyFile: `${certs.dir}/server.key`,
    trustedCaFile: `${certs.dir}/ca.crt`,
    clientCertAuth: true,
  }));
  const refused: string[] = [];
  const listener = await startSecureMetricsListener(new URL("https://127.0.0.1:0"), hello, {
    credentials,
    transport: serveDenoH2,
    onRefused: (_remote, reason) => refused.push(reason),
  });
  const trusted = Deno.createHttpClient({
    caCerts: [certs.ca],
    cert: certs.clientCert,
    key: certs.clientKey,
  });
  const anonymous = Deno.createHttpClient({ caCerts: [certs.ca] });
  try {
    const base = `https://127.0.0.1:${listener.port}`;
    const ok = await fetch(`${base}/health`, { client: trusted });
    assertEquals([ok.status, await ok.text()], [200, '{"health":"true"}']);
    const missing = await fetch(`${base}/nope`, { client: trusted });
    assertEquals([missing.status, await missing.text()], [404, "404 page not found\n"]);
    await assertRejects(async () => {
      const r = await fetch(`${base}/health`, { client: anonymous });
      await r.text();
    });
    assert(refused.length > 0, "the refused client should be logged");
  } finally {
    trusted.close();
    anonymous.close();
    await listener.close();
    await Deno.remove(certs.dir, { recursive: true });
  }
});
