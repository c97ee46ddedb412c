/**
 * This codec against protobufjs on the messages of the hot path. protobufjs loads etcd's proto files at
 * startup (keepCase, Long for 64-bit fields); both sides encode prebuilt messages and decode the same
 * bytes, so the figures compare the codecs alone.
 *
 *     deno bench -A server/pb/codec_bench.ts    Deno's bench runner
 *     deno run -A server/pb/codec_bench.ts      a quick table: both codecs in alternating rounds, median
 *                                               of each (steadier than the runner on a shared machine)
 *
 * @module
 */
import protobuf from "protobufjs";
import {
  decodePutRequest,
  encodePutRequest,
  encodePutResponse,
  encodeRangeResponse,
  encodeWatchResponse,
  type Event,
  EventType,
  type KeyValue,
  type PutResponse,
  type RangeResponse,
  type ResponseHeader,
  type WatchResponse,
} from "./rpc.ts";
import { PROTO_DIR } from "./test_util.ts";

interface Case {
  name: string;
  group: string;
  baseline?: boolean;
  fn: () => void;
}

const cases: Case[] = [];

/** Registers a case with Deno's bench runner and for the table of `deno run`. */
function bench(c: Case): void {
  cases.push(c);
  Deno.bench(c);
}

const root = new protobuf.Root();
await root.load(`${PROTO_DIR}/rpc.proto`, { keepCase: true });
const PbPutRequest = root.lookupType("etcdserverpb.PutRequest");
const PbPutResponse = root.lookupType("etcdserverpb.PutResponse");
const PbRangeResponse = root.lookupType("etcdserverpb.RangeResponse");
const PbWatchResponse = root.lookupType("etcdserverpb.WatchResponse");

const enc = new TextEncoder();
const value256 = new Uint8Array(256).map((_, i) => (i * 31) & 0xff);

const header: ResponseHeader = {
  clusterId: 0xcdf818194e3a8c32n,
  memberId: 0x8e9e05c52164694dn,
  revision: 1_234_567,
  raftTerm: 4,
};
const pbHeader = {
  cluster_id: "14841639068965178418",
  member_id: "10276657743932975437",
  revision: 1_234_567,
  raft_term: 4,
};

function kv(i: number): KeyValue {
  return {
    key: enc.encode(`/registry/pods/default/pod-${String(i).padStart(6, "0")}`),
    createRevision: 1_000_000 + i,
    modRevision: 1_200_000 + i,
    version: 3,
    value: value256,
    lease: 0n,
  };
}

function pbKv(k: KeyValue): Record<string, unknown> {
  return {
    key: k.key,
    create_revision: k.createRevision,
    mod_revision: k.modRevision,
    version: k.version,
    value: k.value,
  };
}

// ---- PutRequest decode + PutResponse encode --------------------------------------------------------

const putBytes = encodePutRequest({
  key: enc.encode("/registry/leases/kube-node-lease/node-17"),
  value: value256,
  lease: 0x694d77aa9e38260fn,
  prevKv: false,
  ignoreValue: false,
  ignoreLease: false,
});
const putResponse: PutResponse = { header };
const pbPutResponse = PbPutResponse.fromObject({ header: pbHeader });

bench({
  name: "etcd-ts",
  group: "PutRequest decode + PutResponse encode",
  baseline: true,
  fn: () => {
    const r = decodePutRequest(putBytes);
    if (r.key.length === 0) throw new Error("bad decode");
    encodePutResponse(putResponse);
  },
});

bench({
  name: "protobufjs",
  group: "PutRequest decode + PutResponse encode",
  fn: () => {
    const r = PbPutRequest.decode(putBytes) as unknown as { key: Uint8Array };
    if (r.key.length === 0) throw new Error("bad decode");
    PbPutResponse.encode(pbPutResponse).finish();
  },
});

// ---- RangeResponse with 10 kvs of 256-byte values -------------------------------------------------

const kvs10 = Array.from({ length: 10 }, (_, i) => kv(i));
const rangeResponse: RangeResponse = { header, kvs: kvs10, more: false, count: 10 };
const pbRangeResponse = PbRangeResponse.fromObject({ header: pbHeader, kvs: kvs10.map(pbKv), count: 10 });

if (encodeRangeResponse(rangeResponse).length !== PbRangeResponse.encode(pbRangeResponse).finish().length) {
  throw new Error("the two RangeResponse encodings differ in size");
}

bench({
  name: "etcd-ts",
  group: "RangeResponse encode, 10 kvs x 256 B",
  baseline: true,
  fn: () => {
    encodeRangeResponse(rangeResponse);
  },
});

bench({
  name: "protobufjs",
  group: "RangeResponse encode, 10 kvs x 256 B",
  fn: () => {
    PbRangeResponse.encode(pbRangeResponse).finish();
  },
});

// ---- WatchResponse with 100 events ----------------------------------------------------------------

const events: Event[] = Array.from({ length: 100 }, (_, i) => ({
  type: i % 10 === 9 ? EventType.DELETE : EventType.PUT,
  kv: { ...kv(i), value: value256.subarray(0, 64) },
}));
const watchResponse: WatchResponse = {
  header,
  watchId: 7,
  created: false,
  canceled: false,
  compactRevision: 0,
  cancelReason: "",
  fragment: false,
  events,
};
const pbWatchResponse = PbWatchResponse.fromObject({
  header: pbHeader,
  watch_id: 7,
  events: events.map((e) => (e.type ? { type: e.type, kv: pbKv(e.kv) } : { kv: pbKv(e.kv) })),
});

if (encodeWatchResponse(watchResponse).length !== PbWatchResponse.encode(pbWatchResponse).finish().length) {
  throw new Error("the two WatchResponse encodings differ in size");
}

bench({
  name: "etcd-ts",
  group: "WatchResponse encode, 100 events",
  baseline: true,
  fn: () => {
    encodeWatchResponse(watchResponse);
  },
});

bench({
  name: "protobufjs",
  group: "WatchResponse encode, 100 events",
  fn: () => {
    PbWatchResponse.encode(pbWatchResponse).finish();
  },
});

/** Runs every group's cases in alternating rounds of `ms` milliseconds each; prints medians per call. */
function table(rounds = 30, ms = 20): void {
  const groups = [...new Set(cases.map((c) => c.group))];
  for (const group of groups) {
    const members = cases.filter((c) => c.group === group);
    const perCall = new Map<string, number[]>(members.map((c) => [c.name, []]));
    for (let round = 0; round < rounds; round++) {
      for (const c of round % 2 ? members : [...members].reverse()) {
        let n = 0;
        const start = performance.now();
        let now = start;
        while (now - start < ms) {
          for (let i = 0; i < 64; i++) c.fn();
          n += 64;
          now = performance.now();
        }
        if (round >= 3) perCall.get(c.name)!.push(((now - start) / n) * 1e6); // the first rounds warm up
      }
    }
    console.log(group);
    for (const c of members) {
      const xs = perCall.get(c.name)!.sort((a, b) => a - b);
      const median = xs[Math.floor(xs.length / 2)];
      const text = median < 1000 ? `${median.toFixed(0)} ns` : `${(median / 1000).toFixed(2)} µs`;
      console.log(`  ${c.name.padEnd(12)} ${text.padStart(10)}   (min ${(xs[0] / 1000).toFixed(3)} µs)`);
    }
  }
}

if (import.meta.main) table();
