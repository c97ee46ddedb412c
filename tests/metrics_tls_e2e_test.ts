/**
 * `--listen-metrics-urls https://...`: served with the client side's certificate and, with
 * `--client-cert-auth`, only to clients whose certificate the trusted CA signed; refused at start without
 * a certificate. Run against etcd-ts and the real etcd.
 */
import { assert, assertEquals } from "./assert.ts";
import { freePort, HAVE_ETCDCTL, type Impl, implementations, Member, runServer } from "./helpers.ts";
import { Pki } from "./pki.ts";

const HOSTS: Record<Impl, string> = { "etcd-ts": "127.0.2.106", etcd: "127.0.2.107" };

async function curl(args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command("curl", { args: ["-sS", "--max-time", "5", ...args], stderr: "piped" })
    .output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr) };
}

for (const impl of implementations()) {
  Deno.test({
    name: `[${impl}] metrics over https: the client certificate serves it, client-cert-auth guards it`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      const host = HOSTS[impl];
      const pki = await Pki.create();
      try {
        const server = await pki.member("infra0", host);
        const client = await pki.client("root");
        const metricsUrl = `https://${host}:${freePort(host)}`;
        const m = await Member.start({
          impl,
          host,
          args: [
            "--cert-file",
            server.cert,
            "--key-file",
            server.key,
            "--client-cert-auth",
            "--trusted-ca-file",
            pki.ca,
            "--listen-metrics-urls",
            metricsUrl,
          ],
        });
        try {
          const ok = await curl([
            "--cacert",
            pki.ca,
            "--cert",
            client.cert,
            "--key",
            client.key,
            `${metricsUrl}/health`,
          ]);
          assertEquals(ok, { code: 0, out: '{"health":"true"}' });
          // no client certificate: the handshake or the request is refused
          const refused = await curl(["--cacert", pki.ca, `${metricsUrl}/health`]);
          assert(refused.code !== 0 || !refused.out.includes('"health":"true"'), JSON.stringify(refused));
          // plain http on the https port gets nothing
          const clear = await curl([`${metricsUrl.replace("https:", "http:")}/health`]);
          assert(!clear.out.includes('"health":"true"'), JSON.stringify(clear));
        } finally {
          await m.destroy();
        }

        // without a client certificate the member does not start, in etcd's words
        const dataDir = await Deno.makeTempDir({ prefix: "etcd-ts-metrics-tls-" });
        try {
          const peer = `http://${host}:${freePort(host)}`;
          const r = await runServer(impl, [
            "--data-dir",
            dataDir,
            "--listen-client-urls",
            `http://${host}:${freePort(host)}`,
            "--advertise-client-urls",
            `http://${host}:2379`,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            `default=${peer}`,
            "--listen-metrics-urls",
            metricsUrl,
          ]);
          assert(r.code !== 0, r.stderr);
          assert(r.stderr.includes("KeyFile and CertFile are not presented"), r.stderr);
        } finally {
          await Deno.remove(dataDir, { recursive: true });
        }
      } finally {
        await Deno.remove(pki.dir, { recursive: true });
      }
    },
  });
}
