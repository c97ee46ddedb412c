/**
 * The secured set-ups of etcd's clustering guide, with real processes and the real etcdctl, against
 * etcd-ts and the real etcd where they behave alike: three members on 127.0.1.10-12 with certificates
 * made by openssl (mutual TLS for clients and peers), the auto-TLS cluster, certificate rotation on
 * disk, and bad input on the TLS ports.
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { Cluster } from "./cluster.ts";
import { etcdctl, freePort, HAVE_ETCDCTL, implementations, sleep } from "./helpers.ts";
import { type CertFiles, Pki } from "./pki.ts";
import { ensureSelfSignedCert } from "../server/tls/self_signed.ts";

const HOSTS = ["127.0.1.10", "127.0.1.11", "127.0.1.12"];

/** The guide's flags for a member with certificates on both sides. */
function securedArgs(pki: Pki, m: CertFiles, extra: string[] = []): string[] {
  return [
    "--cert-file",
    m.cert,
    "--key-file",
    m.key,
    "--client-cert-auth",
    "--trusted-ca-file",
    pki.ca,
    "--peer-cert-file",
    m.cert,
    "--peer-key-file",
    m.key,
    "--peer-client-cert-auth",
    "--peer-trusted-ca-file",
    pki.ca,
    ...extra,
  ];
}

function clientArgs(pki: Pki, c: CertFiles): string[] {
  return ["--cacert", pki.ca, "--cert", c.cert, "--key", c.key];
}

const QUICK = ["--dial-timeout=1s", "--command-timeout=2s"];

/** Resident memory of a process in MiB, from /proc. */
async function rssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

