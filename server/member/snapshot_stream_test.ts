import { V2Store } from "../../storage/v2store/store.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/assert.ts";
import { RawNode } from "../../raft/node.ts";
import { decodeConfChange } from "../../raft/conf_change.ts";
import {
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type Snapshot,
} from "../../raft/types.ts";
import { Wal } from "../../storage/wal.ts";
import { Snapshotter } from "../../storage/snapshot.ts";
import { denoFs, type FileSystem } from "../../storage/fs.ts";
import { type ByteStream, collectBytes } from "../../storage/byte_stream.ts";
import { MvccStore } from "../../storage/mvcc/store.ts";
import { LeaseStore } from "../../storage/lease.ts";
import { systemClock } from "../clock.ts";
import { createLogger } from "../logger.ts";
import { captureAppState, EMPTY_CONF_STATE } from "./app_state.ts";
import { Membership } from "./membership.ts";
import { RaftDriver, ServerStorage } from "./raft_driver.ts";
import type { SnapshotCapture } from "./snapshot_writer.ts";
import { SnapshotViews } from "./snapshot_views.ts";
import { link, snapMessage, startNode, stopAll, waitFor } from "../peer/test_util.ts";

const enc = new TextEncoder();
const quiet = createLogger({ level: "error", write: () => {} });

/** A capture of `n` chunks of `bytes` (chunk i filled with i), counting chunks read and releases. */
function fakeCapture(n = 4, bytes = 1024): SnapshotCapture & { read: number; released: number } {
  const c = {
    read: 0,
    released: 0,
    data: {
      size: n * bytes,
      *chunks() {
        for (let i = 0; i < n; i++) {
          c.read++;
          yield new Uint8Array(bytes).fill(i);
        }
      },
    } as ByteStream,
    release() {
      c.released++;
    },
  };
  return c;
}

/** Reads a stream as the peer transport does: iterator, next() until done, return() in any case. */
function drain(s: ByteStream, stopAfter = Infinity): Uint8Array[] {
  const out: Uint8Array[] = [];
  const it = s.chunks()[Symbol.iterator]();
  try {
    for (;;) {
      if (out.length >= stopAfter) break;
      const r = it.next();
      if (r.done) break;
      out.push(r.value.slice());
    }
  } finally {
    it.return?.();
  }
  return out;
}

Deno.test("snapshot views: each is released once nothing can read it", async (t) => {
  await t.step("a finished send: released when the stream ends, after the pin is dropped", () => {
    const views = new SnapshotViews();
    const c = fakeCapture();
    views.pin(7, () => c);
    const s = views.open(2n, 7);
    views.takePins()();
    assertEquals(views.size, 1, "the stream holds the view");
    assertEquals(c.read, 0, "nothing is read before the upload asks");
    const chunks = drain(s);
    assertEquals(chunks.length, 4);
    assertEquals(chunks[3][0], 3);
    assertEquals([views.size, c.released], [0, 1]);
    views.settled(2n); // the outcome reported afterwards changes nothing
    assertEquals(c.released, 1);
  });
  await t.step("a send failed midway (the upload returns the iterator): released", () => {
    const views = new SnapshotViews();
    const c = fakeCapture();
    views.pin(7, () => c);
    const s = views.open(2n, 7);
    views.takePins()();
    assertEquals(drain(s, 2).length, 2);
    assertEquals([views.size, c.released], [0, 1]);
  });
  await t.step("an upload that got the iterator but asked for no chunk: released by return()", () => {
    const views = new SnapshotViews();
    const c = fakeCapture();
    views.pin(7, () => c);
    const s = views.open(2n, 7);
    views.takePins()();
    drain(s, 0);
    assertEquals([views.size, c.released, c.read], [0, 1, 0]);
  });
  await t.step("an upload that failed before its body: released when its outcome is reported", () => {
    const views = new SnapshotViews();
    const c = fakeCapture();
    views.pin(7, () => c);
    views.open(2n, 7);
    views.takePins()();
    assertEquals(views.size, 1);
    views.settled(3n); // another peer's outcome
    assertEquals(views.size, 1);
    views.settled(2n);
    assertEquals([views.size, c.released], [0, 1]);
  });
  await t.step("a message never handed over (no stream opened): released with its Ready's pins", () => {
    const views = new SnapshotViews();
    const c = fakeCapture();
    views.pin(7, () => c);
    const drop = views.takePins();
    views.pin(8, () => fakeCapture()); // pinned for the next Ready: not dropped with this one
    drop();
    assertEquals([views.indexes(), c.released], [[8], 1]);
  });
  await t.step("one view per index, shared by followers; released when the last is done", () => {
    const views = new SnapshotViews();
    let taken = 0;
    const c = fakeCapture();
    const capture = () => {
      taken++;
      return c;
    };
    views.pin(9, capture);
    views.pin(9, capture);
    const a = views.open(2n, 9);
    const b = views.open(3n, 9);
    views.takePins()();
    assertEquals(taken, 1);
    drain(a);
    assertEquals([views.size, c.released], [1, 0]);
    drain(b);
    assertEquals([views.size, c.released], [0, 1]);
  });
  await t.step("no view of the index: open throws (the send fails, Raft retries)", () => {
    const views = new SnapshotViews();
    views.pin(7, () => fakeCapture());
    assertThrows(() => views.open(2n, 8), Error, "no view of index 8");
  });
  await t.step("a stream released before its upload started cannot be read", () => {
    const views = new SnapshotViews();
    const c = fakeCapture();
    views.pin(7, () => c);
    const s = views.open(2n, 7);
    views.takePins()();
    views.settled(2n);
    assertThrows(() => s.chunks(), Error, "released");
    assertEquals(c.read, 0);
  });
  await t.step("close releases everything, and nothing is pinned after", () => {
    const views = new SnapshotViews();
    const a = fakeCapture();
    const b = fakeCapture();
    views.pin(7, () => a);
    views.pin(8, () => b);
    const s = views.open(2n, 8);
    views.close();
    assertEquals([views.size, a.released, b.released], [0, 1, 1]);
    assertThrows(() => s.chunks(), Error, "released");
    assertThrows(() => views.pin(9, () => fakeCapture()), Error, "after stop");
  });
});

