/**
 * The v2 keys API side by side: the same requests to etcd-ts and to the real etcd 3.4, both with
 * `--enable-v2`, must get the same status, headers and JSON. Index numbers differ between the two (etcd
 * also counts its own membership writes in the v2 index) and expiration times depend on when a request
 * ran, so both are replaced by placeholders before comparing; everything else must match exactly.
 */
import { assert, assertEquals } from "./assert.ts";
import { HAVE_ETCDCTL, type Impl, implementations, Member, sleep } from "./helpers.ts";
import { Cluster } from "./cluster.ts";

/** One request; `path` may use the answers so far (`ctx`), which differ per server. */
interface Step {
  name: string;
  method: string;
  path: string | ((ctx: Context) => string);
  /** A form body (`application/x-www-form-urlencoded`). */
  form?: string;
  /** An unsorted listing: etcd lists a directory in Go's random map order, so compare it sorted. */
  unordered?: boolean;
}

interface Context {
  /** The `modifiedIndex` of the node in each earlier step's answer, by step name. */
  modified: Map<string, number>;
  /** Each earlier step's `X-Etcd-Index`. */
  etcdIndex: Map<string, number>;
}

interface Answer {
  status: number;
  contentType: string | null;
  hasEtcdIndex: boolean;
  body: unknown;
}

const STEPS: Step[] = [
  { name: "get missing", method: "GET", path: "/v2/keys/missing" },
  { name: "set a", method: "PUT", path: "/v2/keys/a", form: "value=1" },
  { name: "set a again", method: "PUT", path: "/v2/keys/a", form: "value=2" },
  { name: "get a", method: "GET", path: "/v2/keys/a" },
  { name: "quorum get a", method: "GET", path: "/v2/keys/a?quorum=true" },
  { name: "create existing", method: "PUT", path: "/v2/keys/a?prevExist=false", form: "value=3" },
  { name: "update missing", method: "PUT", path: "/v2/keys/nope?prevExist=true", form: "value=3" },
  { name: "update a", method: "PUT", path: "/v2/keys/a?prevExist=true", form: "value=3" },
  { name: "cas a ok", method: "PUT", path: "/v2/keys/a?prevValue=3", form: "value=4" },
  { name: "cas a wrong value", method: "PUT", path: "/v2/keys/a?prevValue=9", form: "value=5" },
  { name: "cas a wrong index", method: "PUT", path: "/v2/keys/a?prevIndex=1", form: "value=5" },
  {
    name: "cas a by index",
    method: "PUT",
    path: (c) => `/v2/keys/a?prevIndex=${c.modified.get("cas a ok")}`,
    form: "value=6",
  },
  { name: "write under a file", method: "PUT", path: "/v2/keys/a/b", form: "value=1" },
  { name: "set dir/x", method: "PUT", path: "/v2/keys/dir/x", form: "value=1" },
  { name: "set dir/sub/y", method: "PUT", path: "/v2/keys/dir/sub/y", form: "value=2" },
  { name: "set dir/_hidden", method: "PUT", path: "/v2/keys/dir/_hidden", form: "value=h" },
  { name: "get dir", method: "GET", path: "/v2/keys/dir", unordered: true },
  { name: "get dir recursive sorted", method: "GET", path: "/v2/keys/dir?recursive=true&sorted=true" },
  { name: "get hidden directly", method: "GET", path: "/v2/keys/dir/_hidden" },
  { name: "set a dir as a file", method: "PUT", path: "/v2/keys/dir", form: "value=1" },
  { name: "make empty dir", method: "PUT", path: "/v2/keys/empty?dir=true" },
  { name: "get empty dir", method: "GET", path: "/v2/keys/empty" },
  { name: "delete dir as a file", method: "DELETE", path: "/v2/keys/dir" },
  { name: "delete full dir", method: "DELETE", path: "/v2/keys/dir?dir=true" },
  { name: "delete empty dir", method: "DELETE", path: "/v2/keys/empty?dir=true" },
  { name: "delete dir recursively", method: "DELETE", path: "/v2/keys/dir?recursive=true" },
  { name: "delete missing", method: "DELETE", path: "/v2/keys/dir/x" },
  { name: "cad wrong value", method: "DELETE", path: "/v2/keys/a?prevValue=1" },
  { name: "cad ok", method: "DELETE", path: "/v2/keys/a?prevValue=6" },
  { name: "post in order", method: "POST", path: "/v2/keys/queue", form: "value=job1" },
  { name: "post in order again", method: "POST", path: "/v2/keys/queue", form: "value=job2" },
  { name: "get queue sorted", method: "GET", path: "/v2/keys/queue?sorted=true" },
  { name: "set with ttl", method: "PUT", path: "/v2/keys/t", form: "value=v&ttl=100" },
  { name: "get with ttl", method: "GET", path: "/v2/keys/t" },
  { name: "refresh ttl", method: "PUT", path: "/v2/keys/t?refresh=true&ttl=50" },
  { name: "refresh with a value", method: "PUT", path: "/v2/keys/t?refresh=true&ttl=50", form: "value=x" },
  { name: "refresh without ttl", method: "PUT", path: "/v2/keys/t?refresh=true" },
  { name: "remove ttl", method: "PUT", path: "/v2/keys/t?prevExist=true&ttl=", form: "value=v" },
  { name: "bad ttl", method: "PUT", path: "/v2/keys/t?ttl=abc", form: "value=v" },
  { name: "bad prevIndex", method: "PUT", path: "/v2/keys/t?prevIndex=x", form: "value=v" },
  { name: "bad bool", method: "GET", path: "/v2/keys/t?recursive=maybe" },
  { name: "bad waitIndex", method: "GET", path: "/v2/keys/t?wait=true&waitIndex=abc" },
  { name: "post without value", method: "POST", path: "/v2/keys/queue" },
  { name: "root is read only", method: "PUT", path: "/v2/keys/", form: "value=1" },
  { name: "delete root", method: "DELETE", path: "/v2/keys/?recursive=true" },
  { name: "form in the body wins", method: "PUT", path: "/v2/keys/f?value=query", form: "value=body" },
  { name: "set w", method: "PUT", path: "/v2/keys/w/1", form: "value=one" },
  {
    name: "wait from history",
    method: "GET",
    path: (c) => `/v2/keys/w?wait=true&recursive=true&waitIndex=${c.modified.get("set w")}`,
  },
  {
    name: "wait for the exact key from history",
    method: "GET",
    path: (c) => `/v2/keys/w/1?wait=true&waitIndex=${c.modified.get("set w")}`,
  },
  { name: "method not allowed", method: "PATCH", path: "/v2/keys/a" },
];

