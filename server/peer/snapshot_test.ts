import { assert, assertEquals, assertMatch } from "../../tests/assert.ts";
import { type Message, MessageType } from "../../raft/types.ts";
import type { ByteStream } from "../../storage/byte_stream.ts";
import { ConnReader, formatHead } from "./http.ts";
import { writeAll } from "../../storage/fs_util.ts";
import { dialPeer } from "./net.ts";
import { type IncomingImage, SNAPSHOT_CHUNK_BYTES, SNAPSHOT_PATH } from "./transport.ts";
import {
  CLUSTER,
  link,
  type Node,
  rawRequest,
  sleep,
  snapMessage,
  snapshotBody,
  startNode,
  stopAll,
  waitFor,
} from "./test_util.ts";

const MiB = 1024 * 1024;
const enc = new TextEncoder();

// Every test listens on ports the system picks, so this file never collides with another.

/** Byte `i` of the generated image: position within its chunk plus a step per chunk, so chunks differ. */
function expected(i: number, chunk: number): number {
  return ((i % chunk) + Math.floor(i / chunk) * 7) & 0xff;
}

/** 256 bytes more than a chunk of the repeating 0..255 ramp: chunk k is a window into it. */
function ramp(chunk: number): Uint8Array {
  const r = new Uint8Array(chunk + 256);
  for (let i = 0; i < r.length; i++) r[i] = i & 0xff;
  return r;
}

/**
 * A generated image of `count` chunks of `chunk` bytes, produced by refilling one buffer: should the
 * sender pull a chunk before the previous one is written, that one's bytes would be overwritten and the
 * image would arrive wrong. `pulled` counts the chunks handed out; `failAfter` makes the source fail when
 * that many have been handed out.
 */
function generated(
  count: number,
  chunk: number,
  counters: { pulled: number },
  failAfter?: number,
): ByteStream {
  const buf = new Uint8Array(chunk);
  const r = ramp(chunk);
  return {
    size: count * chunk,
    *chunks() {
      for (let k = 0; k < count; k++) {
        if (k === failAfter) throw new Error("disk read error");
        const off = (k * 7) & 0xff;
        buf.set(r.subarray(off, off + chunk));
        counters.pulled++;
        yield buf;
      }
    },
  };
}

/** Checks `c` against the generated image at offset `at`; returns the first wrong position or -1. */
function mismatch(c: Uint8Array, at: number, chunk: number): number {
  for (let i = 0; i < c.length; i++) if (c[i] !== expected(at + i, chunk)) return at + i;
  return -1;
}

function snaps(n: Node): Message[] {
  return n.received.filter((m) => m.type === MessageType.Snap);
}

Deno.test("peer snapshot: 48 MiB stream from one transport to another, in bounded chunks on both sides", async () => {
  const COUNT = 48;
  const counters = { pulled: 0 };
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  let pulledAtFirstChunk = -1;
  let got = 0;
  let wrongAt = -1;
  let largest = 0;
  const streamed: number[] = [];
  const b = await startNode(2n, {
    receiveSnapshot: async (m: Message, image: IncomingImage): Promise<Message> => {
      assertEquals(image.size, COUNT * MiB);
      assertEquals(m.snapshot?.data.length, 0, "the image does not travel in the message");
      for await (const c of image.chunks()) {
        if (got === 0) {
          pulledAtFirstChunk = counters.pulled;
          await gate; // a slow disk: the sender must wait, not buffer
        }
        if (wrongAt < 0) wrongAt = mismatch(c, got, MiB);
        largest = Math.max(largest, c.length);
        got += c.length;
      }
      return { ...m, snapshot: { ...m.snapshot!, data: enc.encode("saved to disk") } };
    },
  });
  const a = await startNode(1n, {
    snapshotStream: (m) => {
      streamed.push(m.snapshot!.metadata.index);
      return generated(COUNT, MiB, counters);
    },
  });
  try {
    await link([a, b]);
    a.t.send([snapMessage(1n, 2n, enc.encode("not sent: the stream replaces it"))]);
    assertEquals(counters.pulled, 0, "the image is pulled only as the upload goes");
    await waitFor(() => pulledAtFirstChunk >= 0, 10_000, "first chunk at the receiver");
    assert(
      pulledAtFirstChunk < COUNT,
      `the sink got its first chunk after ${pulledAtFirstChunk} of ${COUNT} pulls`,
    );
    await sleep(300);
    const pulledWhilePaused = counters.pulled;
    console.log(`chunks pulled while the receiver held its first one: ${pulledWhilePaused} of ${COUNT}`);
    assert(pulledWhilePaused <= 16, `the sender ran ahead of its receiver: ${pulledWhilePaused} chunks`);
    assertEquals(snaps(b), [], "nothing delivered before the image is whole");
    release();
    await waitFor(() => a.snapshotStatus.length === 1, 30_000, "snapshot status");
    assertEquals(a.snapshotStatus, [[2n, true]]);
    assertEquals(streamed, [1234]);
    assertEquals(got, COUNT * MiB);
    assertEquals(wrongAt, -1, `the image arrived intact (first wrong byte at ${wrongAt})`);
    assertEquals(largest, SNAPSHOT_CHUNK_BYTES);
    const [snap] = snaps(b);
    assertEquals(new TextDecoder().decode(snap.snapshot?.data), "saved to disk");
    assertEquals(snap.snapshot?.metadata.index, 1234);
    assertEquals(snap.snapshot?.metadata.confState.voters, [1n, 2n]);
    assertEquals([a.t.stats.snapshotsSent, b.t.stats.snapshotsReceived], [1, 1]);
    assert(b.logs.some((l) => l.msg === "received database snapshot"));
  } finally {
    release();
    await stopAll([a, b]);
  }
});