function newNode(id: bigint, storage: ServerStorage): RawNode {
  return new RawNode({
    id,
    electionTick: 10,
    heartbeatTick: 1,
    storage,
    applied: 0,
    checkQuorum: true,
    preVote: true,
    maxSizePerMsg: 1 << 20,
    maxInflightMsgs: 256,
    random: () => 0.5,
  });
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "snapshot_stream_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("raft driver: a snapshot for a follower is a view of the applied index, streamed later", async () => {
  await withDir(async (dir) => {
    const wal = await Wal.create(`${dir}/wal`, { memberId: 1n, clusterId: 2n }, { preallocate: false });
    const storage = new ServerStorage();
    const node = newNode(1n, storage);
    node.bootstrap([{ id: 1n, context: new Uint8Array(0) }]);
    const mvcc = new MvccStore();
    const membership = new Membership(2n);
    const leases = new LeaseStore();
    const views = new SnapshotViews();
    let captured = 0;
    let driver: RaftDriver | undefined = undefined;
    driver = new RaftDriver({
      node,
      storage,
      wal,
      snapshotter: new Snapshotter(`${dir}/snap`),
      clock: systemClock,
      logger: quiet,
      tickMs: 10,
      snapshotCount: 1000,
      maxSnapshots: 0,
      catchUpEntries: 100,
      appliedIndex: 0,
      snapshotIndex: 0,
      confState: EMPTY_CONF_STATE,
      views,
      handler: {
        applyEntries(entries: Entry[]) {
          for (const e of entries) {
            if (e.type === EntryType.ConfChange) {
              driver!.confState = node.applyConfChange(decodeConfChange(e.data));
            } else if (e.data.length > 0) {
              const w = mvcc.write();
              w.put(enc.encode(`k${e.data[0] % 5}`), e.data, 0n);
              w.end();
            }
          }
        },
        restoreSnapshot() {
          throw new Error("not here");
        },
        captureSnapshot(confState: ConfState) {
          captured++;
          return captureAppState({ confState, membership, leases, mvcc, v2store: new V2Store() });
        },
        send() {},
        onSoftState() {},
        onReadStates() {},
      },
    });
    const propose = async (n: number) => {
      for (let i = 0; i < n; i++) {
        node.proposeBatch([new Uint8Array(1000).fill(i + 1)]);
        driver!.kick();
        await driver!.waitApplied(driver!.appliedIndex + 1);
      }
    };
    try {
      driver.start();
      await driver.waitApplied(1);
      node.campaign();
      driver.kick();
      while (driver.lead !== 1n) await new Promise((r) => setTimeout(r, 5));
      await propose(20);

      // as Raft asks when a follower is behind the in-memory log
      const snap: Snapshot = storage.snapshot();
      const index = driver.appliedIndex;
      assertEquals(snap.data.length, 0, "no image is built");
      assertEquals(snap.metadata.index, index);
      assertEquals(snap.metadata.term, storage.term(index));
      assertEquals(captured, 1);
      assertEquals(views.indexes(), [index]);
      // what an image of the state at that index holds, for comparison
      const want = captureAppState({
        confState: driver.confState,
        membership,
        leases,
        mvcc,
        v2store: new V2Store(),
      });
      const wantBytes = collectBytes(want.data);
      want.release();
      // the transport opens the stream when the upload starts; the Ready carrying the message then ends
      const stream = views.open(2n, snap.metadata.index);
      await propose(30); // the store moves on: overwrites and a compaction
      mvcc.compact(mvcc.currentRevision);
      assert(driver.appliedIndex > index);
      assertEquals(views.indexes(), [index], "the Ready's pin is dropped, the stream holds the view");
      const got = collectBytes(stream);
      assertEquals(got.length, wantBytes.length);
      assert(got.every((b, i) => b === wantBytes[i]), "the streamed image is the one at the snapshot index");
      assertEquals(views.size, 0, "released once streamed");

      // a view pinned for a message that no Ready hands over is released with the next Ready
      storage.snapshot();
      assertEquals(views.size, 1);
      await propose(1);
      assertEquals(views.size, 0);
    } finally {
      await driver.stop();
      views.close();
      await driver.closeStorage();
      mvcc.close();
    }
  });
});

