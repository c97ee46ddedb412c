/**
 * Test helpers for streamed plain-HTTP responses (`HttpFallbackResponse.stream`): a fallback whose body
 * the test feeds piece by piece and whose cancellation it observes, and an HTTP/2 client that reads
 * what arrives as it arrives.
 *
 * @module
 */
import http2 from "node:http2";
import type { HttpFallbackRequest, HttpFallbackResponse } from "../grpc.ts";

/** A fallback answering `/stream` with a body the test pushes into, `/big` with `bigBytes` bytes. */
export class StreamingFallback {
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  /** Set when the transport cancelled the body. */
  cancelled = false;
  /** The last request's signal. */
  signal: AbortSignal | undefined;
  #started = Promise.withResolvers<void>();

  constructor(readonly bigBytes = 3 << 20) {}

  /** Resolves once a `/stream` response began. */
  get started(): Promise<void> {
    return this.#started.promise;
  }

  /** Sends one piece of the body. */
  push(text: string): void {
    this.#controller?.enqueue(new TextEncoder().encode(text));
  }

  /** Ends the body. */
  end(): void {
    this.#controller?.close();
  }

  /** The handler to give a transport as `httpFallback`. */
  readonly handler = (req: HttpFallbackRequest): Promise<HttpFallbackResponse> => {
    this.signal = req.signal;
    if (req.path === "/big") {
      let sent = 0;
      const chunk = 64 * 1024;
      const stream = new ReadableStream<Uint8Array>({
        pull: (c) => {
          if (sent >= this.bigBytes) {
            c.close();
            return;
          }
          const n = Math.min(chunk, this.bigBytes - sent);
          c.enqueue(new Uint8Array(n).fill((sent / chunk) & 0xff));
          sent += n;
        },
      });
      return Promise.resolve({
        status: 200,
        headers: { "content-type": "application/octet-stream" },
        body: "",
        stream,
      });
    }
    const stream = new ReadableStream<Uint8Array>({
      start: (c) => {
        this.#controller = c;
        this.#started.resolve();
      },
      cancel: () => {
        this.cancelled = true;
      },
    });
    return Promise.resolve({
      status: 200,
      headers: { "content-type": "application/json" },
      body: "",
      stream,
    });
  };
}

/** One HTTP/2 request whose response body is read as it comes. */
export interface H2Reader {
  status: Promise<number>;
  /** Resolves when at least `n` bytes have arrived, with all of them as text. */
  until(n: number): Promise<string>;
  /** Resolves with the whole body once it ended. */
  ended: Promise<Uint8Array>;
  /** Resets the stream (the client gives up). */
  reset(): void;
  close(): Promise<void>;
}

/** Opens an h2c session to `host:port` and sends `POST path`. */
export function h2Request(host: string, port: number, path: string): H2Reader {
  const session = http2.connect(`http://${host}:${port}`);
  session.on("error", () => {});
  const req = session.request({ ":method": "POST", ":path": path });
  req.on("error", () => {});
  req.end("{}");
  const parts: Uint8Array[] = [];
  let size = 0;
  const waiters: { n: number; resolve: (s: string) => void }[] = [];
  const all = (): Uint8Array => {
    const out = new Uint8Array(size);
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  };
  const status = new Promise<number>((resolve) => req.on("response", (h) => resolve(Number(h[":status"]))));
  const ended = new Promise<Uint8Array>((resolve) => req.on("end", () => resolve(all())));
  req.on("data", (chunk: Uint8Array) => {
    parts.push(new Uint8Array(chunk));
    size += chunk.length;
    for (const w of [...waiters]) {
      if (size >= w.n) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(new TextDecoder().decode(all()));
      }
    }
  });
  return {
    status,
    ended,
    until: (n) =>
      size >= n
        ? Promise.resolve(new TextDecoder().decode(all()))
        : new Promise((resolve) => waiters.push({ n, resolve })),
    reset: () => req.close(http2.constants.NGHTTP2_CANCEL),
    close: () =>
      new Promise<void>((resolve) => {
        if (session.closed || session.destroyed) resolve();
        else session.close(() => resolve());
      }),
  };
}

/** Polls `cond` every 10 ms for up to `ms`. */
export async function eventually(cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return cond();
}
