/**
 * A large snapshot must not cost a leader its term. Three members run in this process (started through
 * `startEtcd`, the embedding API, talking Raft over 127.0.0.1) with a heartbeat of 20 ms, an election
 * timeout of 200 ms and --snapshot-count 100, over a key space of about 100 MB: writing one snapshot
 * image takes several election timeouts. Under a steady write load every member snapshots several
 * times, and the test asserts nobody noticed: the leader and the term stay the same on every member, no
 * member logs a leader change, and every write succeeds.
 *
 * A member that waited for its snapshot write on its Raft loop would stop sending heartbeats for that
 * long and its followers would elect another leader (this test fails that way when the loop awaits the
 * write). So would members whose process reads its sockets only every 61st turn of a busy event loop,
 * Deno's default (server/io_polling.ts). It takes about 10 s, 1 GB of memory and, where /dev/shm exists,
 * 1 GB there.
 *
 * @module
 */
import { assert, assertEquals } from "./assert.ts";
import type { Etcd } from "../mod.ts";
import { clusterMembers, type InProcessMember, put, startMember } from "./in_process.ts";
import { IO_POLLING_VALUE, IO_POLLING_VARIABLE } from "../server/io_polling.ts";

const HEARTBEAT_MS = 20;
const ELECTION_MS = 200;
const SNAPSHOT_COUNT = 100;
/** The key space: this many values of 1 MiB (written once, before the load). */
const BIG_VALUES = 96;
/** Each snapshot under load holds the key space or most of it (the first may start during the preload). */
const MIN_IMAGE_BYTES = 64 << 20;
/** Snapshots every member saves under load before the load stops. */
const SNAPSHOTS = 3;
/**
 * The load: small puts, this many at a time, until every member saved its snapshots, at most this many.
 * The count is a safety bound, not the expected length: alone on this machine the puts run at about
 * 3,500/s while an image takes 0.3-0.8 s, so 5,000 puts ended the load just as the third snapshot began,
 * and on a busier runner a member could stop at two.
 */
const WRITERS = 8;
const MAX_PUTS = 50_000;
/** ... and for at most this long. */
const MAX_LOAD_MS = 15_000;

async function startCluster(dir: string): Promise<(InProcessMember & { etcd: Etcd })[]> {
  const members = clusterMembers(dir, (c) => {
    c.heartbeatIntervalMs = HEARTBEAT_MS;
    c.electionTimeoutMs = ELECTION_MS;
    c.snapshotCount = SNAPSHOT_COUNT;
    c.maxSnapshots = 2;
  });
  await Promise.all(members.map(startMember));
  return members as (InProcessMember & { etcd: Etcd })[];
}

/**
 * Where the members keep their data: in memory when the system offers it. Three members on one disk
 * would have their WAL fsyncs queue behind three image writes at once, a contention that members on
 * their own disks do not have and that is not what this test is about: the Raft loop.
 */
async function memoryTempDir(): Promise<string | undefined> {
  try {
    return (await Deno.stat("/dev/shm")).isDirectory ? "/dev/shm" : undefined;
  } catch {
    return undefined;
  }
}

/** What members log when they see an election or lose their leader. */
const LEADER_CHANGES = new Set(["elected leader", "lost leader", "became leader"]);

