import { assert, assertEquals, assertMatch } from "../../tests/assert.ts";
import tls from "node:tls";
import { ensureSelfSignedCert } from "./self_signed.ts";

async function opensslText(file: string): Promise<string> {
  const out = await new Deno.Command("openssl", { args: ["x509", "-noout", "-text", "-in", file] }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

Deno.test("auto-TLS certificates: made as etcd makes them, reused while valid, replaced otherwise", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "self-signed-" });
  const dir = `${root}/fixtures/peer`;
  const hosts = ["127.0.1.10", "infra0.example.com", "0.0.0.0", "::1"];
  try {
    const first = await ensureSelfSignedCert({ dir, hosts, validityYears: 2 });
    await t.step("ECDSA P-521, O=etcd, the hosts as SANs, the validity asked for, mode 0600", async () => {
      assertEquals([first.generated, first.reason], [true, "missing"]);
      const text = await opensslText(first.certFile);
      assertMatch(text, /NIST CURVE: P-521/);
      assertMatch(text, /Subject: O ?= ?etcd/);
      assertMatch(text, /IP Address:127\.0\.1\.10/);
      assertMatch(text, /IP Address:0:0:0:0:0:0:0:1/);
      assertMatch(text, /DNS:infra0\.example\.com/);
      assert(!text.includes("0.0.0.0"), "the unspecified address is left out");
      const years = (first.notAfter.getTime() - Date.now()) / (365.25 * 24 * 3600 * 1000);
      assert(years > 1.99 && years < 2.01, `valid for ${years} years`);
      for (const f of [first.certFile, first.keyFile]) {
        assertEquals((await Deno.stat(f)).mode! & 0o777, 0o600, f);
      }
    });
    await t.step("reused as long as valid and naming every host", async () => {
      const again = await ensureSelfSignedCert({ dir, hosts: ["infra0.example.com"], validityYears: 2 });
      assertEquals([again.generated, again.cert, again.key], [false, first.cert, first.key]);
    });
    await t.step("replaced when a host is new", async () => {
      const moved = await ensureSelfSignedCert({ dir, hosts: ["127.0.1.11"], validityYears: 1 });
      assertEquals([moved.generated, moved.reason], [true, "hosts changed"]);
      assertMatch(await opensslText(moved.certFile), /IP Address:127\.0\.1\.11/);
    });
    await t.step("replaced when expired", async () => {
      const past = new Date(Date.now() - 2 * 365 * 24 * 3600 * 1000);
      await ensureSelfSignedCert({ dir, hosts, validityYears: 1, now: () => past });
      const old = await ensureSelfSignedCert({ dir, hosts, validityYears: 1, now: () => past });
      assertEquals(old.generated, false, "valid at the time it was made");
      const renewed = await ensureSelfSignedCert({ dir, hosts, validityYears: 1 });
      assertEquals([renewed.generated, renewed.reason], [true, "expired"]);
      assert(renewed.notAfter.getTime() > Date.now(), "the new one is valid now");
    });
    await t.step("replaced when unreadable or when the key is another's", async () => {
      await Deno.writeTextFile(`${dir}/cert.pem`, "garbage");
      assertEquals((await ensureSelfSignedCert({ dir, hosts, validityYears: 1 })).reason, "unreadable");
      const other = await ensureSelfSignedCert({ dir: `${root}/other`, hosts, validityYears: 1 });
      await Deno.writeTextFile(`${dir}/key.pem`, other.key);
      assertEquals((await ensureSelfSignedCert({ dir, hosts, validityYears: 1 })).reason, "unreadable");
    });
    await t.step("the files serve TLS", async () => {
      const made = await ensureSelfSignedCert({ dir, hosts: ["127.0.0.1"], validityYears: 1 });
      const server = tls.createServer({ cert: made.cert, key: made.key }, (s) => s.end("hello"));
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      const port = (server.address() as { port: number }).port;
      try {
        const got = await new Promise<string>((resolve, reject) => {
          const c = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false });
          let data = "";
          c.on("data", (d) => data += d);
          c.on("end", () => resolve(data));
          c.on("error", reject);
        });
        assertEquals(got, "hello");
      } finally {
        await new Promise((r) => server.close(r));
      }
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
