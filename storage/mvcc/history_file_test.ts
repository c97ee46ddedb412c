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

/** A history file in a fresh directory holding `n` values of 200 bytes, value i filled with i % 251. */
async function filled(
  n: number,
): Promise<{ h: HistoryFile; pos: number[]; fs: ReturnType<typeof countingFs> }> {
  const dir = await Deno.makeTempDir();
  const fs = countingFs();
  const h = new HistoryFile(`${dir}/history`, 4096, fs);
  await Deno.remove(dir);
  const pos: number[] = [];
  for (let i = 0; i < n; i++) pos.push(h.append(new Uint8Array(VALUE).fill(i % 251), 0, VALUE));
  return { h, pos, fs };
}

/** Reads value `i` and checks its bytes. */
function check(h: HistoryFile, pos: number[], i: number): void {
  const dst = new Uint8Array(VALUE + 2);
  h.read(pos[i], VALUE, dst, 1);
  assertEquals([dst[0], dst[1], dst[VALUE], dst[VALUE + 1]], [0, i % 251, i % 251, 0], `value ${i}`);
}

Deno.test("history file: values read in order are served from a read-ahead block", async () => {
  const { h, pos, fs } = await filled(20_000);
  try {
    for (let i = 0; i < pos.length; i++) check(h, pos, i);
    // 4 MB in 64 KiB blocks: one read call per block, not one per value
    assert(fs.reads < 100, `${fs.reads} reads for ${pos.length} values`);
  } finally {
    h.close();
  }
});

Deno.test("history file: a value read far from the one before is read alone", async () => {
  const { h, pos, fs } = await filled(20_000);
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
    h.close();
  }
});