/** The real file system, counting snapshot temporary files opened for writing. */
function countingFs(): FileSystem & { tmpOpens: number } {
  const fs = {
    ...denoFs,
    tmpOpens: 0,
    open(path: string, options: Parameters<FileSystem["open"]>[1]) {
      if (path.endsWith(".tmp")) fs.tmpOpens++;
      return denoFs.open(path, options);
    },
  };
  return fs;
}

/** An upload of `data` in chunks of `chunk` bytes refilling one buffer; throws after `cutAt` bytes. */
function upload(data: Uint8Array, chunk: number, cutAt = Infinity) {
  return {
    size: data.length,
    async *chunks(): AsyncGenerator<Uint8Array> {
      const buf = new Uint8Array(chunk);
      for (let p = 0; p < data.length; p += chunk) {
        if (p >= cutAt) throw new Error("connection reset");
        await new Promise((r) => setTimeout(r, 0));
        const n = Math.min(chunk, data.length - p);
        buf.set(data.subarray(p, p + n));
        yield buf.subarray(0, n);
        buf.fill(0xee);
      }
    },
  };
}

Deno.test("raft driver: a snapshot from the leader goes to its file as it arrives, and is written once", async () => {
  await withDir(async (dir) => {
    const walDir = `${dir}/wal`;
    const wal = await Wal.create(walDir, { memberId: 2n, clusterId: 9n }, { preallocate: false });
    const fs = countingFs();
    const snapshotter = new Snapshotter(`${dir}/snap`, { fs });
    const storage = new ServerStorage();
    const node = newNode(2n, storage);
    const restored: Snapshot[] = [];
    const sent: Message[] = [];
    const driver = new RaftDriver({
      node,
      storage,
      wal,
      snapshotter,
      clock: systemClock,
      logger: quiet,
      tickMs: 10_000,
      snapshotCount: 1000,
      maxSnapshots: 0,
      catchUpEntries: 100,
      appliedIndex: 0,
      snapshotIndex: 0,
      confState: EMPTY_CONF_STATE,
      views: new SnapshotViews(),
      handler: {
        applyEntries() {},
        restoreSnapshot(s: Snapshot) {
          restored.push(s);
        },
        captureSnapshot() {
          throw new Error("not here");
        },
        send(ms: Message[]) {
          sent.push(...ms);
        },
        onSoftState() {},
        onReadStates() {},
      },
    });
    const image = new Uint8Array(300_000);
    for (let i = 0; i < image.length; i++) image[i] = (i * 7) & 0xff;
    const confState = { ...EMPTY_CONF_STATE, voters: [1n, 2n] };
    const msg = (index: number): Message => ({
      type: MessageType.Snap,
      to: 2n,
      from: 1n,
      term: 3,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      snapshot: { metadata: { index, term: 3, confState }, data: new Uint8Array(0) },
      reject: false,
      rejectHint: 0,
      context: new Uint8Array(0),
    });
    try {
      driver.start();
      // a cut upload: rejected, no file, nothing to step
      await assertRejects(
        () => driver.receiveSnapshot(msg(40), upload(image, 65536, 100_000)),
        Error,
        "reset",
      );
      assertEquals([...Deno.readDirSync(`${dir}/snap`)].length, 0);

      const m = await driver.receiveSnapshot(msg(50), upload(image, 65536));
      assertEquals(m.snapshot?.data.length, 0, "the message carries no image");
      assertEquals((await snapshotter.load(50, 3)).data, image, "durable in its file before Raft sees it");
      const opens = fs.tmpOpens;
      node.step(m);
      driver.kick();
      await driver.waitApplied(50);
      assertEquals(fs.tmpOpens, opens, "the snapshot file is not written again");
      assertEquals(restored.length, 1);
      assertEquals(restored[0].metadata.index, 50);
      assertEquals(restored[0].data, image, "restored from the file");
      const acked = () => sent.some((s) => s.type === MessageType.AppResp && s.index === 50);
      for (let i = 0; i < 100 && !acked(); i++) await new Promise((r) => setTimeout(r, 5));
      assert(acked(), "acknowledged");
      await driver.stop();
      await driver.closeStorage();
      // the WAL marks it, so a restart recovers from it
      const marks = await Wal.snapshotMarks(walDir);
      assert(marks.some((k) => k.index === 50 && k.term === 3), "marked in the WAL");
      assertEquals((await snapshotter.loadNewestAvailable(marks))?.data, image);
    } finally {
      await driver.stop();
      await driver.closeStorage().catch(() => {});
    }
  });
});

