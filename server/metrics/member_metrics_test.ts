import { assert, assertEquals } from "../../tests/assert.ts";
import { join } from "node:path";
import { MemberMetrics, type MemberView } from "./member_metrics.ts";
import { GRPC_CODE_NAMES } from "./grpc_metrics.ts";
import { families, sample } from "./test_util.ts";
import { GrpcCall, GrpcRouter } from "../transport/grpc.ts";
import { GrpcError, Status, type StatusCode } from "../transport/status.ts";
import { Wal } from "../../storage/wal.ts";
import { PeerTransport } from "../peer/transport.ts";
import { defaultConfig } from "../config/mod.ts";
import { type Etcd, startEtcd } from "../../mod.ts";
import { createLogger } from "../logger.ts";
import { encodePutRequest, type PutRequest } from "../pb/rpc.ts";
import { freePorts, waitUntil } from "../../tests/helpers.ts";

/** A call that answers into nothing: enough to drive a GrpcCall through its life. */
class SilentCall extends GrpcCall {
  protected readMetadata(): Map<string, string> {
    return new Map();
  }
  protected writeMessage(_message: Uint8Array): void {}
  protected writeUnary(_message: Uint8Array): void {}
  protected writeStatus(_status: StatusCode, _encodedMessage: string): void {}
  protected bufferedBytes(): number {
    return 0;
  }
  waitDrain(): Promise<void> {
    return Promise.resolve();
  }
}

/** One framed message (5-byte gRPC prefix). */
function framed(body: string): Uint8Array {
  const b = new TextEncoder().encode(body);
  const out = new Uint8Array(b.length + 5);
  out[4] = b.length;
  out.set(b, 5);
  return out;
}

function fakeView(over: Partial<MemberView> = {}): MemberView {
  return {
    memberId: 0x8e9e05c52164694dn,
    serverVersion: "3.5.0",
    clusterVersion: () => "3.5.0",
    hasLeader: () => true,
    isLeader: () => false,
    isLearner: () => false,
    committedIndex: () => 7,
    appliedIndex: () => 6,
    pendingProposals: () => 1,
    dbSizeBytes: () => 4096,
    dbSizeInUseBytes: () => 2048,
    quotaBytes: () => 1024,
    keys: () => 3,
    watchers: () => 2,
    currentRevision: () => 9,
    compactRevision: () => 4,
    peerTraffic: () => [[0xan, { sent: 100, received: 50 }]],
    ...over,
  };
}

Deno.test("metrics: the member's state is read when scraped, under etcd's names and labels", async () => {
  const m = new MemberMetrics({ processMetrics: false });
  let leader = false;
  m.bind(fakeView({ isLeader: () => leader }));
  let text = await m.text();
  assertEquals(sample(text, "etcd_server_is_leader"), 0);
  leader = true;
  text = await m.text();
  assertEquals(sample(text, "etcd_server_is_leader"), 1);
  assertEquals(sample(text, "etcd_server_has_leader"), 1);
  assertEquals(sample(text, "etcd_server_proposals_committed_total"), 7);
  assertEquals(sample(text, "etcd_server_proposals_applied_total"), 6);
  assertEquals(sample(text, "etcd_server_proposals_pending"), 1);
  assertEquals(sample(text, "etcd_server_id", { server_id: "8e9e05c52164694d" }), 1);
  assertEquals(sample(text, "etcd_server_version", { server_version: "3.5.0" }), 1);
  assertEquals(sample(text, "etcd_cluster_version", { cluster_version: "3.5" }), 1);
  assertEquals(sample(text, "etcd_mvcc_db_total_size_in_bytes"), 4096);
  assertEquals(sample(text, "etcd_mvcc_db_total_size_in_use_in_bytes"), 2048);
  assertEquals(sample(text, "etcd_debugging_mvcc_keys_total"), 3);
  assertEquals(sample(text, "etcd_debugging_mvcc_watcher_total"), 2);
  assertEquals(sample(text, "etcd_network_peer_sent_bytes_total", { To: "a" }), 100);
  assertEquals(sample(text, "etcd_network_peer_received_bytes_total", { From: "a" }), 50);
  const f = families(text);
  assertEquals(f.get("etcd_server_proposals_committed_total")?.type, "gauge");
  assertEquals(f.get("etcd_server_leader_changes_seen_total")?.type, "counter");
  assertEquals(f.get("etcd_disk_wal_fsync_duration_seconds")?.type, "histogram");
});

