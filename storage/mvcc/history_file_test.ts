import { assert, assertEquals } from "../../tests/assert.ts";
import { denoFs, type FileHandle, type FileSystem } from "../fs.ts";
import { HistoryFile } from "./history_file.ts";

/** The real file system, counting what is read from the files it opens. */
function countingFs(): FileSystem & { reads: number; bytesRead: number } {
  const fs = {
    ...denoFs,
    reads: 0,
    bytesRead: 0,
    openSync(path: string, options: Deno.OpenOptions): FileHandle {
      const file = denoFs.openSync(path, options);
      const readSync = file.readSync.bind(file);
      file.readSync = (p: Uint8Array): number | null => {
        const n = readSync(p);
        fs.reads++;
        fs.bytesRead += n ?? 0;
        return n;
      };
      return file;
    },
  };
  return fs;
}

const VALUE = 200;

/**
 * A history file in a fresh directory holding `n` values of 200 bytes, value i filled with i % 251, in
 * segments of at least `segmentBytes`.
 */
async function filled(
  n: number,
  segmentBytes?: number,
): Promise<{ h: HistoryFile; pos: number[]; fs: ReturnType<typeof countingFs>; done: () => void }> {
  const dir = await Deno.makeTempDir();
  const fs = countingFs();
  const h = new HistoryFile(`${dir}/history`, 4096, fs, segmentBytes);
  const pos: number[] = [];
  for (let i = 0; i < n; i++) pos.push(h.append(new Uint8Array(VALUE).fill(i % 251), 0, VALUE));
  // the directory stays while the file is open: a new segment is opened at the same path
  const done = () => {
    h.close();
    Deno.removeSync(dir, { recursive: true });
  };
  return { h, pos, fs, done };
}

/** Reads value `i` and checks its bytes. */
function check(h: HistoryFile, pos: number[], i: number): void {
  const dst = new Uint8Array(VALUE + 2);
  h.read(pos[i], VALUE, dst, 1);
  assertEquals([dst[0], dst[1], dst[VALUE], dst[VALUE + 1]], [0, i % 251, i % 251, 0], `value ${i}`);
}

Deno.test("history file: values read in order are served from a read-ahead block", async () => {
  const { h, pos, fs, done } = await filled(20_000);
  try {
    for (let i = 0; i < pos.length; i++) check(h, pos, i);
    // 4 MB in 64 KiB blocks: one read call per block, not one per value
    assert(fs.reads < 100, `${fs.reads} reads for ${pos.length} values`);
  } finally {
    done();
  }
});

Deno.test("history file: a value read far from the one before is read alone", async () => {
  const { h, pos, fs, done } = await filled(20_000);
  try {
    // a snapshot image asks for values in revision order, which is not the order they were demoted in
    let seed = 7;
    const order = pos.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const j = seed % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (const i of order.slice(0, 5_000)) check(h, pos, i);
    // a block filled for every such read would copy 64 KiB to deliver 200 bytes
    assert(fs.bytesRead < 2 * 5_000 * VALUE, `${fs.bytesRead} bytes read for ${5_000 * VALUE}`);
  } finally {
    done();
  }
});

Deno.test("history file: full segments are sealed, and values are read back across their ends", async () => {
  const { h, pos, fs, done } = await filled(2_000, 16 * 1024);
  try {
    // 400 KB in segments of 16 KiB growing to a quarter of what is held
    assert(h.segmentCount >= 5 && h.segmentCount <= 30, `${h.segmentCount} segments`);
    assertEquals(h.size, 2_000 * VALUE);
    for (let i = 0; i < pos.length; i++) check(h, pos, i);
    // read ahead within each segment: a block, or the rest of a segment, per read call
    assert(fs.reads < 2 * (400_000 / 65536) + 2 * h.segmentCount, `${fs.reads} reads`);
    for (let i = pos.length - 1; i >= 0; i -= 7) check(h, pos, i);
  } finally {
    done();
  }
});

Deno.test("history file: sealed segments whose values are all freed are closed, the last one never", async () => {
  const { h, pos, done } = await filled(1_000, 16 * 1024);
  try {
    const segments = h.segmentCount;
    // the first half of the values freed: the segments holding only those go, with their bytes
    for (let i = 0; i < 500; i++) h.free(pos[i], VALUE);
    assertEquals(h.liveBytes, 500 * VALUE);
    const released = h.releaseFreed();
    assert(released >= 300 * VALUE && released <= 500 * VALUE, `${released} bytes given back`);
    assertEquals(h.size, 1_000 * VALUE - released);
    assert(h.segmentCount < segments, `${segments} -> ${h.segmentCount} segments`);
    for (let i = 500; i < 1_000; i++) check(h, pos, i);
    // every value freed but value 500: its segment stays, and so does the last one, which takes appends
    for (let i = 501; i < 1_000; i++) h.free(pos[i], VALUE);
    h.releaseFreed();
    assertEquals(h.segmentCount, 2);
    check(h, pos, 500);
    const next = h.append(new Uint8Array(VALUE).fill(7), 0, VALUE);
    assert(next > pos[999], "positions only grow while a value is live");
    // nothing live: everything goes, and positions start again
    h.free(pos[500], VALUE);
    h.free(next, VALUE);
    const held = h.size;
    assertEquals(h.releaseFreed(), held);
    assertEquals([h.size, h.segmentCount, h.liveBytes], [0, 1, 0]);
    assertEquals(h.append(new Uint8Array(VALUE).fill(9), 0, VALUE), 0);
  } finally {
    done();
  }
});
