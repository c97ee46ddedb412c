/**
 * The health and version endpoints end to end, with curl against real processes: etcd-ts and the real
 * etcd 3.4.23 answer `/health` and `/version` alike on the client port (HTTP/1.1) and `/health` on a
 * `--listen-metrics-urls` port; `/livez` and `/readyz` are etcd 3.5's, so only etcd-ts is asked for them
 * (etcd 3.4.23 answers 404, which is checked too).
 *
 * Covered: a healthy member (with the v2 API behind the same port), a member whose cluster lost quorum,
 * the NOSPACE alarm and `?exclude=NOSPACE`, and HTTP/2 with prior knowledge on the client port (which
 * etcd 3.4.23 refuses for non-gRPC requests: a difference, checked as such).
 *
 * Loopback addresses 127.0.1.50-59 are this file's.
 */
import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  ctlOk,
  etcdctl,
  freePort,
  HAVE_ETCDCTL,
  type Impl,
  implementations,
  Member,
  waitUntil,
} from "./helpers.ts";
import { Cluster } from "./cluster.ts";
import { CLUSTER_VERSION, ETCD_VERSION } from "../mod.ts";

const HOSTS: Record<Impl, { single: string; cluster: string[] }> = {
  "etcd-ts": { single: "127.0.1.50", cluster: ["127.0.1.51", "127.0.1.52", "127.0.1.53"] },
  etcd: { single: "127.0.1.55", cluster: ["127.0.1.56", "127.0.1.57", "127.0.1.58"] },
};

const HEALTHY = '{"health":"true"}';
const UNHEALTHY = '{"health":"false"}\n';
const TEXT = "text/plain; charset=utf-8";
const NOT_FOUND = "404 page not found\n";
const QUOTA = 2 * 1024 * 1024;
/** 100 KB values: about twenty fill the quota. */
const VALUE = "x".repeat(100_000);

interface CurlAnswer {
  /** curl's exit code (0 when an HTTP answer came). */
  code: number;
  /** "HTTP/1.1 200 OK" or "HTTP/2 200". */
  statusLine: string;
  status: number;
  /** Header names in lower case. */
  headers: Map<string, string>;
  body: string;
  stderr: string;
}

/** One request with curl (bounded by `--max-time`). */
async function curl(
  url: string,
  o: { method?: string; http2?: boolean; data?: string; maxTimeS?: number } = {},
): Promise<CurlAnswer> {
  const args = ["-s", "-S", "-i", "--max-time", String(o.maxTimeS ?? 10)];
  if (o.method !== undefined) args.push("-X", o.method);
  if (o.http2) args.push("--http2-prior-knowledge");
  if (o.data !== undefined) args.push("--data", o.data);
  args.push(url);
  const child = new Deno.Command("curl", { args, stdin: "null", stdout: "piped", stderr: "piped" }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), ((o.maxTimeS ?? 10) + 5) * 1000);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  const text = dec.decode(out.stdout);
  const stderr = dec.decode(out.stderr);
  const split = text.indexOf("\r\n\r\n");
  const head = split < 0 ? [] : text.slice(0, split).split("\r\n");
  const headers = new Map<string, string>();
  for (const line of head.slice(1)) {
    const colon = line.indexOf(":");
    headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return {
    code: out.code,
    statusLine: head[0] ?? "",
    status: Number((head[0] ?? "").split(" ")[1] ?? 0),
    headers,
    body: split < 0 ? "" : text.slice(split + 4),
    stderr,
  };
}

/** `[status, content type, body]` of an answer, for one-line comparisons. */
function summary(a: CurlAnswer): [number, string | undefined, string] {
  return [a.status, a.headers.get("content-type"), a.body];
}

/** What `/version` answers on each implementation. */
function expectedVersion(impl: Impl): RegExp {
  return impl === "etcd-ts"
    ? new RegExp(`^\\{"etcdserver":"${ETCD_VERSION}","etcdcluster":"${CLUSTER_VERSION}"\\}$`)
    : /^\{"etcdserver":"3\.4\.\d+","etcdcluster":"3\.4\.0"\}$/;
}

