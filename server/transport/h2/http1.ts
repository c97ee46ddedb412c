/**
 * A small HTTP/1.1 server connection for the non-gRPC requests a client port also answers (health
 * checks, /version, the JSON gateway): request line and headers, Content-Length or chunked bodies,
 * `Expect: 100-continue`, keep-alive and pipelining (answered in order), and streamed responses (the
 * gateway's watch) in chunked transfer encoding, cancelled when the client goes away. Independent of the
 * socket: bytes go in with `feed`, responses come out through the sink.
 *
 * @module
 */
import type { HttpFallbackRequest, HttpFallbackResponse } from "../grpc.ts";
import { reasonPhrase } from "../../http_status.ts";

/** Where a {@linkcode Http1Connection} writes. */
export interface Http1Sink {
  write(bytes: Uint8Array): void;
  /** Close the connection after what was written. */
  close(): void;
  /**
   * Resolves once what was written has mostly reached the socket; a streamed response waits on it
   * between chunks so a slow client slows the producer. Without it, chunks are written as produced.
   */
  drained?(): Promise<void>;
}

/** Handles one request. */
export type Http1Handler = (req: HttpFallbackRequest) => Promise<HttpFallbackResponse>;

const MAX_HEAD_BYTES = 64 * 1024;

const encoder = new TextEncoder();

interface Head {
  method: string;
  path: string;
  version: string;
  headers: Map<string, string>;
}

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode(...bytes.subarray(i, Math.min(bytes.length, i + 4096)));
  }
  return s;
}

function indexOfCrlfCrlf(buf: Uint8Array, from: number): number {
  for (let i = Math.max(0, from); i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

function indexOfCrlf(buf: Uint8Array, from: number): number {
  for (let i = from; i + 1 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10) return i;
  }
  return -1;
}

function parseHead(text: string): Head | undefined {
  const lines = text.split("\r\n");
  const m = /^([A-Z]+) (\S+) HTTP\/(1\.[01])$/.exec(lines[0]);
  if (m === null) return undefined;
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(":");
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(name)) return undefined;
    const value = line.slice(colon + 1).trim();
    const prev = headers.get(name);
    headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
  }
  return { method: m[1], path: m[2], version: m[3], headers };
}

/** One HTTP/1.x connection. */
export class Http1Connection {
  #buf: Uint8Array = new Uint8Array(0);
  #busy = false;
  #closed = false;
  #peerEnded = false;
  #continued = false;
  #scanFrom = 0;
  /** Aborted when the connection ends: a request that waits (a long poll) stops waiting. */
  readonly #gone = new AbortController();

  constructor(
    private readonly sink: Http1Sink,
    private readonly handler: Http1Handler,
    private readonly maxBodyBytes: number,
  ) {}

