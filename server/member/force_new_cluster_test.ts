import { assertEquals } from "../../tests/assert.ts";
import { decodeConfChange, encodeConfChange } from "../../raft/conf_change.ts";
import { ConfChangeType, type Entry, EntryType } from "../../raft/types.ts";
import { forceNewCluster } from "./force_new_cluster.ts";

function change(index: number, type: ConfChangeType, nodeId: bigint): Entry {
  return {
    term: 1,
    index,
    type: EntryType.ConfChange,
    data: encodeConfChange({ type, nodeId, context: new Uint8Array() }),
  };
}

function normal(index: number, term = 2): Entry {
  return { term, index, type: EntryType.Normal, data: new Uint8Array([1]) };
}

Deno.test("force-new-cluster: every other member is removed after the log, and the whole log counts as committed", () => {
  const log = [
    change(1, ConfChangeType.AddNode, 1n),
    change(2, ConfChangeType.AddNode, 2n),
    change(3, ConfChangeType.AddNode, 3n),
    normal(4),
    change(5, ConfChangeType.AddLearnerNode, 4n),
    change(6, ConfChangeType.RemoveNode, 3n),
    normal(7),
    normal(8), // durable, beyond the recorded commit: kept
  ];
  const forced = forceNewCluster(log, { term: 2, vote: 1n, commit: 7 }, [], 2n);
  assertEquals(forced.removed, [1n, 4n]);
  assertEquals(forced.appended.map((e) => [e.index, e.term, decodeConfChange(e.data).nodeId]), [[9, 2, 1n], [
    10,
    2,
    4n,
  ]]);
  assertEquals(forced.appended.map((e) => decodeConfChange(e.data).type), [
    ConfChangeType.RemoveNode,
    ConfChangeType.RemoveNode,
  ]);
  assertEquals(forced.entries.length, 10);
  assertEquals(forced.hardState, { term: 2, vote: 1n, commit: 10 });
});

Deno.test("force-new-cluster: the members of a snapshot count; a lone member appends nothing", () => {
  const forced = forceNewCluster([normal(11)], { term: 3, vote: 0n, commit: 11 }, [5n, 6n, 7n], 6n);
  assertEquals(forced.removed, [5n, 7n]);
  assertEquals(forced.hardState.commit, 13);
  const alone = forceNewCluster([], { term: 3, vote: 0n, commit: 10 }, [6n], 6n);
  assertEquals([alone.appended.length, alone.hardState.commit], [0, 10]);
});
