/**
 * The log: durable storage (MemoryStorage) followed by the unstable tail (Unstable), and RaftLog on top
 * of both: appends, conflict detection, truncation, term lookups, compaction, the commit and apply
 * cursors and their bounds.
 */
import { assert, assertEquals, assertThrows } from "../tests/assert.ts";
import { RaftLog } from "./log.ts";
import { Unstable } from "./log_unstable.ts";
import {
  ErrCompacted,
  ErrSnapOutOfDate,
  ErrStorageMisuse,
  ErrUnavailable,
  MemoryStorage,
} from "./storage.ts";
import { type Entry, EntryType, type Snapshot } from "./types.ts";
import { emptyConfState, NO_LIMIT, SILENT_LOGGER } from "./util.ts";

/** An entry of `index` and `term`, with `size` bytes of data. */
function ent(index: number, term: number, size = 0): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(size) };
}

/** Entries from `first` on, one per term in `terms`. */
function ents(first: number, ...terms: number[]): Entry[] {
  return terms.map((t, i) => ent(first + i, t));
}

/** Index/term pairs, for compact comparisons. */
function it(es: Entry[]): string {
  return es.map((e) => `${e.index}/${e.term}`).join(" ");
}

function snap(index: number, term: number): Snapshot {
  return { metadata: { index, term, confState: emptyConfState() }, data: new Uint8Array() };
}

/** A log whose storage holds `stable` and whose unstable tail holds `unstable`. */
function newLog(stable: Entry[], unstable: Entry[] = [], snapshot?: Snapshot): RaftLog {
  const s = new MemoryStorage();
  if (snapshot) s.applySnapshot(snapshot);
  s.append(stable);
  const log = new RaftLog(s, SILENT_LOGGER);
  log.append(unstable);
  return log;
}

Deno.test("storage: term and entry lookups, compaction, snapshots", async (t) => {
  await t.step("term: the dummy entry answers for the snapshot; outside the range is an error", () => {
    const s = new MemoryStorage();
    s.applySnapshot(snap(3, 3));
    s.append(ents(4, 4, 5));
    assertEquals([s.firstIndex(), s.lastIndex()], [4, 5]);
    assertEquals([s.term(3), s.term(4), s.term(5)], [3, 4, 5]);
    assertThrows(() => s.term(2), ErrCompacted);
    assertThrows(() => s.term(6), ErrUnavailable);
  });
  await t.step("entries: [lo, hi) bounds, size limit keeps at least one", () => {
    const s = new MemoryStorage();
    s.applySnapshot(snap(3, 3));
    s.append([ent(4, 4, 100), ent(5, 5, 100), ent(6, 6, 100)]);
    assertThrows(() => s.entries(3, 5, NO_LIMIT), ErrCompacted);
    assertThrows(() => s.entries(4, 8, NO_LIMIT), ErrStorageMisuse);
    assertEquals(it(s.entries(4, 7, NO_LIMIT)), "4/4 5/5 6/6");
    assertEquals(it(s.entries(4, 7, 0)), "4/4", "one entry even above the limit");
    assertEquals(it(s.entries(4, 7, 230)), "4/4 5/5");
    assertEquals(it(s.entries(5, 5, NO_LIMIT)), "");
  });
  await t.step("compact: the compacted-to entry becomes the dummy; bounds are checked", () => {
    const s = new MemoryStorage();
    s.append(ents(1, 1, 2, 3, 4, 5));
    s.compact(3);
    assertEquals([s.firstIndex(), s.lastIndex(), s.term(3)], [4, 5, 3]);
    assertThrows(() => s.entries(3, 4, NO_LIMIT), ErrCompacted);
    assertThrows(() => s.compact(3), ErrCompacted, undefined);
    assertThrows(() => s.compact(6), ErrStorageMisuse);
    s.compact(5);
    assertEquals([s.firstIndex(), s.lastIndex()], [6, 5]);
    assertThrows(() => s.entries(6, 6, NO_LIMIT), ErrUnavailable, undefined); // only the dummy is left
  });
  await t.step("append: overlapping entries replace the tail; old ones are ignored; gaps refused", () => {
    const s = new MemoryStorage();
    s.applySnapshot(snap(3, 3));
    s.append(ents(4, 4, 5));
    s.append(ents(2, 3, 3)); // entirely before the first index
    assertEquals(it(s.entries(4, 6, NO_LIMIT)), "4/4 5/5");
    s.append(ents(3, 3, 4, 6, 6)); // starts at the dummy: the part from 4 on counts
    assertEquals(it(s.entries(4, 7, NO_LIMIT)), "4/4 5/6 6/6");
    s.append(ents(5, 7));
    assertEquals(it(s.entries(4, 6, NO_LIMIT)), "4/4 5/7");
    assertEquals(s.lastIndex(), 5, "the replaced tail is gone");
    assertThrows(() => s.append(ents(7, 7)), ErrStorageMisuse, "missing log entry");
  });
  await t.step("snapshots: create within the log, never older than the current one", () => {
    const s = new MemoryStorage();
    s.append(ents(1, 1, 2, 3));
    const cs = { ...emptyConfState(), voters: [1n, 2n] };
    const created = s.createSnapshot(2, cs, new Uint8Array([7]));
    assertEquals([created.metadata.index, created.metadata.term], [2, 2]);
    assertEquals(s.initialState().confState, cs);
    assertThrows(() => s.createSnapshot(2, cs, new Uint8Array()), ErrSnapOutOfDate);
    assertThrows(() => s.createSnapshot(4, cs, new Uint8Array()), ErrStorageMisuse);
    assertThrows(() => s.applySnapshot(snap(2, 2)), ErrSnapOutOfDate);
    s.applySnapshot(snap(10, 5));
    assertEquals([s.firstIndex(), s.lastIndex(), s.term(10)], [11, 10, 5]);
  });
});

