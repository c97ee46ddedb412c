/**
 * The JSON gateway, differentially: the same HTTP requests (as curl or a script would send them) go to the
 * real etcd 3.4.23 and to etcd-ts, one member each, and the answers are compared field by field: status,
 * content type, and the JSON with what must differ between two clusters normalised (cluster and member
 * IDs, raft terms and indexes, tokens, hashes, sizes, versions, ports).
 *
 * Needs the real etcd (and curl for the HTTP/2 part); without them the tests are skipped and say so.
 */
import { assert, assertEquals } from "./assert.ts";
import { freePorts, type Impl, Member } from "./helpers.ts";

const HAVE_ETCD = (() => {
  try {
    return Deno.statSync("/usr/bin/etcd").isFile || false;
  } catch {
    return false;
  }
})();
const HAVE_CURL = (() => {
  try {
    return Deno.statSync("/usr/bin/curl").isFile;
  } catch {
    return false;
  }
})();

const HOSTS: Record<Impl, string> = { "etcd-ts": "127.0.2.20", etcd: "127.0.2.21" };

/** One answer, reduced to what is compared. */
interface Answer {
  status: number;
  type: string | null;
  body: unknown;
}

const b64 = (s: string) => btoa(s);

async function call(
  m: Member,
  path: string,
  body: unknown = {},
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const res = await fetch(`http://${m.endpoint}${path}`, {
    method: init.method ?? "POST",
    headers: init.headers,
    body: init.method === "GET" || init.method === "OPTIONS"
      ? undefined
      : typeof body === "string"
      ? body
      : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // plain text stays text
  }
  return { status: res.status, type: res.headers.get("content-type"), body: normalise(parsed) };
}

/** A streaming call: the first `n` lines, then the client goes away. */
async function stream(
  m: Member,
  path: string,
  body: unknown,
  n: number,
  during?: () => Promise<void>,
): Promise<unknown[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 10_000);
  try {
    const res = await fetch(`http://${m.endpoint}${path}`, {
      method: "POST",
      body: JSON.stringify(body),
      signal: abort.signal,
    });
    const reader = res.body!.getReader();
    let buf = "";
    let acted = false;
    const lines = (): string[] => buf.split("\n").filter((l) => l.trim() !== "");
    while (lines().length < n) {
      if (!acted && during !== undefined && lines().length >= 1) {
        acted = true;
        await during();
      }
      const { value, done } = await reader.read();
      if (done) break;
      buf += new TextDecoder().decode(value);
    }
    abort.abort();
    await reader.cancel().catch(() => {});
    return lines().slice(0, n).map((l) => normalise(JSON.parse(l)));
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

const VARYING = new Set([
  "cluster_id",
  "member_id",
  "raft_term",
  "leader",
  "raftIndex",
  "raftTerm",
  "raftAppliedIndex",
  "dbSize",
  "dbSizeInUse",
  "version",
  "token",
  "hash",
]);

/** Replaces what differs between two independent clusters by placeholders. */
function normalise(v: unknown, key = ""): unknown {
  if (Array.isArray(v)) return v.map((x) => normalise(x, key));
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = normalise(x, k);
    return out;
  }
  if (typeof v === "string" && /URLs$/.test(key)) return v.replace(/\/\/[\d.]+:\d+/, "//HOST:PORT");
  if (typeof v === "string" && key === "ID" && v.length > 8) return "<member-id>";
  if (typeof v === "string" && key === "version" && v.includes(".")) return "<server-version>";
  if (key === "version" && typeof v === "string" && !v.includes(".")) return v; // a key's version
  if (VARYING.has(key)) return `<${key}>`;
  if (typeof v === "string" && key === "error" && /^\d+\.\d+\.\d+$/.test(v)) return v;
  return v;
}

async function startBoth(args: string[] = []): Promise<Record<Impl, Member>> {
  const [ts, etcd] = await Promise.all((["etcd-ts", "etcd"] as Impl[]).map((impl) => {
    const host = HOSTS[impl];
    const [clientPort, peerPort] = freePorts(host, 2);
    return Member.start({ impl, host, clientPort, peerPort, args });
  }));
  return { "etcd-ts": ts, etcd };
}

async function stopBoth(ms: Record<Impl, Member>): Promise<void> {
  await Promise.all(Object.values(ms).map((m) => m.destroy()));
}

/** Runs `step` against both members and asserts the answers are the same. */
async function same<T>(ms: Record<Impl, Member>, what: string, step: (m: Member) => Promise<T>): Promise<T> {
  const ours = await step(ms["etcd-ts"]);
  const theirs = await step(ms.etcd);
  assertEquals(ours, theirs, `${what}: etcd-ts answered differently from etcd`);
  return ours;
}

const ignoreNoEtcd = !HAVE_ETCD;
const suffix = HAVE_ETCD ? "" : " (skipped: the real etcd is not installed)";

Deno.test({
  name: `gateway e2e: KV, txn, compaction, errors and prefixes answer as etcd's${suffix}`,
  ignore: ignoreNoEtcd,
  fn: async () => {
    const ms = await startBoth();
    try {
      const kv = (p: string, body: unknown, init?: Parameters<typeof call>[3]) =>
        same(ms, `${p} ${JSON.stringify(body)}`, (m) => call(m, p, body, init));
      await kv("/v3/kv/put", { key: b64("foo"), value: b64("bar") });
      await kv("/v3/kv/put", { key: b64("foo"), value: b64("baz"), prev_kv: true });
      await kv("/v3/kv/put", { key: b64("fop"), value: b64("x") });
      const range = await kv("/v3/kv/range", { key: b64("foo") });
      assertEquals(range.status, 200);
      assertEquals((range.body as { kvs: { value: string }[] }).kvs[0].value, b64("baz"));
      await kv("/v3/kv/range", {
        key: b64("fo"),
        range_end: b64("fp"),
        sort_order: "DESCEND",
        sortTarget: "KEY",
      });
      await kv("/v3/kv/range", { key: b64("fo"), rangeEnd: b64("fp"), limit: "1", count_only: true });
      await kv("/v3/kv/range", { key: b64("fo"), range_end: b64("fp"), keys_only: true, revision: 2 });
      await kv("/v3beta/kv/range", { key: b64("foo") });
      await kv("/v3/kv/txn", {
        compare: [{ key: b64("foo"), target: "VALUE", value: b64("baz") }],
        success: [
          { request_put: { key: b64("foo"), value: b64("qux") } },
          { requestRange: { key: b64("foo") } },
          { request_delete_range: { key: b64("nothing") } },
        ],
      });
      await kv("/v3/kv/txn", {
        compare: [{ key: b64("foo"), target: "VERSION", result: "EQUAL", version: "0" }],
        failure: [{ request_range: { key: b64("fop") } }],
      });
      await kv("/v3/kv/deleterange", { key: b64("fop"), prev_kv: true });
      await kv("/v3/kv/compaction", { revision: "3", physical: true });
      // gRPC errors: a compacted and a future revision
      await kv("/v3/kv/range", { key: b64("foo"), revision: 2 });
      await kv("/v3/kv/range", { key: b64("foo"), revision: "100" });
      await kv("/v3/kv/put", {});
      // bad JSON, as Go's decoder words it
      for (
        const body of ["x", "{", '{"key":1}', '{"key":"!!"}', '{"limit":1.5}', '{"sort_order":"BAD"}', "[]"]
      ) {
        await kv("/v3/kv/range", body);
      }
      // unknown routes and methods
      await kv("/v3/kv/nope", {});
      await kv("/v3/kv/range", {}, { method: "GET" });
      await kv("/v3alpha/kv/range", { key: b64("foo") });
      await kv("/v3/maintenance/hashkv", {});
    } finally {
      await stopBoth(ms);
    }
  },
});

Deno.test({
  name: `gateway e2e: watch streams events, lease calls, cluster and maintenance${suffix}`,
  ignore: ignoreNoEtcd,
  fn: async () => {
    const ms = await startBoth();
    try {
      const watched = await same(
        ms,
        "watch",
        (m) =>
          stream(m, "/v3/watch", { create_request: { key: b64("w"), prev_kv: true } }, 3, async () => {
            await call(m, "/v3/kv/put", { key: b64("w"), value: b64("1") });
            await call(m, "/v3/kv/deleterange", { key: b64("w") });
          }),
      );
      assertEquals(watched.length, 3, "created, then the put, then the delete");
      assertEquals(JSON.stringify(watched).includes('"type":"DELETE"'), true);
      await same(ms, "lease grant", (m) => call(m, "/v3/lease/grant", { ID: "4660", TTL: "60" }));
      await same(
        ms,
        "put with lease",
        (m) => call(m, "/v3/kv/put", { key: b64("l"), value: b64("v"), lease: "4660" }),
      );
      await same(ms, "keepalive", (m) => stream(m, "/v3/lease/keepalive", { ID: "4660" }, 1));
      for (const p of ["/v3/lease/timetolive", "/v3/kv/lease/timetolive"]) {
        await same(ms, p, async (m) => {
          const a = await call(m, p, { ID: "4660", keys: true });
          // the remaining TTL may be a second apart
          const body = a.body as Record<string, unknown>;
          assert(Number(body.TTL) >= 58, JSON.stringify(body));
          body.TTL = "<ttl>";
          return a;
        });
      }
      await same(ms, "leases", (m) => call(m, "/v3/lease/leases", {}));
      await same(ms, "revoke", (m) => call(m, "/v3/kv/lease/revoke", { ID: "4660" }));
      await same(ms, "revoke again", (m) => call(m, "/v3/lease/revoke", { ID: "4660" }));
      await same(ms, "member list", async (m) => {
        const a = await call(m, "/v3/cluster/member/list", {});
        // etcd 3.4 answers MemberList without a revision in its header
        delete (a.body as Record<string, Record<string, unknown>>).header.revision;
        return a;
      });
      await same(
        ms,
        "member promote of an unknown member",
        (m) => call(m, "/v3/cluster/member/promote", { ID: "1" }),
      );
      await same(ms, "status", (m) => call(m, "/v3/maintenance/status", {}));
      await same(ms, "alarm list", async (m) => {
        const a = await call(m, "/v3/maintenance/alarm", { action: "GET" });
        // etcd 3.4's Alarm answers without a header when no alarm is raised
        delete (a.body as Record<string, unknown>).header;
        return a;
      });
      await same(ms, "defragment", async (m) => {
        const a = await call(m, "/v3/maintenance/defragment", {});
        delete (a.body as Record<string, unknown>).header;
        return a;
      });
      await same(ms, "hash", (m) => call(m, "/v3/maintenance/hash", {}));
      await same(ms, "snapshot", async (m) => {
        // the database files differ (so do their sizes, hence how many lines carry remaining_bytes); the
        // stream's shape must not: result lines with base64 blobs, the last without remaining bytes
        const res = await fetch(`http://${m.endpoint}/v3/maintenance/snapshot`, {
          method: "POST",
          body: "{}",
        });
        const lines = (await res.text()).split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
        assert(lines.length > 0, "snapshot lines");
        const last = lines.at(-1).result;
        return {
          status: res.status,
          shapes: [
            ...new Set(
              lines.map((l) =>
                Object.keys(l.result).filter((k) => k !== "header" && k !== "remaining_bytes").sort().join(
                  ",",
                )
              ),
            ),
          ],
          blobs: lines.every((l) => typeof l.result.blob === "string" && atob(l.result.blob).length > 0),
          ends: last.remaining_bytes === undefined,
        };
      });
      await same(
        ms,
        "transfer leadership to a stranger",
        (m) => call(m, "/v3/maintenance/transfer-leadership", { targetID: "1" }),
      );
    } finally {
      await stopBoth(ms);
    }
  },
});

Deno.test({
  name: `gateway e2e: auth through the gateway, the token in Authorization${suffix}`,
  ignore: ignoreNoEtcd,
  fn: async () => {
    const ms = await startBoth();
    try {
      const c = (p: string, body: unknown, headers?: Record<string, string>) =>
        same(ms, p, (m) => call(m, p, body, { headers }));
      await c("/v3/auth/enable", {});
      await c("/v3/auth/user/add", { name: "root", password: "pw" });
      await c("/v3/auth/user/grant", { user: "root", role: "root" });
      await c("/v3/auth/role/add", { name: "reader" });
      await c("/v3/auth/role/grant", {
        name: "reader",
        perm: { permType: "READ", key: b64("a"), range_end: b64("b") },
      });
      await c("/v3/auth/enable", {});
      await c("/v3/kv/range", { key: b64("a") });
      await c("/v3/auth/authenticate", { name: "root", password: "wrong" });
      const tokens: Record<string, string> = {};
      for (const impl of ["etcd-ts", "etcd"] as Impl[]) {
        const res = await fetch(`http://${ms[impl].endpoint}/v3/auth/authenticate`, {
          method: "POST",
          body: JSON.stringify({ name: "root", password: "pw" }),
        });
        const body = await res.json();
        assertEquals(res.status, 200);
        assert(typeof body.token === "string" && body.token.length > 0, JSON.stringify(body));
        tokens[impl] = body.token;
      }
      const withToken = (p: string, body: unknown) =>
        same(
          ms,
          `${p} with a token`,
          (m) => call(m, p, body, { headers: { Authorization: tokens[m.impl] } }),
        );
      await withToken("/v3/kv/put", { key: b64("a"), value: b64("1") });
      await withToken("/v3/kv/range", { key: b64("a") });
      await withToken("/v3/auth/role/get", { role: "reader" });
      await withToken("/v3/auth/user/get", { name: "root" });
      await withToken("/v3/auth/user/list", {});
      await withToken("/v3/auth/role/list", {});
      await same(
        ms,
        "a bad token",
        (m) => call(m, "/v3/kv/range", { key: b64("a") }, { headers: { Authorization: "bogus" } }),
      );
      await withToken("/v3/auth/disable", {});
      await c("/v3/kv/range", { key: b64("a") });
    } finally {
      await stopBoth(ms);
    }
  },
});

async function curl(args: string[]): Promise<string> {
  const out = await new Deno.Command("curl", {
    args: ["-s", "--max-time", "5", ...args],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout);
}

Deno.test({
  name: `gateway e2e: HTTP/2 (prior knowledge) and CORS preflight${
    HAVE_CURL ? suffix : " (skipped: curl is not installed)"
  }`,
  ignore: ignoreNoEtcd || !HAVE_CURL,
  fn: async () => {
    const ms = await startBoth();
    try {
      // etcd 3.4 hands every cleartext HTTP/2 connection to its gRPC server, which resets a JSON request
      // (PROTOCOL_ERROR): it serves the gateway over HTTP/2 only with TLS. etcd-ts serves it over h2c too;
      // its HTTP/2 answers are compared with etcd's HTTP/1.1 ones.
      const h2 = (m: Member): string[] => m.impl === "etcd-ts" ? ["--http2-prior-knowledge"] : [];
      assertEquals(
        await curl(["--http2-prior-knowledge", `http://${ms.etcd.endpoint}/v3/kv/range`, "-d", "{}"]),
        "",
      );
      await same(
        ms,
        "h2 put",
        async (m) =>
          normalise(
            JSON.parse(
              await curl([
                ...h2(m),
                `http://${m.endpoint}/v3/kv/put`,
                "-d",
                JSON.stringify({ key: b64("h"), value: b64("2") }),
              ]),
            ),
          ),
      );
      await same(
        ms,
        "h2 range",
        async (m) =>
          normalise(
            JSON.parse(
              await curl([
                ...h2(m),
                `http://${m.endpoint}/v3/kv/range`,
                "-d",
                JSON.stringify({ key: b64("h") }),
              ]),
            ),
          ),
      );
      await same(
        ms,
        "h2 error",
        async (m) =>
          normalise(JSON.parse(await curl([...h2(m), `http://${m.endpoint}/v3/kv/range`, "-d", "x"]))),
      );
      await same(ms, "h2 watch", async (m) => {
        // a watch from a past revision: the created line and the put's event, then curl gives up
        const text = await curl([
          ...h2(m),
          "-N",
          "--max-time",
          "2",
          `http://${m.endpoint}/v3/watch`,
          "-d",
          JSON.stringify({ create_request: { key: b64("h"), start_revision: "1" } }),
        ]);
        return text.split("\n").filter((l) => l !== "").map((l) => normalise(JSON.parse(l)));
      });
      await same(ms, "CORS preflight", async (m) => {
        const res = await fetch(`http://${m.endpoint}/v3/kv/range`, {
          method: "OPTIONS",
          headers: { Origin: "http://example.com", "Access-Control-Request-Method": "POST" },
        });
        await res.body?.cancel();
        return {
          status: res.status,
          origin: res.headers.get("access-control-allow-origin"),
          methods: res.headers.get("access-control-allow-methods"),
          headers: res.headers.get("access-control-allow-headers"),
        };
      });
      await same(ms, "CORS on a call", async (m) => {
        const res = await fetch(`http://${m.endpoint}/v3/kv/range`, { method: "POST", body: "{}" });
        await res.body?.cancel();
        return res.headers.get("access-control-allow-origin");
      });
    } finally {
      await stopBoth(ms);
    }
  },
});

Deno.test({
  name: `gateway e2e: --enable-grpc-gateway=false, --host-whitelist and --cors${
    HAVE_CURL ? suffix : " (skipped: curl is not installed)"
  }`,
  ignore: ignoreNoEtcd || !HAVE_CURL,
  fn: async () => {
    let ms = await startBoth(["--enable-grpc-gateway=false"]);
    try {
      await same(ms, "gateway off", (m) => call(m, "/v3/kv/range", { key: b64("a") }));
    } finally {
      await stopBoth(ms);
    }
    ms = await startBoth(["--host-whitelist", "example.com", "--cors", "http://good.example:8080"]);
    try {
      await same(ms, "a refused host", async (m) => {
        const out = await curl([
          "-i",
          "-H",
          "Host: evil.example:2379",
          `http://${m.endpoint}/v3/kv/range`,
          "-d",
          "{}",
        ]);
        const [head, ...rest] = out.split("\r\n\r\n");
        return { status: head.split("\r\n")[0], body: rest.join("\r\n\r\n") };
      });
      await same(ms, "a whitelisted host", async (m) => {
        const out = await curl([
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          "-H",
          "Host: example.com",
          `http://${m.endpoint}/v3/kv/range`,
          "-d",
          JSON.stringify({ key: b64("a") }),
        ]);
        return out;
      });
      for (const origin of ["http://good.example:8080", "http://bad.example:8080"]) {
        await same(ms, `CORS for ${origin}`, async (m) => {
          const out = await curl([
            "-i",
            "-H",
            "Host: example.com",
            "-H",
            `Origin: ${origin}`,
            `http://${m.endpoint}/v3/kv/range`,
            "-d",
            JSON.stringify({ key: b64("a") }),
          ]);
          return out.split("\r\n").filter((l) => l.toLowerCase().startsWith("access-control-")).map((l) =>
            l.toLowerCase()
          ).sort();
        });
      }
    } finally {
      await stopBoth(ms);
    }
  },
});
