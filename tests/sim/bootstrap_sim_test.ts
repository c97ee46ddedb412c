/**
 * The production bootstrap (`openMember`) on a simulated disk: everything it opens goes through the file
 * system it is given, and the WAL's segment salts come from the randomness it is given, so equal seeds
 * write equal bytes.
 */
import { assert, assertEquals, assertNotEquals } from "../assert.ts";
import { openMember } from "../../server/member/bootstrap.ts";
import { defaultConfig } from "../../server/config/mod.ts";
import type { Logger } from "../../server/logger.ts";
import { EventQueue } from "./network.ts";
import { Prng } from "./prng.ts";
import { GOOD_DISK, SimDisk } from "./sim_fs.ts";
import { Settler } from "./sim_runtime.ts";

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

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

/** Opens a new member on a fresh simulated disk twice (create, then restart); returns its WAL's bytes. */
async function bootTwice(seed: number): Promise<{ wal: Uint8Array; memberId: bigint; restarted: bigint }> {
  const settler = new Settler();
  const queue = new EventQueue();
  const disk = new SimDisk(queue, new Prng(1).fork(), GOOD_DISK);
  const config = { ...defaultConfig(), dataDir: "/data" };
  const rng = new Prng(seed);
  const open = () =>
    drive(
      queue,
      settler,
      openMember(config, quiet, () => rng.float(), { fs: disk.fs, wal: { segmentBytes: 4096 } }),
    );
  const first = await open();
  first.mvcc.close();
  await drive(queue, settler, first.wal.close());
  const second = await open();
  second.mvcc.close();
  await drive(queue, settler, second.wal.close());
  const names: string[] = [];
  await drive(
    queue,
    settler,
    (async () => {
      for await (const e of disk.fs.readDir("/data/member/wal")) names.push(e.name);
    })(),
  );
  const segment = names.sort().find((n) => n.endsWith(".wal"));
  assert(segment !== undefined, `a WAL segment in ${names.join(", ")}`);
  const wal = await drive(queue, settler, disk.fs.readFile(`/data/member/wal/${segment}`));
  return { wal, memberId: first.memberId, restarted: second.memberId };
}

Deno.test("bootstrap on a simulated disk: the WAL's salts come from the injected randomness", async () => {
  const a = await bootTwice(5);
  assertEquals(a.restarted, a.memberId, "the restart reads the WAL the first start created");
  assertEquals((await bootTwice(5)).wal, a.wal, "equal seeds write equal bytes");
  assertNotEquals((await bootTwice(6)).wal, a.wal, "the salt follows the seed");
});
