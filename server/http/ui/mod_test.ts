import { assert, assertEquals } from "../../../tests/assert.ts";
import type { HttpFallbackRequest, HttpFallbackResponse } from "../../transport/grpc.ts";
import { composeHandlers } from "../health.ts";
import { etagOf, uiHandler } from "./mod.ts";
import { UI_ASSETS } from "./assets.ts";

function req(path: string, method = "GET", headers: Record<string, string> = {}): HttpFallbackRequest {
  return { method, path, headers: new Map(Object.entries(headers)), body: new Uint8Array(0) };
}

function text(res: HttpFallbackResponse): string {
  return typeof res.body === "string" ? res.body : new TextDecoder().decode(res.body);
}

async function get(path: string, init?: { method?: string; headers?: Record<string, string> }) {
  return await uiHandler()(req(path, init?.method, init?.headers));
}

Deno.test("ui: /ui and /ui/ answer the page, as HTML that must be revalidated", async () => {
  for (const path of ["/ui", "/ui/", "/ui/?x=1"]) {
    const res = await get(path);
    assert(res !== undefined, path);
    assertEquals(res.status, 200);
    assertEquals(res.headers?.["Content-Type"], "text/html; charset=utf-8");
    assertEquals(res.headers?.["Cache-Control"], "no-cache");
    assert(res.headers?.["Content-Security-Policy"]?.includes("connect-src *"));
    assert(text(res).includes("<title>etcd-ts dashboard</title>"));
  }
});

Deno.test("ui: the page names every asset with its version, and each is served with its type", async () => {
  const page = text((await get("/ui/"))!);
  assert(!page.includes("{{"), "placeholders left in the page");
  for (const a of UI_ASSETS) {
    const m = new RegExp(`/ui/${a.name.replace(".", "\\.")}\\?v=([0-9a-f]{8})`).exec(page);
    assert(m !== null, `${a.name} not referenced by the page`);
    const res = await get(`/ui/${a.name}?v=${m[1]}`);
    assertEquals(res?.status, 200);
    assertEquals(res?.headers?.["Content-Type"], a.contentType);
    assertEquals(res?.headers?.["Cache-Control"], "public, max-age=86400");
    assertEquals(res?.headers?.["X-Content-Type-Options"], "nosniff");
    assertEquals(text(res!), a.text);
    assertEquals(res?.headers?.ETag, etagOf(new TextEncoder().encode(a.text)));
    assertEquals(res?.headers?.ETag.slice(1, 9), m[1]);
  }
  assert(UI_ASSETS.find((a) => a.name === "uplot.js")!.text.includes("uPlot"), "uPlot is not embedded");
});

Deno.test("ui: the API base is written into the page, escaped", async () => {
  const page = text((await uiHandler({ apiBase: 'http://127.0.2.50:2379"><x' })(req("/ui")))!);
  assert(page.includes('content="http://127.0.2.50:2379&quot;&gt;&lt;x"'), page.slice(0, 400));
  assert(text((await get("/ui"))!).includes('<meta name="etcd-api" content="">'));
});

Deno.test("ui: If-None-Match with the current ETag gets 304 and no body; HEAD gets headers only", async () => {
  const first = (await get("/ui/app.js"))!;
  const etag = first.headers!.ETag;
  const again = (await get("/ui/app.js", { headers: { "if-none-match": `W/"other", ${etag}` } }))!;
  assertEquals(again.status, 304);
  assertEquals(text(again), "");
  const stale = (await get("/ui/app.js", { headers: { "if-none-match": '"00000000-1"' } }))!;
  assertEquals(stale.status, 200);
  const head = (await get("/ui/style.css", { method: "HEAD" }))!;
  assertEquals(head.status, 200);
  assertEquals(head.headers?.["Content-Type"], "text/css; charset=utf-8");
  assertEquals(text(head), "");
});

Deno.test("ui: other methods are 405 with Allow", async () => {
  const res = (await get("/ui/", { method: "POST" }))!;
  assertEquals(res.status, 405);
  assertEquals(res.headers?.Allow, "GET, HEAD");
});

Deno.test("ui: paths it does not serve are left to the next handler, 404 in the end", async () => {
  for (const path of ["/", "/uix", "/ui/nope.js", "/ui/app.js/x", "/health", "/v3/kv/range"]) {
    assertEquals(await get(path), undefined, path);
  }
  const composed = composeHandlers("client", [uiHandler()]);
  assertEquals((await composed(req("/ui/nope.js"))).status, 404);
});

Deno.test("ui: disabled (Config.enableUi false, no handler composed), /ui is 404 like any unknown path", async () => {
  const enableUi = false;
  const client = composeHandlers("client", [enableUi ? uiHandler() : undefined]);
  const res = await client(req("/ui/"));
  assertEquals(res.status, 404);
  assertEquals(text(res), "404 page not found\n");
  const enabled = composeHandlers("client", [uiHandler()]);
  assertEquals((await enabled(req("/ui/"))).status, 200);
});
