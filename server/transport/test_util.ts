/**
 * Test helpers for the gRPC transports: ports in the test range, a raw HTTP/2 client that shows the
 * frames' headers and trailers as they came, throwaway certificates.
 *
 * @module
 */
import http2 from "node:http2";
import type { GrpcListener, GrpcRouter, GrpcTransport, ServeOptions } from "./grpc.ts";
import { HpackDecoder } from "./h2/hpack.ts";
import { EC, openssl } from "../../tests/pki.ts";

const PORT_MIN = 24100;
const PORT_MAX = 24199;
let nextPort = PORT_MIN + Math.floor(Math.random() * (PORT_MAX - PORT_MIN + 1));

function takePort(): number {
  const p = nextPort;
  nextPort = nextPort >= PORT_MAX ? PORT_MIN : nextPort + 1;
  return p;
}

function inUse(err: unknown): boolean {
  return err instanceof Deno.errors.AddrInUse || (err as { code?: string })?.code === "EADDRINUSE";
}

/** Starts a transport on a free port of the test range (24100-24199). */
export async function listen(
  transport: GrpcTransport,
  router: GrpcRouter,
  options: Partial<ServeOptions> = {},
): Promise<GrpcListener> {
  for (let i = 0; i <= PORT_MAX - PORT_MIN; i++) {
    try {
      return await transport(router, {
        hostname: "127.0.0.1",
        port: takePort(),
        maxReceiveMessageBytes: 1 << 20,
        ...options,
      });
    } catch (err) {
      if (!inUse(err)) throw err;
    }
  }
  throw new Error(`no free port in ${PORT_MIN}-${PORT_MAX}`);
}

/** A 5-byte-prefixed gRPC message; `declared` overrides the length written in the prefix. */
export function frame(body: Uint8Array | string, flag = 0, declared?: number): Uint8Array {
  const b = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const f = new Uint8Array(5 + b.length);
  f[0] = flag;
  new DataView(f.buffer).setUint32(1, declared ?? b.length);
  f.set(b, 5);
  return f;
}

/** Splits a response body into its gRPC messages. */
export function unframe(data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let off = 0;
  while (off + 5 <= data.length) {
    const n = new DataView(data.buffer, data.byteOffset + off + 1, 4).getUint32(0);
    out.push(data.slice(off + 5, off + 5 + n));
    off += 5 + n;
  }
  return out;
}

/** What a raw HTTP/2 call saw. */
export interface RawReply {
  /** The first HEADERS block (with grpc-status in it for a trailers-only answer). */
  headers?: Record<string, unknown>;
  trailers?: Record<string, unknown>;
  data: Uint8Array;
  /** RST_STREAM code (0 when the stream ended normally). */
  rstCode?: number;
  /** grpc-status from trailers or a trailers-only response. */
  status?: string;
  message?: string;
  timedOut: boolean;
}

/** Options of {@linkcode rawCall}. */
export interface RawCallOptions {
  headers?: Record<string, string>;
  /** Request body pieces, each written with its own write(). */
  chunks?: Uint8Array[];
  /** Half-close after the chunks (default true). */
  end?: boolean;
  timeoutMs?: number;
  /** Called with the request stream once sent, e.g. to reset it. */
  then?: (req: http2.ClientHttp2Stream) => void;
  session?: http2.ClientHttp2Session;
}

/** One call over node:http2 with full control of the request. */
export function rawCall(port: number, path: string, o: RawCallOptions = {}): Promise<RawReply> {
  return new Promise((resolve) => {
    const own = o.session === undefined;
    const session = o.session ?? http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", () => {});
    const reply: RawReply = { data: new Uint8Array(0), timedOut: false };
    const parts: Uint8Array[] = [];
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...o.headers,
    });
    const grab = (h: Record<string, unknown>): void => {
      if (h["grpc-status"] !== undefined) {
        reply.status = String(h["grpc-status"]);
        reply.message = h["grpc-message"] === undefined ? undefined : String(h["grpc-message"]);
      }
    };
    req.on("response", (h) => {
      reply.headers = { ...h };
      grab(h);
    });
    req.on("trailers", (h) => {
      reply.trailers = { ...h };
      grab(h);
    });
    req.on("data", (d: Uint8Array) => parts.push(d));
    req.on("error", () => {});
    const finish = (): void => {
      clearTimeout(timer);
      reply.data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let off = 0;
      for (const p of parts) {
        reply.data.set(p, off);
        off += p.length;
      }
      if (own) session.destroy();
      resolve(reply);
    };
    const timer = setTimeout(() => {
      reply.timedOut = true;
      req.close();
      finish();
    }, o.timeoutMs ?? 5000);
    req.on("close", () => {
      reply.rstCode = req.rstCode;
      finish();
    });
    for (const c of o.chunks ?? []) req.write(c);
    if (o.end ?? true) req.end();
    o.then?.(req);
  });
}

