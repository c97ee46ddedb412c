/**
 * The store with a history file against the same store without one: every answer must be identical,
 * while superseded values leave memory.
 */
import {
  ErrSnapshotCorrupt,
  type KeyValue,
  type MvccEvent,
  MvccStore,
  type MvccStoreOptions,
  type WriteTxn,
} from "./store.ts";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { b, descriptorsOn, heldFileBytes, heldFileBytesFall, prng, put, s } from "./test_util.ts";
import { denoFs, type FileSystem } from "../fs.ts";

/**
 * A fresh scratch path (the store unlinks it once open, so nothing is left behind), resolved, as the links
 * in /proc/self/fd name it.
 */
function tmpPath(): string {
  return Deno.realPathSync(Deno.makeTempFileSync({ prefix: "mvcc_history_test_" }));
}

function fmtKv(kv: KeyValue | undefined): string {
  if (kv === undefined) return "-";
  return `${s(kv.key)}=${
    [...kv.value].join(",")
  }@${kv.createRevision}/${kv.modRevision}/v${kv.version}/l${kv.lease}`;
}

function fmtEvents(evs: MvccEvent[]): string[] {
  return evs.map((e) => `${e.type} ${fmtKv(e.kv)} prev=${fmtKv(e.prevKv)}`);
}

function attempt<T>(fn: () => T): T | string {
  try {
    return fn();
  } catch (err) {
    return (err as Error).name;
  }
}

const KEYS = ["a", "a/1", "a/2", "b", "b/x", "c", "d", "zz"];

function randomValue(rnd: () => number, step: number): Uint8Array {
  const r = rnd();
  const n = r < 0.1 ? 0 : r < 0.97 ? 1 + Math.floor(rnd() * 300) : 2000 + Math.floor(rnd() * 70_000);
  const v = new Uint8Array(n);
  for (let i = 0; i < n; i++) v[i] = (step * 31 + i * 7) & 255;
  return v;
}

function rangeEnd(rnd: () => number): Uint8Array | undefined {
  const r = rnd();
  if (r < 0.4) return undefined;
  if (r < 0.6) return new Uint8Array([0]);
  return b(KEYS[Math.floor(rnd() * KEYS.length)] + "\x00");
}

/**
 * `image` with every value inline, as a store without a history file writes it: a store with one puts
 * superseded values in the image's value section, in the order they lie in its file.
 */
function inlineImage(image: Uint8Array): Uint8Array {
  return MvccStore.decodeSnapshot(image).encodeSnapshot();
}

