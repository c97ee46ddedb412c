import { RevisionLog } from "./revision_log.ts";
import { assert, assertEquals } from "../../tests/assert.ts";

type Row = [main: number, sub: number, create: number, version: number, lease: bigint];

function rows(log: RevisionLog): Row[] {
  const out: Row[] = [];
  for (let e = 0; e < log.length; e++) {
    out.push([log.main[e], log.sub[e], log.create[e], log.version[e], log.leaseAt(e)]);
  }
  return out;
}

function width(col: { BYTES_PER_ELEMENT: number }): number {
  return col.BYTES_PER_ELEMENT;
}

function add(log: RevisionLog, [main, sub, create, version, lease]: Row): void {
  log.append(main, sub, 0, -1, create, version, lease, -1, 0, 0);
}

Deno.test("revision log: columns start narrow and widen, exactly, as their values need", () => {
  const log = new RevisionLog();
  const want: Row[] = [];
  for (let i = 0; i < 200; i++) want.push([i + 2, 0, 2, i + 1, 0n]);
  for (const r of want) add(log, r);
  assertEquals([width(log.main), width(log.sub), width(log.create), width(log.version)], [4, 1, 4, 2]);
  assertEquals([width(log.key), width(log.len)], [2, 2]);
  assertEquals(log.lease, null);
  // 4 + 1 + 2 + 4 + 2 + 2 bytes, and the 32-bit prev, slab and offset
  assertEquals(log.columnBytes, log.capacity * 27);

  const more: Row[] = [];
  for (let i = 200; i < 300; i++) more.push([i + 2, 0, 2, i + 1, 0n]);
  more.push([302, 300, 2, 70_000, 0n]);
  for (const r of more) add(log, r);
  want.push(...more);
  assertEquals([width(log.main), width(log.sub), width(log.create), width(log.version)], [4, 2, 4, 4]);
  assertEquals(rows(log), want);
  assertEquals(log.columnBytes, log.capacity * 30);

  const big: Row[] = [
    [2 ** 32, 0, 2, 301, 0n],
    [2 ** 40 + 3, 1, 2 ** 40 + 3, 1, 0n],
    [2 ** 53 - 1, 0, 2 ** 40 + 3, 2 ** 33 + 7, 0n],
  ];
  for (const r of big) add(log, r);
  want.push(...big);
  assertEquals([width(log.main), width(log.create), width(log.version)], [8, 8, 8]);
  assertEquals(rows(log), want);
  // a wide column stays wide through growth and shrinking
  log.resize(4096);
  log.resize(0);
  assertEquals(rows(log), want);
  assertEquals(width(log.main), 8);
  assertEquals(log.lowerBound(2 ** 40), 302);
});

Deno.test("revision log: key ids and value lengths widen at each limit, and moves keep them", () => {
  const log = new RevisionLog();
  const limits = [0, 0xff, 0x100, 0xffff, 0x10000, 0x7fff_ffff];
  for (const [i, v] of limits.entries()) log.append(i + 1, 0, v, -1, 1, 1, 0n, 0, 0, v);
  const keys = () => Array.from({ length: log.length }, (_, e) => log.key[e]);
  const lens = () => Array.from({ length: log.length }, (_, e) => log.len[e]);
  assertEquals(keys(), limits);
  assertEquals(lens(), limits);
  assertEquals([width(log.key), width(log.len)], [4, 4]);

  // each value just past a limit is what widens: one entry at a time
  const steps = new RevisionLog();
  const seen: number[] = [];
  for (const [i, v] of limits.entries()) {
    steps.append(i + 1, 0, v, -1, 1, 1, 0n, 0, 0, 0);
    seen.push(width(steps.key));
  }
  assertEquals(seen, [2, 2, 2, 2, 4, 4]);

  log.move(5, 0);
  log.shiftDown(4, 1);
  log.length = 3;
  assertEquals(keys(), [0x7fff_ffff, 0x10000, 0x7fff_ffff]);
  assertEquals(lens(), [0x7fff_ffff, 0x10000, 0x7fff_ffff]);
});

Deno.test("revision log: the lease column appears with the first lease and follows moves", () => {
  const log = new RevisionLog();
  add(log, [2, 0, 2, 1, 0n]);
  add(log, [3, 0, 3, 1, 0n]);
  assertEquals(log.lease, null);
  assertEquals(log.leaseAt(1), 0n);
  add(log, [4, 0, 4, 1, 0x7fff_ffff_ffff_fff0n]);
  assert(log.lease !== null);
  assertEquals(log.columnBytes, log.capacity * (27 + 8));
  add(log, [5, 0, 5, 1, 0n]);
  assertEquals(rows(log).map((r) => r[4]), [0n, 0n, 0x7fff_ffff_ffff_fff0n, 0n]);

  // compaction-style moves carry the lease along, and a reused slot does not keep a stale one
  log.move(2, 0);
  log.shiftDown(2, 1);
  log.length = 3;
  assertEquals(rows(log).map((r) => r[4]), [0x7fff_ffff_ffff_fff0n, 0x7fff_ffff_ffff_fff0n, 0n]);
  log.length = 1;
  add(log, [6, 0, 6, 1, 0n]);
  assertEquals(log.leaseAt(1), 0n);
  log.resize(1000);
  assertEquals(rows(log).map((r) => r[4]), [0x7fff_ffff_ffff_fff0n, 0n]);
});

Deno.test("revision log: a frozen copy keeps its moment through appends, repointed values, growth and moves", () => {
  const log = new RevisionLog();
  for (let i = 0; i < 10; i++) log.append(i + 2, 0, i, -1, 2, 1, 0n, 0, i * 8, 8);
  const frozen = log.frozenCopy();
  const before = rows(frozen);
  const locations = () => Array.from({ length: frozen.length }, (_, e) => [frozen.slab[e], frozen.off[e]]);
  const where = locations();
  // the live log takes writes (growing past its capacity), and a value is repointed (demoted)
  for (let i = 10; i < 5000; i++) log.append(i + 2, 0, i * 20, -1, 2, 1, 7n, 0, i * 8, 8);
  log.slab[3] = -5;
  log.off[3] = 12345;
  // (the live log's key ids outgrew 16 bits: that column was widened, not the copy's)
  assertEquals([width(log.key), width(frozen.key)], [4, 2]);
  assertEquals(Array.from({ length: 10 }, (_, e) => frozen.key[e]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assertEquals(rows(frozen), before);
  assertEquals(locations(), where);
  // a compaction moves entries in place: the copy takes columns of its own first
  const other = log.frozenCopy();
  other.own();
  frozen.own();
  log.move(9, 0);
  log.shiftDown(20, 1);
  assertEquals(rows(frozen), before);
  assertEquals(other.main[0], 2);
  assertEquals(other.length, 5000);
});