/** Puts big values until one is refused (the NOSPACE alarm is raised then). */
async function fillUntilRefused(endpoint: string): Promise<string> {
  for (let i = 0; i < 60; i++) {
    const r = await etcdctl(endpoint, ["put", `fill/${i}`, VALUE]);
    if (r.code !== 0) return r.stderr;
  }
  throw new Error(`60 puts of ${VALUE.length} bytes fitted in a quota of ${QUOTA} bytes`);
}

for (const impl of implementations()) {
  Deno.test({
    name:
      `[${impl}] health: a healthy member answers /health, /version and 404 on the client and metrics URLs`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      const host = HOSTS[impl].single;
      const metrics = `http://${host}:${freePort(host)}`;
      const m = await Member.start({ impl, host, args: ["--listen-metrics-urls", metrics, "--enable-v2"] });
      const client = `http://${m.endpoint}`;
      try {
        const h = await curl(`${client}/health`);
        assertEquals([h.statusLine, ...summary(h)], ["HTTP/1.1 200 OK", 200, TEXT, HEALTHY]);
        assertEquals(h.headers.get("access-control-allow-origin"), "*");
        assertEquals(summary(await curl(`${client}/health?serializable=true`)), [200, TEXT, HEALTHY]);
        assertEquals(summary(await curl(`${client}/health?exclude=NOSPACE`)), [200, TEXT, HEALTHY]);

        // both servers report the cluster version as undecided until the leader has set it
        let v = await curl(`${client}/version`);
        await waitUntil(
          async () => !(v = await curl(`${client}/version`)).body.includes("not_decided"),
          10_000,
          () => v.body,
        );
        assertEquals([v.status, v.headers.get("content-type")], [200, "application/json"]);
        assertMatch(v.body, expectedVersion(impl));

        const post = await curl(`${client}/health`, { method: "POST" });
        assertEquals([...summary(post), post.headers.get("allow")], [
          405,
          TEXT,
          "Method Not Allowed\n",
          "GET",
        ]);
        const nope = await curl(`${client}/nope`);
        assertEquals([...summary(nope), nope.headers.get("x-content-type-options")], [
          404,
          TEXT,
          NOT_FOUND,
          "nosniff",
        ]);

        // the v2 API is still served behind the health endpoints
        const put = await curl(`${client}/v2/keys/health-e2e`, { method: "PUT", data: "value=1" });
        assertEquals([put.status, put.headers.get("content-type")], [201, "application/json"]);
        const got = await curl(`${client}/v2/keys/health-e2e`);
        assertEquals((JSON.parse(got.body) as { node: { value: string } }).node.value, "1");

        // the metrics URL: /health (no CORS there), but neither /version nor anything else
        const mh = await curl(`${metrics}/health`);
        assertEquals(summary(mh), [200, TEXT, HEALTHY]);
        assertEquals(mh.headers.get("access-control-allow-origin"), undefined);
        assertEquals(summary(await curl(`${metrics}/version`)), [404, TEXT, NOT_FOUND]);
        assertEquals(summary(await curl(`${metrics}/nope`)), [404, TEXT, NOT_FOUND]);
        assertEquals((await curl(`${metrics}/health`, { method: "PUT" })).status, 405);

        if (impl === "etcd-ts") {
          for (const base of [client, metrics]) {
            assertEquals(summary(await curl(`${base}/livez`)), [200, TEXT, "ok\n"]);
            assertEquals(summary(await curl(`${base}/readyz?verbose`)), [
              200,
              TEXT,
              "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\nok\n",
            ]);
          }
          // HTTP/2 with prior knowledge on the client port, beside gRPC
          const h2 = await curl(`${client}/health`, { http2: true });
          assertEquals([h2.code, h2.statusLine.trim(), h2.body], [0, "HTTP/2 200", HEALTHY]);
          const v2 = await curl(`${client}/version`, { http2: true });
          assertMatch(v2.body, expectedVersion(impl));
          assertEquals((await curl(`${client}/livez`, { http2: true })).body, "ok\n");
        } else {
          // etcd 3.4.23 has no /livez or /readyz, and resets non-gRPC HTTP/2 streams
          assertEquals(summary(await curl(`${client}/livez`)), [404, TEXT, NOT_FOUND]);
          assertEquals(summary(await curl(`${metrics}/readyz`)), [404, TEXT, NOT_FOUND]);
          const h2 = await curl(`${client}/health`, { http2: true });
          assert(h2.code !== 0 && h2.body === "", `etcd answered HTTP/2: ${JSON.stringify(h2)}`);
        }
        // gRPC still works on the same port
        assertEquals(await ctlOk(m.endpoint, ["get", "--print-value-only", "missing"]), "");
      } finally {
        await m.destroy();
      }
    },
  });

  Deno.test({
    name: `[${impl}] health: the survivor of a 3-member cluster that lost quorum answers 503`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      const c = await Cluster.start({ impl, hosts: HOSTS[impl].cluster });
      const url = `http://${c.members[0].endpoint}`;
      try {
        assertEquals(summary(await curl(`${url}/health`)), [200, TEXT, HEALTHY]);
        await c.members[1].kill();
        await c.members[2].kill();
        let last: CurlAnswer | undefined;
        await waitUntil(
          async () => (last = await curl(`${url}/health`, { maxTimeS: 5 })).status === 503,
          20_000,
          () => `still ${JSON.stringify(last)}`,
          200,
        );
        assertEquals(summary(last!), [503, TEXT, UNHEALTHY]);
        // it stays unhealthy: no leader comes back without a quorum
        assertEquals(summary(await curl(`${url}/health`)), [503, TEXT, UNHEALTHY]);
        const local = await curl(`${url}/health?serializable=true`);
        if (impl === "etcd-ts") {
          // etcd 3.5's serializable check: the local state still answers
          assertEquals(summary(local), [200, TEXT, HEALTHY]);
          // /livez: the process still serves; /readyz: the linearizable read fails at the request timeout
          assertEquals(summary(await curl(`${url}/livez`)), [200, TEXT, "ok\n"]);
          const ready = await curl(`${url}/readyz`, { maxTimeS: 20 });
          assertEquals(summary(ready), [
            503,
            TEXT,
            "[+]data_corruption ok\n[+]serializable_read ok\n" +
            "[-]linearizable_read failed: etcdserver: request timed out\n[+]non_learner ok\n\n",
          ]);
        } else {
          // etcd 3.4.23 ignores ?serializable
          assertEquals(summary(local), [503, TEXT, UNHEALTHY]);
        }
      } finally {
        await c.destroy();
      }
    },
  });

  Deno.test({
    name: `[${impl}] health: the NOSPACE alarm makes /health 503; ?exclude=NOSPACE ignores it`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      const host = HOSTS[impl].single;
      const metrics = `http://${host}:${freePort(host)}`;
      const m = await Member.start({
        impl,
        host,
        args: ["--quota-backend-bytes", String(QUOTA), "--listen-metrics-urls", metrics],
      });
      const client = `http://${m.endpoint}`;
      try {
        assertEquals(summary(await curl(`${client}/health`)), [200, TEXT, HEALTHY]);
        assert((await fillUntilRefused(m.endpoint)).includes("database space exceeded"));
        await waitUntil(
          async () => (await ctlOk(m.endpoint, ["alarm", "list"])).includes("alarm:NOSPACE"),
          10_000,
          () => "no NOSPACE alarm",
          100,
        );
        for (const base of [client, metrics]) {
          assertEquals(summary(await curl(`${base}/health`)), [503, TEXT, UNHEALTHY], base);
          assertEquals(summary(await curl(`${base}/health?exclude=NOSPACE`)), [200, TEXT, HEALTHY], base);
          assertEquals(summary(await curl(`${base}/health?exclude=CORRUPT`)), [503, TEXT, UNHEALTHY], base);
        }
        if (impl === "etcd-ts") {
          // etcd 3.5's /readyz checks only for CORRUPT; NOSPACE leaves the member ready and alive
          assertEquals(summary(await curl(`${client}/readyz`)), [200, TEXT, "ok\n"]);
          assertEquals(summary(await curl(`${client}/livez`)), [200, TEXT, "ok\n"]);
        }
        // disarmed, the member is healthy again
        await ctlOk(m.endpoint, ["alarm", "disarm"]);
        assertEquals(summary(await curl(`${client}/health`)), [200, TEXT, HEALTHY]);
      } finally {
        await m.destroy();
      }
    },
  });
}
