/**
 * Helpers of the dashboard's end-to-end test (`ui_e2e_test.ts`): a headless chromium driven by
 * playwright-core with the flags this closed network needs, and a small server that serves the dashboard
 * (through {@link uiHandler}) with its API pointed at another server, to run the page against the real
 * etcd, which has no dashboard of its own.
 *
 * @module
 */
import { chromium } from "playwright-core";
import type { BrowserContext } from "playwright-core";
import { uiHandler } from "../server/http/ui/mod.ts";

/** Where the test expects chromium. */
export const CHROMIUM = "/usr/bin/chromium";

/** Whether chromium is installed; the browser tests are skipped without it. */
export const HAVE_CHROMIUM = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();

/** chromium's flags: headless, and none of the background connections that fail on a closed network. */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A browser with a new, empty profile; `close()` ends it and removes the profile. */
export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Starts chromium with a new empty user-data-dir. */
export async function launchBrowser(): Promise<Browser> {
  const profile = await Deno.makeTempDir({ prefix: "etcd-ts-ui-profile-" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: { width: 1400, height: 1300 },
  });
  return {
    context,
    async close() {
      await context.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}

/** A server of the dashboard alone, whose page sends its API calls to `apiBase`. */
export function serveDashboard(
  hostname: string,
  port: number,
  apiBase: string,
): { url: string; close(): Promise<void> } {
  const handler = uiHandler({ apiBase });
  const server = Deno.serve({ hostname, port, onListen: () => {} }, async (request) => {
    const url = new URL(request.url);
    const res = await handler({
      method: request.method,
      path: url.pathname + url.search,
      headers: new Map([...request.headers].map(([k, v]) => [k.toLowerCase(), v])),
      body: new Uint8Array(await request.arrayBuffer()),
    });
    if (res === undefined) return new Response("404 page not found\n", { status: 404 });
    return new Response(res.status === 304 ? null : res.body as BodyInit, {
      status: res.status,
      headers: res.headers,
    });
  });
  return { url: `http://${hostname}:${port}/ui/`, close: () => server.shutdown() };
}