function runSeed(seed: number, steps: number, options: MvccStoreOptions): void {
  const rnd = prng(seed);
  const plainStore = new MvccStore();
  let hist = new MvccStore(options);
  const ctx = (step: number) => `seed ${seed} step ${step}`;
  try {
    for (let step = 0; step < steps; step++) {
      const r = rnd();
      const rev = plainStore.currentRevision;
      if (r < 0.06) {
        const at = plainStore.compactRevision + 1 + Math.floor(rnd() * (rev - plainStore.compactRevision));
        // often compact at the current revision, which frees all history
        const target = rnd() < 0.3 ? rev : at;
        assertEquals(
          attempt(() => hist.compact(target)),
          attempt(() => plainStore.compact(target)),
          ctx(step),
        );
        continue;
      }
      if (r < 0.09) {
        const snap = hist.encodeSnapshot();
        assertEquals(inlineImage(snap), plainStore.encodeSnapshot(), ctx(step));
        hist.close();
        hist = MvccStore.decodeSnapshot(snap, options);
        continue;
      }
      const txns: WriteTxn[] = [hist.write(), plainStore.write()];
      const nOps = 1 + Math.floor(rnd() * 4);
      for (let i = 0; i < nOps; i++) {
        const op = rnd();
        const key = b(KEYS[Math.floor(rnd() * KEYS.length)]);
        if (op < 0.6) {
          const value = randomValue(rnd, step);
          const lease = rnd() < 0.2 ? 5n : 0n;
          const got = txns.map((t) => fmtKv(t.put(key, value, lease)));
          assertEquals(got[0], got[1], ctx(step));
        } else if (op < 0.8) {
          const end = rangeEnd(rnd);
          const got = txns.map((t) => t.deleteRange(key, end).map(fmtKv));
          assertEquals(got[0], got[1], ctx(step));
        } else {
          const end = rangeEnd(rnd);
          const got = txns.map((t) => t.range(key, end).kvs.map(fmtKv));
          assertEquals(got[0], got[1], ctx(step));
        }
      }
      if (rnd() < 0.08) {
        for (const t of txns) t.abort();
      } else {
        const ends = txns.map((t) => t.end());
        assertEquals(ends[0].revision, ends[1].revision, ctx(step));
        assertEquals(fmtEvents(ends[0].events), fmtEvents(ends[1].events), ctx(step));
      }
      // reads at random revisions, old events, hashes
      const cur = plainStore.currentRevision;
      const lo = Math.max(plainStore.compactRevision, 1);
      const at = lo + Math.floor(rnd() * (cur - lo + 1));
      const key = b(KEYS[Math.floor(rnd() * KEYS.length)]);
      const end = rangeEnd(rnd);
      const opts = { revision: at, limit: rnd() < 0.3 ? 2 : 0, keysOnly: rnd() < 0.1 };
      assertEquals(
        attempt(() => hist.range(key, end, opts).kvs.map(fmtKv)),
        attempt(() => plainStore.range(key, end, opts).kvs.map(fmtKv)),
        ctx(step),
      );
      const from = lo + Math.floor(rnd() * (cur - lo + 1));
      const to = from + Math.floor(rnd() * 30);
      const limit = rnd() < 0.3 ? 3 : 0;
      const withPrev = rnd() < 0.7;
      assertEquals(
        fmtEvents(hist.eventsBetween(key, end, from, to, limit, withPrev)),
        fmtEvents(plainStore.eventsBetween(key, end, from, to, limit, withPrev)),
        ctx(step),
      );
      if (step % 10 === 0) {
        const hrev = plainStore.compactRevision + Math.floor(rnd() * (cur - plainStore.compactRevision + 1));
        assertEquals(attempt(() => hist.hashKV(hrev)), attempt(() => plainStore.hashKV(hrev)), ctx(step));
      }
      assertEquals(hist.approximateBytes(), plainStore.approximateBytes(), ctx(step));
      assertEquals(hist.keyCount(), plainStore.keyCount(), ctx(step));
    }
    const all = new Uint8Array([0]);
    const lo = Math.max(plainStore.compactRevision, 1);
    assertEquals(
      fmtEvents(hist.eventsBetween(all, all, lo, plainStore.currentRevision)),
      fmtEvents(plainStore.eventsBetween(all, all, lo, plainStore.currentRevision)),
    );
    assertEquals(hist.hashKV(0), plainStore.hashKV(0));
    assertEquals(inlineImage(hist.encodeSnapshot()), plainStore.encodeSnapshot());
  } finally {
    hist.close();
  }
}

Deno.test("a store with a history file answers exactly as one without", async (t) => {
  await t.step("small buffers, a segment of the file for nearly every value", () => {
    const path = tmpPath();
    const options = { historyFile: path, historyBufferBytes: 1024, historySegmentBytes: 1 };
    for (const seed of [1, 2, 3]) runSeed(seed, 400, options);
  });
  await t.step("default buffers", () => {
    const options = { historyFile: tmpPath() };
    for (const seed of [7, 8]) runSeed(seed, 400, options);
  });
});