Deno.test("peer snapshot: the receiver hands chunks to its sink while the body is still arriving", async () => {
  const seen: number[] = [];
  let finished = false;
  const b = await startNode(2n, {
    receiveSnapshot: async (m, image) => {
      for await (const c of image.chunks()) seen.push(c.length);
      finished = true;
      return m;
    },
  });
  b.t.addPeer(1n, ["http://127.0.0.1:9"]);
  const data = new Uint8Array(3 * MiB + 10).fill(7);
  const body = snapshotBody(snapMessage(1n, 2n, data));
  const conn = await dialPeer(new URL(b.url), new AbortController().signal);
  try {
    const half = body.length >> 1;
    await writeAll(
      conn,
      formatHead(`POST ${SNAPSHOT_PATH} HTTP/1.1`, {
        "Content-Length": body.length,
        "X-Etcd-Cluster-ID": CLUSTER.toString(16),
        "X-Server-From": "1",
        "X-Raft-To": "2",
      }),
    );
    await writeAll(conn, body.subarray(0, half));
    await waitFor(() => seen.length >= 1, 5000, "a chunk before the rest is sent");
    assert(!finished);
    assertEquals(snaps(b), []);
    await writeAll(conn, body.subarray(half));
    const head = await new ConnReader(conn).readHead(16384);
    assertEquals(head?.b, "204");
    assertEquals(seen, [MiB, MiB, MiB, 10]);
    assertEquals(snaps(b).length, 1);
  } finally {
    conn.close();
    await b.t.stop();
  }
});

Deno.test("peer snapshot: an upload cut in the middle fails on both sides and delivers nothing", async (t) => {
  await t.step("the sender's image fails after 5 of 20 chunks", async () => {
    let sinkError: unknown;
    let sinkGot = 0;
    const b = await startNode(2n, {
      receiveSnapshot: async (m, image) => {
        try {
          for await (const c of image.chunks()) sinkGot += c.length;
        } catch (err) {
          sinkError = err; // a real sink removes its partial file here
          throw err;
        }
        return m;
      },
    });
    const a = await startNode(1n, { snapshotStream: () => generated(20, MiB, { pulled: 0 }, 5) });
    try {
      await link([a, b]);
      a.t.send([snapMessage(1n, 2n, new Uint8Array(0))]);
      await waitFor(() => a.snapshotStatus.length === 1, 10_000, "snapshot status");
      assertEquals(a.snapshotStatus, [[2n, false]]);
      await waitFor(() => a.unreachable.includes(2n));
      const sent = a.logs.find((l) => l.msg === "failed to send database snapshot");
      assertEquals(sent?.level, "warn");
      assertMatch(String(sent?.fields?.error), /reading the snapshot image failed: disk read error/);
      await waitFor(() => b.logs.some((l) => l.msg === "failed to save KV snapshot"), 5000, "receiver log");
      const saved = b.logs.find((l) => l.msg === "failed to save KV snapshot");
      assertEquals(saved?.level, "warn");
      assertMatch(String(saved?.fields?.error), /ended after \d+ of 20971520 image bytes/);
      assertMatch(String(sinkError), /ended after/);
      assert(sinkGot <= 5 * MiB, `${sinkGot} bytes`);
      assertEquals(snaps(b), []);
      assertEquals([a.t.stats.snapshotsFailed, b.t.stats.snapshotsReceived], [1, 0]);
    } finally {
      await stopAll([a, b]);
    }
  });

  await t.step(
    "a connection closed mid-body, without a sink and with one that swallows the error",
    async () => {
      for (const swallow of [false, true]) {
        const b = await startNode(
          2n,
          swallow
            ? {
              receiveSnapshot: async (m, image) => {
                try {
                  for await (const _ of image.chunks()) { /* written to disk */ }
                } catch { /* a careless sink */ }
                return m;
              },
            }
            : {},
        );
        b.t.addPeer(1n, ["http://127.0.0.1:9"]);
        const body = snapshotBody(snapMessage(1n, 2n, new Uint8Array(4 * MiB)));
        const conn = await dialPeer(new URL(b.url), new AbortController().signal);
        try {
          await writeAll(
            conn,
            formatHead(`POST ${SNAPSHOT_PATH} HTTP/1.1`, {
              "Content-Length": body.length,
              "X-Etcd-Cluster-ID": CLUSTER.toString(16),
              "X-Server-From": "1",
              "X-Raft-To": "2",
            }),
          );
          await writeAll(conn, body.subarray(0, 2 * MiB));
          conn.close();
          await waitFor(
            () => b.logs.some((l) => l.msg === "failed to save KV snapshot"),
            5000,
            "receiver log",
          );
          await sleep(20);
          assertEquals(snaps(b), [], swallow ? "a sink that swallows the cut still delivers nothing" : "");
          assertEquals(b.t.stats.snapshotsReceived, 0);
        } finally {
          conn.close();
          await b.t.stop();
        }
      }
    },
  );
});

