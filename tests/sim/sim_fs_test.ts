/**
 * The simulated disk, checked through the production WAL and snapshotter: what was fsynced survives every
 * crash, what was not may be lost or torn, a failed fsync fails the log, a snapshot save is atomic, what
 * recovery reads stays durable, and the disk's faults are real enough to lose data when code does not
 * sync (or a disk lies).
 *
 * @module
 */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { Wal, type WalEntry, WalFailedError } from "../../storage/wal.ts";
import { syncDir } from "../../storage/fs_util.ts";
import { Snapshotter } from "../../storage/snapshot.ts";
import { EventQueue } from "./network.ts";
import { Prng } from "./prng.ts";
import { GOOD_DISK, SimDisk } from "./sim_fs.ts";
import { Settler } from "./sim_runtime.ts";

const META = { memberId: 1n, clusterId: 2n };

/** Runs the queue (settling microtasks after each event) until `p` settles; returns its outcome. */
async function drive<T>(queue: EventQueue, settler: Settler, p: Promise<T>): Promise<T> {
  let done = false;
  p.then(() => done = true, () => done = true);
  await settler.settle();
  while (!done) {
    if (!queue.runNext()) throw new Error("the simulation ran dry before the operation finished");
    await settler.settle();
  }
  return p;
}

/** Creates `path` holding `bytes`, fsynced (its name is durable only once its directory is synced). */
async function writeSynced(
  queue: EventQueue,
  settler: Settler,
  disk: SimDisk,
  path: string,
  bytes: Uint8Array,
): Promise<void> {
  const f = await drive(queue, settler, disk.fs.open(path, { write: true, create: true }));
  await drive(queue, settler, f.write(bytes));
  await drive(queue, settler, f.sync());
  f.close();
}

function entry(index: number): WalEntry {
  return {
    term: 1,
    index,
    type: 0,
    data: new TextEncoder().encode(`value ${index} `.repeat(1 + (index % 40))),
  };
}

Deno.test("simulated disk: synced WAL records survive crashes; the rest may be lost or torn", async () => {
  const settler = new Settler();
  let torn = 0;
  let lost = 0;
  try {
    for (let seed = 1; seed <= 60; seed++) {
      const rng = new Prng(seed);
      const queue = new EventQueue();
      const disk = new SimDisk(queue, rng.fork(), { ...GOOD_DISK, shortWriteRate: 0.2, tornWriteRate: 0.7 });
      const options = {
        fs: disk.fs,
        segmentBytes: 4096,
        preallocate: seed % 2 === 0,
        randomU32: () => rng.nextU32(),
      };
      const wal = await drive(queue, settler, Wal.create("/data/wal", META, options));
      let acked = 0;
      let appended = 0;
      const rounds = rng.range(5, 30);
      for (let r = 0; r < rounds; r++) {
        const n = rng.range(1, 5);
        wal.append(Array.from({ length: n }, (_, i) => entry(appended + 1 + i)), {
          term: 1,
          vote: 0n,
          commit: 0,
        });
        appended += n;
        await drive(queue, settler, wal.sync());
        acked = appended;
      }
      // a last write in flight when the power goes
      wal.append(Array.from({ length: 3 }, (_, i) => entry(appended + 1 + i)));
      appended += 3;
      wal.sync().catch(() => {});
      for (let k = rng.int(4); k > 0 && queue.runNext(); k--) await settler.settle();
      disk.crash();
      const opened = await drive(
        queue,
        settler,
        Wal.open("/data/wal", { index: 0, term: 0 }, { ...options, fs: disk.fs }),
      );
      const got = opened.entries;
      assert(
        got.length >= acked,
        `seed ${seed}: ${got.length} entries after the crash, ${acked} were acknowledged`,
      );
      assert(got.length <= appended, `seed ${seed}: entries appeared from nowhere`);
      for (const e of got) assertEquals(e, entry(e.index), `seed ${seed}: entry ${e.index} differs`);
      if (opened.repaired) torn++;
      if (got.length < appended) lost++;
      // the log is usable again
      opened.wal.append([entry(got.length + 1)]);
      await drive(queue, settler, opened.wal.sync());
      await drive(queue, settler, opened.wal.close());
    }
  } finally {
    settler.close();
  }
  assert(torn > 0, "some crash tore a write");
  assert(lost > 0, "some crash lost unsynced entries");
});

