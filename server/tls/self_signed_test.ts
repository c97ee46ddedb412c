import { assert, assertEquals, assertMatch, assertRejects } from "../../tests/assert.ts";
import tls from "node:tls";
import { ensureSelfSignedCert, SelfSignedCertError, type SelfSignedResult } from "./self_signed.ts";

const decoder = new TextDecoder();

/** Runs the real openssl binary; fails the test when it fails. */
async function openssl(...args: string[]): Promise<string> {
  const out = await new Deno.Command("/usr/bin/openssl", { args, stdin: "null" }).output();
  assert(out.success, `openssl ${args.join(" ")}: ${decoder.decode(out.stderr)}`);
  return decoder.decode(out.stdout);
}

function certText(file: string): Promise<string> {
  return openssl("x509", "-noout", "-text", "-in", file);
}

/** The certificate's subject alternative names as openssl prints them, or undefined without the extension. */
function sans(text: string): string | undefined {
  return text.match(/X509v3 Subject Alternative Name:\s*\n\s*(.*)\n/)?.[1];
}

async function mode(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

/** A time on a whole second, as certificates carry it. */
function seconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

const HOUR = 3600 * 1000;

Deno.test("auto-TLS certificates: made as etcd makes them", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "self-signed-" });
  const dir = `${root}/fixtures/peer`;
  const now = seconds(Date.now());
  const hosts = [
    "127.0.1.10",
    "infra0.example.com",
    "0.0.0.0",
    "::",
    "::1",
    "localhost",
    "127.0.1.10",
    "INFRA0.example.com.",
    "[2001:db8::7]",
    "::ffff:10.1.2.3",
  ];
  try {
    const made = await ensureSelfSignedCert({ dir, hosts, validityYears: 2, now: () => now });
    const text = await certText(made.certFile);

    await t.step("files in the directory asked for, created 0700, the PEM returned as written", async () => {
      assertEquals([made.generated, made.reason], [true, "missing"]);
      assertEquals([made.certFile, made.keyFile], [`${dir}/cert.pem`, `${dir}/key.pem`]);
      assertEquals(await mode(dir), 0o700);
      assertEquals(await Deno.readTextFile(made.certFile), made.cert);
      assertEquals(await Deno.readTextFile(made.keyFile), made.key);
      assertMatch(made.key, /^-----BEGIN PRIVATE KEY-----\n/);
    });

    await t.step("both files mode 0600", async () => {
      assertEquals(await mode(made.certFile), 0o600, "cert.pem");
      assertEquals(await mode(made.keyFile), 0o600, "key.pem");
    });

    await t.step("ECDSA P-521 signed with SHA-512, O=etcd, etcd's key usages, not a CA", () => {
      assertMatch(text, /Public-Key: \(521 bit\)/);
      assertMatch(text, /ASN1 OID: secp521r1/);
      assertMatch(text, /NIST CURVE: P-521/);
      assertMatch(text, /Signature Algorithm: ecdsa-with-SHA512/);
      assertMatch(text, /Subject: O = etcd\n/);
      assertMatch(text, /Issuer: O = etcd\n/);
      assertMatch(text, /X509v3 Key Usage: critical\n\s*Digital Signature, Key Encipherment\n/);
      assertMatch(
        text,
        /X509v3 Extended Key Usage: \n\s*TLS Web Server Authentication, TLS Web Client Authentication\n/,
      );
      assertMatch(text, /X509v3 Basic Constraints: critical\n\s*CA:FALSE\n/);
    });

    await t.step("the hosts as SANs: deduplicated, unspecified addresses left out", () => {
      assertEquals(
        sans(text),
        "IP Address:127.0.1.10, DNS:infra0.example.com, IP Address:0:0:0:0:0:0:0:1, DNS:localhost, " +
          "IP Address:2001:DB8:0:0:0:0:0:7, IP Address:10.1.2.3",
      );
      assert(!text.includes("0.0.0.0"), "0.0.0.0 is not named");
      assert(!/IP Address:0:0:0:0:0:0:0:0\b/.test(text), ":: is not named");
    });

    await t.step("valid from now for the years asked", async () => {
      const dates = await openssl("x509", "-noout", "-dates", "-dateopt", "iso_8601", "-in", made.certFile);
      const notBefore = new Date(dates.match(/notBefore=(.*)/)![1].replace(" ", "T"));
      const notAfter = new Date(dates.match(/notAfter=(.*)/)![1].replace(" ", "T"));
      assertEquals(notBefore, now);
      assertEquals(notAfter, made.notAfter);
      const days = (notAfter.getTime() - notBefore.getTime()) / (24 * HOUR);
      assert(days >= 730 && days <= 731, `valid for ${days} days`);
    });

    await t.step("a random serial of up to 128 bits", async () => {
      const serial = (await openssl("x509", "-noout", "-serial", "-in", made.certFile)).trim();
      assertMatch(serial, /^serial=[0-9A-F]{2,34}$/);
      const other = await ensureSelfSignedCert({ dir: `${root}/other`, hosts, validityYears: 1 });
      assert(serial !== (await openssl("x509", "-noout", "-serial", "-in", other.certFile)).trim());
    });

    await t.step("key.pem is the certificate's P-521 key", async () => {
      assertMatch(await openssl("pkey", "-noout", "-text", "-in", made.keyFile), /ASN1 OID: secp521r1/);
      assertEquals(
        await openssl("pkey", "-pubout", "-in", made.keyFile),
        await openssl("x509", "-noout", "-pubkey", "-in", made.certFile),
      );
    });

    await t.step("no SAN extension at all when every host is unspecified", async () => {
      const bare = await ensureSelfSignedCert({
        dir: `${root}/bare`,
        hosts: ["0.0.0.0", "::", "[::]"],
        validityYears: 1,
      });
      assertEquals(sans(await certText(bare.certFile)), undefined);
      const again = await ensureSelfSignedCert({ dir: `${root}/bare`, hosts: ["0.0.0.0"], validityYears: 1 });
      assertEquals(again.generated, false);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("auto-TLS certificates: reused while valid, replaced otherwise", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "self-signed-" });
  const dir = `${root}/fixtures/client`;
  const hosts = ["127.0.0.1", "::1", "member1.example.com"];
  const ensure = (o: { hosts?: string[]; now?: () => Date } = {}): Promise<SelfSignedResult> =>
    ensureSelfSignedCert({ dir, hosts: o.hosts ?? hosts, validityYears: 1, now: o.now });
  try {
    const first = await ensure();
    assertEquals([first.generated, first.reason], [true, "missing"]);

    await t.step(
      "reused as is while valid and naming every host, however the hosts are written",
      async () => {
        const before = await Deno.stat(first.certFile);
        const again = await ensure({ hosts: ["0:0::1", "[::1]", "MEMBER1.example.com", "0.0.0.0"] });
        const { reason: _reason, ...same } = first;
        assertEquals(again, { ...same, generated: false }, "the same files, and no reason");
        assertEquals((await Deno.stat(first.certFile)).mtime, before.mtime, "cert.pem is not rewritten");
        assertEquals(await Deno.readTextFile(first.keyFile), first.key);
      },
    );

    await t.step("replaced when a host is new (the URLs changed)", async () => {
      const moved = await ensure({ hosts: [...hosts, "10.0.0.5"] });
      assertEquals([moved.generated, moved.reason], [true, "hosts changed"]);
      assert(moved.cert !== first.cert && moved.key !== first.key, "a new key and certificate");
      assertMatch(sans(await certText(moved.certFile))!, /IP Address:10\.0\.0\.5/);
      assertEquals((await ensure({ hosts: [...hosts, "10.0.0.5"] })).generated, false);
    });

    await t.step("replaced when expired", async () => {
      const twoYearsAgo = new Date(Date.now() - 2 * 365 * 24 * HOUR);
      const old = await ensure({ now: () => twoYearsAgo });
      assertEquals([old.generated, old.reason], [true, "not yet valid"]);
      assertEquals((await ensure({ now: () => twoYearsAgo })).generated, false, "valid when it was made");
      const renewed = await ensure();
      assertEquals([renewed.generated, renewed.reason], [true, "expired"]);
      assert(renewed.notAfter.getTime() > Date.now() + 300 * 24 * HOUR, "the new one is valid now");
    });

    await t.step("replaced within an hour of its end, kept before that", async () => {
      const made = await ensure();
      const end = made.notAfter.getTime();
      assertEquals((await ensure({ now: () => new Date(end - 2 * HOUR) })).generated, false);
      const late = await ensure({ now: () => new Date(end - HOUR / 2) });
      assertEquals([late.generated, late.reason], [true, "expired"]);
    });

    await t.step("replaced when it starts in the future (the clock went back)", async () => {
      const made = await ensure();
      const back = await ensure({ now: () => new Date(made.notAfter.getTime() - 400 * 24 * HOUR) });
      assertEquals([back.generated, back.reason], [true, "not yet valid"]);
    });

    await t.step("replaced when cert.pem is garbage, and the new one is 0600 again", async () => {
      await Deno.writeTextFile(`${dir}/cert.pem`, "garbage", { mode: 0o644 });
      await Deno.chmod(`${dir}/cert.pem`, 0o644);
      const fixed = await ensure();
      assertEquals([fixed.generated, fixed.reason], [true, "unreadable"]);
      assertEquals(await mode(fixed.certFile), 0o600);
      assertMatch(await certText(fixed.certFile), /Subject: O = etcd/);
    });

    await t.step("replaced when key.pem is garbage, missing, or another certificate's", async () => {
      await Deno.writeTextFile(
        `${dir}/key.pem`,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
      );
      assertEquals((await ensure()).reason, "unreadable");
      await Deno.remove(`${dir}/key.pem`);
      assertEquals((await ensure()).reason, "missing");
      const other = await ensureSelfSignedCert({ dir: `${root}/other`, hosts, validityYears: 1 });
      await Deno.writeTextFile(`${dir}/key.pem`, other.key);
      assertEquals((await ensure()).reason, "key mismatch");
      assertEquals((await ensure()).generated, false);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("auto-TLS certificates: failures say which file and why", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "self-signed-" });
  try {
    await t.step("a directory that cannot be made", async () => {
      await Deno.writeTextFile(`${root}/file`, "");
      const err = await assertRejects(
        () => ensureSelfSignedCert({ dir: `${root}/file/fixtures/peer`, hosts: [], validityYears: 1 }),
        SelfSignedCertError,
        `cannot generate cert: cannot create directory ${root}/file/fixtures/peer: `,
      );
      assertEquals((err as SelfSignedCertError).code, "ERR_SELF_SIGNED_CERT");
    });

    await t.step("a file that cannot be written, with nothing left behind", async () => {
      const dir = `${root}/blocked`;
      await Deno.mkdir(`${dir}/key.pem/inside`, { recursive: true }); // a non-empty directory named key.pem
      await assertRejects(
        () => ensureSelfSignedCert({ dir, hosts: ["127.0.0.1"], validityYears: 1 }),
        SelfSignedCertError,
        `cannot generate cert: cannot write ${dir}/key.pem: `,
      );
      const left = [];
      for await (const e of Deno.readDir(dir)) left.push(e.name);
      assertEquals(left, ["key.pem"]);
    });

    await t.step("a validity below one year, or not whole", async () => {
      for (const validityYears of [0, -1, 1.5, NaN]) {
        await assertRejects(
          () => ensureSelfSignedCert({ dir: `${root}/v`, hosts: [], validityYears }),
          SelfSignedCertError,
          "cannot generate cert: validity must be a whole number of years",
        );
      }
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** What a client saw of a TLS handshake with 127.0.0.1:`port`. */
function handshake(
  port: number,
  options: tls.ConnectionOptions,
): Promise<{ authorized: boolean; organization?: string; data: string } | { error: string }> {
  return new Promise((resolve) => {
    const c = tls.connect({ host: "127.0.0.1", port, ...options });
    let data = "";
    let result: { authorized: boolean; organization?: string; data: string } | { error: string } | undefined;
    c.on("secureConnect", () => {
      const organization = c.getPeerCertificate().subject?.O;
      result = { authorized: c.authorized, organization: String(organization), data: "" };
    });
    c.on("data", (d) => data += d);
    c.on("end", () => c.end());
    c.on("error", (e) => result = { error: e.message });
    c.on(
      "close",
      () => resolve(result && "data" in result ? { ...result, data } : result ?? { error: "closed" }),
    );
  });
}

Deno.test("auto-TLS certificates: the files serve TLS", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "self-signed-" });
  try {
    const made = await ensureSelfSignedCert({
      dir: root,
      hosts: ["127.0.0.1", "localhost", "0.0.0.0"],
      validityYears: 1,
    });
    const server = tls.createServer({ cert: made.cert, key: made.key }, (s) => s.end("hello"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      await t.step("a node:tls client that does not verify (as etcd's auto-TLS clients)", async () => {
        assertEquals(await handshake(port, { rejectUnauthorized: false }), {
          authorized: false,
          organization: "etcd",
          data: "hello",
        });
      });

      await t.step(
        "a node:tls client trusting the certificate verifies it for 127.0.0.1 and localhost",
        async () => {
          assertEquals(await handshake(port, { ca: made.cert }), {
            authorized: true,
            organization: "etcd",
            data: "hello",
          });
          assertEquals(await handshake(port, { ca: made.cert, servername: "localhost" }), {
            authorized: true,
            organization: "etcd",
            data: "hello",
          });
          const wrong = await handshake(port, { ca: made.cert, servername: "other.example.com" });
          assert("error" in wrong, "a name the certificate lacks is refused");
          assertMatch(wrong.error, /other\.example\.com/);
        },
      );

      await t.step("openssl s_client verifies it for the IP and the name", async () => {
        const args = ["s_client", "-connect", `127.0.0.1:${port}`, "-CAfile", made.certFile];
        args.push(
          "-verify_return_error",
          "-verify_ip",
          "127.0.0.1",
          "-verify_hostname",
          "localhost",
          "-brief",
        );
        const run = await new Deno.Command("/usr/bin/openssl", { args, stdin: "null" }).output();
        const out = decoder.decode(run.stdout) + decoder.decode(run.stderr); // -brief reports on stderr
        assert(run.success, out);
        assertMatch(out, /CONNECTION ESTABLISHED/);
        assertMatch(out, /Verification: OK/);
        assertMatch(out, /Signature type: ECDSA/);
      });
    } finally {
      await new Promise((r) => server.close(r));
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
