import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "../../tests/assert.ts";
import { type Message, MessageType } from "../../raft/types.ts";
import {
  ClusterIdMismatchError,
  type PeerHttpRequest,
  PeerTimeoutError,
  type PeerTransportOptions,
  SNAPSHOT_PATH,
  STREAM_PREFIX,
  STREAM_PROTOCOL,
} from "./transport.ts";
import { encodeMessage } from "../pb/raftpb.ts";
import { ConnReader, formatHead } from "./http.ts";
import { writeAll } from "../../storage/fs_util.ts";
import { dialPeer, listenPeer, peerAddress, PeerUrlError } from "./net.ts";
import {
  app,
  CLUSTER,
  heartbeat,
  makeNode,
  type Node,
  rawRequest,
  sleep,
  snapMessage,
  snapshotBody,
  startNode,
  stopAll,
  waitFor,
} from "./test_util.ts";

// Every test takes fresh ports from 24200-24299 so a socket still closing from a previous test never
// collides with a new listener.
let nextPort = 24200;
function port(): number {
  assert(nextPort < 24300, "test ports exhausted");
  return nextPort++;
}

/** Starts `count` members that all know each other. */
async function cluster(count: number, extra: Partial<PeerTransportOptions> = {}): Promise<Node[]> {
  const nodes = Array.from({ length: count }, (_, i) => makeNode(BigInt(i + 1), port(), extra));
  for (const n of nodes) for (const o of nodes) if (o !== n) n.t.addPeer(o.id, [o.url]);
  for (const n of nodes) await n.t.start();
  await waitFor(() => nodes.every((n) => nodes.every((o) => o === n || n.t.activeSince(o.id) !== undefined)));
  return nodes;
}

const enc = new TextEncoder();

Deno.test("peer: two members exchange thousands of messages in order, both directions", async () => {
  const [a, b] = await cluster(2);
  try {
    const N = 5000;
    for (let i = 0; i < N; i++) {
      a.t.send([app(1n, 2n, i)]);
      b.t.send([app(2n, 1n, i)]);
      if (i % 500 === 499) await sleep(0); // let the event loop turn, like a real Ready loop would
    }
    await waitFor(() => a.received.length === N && b.received.length === N, 10_000, "all messages");
    assertEquals(b.received.map((m) => m.index), Array.from({ length: N }, (_, i) => i));
    assertEquals(a.received.map((m) => m.index), Array.from({ length: N }, (_, i) => i));
    // the content arrives intact
    assertEquals(b.received[4321], app(1n, 2n, 4321));
    assertEquals(a.received[17].entries[0].data, app(2n, 1n, 17).entries[0].data);
    assertEquals(a.unreachable, []);
    assertEquals(b.unreachable, []);
    assertEquals(a.t.stats.framesSent, N);
    assertEquals(b.t.stats.framesReceived, N);
    assertEquals(a.t.stats.dropped, 0);
  } finally {
    await stopAll([a, b]);
  }
});

