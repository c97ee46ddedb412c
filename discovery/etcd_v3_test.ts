/**
 * v3 discovery against a real etcd 3.4 as the discovery service: the registry is written and read by
 * the real etcdctl, as an operator would, and members join through the etcd3 gRPC client.
 *
 * `V3_LOG=1` prints the members' discovery log while the tests run.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "../tests/assert.ts";
import { ctlOk, etcdctl, freePort, Member, spawn } from "../tests/helpers.ts";
import { Pki } from "../tests/pki.ts";
import { createLogger } from "../server/logger.ts";
import {
  DiscoveryError,
  joinClusterV3,
  registryKeys,
  V3_DISCOVERY_DEFAULTS,
  type V3DiscoveryOptions,
} from "./etcd_v3.ts";
import { memberId } from "./ids.ts";

function installed(cmd: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(":").some((dir) => {
    try {
      return Deno.statSync(join(dir, cmd)).isFile;
    } catch {
      return false;
    }
  });
}

const HAVE_ETCD = installed("etcd") && installed("etcdctl");
const SKIP = HAVE_ETCD ? "" : " (skipped: the real etcd and etcdctl are not installed)";

const lines: string[] = [];
const logger = createLogger({
  level: "debug",
  write: (l) => {
    lines.push(l);
    if (Deno.env.get("V3_LOG")) console.error(l);
  },
});

function optionsFor(
  endpoint: string,
  token: string,
  extra: Partial<V3DiscoveryOptions> = {},
): V3DiscoveryOptions {
  return { ...V3_DISCOVERY_DEFAULTS, token, endpoints: [endpoint], ...extra };
}

interface Self {
  id: bigint;
  name: string;
  peerUrls: string[];
}

/** A founding member as the caller builds it: the ID derived with the discovery token. */
function selfOf(name: string, peerUrls: string[], token: string): Self {
  return { id: memberId(peerUrls, token), name, peerUrls };
}