Deno.test("simulated disk: a failed fsync fails the WAL for good", async () => {
  const settler = new Settler();
  try {
    const queue = new EventQueue();
    const disk = new SimDisk(queue, new Prng(5));
    const wal = await drive(queue, settler, Wal.create("/w", META, { fs: disk.fs, segmentBytes: 8192 }));
    wal.append([entry(1)]);
    await drive(queue, settler, wal.sync());
    disk.faults.syncFailRate = 1;
    wal.append([entry(2)]);
    await assertRejects(() => drive(queue, settler, wal.sync()), WalFailedError);
    disk.faults.syncFailRate = 0;
    let refused: unknown;
    try {
      wal.append([entry(3)]);
    } catch (err) {
      refused = err;
    }
    assert(refused instanceof WalFailedError, "appends after a failed fsync are refused");
    await assertRejects(() => drive(queue, settler, wal.sync()), WalFailedError);
    // the write whose fsync failed never becomes durable, even though reads saw it
    disk.crash();
    const opened = await drive(queue, settler, Wal.open("/w", { index: 0, term: 0 }, { fs: disk.fs }));
    assertEquals(opened.entries.map((e) => e.index), [1]);
  } finally {
    settler.close();
  }
});

Deno.test("simulated disk: names need a directory sync; a lying fsync loses acknowledged data", async () => {
  const settler = new Settler();
  try {
    let vanished = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const queue = new EventQueue();
      const disk = new SimDisk(queue, new Prng(seed));
      await drive(queue, settler, disk.fs.mkdir("/d", { recursive: true }));
      await drive(queue, settler, syncDir("/", disk.fs));
      for (const [name, dirSync] of [["b", true], ["a", false]] as const) {
        await writeSynced(queue, settler, disk, `/d/${name}`, new Uint8Array([1, 2, 3]));
        if (dirSync) await drive(queue, settler, syncDir("/d", disk.fs));
      }
      disk.crash();
      assertEquals(disk.contents("/d/b"), new Uint8Array([1, 2, 3]), `seed ${seed}`);
      if (disk.contents("/d/a") === undefined) vanished++;
    }
    assert(vanished > 0, "a file whose directory was never synced vanished in some crash");

    let lostAcked = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const queue = new EventQueue();
      const disk = new SimDisk(queue, new Prng(seed), { ...GOOD_DISK });
      const wal = await drive(queue, settler, Wal.create("/w", META, { fs: disk.fs, segmentBytes: 8192 }));
      disk.faults.lyingFsync = true;
      wal.append([entry(1), entry(2)]);
      await drive(queue, settler, wal.sync());
      disk.crash();
      const opened = await drive(queue, settler, Wal.open("/w", { index: 0, term: 0 }, { fs: disk.fs }));
      if (opened.entries.length < 2) lostAcked++;
    }
    assert(lostAcked > 0, "a lying fsync lost acknowledged entries in some crash");
  } finally {
    settler.close();
  }
});

Deno.test("simulated disk: a rename made durable survives a crash while later names are not", async () => {
  const settler = new Settler();
  try {
    for (let seed = 1; seed <= 20; seed++) {
      const queue = new EventQueue();
      const disk = new SimDisk(queue, new Prng(seed));
      const write = (path: string, byte: number) =>
        writeSynced(queue, settler, disk, path, new Uint8Array([byte]));
      await drive(queue, settler, disk.fs.mkdir("/d", { recursive: true }));
      await drive(queue, settler, disk.fs.mkdir("/e", { recursive: true }));
      await drive(queue, settler, syncDir("/", disk.fs));
      // two files under one directory, both names durable (as two receives of one snapshot leave them)
      await write("/d/x", 1);
      await write("/d/x.tmp", 2);
      await drive(queue, settler, syncDir("/d", disk.fs));
      // the second replaces the first by a rename; then a name elsewhere, never synced
      await drive(queue, settler, disk.fs.rename("/d/x.tmp", "/d/x"));
      await write("/e/y", 3);
      await drive(queue, settler, syncDir("/d", disk.fs));
      disk.crash();
      assertEquals(disk.contents("/d/x"), new Uint8Array([2]), `seed ${seed}`);
      assertEquals(disk.contents("/d/x.tmp"), undefined, `seed ${seed}`);
    }
  } finally {
    settler.close();
  }
});

