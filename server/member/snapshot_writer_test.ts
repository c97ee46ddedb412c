import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { Wal } from "../../storage/wal.ts";
import { Snapshotter } from "../../storage/snapshot.ts";
import type { ByteStream } from "../../storage/byte_stream.ts";
import { createLogger } from "../logger.ts";
import { ServerStorage } from "./raft_driver.ts";
import { type SnapshotCapture, SnapshotWriter } from "./snapshot_writer.ts";

const CONF = { voters: [1n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };

/** A capture of `n` chunks of 1 KiB (chunk i filled with i), counting what is read and released. */
function capture(n: number, failAt = -1): SnapshotCapture & { taken: number; released: number } {
  const c = {
    taken: 0,
    released: 0,
    data: {
      size: n * 1024,
      *chunks() {
        for (let i = 0; i < n; i++) {
          if (i === failAt) throw new Error("the image could not be read");
          c.taken++;
          yield new Uint8Array(1024).fill(i);
        }
      },
    } as ByteStream,
    release() {
      c.released++;
    },
  };
  return c;
}

async function setup(
  body: (x: {
    walDir: string;
    wal: Wal;
    snapshotter: Snapshotter;
    storage: ServerStorage;
    writer: SnapshotWriter;
    saved: number[];
    failed: Error[];
  }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const walDir = `${dir}/wal`;
  const wal = await Wal.create(walDir, { memberId: 1n, clusterId: 2n }, { preallocate: false });
  try {
    const entries = Array.from(
      { length: 20 },
      (_, i) => ({ term: 1, index: i + 1, type: 0, data: new Uint8Array(8) }),
    );
    wal.append(entries, { term: 1, vote: 1n, commit: 20 });
    await wal.sync();
    const storage = new ServerStorage();
    storage.append(entries);
    const snapshotter = new Snapshotter(`${dir}/snap`);
    const saved: number[] = [];
    const failed: Error[] = [];
    const writer = new SnapshotWriter({
      wal,
      snapshotter,
      storage,
      logger: createLogger({ level: "error", write: () => {} }),
      maxSnapshots: 1,
      onSaved: (index) => saved.push(index),
      onFailed: (err) => failed.push(err),
    });
    await body({ walDir, wal, snapshotter, storage, writer, saved, failed });
  } finally {
    await wal.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("snapshot writer", async (t) => {
  await t.step("writes in the background, then marks the WAL and keeps the newest file", async () => {
    await setup(async ({ walDir, snapshotter, storage, writer, saved, failed }) => {
      const first = capture(64);
      writer.start({ index: 10, term: 1, confState: CONF, capture: first });
      // start returns before anything is read: the caller's loop goes on
      assert(writer.busy);
      assertEquals(first.taken, 0);
      assertEquals(saved, []);
      assertEquals(await Wal.snapshotMarks(walDir), [{ index: 0, term: 0 }]);
      await writer.settle();
      assert(!writer.busy);
      assertEquals([first.taken, first.released], [64, 1]);
      assertEquals(saved, [10]);
      assertEquals(failed, []);
      assertEquals(storage.heldSnapshotIndex(), 10);
      const marks = await Wal.snapshotMarks(walDir);
      assertEquals(marks.map((m) => m.index), [0, 10]);
      const loaded = await snapshotter.loadNewestAvailable(marks);
      assertEquals(loaded?.index, 10);
      assertEquals(loaded?.data.length, 64 * 1024);
      assertEquals(loaded?.data[63 * 1024], 63);

      writer.start({ index: 20, term: 1, confState: CONF, capture: capture(4) });
      await writer.settle();
      assertEquals(saved, [10, 20]);
      // --max-snapshots 1: the older file is purged once the newer one is marked
      assertEquals(await snapshotter.loadNewestAvailable([{ index: 10, term: 1 }]), undefined);
      assertEquals((await snapshotter.loadNewestAvailable(await Wal.snapshotMarks(walDir)))?.index, 20);
    });
  });

  await t.step("one at a time", async () => {
    await setup(async ({ writer }) => {
      writer.start({ index: 10, term: 1, confState: CONF, capture: capture(4) });
      // a second snapshot while one is written is refused
      assertThrows(() => writer.start({ index: 11, term: 1, confState: CONF, capture: capture(4) }));
      await writer.settle();
    });
  });

  await t.step("abandoned for a newer one: stops, leaves no file and no mark", async () => {
    await setup(async ({ walDir, snapshotter, writer, saved, failed }) => {
      const c = capture(64);
      writer.start({ index: 10, term: 1, confState: CONF, capture: c });
      await writer.abandon();
      assert(!writer.busy);
      assert(c.taken < 64, `all ${c.taken} chunks were read`);
      assertEquals(c.released, 1);
      assertEquals([saved, failed], [[], []]);
      assertEquals(await Wal.snapshotMarks(walDir), [{ index: 0, term: 0 }]);
      assertEquals(await snapshotter.loadNewest(), undefined);
    });
  });

  await t.step("a failed write is reported, and nothing is marked", async () => {
    await setup(async ({ walDir, writer, saved, failed }) => {
      const c = capture(8, 3);
      writer.start({ index: 10, term: 1, confState: CONF, capture: c });
      await writer.settle();
      assertEquals(saved, []);
      assertEquals(failed.map((e) => e.message), ["the image could not be read"]);
      assertEquals(c.released, 1);
      assertEquals(await Wal.snapshotMarks(walDir), [{ index: 0, term: 0 }]);
    });
  });
});