Deno.test("unstable: indexes and terms with and without a pending snapshot", () => {
  const u = new Unstable(5, SILENT_LOGGER);
  assertEquals([u.maybeFirstIndex(), u.maybeLastIndex(), u.maybeTerm(5)], [undefined, undefined, undefined]);
  u.truncateAndAppend(ents(5, 1, 1));
  assertEquals([u.maybeFirstIndex(), u.maybeLastIndex(), u.maybeTerm(6), u.maybeTerm(4)], [
    undefined,
    6,
    1,
    undefined,
  ]);
  u.restore(snap(10, 3));
  assertEquals([u.maybeFirstIndex(), u.maybeLastIndex(), u.maybeTerm(10), u.maybeTerm(9)], [
    11,
    10,
    3,
    undefined,
  ]);
  assertEquals(u.offset, 11);
  u.truncateAndAppend(ents(11, 3));
  assertEquals([u.maybeLastIndex(), u.maybeTerm(11)], [11, 3]);
});

Deno.test("unstable: truncateAndAppend appends, replaces or truncates", () => {
  // [entries at offset 5 (terms), appended (first index, terms), expected offset, expected entries]
  const table: [number[], [number, number[]], number, string][] = [
    [[1], [6, [1, 1]], 5, "5/1 6/1 7/1"], // right after the end
    [[1], [5, [2, 2]], 5, "5/2 6/2"], // replaces everything from the offset
    [[1], [4, [2, 2, 2]], 4, "4/2 5/2 6/2"], // starts before the offset: the offset moves back
    [[1, 1, 1], [6, [2]], 5, "5/1 6/2"], // truncates the conflicting suffix
    [[1, 1, 1], [7, [2, 2]], 5, "5/1 6/1 7/2 8/2"],
  ];
  for (const [have, [first, terms], offset, want] of table) {
    const u = new Unstable(5, SILENT_LOGGER);
    u.truncateAndAppend(ents(5, ...have));
    u.truncateAndAppend(ents(first, ...terms));
    assertEquals([u.offset, it(u.entries)], [offset, want], `${have} + ${first}:${terms}`);
  }
});