Deno.test("superseded values leave memory and come back intact", () => {
  const path = tmpPath();
  const hist = new MvccStore({ historyFile: path, historyBufferBytes: 4096 });
  const plainStore = new MvccStore();
  try {
    assert(!existsSync(path), "the history file is unlinked once open");
    const value = (i: number) => b(`value-${i}-`.padEnd(256, "x"));
    for (let i = 0; i < 2000; i++) {
      for (const st of [hist, plainStore]) {
        const w = st.write();
        w.put(b(`k${i % 10}`), value(i), 0n);
        w.end();
      }
    }
    assertEquals(hist.historyBytes(), 1990 * 256);
    assert(
      hist.memoryBytes() + 1990 * 256 / 2 < plainStore.memoryBytes(),
      `memory ${hist.memoryBytes()} vs ${plainStore.memoryBytes()}`,
    );
    // an old value read from the file is a copy: later writes and reads do not change it
    const old = hist.range(b("k3"), undefined, { revision: 5 }).kvs[0];
    assertEquals(s(old.value), s(value(3)));
    const copy = old.value.slice();
    put(hist, "k3", "new");
    hist.range(b("k4"), undefined, { revision: 1000 });
    hist.eventsBetween(b("k5"), undefined, 2, 1500);
    assertEquals(old.value, copy);
    // a put's prevKv of a value demoted long ago, and an aborted transaction restoring the newest value
    const w = hist.write();
    assertEquals(s(w.put(b("k3"), b("again"), 0n)!.value), "new");
    w.deleteRange(b("k"), b("l"));
    w.abort();
    assertEquals(s(hist.range(b("k3"), undefined).kvs[0].value), "new");
    assertEquals(s(hist.range(b("k9"), undefined).kvs[0].value), s(value(1999)));
    // compacting at the current revision frees every superseded value
    hist.compact(hist.currentRevision);
    assertEquals(hist.historyBytes(), 0);
    put(hist, "k1", "after");
    assertEquals(
      s(hist.range(b("k1"), undefined, { revision: hist.currentRevision - 1 }).kvs[0].value),
      s(value(1991)),
    );
  } finally {
    hist.close();
  }
});

Deno.test("overwrites without compaction: value slabs pinned by a few old values are emptied", () => {
  const hist = new MvccStore({ historyFile: tmpPath() });
  try {
    const rnd = prng(7);
    const value = (i: number) => b(`v${i}-`.padEnd(200 + (i % 100), "y"));
    const newest = new Map<string, number>();
    // every 50th write creates a key never written again: without repacking, each value slab keeps a
    // few of those alive and none is ever freed (about 25 MB of slabs for 100k writes)
    for (let i = 0; i < 100_000; i++) {
      const key = i % 50 === 0 ? `cold/${i}` : `hot/${Math.floor(rnd() * 500)}`;
      newest.set(key, i);
      put(hist, key, s(value(i)));
    }
    // columns for 100k revisions (~7 MiB), plus at most a few MiB of slabs
    assert(hist.memoryBytes() < 20 << 20, `memory ${hist.memoryBytes()}`);
    for (const [key, i] of newest) assertEquals(s(hist.range(b(key), undefined).kvs[0].value), s(value(i)));
    const old = hist.range(b("hot/"), b("hot0"), { revision: 30_000 }).kvs;
    assertEquals(old.length, 500);
    for (const kv of old) assertEquals(s(kv.value), s(value(kv.modRevision - 2)));
  } finally {
    hist.close();
  }
});

Deno.test("decodeSnapshot with a history file keeps only the newest values in memory", () => {
  const src = new MvccStore();
  for (let i = 0; i < 500; i++) put(src, `k${i % 5}`, "v".repeat(200) + i);
  const snap = src.encodeSnapshot();
  const path = tmpPath();
  const a = MvccStore.decodeSnapshot(snap, { historyFile: path });
  const b2 = MvccStore.decodeSnapshot(snap, { historyFile: path }); // the same path twice is fine
  try {
    let superseded = 0;
    for (let i = 0; i < 495; i++) superseded += 200 + String(i).length;
    assertEquals(a.historyBytes(), superseded);
    assertEquals(inlineImage(a.encodeSnapshot()), snap);
    assertEquals(b2.hashKV(0), src.hashKV(0));
    assertEquals(s(a.range(b("k2"), undefined, { revision: 4 }).kvs[0].value), "v".repeat(200) + 2);
  } finally {
    a.close();
    b2.close();
  }
});

