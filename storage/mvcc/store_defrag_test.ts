/**
 * The store's footprint (what Status reports as the database size) and its defragmentation: compaction
 * frees space without lowering the footprint, as it leaves etcd's bbolt file as large as before;
 * defragmentation brings the footprint down to what is in use and gives the history file's garbage back.
 */
import { MvccStore } from "./store.ts";
import { assert, assertEquals } from "../../tests/assert.ts";
import { dump, heldFileBytes, put } from "./test_util.ts";

function tmpPath(): string {
  return Deno.realPathSync(Deno.makeTempFileSync({ prefix: "mvcc_defrag_test_" }));
}

Deno.test("footprint: compaction lowers the size in use, only defragmentation the footprint", () => {
  const path = tmpPath();
  // a small write buffer so that history reaches the file (one segment: a compaction gives back none)
  const store = new MvccStore({ historyFile: path, historyBufferBytes: 4096 });
  try {
    const big = "v".repeat(1000);
    for (let i = 0; i < 200; i++) put(store, `k${i % 10}`, `${big}${i}`);
    const before = store.approximateBytes();
    assertEquals(store.footprintBytes(), before);
    const fileBefore = heldFileBytes(path);
    assert(fileBefore > 150_000, `history file of ${fileBefore} bytes`);

    const rev = store.currentRevision;
    store.compact(rev - 5);
    assert(store.approximateBytes() < before / 5, "compaction frees the superseded revisions");
    assertEquals(store.footprintBytes(), before, "the footprint stays until a defragmentation");
    const expected = dump(store);

    store.defragment();
    assertEquals(store.footprintBytes(), store.approximateBytes());
    assert(store.footprintBytes() < before / 5);
    const fileAfter = heldFileBytes(path);
    assert(fileAfter < fileBefore / 5, `history file ${fileBefore} -> ${fileAfter} bytes`);
    // nothing readable changed, old revisions above the compaction included
    assertEquals(dump(store), expected);
    for (let r = rev - 5; r <= rev; r++) assertEquals(dump(store, r).length, 10);

    // the footprint grows again with the data
    for (let i = 0; i < 50; i++) put(store, `k${i % 10}`, big);
    assertEquals(store.footprintBytes(), store.approximateBytes());
  } finally {
    store.close();
  }
});

Deno.test("defragmentation while a snapshot view is open rewrites the history file once it is released", () => {
  const path = tmpPath();
  const store = new MvccStore({ historyFile: path, historyBufferBytes: 4096 });
  try {
    for (let i = 0; i < 100; i++) put(store, `k${i % 4}`, "x".repeat(2000));
    store.compact(store.currentRevision - 2);
    const view = store.snapshotView();
    const image = store.encodeSnapshot();
    const fileBefore = heldFileBytes(path);
    store.defragment();
    assertEquals(store.footprintBytes(), store.approximateBytes());
    assertEquals(heldFileBytes(path), fileBefore, "the view may still read any position of the file");
    const read = new Uint8Array(view.image.size);
    let at = 0;
    for (const c of view.image.chunks()) {
      read.set(c, at);
      at += c.length;
    }
    assertEquals(read, image);
    view.release();
    assert(heldFileBytes(path) < fileBefore / 5, "rewritten once the view is gone");
    assertEquals(dump(store, store.currentRevision - 2).length, 4);
  } finally {
    store.close();
  }
});
