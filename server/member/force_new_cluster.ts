/**
 * `--force-new-cluster`: restart a member as a single-member cluster from its own data, for disaster
 * recovery when a majority is lost (etcd's restartAsStandaloneNode). Configuration entries removing
 * every other member are appended after the member's log, in the current term, and counted as committed
 * with everything before them, so the member applies them at start and leads alone.
 *
 * Unlike etcd, entries after the recorded commit index are kept: this member records a commit index that
 * only advances (no new entries) when its next entries are made durable, so the recorded index may trail
 * the last acknowledged write, and dropping what follows it could lose that write. An entry kept this
 * way that was never committed was never acknowledged either, and it agrees with the log before it
 * (Raft's log matching), so applying it is safe.
 *
 * @module
 */
import { decodeConfChange, encodeConfChange } from "../../raft/conf_change.ts";
import { ConfChangeType, type Entry, EntryType, type HardState } from "../../raft/types.ts";

/** The log and hard state a forced restart starts from. */
export interface ForcedStart {
  /** The member's entries, then the appended ones. */
  entries: Entry[];
  /** The appended configuration entries (to write to the WAL). */
  appended: Entry[];
  hardState: HardState;
  /** The members removed. */
  removed: bigint[];
}

/**
 * `entries` and `hardState` as read from the WAL, `voters` those of the snapshot the state came from
 * (empty without one), `self` this member.
 */
export function forceNewCluster(
  entries: Entry[],
  hardState: HardState,
  voters: bigint[],
  self: bigint,
): ForcedStart {
  const committed = entries;
  // the members after the committed log: the snapshot's voters, then the changes since
  const ids = new Set(voters);
  for (const e of committed) {
    if (e.type !== EntryType.ConfChange) continue;
    const cc = decodeConfChange(e.data);
    if (cc.type === ConfChangeType.AddNode || cc.type === ConfChangeType.AddLearnerNode) ids.add(cc.nodeId);
    else if (cc.type === ConfChangeType.RemoveNode) ids.delete(cc.nodeId);
  }
  const removed = [...ids].filter((id) => id !== self).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let index = committed.length > 0 ? committed[committed.length - 1].index : hardState.commit;
  const appended: Entry[] = removed.map((id) => ({
    term: hardState.term,
    index: ++index,
    type: EntryType.ConfChange,
    data: encodeConfChange({ type: ConfChangeType.RemoveNode, nodeId: id, context: new Uint8Array() }),
  }));
  return {
    entries: [...committed, ...appended],
    appended,
    hardState: { ...hardState, commit: index },
    removed,
  };
}
