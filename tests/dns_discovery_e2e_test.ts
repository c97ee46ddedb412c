/**
 * DNS discovery end to end: three etcd-ts members started with `--discovery-srv example.com` and their
 * own URLs (host names, as in etcd's clustering guide) find each other through SRV records served by a
 * real DNS server (dnsmasq) inside a network namespace the test creates, where the system resolver of
 * every process answers from it. Variants: http peers, https peers with given certificates, and https
 * peers with `--peer-auto-tls`. The real etcdctl finds the members through `_etcd-client._tcp`.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "./assert.ts";
import { CAN_USE_NETNS, DnsNamespace, NETNS_SKIP_REASON } from "./dns_server.ts";
import { HAVE_ETCDCTL, sleep } from "./helpers.ts";
import { Pki } from "./pki.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const HOSTS = [0, 1, 2].map((i) => `infra${i}.example.com`);
const IPS = ["127.0.1.1", "127.0.1.2", "127.0.1.3"];

type Variant = "http" | "https with certificates" | "https with peer auto-TLS";

async function runVariant(variant: Variant): Promise<void> {
  const scheme = variant === "http" ? "http" : "https";
  const service = scheme === "https" ? "_etcd-server-ssl._tcp.example.com" : "_etcd-server._tcp.example.com";
  const ns = await DnsNamespace.start({
    records: {
      srv: [
        ...HOSTS.map((target) => ({ service, target, port: 2380 })),
        ...HOSTS.map((target) => ({ service: "_etcd-client._tcp.example.com", target, port: 2379 })),
      ],
      hosts: Object.fromEntries(HOSTS.map((h, i) => [h, IPS[i]])),
    },
  });
  const pki = variant === "https with certificates" ? await Pki.create() : undefined;
  const logs = HOSTS.map((_, i) => join(ns.dir, `infra${i}.log`));
  try {
    const tls: string[][] = [];
    for (let i = 0; i < 3; i++) {
      if (pki) {
        const c = await pki.member(`infra${i}`, IPS[i], "ca", [HOSTS[i]]);
        tls.push([
          "--peer-cert-file",
          c.cert,
          "--peer-key-file",
          c.key,
          "--peer-trusted-ca-file",
          pki.ca,
          "--peer-client-cert-auth",
        ]);
      } else {
        tls.push(variant === "https with peer auto-TLS" ? ["--peer-auto-tls"] : []);
      }
    }
    const members = [0, 1, 2].map((i) =>
      ns.spawn([
        Deno.execPath(),
        "run",
        "--allow-all",
        "--quiet",
        MAIN,
        "--name",
        `infra${i}`,
        "--data-dir",
        join(ns.dir, `infra${i}.etcd`),
        "--discovery-srv",
        "example.com",
        "--initial-advertise-peer-urls",
        `${scheme}://${HOSTS[i]}:2380`,
        "--initial-cluster-token",
        "etcd-cluster-1",
        "--initial-cluster-state",
        "new",
        "--advertise-client-urls",
        `http://${HOSTS[i]}:2379`,
        "--listen-client-urls",
        `http://${IPS[i]}:2379`,
        "--listen-peer-urls",
        `${scheme}://${IPS[i]}:2380`,
        ...tls[i],
      ], logs[i])
    );
    const etcdctl = (args: string[]) =>
      ns.output(["etcdctl", "--discovery-srv", "example.com", "--insecure-discovery", ...args], 20_000);
    const allLogs = async () =>
      (await Promise.all(logs.map((l) => Deno.readTextFile(l).catch(() => "")))).join("\n-----\n");

    // healthy: all three members found through _etcd-client._tcp and answering
    const deadline = Date.now() + 45_000;
    let last = "";
    for (;;) {
      const r = await etcdctl(["endpoint", "health", "--cluster"]);
      last = r.stdout + r.stderr;
      if (r.code === 0 && last.split(" is healthy").length === 4) break;
      if (Date.now() > deadline) throw new Error(`no healthy cluster: ${last}\n${await allLogs()}`);
      await sleep(300);
    }
    const list = await etcdctl(["member", "list", "-w", "json"]);
    assertEquals(list.code, 0, list.stderr);
    const names = (JSON.parse(list.stdout.replace(/"ID":(\d+)/g, '"ID":"$1"')) as {
      members: { name: string; peerURLs: string[] }[];
    }).members.map((m) => `${m.name}=${m.peerURLs.join(",")}`).sort();
    assertEquals(names, HOSTS.map((h, i) => `infra${i}=${scheme}://${h}:2380`));
    assertEquals((await etcdctl(["put", "srv", "found"])).code, 0);
    const get = await ns.output(["etcdctl", "--endpoints", `http://${HOSTS[2]}:2379`, "get", "srv"]);
    assertEquals(get.stdout, "srv\nfound\n");
    for (const m of members) await ns.stop(m);
    const log = await allLogs();
    assert(log.includes("got bootstrap from DNS for etcd-server"), log);
  } finally {
    await ns.close();
    await pki?.destroy();
  }
}

const ignore = !CAN_USE_NETNS || !HAVE_ETCDCTL;
if (!CAN_USE_NETNS) console.warn(`dns_discovery_e2e_test: skipped: ${NETNS_SKIP_REASON}`);

for (const variant of ["http", "https with certificates", "https with peer auto-TLS"] as const) {
  Deno.test({
    name: `[etcd-ts] DNS discovery (--discovery-srv example.com, ${variant}): three members form one cluster`,
    ignore,
    fn: () => runVariant(variant),
  });
}

Deno.test({
  name: "[etcd-ts] DNS discovery errors: https records without a peer certificate, a name not among them",
  ignore,
  async fn() {
    const ns = await DnsNamespace.start({
      records: {
        srv: HOSTS.map((target) => ({ service: "_etcd-server-ssl._tcp.example.com", target, port: 2380 })),
        hosts: Object.fromEntries(HOSTS.map((h, i) => [h, IPS[i]])),
      },
    });
    try {
      const start = (args: string[]) =>
        ns.output([
          Deno.execPath(),
          "run",
          "--allow-all",
          "--quiet",
          MAIN,
          "--data-dir",
          join(ns.dir, `m${Math.random()}`),
          "--discovery-srv",
          "example.com",
          "--listen-client-urls",
          `http://${IPS[0]}:2379`,
          "--advertise-client-urls",
          `http://${HOSTS[0]}:2379`,
          ...args,
        ], 30_000);
      let r = await start([
        "--name",
        "infra0",
        "--initial-advertise-peer-urls",
        `https://${HOSTS[0]}:2380`,
        "--listen-peer-urls",
        `http://${IPS[0]}:2380`,
      ]);
      assert(r.code !== 0, r.stderr);
      assert(r.stderr.includes("list https peers, but this member has no peer certificate"), r.stderr);
      r = await start([
        "--name",
        "infra9",
        "--initial-advertise-peer-urls",
        `https://127.0.1.9:2380`,
        "--listen-peer-urls",
        `https://127.0.1.9:2380`,
        "--peer-auto-tls",
      ]);
      assert(r.code !== 0, r.stderr);
      assert(r.stderr.includes('cannot find local etcd member \\"infra9\\" in SRV records'), r.stderr);
    } finally {
      await ns.close();
    }
  },
});
