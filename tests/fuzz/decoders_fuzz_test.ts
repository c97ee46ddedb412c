/**
 * Fuzzing the decoders that read bytes from the network: every etcd v3 message (server/pb/rpc.ts), the
 * Raft messages between members (server/pb/raftpb.ts), HPACK header blocks, and the peer port's HTTP
 * heads. Bad input must end in the decoder's own error, never another exception, and what decodes must
 * encode again.
 */
import { assert } from "../assert.ts";
import * as rpc from "../../server/pb/rpc.ts";
import * as raftpb from "../../server/pb/raftpb.ts";
import { ProtobufDecodeError } from "../../server/pb/wire.ts";
import { ByteWriter, HpackDecoder, HpackEncoder, HpackError } from "../../server/transport/h2/hpack.ts";
import { parseHead, PeerProtocolError } from "../../server/peer/http.ts";
import { EntryType, MessageType } from "../../raft/types.ts";
import { fuzz, log } from "./fuzz.ts";

const te = new TextEncoder();
const isDecodeError = (err: unknown) => err instanceof ProtobufDecodeError;

/** Valid etcd v3 messages of many shapes, encoded: the corpus every rpc decoder starts from. */
function rpcCorpus(): Uint8Array[] {
  const key = te.encode("foo"), end = te.encode("fop"), value = te.encode("bar".repeat(20));
  const put = { key, value, lease: 0x1234n, prevKv: true, ignoreValue: false, ignoreLease: false };
  const range = {
    key,
    rangeEnd: end,
    limit: 10,
    revision: 5,
    sortOrder: 1,
    sortTarget: 2,
    serializable: true,
    keysOnly: false,
    countOnly: false,
    minModRevision: 1,
    maxModRevision: 9,
    minCreateRevision: 0,
    maxCreateRevision: 0,
  };
  const header = { clusterId: 0xfedcba9876543210n, memberId: 7n, revision: 42, raftTerm: 3 };
  const kv = { key, createRevision: 2, modRevision: 3, version: 1, value, lease: 0n };
  return [
    rpc.encodePutRequest(put),
    rpc.encodeRangeRequest(range),
    rpc.encodeDeleteRangeRequest({ key, rangeEnd: end, prevKv: true }),
    rpc.encodeTxnRequest({
      compare: [{
        result: 0,
        target: 1,
        key,
        rangeEnd: new Uint8Array(0),
        version: 3,
        createRevision: 0,
        modRevision: 0,
        value: new Uint8Array(0),
        lease: 0n,
      }],
      success: [{ requestPut: put }, { requestRange: range }],
      failure: [{ requestDeleteRange: { key, rangeEnd: end, prevKv: false } }],
    }),
    rpc.encodeWatchRequest({
      createRequest: {
        key,
        rangeEnd: end,
        startRevision: 3,
        progressNotify: true,
        filters: [0],
        prevKv: true,
        watchId: 1,
        fragment: false,
      },
    }),
    rpc.encodeRangeResponse({ header, kvs: [kv, kv], more: true, count: 2 }),
    rpc.encodeLeaseGrantRequest({ TTL: 60, ID: 0n }),
    rpc.encodeAuthenticateRequest({ name: "root", password: "secret" }),
    rpc.encodeMemberAddRequest({ peerURLs: ["http://127.0.0.1:2380"], isLearner: true }),
  ];
}

Deno.test("fuzz: every etcd v3 message decoder refuses bad bytes with its own error, and re-encodes what it decodes", async () => {
  const corpus = rpcCorpus();
  const decoders = Object.entries(rpc).filter(([name, f]) =>
    name.startsWith("decode") && typeof f === "function"
  );
  assert(decoders.length > 50, `only ${decoders.length} decoders found`);
  const encoders = rpc as unknown as Record<string, (m: unknown) => Uint8Array>;
  for (const [name, decode] of decoders) {
    const encode = encoders[name.replace(/^decode/, "encode")];
    const report = await fuzz({
      name: `rpc.${name}`,
      corpus,
      run(input) {
        const m = (decode as (b: Uint8Array) => unknown)(input);
        if (typeof encode === "function") encode(m);
      },
      expected: isDecodeError,
    });
    assert(report.inputs > 0);
  }
});

