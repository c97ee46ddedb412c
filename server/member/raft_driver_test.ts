import { assert, assertEquals } from "../../tests/assert.ts";
import { RawNode } from "../../raft/node.ts";
import { decodeConfChange } from "../../raft/conf_change.ts";
import { type ConfState, type Entry, EntryType, type Message, MessageType } from "../../raft/types.ts";
import { makeMessage } from "../../raft/util.ts";
import { Wal } from "../../storage/wal.ts";
import { denoFs, type FileHandle, type FileSystem } from "../../storage/fs.ts";
import { Snapshotter } from "../../storage/snapshot.ts";
import { systemClock } from "../clock.ts";
import { createLogger } from "../logger.ts";
import { RaftDriver, ServerStorage } from "./raft_driver.ts";
import type { SnapshotCapture } from "./snapshot_writer.ts";

const EMPTY: ConfState = { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };

/** What every node of these tests is: member 1, with fixed timing and randomness. */
const NODE = {
  id: 1n,
  electionTick: 10,
  heartbeatTick: 1,
  applied: 0,
  maxSizePerMsg: 1 << 20,
  maxInflightMsgs: 256,
  random: () => 0.5,
};

/** A Raft node of a one-member cluster over `storage`. */
function singleNode(storage: ServerStorage): RawNode {
  return new RawNode({ ...NODE, storage, checkQuorum: true, preVote: true });
}

/**
 * Member 1 of a new three-member cluster over `storage`; the other two exist only as the messages a test
 * steps into it.
 */
function threeVoters(storage: ServerStorage): RawNode {
  const node = new RawNode({ ...NODE, storage, checkQuorum: false, preVote: false });
  node.bootstrap([1n, 2n, 3n].map((id) => ({ id, context: new Uint8Array(0) })));
  return node;
}

/** Starts `driver` and makes its one-member cluster elect it. */
async function leadAlone(driver: RaftDriver, node: RawNode): Promise<void> {
  driver.start();
  await driver.waitApplied(1); // the bootstrap configuration
  node.campaign();
  driver.kick();
  while (driver.lead !== 1n) await new Promise((r) => setTimeout(r, 5));
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
    await leadAlone(driver, node);
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

/** The real file system, whose files answer with `overrides(file)` where it has the property asked for. */
function fsWith(overrides: (file: Deno.FsFile) => Partial<FileHandle>): FileSystem {
  return {
    ...denoFs,
    open: async (path, options) => {
      const f = await denoFs.open(path, options) as Deno.FsFile;
      const own: Record<PropertyKey, unknown> = overrides(f);
      return new Proxy(f, {
        get(target, key) {
          if (key in own) return own[key];
          const v = Reflect.get(target, key);
          return typeof v === "function" ? v.bind(target) : v;
        },
      }) as unknown as FileHandle;
    },
  };
}

/** A WAL whose every fdatasync counts as fast (so small writes always go inline), each one told to `hook`. */
function inlineWal(dir: string, hook: () => void): Promise<Wal> {
  return Wal.create(`${dir}/wal`, { memberId: 1n, clusterId: 2n }, {
    preallocate: false,
    fs: fsWith((f) => ({
      syncDataSync: () => {
        f.syncDataSync();
        hook();
      },
    })),
    now: () => 0,
  });
}

/**
 * A driver of `node` that applies membership changes, hands every other entry with data to `apply`, and
 * every message to `send`. It ticks only once a minute: the tests move Raft themselves.
 */
function driverOf(
  node: RawNode,
  dir: string,
  wal: Wal,
  storage: ServerStorage,
  io: {
    apply?: (e: Entry) => void;
    send?: (messages: Message[]) => void;
    proposedHere?: (entries: Entry[]) => boolean;
    proposedBy?: (entries: Entry[]) => bigint | undefined;
  },
): RaftDriver {
  const driver: RaftDriver = new RaftDriver({
    node,
    ...quietOptions(dir, wal, storage),
    snapshotCount: 1000,
    tickMs: 60_000,
    handler: {
      applyEntries(entries: Entry[]) {
        for (const e of entries) {
          if (e.type === EntryType.ConfChange) {
            driver.confState = node.applyConfChange(decodeConfChange(e.data));
          } else if (e.data.length > 0) io.apply?.(e);
        }
      },
      restoreSnapshot() {},
      captureSnapshot(): SnapshotCapture {
        throw new Error("no snapshot here");
      },
      send: io.send ?? (() => {}),
      proposedHere: io.proposedHere,
      proposedBy: io.proposedBy,
      onSoftState() {},
      onReadStates() {},
    },
  });
  return driver;
}

/**
 * Starts `driver` over member 1 of {@link threeVoters} and makes it lead at term 2, with both followers
 * holding every entry so far (so that new entries go to them without waiting). `sent` is where the
 * driver's `send` records messages. Returns the term.
 */
async function leadThree(driver: RaftDriver, node: RawNode, storage: ServerStorage, sent: Message[]) {
  driver.start();
  await driver.waitApplied(3);
  node.campaign();
  driver.kick();
  while (!sent.some((m) => m.type === MessageType.Vote)) await new Promise((r) => setTimeout(r, 5));
  const term = node.status().hardState.term;
  node.step(makeMessage({ type: MessageType.VoteResp, from: 2n, to: 1n, term }));
  driver.kick();
  while (driver.lead !== 1n) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 10));
  const index = storage.lastIndex();
  for (const from of [2n, 3n]) {
    node.step(makeMessage({ type: MessageType.AppResp, from, to: 1n, term, index }));
  }
  driver.kick();
  await driver.waitApplied(index);
  return term;
}