Deno.test("peer: three members, every pair, order kept per sender", async () => {
  const nodes = await cluster(3);
  try {
    const N = 2000;
    for (let i = 0; i < N; i++) {
      for (const n of nodes) n.t.send(nodes.filter((o) => o !== n).map((o) => app(n.id, o.id, i)));
      if (i % 250 === 249) await sleep(0);
    }
    await waitFor(() => nodes.every((n) => n.received.length === 2 * N), 10_000, "all messages");
    for (const n of nodes) {
      for (const o of nodes) {
        if (o === n) continue;
        const from = n.received.filter((m) => m.from === o.id).map((m) => m.index);
        assertEquals(from, Array.from({ length: N }, (_, i) => i), `${o.id} -> ${n.id}`);
      }
      assert(n.received.every((m) => m.to === n.id));
    }
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("peer: messages sent in one turn leave in one write, later ones are pipelined", async () => {
  const [a, b] = await cluster(2);
  try {
    const writes0 = a.t.stats.writes;
    // 1000 separate send() calls within one synchronous turn
    for (let i = 0; i < 1000; i++) a.t.send([app(1n, 2n, i)]);
    await waitFor(() => b.received.length === 1000);
    assertEquals(a.t.stats.framesSent, 1000);
    assertEquals(a.t.stats.writes - writes0, 1, "one turn, one write");

    // many turns while writes are in flight: batches form without any waiting for replies
    const writes1 = a.t.stats.writes;
    for (let turn = 0; turn < 200; turn++) {
      for (let i = 0; i < 50; i++) a.t.send([app(1n, 2n, 1000 + turn * 50 + i)]);
      await Promise.resolve();
    }
    await waitFor(() => b.received.length === 11_000);
    const writes = a.t.stats.writes - writes1;
    assert(writes <= 200, `at most one write per turn, got ${writes}`);
    assertEquals(b.received.map((m) => m.index), Array.from({ length: 11_000 }, (_, i) => i));
    assert(b.t.stats.reads < 11_000, "the receiver reads many frames per read");
  } finally {
    await stopAll([a, b]);
  }
});

Deno.test("peer: a multi-megabyte snapshot arrives intact on its own connection; heartbeats are not blocked", async () => {
  const [a, b] = await cluster(2);
  try {
    const data = new Uint8Array(24 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data[i] = (i / 4096) & 0xff;
    data[data.length - 1] = 0xee;
    const order: string[] = [];
    const received = b.received;
    b.received = new Proxy(received, {
      get(target, prop, recv) {
        if (prop === "push") {
          return (m: Message) => {
            order.push(MessageType[m.type]);
            return target.push(m);
          };
        }
        return Reflect.get(target, prop, recv);
      },
    });
    a.t.send([snapMessage(1n, 2n, data), heartbeat(1n, 2n)]);
    await waitFor(() => a.snapshotStatus.length === 1, 20_000, "snapshot status");
    assertEquals(a.snapshotStatus, [[2n, true]]);
    const snap = received.find((m) => m.type === MessageType.Snap);
    assert(snap?.snapshot, "snapshot delivered");
    assertEquals(snap.snapshot.metadata.index, 1234);
    assertEquals(snap.snapshot.metadata.confState.voters, [1n, 2n]);
    assertEquals(snap.snapshot.data.length, data.length);
    assert(snap.snapshot.data.every((v, i) => v === data[i]), "snapshot bytes intact");
    assertEquals(order.indexOf("Heartbeat") < order.indexOf("Snap"), true, `heartbeat first: ${order}`);
    assertEquals(a.t.stats.snapshotsSent, 1);
    assertEquals(b.t.stats.snapshotsReceived, 1);
    assert(a.logs.some((l) => l.msg === "sent database snapshot"));
    assert(b.logs.some((l) => l.msg === "received database snapshot"));
  } finally {
    await stopAll([a, b]);
  }
});

Deno.test("peer: a snapshot to a member that is down reports failure and unreachable", async () => {
  const a = makeNode(1n, port());
  const dead = port();
  a.t.addPeer(2n, [`http://127.0.0.1:${dead}`]);
  await a.t.start();
  try {
    a.t.send([snapMessage(1n, 2n, new Uint8Array(1000))]);
    await waitFor(() => a.snapshotStatus.length === 1);
    assertEquals(a.snapshotStatus, [[2n, false]]);
    await waitFor(() => a.unreachable.includes(2n));
    assertEquals(a.t.stats.snapshotsFailed, 1);
  } finally {
    await a.t.stop();
  }
});

Deno.test("peer: members that are down or hung do not delay delivery to a live one", async () => {
  // C refuses connections (nothing listens); D accepts TCP but never answers the handshake
  const hung = Deno.listen({ hostname: "127.0.0.1", port: port() });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for (let i = 0; i < 100; i++) held.push(await hung.accept());
    } catch {
      // listener closed
    }
  })();
  const [a, b] = await cluster(2);
  a.t.addPeer(3n, [`http://127.0.0.1:${port()}`]);
  a.t.addPeer(4n, [`http://127.0.0.1:${(hung.addr as Deno.NetAddr).port}`]);
  try {
    const latencies: number[] = [];
    const sentAt = new Map<number, number>();
    const origPush = b.received.push.bind(b.received);
    b.received.push = (...ms: Message[]) => {
      for (const m of ms) latencies.push(performance.now() - sentAt.get(m.index)!);
      return origPush(...ms);
    };
    const ROUNDS = 100;
    for (let i = 0; i < ROUNDS; i++) {
      sentAt.set(i, performance.now());
      a.t.send([app(1n, 3n, i), app(1n, 4n, i), app(1n, 2n, i), heartbeat(1n, 3n), heartbeat(1n, 4n)]);
      await sleep(5);
    }
    await waitFor(() => b.received.length === ROUNDS);
    latencies.sort((x, y) => x - y);
    const p50 = latencies[ROUNDS / 2], p99 = latencies[ROUNDS - 2], max = latencies[ROUNDS - 1];
    console.log(
      `live-peer latency with two peers down: p50 ${p50.toFixed(2)}ms p99 ${p99.toFixed(2)}ms max ${
        max.toFixed(2)
      }ms`,
    );
    assert(p50 < 20, `p50 ${p50}ms`);
    assert(max < 200, `max ${max}ms`);
    assertEquals(b.received.map((m) => m.index), Array.from({ length: ROUNDS }, (_, i) => i));
    assert(a.unreachable.includes(3n) && a.unreachable.includes(4n), "down peers reported unreachable");
    assert(!a.unreachable.includes(2n), "the live peer is never reported");
    assertEquals(a.t.activeSince(3n), undefined);
    assertEquals(a.t.activeSince(4n), undefined);
    assertEquals(a.t.stats.dropped, 4 * ROUNDS);
  } finally {
    await stopAll([a, b]);
    hung.close();
    await accepting;
    for (const c of held) c.close();
  }
});

Deno.test("peer: reconnects after the receiving member restarts", async () => {
  const [a, b] = await cluster(2, { backoffMinMs: 20, backoffMaxMs: 100 });
  let b2: Node | undefined;
  try {
    a.t.send([app(1n, 2n, 0)]);
    await waitFor(() => b.received.length === 1);
    const firstActive = a.t.activeSince(2n);
    assert(firstActive !== undefined);

    await b.t.stop();
    await waitFor(() => a.t.activeSince(2n) === undefined, 5000, "stream loss noticed");
    assert(a.logs.some((l) => l.msg === "lost TCP streaming connection with remote peer"));
    a.t.send([app(1n, 2n, 1)]);
    await waitFor(() => a.unreachable.includes(2n));

    b2 = makeNode(2n, b.port, { backoffMinMs: 20, backoffMaxMs: 100 });
    b2.t.addPeer(1n, [a.url]);
    await b2.t.start();
    await waitFor(() => a.t.activeSince(2n) !== undefined, 5000, "reconnect");
    assert(a.t.activeSince(2n)! >= firstActive);
    assertEquals(a.t.stats.connects, 2);
    for (let i = 2; i < 102; i++) a.t.send([app(1n, 2n, i)]);
    await waitFor(() => b2!.received.length === 100);
    assertEquals(b2.received.map((m) => m.index), Array.from({ length: 100 }, (_, i) => i + 2));
    // and the other direction too
    await waitFor(() => b2!.t.activeSince(1n) !== undefined);
    b2.t.send([heartbeat(2n, 1n)]);
    await waitFor(() => a.received.length === 1);
  } finally {
    await stopAll(b2 ? [a, b2] : [a, b]);
  }
});

Deno.test("peer: a member of another cluster is refused with 412 and reported unreachable", async () => {
  const a = makeNode(1n, port());
  const b = makeNode(2n, port(), { clusterId: 0xbadn });
  a.t.addPeer(2n, [b.url]);
  b.t.addPeer(1n, [a.url]);
  await a.t.start();
  await b.t.start();
  try {
    await waitFor(() => a.t.lastError(2n) !== undefined && a.unreachable.includes(2n));
    const err = a.t.lastError(2n);
    assert(err instanceof ClusterIdMismatchError, String(err));
    assertEquals(err.code, "CLUSTER_ID_MISMATCH");
    assertEquals(err.remoteClusterId, "bad");
    assertEquals(a.t.activeSince(2n), undefined);
    const refusedAtB = b.logs.find((l) => l.msg === "request cluster ID mismatch");
    assert(refusedAtB, "the receiver logs the mismatch");
    assertEquals(refusedAtB.level, "warn");
    assertEquals(refusedAtB.fields?.["remote-peer-cluster-id"], CLUSTER.toString(16));
    assert(a.logs.some((l) => l.msg === "request sent was ignored due to cluster ID mismatch"));
    a.t.send([app(1n, 2n, 0)]);
    b.t.send([app(2n, 1n, 0)]);
    await sleep(50);
    assertEquals(a.received, []);
    assertEquals(b.received, []);

    // the snapshot path refuses too, with the status etcd uses
    const r = await rawRequest(
      b.port,
      formatHead(`POST ${SNAPSHOT_PATH} HTTP/1.1`, {
        "Content-Length": 0,
        "X-Etcd-Cluster-ID": CLUSTER.toString(16),
        "X-Server-From": "1",
        "X-Raft-To": "2",
      }),
    );
    assertEquals(r.status, "412");
    assertMatch(r.body, /cluster ID mismatch/);
  } finally {
    await stopAll([a, b]);
  }
});

Deno.test("peer: requests for another member, from unknown members, or malformed are refused", async () => {
  const [a, b] = await cluster(2);
  try {
    const hdr = (to: string, from = "1") => ({
      "Connection": "Upgrade",
      "Upgrade": STREAM_PROTOCOL,
      "X-Etcd-Cluster-ID": CLUSTER.toString(16),
      "X-Server-From": from,
      "X-Raft-To": to,
    });
    let r = await rawRequest(b.port, formatHead(`POST ${STREAM_PREFIX}/1 HTTP/1.1`, hdr("9")));
    assertEquals([r.status, r.body], ["412", "to field mismatch\n"]);
    r = await rawRequest(b.port, formatHead(`POST ${STREAM_PREFIX}/7 HTTP/1.1`, hdr("2", "7")));
    assertEquals([r.status, r.body], ["404", "error sender not found\n"]);
    r = await rawRequest(b.port, formatHead(`GET ${STREAM_PREFIX}/1 HTTP/1.1`, hdr("2")));
    assertEquals(r.status, "405");

    // a snapshot message whose body names another recipient
    const body = snapshotBody(snapMessage(1n, 9n, new Uint8Array(10)));
    r = await rawRequest(
      b.port,
      formatHead(`POST ${SNAPSHOT_PATH} HTTP/1.1`, { ...hdr("2"), "Content-Length": body.length }),
      body,
    );
    assertEquals([r.status, r.body], ["412", "to field mismatch\n"]);

    // a message addressed to someone else inside an accepted stream is dropped, the stream goes on
    const ac = new AbortController();
    const conn = await dialPeer(new URL(b.url), ac.signal);
    try {
      await writeAll(conn, formatHead(`POST ${STREAM_PREFIX}/1 HTTP/1.1`, hdr("2")));
      const head = await new ConnReader(conn).readHead(16384);
      assertEquals(head?.b, "101");
      const frames = [encodeMessage(heartbeat(1n, 9n)), encodeMessage(heartbeat(1n, 2n, enc.encode("ok")))];
      for (const f of frames) {
        const out = new Uint8Array(4 + f.length);
        new DataView(out.buffer).setUint32(0, f.length);
        out.set(f, 4);
        await writeAll(conn, out);
      }
      await waitFor(() => b.received.length === 1);
      assertEquals(new TextDecoder().decode(b.received[0].context), "ok");
      assert(b.logs.some((l) => l.msg === "ignored message addressed to another member"));
    } finally {
      conn.close();
    }
    assert(b.t.stats.refused >= 4, `refused ${b.t.stats.refused}`);
    assertEquals(a.received, []);
  } finally {
    await stopAll([a, b]);
  }
});

Deno.test("peer: GET /version by default and registered handlers such as /members", async () => {
  const members = JSON.stringify([{ id: 1, name: "a", peerURLs: ["http://127.0.0.1:1"], clientURLs: [] }]);
  const a = makeNode(1n, port(), {
    httpHandlers: new Map([["/members", () => ({ status: 200, body: members })]]),
  });
  await a.t.start();
  try {
    let res = await fetch(`${a.url}/version`);
    assertEquals(res.status, 200);
    assertEquals(res.headers.get("content-type"), "application/json");
    assertEquals(await res.json(), { etcdserver: "3.5.0", etcdcluster: "3.5.0" });
    res = await fetch(`${a.url}/members`);
    assertEquals(res.headers.get("x-etcd-cluster-id"), CLUSTER.toString(16));
    assertEquals(await res.text(), members);
    res = await fetch(`${a.url}/nope`);
    assertEquals(res.status, 404);
    await res.body?.cancel();
    res = await fetch(`${a.url}/version`, { method: "POST", body: "x" });
    assertEquals(res.status, 405);
    await res.body?.cancel();
  } finally {
    await a.t.stop();
  }
});

Deno.test("peer: handlers added with handle() see the query and body; request() asks them", async () => {
  const a = await startNode(1n);
  const b = await startNode(2n);
  try {
    const seen: PeerHttpRequest[] = [];
    // registered after start; answers asynchronously
    b.t.handle("/echo", async (req) => {
      seen.push(req);
      await sleep(1);
      return {
        status: 200,
        body: JSON.stringify({ q: req.query.get("x"), body: new TextDecoder().decode(req.body) }),
      };
    });
    let r = await a.t.request(b.url, "/echo?x=1", { body: '{"revision":3}' });
    assertEquals(r.status, 200);
    assertEquals(JSON.parse(r.body), { q: "1", body: '{"revision":3}' });
    assertEquals(r.headers.get("x-etcd-cluster-id"), CLUSTER.toString(16));
    assertEquals(seen[0].path, "/echo");
    assertEquals(seen[0].headers.get("x-server-from"), "1");
    assertEquals(seen[0].headers.get("content-type"), "application/json");
    // without a body, and the built-in /version still there
    r = await a.t.request(b.url, "/echo");
    assertEquals(JSON.parse(r.body), { q: null, body: "" });
    r = await a.t.request(b.url, "/version");
    assertEquals(JSON.parse(r.body), { etcdserver: "3.5.0", etcdcluster: "3.5.0" });
    // a handler that throws is answered 500; a status of its own goes out as is
    b.t.handle("/fail", () => {
      throw new Error("boom");
    });
    r = await a.t.request(b.url, "/fail");
    assertEquals([r.status, r.body], [500, "internal server error\n"]);
    b.t.handle("/bad", () => ({ status: 400, body: "no\n", contentType: "text/plain; charset=utf-8" }));
    r = await a.t.request(b.url, "/bad");
    assertEquals([r.status, r.body, r.headers.get("content-type")], [
      400,
      "no\n",
      "text/plain; charset=utf-8",
    ]);
    // a body too large for a GET handler is refused before it is read and before the handler runs
    const big = await rawRequest(b.port, formatHead("GET /echo HTTP/1.1", { "Content-Length": 2 << 20 }));
    assertEquals(big.status, "413");
    assertEquals(seen.length, 2);
  } finally {
    await stopAll([a, b]);
  }
});

Deno.test("peer: request() times out on a silent member and ends when the transport stops", async () => {
  const a = await startNode(1n);
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const serving = (async () => {
    try {
      for (;;) held.push(await silent.accept());
    } catch {
      // listener closed
    }
  })();
  const url = `http://127.0.0.1:${(silent.addr as Deno.NetAddr).port}`;
  try {
    const t0 = Date.now();
    await assertRejects(
      () => a.t.request(url, "/x", { timeoutMs: 150 }),
      PeerTimeoutError,
      "timed out after 150ms",
    );
    assert(Date.now() - t0 < 2000);
    // a request in flight fails once the transport stops, and none starts afterwards
    const pending = a.t.request(url, "/x", { timeoutMs: 10_000 });
    await waitFor(() => held.length === 2);
    await a.t.stop();
    await assertRejects(() => pending, Error, "peer transport stopped");
    await assertRejects(() => a.t.request(url, "/x"), Error, "peer transport stopped");
    // nothing listens there: the dial error
    await assertRejects(() => a.t.request(`http://127.0.0.1:${port()}`, "/x", { timeoutMs: 1000 }));
  } finally {
    await a.t.stop();
    silent.close();
    await serving;
    for (const c of held) c.close();
  }
});

Deno.test("peer: a full queue drops and reports the peer unreachable", async () => {
  const [a, b] = await cluster(2, { maxQueueMessages: 10 });
  try {
    a.t.send(Array.from({ length: 100 }, (_, i) => app(1n, 2n, i)));
    assertEquals(a.unreachable, [], "reports are made after send() returns");
    await waitFor(() => b.received.length === 10);
    assertEquals(b.received.map((m) => m.index), Array.from({ length: 10 }, (_, i) => i));
    assertEquals(a.t.stats.dropped, 90);
    assertEquals(a.unreachable, [2n], "one report per turn");
    assert(a.logs.some((l) => l.msg === "dropped internal Raft message since sending buffer is full"));
    // unknown recipients are dropped and reported as well
    a.t.send([app(1n, 42n, 0)]);
    await waitFor(() => a.unreachable.includes(42n));
  } finally {
    await stopAll([a, b]);
  }
});

Deno.test("peer: keepalives hold an idle stream; a silent peer is dropped after the idle timeout", async () => {
  const opts = { keepaliveMs: 40, idleTimeoutMs: 250, backoffMinMs: 20, backoffMaxMs: 50 };
  const [a, b] = await cluster(2, opts);
  // a fake member that accepts the stream and then says nothing, not even keepalives
  const silent = Deno.listen({ hostname: "127.0.0.1", port: port() });
  const held: Deno.Conn[] = [];
  const serving = (async () => {
    try {
      for (let i = 0; i < 100; i++) {
        const c = await silent.accept();
        held.push(c);
        await writeAll(c, formatHead("HTTP/1.1 101 Switching Protocols", { Upgrade: STREAM_PROTOCOL }));
      }
    } catch {
      // listener closed
    }
  })();
  try {
    const since = a.t.activeSince(2n);
    assert(since !== undefined);
    a.t.addPeer(3n, [`http://127.0.0.1:${(silent.addr as Deno.NetAddr).port}`]);
    await sleep(800);
    assertEquals(a.t.activeSince(2n), since, "the idle stream to B was never dropped");
    assertEquals(b.t.activeSince(1n) !== undefined, true);
    assert(
      a.t.stats.connects >= 3,
      `the silent peer was connected and dropped (${a.t.stats.connects} connects)`,
    );
    a.t.send([heartbeat(1n, 2n)]);
    await waitFor(() => b.received.length === 1);
    assert(held.length >= 2, `the silent peer was redialed (${held.length} connections)`);
    assert(
      a.logs.some((l) =>
        l.msg === "lost TCP streaming connection with remote peer" &&
        /nothing heard/.test(String(l.fields?.error))
      ),
    );
  } finally {
    await stopAll([a, b]);
    silent.close();
    await serving;
    for (const c of held) c.close();
  }
});

Deno.test("peer: updatePeer moves the stream, removePeer closes it", async () => {
  const [a, b] = await cluster(2);
  const b2 = makeNode(2n, port());
  b2.t.addPeer(1n, [a.url]);
  await b2.t.start();
  try {
    a.t.updatePeer(2n, [b2.url]);
    await waitFor(() => a.t.activeSince(2n) !== undefined);
    a.t.send([heartbeat(1n, 2n)]);
    await waitFor(() => b2.received.length === 1);
    assertEquals(b.received.length, 0);
    a.t.removePeer(2n);
    assertEquals(a.t.activeSince(2n), undefined);
    a.t.send([heartbeat(1n, 2n)]);
    await waitFor(() => a.unreachable.includes(2n));
    // B's stream into A is refused now: A no longer knows member 2
    await waitFor(() => a.logs.some((l) => l.msg === "failed to find remote peer in cluster"));
  } finally {
    await stopAll([a, b, b2]);
  }
});

Deno.test("peer: stop closes everything, even with traffic and dials in flight", async () => {
  const [a, b] = await cluster(2);
  a.t.addPeer(3n, [`http://127.0.0.1:${port()}`]);
  for (let i = 0; i < 2000; i++) a.t.send([app(1n, 2n, i, 1024)]);
  a.t.send([snapMessage(1n, 2n, new Uint8Array(4 * 1024 * 1024))]);
  await a.t.stop();
  await b.t.stop();
  await a.t.stop(); // twice is fine
  a.t.send([app(1n, 2n, 0)]); // and a send after stop is ignored
  assertEquals(a.t.activeSince(2n), undefined);
  assert(b.received.length <= 2000);
  // a transport that never started stops too
  await makeNode(9n, port()).t.stop();
});

Deno.test("peer: URLs that cannot be served are refused clearly", async () => {
  assertEquals(peerAddress("https://127.0.0.1:2380"), { hostname: "127.0.0.1", port: 2380 });
  assertEquals(peerAddress("https://10.0.0.1"), { hostname: "10.0.0.1", port: 443 });
  assertThrows(() => peerAddress("unix://x"), PeerUrlError, "unsupported peer URL scheme");
  // an https URL without credentials cannot be listened on or dialed
  const err = await listenPeer(new URL("https://127.0.0.1:0")).then(() => undefined, (e) => e);
  assert(err instanceof PeerUrlError && /no peer TLS credentials/.test(err.message), String(err));
  assertEquals(peerAddress("http://[::1]:2380"), { hostname: "::1", port: 2380 });
  assertEquals(peerAddress("http://10.0.0.1"), { hostname: "10.0.0.1", port: 80 });
});

Deno.test("peer: throughput of small MsgApp-like messages", async () => {
  const [a, b] = await cluster(2);
  try {
    const N = 200_000;
    const BATCH = 100;
    const t0 = performance.now();
    let sent = 0;
    // a bounded producer: keeps at most ~20k messages in flight
    for (let round = 0; round < N / BATCH; round++) {
      const batch: Message[] = [];
      for (let i = 0; i < BATCH; i++) batch.push(app(1n, 2n, sent++, 64));
      a.t.send(batch);
      if (round % 20 === 19) {
        await waitFor(() => sent - b.received.length < 20_000, 10_000, "receiver to catch up");
        await Promise.resolve();
      }
    }
    await waitFor(() => b.received.length === N, 20_000, "all messages");
    const secs = (performance.now() - t0) / 1000;
    const rate = Math.round(N / secs);
    console.log(
      `throughput: ${rate} msgs/s (${N} MsgApp with one 64-byte entry, ${a.t.stats.writes} writes, ` +
        `${b.t.stats.reads} reads, ${(a.t.stats.bytesSent / 1e6 / secs).toFixed(1)} MB/s)`,
    );
    assertEquals(b.received[N - 1].index, N - 1);
    assertEquals(a.t.stats.dropped, 0);
    assert(rate > 20_000, `${rate} msgs/s`);
  } finally {
    await stopAll([a, b]);
  }
});