Deno.test("a corrupt snapshot leaves no history file open", () => {
  const snap = new MvccStore().encodeSnapshot();
  const path = tmpPath();
  // the count sees a store's history file while the store is open, and none once it is closed
  const store = MvccStore.decodeSnapshot(snap, { historyFile: path });
  assertEquals(descriptorsOn(path).length, 1);
  store.close();
  assertEquals(descriptorsOn(path).length, 0);
  // decoding opens the file before it reads the snapshot: a refused snapshot must close it again
  assertThrows(
    () => MvccStore.decodeSnapshot(snap.subarray(0, snap.length - 1), { historyFile: path }),
    ErrSnapshotCorrupt,
  );
  assertEquals(descriptorsOn(path).length, 0);
});

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The real file system, counting the reads of files opened through it. */
/** The real file system, counting reads, and closes of files that still held bytes. */
function countingFs(): { fs: FileSystem; reads: number; fullCloses: number } {
  const counted = {
    reads: 0,
    fullCloses: 0,
    fs: {
      ...denoFs,
      openSync(path: string, options: Deno.OpenOptions) {
        const file = denoFs.openSync(path, options);
        const readSync = file.readSync.bind(file);
        const close = file.close.bind(file);
        return Object.assign(file, {
          readSync(p: Uint8Array) {
            counted.reads++;
            return readSync(p);
          },
          close() {
            if (file.seekSync(0, Deno.SeekMode.End) > 0) counted.fullCloses++;
            close();
          },
        });
      },
    },
  };
  return counted;
}

/**
 * 2,000 puts of 1 KiB on 200 keys in random order, to `stores`. A value is demoted when its key is next
 * written, so a history file then holds the 1,800 superseded values far from revision order.
 */
function putsInRandomOrder(...stores: MvccStore[]): void {
  const rnd = prng(15);
  for (let i = 0; i < 2000; i++) {
    const k = `k${Math.floor(rnd() * 200)}`;
    const v = String(i).padStart(1024, "x");
    for (const st of stores) put(st, k, v);
  }
}

Deno.test("an image reads superseded values in the order they lie in the history file", () => {
  const counted = countingFs();
  const st = new MvccStore({ historyFile: tmpPath(), fs: counted.fs });
  const plain = new MvccStore();
  try {
    putsInRandomOrder(st, plain);
    const superseded = st.historyBytes();
    assert(superseded > 1700 * 1024, `only ${superseded} bytes in the history file`);
    counted.reads = 0;
    const image = st.encodeSnapshot();
    // one read per 64 KiB block, not one per value
    const reads = counted.reads;
    assert(reads <= Math.ceil(superseded / 65536) + 10, `${reads} reads for ${superseded} bytes`);
    assertEquals(inlineImage(image), plain.encodeSnapshot());
  } finally {
    st.close();
  }
});

Deno.test("a compaction gives back the history file's freed segments whole, reading nothing", async () => {
  const counted = countingFs();
  const path = tmpPath();
  const st = new MvccStore({
    historyFile: path,
    fs: counted.fs,
    historyBufferBytes: 4096,
    historySegmentBytes: 64 * 1024,
  });
  const plain = new MvccStore();
  try {
    putsInRandomOrder(st, plain);
    const before = heldFileBytes(path);
    assert(before > 1700 * 1024, `${before} bytes held`);
    counted.reads = 0;
    // the values superseded up to revision 1300 go: the segments they fill are closed, no value is copied
    st.compact(1300);
    plain.compact(1300);
    assertEquals(counted.reads, 0, "the compaction read the history file");
    // giving a segment's blocks back is the kernel's work on the last close: done on an emptied file
    assertEquals(counted.fullCloses, 0, "a segment was closed with its bytes on the store's thread");
    const live = st.historyBytes();
    // the segments are emptied and closed in the background
    const after = await heldFileBytesFall(path, Math.floor(before / 2) - 1);
    // what is still held beside the live values: part of the segment where revision 1300 fell
    assert(after - live < before / 4, `${after - live} bytes of garbage held, ${live} live`);
    assertEquals(inlineImage(st.encodeSnapshot()), plain.encodeSnapshot());
    const all = new Uint8Array([0]);
    assertEquals(
      fmtEvents(st.eventsBetween(all, all, 1300, 2001)),
      fmtEvents(plain.eventsBetween(all, all, 1300, 2001)),
    );
    // nothing live: every segment goes
    st.compact(st.currentRevision);
    assertEquals(await heldFileBytesFall(path, 0), 0);
    assertEquals(counted.fullCloses, 0);
    put(st, "k1", "after");
    put(st, "k1", "again");
    assertEquals(s(st.range(b("k1"), undefined, { revision: st.currentRevision - 1 }).kvs[0].value), "after");
  } finally {
    st.close();
  }
  assertEquals(await heldFileBytesFall(path, 0), 0, "closed with the store");
  assertEquals(descriptorsOn(path).length, 0, "closed with the store");
});