for (const impl of implementations()) {
  Deno.test({
    name: `[${impl}] the guide's cluster with certificates: mutual TLS for clients and peers`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      const pki = await Pki.create();
      const members = new Map<string, CertFiles>();
      for (const [i, host] of HOSTS.entries()) members.set(`infra${i}`, await pki.member(`infra${i}`, host));
      const root = await pki.client("root");
      const stranger = await pki.client("root", "other-ca");
      const revoked = await pki.client("revoked");
      await pki.revoke(revoked);
      const good = clientArgs(pki, root);
      const c = await Cluster.start({
        impl,
        hosts: HOSTS,
        scheme: "https",
        memberArgs: (name) => securedArgs(pki, members.get(name)!, ["--client-crl-file", pki.crl]),
        ctlArgs: good,
      });
      try {
        const [a, b, d] = c.members.map((m) => m.endpoint);
        const put = await etcdctl(a, [...good, "put", "foo", "bar"]);
        assertEquals([put.code, put.stdout.trim()], [0, "OK"], put.stderr);
        for (const e of [b, d]) {
          const get = await etcdctl(e, [...good, "get", "foo", "--print-value-only"]);
          assertEquals(get.stdout.trim(), "bar", get.stderr);
        }
        const health = await etcdctl(c.endpoints(), [...good, "endpoint", "health"]);
        assertEquals(health.code, 0, health.stderr);

        const refused: [string, string[], string][] = [
          ["no certificate", ["--cacert", pki.ca], a],
          ["a certificate of another CA", clientArgs(pki, stranger), a],
          ["a revoked certificate", clientArgs(pki, revoked), b],
          ["plain HTTP", [], a.replace("https://", "http://")],
        ];
        for (const [what, args, endpoint] of refused) {
          const r = await etcdctl(endpoint, [...args, ...QUICK, "get", "foo"], { timeoutMs: 10_000 });
          assert(r.code !== 0 && !r.stdout.includes("bar"), `${what} is refused: ${r.stdout} ${r.stderr}`);
        }
        // and the members still serve good clients
        const after = await etcdctl(d, [...good, "get", "foo", "--print-value-only"]);
        assertEquals(after.stdout.trim(), "bar", after.stderr);
        // the member says why, in one line each, as etcd does
        const log = c.members[0].logSince();
        assertMatch(log, /rejected connection.*(didn't provide a certificate|certificate required)/);
        assertMatch(log, /rejected connection.*certificate signed by unknown authority/);
        assertMatch(log, /rejected connection.*first record does not look like a TLS handshake/);
        assertMatch(c.members[1].logSince(), /rejected connection.*revoked/);
      } finally {
        await c.destroy();
        await pki.destroy();
      }
    },
  });

  Deno.test({
    name: `[${impl}] a member with a certificate of another CA, or a common name not allowed, cannot join`,
    ignore: !HAVE_ETCDCTL,
    fn: async (t) => {
      const pki = await Pki.create();
      try {
        const cases: [string, (i: number, host: string) => Promise<CertFiles>, string[], RegExp][] = [
          [
            "another CA",
            (i, host) => pki.member(`infra${i}`, host, i === 2 ? "other-ca" : "ca"),
            [],
            /certificate signed by unknown authority/,
          ],
          [
            "a common name not allowed",
            (i, host) => pki.member(i === 2 ? "intruder" : "etcd-peer", host),
            ["--peer-cert-allowed-cn", "etcd-peer"],
            /client certificate authentication failed/,
          ],
        ];
        for (const [what, cert, extra, reason] of cases) {
          await t.step(what, async () => {
            const certs = await Promise.all(HOSTS.map((h, i) => cert(i, h)));
            const root = await pki.client("root");
            const c = await Cluster.create({
              impl,
              hosts: HOSTS,
              scheme: "https",
              memberArgs: (name) => securedArgs(pki, certs[Number(name.slice(5))], extra),
              ctlArgs: clientArgs(pki, root),
            });
            try {
              for (const m of c.members) m.spawn();
              await Promise.all(c.members.slice(0, 2).map((m) => m.waitReady()));
              const health = await etcdctl(c.members[2].endpoint, [
                ...clientArgs(pki, root),
                ...QUICK,
                "endpoint",
                "health",
              ], { timeoutMs: 10_000 });
              assert(health.code !== 0, `the third member is not healthy: ${health.stdout}`);
              // the members it tried to reach say why
              const seen = await c.members[0].waitForLog(reason, 0, 10_000) ??
                await c.members[1].waitForLog(reason, 0, 1000);
              assert(
                seen !== undefined,
                `a member logged ${reason}:\n${c.members[0].logSince().slice(-3000)}\n` +
                  `the refused member:\n${c.members[2].logSince().slice(-3000)}`,
              );
              if (impl === "etcd-ts") {
                // the refused member was told why, and says so too
                const told = await c.members[2].waitForLog(reason, 0, 10_000);
                assert(
                  told !== undefined,
                  `the refused member logged why:\n${c.members[2].logSince().slice(-3000)}`,
                );
              }
            } finally {
              await c.destroy();
            }
          });
        }
      } finally {
        await pki.destroy();
      }
    },
  });

  Deno.test({
    name: `[${impl}] the guide's auto-TLS cluster`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      const extra = ["--auto-tls", "--peer-auto-tls"];
      if (impl === "etcd-ts") extra.push("--self-signed-cert-validity", "3");
      const insecure = ["--insecure-transport=false", "--insecure-skip-tls-verify"];
      const c = await Cluster.start({
        impl,
        hosts: HOSTS,
        scheme: "https",
        extraArgs: extra,
        ctlArgs: insecure,
      });
      try {
        const put = await etcdctl(c.members[0].endpoint, [...insecure, "put", "k", "v"]);
        assertEquals(put.stdout.trim(), "OK", put.stderr);
        const get = await etcdctl(c.members[2].endpoint, [...insecure, "get", "k", "--print-value-only"]);
        assertEquals(get.stdout.trim(), "v", get.stderr);
        // without skipping verification, a client cannot trust the self-signed certificate
        const strict = await etcdctl(c.members[0].endpoint, [...QUICK, "get", "k"], { timeoutMs: 10_000 });
        assert(strict.code !== 0, "a verifying client refuses the self-signed certificate");

        const m = c.members[1];
        const files = ["client", "peer"].flatMap((side) =>
          ["cert.pem", "key.pem"].map((f) => join(m.dataDir, "fixtures", side, f))
        );
        // the keys are private (etcd-ts also keeps the certificates to their owner)
        for (const f of files.filter((f) => impl === "etcd-ts" || f.endsWith("key.pem"))) {
          assertEquals((await Deno.stat(f)).mode! & 0o777, 0o600, f);
        }
        const text = new TextDecoder().decode(
          (await new Deno.Command("openssl", { args: ["x509", "-noout", "-text", "-in", files[0]] }).output())
            .stdout,
        );
        assertMatch(text, /NIST CURVE: P-521/);
        assertMatch(text, /Subject: O ?= ?etcd/);
        assertMatch(text, new RegExp(`IP Address:${m.host.replaceAll(".", "\\.")}`));
        if (impl === "etcd-ts") {
          const notAfter = new Date(/Not After : (.*)/.exec(text)![1]);
          const years = (notAfter.getTime() - Date.now()) / (365.25 * 24 * 3600 * 1000);
          assert(years > 2.99 && years < 3.01, `valid for --self-signed-cert-validity years: ${years}`);
        }
        // a restart reuses the files
        const before = await Promise.all(files.map((f) => Deno.readTextFile(f)));
        await m.kill("SIGTERM");
        if (impl === "etcd-ts") {
          // an expired certificate is replaced at the next start (etcd keeps it for ever)
          const past = new Date(Date.now() - 2 * 365 * 24 * 3600 * 1000);
          await ensureSelfSignedCert({
            dir: join(m.dataDir, "fixtures", "client"),
            hosts: [m.host],
            validityYears: 1,
            now: () => past,
          });
        }
        m.spawn();
        await m.waitReady();
        const after = await Promise.all(files.map((f) => Deno.readTextFile(f)));
        assertEquals(after.slice(2), before.slice(2), "the peer certificate was reused");
        if (impl === "etcd-ts") {
          assert(after[0] !== before[0], "the expired client certificate was replaced");
          const fresh = new TextDecoder().decode(
            (await new Deno.Command("openssl", {
              args: ["x509", "-noout", "-checkend", "86400", "-in", files[0]],
            })
              .output()).stdout,
          );
          assertMatch(fresh, /will not expire/);
        } else {
          assertEquals(after[0], before[0], "the client certificate was reused");
        }
      } finally {
        await c.destroy();
      }
    },
  });

  Deno.test({
    name: `[${impl}] certificate files rotated on disk are served to new connections without a restart`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      const pki = await Pki.create();
      const host = "127.0.1.13";
      const first = await pki.member("before-rotation", host);
      const dir = await Deno.makeTempDir({ prefix: "rotation-" });
      const cert = join(dir, "server.crt");
      const key = join(dir, "server.key");
      await Deno.copyFile(first.cert, cert);
      await Deno.copyFile(first.key, key);
      const c = await Cluster.start({
        impl,
        hosts: [host],
        scheme: "https",
        extraArgs: [
          "--cert-file",
          cert,
          "--key-file",
          key,
          "--peer-cert-file",
          first.cert,
          "--peer-key-file",
          first.key,
        ],
        ctlArgs: ["--cacert", pki.ca],
      });
      const subject = async (): Promise<string> => {
        const out = await new Deno.Command("openssl", {
          args: ["s_client", "-connect", c.members[0].endpoint.replace("https://", ""), "-CAfile", pki.ca],
          stdin: "null",
          stdout: "piped",
          stderr: "null",
        }).output();
        return /subject=.*CN ?= ?([\w-]+)/.exec(new TextDecoder().decode(out.stdout))?.[1] ?? "";
      };
      try {
        assertEquals(await subject(), "before-rotation");
        const second = await pki.member("after-rotation", host);
        // the key first, then the certificate, as an operator's tool would replace them
        await Deno.copyFile(second.key, key);
        await Deno.copyFile(second.cert, cert);
        let seen = "";
        for (let i = 0; i < 50 && seen !== "after-rotation"; i++) {
          await sleep(100);
          seen = await subject();
        }
        assertEquals(seen, "after-rotation");
        const r = await etcdctl(c.members[0].endpoint, ["--cacert", pki.ca, "put", "x", "y"]);
        assertEquals(r.stdout.trim(), "OK", r.stderr);
      } finally {
        await c.destroy();
        await pki.destroy();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });

  Deno.test({
    name: `[${impl}] an https and an http client URL on two ports of one member`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      const pki = await Pki.create();
      const host = "127.0.1.15";
      const member = await pki.member("infra0", host);
      const plainPort = freePort(host);
      const c = await Cluster.create({
        impl,
        hosts: [host],
        scheme: "https",
        ctlArgs: ["--cacert", pki.ca],
        extraArgs: [
          "--cert-file",
          member.cert,
          "--key-file",
          member.key,
          "--peer-cert-file",
          member.cert,
          "--peer-key-file",
          member.key,
        ],
      });
      try {
        // the guide's flags name one client URL; a second, cleartext one is added on another port
        const m = c.members[0];
        const args = [...m.args];
        for (const flag of ["--listen-client-urls", "--advertise-client-urls"]) {
          const i = args.indexOf(flag);
          args[i + 1] = `${args[i + 1]},http://${host}:${plainPort}`;
        }
        m.args.splice(0, m.args.length, ...args);
        m.spawn();
        await m.waitReady();
        const secure = await etcdctl(m.endpoint, ["--cacert", pki.ca, "put", "k", "over TLS"]);
        assertEquals(secure.stdout.trim(), "OK", secure.stderr);
        const plain = await etcdctl(`${host}:${plainPort}`, ["get", "k", "--print-value-only"]);
        assertEquals(plain.stdout.trim(), "over TLS", plain.stderr);
        // and neither port speaks the other's language
        const wrong = await etcdctl(`${host}:${new URL(m.clientUrl).port}`, [...QUICK, "get", "k"], {
          timeoutMs: 10_000,
        });
        assert(wrong.code !== 0, "cleartext to the TLS port is refused");
      } finally {
        await c.destroy();
        await pki.destroy();
      }
    },
  });

  Deno.test({
    name: `[${impl}] garbage, half handshakes and 300 idle TLS connections leave a member serving`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      const pki = await Pki.create();
      const host = "127.0.1.14";
      const member = await pki.member("infra0", host);
      const root = await pki.client("root");
      const c = await Cluster.start({
        impl,
        hosts: [host],
        scheme: "https",
        memberArgs: () => securedArgs(pki, member),
        ctlArgs: clientArgs(pki, root),
      });
      const held: Deno.Conn[] = [];
      try {
        const m = c.members[0];
        const clientPort = Number(new URL(m.clientUrl).port);
        const peerPort = Number(new URL(m.peerUrl).port);
        const rssBefore = await rssMiB(m.pid);
        const junk = [
          new TextEncoder().encode("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"),
          new Uint8Array(4096).map((_, i) => (i * 7919) & 0xff),
          Uint8Array.of(0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03), // a ClientHello cut short
        ];
        for (const port of [clientPort, peerPort]) {
          for (const bytes of junk) {
            const conn = await Deno.connect({ hostname: host, port });
            await conn.write(bytes).catch(() => 0);
            held.push(conn);
          }
        }
        // 300 TLS connections that finish the handshake and then say nothing
        for (let i = 0; i < 300; i++) {
          const conn = await Deno.connectTls({
            hostname: host,
            port: clientPort,
            caCerts: [await Deno.readTextFile(pki.ca)],
            cert: await Deno.readTextFile(root.cert),
            key: await Deno.readTextFile(root.key),
          });
          await conn.handshake();
          held.push(conn);
        }
        const r = await etcdctl(m.endpoint, [...clientArgs(pki, root), "put", "still", "serving"]);
        assertEquals(r.stdout.trim(), "OK", r.stderr);
        const got = await etcdctl(m.endpoint, [
          ...clientArgs(pki, root),
          "get",
          "still",
          "--print-value-only",
        ]);
        assertEquals(got.stdout.trim(), "serving");
        if (impl === "etcd-ts") {
          const rss = await rssMiB(m.pid);
          assert(rss - rssBefore < 150, `resident memory grew by ${rss - rssBefore} MiB`);
        }
      } finally {
        for (const conn of held) {
          try {
            conn.close();
          } catch {
            // already closed by the member
          }
        }
        await c.destroy();
        await pki.destroy();
      }
    },
  });
}