Deno.test("fuzz: Raft message decoders (what members send each other) refuse bad bytes with their own error", async () => {
  const entry = { term: 3, index: 9, type: EntryType.Normal, data: te.encode("payload") };
  const snapshot = {
    data: te.encode("snap"),
    metadata: {
      confState: {
        voters: [1n, 2n, 3n],
        learners: [4n],
        votersOutgoing: [],
        learnersNext: [],
        autoLeave: false,
      },
      index: 5,
      term: 2,
    },
  };
  const message = {
    type: MessageType.App,
    to: 2n,
    from: 1n,
    term: 3,
    logTerm: 3,
    index: 8,
    entries: [entry, entry],
    commit: 7,
    reject: false,
    rejectHint: 0,
    context: new Uint8Array(0),
  };
  const corpus = [
    raftpb.encodeEntry(entry),
    raftpb.encodeMessage(message),
    raftpb.encodeMessage({ ...message, type: MessageType.Snap, entries: [], snapshot }),
    raftpb.encodeHardState({ term: 3, vote: 1n, commit: 7 }),
    raftpb.encodeSnapshot(snapshot),
  ];
  const targets: [string, (b: Uint8Array) => unknown, (m: never) => Uint8Array][] = [
    ["decodeEntry", raftpb.decodeEntry, raftpb.encodeEntry],
    ["decodeMessage", raftpb.decodeMessage, raftpb.encodeMessage],
    ["decodeSnapshot", raftpb.decodeSnapshot, raftpb.encodeSnapshot],
    ["decodeHardState", raftpb.decodeHardState, raftpb.encodeHardState],
    ["decodeConfState", raftpb.decodeConfState, raftpb.encodeConfState],
    ["decodeSnapshotMetadata", raftpb.decodeSnapshotMetadata, raftpb.encodeSnapshotMetadata],
  ];
  for (const [name, decode, encode] of targets) {
    log(
      await fuzz({
        name: `raftpb.${name}`,
        corpus,
        run: (input) => void encode(decode(input) as never),
        expected: isDecodeError,
      }),
    );
  }
});

Deno.test("fuzz: HPACK header blocks: bad blocks are HPACK errors, and the decoder stays usable for valid ones", async () => {
  const enc = new HpackEncoder();
  const lists = [
    [":method", "POST", ":scheme", "http", ":path", "/etcdserverpb.KV/Put", ":authority", "127.0.0.1:2379"],
    ["content-type", "application/grpc", "te", "trailers", "grpc-timeout", "5S", "token", "x".repeat(300)],
    [":status", "200", "grpc-status", "0", "grpc-message", "etcdserver: request timed out"],
  ];
  const corpus = lists.map((l) => {
    const w = new ByteWriter();
    enc.encode(l, w);
    return w.buf.slice(0, w.len);
  });
  log(
    await fuzz({
      name: "hpack",
      corpus,
      run(input) {
        // a fresh decoder per input: a connection's decoder is discarded after a compression error
        const d = new HpackDecoder(4096);
        const out: string[] = [];
        d.decode(input, out);
        for (const s of out) assert(typeof s === "string");
      },
      expected: (err) => err instanceof HpackError,
    }),
  );
});

Deno.test("fuzz: the peer port's HTTP heads: malformed heads are protocol errors", async () => {
  const corpus = [
    "POST /raft/stream/message/8e9e05c52164694d HTTP/1.1\r\nHost: 127.0.0.1:2380\r\nX-Server-From: 8e9e05c52164694d\r\nX-Etcd-Cluster-ID: cdf818194e3a8c32\r\nContent-Length: 12",
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 44",
    "GET /version HTTP/1.1\r\nHost: a",
  ].map((s) => te.encode(s));
  log(
    await fuzz({
      name: "peer http head",
      corpus,
      run(input) {
        const h = parseHead(input);
        assert(h !== undefined);
      },
      expected: (err) => err instanceof PeerProtocolError,
    }),
  );
});
