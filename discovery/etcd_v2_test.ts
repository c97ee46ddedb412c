/**
 * The etcd discovery client against a real v2 key store: etcd-ts and the real etcd 3.4, both with
 * `--enable-v2`, serving the registry directly at `/v2/keys/_etcd/registry/<token>`.
 */
import { assert, assertEquals, assertRejects } from "../tests/assert.ts";
import { implementations, Member } from "../tests/helpers.ts";
import { createLogger } from "../server/logger.ts";
import { joinClusterV2 } from "./etcd_v2.ts";
import { DiscoveryError } from "./errors.ts";
import { memberId } from "./ids.ts";

const lines: string[] = [];
const logger = createLogger({ level: "info", write: (l) => lines.push(l) });

/** What a member of the guide's example registers. */
function selfOf(name: string, peer: string, token: string): { id: bigint; config: string } {
  return { id: memberId([peer], token), config: `${name}=${peer}` };
}

async function putSize(endpoint: string, token: string, size: string): Promise<void> {
  const res = await fetch(`http://${endpoint}/v2/keys/_etcd/registry/${token}/_config/size`, {
    method: "PUT",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: `value=${size}`,
  });
  assert(res.ok, `size: ${res.status} ${await res.text()}`);
}

for (const impl of implementations()) {
  Deno.test(`[${impl}] etcd discovery: three members register, wait for each other and agree`, async (t) => {
    const store = await Member.start({ impl, args: ["--enable-v2"] });
    try {
      const token = crypto.randomUUID().replaceAll("-", "");
      const url = `http://${store.endpoint}/v2/keys/_etcd/registry/${token}`;
      await putSize(store.endpoint, token, "3");
      const peers = ["http://127.0.1.1:2380", "http://127.0.1.2:2380", "http://127.0.1.3:2380"];
      const selves = peers.map((p, i) => selfOf(`infra${i}`, p, url));

      await t.step("the first two wait for the third; all three get the same cluster", async () => {
        const first = joinClusterV2(url, "", selves[0], { logger });
        const second = joinClusterV2(url, "", selves[1], { logger });
        let settled = false;
        Promise.allSettled([first, second]).then(() => settled = true);
        await new Promise((r) => setTimeout(r, 300));
        assert(!settled, "two of three members must still be waiting");
        const third = await joinClusterV2(url, "", selves[2], { logger });
        const all = [await first, await second, third];
        for (const c of all) assertEquals(c, all[0]);
        assertEquals(all[0].split(",").sort(), peers.map((p, i) => `infra${i}=${p}`));
      });

      await t.step("a fourth member is refused: the cluster is full", async () => {
        const err = await assertRejects(
          () => joinClusterV2(url, "", selfOf("infra3", "http://127.0.1.4:2380", url), { logger }),
          DiscoveryError,
        );
        assertEquals(err.message, "discovery: cluster is full");
      });

      await t.step("a member that registered before goes on with the same cluster", async () => {
        const again = await joinClusterV2(url, "", selves[1], { logger });
        assertEquals(again.split(",").length, 3);
      });

      await t.step("the same ID with other URLs is a duplicate", async () => {
        const other = { id: selves[0].id, config: "infra0=http://127.0.9.9:2380" };
        const err = await assertRejects(() => joinClusterV2(url, "", other, { logger }), DiscoveryError);
        assertEquals(err.message, "discovery: found duplicate id");
      });

      await t.step("a token without a size, and a bad size", async () => {
        const missing = `http://${store.endpoint}/v2/keys/_etcd/registry/nosize`;
        let err = await assertRejects(
          () => joinClusterV2(missing, "", selfOf("a", peers[0], missing), { logger }),
          DiscoveryError,
        );
        assertEquals(err.message, "discovery: size key not found");
        await putSize(store.endpoint, "badsize", "three");
        const bad = `http://${store.endpoint}/v2/keys/_etcd/registry/badsize`;
        err = await assertRejects(
          () => joinClusterV2(bad, "", selfOf("a", peers[0], bad), { logger }),
          DiscoveryError,
        );
        assertEquals(err.message, "discovery: size key is bad");
      });

      await t.step("a size of one needs no waiting", async () => {
        await putSize(store.endpoint, "single", "1");
        const single = `http://${store.endpoint}/v2/keys/_etcd/registry/single`;
        const cluster = await joinClusterV2(single, "", selfOf("solo", peers[0], single), { logger });
        assertEquals(cluster, `solo=${peers[0]}`);
      });
    } finally {
      await store.destroy();
    }
  });
}

Deno.test("etcd discovery: an unreachable service is retried with back-off, then reported", async () => {
  const waits: number[] = [];
  let calls = 0;
  const err = await assertRejects(
    () =>
      joinClusterV2(
        "http://127.0.0.1:9/v2/keys/_etcd/registry/x",
        "",
        { id: 1n, config: "a=http://a:2380" },
        {
          logger,
          fetch: () => {
            calls++;
            return Promise.reject(new TypeError("connection refused"));
          },
          sleep: (ms) => {
            waits.push(ms);
            return Promise.resolve();
          },
          maxRetries: 4,
        },
      ),
    DiscoveryError,
  );
  assertEquals(waits, [2000, 4000, 8000, 16000]);
  assertEquals(calls, 5);
  assertEquals(err.message.startsWith("discovery: too many retries"), true);
  assert(err.message.includes("http://127.0.0.1:9"), err.message);
});

Deno.test("etcd discovery: a service that answers something other than JSON is a bad endpoint", async () => {
  const err = await assertRejects(
    () =>
      joinClusterV2("http://example.invalid/abc", "", { id: 1n, config: "a=http://a:2380" }, {
        logger,
        fetch: () => Promise.resolve(new Response("<html>hello</html>", { status: 200 })),
      }),
    DiscoveryError,
  );
  assertEquals(err.message, "discovery: bad discovery endpoint");
});

Deno.test({
  name: "[etcd-ts] etcd discovery: --discovery-proxy sends every request through the HTTP proxy",
  ignore: !implementations().includes("etcd-ts"),
  async fn() {
    const store = await Member.start({ impl: "etcd-ts", args: ["--enable-v2"] });
    // a forward proxy: requests arrive in absolute form and are passed on as they are
    const seen: string[] = [];
    const proxy = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
      seen.push(`${req.method} ${req.url}`);
      const res = await fetch(req.url, {
        method: req.method,
        headers: req.headers,
        body: req.body === null ? undefined : await req.arrayBuffer(),
      });
      return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
    });
    try {
      const token = crypto.randomUUID().replaceAll("-", "");
      await putSize(store.endpoint, token, "1");
      const url = `http://${store.endpoint}/v2/keys/_etcd/registry/${token}`;
      const cluster = await joinClusterV2(
        url,
        `127.0.0.1:${proxy.addr.port}`,
        selfOf("p", "http://127.0.1.5:2380", url),
        {
          logger,
        },
      );
      assertEquals(cluster, "p=http://127.0.1.5:2380");
      assert(seen.some((r) => r.startsWith(`PUT ${url}/`)), seen.join("\n"));
      assert(seen.some((r) => r.startsWith(`GET ${url}/_config/size`)), seen.join("\n"));
      assert(lines.some((l) => l.includes("running proxy with discovery")));
    } finally {
      await proxy.shutdown();
      await store.destroy();
    }
  },
});