Deno.test("snapshot views through the peer transport: released after a send done, failed or never started", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "snapshot_stream_test_" });
  const snapshotter = new Snapshotter(`${dir}/snap`);
  const views = new SnapshotViews();
  let sinkFails = false;
  const follower = await startNode(2n, {
    receiveSnapshot: async (m, image) => {
      if (!sinkFails) {
        const { index, term } = m.snapshot!.metadata;
        await snapshotter.saveStream({ index, term, size: image.size, chunks: image.chunks() });
        return m;
      }
      let n = 0;
      for await (const _ of image.chunks()) if (++n === 2) break;
      throw new Error("disk full");
    },
  });
  const status: [bigint, boolean][] = [];
  const leader = await startNode(1n, {
    snapshotStream: (m) => views.open(m.to, m.snapshot!.metadata.index),
    onSnapshotStatus: (id, ok) => {
      views.settled(id);
      status.push([id, ok]);
    },
  });
  const nodes = [leader, follower];
  // as the driver does: pin for the MsgSnap, hand it to the transport, drop the pin
  const send = (to: bigint, c: SnapshotCapture) => {
    views.pin(1234, () => c);
    const m = snapMessage(1n, to, new Uint8Array(0));
    const drop = views.takePins();
    leader.t.send([m]);
    drop();
  };
  try {
    await link(nodes);
    await t.step("done: the follower has the image in its file, the view is released", async () => {
      const c = fakeCapture(3000);
      send(2n, c);
      await waitFor(() => status.length === 1, 10_000, "the outcome");
      assertEquals(status[0], [2n, true]);
      assertEquals([views.size, c.released, c.read], [0, 1, 3000]);
      assertEquals(follower.received.length, 1);
      assertEquals((await snapshotter.load(1234, 3)).data, collectBytes(fakeCapture(3000).data));
    });
    await t.step("failed midway (the follower refuses after a few chunks): released", async () => {
      sinkFails = true;
      const c = fakeCapture(512, 65536); // 32 MiB: more than the sockets' buffers hold
      send(2n, c);
      await waitFor(() => status.length === 2, 10_000, "the outcome");
      assertEquals(status[1], [2n, false]);
      await waitFor(() => c.released === 1, 5000, "the release");
      assertEquals(views.size, 0);
      assert(c.read < 512, `the upload stopped early (${c.read} chunks read)`);
    });
    await t.step("never started (nobody listens at the peer's address): released, nothing read", async () => {
      const port = follower.port;
      leader.t.addPeer(3n, [`http://127.0.0.1:${port === 1 ? 2 : 1}`]);
      const c = fakeCapture(3000);
      send(3n, c);
      await waitFor(() => status.length === 3, 10_000, "the outcome");
      assertEquals(status[2], [3n, false]);
      assertEquals([views.size, c.released, c.read], [0, 1, 0]);
    });
  } finally {
    await stopAll(nodes);
    views.close();
    await Deno.remove(dir, { recursive: true });
  }
});
