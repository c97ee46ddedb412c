/**
 * Auto-compaction (`--auto-compaction-mode`, `--auto-compaction-retention`), as etcd runs it on the
 * leader:
 *
 * - periodic: keep about one retention period of history. The current revision is sampled every tenth
 *   of the period; once a full period has been observed, the store is compacted to the revision sampled
 *   one period ago, and again every tenth of a period as the window slides.
 * - revision: every five minutes, compact to (current revision - retention).
 *
 * Only the leader compacts (followers apply the compaction from the log); the compactor is told about
 * leadership with {@linkcode Compactor.setLeader}.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { parseDurationMs } from "../config/mod.ts";

/** How often the revision mode checks. */
export const REVISION_MODE_INTERVAL_MS = 5 * 60 * 1000;

/** What the compactor drives. */
export interface CompactionTarget {
  /** The store's current revision. */
  currentRevision(): number;
  /** Proposes a compaction at `revision`; resolves once applied (rejects on failure). */
  compact(revision: number): Promise<void>;
}

/** The parsed retention: a period for the periodic mode, a number of revisions for the revision mode. */
export type Retention = { mode: "periodic"; periodMs: number } | { mode: "revision"; revisions: number };

/**
 * Reads `--auto-compaction-retention` as etcd does: a bare integer is hours (periodic) or revisions
 * (revision mode); anything else is a Go duration. Returns undefined when compaction is off.
 */
export function parseRetention(mode: "periodic" | "revision", text: string): Retention | undefined {
  const raw = text === "" ? "0" : text;
  if (/^\+?[0-9]+$/.test(raw)) {
    const n = Number(raw);
    if (n === 0) return undefined;
    return mode === "periodic" ? { mode, periodMs: n * 3600_000 } : { mode, revisions: n };
  }
  const ms = parseDurationMs(raw);
  if (ms <= 0) return undefined;
  if (mode === "revision") return { mode, revisions: Math.floor(ms / 1000) };
  return { mode, periodMs: ms };
}

/** Runs auto-compaction while this member leads. */
export class Compactor {
  private timer = 0;
  private samples: number[] = [];
  private leader = false;
  private lastCompacted = 0;
  private observedSince = 0;
  private inFlight = false;

  constructor(
    private readonly retention: Retention,
    private readonly target: CompactionTarget,
    private readonly clock: Clock,
    private readonly onError: (err: Error, revision: number) => void = () => {},
  ) {}

  /** Starts the sampling timer. */
  start(): void {
    const interval = this.retention.mode === "periodic"
      ? Math.max(1, Math.floor(this.retention.periodMs / 10))
      : REVISION_MODE_INTERVAL_MS;
    this.observedSince = this.clock.now();
    this.samples = [this.target.currentRevision()];
    this.timer = this.clock.setInterval(() => this.tick(), interval);
  }

  stop(): void {
    this.clock.clearInterval(this.timer);
  }

  /** Leadership changed; a new leader starts observing a fresh window, as etcd's compactor resumes. */
  setLeader(leader: boolean): void {
    if (leader && !this.leader) {
      this.observedSince = this.clock.now();
      this.samples = [this.target.currentRevision()];
    }
    this.leader = leader;
  }

  private tick(): void {
    const rev = this.target.currentRevision();
    if (this.retention.mode === "revision") {
      if (this.leader) this.compactTo(rev - this.retention.revisions);
      return;
    }
    this.samples.push(rev);
    // samples[0] is the revision one period ago once the window is full (11 samples span 10 intervals)
    if (this.samples.length > 11) this.samples.shift();
    if (!this.leader) return;
    if (this.clock.now() - this.observedSince < this.retention.periodMs) return;
    this.compactTo(this.samples[0]);
  }

  private compactTo(revision: number): void {
    if (revision <= 0 || revision <= this.lastCompacted || this.inFlight) return;
    this.inFlight = true;
    this.target.compact(revision).then(
      () => {
        this.lastCompacted = revision;
      },
      (err) => this.onError(err instanceof Error ? err : new Error(String(err)), revision),
    ).finally(() => {
      this.inFlight = false;
    });
  }
}
