/**
 * A follower that was down while the log moved on catches up by a snapshot streamed from the leader:
 * three members run in this process (started through `startEtcd`, talking Raft over 127.0.0.1) with
 * --snapshot-count 100, so the leader keeps only about 100 entries for slow followers. The key space
 * holds a few MB; one member is stopped, a few hundred writes go by, and it is started again while
 * writes go on. The leader streams the image from a view of its applied state and the follower writes
 * it to its snapshot file as it arrives; in the end the follower holds the same key space as the leader
 * (same revision, same hash, same keys and values), and both sides logged the snapshot.
 *
 * About 5 s and 1000 writes (at most 3500).
 *
 * @module
 */
import { assert, assertEquals } from "./assert.ts";
import type { Etcd } from "../mod.ts";
import { type DeleteRangeRequest, encodeDeleteRangeRequest, type RangeRequest } from "../server/pb/rpc.ts";
import { clusterMembers, type InProcessMember, put, startMember } from "./in_process.ts";

/** The key space before the follower stops: this many values of 64 KiB. */
const BIG_VALUES = 80;
const BIG_BYTES = 64 << 10;
/** The images sent must hold most of it. */
const MIN_IMAGE_BYTES = 4 << 20;
/** Writes while the follower is down (well beyond the leader's window of --snapshot-count entries). */
const WRITES_WHILE_DOWN = 300;
/** Writes at most while it catches up (it goes on until the snapshot is applied, and this many after). */
const MAX_WRITES_DURING = 3000;
const WRITES_AFTER = 50;
const TIMEOUT_MS = 20_000;

const enc = new TextEncoder();
const dec = new TextDecoder();

function configs(dir: string): InProcessMember[] {
  return clusterMembers(dir, (c) => {
    c.heartbeatIntervalMs = 50;
    c.electionTimeoutMs = 500;
    c.snapshotCount = 100;
    c.maxSnapshots = 2;
  });
}

function del(etcd: Etcd, key: string): Promise<unknown> {
  const r: DeleteRangeRequest = { key: enc.encode(key), rangeEnd: new Uint8Array(0), prevKv: false };
  return etcd.server.deleteRange(r, encodeDeleteRangeRequest(r));
}

/** Every key and value a member holds, read locally (serializable). */
async function keySpace(etcd: Etcd): Promise<Map<string, string>> {
  const r: RangeRequest = {
    key: new Uint8Array([0]),
    rangeEnd: new Uint8Array([0]),
    limit: 0,
    revision: 0,
    sortOrder: 0,
    sortTarget: 0,
    serializable: true,
    keysOnly: false,
    countOnly: false,
    minModRevision: 0,
    maxModRevision: 0,
    minCreateRevision: 0,
    maxCreateRevision: 0,
  };
  const resp = await etcd.server.range(r);
  const out = new Map<string, string>();
  for (const kv of resp.kvs) {
    // a digest of each value keeps failure messages short
    let h = 0;
    for (const b of kv.value) h = (h * 31 + b) >>> 0;
    out.set(dec.decode(kv.key), `${kv.value.length}/${h}/${kv.modRevision}`);
  }
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function logged(m: InProcessMember, msg: string, since: number): Record<string, unknown>[] {
  return m.log.slice(since).filter((e) => e.msg === msg);
}

Deno.test("a follower far behind catches up by a streamed snapshot of several MB while writes go on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "snapshot_stream_" });
  const members = configs(dir);
  const deadline = Date.now() + TIMEOUT_MS;
  try {
    await Promise.all(members.map(startMember));
    const leaderOf = () => members.map((m) => m.etcd?.server.driver.lead ?? 0n);
    while (!leaderOf().every((l) => l !== 0n && l === leaderOf()[0]) && Date.now() < deadline) {
      await sleep(20);
    }
    const leader = members.find((m) => m.etcd!.server.memberId === leaderOf()[0]);
    assert(leader !== undefined, "a leader was elected");
    const lead = leader.etcd!;
    const follower = members.find((m) => m !== leader)!;

    const big = new Uint8Array(BIG_BYTES);
    for (let i = 0; i < BIG_VALUES; i++) {
      big.fill(i);
      await put(lead, `big/${String(i).padStart(3, "0")}`, big);
    }
    // the follower stops; the log moves on far past what the leader keeps for it
    await follower.etcd!.close();
    follower.etcd = undefined;
    for (let i = 0; i < WRITES_WHILE_DOWN; i++) {
      if (i % 10 === 0) await del(lead, `big/${String(i / 10).padStart(3, "0")}`);
      else await put(lead, `small/${i % 37}`, enc.encode(`while down ${i}`));
    }
    const leaderMark = leader.log.length;
    const followerMark = follower.log.length;

    // it comes back while writes go on
    let stopAt = MAX_WRITES_DURING;
    let written = 0;
    let writtenAtSend = -1;
    const writer = (async () => {
      while (written < stopAt) {
        if (writtenAtSend < 0 && logged(leader, "sending database snapshot", leaderMark).length > 0) {
          writtenAtSend = written;
        }
        const i = written++;
        await put(lead, `small/${i % 41}`, enc.encode(`during ${i}`));
        if (i % 20 === 0) await put(lead, `big/${String(50 + i / 20).padStart(3, "0")}`, big.fill(i & 0xff));
      }
    })();
    try {
      await startMember(follower);
      while (logged(follower, "applied snapshot", followerMark).length === 0 && Date.now() < deadline) {
        await sleep(20);
      }
    } finally {
      stopAt = Math.min(stopAt, written + WRITES_AFTER);
      await writer;
    }
    const applied = logged(follower, "applied snapshot", followerMark);
    assert(applied.length > 0, "the follower applied a snapshot");
    const sending = logged(leader, "sending database snapshot", leaderMark);
    assert(sending.length > 0, "the leader sent a snapshot");
    for (const e of sending) {
      assert((e["snapshot-size"] as number) > MIN_IMAGE_BYTES, `an image of ${e["snapshot-size"]} bytes`);
    }
    assert(logged(leader, "sent database snapshot", leaderMark).length > 0, "the upload completed");
    assert(logged(follower, "received database snapshot", followerMark).length > 0, "the follower took it");
    assert(writtenAtSend >= 0 && written > writtenAtSend, "writes went on while the snapshot was sent");

    // the follower reaches the leader's applied state: same revision, same hash, same keys and values
    const f = follower.etcd!;
    while (
      (f.server.driver.appliedIndex < lead.server.driver.appliedIndex ||
        f.server.mvcc.currentRevision !== lead.server.mvcc.currentRevision) && Date.now() < deadline
    ) {
      await sleep(20);
    }
    const rev = lead.server.mvcc.currentRevision;
    assertEquals(f.server.mvcc.currentRevision, rev, "the follower caught up");
    assertEquals(f.server.mvcc.hashKV(rev).hash, lead.server.mvcc.hashKV(rev).hash, "same history hash");
    const want = await keySpace(lead);
    assertEquals(await keySpace(f), want, "same keys and values");
    assert(want.size > 80, `a key space of ${want.size} keys`);
    console.log(
      `snapshot of ${sending.map((e) => e["snapshot-size"]).join("/")} bytes at index ` +
        `${applied.map((e) => e["snapshot-index"]).join("/")}; ${written} writes while catching up, ${
          written - writtenAtSend
        } since the snapshot was sent`,
    );
  } finally {
    await Promise.all(members.map((m) => m.etcd?.close()));
    await Deno.remove(dir, { recursive: true });
  }
});
