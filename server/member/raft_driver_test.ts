import { assert, assertEquals } from "../../tests/assert.ts";
import { RawNode } from "../../raft/node.ts";
import { decodeConfChange } from "../../raft/conf_change.ts";
import { type ConfState, type Entry, EntryType } from "../../raft/types.ts";
import { Wal } from "../../storage/wal.ts";
import { Snapshotter } from "../../storage/snapshot.ts";
import { systemClock } from "../clock.ts";
import { createLogger } from "../logger.ts";
import { RaftDriver, ServerStorage } from "./raft_driver.ts";
import type { SnapshotCapture } from "./snapshot_writer.ts";

const EMPTY: ConfState = { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };

/** A Raft node of a one-member cluster over `storage`. */
function singleNode(storage: ServerStorage): RawNode {
  return new RawNode({
    id: 1n,
    electionTick: 10,
    heartbeatTick: 1,
    storage,
    applied: 0,
    checkQuorum: true,
    preVote: true,
    maxSizePerMsg: 1 << 20,
    maxInflightMsgs: 256,
    random: () => 0.5,
  });
}

/** The driver options the tests share: storage under `dir`, a silent logger, a snapshot every 5 entries. */
function quietOptions(dir: string, wal: Wal, storage: ServerStorage) {
  return {
    storage,
    wal,
    snapshotter: new Snapshotter(`${dir}/snap`),
    clock: systemClock,
    logger: createLogger({ level: "error", write: () => {} }),
    tickMs: 10,
    snapshotCount: 5,
    maxSnapshots: 0,
    catchUpEntries: 5,
    appliedIndex: 0,
    snapshotIndex: 0,
    confState: EMPTY,
  };
}

Deno.test("raft driver: snapshots are written off the loop, and stop waits for the one in flight", async () => {
  const dir = await Deno.makeTempDir();
  const walDir = `${dir}/wal`;
  const wal = await Wal.create(walDir, { memberId: 1n, clusterId: 2n }, { preallocate: false });
  const storage = new ServerStorage();
  const node = singleNode(storage);
  node.bootstrap([{ id: 1n, context: new Uint8Array(0) }]);
  const applied: number[] = [];
  let appliedWhileWriting = 0;
  const captures: { index: number; released: boolean }[] = [];
  let driver: RaftDriver | undefined = undefined;
  driver = new RaftDriver({
    node,
    ...quietOptions(dir, wal, storage),
    handler: {
      applyEntries(entries: Entry[]) {
        for (const e of entries) {
          if (e.type === EntryType.ConfChange) {
            driver!.confState = node.applyConfChange(decodeConfChange(e.data));
          }
          applied.push(e.index);
          if (captures.some((c) => !c.released)) appliedWhileWriting++;
        }
      },
      restoreSnapshot() {
        throw new Error("a single member gets no snapshot");
      },
      captureSnapshot(): SnapshotCapture {
        const c = { index: driver!.appliedIndex, released: false };
        captures.push(c);
        return {
          // a few MB, so that the write takes many turns of the event loop
          data: {
            size: 64 * 65536,
            *chunks() {
              for (let i = 0; i < 64; i++) yield new Uint8Array(65536).fill(i);
            },
          },
          release: () => c.released = true,
        };
      },
      send() {},
      onSoftState() {},
      onReadStates() {},
    },
  });
  try {
    driver.start();
    await driver.waitApplied(1); // the bootstrap configuration
    node.campaign();
    driver.kick();
    while (driver.lead !== 1n) await new Promise((r) => setTimeout(r, 5));
    // the loop goes on taking proposals while snapshots are written
    for (let i = 0; i < 30; i++) {
      node.proposeBatch([new Uint8Array([i])]);
      driver.kick();
      await driver.waitApplied(driver.appliedIndex + 1);
    }
    assert(captures.length >= 1, "a snapshot was started");
    assert(appliedWhileWriting > 0, "entries were applied while a snapshot was being written");
    const last = captures[captures.length - 1];
    await driver.stop();
    // stop returned only once the snapshot being written was durable and marked in the WAL
    assert(last.released, "the last capture was written and released before stop returned");
    await driver.closeStorage();
    const marks = (await Wal.snapshotMarks(walDir)).map((m) => m.index);
    for (const c of captures) assert(marks.includes(c.index), `snapshot at ${c.index} is marked`);
    assertEquals(applied.length, driver.appliedIndex);
  } finally {
    await driver.stop();
    await driver.closeStorage().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("raft driver: a restarted member starts at the term of its hard state (its leader lines name it)", async () => {
  const dir = await Deno.makeTempDir();
  const wal = await Wal.create(`${dir}/wal`, { memberId: 1n, clusterId: 2n }, { preallocate: false });
  const storage = new ServerStorage();
  storage.setHardState({ term: 7, vote: 1n, commit: 0 });
  const node = singleNode(storage);
  const driver = new RaftDriver({
    node,
    ...quietOptions(dir, wal, storage),
    handler: {
      applyEntries() {},
      restoreSnapshot() {},
      captureSnapshot(): SnapshotCapture {
        throw new Error("no snapshot here");
      },
      send() {},
      onSoftState() {},
      onReadStates() {},
    },
  });
  try {
    assertEquals(driver.term, 7);
  } finally {
    await wal.close();
    await Deno.remove(dir, { recursive: true });
  }
});