Deno.test("metrics: leader changes count new leaders only; late heartbeats count as send failures", async () => {
  const m = new MemberMetrics({ processMetrics: false });
  m.leaderIs(0n);
  m.leaderIs(1n);
  m.leaderIs(1n);
  m.leaderIs(0n); // lost the leader: not a change yet
  m.leaderIs(2n);
  assertEquals(sample(await m.text(), "etcd_server_leader_changes_seen_total"), 2);
  assertEquals(m.heartbeatSent(5n, 1000, 100), 0);
  assertEquals(m.heartbeatSent(5n, 1150, 100), 0); // 150 ms after: on time for 100 ms heartbeats
  assertEquals(m.heartbeatSent(5n, 1400, 100), 50); // 250 ms after: late by 50 ms past twice the interval
  m.resetHeartbeats();
  assertEquals(m.heartbeatSent(5n, 9000, 100), 0); // first after a new term of leadership
  assertEquals(sample(await m.text(), "etcd_server_heartbeat_send_failures_total"), 1);
});

Deno.test("metrics: apply batches fill the backend commit histogram, slow ones count as slow applies", async () => {
  const m = new MemberMetrics({ processMetrics: false });
  m.observeApplyBatch(0.5);
  m.observeApplyBatch(150);
  const text = await m.text();
  assertEquals(sample(text, "etcd_disk_backend_commit_duration_seconds_count"), 2);
  assertEquals(sample(text, "etcd_disk_backend_commit_duration_seconds_bucket", { le: "0.001" }), 1);
  assertEquals(sample(text, "etcd_disk_backend_commit_duration_seconds_bucket", { le: "0.256" }), 2);
  assertEquals(sample(text, "etcd_server_slow_apply_total"), 1);
});

Deno.test("metrics: gRPC calls count by method and code; a failed call counts its code", async () => {
  const m = new MemberMetrics({ processMetrics: false });
  const router = new GrpcRouter();
  router.unary("/etcdserverpb.KV/Range", (req) => {
    if (new TextDecoder().decode(req) === "bad") throw new GrpcError(Status.OUT_OF_RANGE, "future rev");
    return req;
  });
  router.observe(m.grpc);
  // registered after observe: counted too
  router.stream("/etcdserverpb.Watch/Watch", (stream) => ({
    onMessage: (msg) => void stream.send(msg),
    onHalfClose: () => stream.end(),
    onCancel: () => {},
  }));
  for (const body of ["ok", "bad", "ok"]) {
    const call = new SilentCall("/etcdserverpb.KV/Range");
    call.start(router, 1024, undefined, undefined);
    call.receive(framed(body));
  }
  const watch = new SilentCall("/etcdserverpb.Watch/Watch");
  watch.start(router, 1024, undefined, undefined);
  watch.receive(framed("a"));
  watch.receive(framed("b"));
  watch.cancel();
  // unknown methods are answered without counting
  new SilentCall("/etcdserverpb.KV/Nope").start(router, 1024, undefined, undefined);
  const text = await m.text();
  const range = { grpc_type: "unary", grpc_service: "etcdserverpb.KV", grpc_method: "Range" };
  assertEquals(sample(text, "grpc_server_started_total", range), 3);
  assertEquals(sample(text, "grpc_server_handled_total", { ...range, grpc_code: "OK" }), 2);
  assertEquals(sample(text, "grpc_server_handled_total", { ...range, grpc_code: "OutOfRange" }), 1);
  assertEquals(sample(text, "grpc_server_handled_total", { ...range, grpc_code: "Unavailable" }), 0);
  assertEquals(sample(text, "grpc_server_msg_received_total", range), 3);
  assertEquals(sample(text, "grpc_server_msg_sent_total", range), 2);
  const w = { grpc_type: "bidi_stream", grpc_service: "etcdserverpb.Watch", grpc_method: "Watch" };
  assertEquals(sample(text, "grpc_server_msg_received_total", w), 2);
  assertEquals(sample(text, "grpc_server_msg_sent_total", w), 2);
  assertEquals(sample(text, "grpc_server_handled_total", { ...w, grpc_code: "Canceled" }), 1);
  assertEquals(m.grpc.receivedTotal(), 5, "messages received over every method");
  // every code of every method is listed, as go-grpc-prometheus initialises them
  const handled = text.split("\n").filter((l) => l.startsWith("grpc_server_handled_total{"));
  assertEquals(handled.length, 2 * GRPC_CODE_NAMES.length);
  assert(!text.includes("Nope"));
  assert(!text.includes("grpc_server_handling_seconds"), "basic has no handling histograms");
});