function newToken(): string {
  return `tok-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * Joins with a deadline: the join is aborted (and so closes its client) when it has not ended after
 * `ms`, so a hanging join fails the test instead of hanging it.
 */
async function joinBounded(
  opts: V3DiscoveryOptions,
  self: Self,
  ms = 20_000,
  extra: { sleep?: (ms: number) => Promise<void>; maxRetries?: number; signal?: AbortSignal } = {},
): Promise<Map<string, string[]>> {
  const ctrl = new AbortController();
  const timer = setTimeout(
    () => ctrl.abort(new Error(`join of ${self.name} still running after ${ms} ms`)),
    ms,
  );
  const signal = extra.signal ? AbortSignal.any([ctrl.signal, extra.signal]) : ctrl.signal;
  try {
    return await joinClusterV3(opts, self, {
      logger,
      signal,
      sleep: extra.sleep,
      maxRetries: extra.maxRetries,
    });
  } finally {
    clearTimeout(timer);
  }
}

/** The registrations under `token` as etcdctl shows them: key → value, in create-revision order. */
async function registrations(endpoint: string, token: string): Promise<[string, string][]> {
  const out = await ctlOk(endpoint, ["get", "--prefix", registryKeys(token).membersPrefix, "-w", "json"]);
  const kvs = (JSON.parse(out).kvs ?? []) as { key: string; value: string; create_revision: number }[];
  return kvs
    .sort((a, b) => a.create_revision - b.create_revision)
    .map((kv) => [atob(kv.key), atob(kv.value)]);
}

Deno.test({
  name: `v3 discovery: members register through a real etcd and agree on the cluster${SKIP}`,
  ignore: !HAVE_ETCD,
  async fn(t) {
    const store = await Member.start({ impl: "etcd" });
    const ep = store.endpoint;
    try {
      const token = newToken();
      const opts = optionsFor(ep, token);
      const peers = [
        ["http://127.0.1.1:2380"],
        ["http://127.0.1.2:2380", "http://127.0.1.2:12380"],
        ["http://127.0.1.3:2380"],
      ];
      const selves = peers.map((p, i) => selfOf(`infra${i}`, p, token));

      await t.step("with the size key missing, a member is refused before registering", async () => {
        const err = await assertRejects(() => joinBounded(opts, selves[0]), DiscoveryError);
        assertEquals(err.message, "discovery: size key not found");
        assertEquals(await registrations(ep, token), []);
      });

      await t.step("a size that is not a positive number is bad", async () => {
        for (const bad of ["three", "0", "-1", "3 ", ""]) {
          await ctlOk(ep, ["put", `/_etcd/registry/${token}/_config/size`, "--", bad]);
          const err = await assertRejects(() => joinBounded(opts, selves[0]), DiscoveryError);
          assertEquals(err.message, "discovery: size key is bad", `size ${JSON.stringify(bad)}`);
        }
        assertEquals(await registrations(ep, token), []);
      });

      await t.step("three concurrent joins wait for each other and end with the same cluster", async () => {
        await ctlOk(ep, ["put", `/_etcd/registry/${token}/_config/size`, "3"]);
        const first = joinBounded(opts, selves[0]);
        const second = joinBounded(opts, selves[1]);
        let settled = false;
        const both = Promise.allSettled([first, second]).then(() => settled = true);
        // the two must be registered and still waiting for the third
        const deadline = Date.now() + 10_000;
        while ((await registrations(ep, token)).length < 2) {
          assert(Date.now() < deadline, "the first two members never registered");
          await new Promise((r) => setTimeout(r, 50));
        }
        await new Promise((r) => setTimeout(r, 300));
        assert(!settled, "two of three members must still be waiting");
        const third = joinBounded(opts, selves[2]);
        const all = await Promise.all([first, second, third]);
        await both;
        for (const c of all) assertEquals(c, all[0]);

        // the registry as etcdctl sees it: one key per member ID in hex, `name=url` pairs sorted
        const regs = await registrations(ep, token);
        const byKey = new Map(regs);
        for (const s of selves) {
          assertEquals(
            byKey.get(`/_etcd/registry/${token}/members/${s.id.toString(16)}`),
            s.peerUrls.map((u) => `${s.name}=${u}`).sort().join(","),
          );
        }
        // the cluster is the registrations in create-revision order
        const expected = new Map<string, string[]>();
        for (const [, value] of regs) {
          for (const pair of value.split(",")) {
            const [name, url] = pair.split("=");
            expected.set(name, [...(expected.get(name) ?? []), url].sort());
          }
        }
        assertEquals(all[0], expected);
        assertEquals([...all[0].keys()].slice(0, 2).sort(), ["infra0", "infra1"]);
        assertEquals(all[0].get("infra1"), ["http://127.0.1.2:12380", "http://127.0.1.2:2380"]);
      });

      await t.step("a fourth member is refused as full, and does not register", async () => {
        const fourth = selfOf("infra3", ["http://127.0.1.4:2380"], token);
        const err = await assertRejects(() => joinBounded(opts, fourth), DiscoveryError);
        assertEquals(err.message, "discovery: cluster is full");
        assertEquals((err as DiscoveryError).code, "DISCOVERY");
        assertEquals((await registrations(ep, token)).length, 3);
      });

      await t.step("a registered member joining again (a restart) gets the same cluster", async () => {
        const before = await registrations(ep, token);
        const logged = lines.length;
        const again = await joinBounded(opts, selves[1]);
        assert(
          lines.slice(logged).some((l) => l.includes('"msg":"found own registration on discovery service"')),
          "the restarted member says it found its own registration",
        );
        assertEquals([...again.keys()].length, 3);
        assertEquals(again.get("infra1"), ["http://127.0.1.2:12380", "http://127.0.1.2:2380"]);
        assertEquals(await registrations(ep, token), before);
      });

      await t.step("the same ID registered with another name is a duplicate id", async () => {
        const impostor = { ...selves[2], name: "other" };
        const err = await assertRejects(() => joinBounded(opts, impostor), DiscoveryError);
        assertEquals(err.message, "discovery: found duplicate id");
      });

      await t.step("a late member beyond the size is full even after registering", async () => {
        // a member that registered out of turn (its write raced the others) is the (size+1)-th
        const tok = newToken();
        await ctlOk(ep, ["put", `/_etcd/registry/${tok}/_config/size`, "1"]);
        const a = selfOf("a", ["http://127.0.2.1:2380"], tok);
        const b = selfOf("b", ["http://127.0.2.2:2380"], tok);
        await ctlOk(ep, [
          "put",
          `/_etcd/registry/${tok}/members/${a.id.toString(16)}`,
          "a=http://127.0.2.1:2380",
        ]);
        await ctlOk(ep, [
          "put",
          `/_etcd/registry/${tok}/members/${b.id.toString(16)}`,
          "b=http://127.0.2.2:2380",
        ]);
        assertEquals(await joinBounded(optionsFor(ep, tok), a), new Map([["a", ["http://127.0.2.1:2380"]]]));
        const err = await assertRejects(() => joinBounded(optionsFor(ep, tok), b), DiscoveryError);
        assertEquals(err.message, "discovery: cluster is full");
      });

      await t.step("a registration with a bad peer URL spoils the cluster: invalid peer URL", async () => {
        const tok = newToken();
        await ctlOk(ep, ["put", `/_etcd/registry/${tok}/_config/size`, "2"]);
        await ctlOk(ep, ["put", `/_etcd/registry/${tok}/members/1`, "x=http://127.0.3.1:2380/path"]);
        const err = await assertRejects(
          () => joinBounded(optionsFor(ep, tok), selfOf("y", ["http://127.0.3.2:2380"], tok)),
          DiscoveryError,
        );
        assertEquals(err.message, "discovery: invalid peer URL");
      });

      await t.step("a waiting member stops when its signal fires", async () => {
        const tok = newToken();
        await ctlOk(ep, ["put", `/_etcd/registry/${tok}/_config/size`, "2"]);
        const ctrl = new AbortController();
        const waiting = joinBounded(
          optionsFor(ep, tok),
          selfOf("w", ["http://127.0.4.1:2380"], tok),
          20_000,
          {
            signal: ctrl.signal,
          },
        );
        const deadline = Date.now() + 10_000;
        while ((await registrations(ep, tok)).length < 1) {
          assert(Date.now() < deadline, "the member never registered");
          await new Promise((r) => setTimeout(r, 50));
        }
        ctrl.abort(new Error("shutting down"));
        await assertRejects(() => waiting, Error, "shutting down");
      });

      await t.step(
        "with auth enabled, the user and password are used; a wrong password is final",
        async () => {
          const tok = newToken();
          await ctlOk(ep, ["put", `/_etcd/registry/${tok}/_config/size`, "1"]);
          await ctlOk(ep, ["user", "add", "root:rootpw"]);
          await ctlOk(ep, ["auth", "enable"]);
          try {
            const self = selfOf("solo", ["http://127.0.5.1:2380"], tok);
            const got = await joinBounded(optionsFor(ep, tok, { user: "root", password: "rootpw" }), self);
            assertEquals(got, new Map([["solo", ["http://127.0.5.1:2380"]]]));
            const err = await assertRejects(
              () => joinBounded(optionsFor(ep, tok, { user: "root", password: "wrong" }), self),
              DiscoveryError,
            );
            assert(/authentication failed/.test(err.message), err.message);
          } finally {
            await ctlOk(ep, ["--user", "root:rootpw", "auth", "disable"]);
          }
        },
      );
    } finally {
      await store.destroy();
    }
  },
});

Deno.test({
  name: "v3 discovery: an unreachable service is retried with back-off, then reported",
  async fn() {
    // a port nothing listens on
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    const token = newToken();
    const waits: number[] = [];
    const started = Date.now();
    const err = await assertRejects(
      () =>
        joinBounded(
          optionsFor(`127.0.0.1:${port}`, token, { requestTimeoutMs: 1000, dialTimeoutMs: 500 }),
          selfOf("lost", ["http://127.0.6.1:2380"], token),
          20_000,
          { sleep: (ms) => (waits.push(ms), Promise.resolve()), maxRetries: 3 },
        ),
      DiscoveryError,
    );
    assertEquals((err as DiscoveryError).reason, "TOO_MANY_RETRIES");
    assert(err.message.startsWith("discovery: too many retries: "), err.message);
    assert(err.message.includes(`127.0.0.1:${port}`), err.message);
    assertEquals(waits, [2000, 4000, 8000]);
    // four attempts, each bounded by the request timeout
    assert(Date.now() - started < 4 * 1000 + 2000, `took ${Date.now() - started} ms`);
  },
});

Deno.test({
  name: "v3 discovery: a service that accepts connections but never answers times out per request",
  async fn() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const conns: Deno.Conn[] = [];
    const accepting = (async () => {
      try {
        for await (const c of listener) conns.push(c); // held open, never read or written
      } catch {
        // closed
      }
    })();
    try {
      const token = newToken();
      const waits: number[] = [];
      const started = Date.now();
      const err = await assertRejects(
        () =>
          joinBounded(
            optionsFor(`127.0.0.1:${port}`, token, { requestTimeoutMs: 400 }),
            selfOf("mute", ["http://127.0.6.2:2380"], token),
            20_000,
            { sleep: (ms) => (waits.push(ms), Promise.resolve()), maxRetries: 2 },
          ),
        DiscoveryError,
      );
      const took = Date.now() - started;
      assertEquals((err as DiscoveryError).reason, "TOO_MANY_RETRIES");
      assert(/deadline/i.test(err.message), err.message);
      assertEquals(waits, [2000, 4000]);
      // three attempts of 400 ms each, and no more
      assert(took >= 3 * 400 && took < 3 * 400 + 3000, `took ${took} ms`);
    } finally {
      listener.close();
      await accepting;
      for (const c of conns) c.close();
    }
  },
});

Deno.test({
  name: `v3 discovery: over TLS with a client certificate, verifying the service's certificate${SKIP}`,
  ignore: !HAVE_ETCD || !installed("openssl"),
  async fn(t) {
    const pki = await Pki.create();
    const dataDir = await Deno.makeTempDir({ prefix: "etcd-v3-discovery-" });
    const port = freePort();
    const server = await pki.member("store", "127.0.0.1");
    const client = await pki.client("discovery");
    const url = `https://127.0.0.1:${port}`;
    const child = spawn("etcd", [
      "--data-dir",
      dataDir,
      "--listen-client-urls",
      url,
      "--advertise-client-urls",
      url,
      "--listen-peer-urls",
      `http://127.0.0.1:${freePort()}`,
      "--cert-file",
      server.cert,
      "--key-file",
      server.key,
      "--trusted-ca-file",
      pki.ca,
      "--client-cert-auth",
    ]);
    const output = Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
    const tls = ["--cacert", pki.ca, "--cert", client.cert, "--key", client.key];
    try {
      const deadline = Date.now() + 20_000;
      while ((await etcdctl(url, [...tls, "endpoint", "health", "--dial-timeout=1s"])).code !== 0) {
        assert(Date.now() < deadline, "the TLS etcd never became healthy");
        await new Promise((r) => setTimeout(r, 100));
      }
      const token = newToken();
      await ctlOk(url, [...tls, "put", `/_etcd/registry/${token}/_config/size`, "2"]);
      const files = { caFile: pki.ca, certFile: client.cert, keyFile: client.key };

      // by host name: grpc-js cannot reach a TLS endpoint given as an IP under Deno (see the last step)
      const named = `https://localhost:${port}`;
      await t.step(
        "an https:// endpoint, and a bare one with --discovery-insecure-transport=false",
        async () => {
          const a = joinBounded(
            optionsFor(named, token, files),
            selfOf("a", ["https://127.0.7.1:2380"], token),
          );
          const b = joinBounded(
            optionsFor(`localhost:${port}`, token, { ...files, insecureTransport: false }),
            selfOf("b", ["https://127.0.7.2:2380"], token),
          );
          const [ca, cb] = await Promise.all([a, b]);
          assertEquals(ca, cb);
          assertEquals([...ca.keys()].sort(), ["a", "b"]);
        },
      );

      await t.step("without the CA the service's certificate is not trusted", async () => {
        const err = await assertRejects(
          () =>
            joinBounded(
              optionsFor(named, token, { certFile: client.cert, keyFile: client.key }),
              selfOf("c", ["https://127.0.7.3:2380"], token),
              20_000,
              { sleep: () => Promise.resolve(), maxRetries: 0 },
            ),
          DiscoveryError,
        );
        assertEquals((err as DiscoveryError).reason, "TOO_MANY_RETRIES");
        assert(/certificate/i.test(err.message), err.message);
      });

      await t.step("a TLS endpoint given as an IP address is refused at once, saying why", async () => {
        const err = await assertRejects(
          () => joinBounded(optionsFor(url, token, files), selfOf("d", ["https://127.0.7.4:2380"], token)),
          DiscoveryError,
        );
        assertEquals((err as DiscoveryError).reason, "UNSUPPORTED");
        assert(err.message.includes("IP address"), err.message);
      });
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone already
      }
      await child.status;
      await output;
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      await pki.destroy();
    }
  },
});

