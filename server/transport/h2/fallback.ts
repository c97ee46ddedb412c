/**
 * Non-gRPC requests on an HTTP/2 stream (no gRPC content type): the body is collected, then handed to
 * `ServeOptions.httpFallback` (404 without one), and its response is sent on the stream. A streamed
 * response body (`HttpFallbackResponse.stream`, the gateway's watch) goes out as DATA frames as it is
 * produced, within the flow-control windows; the request's signal aborts, and the body is cancelled,
 * when the client resets the stream or the connection ends.
 *
 * @module
 */
import type { HttpFallbackResponse } from "../grpc.ts";
import { abortStream, drainStream, localEnd, queue, waitDrain, writeHeaders } from "./outbound.ts";
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
  const gone = new AbortController();
  watchGone(c, s, gone);
  try {
    res = fallback === undefined
      ? { status: 404, headers: { "content-type": "text/plain" }, body: "404 page not found\n" }
      : await fallback({ method: f.method, path: f.path, headers, body, signal: gone.signal });
  } catch (err) {
    res = {
      status: 500,
      headers: { "content-type": "text/plain" },
      body: `${(err as Error)?.message ?? err}\n`,
    };
  }
  if (c.streams.get(s.id) !== s || c.dead) {
    void res.stream?.cancel().catch(() => {});
    return;
  }
  const list = [":status", String(res.status)];
  for (const [k, v] of Object.entries(res.headers ?? {})) list.push(k.toLowerCase(), String(v));
  if (res.stream !== undefined) {
    writeHeaders(c, s.id, list, false, undefined);
    s.headersSent = true;
    c.scheduleFlush();
    await sendStream(c, s, res.stream, gone.signal);
    return;
  }
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

/**
 * Aborts `gone` once the stream leaves the connection (the client reset it, the connection died, or the
 * response ended). The session resolves a stream's drain waiters when it forgets the stream, so a waiter
 * that finds the stream still there re-registers itself.
 */
function watchGone(c: H2Session, s: H2Stream, gone: AbortController): void {
  const check = (): void => {
    if (c.streams.get(s.id) !== s || c.dead) gone.abort();
    else (s.drainWaiters ??= []).push(check);
  };
  (s.drainWaiters ??= []).push(check);
}

/** Sends a streamed body as DATA frames as it comes, waiting for the windows; cancels it if the stream goes. */
async function sendStream(
  c: H2Session,
  s: H2Stream,
  body: ReadableStream<Uint8Array>,
  gone: AbortSignal,
): Promise<void> {
  const reader = body.getReader();
  const onGone = (): void => void reader.cancel().catch(() => {});
  if (gone.aborted) onGone();
  else gone.addEventListener("abort", onGone, { once: true });
  const alive = (): boolean => c.streams.get(s.id) === s && !c.dead;
  try {
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch {
        break; // the producer failed: end the body where it is
      }
      if (next.done || !alive()) break;
      if (next.value.length === 0) continue;
      queue(c, s, next.value.slice());
      drainStream(c, s);
      await waitDrain(c, s);
    }
  } finally {
    gone.removeEventListener("abort", onGone);
    reader.releaseLock();
  }
  if (!alive()) return;
  s.endAfterData = true;
  drainStream(c, s);
}