/** Stops `driver`, closes its WAL and removes the test's directory. */
async function shutDown(driver: RaftDriver, dir: string): Promise<void> {
  await driver.stop();
  await driver.closeStorage();
  await Deno.remove(dir, { recursive: true });
}

/** Records `what` after `hops` turns of the microtask queue, as a reply or a peer write does. */
function later(events: string[], what: string, hops = 3): void {
  let p = Promise.resolve();
  for (let i = 1; i < hops; i++) p = p.then(() => {});
  p.then(() => events.push(what));
}

Deno.test("raft driver: the replies of committed entries leave before a write that holds the thread", async () => {
  const dir = await Deno.makeTempDir();
  const events: string[] = [];
  let onSync = () => {};
  const wal = await inlineWal(dir, () => {
    events.push("fsync");
    onSync();
  });
  const storage = new ServerStorage();
  const node = singleNode(storage);
  node.bootstrap([{ id: 1n, context: new Uint8Array(0) }]);
  const driver = driverOf(node, dir, wal, storage, {
    apply(e) {
      events.push(`apply ${e.data[0]}`);
      later(events, `reply ${e.data[0]}`);
    },
  });
  try {
    await leadAlone(driver, node);
    await driver.waitApplied(node.status().hardState.commit);
    events.length = 0;
    // entry 2 is proposed while entry 1 is being written: the next Ready commits 1 and writes 2
    onSync = () => {
      onSync = () => {};
      node.proposeBatch([new Uint8Array([2])]);
    };
    node.proposeBatch([new Uint8Array([1])]);
    driver.kick();
    const start = driver.appliedIndex;
    await driver.waitApplied(start + 2);
    await new Promise((r) => setTimeout(r, 10));
    assertEquals(events, ["fsync", "apply 1", "reply 1", "fsync", "apply 2", "reply 2"]);
  } finally {
    await shutDown(driver, dir);
  }
});

Deno.test("raft driver: a leader's appends leave before its own write that holds the thread", async () => {
  const dir = await Deno.makeTempDir();
  const events: string[] = [];
  const wal = await inlineWal(dir, () => events.push("fsync"));
  const storage = new ServerStorage();
  const node = threeVoters(storage);
  const sent: Message[] = [];
  const driver = driverOf(node, dir, wal, storage, {
    send(messages) {
      sent.push(...messages);
      // the peer transport writes in a queued task too
      for (const m of messages) {
        if (m.type === MessageType.App && m.entries.some((e) => e.data.length > 0)) {
          later(events, `append to ${m.to}`);
        }
      }
    },
  });
  try {
    await leadThree(driver, node, storage, sent);
    events.length = 0;
    node.proposeBatch([new Uint8Array([7])]);
    driver.kick();
    while (events.length < 3) await new Promise((r) => setTimeout(r, 5));
    assertEquals(events, ["append to 2", "append to 3", "fsync"]);
  } finally {
    await shutDown(driver, dir);
  }
});

