/**
 * The built-in dashboard (beyond etcd, which has no UI): `GET /ui` and `/ui/` answer the page, `/ui/<file>`
 * its script, styles and uPlot (see `UI_ASSETS`); every file is embedded in the module graph
 * (`assets.ts`), so the executable serves it without a network or a file system. The files are loaded by
 * the first request for one of them, so a member whose dashboard nobody opens does not hold them.
 *
 * The page is only a client: it reads and writes through the member's JSON gateway (`/v3/...`) and
 * `/metrics`, as any other client would, so it can do nothing the user's credentials do not allow.
 *
 * Caching: the page is `no-cache` (revalidated each time, by its `ETag`), and it names each file with its
 * `ETag` in the query (`/ui/app.js?v=...`), so a new version is fetched at once while an unchanged one is
 * served from the browser's cache for a day. `If-None-Match` gets `304 Not Modified`. `HEAD` answers the
 * headers of `GET`; any other method is 405. Paths outside `/ui` are left to the next handler.
 *
 * @module
 */
import type { HttpFallbackRequest, HttpFallbackResponse } from "../../transport/grpc.ts";
import type { PartialHttpHandler } from "../health.ts";

/** What {@link uiHandler} needs. */
export interface UiOptions {
  /**
   * Where the page sends its API requests (`http://host:port`, no trailing slash); default `""`, the
   * member that served the page.
   */
  apiBase?: string;
}

/** A file ready to serve: its headers and bytes. */
interface Served {
  contentType: string;
  etag: string;
  cacheControl: string;
  body: Uint8Array;
  extra: Record<string, string>;
}

/** What a browser may do with the page: its own scripts and styles, API calls to any member. */
const PAGE_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  // members' client URLs (status of each member) are other origins
  "connect-src *",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join("; ");

const ASSET_CACHE = "public, max-age=86400";
const enc = new TextEncoder();

/** A strong ETag from the content (FNV-1a, 32 bits, with the length): stable across restarts. */
export function etagOf(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `"${h.toString(16).padStart(8, "0")}-${bytes.length.toString(16)}"`;
}

/** `s` safe inside a double-quoted HTML attribute. */
function attr(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll('"', "&quot;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** Builds every file once: the page with its placeholders filled in, each asset with its ETag. */
async function build(options: UiOptions): Promise<Map<string, Served>> {
  const { INDEX_HTML, UI_ASSETS } = await import("./assets.ts");
  const files = new Map<string, Served>();
  const versions: Record<string, string> = {};
  for (const a of UI_ASSETS) {
    const body = enc.encode(a.text);
    const etag = etagOf(body);
    versions[a.name] = etag.slice(1, 9);
    files.set(`/ui/${a.name}`, {
      contentType: a.contentType,
      etag,
      cacheControl: ASSET_CACHE,
      body,
      extra: { "X-Content-Type-Options": "nosniff" },
    });
  }
  const html = INDEX_HTML
    .replaceAll("{{API_BASE}}", attr(options.apiBase ?? ""))
    .replace(/\{\{V:([a-z.]+)\}\}/g, (_, name: string) => versions[name] ?? "0");
  const body = enc.encode(html);
  const page: Served = {
    contentType: "text/html; charset=utf-8",
    etag: etagOf(body),
    cacheControl: "no-cache",
    body,
    extra: {
      "Content-Security-Policy": PAGE_POLICY,
      "X-Content-Type-Options": "nosniff",
      "X-Frame-Options": "DENY",
      "Referrer-Policy": "no-referrer",
    },
  };
  files.set("/ui", page);
  files.set("/ui/", page);
  return files;
}

/** Whether the `If-None-Match` header names `etag` (or is `*`). */
function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  return ifNoneMatch.split(",").some((t) => {
    const tag = t.trim().replace(/^W\//, "");
    return tag === "*" || tag === etag;
  });
}

/**
 * The dashboard's handler: answers `/ui`, `/ui/` and the page's files, `undefined` for any other path
 * (an unknown file under `/ui/` too, which then gets the member's ordinary 404).
 */
export function uiHandler(options: UiOptions = {}): PartialHttpHandler {
  let files: Promise<Map<string, Served>> | undefined;
  return async (req: HttpFallbackRequest): Promise<HttpFallbackResponse | undefined> => {
    const q = req.path.indexOf("?");
    const path = q < 0 ? req.path : req.path.slice(0, q);
    if (path !== "/ui" && !path.startsWith("/ui/")) return undefined;
    const file = (await (files ??= build(options))).get(path);
    if (file === undefined) return undefined;
    if (req.method !== "GET" && req.method !== "HEAD") {
      return {
        status: 405,
        headers: { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" },
        body: "Method Not Allowed\n",
      };
    }
    const headers: Record<string, string> = {
      ...file.extra,
      "Content-Type": file.contentType,
      "Cache-Control": file.cacheControl,
      ETag: file.etag,
    };
    if (matches(req.headers.get("if-none-match"), file.etag)) return { status: 304, headers, body: "" };
    return { status: 200, headers, body: req.method === "HEAD" ? "" : file.body };
  };
}