Deno.test("a store decoded from an image lays its history out as it was superseded", async () => {
  const plain = new MvccStore();
  // keys r0..r49 are written among the others and rewritten only at the end: in revision order their
  // first values lie all through the history; in the order they were superseded, at its end
  const big = (i: number) => String(i).padStart(1024, "x");
  for (let i = 0; i < 2000; i++) {
    put(plain, `k${i % 10}`, big(i));
    if (i % 40 === 0) put(plain, `r${i / 40}`, big(i));
  }
  const rev = plain.currentRevision;
  for (let j = 0; j < 50; j++) put(plain, `r${j}`, big(j));
  const path = tmpPath();
  const st = MvccStore.decodeSnapshot(plain.encodeSnapshot(), {
    historyFile: path,
    historySegmentBytes: 64 * 1024,
  });
  try {
    const before = heldFileBytes(path);
    assert(before > 1900 * 1024, `${before} bytes held`);
    st.compact(rev);
    plain.compact(rev);
    await heldFileBytesFall(path, Math.floor(before / 4) - 1);
    assertEquals(inlineImage(st.encodeSnapshot()), plain.encodeSnapshot());
  } finally {
    st.close();
  }
  await heldFileBytesFall(path, 0);
});

Deno.test("an image with a value section decodes only if each of its values is named once", () => {
  const st = new MvccStore({ historyFile: tmpPath() });
  try {
    put(st, "a", "v0");
    put(st, "a", "v1");
    put(st, "a", "v2");
    // the first two values are in the file: the image ends with the value section, 2, (0, "v0"), (1, "v1")
    const image = st.encodeSnapshot();
    const at = image.length - 7;
    assertEquals([...image.subarray(at)], [2, 0, 0x76, 0x30, 1, 0x76, 0x31]);
    const copy = MvccStore.decodeSnapshot(image);
    assertEquals(s(copy.range(b("a"), undefined, { revision: 2 }).kvs[0].value), "v0");
    assertEquals(s(copy.range(b("a"), undefined, { revision: 3 }).kvs[0].value), "v1");
    const changed = (pos: number, byte: number) => {
      const bad = image.slice();
      bad[pos] = byte;
      return bad;
    };
    // a count above the values; a value named twice; an entry whose value is inline; an entry that does
    // not exist; a value section in a version 1 image
    for (
      const [bad, why] of [
        [changed(at, 3), "bad value count"],
        [changed(at + 4, 0), "bad value reference"],
        [changed(at + 4, 2), "bad value reference"],
        [changed(at + 4, 9), "bad value reference"],
        [changed(4, 1), "bad entry kind"],
      ] as const
    ) {
      assertThrows(() => MvccStore.decodeSnapshot(bad), ErrSnapshotCorrupt, why);
    }
  } finally {
    st.close();
  }
});

Deno.test("a version 1 image, every value inline and no value section, still decodes", () => {
  const st = new MvccStore();
  put(st, "a", "v0");
  put(st, "b", "v1");
  put(st, "a", "v2");
  const w = st.write();
  w.deleteRange(b("b"), undefined);
  w.end();
  const v2 = st.encodeSnapshot();
  // without a history file every value is inline: the same bytes as version 1 but for the version byte and
  // the value section's count of 0 at the end
  assertEquals(v2[4], 2);
  assertEquals(v2[v2.length - 1], 0);
  const v1 = v2.slice(0, v2.length - 1);
  v1[4] = 1;
  assertEquals(MvccStore.decodeSnapshot(v1).encodeSnapshot(), v2);
});
