/**
 * Fuzzing a running member's client port: mutated HTTP/2 gRPC requests (preface, SETTINGS, HEADERS,
 * DATA), HTTP/1.1 requests and random bytes, each on its own connection. Whatever arrives, the member
 * must go on: afterwards it still answers gRPC and /health, holds the data written before, and its memory
 * has not grown without bound.
 */
import { assert, assertEquals } from "../assert.ts";
import { defaultConfig } from "../../server/config/types.ts";
import { createLogger } from "../../server/logger.ts";
import { startEtcd } from "../../mod.ts";
import { encodePutRequest, encodeRangeRequest } from "../../server/pb/rpc.ts";
import { ByteWriter, HpackEncoder } from "../../server/transport/h2/hpack.ts";
import { Flag, FrameType, PREFACE, writeFrameHeader } from "../../server/transport/h2/frames.ts";
import { frameMessage } from "../../server/transport/grpc.ts";
import { ctlOk, freePort, HAVE_ETCDCTL } from "../helpers.ts";
import { fuzz, log, RUNS } from "./fuzz.ts";

const HOST = "127.0.2.108";
const te = new TextEncoder();

function frame(type: number, flags: number, stream: number, payload: Uint8Array): Uint8Array {
  const w = new ByteWriter();
  writeFrameHeader(w, payload.length, type, flags, stream);
  w.ensure(payload.length);
  w.buf.set(payload, w.len);
  w.len += payload.length;
  return w.buf.slice(0, w.len);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** A whole gRPC call on a new HTTP/2 connection, as a client's bytes. */
function grpcCall(authority: string, method: string, message: Uint8Array): Uint8Array {
  const enc = new HpackEncoder();
  const w = new ByteWriter();
  enc.encode([
    ":method",
    "POST",
    ":scheme",
    "http",
    ":path",
    method,
    ":authority",
    authority,
    "content-type",
    "application/grpc",
    "te",
    "trailers",
  ], w);
  return concat([
    PREFACE,
    frame(FrameType.SETTINGS, 0, 0, new Uint8Array(0)),
    frame(FrameType.HEADERS, Flag.END_HEADERS, 1, w.buf.slice(0, w.len)),
    frame(FrameType.DATA, Flag.END_STREAM, 1, frameMessage(message)),
    frame(FrameType.WINDOW_UPDATE, 0, 0, new Uint8Array([0, 0, 0x10, 0])),
    frame(FrameType.PING, 0, 0, new Uint8Array(8)),
  ]);
}

async function exchange(port: number, input: Uint8Array): Promise<void> {
  const conn = await Deno.connect({ hostname: HOST, port });
  try {
    await conn.write(input).catch(() => 0);
    // read what the member answers for a short while, or until it closes the connection
    const buf = new Uint8Array(64 * 1024);
    const deadline = Date.now() + 30;
    while (Date.now() < deadline) {
      const n = await Promise.race([
        conn.read(buf).catch(() => null),
        new Promise<"wait">((r) => setTimeout(() => r("wait"), 10)),
      ]);
      if (n === null) break;
    }
  } finally {
    try {
      conn.close();
    } catch {
      // closed by the member already
    }
  }
}

function rssMiB(): number {
  return Deno.memoryUsage().rss / (1024 * 1024);
}

Deno.test({
  name: "fuzz: a member's client port survives mutated HTTP/2, gRPC and HTTP/1.1 input, and goes on serving",
  ignore: !HAVE_ETCDCTL,
  // the member's own timers and sockets end with close(); readers left by raced reads are cancelled
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "etcd-ts-fuzz-" });
    const config = defaultConfig();
    const peer = new URL(`http://${HOST}:${freePort(HOST)}`);
    const client = new URL(`http://${HOST}:${freePort(HOST)}`);
    config.name = "fuzz";
    config.dataDir = `${dir}/fuzz.etcd`;
    config.listenClientUrls = [client];
    config.advertiseClientUrls = [client];
    config.listenPeerUrls = [peer];
    config.initialAdvertisePeerUrls = [peer];
    config.initialCluster = new Map([["fuzz", [peer]]]);
    config.enableV2 = true;
    const etcd = await startEtcd(config, { logger: createLogger({ level: "error", write: () => {} }) });
    const endpoint = `${HOST}:${client.port}`;
    try {
      await ctlOk(endpoint, ["put", "before", "fuzz"]);
      const authority = endpoint;
      const key = te.encode("fuzz/key");
      const corpus = [
        grpcCall(
          authority,
          "/etcdserverpb.KV/Put",
          encodePutRequest({
            key,
            value: te.encode("v"),
            lease: 0n,
            prevKv: true,
            ignoreValue: false,
            ignoreLease: false,
          }),
        ),
        grpcCall(
          authority,
          "/etcdserverpb.KV/Range",
          encodeRangeRequest({
            key: te.encode("fuzz/"),
            rangeEnd: te.encode("fuzz0"),
            limit: 0,
            revision: 0,
            sortOrder: 0,
            sortTarget: 0,
            serializable: false,
            keysOnly: false,
            countOnly: false,
            minModRevision: 0,
            maxModRevision: 0,
            minCreateRevision: 0,
            maxCreateRevision: 0,
          }),
        ),
        te.encode(`GET /health HTTP/1.1\r\nHost: ${authority}\r\n\r\n`),
        te.encode(`PUT /v2/keys/fuzz?value=1 HTTP/1.1\r\nHost: ${authority}\r\nContent-Length: 0\r\n\r\n`),
        te.encode(
          `POST /v3/kv/range HTTP/1.1\r\nHost: ${authority}\r\nContent-Length: 14\r\n\r\n{"key":"Zm9v"}`,
        ),
      ];
      const before = rssMiB();
      const report = await fuzz({
        name: "client port",
        corpus,
        run: (input) => exchange(Number(client.port), input),
        // the fuzzer's own socket may be reset by the member: that is the member refusing, not failing
        expected: (err) =>
          err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BrokenPipe,
      });
      log(report);
      assert(report.inputs >= Math.min(RUNS, 50), `only ${report.inputs} inputs in the time allowed`);
      // the member goes on: gRPC, health, and the data written before
      assertEquals((await ctlOk(endpoint, ["get", "before", "--print-value-only"])).trim(), "fuzz");
      await ctlOk(endpoint, ["put", "after", "fuzz"]);
      const health = await fetch(`http://${endpoint}/health`);
      assertEquals(await health.text(), '{"health":"true"}');
      // memory: bounded (each input is at most a few KiB; a leak per connection would show)
      const grown = rssMiB() - before;
      assert(grown < 150, `RSS grew by ${grown.toFixed(0)} MiB over ${report.inputs} inputs`);
    } finally {
      await etcd.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
