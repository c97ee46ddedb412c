/**
 * Non-gRPC requests on an HTTP/2 stream (no gRPC content type): the body is collected, then handed to
 * `ServeOptions.httpFallback` (404 without one), and its response is sent on the stream.
 *
 * @module
 */
import type { HttpFallbackResponse } from "../grpc.ts";
import { abortStream, drainStream, localEnd, queue, writeHeaders } from "./outbound.ts";
import { ErrorCode } from "./frames.ts";
import type { H2Session } from "./session.ts";
import type { H2Stream } from "./stream.ts";

/** A non-gRPC request on a stream, for `ServeOptions.httpFallback`. */
export class FallbackRequest {
  parts: Uint8Array[] = [];
  size = 0;
  constructor(readonly method: string, readonly path: string, readonly headers: string[]) {}
}

/** Body bytes of a fallback request; at its end, serves it. */
export function fallbackData(
  c: H2Session,
  s: H2Stream,
  f: FallbackRequest,
  data: Uint8Array,
  end: boolean,
): void {
  f.size += data.length;
  if (f.size > c.maxReceive) {
    abortStream(c, s, ErrorCode.REFUSED_STREAM);
    return;
  }
  if (data.length > 0) f.parts.push(data.slice());
  if (end) void serveFallback(c, s, f);
}

async function serveFallback(c: H2Session, s: H2Stream, f: FallbackRequest): Promise<void> {
  const body = new Uint8Array(f.size);
  let off = 0;
  for (const p of f.parts) {
    body.set(p, off);
    off += p.length;
  }
  const headers = new Map<string, string>();
  for (let i = 0; i < f.headers.length; i += 2) {
    if (f.headers[i].charCodeAt(0) !== 58) headers.set(f.headers[i], f.headers[i + 1]);
  }
  let res: HttpFallbackResponse;
  const fallback = c.ctx.options.httpFallback;
  try {
    res = fallback === undefined
      ? { status: 404, headers: { "content-type": "text/plain" }, body: "404 page not found\n" }
      : await fallback({ method: f.method, path: f.path, headers, body });
  } catch (err) {
    res = {
      status: 500,
      headers: { "content-type": "text/plain" },
      body: `${(err as Error)?.message ?? err}\n`,
    };
  }
  if (c.streams.get(s.id) !== s || c.dead) return;
  const list = [":status", String(res.status)];
  for (const [k, v] of Object.entries(res.headers ?? {})) list.push(k.toLowerCase(), String(v));
  const bytes = typeof res.body === "string" ? new TextEncoder().encode(res.body) : res.body;
  writeHeaders(c, s.id, list, bytes.length === 0, undefined);
  s.headersSent = true;
  c.scheduleFlush();
  if (bytes.length === 0) {
    localEnd(c, s);
    return;
  }
  queue(c, s, bytes.slice());
  s.endAfterData = true;
  drainStream(c, s);
}
