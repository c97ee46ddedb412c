/**
 * `etcd-ts snapshot restore`: a backup file becomes the data directory of a member of a new cluster, as
 * `etcdctl snapshot restore` (etcdutl) does for etcd. Every member of the new cluster restores the same file
 * with the same `--initial-cluster` and token, and so starts from the same state: the keys, leases, v2 keys
 * of the backup, a membership of the new members only, and a new cluster ID.
 *
 * The data directory gets a Raft snapshot of that state at index n (the number of members) and term 1, and
 * a WAL that marks it and records it as committed; the member then starts as a restarted one would.
 *
 * @module
 */
import { joinPath as join } from "../../storage/fs_util.ts";
import { Wal } from "../../storage/wal.ts";
import { Snapshotter } from "../../storage/snapshot.ts";
import { staticBootstrap } from "../../discovery/static.ts";
import { captureAppState } from "../member/app_state.ts";
import { Membership } from "../member/membership.ts";
import { collectBytes } from "../../storage/byte_stream.ts";
import { decodeImage, imageOf, SnapshotFileError } from "./file.ts";

/** What a restore needs: the file and the new member's bootstrap settings. */
export interface RestoreOptions {
  file: string;
  name: string;
  /** Member name -> peer URLs, as etcd writes them. */
  initialCluster: Map<string, string[]>;
  initialClusterToken: string;
  dataDir: string;
  /** "" for `<data-dir>/member/wal`. */
  walDir: string;
  skipHashCheck: boolean;
}

/** Restores; resolves to the new member's and cluster's IDs. Nothing is written when the file is bad. */
export async function restoreSnapshot(o: RestoreOptions): Promise<{ memberId: bigint; clusterId: bigint }> {
  const memberDir = join(o.dataDir, "member");
  const walDir = o.walDir || join(memberDir, "wal");
  for (const dir of [memberDir, walDir]) {
    try {
      await Deno.stat(dir);
      throw new SnapshotFileError(`data-dir "${dir}" exists`);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  let file: Uint8Array;
  try {
    file = await Deno.readFile(o.file);
  } catch (err) {
    throw new SnapshotFileError(`open ${o.file}: ${(err as Error).message}`);
  }
  // checks the digest and decodes everything before a byte is written
  const state = decodeImage(imageOf(file, o.skipHashCheck));
  try {
    const { members, memberId, clusterId } = staticBootstrap(o.name, o.initialCluster, o.initialClusterToken);
    const membership = new Membership(clusterId);
    for (const m of members) {
      membership.add({ id: m.id, name: m.name, peerUrls: m.peerUrls, clientUrls: [], isLearner: false });
    }
    const confState = {
      voters: members.map((m) => m.id),
      learners: [],
      votersOutgoing: [],
      learnersNext: [],
      autoLeave: false,
    };
    const capture = captureAppState({ ...state, confState, membership });
    let image: Uint8Array;
    try {
      image = collectBytes(capture.data);
    } finally {
      capture.release();
    }
    const index = members.length;
    const term = 1;
    await Deno.mkdir(join(memberDir, "snap"), { recursive: true });
    await new Snapshotter(join(memberDir, "snap")).save({ index, term, data: image });
    const wal = await Wal.create(walDir, { memberId, clusterId });
    wal.saveSnapshotMark({ index, term });
    wal.append([], { term, vote: 0n, commit: index });
    await wal.sync();
    await wal.close();
    return { memberId, clusterId };
  } finally {
    state.mvcc.close();
  }
}
