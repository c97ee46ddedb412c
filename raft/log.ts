/**
 * The Raft log as the core sees it: the durable part (`Storage`) followed by the unstable tail,
 * plus the commit and apply cursors.
 *
 * @module
 */
import { ErrCompacted, ErrUnavailable, type Storage } from "./storage.ts";
import { Unstable } from "./log_unstable.ts";
import type { Entry, Snapshot } from "./types.ts";
import { limitSize, NO_LIMIT, type RaftLogger } from "./util.ts";

/** The log: storage + unstable, `committed` and `applied`. */
export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known to be committed by a quorum. */
  committed: number;
  /** Highest index the application has applied (after `advance()`). */
  applied: number;
  /** Highest index handed out for applying in a Ready (>= applied). */
  applying: number;
  /** Byte limit on committed entries handed out in one Ready. */
  readonly maxApplyingSize: number;

  constructor(storage: Storage, private readonly logger: RaftLogger, maxApplyingSize = NO_LIMIT) {
    this.storage = storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1, logger);
    this.committed = first - 1;
    this.applied = first - 1;
    this.applying = first - 1;
    this.maxApplyingSize = maxApplyingSize;
  }

  /** A one-line description for logs. */
  toString(): string {
    return `committed=${this.committed}, applied=${this.applied}, applying=${this.applying}, ` +
      `unstable.offset=${this.unstable.offset}, len(unstable.entries)=${this.unstable.entries.length}`;
  }

  /**
   * Appends the leader's entries that follow (index, logTerm) if the log matches there. Returns the
   * index of the last new entry, or undefined on mismatch.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new Error(`entry ${ci} conflicts with committed entry [committed(${this.committed})]`);
      }
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Appends entries to the unstable tail; returns the new last index. */
  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0].index - 1;
    if (after < this.committed) {
      throw new Error(`after(${after}) is out of range [committed(${this.committed})]`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * The index of the first entry of `ents` that conflicts with the log (same index, different term)
   * or that is new; 0 if all of them are already present.
   */
  findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) {
        if (e.index <= this.lastIndex()) {
          this.logger.info("found conflict", {
            index: e.index,
            conflictTerm: this.zeroTermOnError(e.index),
            term: e.term,
          });
        }
        return e.index;
      }
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term` (or the first index whose term is unknown
   * because it was compacted): a fast backtracking hint after a rejected append.
   */
  findConflictByTerm(index: number, term: number): number {
    for (; index > 0; index--) {
      let t: number;
      try {
        t = this.term(index);
      } catch {
        return index;
      }
      if (t <= term) return index;
    }
    return 0;
  }

  /** Unstable entries not yet handed out in a Ready. */
  nextUnstableEntries(): Entry[] {
    return this.unstable.nextEntries();
  }

  /** The index up to which entries are persisted and consistent with the log. */
  stableIndex(): number {
    if (this.unstable.snapshot) return 0;
    return this.unstable.offset - 1;
  }

  /** Committed entries that are persisted and not yet handed out for applying. */
  nextCommittedEntries(): Entry[] {
    if (this.unstable.snapshot) return []; // the snapshot must be applied first
    const lo = Math.max(this.applying + 1, this.firstIndex());
    const hi = Math.min(this.committed, this.stableIndex()) + 1;
    if (lo >= hi) return [];
    return this.slice(lo, hi, this.maxApplyingSize);
  }

  /** Whether there are committed entries to hand out. */
  hasNextCommittedEntries(): boolean {
    if (this.unstable.snapshot) return false;
    const lo = Math.max(this.applying + 1, this.firstIndex());
    const hi = Math.min(this.committed, this.stableIndex()) + 1;
    return lo < hi;
  }

  /** The current snapshot: the unstable one if any, else storage's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** First index held (durable or unstable). */
  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  /** Last index held. */
  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Raises the commit index (never lowers it). */
  commitTo(toCommit: number): void {
    if (this.committed < toCommit) {
      if (this.lastIndex() < toCommit) {
        throw new Error(
          `tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]. Was the raft log corrupted, truncated, or lost?`,
        );
      }
      this.committed = toCommit;
    }
  }

  /** Marks everything up to `i` applied. */
  appliedTo(i: number): void {
    if (i === 0) return;
    if (this.committed < i || i < this.applied) {
      throw new Error(
        `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`,
      );
    }
    this.applied = i;
    if (this.applying < i) this.applying = i;
  }

  /** Persisted entries up to (i, t). */
  stableTo(i: number, t: number): boolean {
    return this.unstable.stableTo(i, t);
  }

  /** Persisted the snapshot at index i. */
  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  /** Term of the last entry. */
  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /**
   * Term of entry `i`. Returns 0 for indexes beyond the log or before the snapshot's dummy entry's
   * predecessor; throws ErrCompacted / ErrUnavailable when storage cannot tell.
   */
  term(i: number): number {
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return 0;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    return this.storage.term(i);
  }

  /** Term of `i`, or 0 when it cannot be known. */
  zeroTermOnError(i: number): number {
    try {
      return this.term(i);
    } catch (err) {
      if (err instanceof ErrCompacted || err instanceof ErrUnavailable) return 0;
      throw err;
    }
  }

  /** Entries from `i` to the end, limited by `maxSize`. */
  entries(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSize);
  }

  /** All entries from the first index on (tests and debugging). */
  allEntries(): Entry[] {
    for (;;) {
      try {
        return this.entries(this.firstIndex(), NO_LIMIT);
      } catch (err) {
        if (err instanceof ErrCompacted) continue; // raced with compaction; retry
        throw err;
      }
    }
  }

  /**
   * Whether a candidate whose log ends with (lasti, term) is at least as up to date as this log.
   */
  isUpToDate(lasti: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && lasti >= this.lastIndex());
  }

  /** Whether entry i has term `term`. */
  matchTerm(i: number, term: number): boolean {
    try {
      const t = this.term(i);
      if (i > this.lastIndex()) return false;
      return t === term;
    } catch {
      return false;
    }
  }

  /** Commits up to `maxIndex` if that entry is of `term` (a leader commits only its own term's entries). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.zeroTermOnError(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** Replaces the log by a snapshot received from the leader. */
  restore(s: Snapshot): void {
    this.logger.info("log starts to restore snapshot", { index: s.metadata.index, term: s.metadata.term });
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /** Entries in [lo, hi), combining storage and unstable; throws ErrCompacted below the first index. */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    this.mustCheckOutOfBounds(lo, hi);
    if (lo === hi) return [];
    let ents: Entry[] = [];
    const uOffset = this.unstable.offset;
    if (lo < uOffset) {
      const stored = this.storage.entries(lo, Math.min(hi, uOffset), maxSize);
      // storage returned fewer than asked: the size limit was hit
      if (stored.length < Math.min(hi, uOffset) - lo) return stored;
      ents = stored;
    }
    if (hi > uOffset) {
      const unstable = this.unstable.slice(Math.max(lo, uOffset), hi);
      ents = ents.length > 0 ? ents.concat(unstable) : unstable;
    }
    return limitSize(ents, maxSize);
  }

  private mustCheckOutOfBounds(lo: number, hi: number): void {
    if (lo > hi) throw new Error(`invalid slice ${lo} > ${hi}`);
    const fi = this.firstIndex();
    if (lo < fi) throw new ErrCompacted();
    const length = this.lastIndex() + 1 - fi;
    if (hi > fi + length) throw new Error(`slice[${lo},${hi}) out of bound [${fi},${this.lastIndex()}]`);
  }
}