/**
 * Steps into member 1 of {@link threeVoters} (its three configuration entries applied) an append from
 * member 2 as leader of term 2: one entry at index 4 whose data is the byte `data`.
 */
function appendFromLeader2(driver: RaftDriver, node: RawNode, data: number): void {
  const entry = { term: 2, index: 4, type: EntryType.Normal, data: new Uint8Array([data]) };
  node.step(
    makeMessage({ type: MessageType.App, from: 2n, to: 1n, term: 2, logTerm: 1, index: 3, entries: [entry] }),
  );
  driver.kick();
}

Deno.test("raft driver: a follower forwards proposals at once, while its write is still in progress", async () => {
  const dir = await Deno.makeTempDir();
  // every fdatasync waits for the gate (and none is made inline): a write in progress as long as the test wants
  let gate = Promise.withResolvers<void>();
  let syncing = false;
  const fs = fsWith((f) => ({
    syncDataSync: undefined,
    syncData: async () => {
      syncing = true;
      await gate.promise;
      syncing = false;
      await f.syncData();
    },
  }));
  gate.resolve(); // open while the log is created
  const wal = await Wal.create(`${dir}/wal`, { memberId: 1n, clusterId: 2n }, { preallocate: false, fs });
  const storage = new ServerStorage();
  const node = threeVoters(storage);
  const sent: Message[] = [];
  const driver = driverOf(node, dir, wal, storage, { send: (messages) => sent.push(...messages) });
  try {
    driver.start();
    await driver.waitApplied(3);
    // member 2 leads at term 2 and sends an entry: this member's write of it hangs at the gate
    gate = Promise.withResolvers<void>();
    appendFromLeader2(driver, node, 1);
    while (!syncing) await new Promise((r) => setTimeout(r, 1));
    node.proposeBatch([new Uint8Array([9])]);
    driver.kick();
    await new Promise((r) => setTimeout(r, 20));
    assertEquals(
      sent.filter((m) => m.type === MessageType.Prop).map((m) => m.to),
      [2n],
      "forwarded during the write",
    );
    assertEquals(
      sent.filter((m) => m.type === MessageType.AppResp).length,
      0,
      "the write is not acknowledged yet",
    );
    gate.resolve();
    while (!sent.some((m) => m.type === MessageType.AppResp)) await new Promise((r) => setTimeout(r, 1));
    assertEquals(sent.filter((m) => m.type === MessageType.Prop).length, 1, "and forwarded once");
  } finally {
    gate.resolve();
    await shutDown(driver, dir);
  }
});

/** Member 1 of {@link threeVoters} over a new WAL (fsyncs inline) in a new temporary directory. */
async function threeVotersOnDisk() {
  const dir = await Deno.makeTempDir();
  const wal = await inlineWal(dir, () => {});
  const storage = new ServerStorage();
  return { dir, wal, storage, node: threeVoters(storage) };
}

/**
 * Member 1 leads three and commits one entry proposed with `data`: entries whose first byte is 9 are
 * member 3's, the others member 1's own. Returns the order in which the entry's appends were handed to
 * the transport, and the entry was applied, its reply went out and the followers' commit index was
 * written.
 */