Deno.test("peer snapshot: a sink that fails answers 500; the sender reports the failure", async () => {
  const b = await startNode(2n, {
    receiveSnapshot: async (_m, image) => {
      for await (const _ of image.chunks()) { /* all read, then the disk is full */ }
      throw new Error("no space left on device");
    },
  });
  const a = await startNode(1n);
  try {
    await link([a, b]);
    a.t.send([snapMessage(1n, 2n, new Uint8Array(2 * MiB + 1))]);
    await waitFor(() => a.snapshotStatus.length === 1, 10_000, "snapshot status");
    assertEquals(a.snapshotStatus, [[2n, false]]);
    const sent = a.logs.find((l) => l.msg === "failed to send database snapshot");
    assertMatch(String(sent?.fields?.error), /500 error saving raft snapshot/);
    const saved = b.logs.find((l) => l.msg === "failed to save KV snapshot");
    assertMatch(String(saved?.fields?.error), /no space left on device/);
    assertEquals(snaps(b), []);
  } finally {
    await stopAll([a, b]);
  }
});

Deno.test("peer snapshot: a sink that stops reading early delivers nothing", async () => {
  const b = await startNode(2n, {
    receiveSnapshot: async (m, image) => {
      for await (const _ of image.chunks()) break;
      return m;
    },
  });
  const a = await startNode(1n);
  try {
    await link([a, b]);
    a.t.send([snapMessage(1n, 2n, new Uint8Array(3 * MiB))]);
    await waitFor(() => a.snapshotStatus.length === 1, 10_000, "snapshot status");
    assertEquals(a.snapshotStatus, [[2n, false]]);
    const saved = b.logs.find((l) => l.msg === "failed to save KV snapshot");
    assertMatch(String(saved?.fields?.error), /returned after reading 1048576 of 3145728 image bytes/);
    assertEquals(snaps(b), []);
  } finally {
    await stopAll([a, b]);
  }
});

Deno.test("peer snapshot: an image source that cannot be opened fails the send", async () => {
  const b = await startNode(2n);
  const a = await startNode(1n, {
    snapshotStream: () => {
      throw new Error("snapshot file missing");
    },
  });
  try {
    await link([a, b]);
    a.t.send([snapMessage(1n, 2n, new Uint8Array(10))]);
    assertEquals(a.snapshotStatus, [], "reported after send() returns");
    await waitFor(() => a.snapshotStatus.length === 1);
    assertEquals(a.snapshotStatus, [[2n, false]]);
    const sent = a.logs.find((l) => l.msg === "failed to send database snapshot");
    assertMatch(String(sent?.fields?.error), /snapshot file missing/);
    await sleep(20);
    assertEquals(snaps(b), []);
  } finally {
    await stopAll([a, b]);
  }
});

Deno.test("peer snapshot: identity and size are checked before any of the body is read", async () => {
  let sinkCalls = 0;
  const b = await startNode(2n, {
    maxSnapshotBytes: MiB,
    receiveSnapshot: (m) => {
      sinkCalls++;
      return Promise.resolve(m);
    },
  });
  const a = await startNode(1n);
  try {
    await link([a, b]);
    // heads alone, announcing bodies that never come: the answers cannot have waited for them
    const head = (cluster: bigint, len: number) =>
      formatHead(`POST ${SNAPSHOT_PATH} HTTP/1.1`, {
        "Content-Length": len,
        "X-Etcd-Cluster-ID": cluster.toString(16),
        "X-Server-From": "1",
        "X-Raft-To": "2",
      });
    let r = await rawRequest(b.port, head(CLUSTER, 64 * MiB));
    assertEquals([r.status, r.body], ["413", "snapshot too large\n"]);
    r = await rawRequest(b.port, head(0xbadn, 100));
    assertEquals([r.status, r.body], ["412", "cluster ID mismatch\n"]);
    assert(b.logs.some((l) => l.msg === "refused database snapshot: too large"));

    // through the transport: refused, reported as failed, nothing delivered
    a.t.send([snapMessage(1n, 2n, new Uint8Array(2 * MiB))]);
    await waitFor(() => a.snapshotStatus.length === 1, 10_000, "snapshot status");
    assertEquals(a.snapshotStatus, [[2n, false]]);
    assertEquals(sinkCalls, 0);
    assertEquals(snaps(b), []);
  } finally {
    await stopAll([a, b]);
  }
});