Deno.test("unstable: entries handed out stay in progress until stable; truncation re-offers them", () => {
  const u = new Unstable(1, SILENT_LOGGER);
  u.truncateAndAppend(ents(1, 1, 1, 1));
  assertEquals(it(u.nextEntries()), "1/1 2/1 3/1");
  u.acceptInProgress();
  assertEquals(it(u.nextEntries()), "", "handed out: not offered twice");
  u.truncateAndAppend(ents(3, 2, 2));
  assertEquals(it(u.nextEntries()), "3/2 4/2", "the rewritten suffix must be written again");
  u.acceptInProgress();
  // the driver persisted up to 2 (term 1): those leave the unstable log
  assert(u.stableTo(2, 1));
  assertEquals([u.offset, it(u.entries)], [3, "3/2 4/2"]);
  // a persisted entry whose term no longer matches (it was overwritten meanwhile) is ignored
  assert(!u.stableTo(4, 1));
  // an index already stable is ignored
  assert(!u.stableTo(2, 1));
  assert(u.stableTo(4, 2));
  assertEquals([u.offset, u.entries.length, u.maybeLastIndex()], [5, 0, undefined]);
  assertThrows(() => u.slice(4, 5), Error, "out of bound");
});

Deno.test("unstable: a snapshot is handed out once and dropped when persisted", () => {
  const u = new Unstable(1, SILENT_LOGGER);
  u.restore(snap(5, 2));
  assertEquals(u.nextSnapshot()?.metadata.index, 5);
  u.acceptInProgress();
  assertEquals(u.nextSnapshot(), undefined);
  u.stableSnapTo(4); // not this snapshot
  assert(u.snapshot !== undefined);
  u.stableSnapTo(5);
  assertEquals(u.snapshot, undefined);
});

Deno.test("log: findConflict finds the first conflicting or new entry", () => {
  const log = newLog(ents(1, 1, 2, 3));
  const table: [Entry[], number][] = [
    [[], 0],
    [ents(1, 1, 2, 3), 0], // all present
    [ents(2, 2, 3), 0],
    [ents(3, 3), 0],
    [ents(1, 1, 2, 3, 4, 4), 4], // new entries after the present ones
    [ents(2, 2, 3, 4, 4), 4],
    [ents(4, 4, 4), 4],
    [ents(1, 4, 4), 1], // conflicts
    [ents(2, 1, 4, 4), 2],
    [ents(3, 1, 2, 4, 4), 3],
  ];
  for (const [es, want] of table) assertEquals(log.findConflict(es), want, it(es));
});

Deno.test("log: findConflictByTerm skips whole terms, and stops at the compacted boundary", () => {
  // the log holds a snapshot at 1 (term 1) and then terms 2 2 2 4 4 5 5 at indexes 2..8
  const log = newLog(ents(2, 2, 2, 2, 4, 4, 5, 5), [], snap(1, 1));
  const table: [number, number, number][] = [
    [8, 6, 8], // the last entry's term is already below
    [8, 5, 8],
    [8, 4, 6], // skip the term-5 entries
    [8, 3, 4], // and the term-4 ones
    [8, 2, 4],
    [8, 1, 1], // down to the snapshot's term
    [8, 0, 0], // nothing can match below index 1's term: the hint is the compacted boundary
    [5, 5, 5],
    [5, 3, 4],
    [0, 0, 0],
  ];
  for (const [index, term, want] of table) {
    assertEquals(log.findConflictByTerm(index, term), want, `index ${index} term ${term}`);
  }
});