const IN_ORDER_KEY = /\/\d{20}$/;

/** The answer with indexes and times replaced, so the two servers' answers can be compared. */
function normalize(value: unknown, key = ""): unknown {
  if (Array.isArray(value)) return value.map((v) => normalize(v));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = normalize(v, k);
    return out;
  }
  if (/^(modifiedIndex|createdIndex|index)$/.test(key) && typeof value === "number") return "<index>";
  if (key === "expiration") return "<time>";
  if (key === "key" && typeof value === "string") return value.replace(IN_ORDER_KEY, "/<in-order>");
  if (key === "cause" && typeof value === "string") {
    // "[1 != 5]" in a failed compare names indexes; a cleared history names two
    return value.replace(
      /\[\d+ != (\d+)\]/g,
      (_m, right) => `[<index> != ${/^\d+$/.test(right) ? "<index>" : right}]`,
    );
  }
  return value;
}

/** Every `nodes` list sorted by key. */
function sortNodes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortNodes);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = k === "nodes" && Array.isArray(v)
      ? (v.map(sortNodes) as { key: string }[]).sort((a, b) => a.key.localeCompare(b.key))
      : sortNodes(v);
  }
  return out;
}

async function ask(endpoint: string, step: Step, ctx: Context): Promise<Answer> {
  const path = typeof step.path === "string" ? step.path : step.path(ctx);
  const res = await fetch(`http://${endpoint}${path}`, {
    method: step.method,
    headers: step.form === undefined ? {} : { "content-type": "application/x-www-form-urlencoded" },
    body: step.form,
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: compared as text
  }
  const node = (body as { node?: { modifiedIndex?: number } })?.node;
  if (node?.modifiedIndex !== undefined) ctx.modified.set(step.name, node.modifiedIndex);
  ctx.etcdIndex.set(step.name, Number(res.headers.get("x-etcd-index")));
  return {
    status: res.status,
    contentType: res.headers.get("content-type"),
    hasEtcdIndex: res.headers.has("x-etcd-index"),
    body: step.unordered ? sortNodes(normalize(body)) : normalize(body),
  };
}

Deno.test({
  name: "v2 keys API: etcd-ts answers the same JSON as the real etcd 3.4 --enable-v2",
  ignore: !HAVE_ETCDCTL || !implementations().includes("etcd"),
  async fn(t) {
    const servers: Partial<Record<Impl, Member>> = {};
    try {
      for (const impl of ["etcd-ts", "etcd"] as const) {
        servers[impl] = await Member.start({ impl, args: ["--enable-v2"] });
      }
      const ctx: Record<Impl, Context> = {
        "etcd-ts": { modified: new Map(), etcdIndex: new Map() },
        etcd: { modified: new Map(), etcdIndex: new Map() },
      };
      for (const step of STEPS) {
        await t.step(step.name, async () => {
          const ours = await ask(servers["etcd-ts"]!.endpoint, step, ctx["etcd-ts"]);
          const theirs = await ask(servers.etcd!.endpoint, step, ctx.etcd);
          assertEquals(ours, theirs);
        });
      }

      await t.step("a waiting GET is answered by the next write", async () => {
        const answers: Answer[] = [];
        for (const impl of ["etcd-ts", "etcd"] as const) {
          const endpoint = servers[impl]!.endpoint;
          const waiting = ask(
            endpoint,
            { name: "wait", method: "GET", path: "/v2/keys/later?wait=true" },
            ctx[impl],
          );
          let done = false;
          waiting.then(() => done = true, () => done = true);
          await sleep(200);
          assert(!done, `${impl}: the wait must block until a write`);
          await ask(endpoint, {
            name: "write later",
            method: "PUT",
            path: "/v2/keys/later",
            form: "value=now",
          }, ctx[impl]);
          answers.push(await waiting);
        }
        assertEquals(answers[0], answers[1]);
      });

      await t.step("v2 members and machines list the member", async () => {
        for (const impl of ["etcd-ts", "etcd"] as const) {
          const endpoint = servers[impl]!.endpoint;
          const members = await (await fetch(`http://${endpoint}/v2/members`)).json();
          assertEquals(members.members.length, 1);
          assertEquals(members.members[0].clientURLs, [`http://${endpoint}`]);
          assertEquals(members.members[0].name, "default");
          assertEquals(await (await fetch(`http://${endpoint}/v2/machines`)).text(), `http://${endpoint}`);
        }
      });
    } finally {
      for (const m of Object.values(servers)) await m.destroy();
    }
  },
});

Deno.test({
  name:
    "[etcd-ts] v2 keys survive a restart and are served by every member; without --enable-v2 they are 404",
  ignore: !HAVE_ETCDCTL,
  async fn() {
    let m = await Member.start({ impl: "etcd-ts", args: ["--enable-v2", "--snapshot-count", "5"] });
    try {
      for (let i = 0; i < 12; i++) {
        const res = await fetch(`http://${m.endpoint}/v2/keys/k${i}`, {
          method: "PUT",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: `value=v${i}`,
        });
        await res.body?.cancel();
        assert(res.status === 201, `put k${i}: ${res.status}`);
      }
      await m.stop("SIGKILL");
      m = await m.restart();
      const res = await fetch(`http://${m.endpoint}/v2/keys/?recursive=true&sorted=true`);
      const keys = (await res.json()).node.nodes.map((n: { key: string; value: string }) =>
        `${n.key}=${n.value}`
      );
      assertEquals(keys.length, 12);
      assertEquals(keys[0], "/k0=v0");
      assertEquals(keys[11], "/k9=v9");
    } finally {
      await m.destroy();
    }
    const plain = await Member.start({ impl: "etcd-ts" });
    try {
      const res = await fetch(`http://${plain.endpoint}/v2/keys/a`);
      assertEquals(res.status, 404);
      await res.body?.cancel();
    } finally {
      await plain.destroy();
    }
  },
});

Deno.test({
  name: "[etcd-ts] v2 keys on a three-member cluster: written on one member, read and watched on the others",
  ignore: !HAVE_ETCDCTL,
  async fn() {
    const c = await Cluster.start({
      impl: "etcd-ts",
      hosts: ["127.0.1.81", "127.0.1.82", "127.0.1.83"],
      extraArgs: ["--enable-v2"],
    });
    try {
      const [a, b, z] = c.members.map((m) => `http://${m.endpoint}`);
      const waiting = fetch(`${b}/v2/keys/shared?wait=true`, { signal: AbortSignal.timeout(10_000) });
      await sleep(200);
      const put = await fetch(`${a}/v2/keys/shared`, {
        method: "PUT",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "value=from-a",
      });
      assertEquals(put.status, 201);
      const written = await put.json();
      const seen = await (await waiting).json();
      assertEquals([seen.action, seen.node.value, seen.node.modifiedIndex], [
        "set",
        "from-a",
        written.node.modifiedIndex,
      ]);
      const read = await (await fetch(`${z}/v2/keys/shared?quorum=true`)).json();
      assertEquals([read.node.value, read.node.modifiedIndex], ["from-a", written.node.modifiedIndex]);
      // a TTL runs out on every member at once: the leader proposes its clock, every member expires the key
      const short = await fetch(`${a}/v2/keys/short`, {
        method: "PUT",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "value=soon&ttl=1",
      });
      const created = await short.json();
      const expiry = await fetch(`${b}/v2/keys/short?wait=true&waitIndex=${created.node.modifiedIndex + 1}`, {
        signal: AbortSignal.timeout(10_000),
      });
      const expired = await expiry.json();
      assertEquals([expired.action, expired.node.key, expired.prevNode.value], ["expire", "/short", "soon"]);
      for (const m of [a, b, z]) {
        const gone = await fetch(`${m}/v2/keys/short?quorum=true`);
        assertEquals((await gone.json()).errorCode, 100);
      }
      const members = await (await fetch(`${z}/v2/members`)).json();
      assertEquals(members.members.map((m: { name: string }) => m.name).sort(), [
        "infra0",
        "infra1",
        "infra2",
      ]);
    } catch (err) {
      throw new Error(`${err}\n${c.logs()}`);
    } finally {
      await c.destroy();
    }
  },
});
