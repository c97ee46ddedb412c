/**
 * etcd discovery end to end, as in etcd's clustering guide: members started with nothing but
 * `--discovery <url>` and their own URLs find each other through a discovery service and form one
 * cluster. The service is etcd-ts or the real etcd 3.4 with `--enable-v2` (the registry at
 * `/v2/keys/_etcd/registry/<token>`), or Debian's `discovery.etcd.io` server storing into etcd-ts.
 */
import { assert, assertEquals } from "./assert.ts";
import { Cluster, ClusterMember, idOf, parseCtlJson } from "./cluster.ts";
import { memberId } from "../discovery/ids.ts";
import { ctlOk, freePort, HAVE_ETCDCTL, type Impl, implementations, Member, sleep } from "./helpers.ts";

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

/**
 * A lone member that is not started: `name` on `host`, bootstrapping with `discovery` (the flags after its
 * own URLs), its data directory new.
 */
async function loneMember(
  impl: Impl,
  name: string,
  host: string,
  discovery: string[],
): Promise<ClusterMember> {
  const dir = await Deno.makeTempDir({ prefix: "etcd-ts-lone-" });
  const peer = `http://${host}:${freePort(host)}`;
  const client = `http://${host}:${freePort(host)}`;
  return new ClusterMember(impl, name, host, client.slice(7), client, peer, dir, [
    "--name",
    name,
    "--initial-advertise-peer-urls",
    peer,
    "--listen-peer-urls",
    peer,
    "--listen-client-urls",
    client,
    "--advertise-client-urls",
    client,
    ...discovery,
  ], { ETCD_DATA_DIR: dir });
}

/** Kills a lone member and removes its data directory. */
async function removeLone(m: ClusterMember): Promise<void> {
  await m.kill();
  await Deno.remove(m.dataDir, { recursive: true }).catch(() => {});
}

/** Each member's ID is derived from its peer URL and `token`, as etcd derives it. */
async function assertIdsFrom(c: Cluster, token: string): Promise<void> {
  const ids = (await memberList(c.members[0])).map((l) => l.split(":")[1]).sort();
  assertEquals(ids, c.members.map((m) => memberId([m.peerUrl], token).toString(16)).sort());
}

/** A fourth member with the same discovery settings (a URL, or v3 flags) exits: the cluster is full. */
async function assertLateMemberRefused(impl: Impl, discovery: string | string[]): Promise<void> {
  const late = await loneMember(impl, "infra3", "127.0.1.94", [
    ...(typeof discovery === "string" ? ["--discovery", discovery] : discovery),
    ...(impl === "etcd" ? ["--discovery-fallback", "exit"] : []),
  ]);
  try {
    late.spawn();
    const deadline = Date.now() + 20_000;
    while (late.running && Date.now() < deadline) await sleep(100);
    assert(!late.running, `the late member is still running:\n${late.logSince()}`);
    assert(late.logSince().includes("discovery: cluster is full"), late.logSince());
  } finally {
    await removeLone(late);
  }
}

/** The three members of the guide on 127.0.1.9x, bootstrapping with the flags `bootstrap`. */
function discoveryCluster(impl: Impl, bootstrap: string[]): Promise<Cluster> {
  return Cluster.create({ impl, hosts: ["127.0.1.91", "127.0.1.92", "127.0.1.93"], bootstrap });
}

async function startAll(c: Cluster): Promise<void> {
  for (const m of c.members) m.spawn();
  await Promise.all(c.members.map((m) => m.waitReady(30_000)));
}

/**
 * Runs `body` with a discovery service (a member of `impl` started with `args`); the cluster `body`
 * hands to `keep` is destroyed afterwards, and its logs are added to a failure.
 */
async function withService(
  impl: Impl,
  args: string[],
  body: (service: Member, keep: (c: Cluster) => Cluster) => Promise<void>,
): Promise<void> {
  const service = await Member.start({ impl, args });
  let cluster: Cluster | undefined;
  try {
    await body(service, (c) => cluster = c);
  } catch (err) {
    throw new Error(`${err}\n${cluster?.logs() ?? ""}`);
  } finally {
    await cluster?.destroy();
    await service.destroy();
  }
}

for (const store of implementations()) {
  Deno.test({
    name:
      `[etcd-ts members, ${store} --enable-v2 as discovery service] three members form one cluster; a fourth is refused`,
    ignore: !HAVE_ETCDCTL,
    fn: () =>
      withService(store, ["--enable-v2"], async (service, keep) => {
        const url = await registryUrl(service.endpoint, 3);
        const c = keep(await discoveryCluster("etcd-ts", ["--discovery", url]));
        await startAll(c);
        await assertOneCluster(c);
        await assertIdsFrom(c, url);
        await assertLateMemberRefused("etcd-ts", url);
      }),
  });
}

Deno.test({
  name: "[etcd-ts] a member killed while it waits for the others registers again on restart and joins",
  ignore: !HAVE_ETCDCTL,
  fn: () =>
    withService("etcd-ts", ["--enable-v2"], async (service, keep) => {
      const url = await registryUrl(service.endpoint, 3);
      const c = keep(await discoveryCluster("etcd-ts", ["--discovery", url]));
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
    }),
});

