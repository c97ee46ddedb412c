/**
 * Proves the DNS namespace harness: inside it, the system resolver of any process (getent, Deno, the
 * real etcd and etcdctl) answers from dnsmasq, while the machine's /etc stays as it was; and etcd-ts's
 * SRV discovery, run there through the system resolver, agrees with the real etcd 3.4.
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { CAN_USE_NETNS, DnsNamespace, type DnsRecords, NETNS_SKIP_REASON, run } from "./dns_server.ts";
import { memberId } from "../discovery/ids.ts";

const SRV_MODULE = new URL("../discovery/srv.ts", import.meta.url).href;
const HOSTS = {
  "infra0.example.com": "127.0.1.1",
  "infra1.example.com": "127.0.1.2",
  "infra2.example.com": "127.0.1.3",
};
const INFRA = [0, 1, 2].map((i) => `infra${i}.example.com`);

function records(serverService: string): DnsRecords {
  return {
    srv: [
      ...INFRA.map((target) => ({ service: `${serverService}.example.com`, target, port: 2380 })),
      ...INFRA.map((target) => ({ service: "_etcd-client._tcp.example.com", target, port: 2379 })),
    ],
    hosts: HOSTS,
  };
}

/** Runs srvInitialCluster and srvClientEndpoints with the system resolver in a `deno` inside `ns`. */
async function discoverInside(
  ns: DnsNamespace,
  name: string,
  advertise: string,
  domain = "example.com",
): Promise<{ cluster?: [string, string[]][]; clients?: string[]; error?: string; code?: string }> {
  const code = `
    import { srvClientEndpoints, srvInitialCluster, systemResolver } from ${JSON.stringify(SRV_MODULE)};
    try {
      const c = await srvInitialCluster({ name: ${JSON.stringify(name)}, domain: ${JSON.stringify(domain)},
        serviceSuffix: "", advertisePeerUrls: [new URL(${
    JSON.stringify(advertise)
  })], resolver: systemResolver });
      const clients = await srvClientEndpoints({ domain: ${
    JSON.stringify(domain)
  }, resolver: systemResolver });
      console.log(JSON.stringify({ cluster: [...c], clients }));
    } catch (err) {
      console.log(JSON.stringify({ error: err.message, code: err.code }));
    }`;
  const r = await ns.output([Deno.execPath(), "eval", "--no-config", code], 60_000);
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** Polls `fn` every 200 ms until it returns true, for at most `ms`. */
async function waitFor(what: string, ms: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

function etcdArgs(i: number, ns: DnsNamespace, scheme: "http" | "https"): string[] {
  return [
    "etcd",
    "--name",
    `infra${i}`,
    "--data-dir",
    join(ns.dir, `infra${i}`),
    "--discovery-srv",
    "example.com",
    "--initial-advertise-peer-urls",
    `${scheme}://infra${i}.example.com:2380`,
    "--listen-peer-urls",
    `${scheme}://127.0.1.${i + 1}:2380`,
    "--listen-client-urls",
    `http://127.0.1.${i + 1}:2379`,
    "--advertise-client-urls",
    `http://infra${i}.example.com:2379`,
    "--initial-cluster-state",
    "new",
    ...(scheme === "https" ? ["--peer-auto-tls"] : []),
  ];
}

const ignore = !CAN_USE_NETNS;
if (ignore) console.warn(`dns_server_test: skipped: ${NETNS_SKIP_REASON}`);

Deno.test({ name: "DnsNamespace: the system resolver inside answers from dnsmasq", ignore }, async (t) => {
  const resolvBefore = await Deno.readTextFile("/etc/resolv.conf");
  const ns = await DnsNamespace.start({ records: records("_etcd-server._tcp") });
  try {
    await t.step("getent (glibc, like any dialer) resolves the A records", async () => {
      const r = await ns.output(["getent", "hosts", "infra0.example.com"]);
      assertEquals(r.code, 0, r.stderr);
      assertMatch(r.stdout, /^127\.0\.1\.1\s+infra0\.example\.com$/m);
      const missing = await ns.output(["getent", "hosts", "nowhere.example.com"]);
      assertEquals(missing.code, 2); // getent: key not found
    });

    await t.step(
      "only the namespace sees the bind-mounted resolv.conf; the machine's is unchanged",
      async () => {
        const inside = await ns.output(["cat", "/etc/resolv.conf"]);
        assertMatch(inside.stdout, /^nameserver 127\.0\.0\.1$/m);
        assertEquals(await Deno.readTextFile("/etc/resolv.conf"), resolvBefore);
        const outside = await run(["getent", "hosts", "infra0.example.com"], 15_000);
        assert(!outside.stdout.includes("127.0.1.1"), "the records leaked outside the namespace");
      },
    );

    await t.step("srvInitialCluster with the system resolver finds http-only records", async () => {
      const out = await discoverInside(ns, "infra1", "http://127.0.1.2:2380");
      assertEquals(out.cluster, [
        ["0", ["http://infra0.example.com:2380"]],
        ["infra1", ["http://infra1.example.com:2380"]],
        ["1", ["http://infra2.example.com:2380"]],
      ]);
      assertEquals(out.clients, INFRA.map((h) => `http://${h}:2379`));
      const log = await Deno.readTextFile(ns.logFile);
      assertMatch(log, /query\[SRV\] _etcd-server-ssl\._tcp\.example\.com/);
      assertMatch(log, /query\[SRV\] _etcd-server\._tcp\.example\.com/);
    });

    await t.step("errors through the real resolver", async () => {
      const stranger = await discoverInside(ns, "infra9", "http://127.0.1.9:2380");
      assertEquals(stranger.error, 'cannot find local etcd member "infra9" in SRV records');
      assertEquals(stranger.code, "BOOTSTRAP");
      const none = await discoverInside(ns, "infra0", "http://127.0.1.1:2380", "other.example.com");
      assertEquals(
        none.error,
        "error querying DNS SRV records for _etcd-server-ssl lookup _etcd-server-ssl._tcp.other.example.com: " +
          "no such host; error querying DNS SRV records for _etcd-server lookup " +
          "_etcd-server._tcp.other.example.com: no such host",
      );
      const mismatch = await discoverInside(ns, "infra1", "https://infra1.example.com:2380");
      assertEquals(
        mismatch.error,
        "bootstrap at http://infra1.example.com:2380 from DNS for etcd-server has scheme mismatch with " +
          "expected peer https://infra1.example.com:2380",
      );
    });

    await t.step(
      "the real etcd 3.4 refuses http-only records (etcd-ts accepts them on purpose)",
      async () => {
        const r = await ns.output(etcdArgs(0, ns, "http"), 30_000);
        assert(r.code !== 0, "etcd 3.4 started from http-only SRV records");
        assertMatch(r.stderr, /error querying DNS SRV records for _etcd-server-ssl/);
      },
    );
  } finally {
    await ns.close();
  }
  assertEquals(await Deno.stat(ns.etcDir).then(() => true, () => false), false);
  const list = await run(["ip", "netns", "list"]);
  assert(!list.stdout.includes(ns.name), "the namespace outlived close()");
});

Deno.test({ name: "DnsNamespace: a real etcd 3.4 cluster from https SRV records", ignore }, async (t) => {
  const ns = await DnsNamespace.start({ records: records("_etcd-server-ssl._tcp") });
  try {
    const members = [0, 1, 2].map((i) => ns.spawn(etcdArgs(i, ns, "https"), join(ns.dir, `infra${i}.log`)));
    const etcdctl = (args: string[]) =>
      ns.output(["etcdctl", "--discovery-srv", "example.com", "--insecure-discovery", ...args], 20_000);

    await t.step(
      "members dial each other by name; etcdctl finds them through _etcd-client._tcp",
      async () => {
        // etcdctl 3.4's `endpoint health` reads --endpoints unless --cluster asks it to look the
        // members up, which is where --discovery-srv applies
        let last = "";
        await waitFor("a healthy cluster", 40_000, async () => {
          const r = await etcdctl(["endpoint", "health", "--cluster"]);
          last = r.stdout + r.stderr;
          return r.code === 0 && last.split(" is healthy").length === 4;
        }).catch((err) => {
          throw new Error(`${err.message}; last etcdctl output: ${last}`);
        });
        const put = await etcdctl(["put", "srv", "found"]);
        assertEquals(put.code, 0, put.stderr);
        const get = await ns.output([
          "etcdctl",
          "--endpoints",
          "http://infra2.example.com:2379",
          "get",
          "srv",
        ]);
        assertEquals(get.stdout, "srv\nfound\n");
      },
    );

    await t.step("etcd-ts derives the member IDs the real etcd chose, from the same records", async () => {
      const r = await etcdctl(["member", "list", "-w", "json"]);
      assertEquals(r.code, 0, r.stderr);
      const real = (JSON.parse(r.stdout, (k, v) => k === "ID" ? undefined : v) as {
        members: { name: string; peerURLs: string[] }[];
      }).members;
      // member IDs are 64-bit: read them as text (JSON.parse would round them); the header says member_id
      const realIds = [...r.stdout.matchAll(/"ID":(\d+)/g)].map((m) => m[1]).sort();
      assertEquals(
        real.map((m) => [m.name, m.peerURLs]).sort(),
        [0, 1, 2].map((i) => [`infra${i}`, [`https://infra${i}.example.com:2380`]]),
      );
      const out = await discoverInside(ns, "infra0", "https://127.0.1.1:2380");
      const ours = out.cluster!.map(([, urls]) => memberId(urls, "etcd-cluster").toString()).sort();
      assertEquals(ours, realIds);
      const log = await Deno.readTextFile(ns.logFile);
      assertMatch(log, /query\[SRV\] _etcd-client\._tcp\.example\.com/);
    });

    for (const m of members) await ns.stop(m);
  } finally {
    await ns.close();
  }
});
