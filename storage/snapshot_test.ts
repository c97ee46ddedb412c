import { assert, assertEquals, assertMatch, assertRejects } from "../tests/assert.ts";
import { join } from "node:path";
import { type ByteStream, streamOf } from "./byte_stream.ts";
import { SNAPSHOT_FLUSH_BYTES, SnapshotCorruptError, type SnapshotFile, Snapshotter } from "./snapshot.ts";
import { denoFs, type FileSystem } from "./fs.ts";

async function withSnapDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "snapshot_test_" });
  try {
    await fn(join(root, "member", "snap"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

function snap(index: number, term: number, size = 1000): SnapshotFile {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (i * 13 + index) & 0xff;
  return { index, term, data };
}

/** `snap`'s data as a stream that refills one small buffer for every chunk. */
function reusedBuffer(data: Uint8Array, chunk: number, size = data.length): ByteStream {
  return {
    size,
    *chunks() {
      const buf = new Uint8Array(chunk);
      for (let p = 0; p < data.length; p += chunk) {
        const n = Math.min(chunk, data.length - p);
        buf.set(data.subarray(p, p + n));
        yield buf.subarray(0, n);
        buf.fill(0xee); // a writer still holding the chunk would see this
      }
    },
  };
}

async function names(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

async function corruptionOf(s: Snapshotter): Promise<SnapshotCorruptError> {
  return await assertRejects(() => s.loadNewest(), SnapshotCorruptError) as SnapshotCorruptError;
}

Deno.test("snapshot: save and load the newest", async () => {
  await withSnapDir(async (dir) => {
    const s = new Snapshotter(dir);
    assertEquals(await s.loadNewest(), undefined, "no directory yet");
    await s.save(snap(100, 2));
    await s.save(snap(0x1234, 3, 0));
    await s.save(snap(300, 3, 200_000));
    assertEquals(await names(dir), [
      "0000000000000002-0000000000000064.snap",
      "0000000000000003-000000000000012c.snap",
      "0000000000000003-0000000000001234.snap",
    ]);
    const newest = await s.loadNewest();
    assertEquals(newest, snap(0x1234, 3, 0));
    await Deno.remove(join(dir, "0000000000000003-0000000000001234.snap"));
    assertEquals(await new Snapshotter(dir).loadNewest(), snap(300, 3, 200_000));
  });
});

Deno.test("snapshot: a streamed image is written chunk by chunk, checksummed in the same pass", async () => {
  await withSnapDir(async (dir) => {
    const s = new Snapshotter(dir);
    const want = snap(500, 4, 100_003);
    await s.save({ index: 500, term: 4, data: reusedBuffer(want.data, 4096) });
    assertEquals(await s.loadNewest(), want);
    await s.save({ index: 600, term: 4, data: streamOf(want.data.subarray(0, 10), want.data.subarray(10)) });
    assertEquals((await s.loadNewest())?.data, want.data);
    // a stream that ends early: no snapshot file, the previous one stays the newest
    await assertRejects(
      () => s.save({ index: 700, term: 4, data: reusedBuffer(want.data, 4096, want.data.length + 1) }),
      Error,
      "announced",
    );
    assertEquals((await s.loadNewest())?.index, 600);
    assertEquals((await names(dir)).length, 2);
  });
});

Deno.test("snapshot: a large image is flushed every SNAPSHOT_FLUSH_BYTES on the way, then fsynced", async () => {
  await withSnapDir(async (dir) => {
    // what reaches the temporary file, in order: bytes written since the last flush, then the flush
    const events: string[] = [];
    let pending = 0;
    const fs: FileSystem = {
      ...denoFs,
      open: async (path, options) => {
        const f = await denoFs.open(path, options);
        if (!path.endsWith(".tmp")) return f;
        return Object.assign(Object.create(f), {
          write: async (p: Uint8Array) => {
            const n = await f.write(p);
            pending += n;
            return n;
          },
          syncData: async () => {
            await f.syncData();
            events.push(`${pending} then syncData`);
            pending = 0;
          },
          sync: async () => {
            await f.sync();
            events.push(`${pending} then sync`);
            pending = 0;
          },
          close: () => f.close(),
        });
      },
    };
    const s = new Snapshotter(dir, { fs });
    const size = 2 * SNAPSHOT_FLUSH_BYTES + 100_000;
    const want = snap(800, 5, size);
    await s.save({ index: 800, term: 5, data: reusedBuffer(want.data, 64 * 1024) });
    assertEquals(events, [
      `${32 + SNAPSHOT_FLUSH_BYTES} then syncData`,
      `${SNAPSHOT_FLUSH_BYTES} then syncData`,
      `${100_000 + 4} then sync`,
    ]);
    assertEquals(await new Snapshotter(dir).loadNewest(), want);
  });
});

Deno.test("snapshot: purge keeps the newest ones and drops leftovers of interrupted saves", async () => {
  await withSnapDir(async (dir) => {
    const s = new Snapshotter(dir);
    for (let i = 1; i <= 6; i++) await s.save(snap(i * 10, 1, 10));
    await Deno.writeFile(join(dir, "0000000000000001-0000000000000070.snap.tmp"), new Uint8Array(5));
    await Deno.writeFile(join(dir, "unrelated.txt"), new Uint8Array(1));
    await s.purge(2);
    assertEquals(await names(dir), [
      "0000000000000001-0000000000000032.snap",
      "0000000000000001-000000000000003c.snap",
      "unrelated.txt",
    ]);
    assertEquals((await s.loadNewest())?.index, 60);
    await s.purge(0);
    assertEquals(await names(dir), ["unrelated.txt"]);
    assertEquals(await s.loadNewest(), undefined);
  });
});

Deno.test("snapshot: loadNewest of a damaged newest snapshot is an error naming the file", async (t) => {
  await withSnapDir(async (dir) => {
    const s = new Snapshotter(dir);
    await s.save(snap(10, 1));
    await s.save(snap(20, 1));
    const newest = join(dir, "0000000000000001-0000000000000014.snap");
    const good = await Deno.readFile(newest);

    await t.step("flipped byte in the data", async () => {
      const b = good.slice();
      b[500] ^= 0x04;
      await Deno.writeFile(newest, b);
      const err = await corruptionOf(s);
      assertEquals(err.code, "SNAPSHOT_CORRUPT");
      assertEquals(err.file, newest);
      assert(err.message.includes(newest) && err.message.includes("checksum"), err.message);
    });

    await t.step("truncated file", async () => {
      await Deno.writeFile(newest, good.subarray(0, good.length - 10));
      const err = await corruptionOf(s);
      assertEquals(err.file, newest);
    });

    await t.step("empty file", async () => {
      await Deno.writeFile(newest, new Uint8Array(0));
      assertEquals((await corruptionOf(s)).file, newest);
    });

    await t.step("valid content under another snapshot's name", async () => {
      await Deno.writeFile(newest, good);
      const other = join(dir, "0000000000000001-0000000000000063.snap");
      await Deno.copyFile(newest, other);
      const err = await corruptionOf(s);
      assertEquals(err.file, other);
      assert(err.message.includes("name"), err.message);
      await Deno.remove(other);
    });

    await t.step("restored file loads again", async () => {
      assertEquals(await s.loadNewest(), snap(20, 1));
    });
  });
});

Deno.test("snapshot: loadNewestAvailable skips snapshots the WAL has no mark for", async () => {
  await withSnapDir(async (dir) => {
    const s = new Snapshotter(dir);
    await s.save(snap(20, 1));
    await s.save(snap(40, 2)); // saved, then a crash before its WAL mark was synced
    const marks = [{ index: 0, term: 0 }, { index: 20, term: 1 }, { index: 40, term: 1 }];
    assertEquals(await s.loadNewestAvailable(marks), snap(20, 1), "term must match too");
    assertEquals((await s.loadNewest())?.index, 40);
    assertEquals(await s.loadNewestAvailable([{ index: 0, term: 0 }]), undefined);
  });
});

Deno.test("snapshot: a newest snapshot that does not verify gives way to an older one, or to the WAL", async (t) => {
  await withSnapDir(async (dir) => {
    const s = new Snapshotter(dir);
    const marks = [{ index: 0, term: 0 }, { index: 20, term: 1 }, { index: 40, term: 2 }];
    const hex = (n: number) => n.toString(16).padStart(16, "0");
    const name = (index: number, term: number) => join(dir, `${hex(term)}-${hex(index)}.snap`);
    const exists = (path: string) => Deno.stat(path).then(() => true, () => false);
    const truncateHalf = async (path: string) => await Deno.truncate(path, (await Deno.stat(path)).size >> 1);
    await s.save(snap(20, 1));
    await s.save(snap(40, 2));
    await truncateHalf(name(40, 2));

    await t.step("no older start point: the newest's error, nothing renamed", async () => {
      const later = marks.slice(1); // the WAL's first segments are gone: index 0 cannot be replayed
      await Deno.truncate(name(20, 1), 0);
      await assertRejects(() => s.loadNewestAvailable(later), SnapshotCorruptError, "header says");
      assert(await exists(name(40, 2)) && await exists(name(20, 1)), "a file was moved");
      await s.save(snap(20, 1)); // whole again
    });

    await t.step("an older snapshot that verifies is used; the broken one is set aside", async () => {
      const moved: string[] = [];
      assertEquals(await s.loadNewestAvailable(marks, (_e, to) => moved.push(to)), snap(20, 1));
      assertEquals(moved, [`${name(40, 2)}.broken`]);
      assert(await exists(`${name(40, 2)}.broken`) && !await exists(name(40, 2)));
    });

    await t.step("every snapshot broken, the WAL whole from index 0: start from the WAL", async () => {
      await truncateHalf(name(20, 1));
      const errors: string[] = [];
      assertEquals(await s.loadNewestAvailable(marks, (e) => errors.push(e.message)), undefined);
      assertEquals(errors.length, 1);
      assertMatch(errors[0], /0000000000000014\.snap is corrupt/);
    });
  });
});

/** `data` as an async upload in chunks of `chunk` bytes refilling one buffer; throws after `cutAt` bytes. */
async function* upload(data: Uint8Array, chunk: number, cutAt = Infinity): AsyncGenerator<Uint8Array> {
  const buf = new Uint8Array(chunk);
  for (let p = 0; p < data.length; p += chunk) {
    if (p >= cutAt) throw new Error("connection reset");
    await new Promise((r) => setTimeout(r, 0)); // the next piece arrives later
    const n = Math.min(chunk, data.length - p);
    buf.set(data.subarray(p, p + n));
    yield buf.subarray(0, n);
    buf.fill(0xee);
  }
}

Deno.test("snapshot: saveStream writes an upload as it arrives; a cut one leaves no file", async (t) => {
  await withSnapDir(async (dir) => {
    const s = new Snapshotter(dir);
    const whole = snap(0x40, 3, 100_000);
    await t.step("whole: loads back, by index and term and as the newest", async () => {
      await s.saveStream({ index: 0x40, term: 3, size: whole.data.length, chunks: upload(whole.data, 4096) });
      assertEquals(await s.load(0x40, 3), whole);
      assertEquals(await s.loadNewest(), whole);
      assertEquals(await names(dir), ["0000000000000003-0000000000000040.snap"]);
    });
    await t.step("cut in the middle: rejects, and neither the file nor its temporary is left", async () => {
      const next = snap(0x50, 3, 100_000);
      await assertRejects(
        () =>
          s.saveStream({
            index: 0x50,
            term: 3,
            size: next.data.length,
            chunks: upload(next.data, 4096, 50_000),
          }),
        Error,
        "connection reset",
      );
      assertEquals(await names(dir), ["0000000000000003-0000000000000040.snap"]);
      await assertRejects(() => s.load(0x50, 3), Deno.errors.NotFound);
    });
    await t.step("short or long of the announced size: rejects, no file", async () => {
      const next = snap(0x60, 3, 10_000);
      await assertRejects(
        () => s.saveStream({ index: 0x60, term: 3, size: 10_001, chunks: upload(next.data, 4096) }),
        Error,
        "announced",
      );
      await assertRejects(
        () => s.saveStream({ index: 0x60, term: 3, size: 9_999, chunks: upload(next.data, 4096) }),
        Error,
        "announced",
      );
      assertEquals(await names(dir), ["0000000000000003-0000000000000040.snap"]);
    });
    await t.step("two saves of the same snapshot at once do not share a temporary file", async () => {
      const same = snap(0x70, 3, 200_000);
      await Promise.all([
        s.saveStream({ index: 0x70, term: 3, size: same.data.length, chunks: upload(same.data, 1000) }),
        s.saveStream({ index: 0x70, term: 3, size: same.data.length, chunks: upload(same.data, 3000) }),
      ]);
      assertEquals(await s.load(0x70, 3), same);
    });
    await t.step("the checksum is checked on load", async () => {
      const path = join(dir, "0000000000000003-0000000000000040.snap");
      const b = await Deno.readFile(path);
      b[32 + 5000] ^= 1;
      await Deno.writeFile(path, b);
      await assertRejects(() => s.load(0x40, 3), SnapshotCorruptError, "checksum mismatch");
    });
    await t.step("purge removes a temporary file an interrupted upload left", async () => {
      await Deno.writeFile(join(dir, "0000000000000003-0000000000000080.snap.7.tmp"), new Uint8Array(5));
      await s.purge(1);
      assertEquals(await names(dir), ["0000000000000003-0000000000000070.snap"]);
    });
  });
});