  /** Bytes read from the socket. */
  feed(chunk: Uint8Array): void {
    if (this.#closed || chunk.length === 0) return;
    if (this.#buf.length === 0) this.#buf = chunk.slice();
    else {
      const b = new Uint8Array(this.#buf.length + chunk.length);
      b.set(this.#buf);
      b.set(chunk, this.#buf.length);
      this.#buf = b;
    }
    this.#pump();
  }

  /** The peer closed its side: finish the request in progress, if any, then close. */
  end(): void {
    this.#peerEnded = true;
    this.#gone.abort();
    if (!this.#busy) this.#close();
  }

  /** Server shutdown: close now if idle, else right after the response in progress. */
  shutdown(): void {
    this.#gone.abort();
    if (this.#busy) this.#peerEnded = true;
    else this.#close();
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#gone.abort();
    this.sink.close();
  }

  #fail(status: number): void {
    this.#respond({ status, body: `${status} ${reasonPhrase(status, "")}\n` }, false, false);
    this.#close();
  }

  #pump(): void {
    while (!this.#busy && !this.#closed && this.#buf.length > 0) {
      const headEnd = indexOfCrlfCrlf(this.#buf, this.#scanFrom - 3);
      if (headEnd < 0) {
        if (this.#buf.length > MAX_HEAD_BYTES) this.#fail(431);
        else this.#scanFrom = this.#buf.length;
        return;
      }
      const head = parseHead(latin1(this.#buf.subarray(0, headEnd)));
      if (head === undefined) {
        this.#fail(400);
        return;
      }
      const body = this.#readBody(head, headEnd + 4);
      if (body === "wait") return;
      if (typeof body === "number") {
        this.#fail(body);
        return;
      }
      const [bytes, consumed] = body;
      this.#buf = this.#buf.subarray(consumed);
      this.#scanFrom = 0;
      const conn = (head.headers.get("connection") ?? "").toLowerCase();
      const keepAlive = head.version === "1.1" ? !conn.includes("close") : conn.includes("keep-alive");
      this.#busy = true;
      void this.#serve(head, bytes, keepAlive);
    }
  }

  /** The body and the bytes consumed through its end; "wait" for more input; a number is an error status. */
  #readBody(head: Head, start: number): [Uint8Array, number] | "wait" | number {
    const buf = this.#buf;
    const te = head.headers.get("transfer-encoding");
    const expect = (head.headers.get("expect") ?? "").toLowerCase() === "100-continue";
    if (te !== undefined) {
      if (te.toLowerCase() !== "chunked") return 501;
      const parts: Uint8Array[] = [];
      let total = 0;
      let off = start;
      for (let i = 0; i < 1_000_000; i++) {
        const lineEnd = indexOfCrlf(buf, off);
        if (lineEnd < 0) return this.#continueIfAsked(expect);
        const size = parseInt(latin1(buf.subarray(off, lineEnd)).split(";")[0].trim(), 16);
        if (!Number.isFinite(size) || size < 0) return 400;
        total += size;
        if (total > this.maxBodyBytes) return 413;
        if (size === 0) {
          // trailer section: lines until an empty one
          let t = lineEnd + 2;
          for (;;) {
            const e = indexOfCrlf(buf, t);
            if (e < 0) return "wait";
            if (e === t) return [concat(parts, total), e + 2];
            t = e + 2;
          }
        }
        if (buf.length < lineEnd + 2 + size + 2) return this.#continueIfAsked(expect);
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        off = lineEnd + 2 + size + 2;
      }
      return 400;
    }
    const cl = head.headers.get("content-length");
    let length = 0;
    if (cl !== undefined) {
      if (!/^\d+$/.test(cl)) return 400;
      length = Number(cl);
    }
    if (length > this.maxBodyBytes) return 413;
    if (buf.length - start < length) return this.#continueIfAsked(expect);
    return [buf.slice(start, start + length), start + length];
  }

  #continueIfAsked(expect: boolean): "wait" {
    if (expect && !this.#continued) {
      this.#continued = true;
      this.sink.write(encoder.encode("HTTP/1.1 100 Continue\r\n\r\n"));
    }
    return "wait";
  }

  async #serve(head: Head, body: Uint8Array, keepAlive: boolean): Promise<void> {
    let res: HttpFallbackResponse;
    try {
      res = await this.handler({
        method: head.method,
        path: head.path,
        headers: head.headers,
        body,
        signal: this.#gone.signal,
      });
    } catch (err) {
      res = { status: 500, body: `${(err as Error)?.message ?? err}\n` };
    }
    if (res.stream !== undefined) {
      if (this.#closed || head.method === "HEAD") void res.stream.cancel().catch(() => {});
      else {
        const chunked = head.version === "1.1";
        await this.#stream(res, res.stream, chunked, chunked && keepAlive && !this.#peerEnded);
        keepAlive = keepAlive && chunked;
      }
    }
    this.#busy = false;
    this.#continued = false;
    if (this.#closed) return;
    const closing = this.#peerEnded || !keepAlive;
    if (res.stream === undefined) this.#respond(res, head.method === "HEAD", !closing);
    if (closing) this.#close();
    else this.#pump();
  }

  /**
   * Sends a streamed body in chunked encoding (HTTP/1.0 clients get it raw, ended by closing): one chunk
   * per piece the stream produces. The stream is cancelled when the connection goes away.
   */
  async #stream(
    res: HttpFallbackResponse,
    body: ReadableStream<Uint8Array>,
    chunked: boolean,
    keepAlive: boolean,
  ): Promise<void> {
    this.sink.write(encoder.encode(this.#head(res, chunked ? "chunked" : "none", keepAlive)));
    const reader = body.getReader();
    const gone = this.#gone.signal;
    const onGone = (): void => void reader.cancel().catch(() => {});
    if (gone.aborted) onGone();
    else gone.addEventListener("abort", onGone, { once: true });
    try {
      for (;;) {
        let next: ReadableStreamReadResult<Uint8Array>;
        try {
          next = await reader.read();
        } catch {
          break; // the producer failed: end the body where it is
        }
        if (next.done || this.#closed) break;
        const chunk = next.value;
        if (chunk.length === 0) continue;
        if (chunked) {
          const size = encoder.encode(`${chunk.length.toString(16)}\r\n`);
          const out = new Uint8Array(size.length + chunk.length + 2);
          out.set(size);
          out.set(chunk, size.length);
          out.set([13, 10], size.length + chunk.length);
          this.sink.write(out);
        } else this.sink.write(chunk.slice());
        if (this.sink.drained !== undefined) await this.sink.drained();
      }
    } finally {
      gone.removeEventListener("abort", onGone);
      reader.releaseLock();
    }
    if (this.#closed || gone.aborted) return; // the client is gone, or the server is closing: no final chunk
    if (chunked) this.sink.write(encoder.encode("0\r\n\r\n"));
    else this.#peerEnded = true; // an HTTP/1.0 body without a length ends with the connection
  }

  /** The status line and headers; `length` is the Content-Length, or chunked / none for a streamed body. */
  #head(res: HttpFallbackResponse, length: number | "chunked" | "none", keepAlive: boolean): string {
    const reason = reasonPhrase(res.status);
    let head = `HTTP/1.1 ${res.status} ${reason}\r\n`;
    let hasType = false;
    for (const [k, v] of Object.entries(res.headers ?? {})) {
      const name = k.toLowerCase();
      if (name === "content-length" || name === "connection" || name === "transfer-encoding") continue;
      if (name === "content-type") hasType = true;
      head += `${k}: ${v}\r\n`;
    }
    if (!hasType && length !== 0) head += "Content-Type: text/plain; charset=utf-8\r\n";
    head += `Date: ${new Date().toUTCString()}\r\n`;
    if (length === "chunked") head += "Transfer-Encoding: chunked\r\n";
    else if (typeof length === "number") head += `Content-Length: ${length}\r\n`;
    if (!keepAlive) head += "Connection: close\r\n";
    return `${head}\r\n`;
  }

  #respond(res: HttpFallbackResponse, headOnly: boolean, keepAlive: boolean): void {
    const body = typeof res.body === "string" ? encoder.encode(res.body) : res.body;
    const h = encoder.encode(this.#head(res, body.length, keepAlive));
    if (headOnly || body.length === 0) {
      this.sink.write(h);
      return;
    }
    const out = new Uint8Array(h.length + body.length);
    out.set(h);
    out.set(body, h.length);
    this.sink.write(out);
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