Deno.test("metrics: --metrics extensive times every call into grpc_server_handling_seconds", async () => {
  let now = 0;
  const router = new GrpcRouter();
  router.unary("/etcdserverpb.KV/Put", async (req) => {
    now += 30; // the handler takes 30 ms of the test's clock
    return await Promise.resolve(req);
  });
  const extensive = new MemberMetrics({ processMetrics: false, level: "extensive", now: () => now });
  router.observe(extensive.grpc);
  // a router observed after its methods were registered counts them all the same
  const call = new SilentCall("/etcdserverpb.KV/Put");
  call.start(router, 1024, undefined, undefined);
  call.receive(framed("x"));
  await waitUntil(() => call.closed, 1000, () => "the call to end");
  const text = await extensive.text();
  const put = { grpc_type: "unary", grpc_service: "etcdserverpb.KV", grpc_method: "Put" };
  assertEquals(sample(text, "grpc_server_handling_seconds_count", put), 1);
  assertEquals(sample(text, "grpc_server_handling_seconds_bucket", { ...put, le: "0.025" }), 0);
  assertEquals(sample(text, "grpc_server_handling_seconds_bucket", { ...put, le: "0.05" }), 1);
  assertEquals(families(text).get("grpc_server_handling_seconds")?.type, "histogram");
});