Deno.test("log: maybeAppend accepts entries after a matching point and truncates conflicts", () => {
  const prev: Entry[] = ents(1, 1, 2, 3);
  // [prevIndex, prevTerm, leader commit, entries, result, log after, commit after]
  const table: [number, number, number, Entry[], number | undefined, string, number][] = [
    [3, 2, 3, ents(4, 4), undefined, "1/1 2/2 3/3", 1], // the term at 3 does not match
    [4, 3, 3, ents(5, 4), undefined, "1/1 2/2 3/3", 1], // the log does not reach 4
    [3, 3, 3, [], 3, "1/1 2/2 3/3", 3], // a heartbeat-like append: commit moves
    [3, 3, 4, [], 3, "1/1 2/2 3/3", 3], // commit is capped by what the leader sent
    [3, 3, 2, [], 3, "1/1 2/2 3/3", 2],
    [3, 3, 4, ents(4, 4), 4, "1/1 2/2 3/3 4/4", 4],
    [2, 2, 4, ents(3, 3), 3, "1/1 2/2 3/3", 3], // already present: nothing rewritten
    [2, 2, 3, ents(3, 4), 3, "1/1 2/2 3/4", 3], // a conflict above commit is truncated
    [1, 1, 2, ents(2, 4, 4), 3, "1/1 2/4 3/4", 2],
    [3, 3, 4, ents(4, 4, 4), 5, "1/1 2/2 3/3 4/4 5/4", 4],
  ];
  for (const [index, logTerm, commit, es, want, after, commitAfter] of table) {
    const log = newLog([], prev);
    log.committed = 1;
    const name = `app after ${index}/${logTerm}: ${it(es)}`;
    assertEquals(log.maybeAppend(index, logTerm, commit, es), want, name);
    assertEquals(it(log.allEntries()), after, name);
    assertEquals(log.committed, commitAfter, name);
  }
  // rewriting a committed entry is a broken invariant, not something to obey
  const log = newLog([], prev);
  log.committed = 2;
  assertThrows(() => log.maybeAppend(1, 1, 3, ents(2, 4)), Error, "conflicts with committed entry");
});

Deno.test("log: append below the commit index is refused", () => {
  const log = newLog(ents(1, 1, 2));
  log.committed = 2;
  assertThrows(() => log.append(ents(2, 3)), Error, "out of range");
  assertEquals(log.append(ents(3, 3)), 3);
  assertEquals(log.append([]), 3);
});

Deno.test("log: term lookups across snapshot, storage and unstable", () => {
  // snapshot at 3 (term 2), storage 4..5, unstable 6..7
  const log = newLog(ents(4, 3, 3), ents(6, 4, 5), snap(3, 2));
  assertEquals([log.firstIndex(), log.lastIndex(), log.lastTerm()], [4, 7, 5]);
  const table: [number, number][] = [[2, 0], [3, 2], [4, 3], [5, 3], [6, 4], [7, 5], [8, 0]];
  for (const [i, want] of table) assertEquals(log.term(i), want, `term(${i})`);
  assert(log.matchTerm(3, 2), "the snapshot's last entry matches");
  assert(!log.matchTerm(8, 0), "beyond the log nothing matches, not even term 0");
  assert(!log.matchTerm(6, 3));
  assert(log.matchTerm(7, 5));
  assertEquals(log.zeroTermOnError(2), 0);
});

Deno.test("log: slice combines storage and unstable, and checks its bounds", () => {
  const log = newLog([ent(4, 3, 100), ent(5, 3, 100)], [ent(6, 4, 100), ent(7, 4, 100)], snap(3, 2));
  assertEquals(it(log.slice(4, 8, NO_LIMIT)), "4/3 5/3 6/4 7/4");
  assertEquals(it(log.slice(5, 7, NO_LIMIT)), "5/3 6/4");
  assertEquals(it(log.slice(6, 8, NO_LIMIT)), "6/4 7/4");
  assertEquals(it(log.slice(4, 8, 250)), "4/3 5/3", "the size limit cuts inside storage");
  assertEquals(it(log.slice(4, 8, 370)), "4/3 5/3 6/4", "and across the boundary");
  assertEquals(it(log.slice(4, 8, 1)), "4/3", "never fewer than one entry");
  assertEquals(it(log.slice(5, 5, NO_LIMIT)), "");
  assertThrows(() => log.slice(3, 5, NO_LIMIT), ErrCompacted);
  assertThrows(() => log.slice(5, 9, NO_LIMIT), Error, "out of bound");
  assertThrows(() => log.slice(6, 5, NO_LIMIT), Error, "invalid slice");
  assertEquals(it(log.entries(7, NO_LIMIT)), "7/4");
  assertEquals(it(log.entries(8, NO_LIMIT)), "");
});

