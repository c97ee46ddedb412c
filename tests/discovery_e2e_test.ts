/**
 * etcd discovery end to end, as in etcd's clustering guide: members started with nothing but
 * `--discovery <url>` and their own URLs find each other through a discovery service and form one
 * cluster. The service is etcd-ts or the real etcd 3.4 with `--enable-v2` (the registry at
 * `/v2/keys/_etcd/registry/<token>`), or Debian's `discovery.etcd.io` server storing into etcd-ts.
 */
import { assert, assertEquals } from "./assert.ts";
import { Cluster, ClusterMember, idOf, parseCtlJson } from "./cluster.ts";
import {
  ctlOk,
  freePort,
  HAVE_ETCDCTL,
  type Impl,
  implementations,
  Member,
  runServer,
  sleep,
} from "./helpers.ts";

const HAVE_DISCOVERY_SERVER = (() => {
  try {
    return Deno.statSync("/usr/bin/discovery.etcd.io").isFile;
  } catch {
    return false;
  }
})();

/** A registry token: 32 hex digits, as discovery.etcd.io makes them. */
function newToken(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

/** Creates a token of `size` on a v2 store and returns its discovery URL. */
async function registryUrl(store: string, size: number): Promise<string> {
  const token = newToken();
  const res = await fetch(`http://${store}/v2/keys/_etcd/registry/${token}/_config/size`, {
    method: "PUT",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: `value=${size}`,
  });
  assert(res.status === 201, `creating the size key: ${res.status} ${await res.text()}`);
  return `http://${store}/v2/keys/_etcd/registry/${token}`;
}

/** The member IDs and names a member lists, sorted by name. */
async function memberList(m: ClusterMember): Promise<string[]> {
  const out = parseCtlJson(await ctlOk(m.endpoint, ["member", "list", "-w", "json"])) as {
    members: { ID: unknown; name: string; peerURLs: string[] }[];
  };
  return out.members.map((x) => `${x.name}:${idOf(x.ID).toString(16)}:${x.peerURLs.join(",")}`).sort();
}

/** All members list the same three members, and a write through one is read through another. */
async function assertOneCluster(c: Cluster): Promise<void> {
  const lists = await Promise.all(c.members.map(memberList));
  for (const l of lists) assertEquals(l, lists[0]);
  assertEquals(lists[0].length, c.members.length);
  await ctlOk(c.members[0].endpoint, ["put", "discovered", "yes"]);
  const got = await ctlOk(c.members[c.members.length - 1].endpoint, [
    "get",
    "discovered",
    "--print-value-only",
  ]);
  assertEquals(got.trim(), "yes");
}

/** A fourth member with the same discovery settings (a URL, or v3 flags) exits: the cluster is full. */
async function assertLateMemberRefused(impl: Impl, discovery: string | string[]): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "etcd-ts-late-" });
  const host = "127.0.1.94";
  const peer = `http://${host}:${freePort(host)}`;
  const client = `http://${host}:${freePort(host)}`;
  const late = new ClusterMember(impl, "infra3", host, client.slice(7), client, peer, dir, [
    "--name",
    "infra3",
    "--initial-advertise-peer-urls",
    peer,
    "--listen-peer-urls",
    peer,
    "--listen-client-urls",
    client,
    "--advertise-client-urls",
    client,
    ...(typeof discovery === "string" ? ["--discovery", discovery] : discovery),
    ...(impl === "etcd" ? ["--discovery-fallback", "exit"] : []),
  ], { ETCD_DATA_DIR: dir });
  try {
    late.spawn();
    const deadline = Date.now() + 20_000;
    while (late.running && Date.now() < deadline) await sleep(100);
    assert(!late.running, `the late member is still running:\n${late.logSince()}`);
    assert(late.logSince().includes("discovery: cluster is full"), late.logSince());
  } finally {
    await late.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The three members of the guide on 127.0.1.9x, bootstrapping through `url`. */
function discoveryCluster(impl: Impl, url: string): Promise<Cluster> {
  return Cluster.create({
    impl,
    hosts: ["127.0.1.91", "127.0.1.92", "127.0.1.93"],
    bootstrap: ["--discovery", url],
  });
}

async function startAll(c: Cluster): Promise<void> {
  for (const m of c.members) m.spawn();
  await Promise.all(c.members.map((m) => m.waitReady(30_000)));
}

for (const store of implementations()) {
  Deno.test({
    name:
      `[etcd-ts members, ${store} --enable-v2 as discovery service] three members form one cluster; a fourth is refused`,
    ignore: !HAVE_ETCDCTL,
    async fn() {
      const service = await Member.start({ impl: store, args: ["--enable-v2"] });
      let c: Cluster | undefined;
      try {
        const url = await registryUrl(service.endpoint, 3);
        c = await discoveryCluster("etcd-ts", url);
        await startAll(c);
        await assertOneCluster(c);
        await assertLateMemberRefused("etcd-ts", url);
      } catch (err) {
        throw new Error(`${err}\n${c?.logs() ?? ""}`);
      } finally {
        await c?.destroy();
        await service.destroy();
      }
    },
  });
}

Deno.test({
  name: "[etcd-ts] a member killed while it waits for the others registers again on restart and joins",
  ignore: !HAVE_ETCDCTL,
  async fn() {
    const service = await Member.start({ impl: "etcd-ts", args: ["--enable-v2"] });
    let c: Cluster | undefined;
    try {
      const url = await registryUrl(service.endpoint, 3);
      c = await discoveryCluster("etcd-ts", url);
      const [a, b, late] = c.members;
      a.spawn();
      b.spawn();
      const registered = await b.waitForLog(/waiting for more/, 0, 20_000);
      assert(registered !== undefined, `b never registered:\n${b.logSince()}`);
      await b.kill("SIGKILL");
      const mark = b.mark();
      b.spawn();
      assert(
        await b.waitForLog(/found own registration on discovery service/, mark, 20_000) !== undefined,
        `the restarted member did not find its registration:\n${b.logSince(mark)}`,
      );
      late.spawn();
      await Promise.all(c.members.map((m) => m.waitReady(30_000)));
      await assertOneCluster(c);
    } catch (err) {
      throw new Error(`${err}\n${c?.logs() ?? ""}`);
    } finally {
      await c?.destroy();
      await service.destroy();
    }
  },
});

Deno.test({
  name: "[etcd members, etcd-ts --enable-v2 as discovery service] the real etcd bootstraps through etcd-ts",
  ignore: !HAVE_ETCDCTL || !implementations().includes("etcd"),
  async fn() {
    const service = await Member.start({ impl: "etcd-ts", args: ["--enable-v2"] });
    let c: Cluster | undefined;
    try {
      const url = await registryUrl(service.endpoint, 3);
      c = await discoveryCluster("etcd", url);
      await startAll(c);
      await assertOneCluster(c);
      await assertLateMemberRefused("etcd", url);
    } catch (err) {
      throw new Error(`${err}\n${c?.logs() ?? ""}`);
    } finally {
      await c?.destroy();
      await service.destroy();
    }
  },
});

Deno.test({
  name: "[etcd-ts] Debian's discovery.etcd.io server storing into etcd-ts: three members, a fourth refused",
  ignore: !HAVE_ETCDCTL || !HAVE_DISCOVERY_SERVER,
  async fn() {
    const store = await Member.start({ impl: "etcd-ts", args: ["--enable-v2"] });
    const port = freePort();
    const server = new Deno.Command("/usr/bin/discovery.etcd.io", {
      args: ["-a", `127.0.0.1:${port}`, "-e", `http://${store.endpoint}`, "-h", `http://127.0.0.1:${port}`],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const serverLog: string[] = [];
    const drained = (async () => {
      for await (const chunk of server.stderr) serverLog.push(new TextDecoder().decode(chunk));
    })();
    let c: Cluster | undefined;
    try {
      // the service answers /new?size=N with a token URL under its own prefix
      let url = "";
      const deadline = Date.now() + 10_000;
      while (url === "" && Date.now() < deadline) {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/new?size=3`);
          const text = (await res.text()).trim();
          if (res.ok) url = text;
          else throw new Error(`/new: ${res.status} ${text}`);
        } catch (err) {
          if (!(err instanceof TypeError)) throw err;
          await sleep(100);
        }
      }
      assert(url.startsWith(`http://127.0.0.1:${port}/`), `token URL: ${url}\n${serverLog.join("")}`);
      // the token is stored in etcd-ts as the v2 registry the members use
      const size = await fetch(
        `http://${store.endpoint}/v2/keys/_etcd/registry/${url.split("/").pop()}/_config/size`,
      );
      assertEquals((await size.json()).node.value, "3");
      c = await discoveryCluster("etcd-ts", url);
      await startAll(c);
      await assertOneCluster(c);
      await assertLateMemberRefused("etcd-ts", url);
    } catch (err) {
      throw new Error(`${err}\n${serverLog.join("")}\n${c?.logs() ?? ""}`);
    } finally {
      await c?.destroy();
      server.kill("SIGKILL");
      await server.status;
      await drained;
      await store.destroy();
    }
  },
});

Deno.test({
  name: "[etcd-ts] etcd discovery errors: no size key, and an unreachable service retried then reported",
  ignore: !HAVE_ETCDCTL,
  async fn() {
    const service = await Member.start({ impl: "etcd-ts", args: ["--enable-v2"] });
    try {
      const dir = await Deno.makeTempDir({ prefix: "etcd-ts-nosize-" });
      const r = await runServer("etcd-ts", [
        "--name",
        "infra0",
        "--data-dir",
        dir,
        "--listen-peer-urls",
        `http://127.0.1.95:${freePort("127.0.1.95")}`,
        "--initial-advertise-peer-urls",
        "http://127.0.1.95:2380",
        "--listen-client-urls",
        `http://127.0.1.95:${freePort("127.0.1.95")}`,
        "--advertise-client-urls",
        "http://127.0.1.95:2379",
        "--discovery",
        `http://${service.endpoint}/v2/keys/_etcd/registry/${newToken()}`,
      ]);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      assert(r.code !== 0, r.stderr);
      assert(r.stderr.includes("discovery: size key not found"), r.stderr);
    } finally {
      await service.destroy();
    }
    const dir = await Deno.makeTempDir({ prefix: "etcd-ts-unreachable-" });
    const unreachable = new ClusterMember("etcd-ts", "infra0", "127.0.1.96", "127.0.1.96:2379", "", "", dir, [
      "--name",
      "infra0",
      "--listen-peer-urls",
      `http://127.0.1.96:${freePort("127.0.1.96")}`,
      "--initial-advertise-peer-urls",
      "http://127.0.1.96:2380",
      "--listen-client-urls",
      `http://127.0.1.96:${freePort("127.0.1.96")}`,
      "--advertise-client-urls",
      "http://127.0.1.96:2379",
      "--discovery",
      `http://127.0.0.1:${freePort()}/v2/keys/_etcd/registry/${newToken()}`,
    ], { ETCD_DATA_DIR: dir });
    try {
      unreachable.spawn();
      const line = await unreachable.waitForLog(/retry connecting to discovery service/, 0, 15_000);
      assert(line !== undefined, unreachable.logSince());
      assert(line.includes('"backoff":"2s"'), line);
      assert(unreachable.running, "the member must keep retrying for a while");
    } finally {
      await unreachable.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

for (const store of implementations()) {
  Deno.test({
    name:
      `[etcd-ts members, ${store} as v3 discovery service] three members form one cluster; a fourth is refused`,
    ignore: !HAVE_ETCDCTL,
    async fn() {
      const service = await Member.start({ impl: store });
      let c: Cluster | undefined;
      const token = newToken();
      try {
        await ctlOk(service.endpoint, ["put", `/_etcd/registry/${token}/_config/size`, "3"]);
        const bootstrap = ["--discovery-token", token, "--discovery-endpoints", `http://${service.endpoint}`];
        c = await Cluster.create({
          impl: "etcd-ts",
          hosts: ["127.0.1.91", "127.0.1.92", "127.0.1.93"],
          bootstrap,
        });
        await startAll(c);
        await assertOneCluster(c);
        const registered = await ctlOk(service.endpoint, [
          "get",
          `/_etcd/registry/${token}/members/`,
          "--prefix",
          "--print-value-only",
        ]);
        assertEquals(registered.trim().split("\n").sort(), c.members.map((m) => `${m.name}=${m.peerUrl}`));
        await assertLateMemberRefused("etcd-ts", bootstrap);
      } catch (err) {
        throw new Error(`${err}\n${c?.logs() ?? ""}`);
      } finally {
        await c?.destroy();
        await service.destroy();
      }
    },
  });
}