Deno.test("metrics: the WAL tells its fsync durations to an injected observer", async () => {
  const dir = await Deno.makeTempDir({ prefix: "etcd-ts-metrics-" });
  try {
    const m = new MemberMetrics({ processMetrics: false });
    const wal = await Wal.create(join(dir, "wal"), { memberId: 1n, clusterId: 2n });
    const seen: number[] = [];
    wal.observeFsync({ observe: (ms) => (seen.push(ms), m.observeWalFsync(ms)) });
    for (let i = 1; i <= 3; i++) {
      wal.append([{ term: 1, index: i, type: 0, data: new Uint8Array(8) }]);
      await wal.sync();
    }
    await wal.close();
    assertEquals(seen.length, 3);
    assert(seen.every((ms) => ms >= 0));
    assertEquals(sample(await m.text(), "etcd_disk_wal_fsync_duration_seconds_count"), 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("metrics: the peer transport probes its peers and counts their stream bytes", async () => {
  const host = "127.0.2.34";
  const rtts: [bigint, number][] = [];
  const make = (id: bigint) =>
    new PeerTransport({
      memberId: id,
      clusterId: 0xc1a5n,
      listen: [new URL(`http://${host}:0`)],
      onMessage: () => {},
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      onRoundTrip: (to, ms) => rtts.push([to, ms]),
      probeIntervalMs: 100,
      keepaliveMs: 100,
    });
  const a = make(1n);
  const b = make(2n);
  await a.start();
  await b.start();
  try {
    a.addPeer(2n, [`http://${host}:${b.boundPorts[0]}`]);
    b.addPeer(1n, [`http://${host}:${a.boundPorts[0]}`]);
    await waitUntil(() => a.activeSince(2n) !== undefined, 5000, () => "a's stream to b");
    a.send([
      {
        type: 8, // MsgHeartbeat
        to: 2n,
        from: 1n,
        term: 1,
        logTerm: 0,
        index: 0,
        entries: [],
        commit: 0,
        snapshot: undefined,
        reject: false,
        rejectHint: 0,
        context: new Uint8Array(0),
      } as unknown as Parameters<PeerTransport["send"]>[0][0],
    ]);
    await waitUntil(
      () => (b.traffic().get(1n)?.received ?? 0) > 0 && rtts.some(([to]) => to === 2n),
      5000,
      () => `traffic ${JSON.stringify([...b.traffic()], (_, v) => typeof v === "bigint" ? String(v) : v)}`,
    );
    assert((a.traffic().get(2n)?.sent ?? 0) >= (b.traffic().get(1n)?.received ?? 0));
    assert(rtts.every(([, ms]) => ms >= 0));
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("metrics: a put moves proposals committed and applied and etcd_mvcc_put_total", async () => {
  const host = "127.0.2.33";
  const dir = await Deno.makeTempDir({ prefix: "etcd-ts-metrics-" });
  const [peerPort] = freePorts(host, 1);
  const config = defaultConfig();
  const peer = new URL(`http://${host}:${peerPort}`);
  config.name = "m0";
  config.dataDir = join(dir, "m0");
  config.listenClientUrls = [new URL(`http://${host}:0`)];
  config.advertiseClientUrls = [new URL(`http://${host}:0`)];
  config.listenPeerUrls = [peer];
  config.initialAdvertisePeerUrls = [peer];
  config.initialCluster = new Map([["m0", [peer]]]);
  let etcd: Etcd | undefined;
  try {
    etcd = await startEtcd(config, { logger: createLogger({ level: "error", write: () => {} }) });
    const m = etcd.server.metrics;
    const before = await m.text();
    const r: PutRequest = {
      key: new TextEncoder().encode("k"),
      value: new TextEncoder().encode("v"),
      lease: 0n,
      prevKv: false,
      ignoreValue: false,
      ignoreLease: false,
    };
    await etcd.server.put(r, encodePutRequest(r));
    const after = await m.text();
    assertEquals(sample(after, "etcd_mvcc_put_total"), (sample(before, "etcd_mvcc_put_total") ?? 0) + 1);
    assertEquals(
      sample(after, "etcd_server_proposals_committed_total"),
      sample(before, "etcd_server_proposals_committed_total")! + 1,
    );
    assertEquals(
      sample(after, "etcd_server_proposals_applied_total"),
      sample(before, "etcd_server_proposals_applied_total")! + 1,
    );
    assertEquals(sample(after, "etcd_debugging_mvcc_keys_total"), 1);
    assertEquals(sample(after, "etcd_server_is_leader"), 1);
    assertEquals(sample(after, "etcd_server_leader_changes_seen_total"), 1);
    assert(sample(after, "etcd_disk_wal_fsync_duration_seconds_count")! > 0);
    // the process and runtime collectors are there
    assert(sample(after, "process_resident_memory_bytes")! > 0, "process_resident_memory_bytes");
    // with the client URL: /metrics over plain HTTP/1.1
    const res = await fetch(new URL("/metrics", etcd.clientUrls[0]));
    assertEquals(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    assertEquals(sample(await res.text(), "etcd_mvcc_put_total"), 1);
  } finally {
    await etcd?.close();
    await Deno.remove(dir, { recursive: true });
  }
});