async function replyAndCommitOrder(data: number): Promise<string[]> {
  const { dir, wal, storage, node } = await threeVotersOnDisk();
  const events: string[] = [];
  const sent: Message[] = [];
  let watched = 0;
  const driver = driverOf(node, dir, wal, storage, {
    apply(e) {
      if (e.index !== watched) return;
      events.push("apply");
      // a reply's promise chain may be long: the commit index waits for all of it
      later(events, "reply", 20);
    },
    send(messages) {
      sent.push(...messages);
      // the peer transport writes in a microtask it queues (server/peer/stream_writer.ts)
      for (const m of messages) {
        if (watched === 0 || m.type !== MessageType.App) continue;
        if (m.entries.some((e) => e.index === watched)) events.push(`append to ${m.to}`);
        else if (m.entries.length === 0 && m.commit >= watched) later(events, `commit to ${m.to}`, 1);
      }
    },
    proposedHere: (entries) => entries.every((e) => e.data.length === 0 || e.data[0] !== 9),
    proposedBy: (entries) => entries.at(-1)?.data[0] === 9 ? 3n : 1n,
  });
  try {
    const term = await leadThree(driver, node, storage, sent);
    node.proposeBatch([new Uint8Array([data])]);
    watched = storage.lastIndex() + 1;
    driver.kick();
    while (storage.lastIndex() < watched) await new Promise((r) => setTimeout(r, 1));
    // one follower acknowledges: the entry is committed, applied and answered, and both are told
    node.step(makeMessage({ type: MessageType.AppResp, from: 2n, to: 1n, term, index: watched }));
    driver.kick();
    await driver.waitApplied(watched);
    while (events.length < 6) await new Promise((r) => setTimeout(r, 1));
    return events;
  } finally {
    await shutDown(driver, dir);
  }
}

Deno.test("raft driver: a leader answers its own clients before it tells the followers of the commit", async () => {
  assertEquals(await replyAndCommitOrder(7), [
    "append to 2",
    "append to 3",
    "apply",
    "reply",
    "commit to 2",
    "commit to 3",
  ]);
});

Deno.test("raft driver: a leader writes first the commit index that a follower's client waits for, then applies", async () => {
  // member 3 proposed it: it gets the append and the commit index before member 2
  assertEquals(await replyAndCommitOrder(9), [
    "append to 3",
    "append to 2",
    "commit to 3",
    "commit to 2",
    "apply",
    "reply",
  ]);
});

/**
 * Member 1 follows member 2 in a cluster of three and is told that an entry proposed with `data` is
 * committed (entries whose first byte is 9 are another member's). Returns the order in which the entry's
 * reply and the acknowledgement of that commit index went out.
 */
async function replyAndAckOrder(data: number): Promise<string[]> {
  const { dir, wal, storage, node } = await threeVotersOnDisk();
  const events: string[] = [];
  const sent: Message[] = [];
  let commitSent = false;
  const driver = driverOf(node, dir, wal, storage, {
    apply(e) {
      if (e.index === 4) later(events, "reply", 20);
    },
    send(messages) {
      sent.push(...messages);
      for (const m of messages) {
        if (commitSent && m.type === MessageType.AppResp) later(events, `ack to ${m.to}`);
      }
    },
    proposedHere: (entries) => entries.every((e) => e.data.length === 0 || e.data[0] !== 9),
  });
  try {
    driver.start();
    await driver.waitApplied(3);
    appendFromLeader2(driver, node, data);
    while (!sent.some((m) => m.type === MessageType.AppResp)) await new Promise((r) => setTimeout(r, 1));
    // the leader's next append carries only the commit index
    commitSent = true;
    node.step(
      makeMessage({ type: MessageType.App, from: 2n, to: 1n, term: 2, logTerm: 2, index: 4, commit: 4 }),
    );
    driver.kick();
    await driver.waitApplied(4);
    while (events.length < 2) await new Promise((r) => setTimeout(r, 1));
    return events;
  } finally {
    await shutDown(driver, dir);
  }
}

Deno.test("raft driver: a follower answers its own client before it acknowledges the commit index", async () => {
  assertEquals(await replyAndAckOrder(7), ["reply", "ack to 2"]);
});

Deno.test("raft driver: a follower acknowledges at once a commit index that only others' clients wait for", async () => {
  assertEquals(await replyAndAckOrder(9), ["ack to 2", "reply"]);
});
