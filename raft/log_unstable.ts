/**
 * The not-yet-persisted tail of the Raft log: entries (and possibly an incoming snapshot) that the
 * application still has to write. Entries handed out in a Ready are "in progress" until `advance()`
 * marks them stable.
 *
 * @module
 */
import type { Entry, Snapshot } from "./types.ts";
import type { RaftLogger } from "./util.ts";

/** Unstable entries and snapshot; `entries[i]` has index `offset + i`. */
export class Unstable {
  /** An incoming snapshot not yet persisted. */
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  offset: number;
  /** Whether `snapshot` was handed out in a Ready and awaits `advance()`. */
  snapshotInProgress = false;
  /** Entries with index < offsetInProgress were handed out and await `advance()`. */
  offsetInProgress: number;

  constructor(offset: number, private readonly logger: RaftLogger) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  /** The index of the first entry if there is a pending snapshot. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  /** The last index held by the unstable part, if any. */
  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.metadata.index : undefined;
  }

  /** The term of entry `i` if the unstable part knows it. */
  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset].term;
  }

  /** Entries not yet handed out in a Ready. */
  nextEntries(): Entry[] {
    const inProgress = this.offsetInProgress - this.offset;
    if (inProgress >= this.entries.length) return [];
    return this.entries.slice(inProgress);
  }

  /** The snapshot if it was not yet handed out in a Ready. */
  nextSnapshot(): Snapshot | undefined {
    if (!this.snapshot || this.snapshotInProgress) return undefined;
    return this.snapshot;
  }

  /** Marks everything currently held as handed out. */
  acceptInProgress(): void {
    if (this.entries.length > 0) this.offsetInProgress = this.offset + this.entries.length;
    if (this.snapshot) this.snapshotInProgress = true;
  }

  /** Entries up to (i, t) were persisted: drop them if the log still holds exactly that entry. */
  stableTo(i: number, t: number): boolean {
    const gt = this.maybeTerm(i);
    if (gt === undefined || i < this.offset) {
      this.logger.debug("entry at index missing from unstable log; ignoring", { index: i, term: t });
      return false;
    }
    if (gt !== t) {
      this.logger.debug("entry at index matches unstable log entry with a different term; ignoring", {
        index: i,
        term: t,
        unstableTerm: gt,
      });
      return false;
    }
    const num = i + 1 - this.offset;
    this.entries = this.entries.slice(num);
    this.offset = i + 1;
    this.offsetInProgress = Math.max(this.offsetInProgress, this.offset);
    return true;
  }

  /** The snapshot at index `i` was persisted. */
  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.metadata.index === i) {
      this.snapshot = undefined;
      this.snapshotInProgress = false;
    }
  }

  /** Replaces everything by an incoming snapshot. */
  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = s;
    this.snapshotInProgress = false;
  }

  /** Appends entries, truncating any conflicting suffix. */
  truncateAndAppend(ents: Entry[]): void {
    const from = ents[0].index;
    if (from === this.offset + this.entries.length) {
      this.entries = this.entries.concat(ents);
    } else if (from <= this.offset) {
      // the log is replaced from `from` on; storage will be overwritten when these are persisted
      this.logger.info("replacing the unstable entries", { index: from });
      this.entries = ents.slice();
      this.offset = from;
      this.offsetInProgress = this.offset;
    } else {
      this.logger.info("truncating the unstable entries", { index: from });
      this.entries = this.slice(this.offset, from).concat(ents);
      this.offsetInProgress = Math.min(this.offsetInProgress, from);
    }
  }

  /** Entries in [lo, hi), which must be within the unstable part. */
  slice(lo: number, hi: number): Entry[] {
    const upper = this.offset + this.entries.length;
    if (lo > hi || lo < this.offset || hi > upper) {
      throw new Error(`unstable.slice[${lo},${hi}) out of bound [${this.offset},${upper}]`);
    }
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