Deno.test({
  name: "[etcd members, etcd-ts --enable-v2 as discovery service] the real etcd bootstraps through etcd-ts",
  ignore: !HAVE_ETCDCTL || !implementations().includes("etcd"),
  fn: () =>
    withService("etcd-ts", ["--enable-v2"], async (service, keep) => {
      const url = await registryUrl(service.endpoint, 3);
      const c = keep(await discoveryCluster("etcd", ["--discovery", url]));
      await startAll(c);
      await assertOneCluster(c);
      // the real etcd derives the IDs with the discovery URL as the cluster token
      await assertIdsFrom(c, url);
      await assertLateMemberRefused("etcd", url);
    }),
});

/** Asks Debian's discovery.etcd.io server at `port` for a new token of size 3; returns its URL. */
async function newTokenUrl(port: number, serverLog: string[]): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/new?size=3`);
      const text = (await res.text()).trim();
      if (!res.ok) throw new Error(`/new: ${res.status} ${text}`);
      assert(text.startsWith(`http://127.0.0.1:${port}/`), `token URL: ${text}\n${serverLog.join("")}`);
      return text;
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      await sleep(100); // not listening yet
    }
  }
  throw new Error(`discovery.etcd.io did not answer /new:\n${serverLog.join("")}`);
}

Deno.test({
  name: "[etcd-ts] Debian's discovery.etcd.io server storing into etcd-ts: three members, a fourth refused",
  ignore: !HAVE_ETCDCTL || !HAVE_DISCOVERY_SERVER,
  fn: () =>
    withService("etcd-ts", ["--enable-v2"], async (store, keep) => {
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
      try {
        const url = await newTokenUrl(port, serverLog);
        // the token is stored in etcd-ts as the v2 registry the members use
        const size = await fetch(
          `http://${store.endpoint}/v2/keys/_etcd/registry/${url.split("/").pop()}/_config/size`,
        );
        assertEquals((await size.json()).node.value, "3");
        const c = keep(await discoveryCluster("etcd-ts", ["--discovery", url]));
        await startAll(c);
        await assertOneCluster(c);
        await assertLateMemberRefused("etcd-ts", url);
      } catch (err) {
        throw new Error(`${err}\n${serverLog.join("")}`);
      } finally {
        server.kill("SIGKILL");
        await server.status;
        await drained;
      }
    }),
});

Deno.test({
  name: "[etcd-ts] etcd discovery errors: no size key, and an unreachable service retried then reported",
  ignore: !HAVE_ETCDCTL,
  async fn() {
    await withService("etcd-ts", ["--enable-v2"], async (service) => {
      const nosize = await loneMember("etcd-ts", "infra0", "127.0.1.95", [
        "--discovery",
        `http://${service.endpoint}/v2/keys/_etcd/registry/${newToken()}`,
      ]);
      try {
        nosize.spawn();
        const deadline = Date.now() + 20_000;
        while (nosize.running && Date.now() < deadline) await sleep(100);
        assert(!nosize.running, nosize.logSince());
        assert(nosize.logSince().includes("discovery: size key not found"), nosize.logSince());
      } finally {
        await removeLone(nosize);
      }
    });
    const unreachable = await loneMember("etcd-ts", "infra0", "127.0.1.96", [
      "--discovery",
      `http://127.0.0.1:${freePort()}/v2/keys/_etcd/registry/${newToken()}`,
    ]);
    try {
      unreachable.spawn();
      const line = await unreachable.waitForLog(/retry connecting to discovery service/, 0, 15_000);
      assert(line !== undefined, unreachable.logSince());
      assert(line.includes('"backoff":"2s"'), line);
      assert(unreachable.running, "the member must keep retrying for a while");
    } finally {
      await removeLone(unreachable);
    }
  },
});

for (const store of implementations()) {
  Deno.test({
    name:
      `[etcd-ts members, ${store} as v3 discovery service] three members form one cluster; a fourth is refused`,
    ignore: !HAVE_ETCDCTL,
    fn: () =>
      withService(store, [], async (service, keep) => {
        const token = newToken();
        await ctlOk(service.endpoint, ["put", `/_etcd/registry/${token}/_config/size`, "3"]);
        const bootstrap = ["--discovery-token", token, "--discovery-endpoints", `http://${service.endpoint}`];
        const c = keep(await discoveryCluster("etcd-ts", bootstrap));
        await startAll(c);
        await assertOneCluster(c);
        await assertIdsFrom(c, token);
        const registered = await ctlOk(service.endpoint, [
          "get",
          `/_etcd/registry/${token}/members/`,
          "--prefix",
          "--print-value-only",
        ]);
        assertEquals(registered.trim().split("\n").sort(), c.members.map((m) => `${m.name}=${m.peerUrl}`));
        await assertLateMemberRefused("etcd-ts", bootstrap);
      }),
  });
}
