/**
 * Helpers of the auth end-to-end tests (`auth_e2e_test.ts`): unary gRPC calls over a raw HTTP/2
 * connection with a token of the caller's choosing (etcdctl and the etcd3 client authenticate again by
 * themselves, which would hide an expired or foreign token), the few protobuf messages those calls need,
 * and etcdctl runs as a given user.
 *
 * @module
 */
import http2 from "node:http2";
import { assert, assertEquals } from "./assert.ts";
import { ctlError, parseEndpointStatus } from "./cluster.ts";
import { type CtlResult, etcdctl } from "./helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

// ---- protobuf: just what the calls below send and read

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** A length-delimited field (`string` or `bytes`) of protobuf number `field`. */
export function bytesField(field: number, value: string | Uint8Array): Uint8Array {
  const v = typeof value === "string" ? enc.encode(value) : value;
  return new Uint8Array([...varint((field << 3) | 2), ...varint(v.length), ...v]);
}

/** Concatenates encoded fields into one message. */
export function message(...fields: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(fields.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of fields) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

/** The length-delimited fields of a message, by field number (varint and fixed fields skipped). */
export function lengthDelimited(msg: Uint8Array): Map<number, Uint8Array[]> {
  const out = new Map<number, Uint8Array[]>();
  let at = 0;
  const readVarint = (): number => {
    let n = 0;
    let mul = 1;
    for (;;) {
      const b = msg[at++];
      if (b === undefined) throw new Error("truncated protobuf message");
      n += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) return n;
    }
  };
  while (at < msg.length) {
    const tag = readVarint();
    const field = Math.floor(tag / 8);
    switch (tag & 7) {
      case 0:
        readVarint();
        break;
      case 1:
        at += 8;
        break;
      case 5:
        at += 4;
        break;
      case 2: {
        const len = readVarint();
        const list = out.get(field) ?? [];
        list.push(msg.subarray(at, at + len));
        out.set(field, list);
        at += len;
        break;
      }
      default:
        throw new Error(`unexpected protobuf wire type in tag ${tag}`);
    }
  }
  return out;
}

// ---- unary gRPC on a connection of its own

/** The outcome of a unary call: the gRPC status code and message, and the response message, if any. */
export interface Reply {
  status: number;
  message: string;
  body: Uint8Array;
}

/**
 * One unary gRPC call to `path` (`/etcdserverpb.KV/Range`) on a new cleartext HTTP/2 connection, with
 * metadata `token` when given. The server is told a deadline of 5 s (grpc-timeout), and the call fails
 * after 10 s whatever happens.
 */
export function unary(endpoint: string, path: string, request: Uint8Array, token?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${endpoint}`);
    const chunks: Uint8Array[] = [];
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`no answer to ${path} from ${endpoint}`));
    }, 10_000);
    const done = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] === undefined) return;
      clearTimeout(timer);
      const data = message(...chunks);
      // one length-prefixed message at most: skip the 5-byte prefix
      const body = data.length >= 5 ? data.subarray(5) : new Uint8Array(0);
      const raw = String(h["grpc-message"] ?? "");
      resolve({ status: Number(h["grpc-status"]), message: decodeURIComponent(raw), body });
      session.destroy();
    };
    session.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-timeout": "5S",
    };
    if (token !== undefined) headers.token = token;
    const req = session.request(headers);
    req.on("response", done);
    req.on("trailers", done);
    req.on("data", (d: Uint8Array) => chunks.push(d));
    req.on("error", () => {});
    const framed = new Uint8Array(5 + request.length);
    new DataView(framed.buffer).setUint32(1, request.length);
    framed.set(request, 5);
    req.end(framed);
  });
}

/** gRPC status codes the tests expect. */
export const OK = 0;
export const UNAUTHENTICATED = 16;

/** Auth.Authenticate: the token, with the time (performance.now()) the answer arrived. */
export async function authenticate(
  endpoint: string,
  name: string,
  password: string,
): Promise<{ token: string; at: number }> {
  const r = await unary(
    endpoint,
    "/etcdserverpb.Auth/Authenticate",
    message(bytesField(1, name), bytesField(2, password)),
  );
  const at = performance.now();
  assertEquals([r.status, r.message], [OK, ""], `Authenticate ${name} at ${endpoint}`);
  const token = lengthDelimited(r.body).get(2)?.[0];
  assert(token !== undefined && token.length > 0, `Authenticate ${name} at ${endpoint} gave no token`);
  return { token: dec.decode(token), at };
}

/** Auth.Authenticate, for the error it answers. */
export function authenticateReply(endpoint: string, name: string, password: string): Promise<Reply> {
  return unary(
    endpoint,
    "/etcdserverpb.Auth/Authenticate",
    message(bytesField(1, name), bytesField(2, password)),
  );
}

/** KV.Range of one key with `token`: the reply, and the values of the keys returned. */
export async function getWithToken(
  endpoint: string,
  key: string,
  token: string,
): Promise<Reply & { values: string[] }> {
  const r = await unary(endpoint, "/etcdserverpb.KV/Range", bytesField(1, key), token);
  const kvs = r.status === OK ? lengthDelimited(r.body).get(2) ?? [] : [];
  const values = kvs.map((kv) => dec.decode(lengthDelimited(kv).get(5)?.[0] ?? new Uint8Array(0)));
  return { ...r, values };
}

/** KV.Put of `key` = `value` with `token`; throws unless it succeeds. */
export async function putWithToken(
  endpoint: string,
  key: string,
  value: string,
  token: string,
): Promise<void> {
  const r = await unary(
    endpoint,
    "/etcdserverpb.KV/Put",
    message(bytesField(1, key), bytesField(2, value)),
    token,
  );
  assertEquals([r.status, r.message], [OK, ""], `put ${key} at ${endpoint}`);
}

// ---- etcdctl as a user

/** The Raft index `etcdctl endpoint status` reports for `endpoint`, asked as `user`. */
export async function raftIndexOf(endpoint: string, user: string): Promise<number> {
  const [s] = parseEndpointStatus(await okAs(endpoint, user, ["endpoint", "status", "-w", "json"]));
  return s.raftIndex;
}

/** etcdctl with `--user name:password` when `user` is given (none otherwise). */
export function ctlAs(
  endpoint: string,
  user: string | undefined,
  args: string[],
  stdin?: string,
): Promise<CtlResult> {
  return etcdctl(endpoint, [...(user === undefined ? [] : ["--user", user]), ...args], { stdin });
}

/** etcdctl as `user` that must succeed; returns stdout. */
export async function okAs(
  endpoint: string,
  user: string | undefined,
  args: string[],
  stdin?: string,
): Promise<string> {
  const r = await ctlAs(endpoint, user, args, stdin);
  if (r.code !== 0) {
    throw new Error(`etcdctl --user ${user} ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}

/** etcdctl as `user` that must fail with exactly `error` (the text after `Error: `); returns the run. */
export async function failsAs(
  endpoint: string,
  user: string | undefined,
  args: string[],
  error: string,
  stdin?: string,
): Promise<CtlResult> {
  const r = await ctlAs(endpoint, user, args, stdin);
  assert(r.code !== 0, `etcdctl --user ${user} ${args.join(" ")} succeeded: ${r.stdout}`);
  assertEquals(ctlError(r), error, `etcdctl --user ${user} ${args.join(" ")}: ${r.stderr}${r.stdout}`);
  return r;
}
