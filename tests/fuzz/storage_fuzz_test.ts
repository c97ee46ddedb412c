/**
 * Fuzzing what a member reads back from its disk: WAL segments with bytes flipped, cut, inserted or
 * spliced, and snapshot files likewise. Opening must end in one of two ways: the entries written (a
 * prefix of them, after a torn tail is repaired), or the storage's own corruption error. Never other
 * entries than were written, never another exception.
 */
import { assert, assertEquals } from "../assert.ts";
import { Wal, WalCorruptError, type WalEntry, WalSnapshotNotFoundError } from "../../storage/wal.ts";
import { SnapshotCorruptError, Snapshotter } from "../../storage/snapshot.ts";
import { fuzz, log } from "./fuzz.ts";

const te = new TextEncoder();
const META = { memberId: 0x8e9e05c52164694dn, clusterId: 0xcdf818194e3a8c32n };

function sameEntry(a: WalEntry, b: WalEntry): boolean {
  return a.term === b.term && a.index === b.index && a.type === b.type && a.data.length === b.data.length &&
    a.data.every((x, i) => x === b.data[i]);
}

Deno.test("fuzz: WAL segments with damaged bytes open as a prefix of what was written, or as corrupt", async () => {
  const dir = await Deno.makeTempDir({ prefix: "etcd-ts-walfuzz-" });
  try {
    const written: WalEntry[] = [];
    const wal = await Wal.create(`${dir}/src`, META, { segmentBytes: 1 << 20, preallocate: false });
    for (let i = 1; i <= 40; i++) {
      const e = { term: 1 + (i >> 4), index: i, type: 0, data: te.encode(`entry-${i}-`.repeat(1 + (i % 5))) };
      written.push(e);
      wal.append([e], { term: e.term, vote: 1n, commit: i });
      if (i % 7 === 0) await wal.sync();
    }
    await wal.close();
    const segments = [...Deno.readDirSync(`${dir}/src`)].filter((e) => e.name.endsWith(".wal"));
    assertEquals(segments.length, 1);
    const name = segments[0].name;
    const original = Deno.readFileSync(`${dir}/src/${name}`);
    // the undamaged log reads back whole
    const clean = await Wal.open(`${dir}/src`, { index: 0, term: 0 });
    assertEquals(clean.entries.length, 40);
    await clean.wal.close();

    let n = 0;
    let prefixes = 0;
    const report = await fuzz({
      name: "wal segment",
      corpus: [original],
      async run(input) {
        const d = `${dir}/case-${n++}`;
        Deno.mkdirSync(d);
        Deno.writeFileSync(`${d}/${name}`, input);
        try {
          const r = await Wal.open(d, { index: 0, term: 0 });
          await r.wal.close();
          // whatever was read is exactly a prefix of what was written
          assert(r.entries.length <= written.length, `${r.entries.length} entries from ${written.length}`);
          r.entries.forEach((e, i) =>
            assert(sameEntry(e, written[i]), `entry ${i + 1} differs after damage`)
          );
          prefixes++;
        } finally {
          Deno.removeSync(d, { recursive: true });
        }
      },
      expected: (err) => err instanceof WalCorruptError || err instanceof WalSnapshotNotFoundError,
    });
    log(report);
    assert(report.rejected > 0 && prefixes > 0, `${report.rejected} refused, ${prefixes} read as a prefix`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fuzz: snapshot files with damaged bytes are refused as corrupt, never loaded", async () => {
  const dir = await Deno.makeTempDir({ prefix: "etcd-ts-snapfuzz-" });
  try {
    const snapper = new Snapshotter(`${dir}/snap`);
    await Deno.mkdir(`${dir}/snap`, { recursive: true });
    const data = te.encode(JSON.stringify({ state: "x".repeat(2000) }));
    await snapper.save({ term: 2, index: 10, data });
    const files = [...Deno.readDirSync(`${dir}/snap`)].map((e) => e.name);
    assertEquals(files.length, 1);
    const original = Deno.readFileSync(`${dir}/snap/${files[0]}`);
    const report = await fuzz({
      name: "snapshot file",
      corpus: [original],
      async run(input) {
        Deno.writeFileSync(`${dir}/snap/${files[0]}`, input);
        const loaded = await snapper.load(10, 2);
        // a mutation may leave the file as it was (a byte set to its own value): then it loads whole
        assertEquals(loaded.data, data);
      },
      expected: (err) => err instanceof SnapshotCorruptError,
    });
    log(report);
    assert(report.rejected > 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