Deno.test("log: commit only moves forward, never past the last index", () => {
  const log = newLog(ents(1, 1, 2, 3));
  log.commitTo(2);
  assertEquals(log.committed, 2);
  log.commitTo(1);
  assertEquals(log.committed, 2, "commitTo never lowers");
  assertThrows(() => log.commitTo(4), Error, "out of range");
  // a leader commits only entries of its own term (§5.4.2)
  assert(!log.maybeCommit(3, 2), "entry 3 is of term 3, not 2");
  assertEquals(log.committed, 2);
  assert(log.maybeCommit(3, 3));
  assertEquals(log.committed, 3);
  assert(!log.maybeCommit(2, 2), "never backwards");
});

Deno.test("log: applied stays within [applied, committed]", () => {
  const log = newLog(ents(1, 1, 1, 1));
  log.commitTo(2);
  assertThrows(() => log.appliedTo(3), Error, "out of range");
  log.appliedTo(2);
  assertEquals([log.applied, log.applying], [2, 2]);
  assertThrows(() => log.appliedTo(1), Error, "out of range");
  log.appliedTo(0); // zero means nothing applied: ignored
  assertEquals(log.applied, 2);
});

Deno.test("log: committed entries are handed out only once persisted, in size-limited batches", () => {
  const s = new MemoryStorage();
  s.append([ent(1, 1, 100), ent(2, 1, 100)]);
  const log = new RaftLog(s, SILENT_LOGGER, 150);
  log.append([ent(3, 1, 100), ent(4, 1, 100)]);
  log.commitTo(4);
  assert(log.hasNextCommittedEntries());
  assertEquals(it(log.nextCommittedEntries()), "1/1", "the byte limit allows one entry");
  log.applying = 1;
  assertEquals(it(log.nextCommittedEntries()), "2/1");
  log.applying = 2;
  assert(!log.hasNextCommittedEntries(), "3 and 4 are committed but not yet persisted here");
  assertEquals(it(log.nextCommittedEntries()), "");
  s.append(log.nextUnstableEntries()); // the driver writes them, then reports them stable
  log.stableTo(4, 1);
  assertEquals(it(log.nextCommittedEntries()), "3/1");
});

Deno.test("log: restoring a snapshot resets the log and the commit index", () => {
  const log = newLog(ents(1, 1, 1, 2));
  log.commitTo(2);
  log.restore(snap(10, 4));
  assertEquals([log.firstIndex(), log.lastIndex(), log.lastTerm(), log.committed], [11, 10, 4, 10]);
  assertEquals(log.stableIndex(), 0, "nothing counts as stable until the snapshot is persisted");
  assert(!log.hasNextCommittedEntries(), "the snapshot is applied before any entry");
  log.append(ents(11, 4));
  assertEquals(it(log.entries(11, NO_LIMIT)), "11/4");
  // a log that starts from a persisted snapshot starts committed and applied at its index
  const fresh = newLog(ents(6, 3), [], snap(5, 2));
  assertEquals([fresh.committed, fresh.applied, fresh.firstIndex()], [5, 5, 6]);
});

Deno.test("log: isUpToDate compares the last term first, then the last index", () => {
  const log = newLog(ents(1, 1, 2, 3)); // last entry 3/3
  const table: [number, number, boolean][] = [
    [2, 4, true], // a higher last term wins even with a shorter log
    [3, 4, true],
    [4, 4, true],
    [2, 2, false], // a lower last term loses even with a longer log
    [4, 2, false],
    [2, 3, false], // same term: the longer log wins
    [3, 3, true],
    [4, 3, true],
  ];
  for (const [index, term, want] of table) {
    assertEquals(log.isUpToDate(index, term), want, `${index}/${term}`);
  }
});