Deno.test("simulated disk: what Wal.open read after a process crash survives a power loss", async () => {
  const settler = new Settler();
  try {
    // a write reached the page cache, the process died before its fsync, the restarted process read it
    for (let seed = 1; seed <= 40; seed++) {
      const queue = new EventQueue();
      const disk = new SimDisk(queue, new Prng(seed));
      const first = disk.openProcess();
      const wal = await drive(queue, settler, Wal.create("/w", META, { fs: first.fs, segmentBytes: 8192 }));
      wal.append([entry(1), entry(2)], { term: 1, vote: 0n, commit: 0 });
      await drive(queue, settler, wal.sync());
      let killed = false;
      disk.armCrash(1, () => {
        first.kill();
        killed = true;
      });
      wal.append([entry(3), entry(4)], { term: 2, vote: 7n, commit: 2 });
      wal.sync().catch(() => {});
      while (!killed && queue.runNext()) await settler.settle();
      assert(killed);
      const second = disk.openProcess();
      const read = await drive(queue, settler, Wal.open("/w", { index: 0, term: 0 }, { fs: second.fs }));
      disk.crash();
      const again = await drive(queue, settler, Wal.open("/w", { index: 0, term: 0 }, { fs: disk.fs }));
      assertEquals(
        again.entries.map((e) => e.index),
        read.entries.map((e) => e.index),
        `seed ${seed}: entries read after the restart were lost by a power loss`,
      );
      assertEquals(again.hardState, read.hardState, `seed ${seed}: the hard state read went back`);
    }
    // the process died while Wal.create was making the log; the restarted process found it
    for (let seed = 1; seed <= 40; seed++) {
      for (let events = 1; events < 24; events++) {
        const queue = new EventQueue();
        const disk = new SimDisk(queue, new Prng(seed * 100 + events));
        const first = disk.openProcess();
        Wal.create("/data/w", META, { fs: first.fs, segmentBytes: 4096 }).catch(() => {});
        await settler.settle();
        for (let k = 0; k < events && queue.runNext(); k++) await settler.settle();
        first.kill();
        const second = disk.openProcess();
        if (!(await drive(queue, settler, Wal.exists("/data/w", second.fs)))) continue;
        const read = await drive(
          queue,
          settler,
          Wal.open("/data/w", { index: 0, term: 0 }, { fs: second.fs }),
        );
        read.wal.append([entry(1)], { term: 1, vote: 3n, commit: 0 });
        await drive(queue, settler, read.wal.sync());
        disk.crash();
        assert(
          await drive(queue, settler, Wal.exists("/data/w", disk.fs)),
          `seed ${seed}/${events}: a log that was opened and written vanished in a power loss`,
        );
        const again = await drive(
          queue,
          settler,
          Wal.open("/data/w", { index: 0, term: 0 }, { fs: disk.fs }),
        );
        assertEquals(again.entries.map((e) => e.index), [1], `seed ${seed}/${events}`);
      }
    }
  } finally {
    settler.close();
  }
});

Deno.test("simulated disk: after a failed fsync and a process restart, what open read stays", async () => {
  const settler = new Settler();
  try {
    // the write whose fsync failed stays readable in the page cache, but its pages are marked clean: the
    // restarted process reads it (a vote, entries) and acts on it, so a later power loss must not take it
    for (let seed = 1; seed <= 40; seed++) {
      const queue = new EventQueue();
      const disk = new SimDisk(queue, new Prng(seed));
      const options = { segmentBytes: 8192, preallocate: seed % 2 === 0 };
      const first = disk.openProcess();
      const wal = await drive(queue, settler, Wal.create("/w", META, { ...options, fs: first.fs }));
      wal.append([entry(1), entry(2)], { term: 1, vote: 0n, commit: 0 });
      await drive(queue, settler, wal.sync());
      disk.faults.syncFailRate = 1;
      wal.append([entry(3), entry(4)], { term: 2, vote: 7n, commit: 2 });
      await assertRejects(() => drive(queue, settler, wal.sync()), WalFailedError);
      disk.faults.syncFailRate = 0;
      first.kill(); // the member stops on the failed fsync; no reboot
      const second = disk.openProcess();
      const read = await drive(
        queue,
        settler,
        Wal.open("/w", { index: 0, term: 0 }, { ...options, fs: second.fs }),
      );
      assertEquals(read.entries.map((e) => e.index), [1, 2, 3, 4], `seed ${seed}: the page cache was read`);
      assertEquals(read.hardState, { term: 2, vote: 7n, commit: 2 }, `seed ${seed}`);
      const appendFirst = seed % 3 !== 0;
      if (appendFirst) {
        read.wal.append([entry(5)], { term: 2, vote: 7n, commit: 4 });
        await drive(queue, settler, read.wal.sync());
      }
      disk.crash();
      const again = await drive(
        queue,
        settler,
        Wal.open("/w", { index: 0, term: 0 }, { ...options, fs: disk.fs }),
      );
      assertEquals(
        again.entries.map((e) => e.index),
        appendFirst ? [1, 2, 3, 4, 5] : [1, 2, 3, 4],
        `seed ${seed}: entries the restarted member read or appended were lost by a power loss`,
      );
      assertEquals(
        again.hardState,
        { term: 2, vote: 7n, commit: appendFirst ? 4 : 2 },
        `seed ${seed}: the vote the restarted member read went back`,
      );
      for (const e of again.entries) {
        assertEquals(e, entry(e.index), `seed ${seed}: entry ${e.index} differs`);
      }
    }
  } finally {
    settler.close();
  }
});

