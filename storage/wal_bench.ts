/**
 * WAL throughput, run as a script: `deno run --allow-all storage/wal_bench.ts [dir]`.
 *
 * 1. serial: append 100 entries of 300 bytes, then await sync(), N times; preallocated segments versus
 *    segments that grow with every write. Reports syncs/s, entries/s and sync latency percentiles (the
 *    maximum shows the cost of cutting a segment).
 * 2. group commit: W concurrent writers, each appending one 300-byte entry and awaiting sync().
 * 3. replay: Wal.open over what the serial run wrote.
 *
 * The directory defaults to a temporary one under /work (a real disk, not tmpfs) and is removed after.
 *
 * @module
 */

import { join } from "node:path";
import { Wal, type WalEntry } from "./wal.ts";

const META = { memberId: 1n, clusterId: 2n };
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 2500);
const BATCH = 100;
const ENTRY_BYTES = 300;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function batchAt(first: number, count: number, payload: Uint8Array): WalEntry[] {
  const out: WalEntry[] = [];
  for (let i = 0; i < count; i++) out.push({ term: 1, index: first + i, type: 0, data: payload });
  return out;
}

async function serial(root: string, preallocate: boolean): Promise<string> {
  const dir = join(root, `serial-${preallocate}`);
  const wal = await Wal.create(dir, META, { preallocate });
  const payload = new Uint8Array(ENTRY_BYTES).fill(0x61);
  const lat: number[] = [];
  let index = 1;
  const t0 = performance.now();
  for (let r = 0; r < ROUNDS; r++) {
    wal.append(batchAt(index, BATCH, payload), { term: 1, vote: 1n, commit: index - 1 });
    index += BATCH;
    const s = performance.now();
    await wal.sync();
    lat.push(performance.now() - s);
  }
  const secs = (performance.now() - t0) / 1000;
  const cuts = wal.stats.segmentsCut;
  await wal.close();
  lat.sort((a, b) => a - b);
  console.log(
    `serial  preallocate=${String(preallocate).padEnd(5)}  ${
      (ROUNDS / secs).toFixed(0).padStart(6)
    } syncs/s` +
      `  ${(ROUNDS * BATCH / secs).toFixed(0).padStart(8)} entries/s  ${
        (wal.stats.bytesWritten / secs / 1e6).toFixed(0)
      } MB/s` +
      `  sync p50 ${percentile(lat, 0.5).toFixed(2)} ms  p99 ${percentile(lat, 0.99).toFixed(2)} ms` +
      `  max ${lat[lat.length - 1].toFixed(1)} ms  (${cuts} segment cut${cuts === 1 ? "" : "s"})`,
  );
  return dir;
}

async function groupCommit(root: string, writers: number, total: number): Promise<void> {
  const dir = join(root, `group-${writers}`);
  const wal = await Wal.create(dir, META);
  const payload = new Uint8Array(ENTRY_BYTES).fill(0x62);
  let next = 1;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next <= total) {
      wal.append([{ term: 1, index: next++, type: 0, data: payload }]);
      await wal.sync();
    }
  };
  await Promise.all(Array.from({ length: writers }, worker));
  const secs = (performance.now() - t0) / 1000;
  await wal.close();
  console.log(
    `group   writers=${String(writers).padEnd(4)}  ${
      (wal.stats.syncs / secs).toFixed(0).padStart(6)
    } syncs/s` +
      `  ${(total / secs).toFixed(0).padStart(8)} entries/s  ${
        (total / wal.stats.syncs).toFixed(1)
      } entries per fdatasync`,
  );
}

async function replay(dir: string): Promise<void> {
  const t0 = performance.now();
  const r = await Wal.open(dir, { index: 0, term: 0 });
  const ms = performance.now() - t0;
  await r.wal.close();
  const mb = r.entries.length * (ENTRY_BYTES + 24) / 1e6;
  console.log(`replay  ${r.entries.length} entries (${mb.toFixed(0)} MB of records) in ${ms.toFixed(0)} ms`);
}

if (import.meta.main) {
  const root = await Deno.makeTempDir({ dir: Deno.args[0] ?? "/work", prefix: "wal_bench_" });
  try {
    for (let rep = 0; rep < 2; rep++) {
      await serial(root, false);
      const dir = await serial(root, true);
      if (rep === 1) await replay(dir);
      await Deno.remove(join(root, "serial-false"), { recursive: true });
      await Deno.remove(dir, { recursive: true });
    }
    for (const w of [1, 16, 256]) await groupCommit(root, w, w === 1 ? 5000 : 50_000);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}
