/**
 * The durable side of the Raft log: the `Storage` interface the core reads from, and `MemoryStorage`,
 * an in-memory implementation the application fills with what it has persisted (WAL + snapshot).
 *
 * @module
 */
import type { ConfState, Entry, HardState, Snapshot } from "./types.ts";
import { emptyHardState, emptySnapshot, limitSize } from "./util.ts";

/** The requested index is older than the storage's first index (it was compacted away). */
export class ErrCompacted extends Error {
  readonly code = "COMPACTED";
  constructor() {
    super("requested index is unavailable due to compaction");
    this.name = "ErrCompacted";
  }
}

/** The snapshot being installed or created is older than the one storage already has. */
export class ErrSnapOutOfDate extends Error {
  readonly code = "SNAP_OUT_OF_DATE";
  constructor() {
    super("requested index is older than the existing snapshot");
    this.name = "ErrSnapOutOfDate";
  }
}

/** The requested entries are not (yet) in storage. */
export class ErrUnavailable extends Error {
  readonly code = "UNAVAILABLE";
  constructor() {
    super("requested entry at index is unavailable");
    this.name = "ErrUnavailable";
  }
}

/** Storage cannot produce a snapshot right now; Raft retries later. */
export class ErrSnapshotTemporarilyUnavailable extends Error {
  readonly code = "SNAPSHOT_TEMPORARILY_UNAVAILABLE";
  constructor() {
    super("snapshot is temporarily unavailable");
    this.name = "ErrSnapshotTemporarilyUnavailable";
  }
}

/** Misuse of storage (appending with a gap, compacting past the end, ...): a bug in the caller. */
export class ErrStorageMisuse extends Error {
  readonly code = "STORAGE_MISUSE";
  constructor(message: string) {
    super(message);
    this.name = "ErrStorageMisuse";
  }
}

/** What the Raft core reads from the application's durable log. */
export interface Storage {
  /** The persisted hard state and the configuration of the latest snapshot. */
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at most `maxSize` bytes (at least one entry); throws ErrCompacted/ErrUnavailable. */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /** Term of entry `index`, which must be in [firstIndex()-1, lastIndex()]. */
  term(index: number): number;
  /** Index of the first entry still held (the snapshot index + 1). */
  firstIndex(): number;
  /** Index of the last entry held. */
  lastIndex(): number;
  /** The most recent snapshot. */
  snapshot(): Snapshot;
}

/** The entry at the head of the log that stands for the snapshot (or the start): its index and term only. */
function dummyEntry(term: number, index: number): Entry {
  return { term, index, type: 0, data: new Uint8Array(0) };
}

/**
 * An in-memory `Storage`. `ents[0]` is a dummy entry that carries the index and term of the latest
 * snapshot (or 0/0), so that `term(firstIndex() - 1)` always answers.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState();
  private snap: Snapshot = emptySnapshot();
  /**
   * Changed in place, never replaced: V8 treats a field that has kept its first value as a constant in
   * the code it optimizes, and the first replacement throws away every such piece of code at once (in a
   * running member, the log's first compaction, some thousands of entries into its life).
   */
  private readonly ents: Entry[] = [dummyEntry(0, 0)];

  /** @inheritdoc */
  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: this.snap.metadata.confState };
  }

  /** Records the persisted hard state. */
  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  /** The hard state last recorded. */
  getHardState(): HardState {
    return { ...this.hardState };
  }

  /** @inheritdoc */
  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const offset = this.ents[0].index;
    if (lo <= offset) throw new ErrCompacted();
    if (hi > this.lastIndex() + 1) {
      throw new ErrStorageMisuse(`entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`);
    }
    if (this.ents.length === 1) throw new ErrUnavailable(); // only the dummy entry
    if (lo >= hi) return [];
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxSize);
  }

  /** @inheritdoc */
  term(index: number): number {
    const offset = this.ents[0].index;
    if (index < offset) throw new ErrCompacted();
    if (index - offset >= this.ents.length) throw new ErrUnavailable();
    return this.ents[index - offset].term;
  }

  /** @inheritdoc */
  lastIndex(): number {
    return this.ents[0].index + this.ents.length - 1;
  }

  /** @inheritdoc */
  firstIndex(): number {
    return this.ents[0].index + 1;
  }

  /** @inheritdoc */
  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the storage's contents with a snapshot (throws ErrSnapOutOfDate if it is older). */
  applySnapshot(snap: Snapshot): void {
    if (this.snap.metadata.index >= snap.metadata.index) throw new ErrSnapOutOfDate();
    this.snap = snap;
    this.ents.splice(0, this.ents.length, dummyEntry(snap.metadata.term, snap.metadata.index));
  }

  /**
   * Records a snapshot of the application state at `index` (which must be in storage), e.g. before
   * compacting. `confState` defaults to the previous snapshot's configuration.
   */
  createSnapshot(index: number, confState: ConfState | undefined, data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) throw new ErrSnapOutOfDate();
    const offset = this.ents[0].index;
    if (index > this.lastIndex()) {
      throw new ErrStorageMisuse(`snapshot ${index} is out of bound lastindex(${this.lastIndex()})`);
    }
    this.snap = {
      metadata: {
        index,
        term: this.ents[index - offset].term,
        confState: confState ?? this.snap.metadata.confState,
      },
      data,
    };
    return this.snap;
  }

  /** Discards entries before `compactIndex`; the entry at `compactIndex` becomes the dummy. */
  compact(compactIndex: number): void {
    const offset = this.ents[0].index;
    if (compactIndex <= offset) throw new ErrCompacted();
    if (compactIndex > this.lastIndex()) {
      throw new ErrStorageMisuse(`compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    }
    const i = compactIndex - offset;
    const head = this.ents[i];
    this.ents.splice(0, i + 1, dummyEntry(head.term, head.index));
  }

  /**
   * Appends persisted entries. Entries older than the first index are ignored; entries that overlap
   * the existing log replace it from the first overlapping index on.
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return;
    if (first > entries[0].index) entries = entries.slice(first - entries[0].index);
    const offset = entries[0].index - this.ents[0].index;
    if (offset > this.ents.length) {
      throw new ErrStorageMisuse(
        `missing log entry [last: ${this.lastIndex()}, append at: ${entries[0].index}]`,
      );
    }
    // the common case appends at the end; otherwise the entries from `offset` on are replaced
    this.ents.length = offset;
    for (const e of entries) this.ents.push(e);
  }
}