Deno.test("simulated disk: a torn tail whose repair failed to sync does not come back", async () => {
  const settler = new Settler();
  const big = (index: number): WalEntry => ({
    term: 1,
    index,
    type: 0,
    data: new Uint8Array(1500).fill(index),
  });
  let exercised = 0;
  try {
    for (let seed = 1; seed <= 40; seed++) {
      const queue = new EventQueue();
      const disk = new SimDisk(queue, new Prng(seed), { ...GOOD_DISK, tornWriteRate: 1 });
      const options = { segmentBytes: 65536, preallocate: seed % 2 === 0 };
      const wal = await drive(queue, settler, Wal.create("/w", META, { ...options, fs: disk.fs }));
      wal.append([big(1)]);
      await drive(queue, settler, wal.sync());
      // power loss once a large write reached the page cache, before its fsync: it may tear
      let crashed = false;
      disk.armCrash(1, () => {
        disk.crash();
        crashed = true;
      });
      wal.append([2, 3, 4, 5, 6].map(big));
      wal.sync().catch(() => {});
      while (!crashed && queue.runNext()) await settler.settle();
      const torn = disk.stats.tornWrites > 0;
      // the repair of the torn tail fails to sync; the member stops and restarts on the same page cache
      disk.faults.syncFailRate = 1;
      const first = disk.openProcess();
      await assertRejects(() =>
        drive(queue, settler, Wal.open("/w", { index: 0, term: 0 }, { ...options, fs: first.fs }))
      );
      first.kill();
      disk.faults.syncFailRate = 0;
      const second = disk.openProcess();
      const read = await drive(
        queue,
        settler,
        Wal.open("/w", { index: 0, term: 0 }, { ...options, fs: second.fs }),
      );
      const n = read.entries.length;
      read.wal.append([entry(n + 1)]);
      await drive(queue, settler, read.wal.sync());
      disk.crash();
      const again = await drive(
        queue,
        settler,
        Wal.open("/w", { index: 0, term: 0 }, { ...options, fs: disk.fs }),
      );
      assertEquals(
        again.entries.map((e) => e.index),
        Array.from({ length: n + 1 }, (_, i) => i + 1),
        `seed ${seed}: the log after the power loss`,
      );
      assertEquals(again.entries[n], entry(n + 1), `seed ${seed}`);
      if (torn && n < 6) exercised++;
    }
  } finally {
    settler.close();
  }
  assert(exercised > 5, `a torn tail was repaired in ${exercised} runs only`);
});

Deno.test("simulated disk: with a seeded salt source, a WAL writes the same bytes every time", async () => {
  const settler = new Settler();
  try {
    const image = async (randomU32?: () => number): Promise<Uint8Array> => {
      const queue = new EventQueue();
      const disk = new SimDisk(queue, new Prng(1));
      const wal = await drive(
        queue,
        settler,
        Wal.create("/w", META, { fs: disk.fs, segmentBytes: 4096, randomU32 }),
      );
      wal.append([entry(1), entry(2)]);
      await drive(queue, settler, wal.sync());
      return disk.contents("/w/0000000000000000-0000000000000000.wal")!;
    };
    const seeded = () => {
      const rng = new Prng(42);
      return () => rng.nextU32();
    };
    assertEquals(await image(seeded()), await image(seeded()));
    const a = await image();
    const b = await image();
    assert(a.length === b.length && a.some((x, i) => x !== b[i]), "salts from crypto differ between logs");
  } finally {
    settler.close();
  }
});

Deno.test("simulated disk: a snapshot save is all or nothing across a power loss", async () => {
  const settler = new Settler();
  let sawNew = 0;
  let sawOld = 0;
  try {
    for (let seed = 1; seed <= 60; seed++) {
      const queue = new EventQueue();
      const rng = new Prng(seed);
      const disk = new SimDisk(queue, rng.fork(), { ...GOOD_DISK, shortWriteRate: 0.3 });
      const old = { index: 10, term: 1, data: new Uint8Array(3000).fill(7) };
      await drive(queue, settler, new Snapshotter("/snap", { fs: disk.fs }).save(old));
      const next = { index: 20, term: 2, data: new Uint8Array(5000).fill(9) };
      new Snapshotter("/snap", { fs: disk.fs }).save(next).catch(() => {});
      for (let k = rng.int(25); k > 0 && queue.runNext(); k--) await settler.settle();
      disk.crash();
      const got = await drive(queue, settler, new Snapshotter("/snap", { fs: disk.fs }).loadNewest());
      assert(got !== undefined, `seed ${seed}: the saved snapshot vanished`);
      if (got.index === 20) {
        assertEquals(got.data, next.data);
        sawNew++;
      } else {
        assertEquals(got.data, old.data, `seed ${seed}`);
        sawOld++;
      }
    }
  } finally {
    settler.close();
  }
  assert(sawNew > 0 && sawOld > 0, `both outcomes happen (new ${sawNew}, old ${sawOld})`);
});