Deno.test("v3 discovery: settings the etcd3 client cannot honour are refused, not ignored", async () => {
  const base = optionsFor("https://127.0.0.1:1", "t");
  const self = selfOf("m", ["http://127.0.0.1:2380"], "t");
  let err = await assertRejects(
    () => joinClusterV3({ ...base, insecureSkipTlsVerify: true }, self, { logger }),
    DiscoveryError,
  );
  assertEquals((err as DiscoveryError).reason, "UNSUPPORTED");
  assert(err.message.includes("--discovery-insecure-skip-tls-verify"), err.message);

  err = await assertRejects(
    () =>
      joinClusterV3({ ...base, endpoints: ["https://127.0.0.1:1", "http://127.0.0.1:2"] }, self, { logger }),
    DiscoveryError,
  );
  assertEquals((err as DiscoveryError).reason, "UNSUPPORTED");

  err = await assertRejects(
    () => joinClusterV3({ ...base, certFile: "/x.crt" }, self, { logger }),
    DiscoveryError,
  );
  assertEquals(err.message, "discovery: KeyFile and CertFile must both be present[key: , cert: /x.crt]");

  err = await assertRejects(() => joinClusterV3({ ...base, token: "" }, self, { logger }), DiscoveryError);
  assertEquals((err as DiscoveryError).reason, "CONFIG");
});

Deno.test("v3 discovery: registry keys are etcd's, cleaned as path.Join cleans them", () => {
  assertEquals(registryKeys("tok"), {
    size: "/_etcd/registry/tok/_config/size",
    membersPrefix: "/_etcd/registry/tok/members/",
  });
  assertEquals(registryKeys("a/./b/"), {
    size: "/_etcd/registry/a/b/_config/size",
    membersPrefix: "/_etcd/registry/a/b/members/",
  });
});