Deno.test("a leader keeps its term while it writes large snapshots under load", async () => {
  // the members run in this process, so it needs the setting the executable gives itself: without it,
  // the snapshot writes delay socket reads by hundreds of milliseconds (server/io_polling.ts)
  assertEquals(
    Deno.env.get(IO_POLLING_VARIABLE),
    IO_POLLING_VALUE,
    `run this test with ${IO_POLLING_VARIABLE}=${IO_POLLING_VALUE}, as deno task test does`,
  );
  const dir = await Deno.makeTempDir({ prefix: "snapshot_load_", dir: await memoryTempDir() });
  const members = await startCluster(dir);
  try {
    const leaderOf = () => members.map((m) => m.etcd.server.driver.lead);
    const agreedLeader = async () => {
      const deadline = Date.now() + 10_000;
      while (!leaderOf().every((l) => l !== 0n && l === leaderOf()[0]) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const leader = members.find((m) => m.etcd.server.memberId === leaderOf()[0]);
      assert(leader !== undefined, "the members agree on a leader");
      return leader;
    };

    // the key space: about 100 MB, so one snapshot image takes longer to write than an election timeout.
    // This is setup, not the subject: the suite runs test files in parallel on two cores, and a 200 ms
    // election timeout may lapse while 1 MiB entries queue behind another test's work; whoever leads
    // afterwards is the leader the load must keep.
    const big = new Uint8Array(1 << 20);
    for (let i = 0; i < BIG_VALUES; i++) {
      big.fill(i);
      await put((await agreedLeader()).etcd, `big/${i}`, big);
    }
    const leader = await agreedLeader();
    const leadId = leader.etcd.server.memberId;
    const term = leader.etcd.server.driver.term;
    const marks = members.map((m) => m.log.length);

    // the load: small puts through the leader, several snapshots on every member meanwhile
    const started = Date.now();
    const savedSince = (i: number) =>
      members[i].log.slice(marks[i]).filter((e) => e.msg === "saved snapshot");
    const enough = () => members.every((_, i) => savedSince(i).length >= SNAPSHOTS);
    let next = 0;
    const failures: string[] = [];
    await Promise.all(Array.from({ length: WRITERS }, async () => {
      while (!enough() && next < MAX_PUTS && Date.now() - started < MAX_LOAD_MS && failures.length === 0) {
        const i = next++;
        try {
          await put(leader.etcd, `small/${i % 50}`, new TextEncoder().encode(`value ${i}`));
        } catch (err) {
          failures.push(`put ${i}: ${err}`); // a leader change: the checks below say more
        }
      }
    }));
    const took = Date.now() - started;

    // the last snapshots being written count too
    await Promise.all(members.map((m) => m.etcd.server.driver.stop()));
    // should a check below fail: what every member logged about leaders, late heartbeats and snapshots
    // during the load, in time order, beside which member led
    const timeline = members.flatMap((m, i) =>
      m.log.slice(marks[i])
        .filter((e) =>
          e.level !== "info" || LEADER_CHANGES.has(e.msg as string) || e.msg === "saved snapshot"
        )
        .map((e) => `${e.ts} ${m.name} ${e.msg} ${JSON.stringify({ ...e, ts: undefined, msg: undefined })}`)
    ).sort();
    console.log(`leader ${leader.name} (term ${term}) during the load:\n${timeline.join("\n")}`);
    for (const [i, m] of members.entries()) {
      const after = m.log.slice(marks[i]);
      const saved = savedSince(i);
      const changes = after.filter((e) => LEADER_CHANGES.has(e.msg as string));
      console.log(
        `${m.name}: ${saved.length} snapshots of ${saved.map((e) => e.bytes).join("/")} bytes, took ` +
          `${saved.map((e) => e.took).join(" ")}; ${next} puts in ${took} ms`,
      );
      assertEquals(
        changes.map((e) => `${e.msg} (term ${e.term}) at ${e.ts}`),
        [],
        `${m.name} saw no election`,
      );
      assert(saved.length >= SNAPSHOTS, `${m.name} saved only ${saved.length} snapshots under load`);
      for (const e of saved) {
        assert((e.bytes as number) > MIN_IMAGE_BYTES, `an image of only ${e.bytes} bytes`);
      }
      assertEquals(m.etcd.server.driver.lead, leadId, `${m.name} follows the same leader`);
      assertEquals(m.etcd.server.driver.term, term, `${m.name} is in the same term`);
    }
    assertEquals(failures, [], "every put succeeded");
  } finally {
    await Promise.all(members.map((m) => m.etcd.close()));
    await Deno.remove(dir, { recursive: true });
  }
});