/** Throwaway PEM files: a CA, a server certificate for 127.0.0.1/localhost and a client certificate. */
export interface TestCerts {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** Signed by another CA: must be refused. */
  strangerCert: string;
  strangerKey: string;
  /** A member's certificate, for serving and dialing (both key usages; 127.0.0.1 and localhost; CN member). */
  memberCert: string;
  memberKey: string;
  /** The same kind from the other CA. */
  strangerMemberCert: string;
  strangerMemberKey: string;
}

/** Generates {@linkcode TestCerts} with the openssl CLI into a new temporary directory. */
export async function makeCerts(): Promise<TestCerts> {
  const dir = await Deno.makeTempDir({ prefix: "grpc-certs-" });
  for (const ca of ["ca", "other-ca"]) {
    await openssl(dir, [
      "req",
      "-x509",
      ...EC,
      "-keyout",
      `${ca}.key`,
      "-out",
      `${ca}.crt`,
      "-subj",
      `/CN=${ca}`,
      "-days",
      "2",
    ]);
  }
  await Deno.writeTextFile(
    `${dir}/server.ext`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  await Deno.writeTextFile(`${dir}/client.ext`, "extendedKeyUsage=clientAuth\n");
  await Deno.writeTextFile(
    `${dir}/member.ext`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
  );
  const issue = async (name: string, cn: string, ca: string, ext: string): Promise<void> => {
    await openssl(dir, ["req", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`]);
    await openssl(dir, [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${ca}.crt`,
      "-CAkey",
      `${ca}.key`,
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      "2",
      "-extfile",
      ext,
    ]);
  };
  await issue("server", "localhost", "ca", "server.ext");
  await issue("client", "client-a", "ca", "client.ext");
  await issue("stranger", "stranger", "other-ca", "client.ext");
  await issue("member", "member", "ca", "member.ext");
  await issue("stranger-member", "stranger-member", "other-ca", "member.ext");
  const read = (f: string): Promise<string> => Deno.readTextFile(`${dir}/${f}`);
  return {
    dir,
    ca: await read("ca.crt"),
    serverCert: await read("server.crt"),
    serverKey: await read("server.key"),
    clientCert: await read("client.crt"),
    clientKey: await read("client.key"),
    strangerCert: await read("stranger.crt"),
    strangerKey: await read("stranger.key"),
    memberCert: await read("member.crt"),
    memberKey: await read("member.key"),
    strangerMemberCert: await read("stranger-member.crt"),
    strangerMemberKey: await read("stranger-member.key"),
  };
}

export { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
export { openssl } from "../../tests/pki.ts";

/** Polls `cond` every 5 ms for at most `ms`. */
export async function eventually(cond: () => boolean, ms = 3000): Promise<boolean> {
  for (let waited = 0; waited < ms && !cond(); waited += 5) await new Promise((r) => setTimeout(r, 5));
  return cond();
}

/** A received HTTP/2 frame; HEADERS carry their decoded header list (CONTINUATIONs folded in). */
export interface RawFrame {
  type: number;
  flags: number;
  id: number;
  payload: Uint8Array;
  headers?: [string, string][];
}

function u32(v: number): number[] {
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
}

/** A literal header field without indexing, raw strings: enough for tests, independent of our encoder. */
function literal(name: string, value: string): number[] {
  const str = (s: string): number[] => {
    const b = [...new TextEncoder().encode(s)];
    if (b.length < 127) return [b.length, ...b];
    const out = [127];
    let v = b.length - 127;
    while (v >= 128) {
      out.push((v % 128) | 128);
      v = Math.floor(v / 128);
    }
    out.push(v);
    return [...out, ...b];
  };
  return [0x00, ...str(name), ...str(value)];
}

/** A frame-level HTTP/2 client over a raw TCP connection, for protocol tests. */
export class RawH2 {
  readonly frames: RawFrame[] = [];
  closed = false;
  #cursor = 0;
  #decoder: HpackDecoder;
  #pendingBlock: { id: number; flags: number; parts: Uint8Array[] } | undefined;
  #reading: Promise<void>;

  private constructor(readonly conn: Deno.Conn, readonly ackSettings: boolean, tableSize: number) {
    this.#decoder = new HpackDecoder(tableSize);
    this.#reading = this.#read();
  }

  /** Connects, sends the preface and a SETTINGS frame with `settings`. */
  static async connect(
    port: number,
    settings: [number, number][] = [],
    options: { ackSettings?: boolean; headerTableSize?: number } = {},
  ): Promise<RawH2> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const c = new RawH2(conn, options.ackSettings ?? true, options.headerTableSize ?? 4096);
    await c.send([...new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")]);
    await c.frame(4, 0, 0, settings.flatMap(([k, v]) => [k >> 8, k & 255, ...u32(v)]));
    return c;
  }

  async send(bytes: number[] | Uint8Array): Promise<void> {
    const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    let off = 0;
    while (off < b.length) off += await this.conn.write(b.subarray(off));
  }

  /** Encodes one frame (without sending it). */
  static encode(type: number, flags: number, id: number, payload: number[] | Uint8Array): Uint8Array {
    const p = payload instanceof Uint8Array ? payload : new Uint8Array(payload);
    const out = new Uint8Array(9 + p.length);
    out.set([p.length >>> 16, (p.length >>> 8) & 255, p.length & 255, type, flags, ...u32(id)]);
    out.set(p, 9);
    return out;
  }

  frame(type: number, flags: number, id: number, payload: number[] | Uint8Array = []): Promise<void> {
    return this.send(RawH2.encode(type, flags, id, payload));
  }

  /** The header block of a gRPC request (literals, no indexing). */
  static requestBlock(path: string, extra: [string, string][] = []): number[] {
    return [
      ...literal(":method", "POST"),
      ...literal(":scheme", "http"),
      ...literal(":path", path),
      ...literal(":authority", "localhost"),
      ...literal("content-type", "application/grpc"),
      ...literal("te", "trailers"),
      ...extra.flatMap(([n, v]) => literal(n, v)),
    ];
  }

  /** HEADERS (END_HEADERS) opening a gRPC request on stream `id`. */
  request(id: number, path: string, endStream = false, extra: [string, string][] = []): Promise<void> {
    return this.frame(1, 4 | (endStream ? 1 : 0), id, RawH2.requestBlock(path, extra));
  }

  /** DATA carrying one gRPC message. */
  message(id: number, body: Uint8Array | string, endStream = true): Promise<void> {
    return this.frame(0, endStream ? 1 : 0, id, frame(body));
  }

  windowUpdate(id: number, increment: number): Promise<void> {
    return this.frame(8, 0, id, u32(increment));
  }

  /** The next received frame after the previous `next` that matches, within `ms`. */
  async next(pred: (f: RawFrame) => boolean = () => true, ms = 3000): Promise<RawFrame | undefined> {
    for (let waited = 0; waited <= ms; waited += 5) {
      while (this.#cursor < this.frames.length) {
        const f = this.frames[this.#cursor++];
        if (pred(f)) return f;
      }
      if (this.closed) return undefined;
      await new Promise((r) => setTimeout(r, 5));
    }
    return undefined;
  }

  /** Waits until the server closes the connection (true) or `ms` pass (false). */
  async waitClosed(ms = 3000): Promise<boolean> {
    for (let waited = 0; waited <= ms && !this.closed; waited += 5) {
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.closed;
  }

  /** All DATA payload bytes received on a stream so far. */
  dataOn(id: number): number {
    return this.frames.filter((f) => f.type === 0 && f.id === id).reduce((n, f) => n + f.payload.length, 0);
  }

  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    await this.#reading;
  }

  async #read(): Promise<void> {
    const buf = new Uint8Array(1 << 16);
    let acc = new Uint8Array(0);
    for (;;) {
      let n: number | null;
      try {
        n = await this.conn.read(buf);
      } catch {
        n = null;
      }
      if (n === null) break;
      const next = new Uint8Array(acc.length + n);
      next.set(acc);
      next.set(buf.subarray(0, n), acc.length);
      acc = next;
      let off = 0;
      while (acc.length - off >= 9) {
        const len = (acc[off] << 16) | (acc[off + 1] << 8) | acc[off + 2];
        if (acc.length - off - 9 < len) break;
        const f: RawFrame = {
          type: acc[off + 3],
          flags: acc[off + 4],
          id: new DataView(acc.buffer, acc.byteOffset + off + 5, 4).getUint32(0) & 0x7fffffff,
          payload: acc.slice(off + 9, off + 9 + len),
        };
        off += 9 + len;
        this.#onFrame(f);
      }
      acc = acc.slice(off);
    }
    this.closed = true;
  }

  #onFrame(f: RawFrame): void {
    if (f.type === 4 && (f.flags & 1) === 0 && this.ackSettings) {
      void this.frame(4, 1, 0).catch(() => {});
    }
    if (f.type === 1 || f.type === 9) {
      let p = f.payload;
      if (f.type === 1) {
        let start = 0;
        let end = p.length;
        if (f.flags & 8) {
          start = 1;
          end -= p[0];
        }
        if (f.flags & 0x20) start += 5;
        p = p.subarray(start, end);
        this.#pendingBlock = { id: f.id, flags: f.flags, parts: [] };
      }
      const block = this.#pendingBlock!;
      block.parts.push(p);
      if (f.flags & 4) {
        const all = new Uint8Array(block.parts.reduce((n, x) => n + x.length, 0));
        let o = 0;
        for (const x of block.parts) {
          all.set(x, o);
          o += x.length;
        }
        const out: string[] = [];
        this.#decoder.decode(all, out);
        const headers: [string, string][] = [];
        for (let i = 0; i < out.length; i += 2) headers.push([out[i], out[i + 1]]);
        this.frames.push({ type: 1, flags: block.flags | 4, id: block.id, payload: all, headers });
        this.#pendingBlock = undefined;
      }
      return;
    }
    this.frames.push(f);
  }
}
