/**
 * The rest of a compaction, between other requests. Applying a Compaction entry takes effect at once
 * (reads below its revision fail from then on) and drops the first step's worth of entries; a store with
 * more to drop ({@link MvccStore.compacting}) is given its remaining steps from here, {@link STEP_PAUSE_MS}
 * apart, so that a compaction of millions of revisions holds other clients for a few milliseconds at a
 * time instead of a few hundred at once. The pause matters: a put takes several turns of the event loop
 * (read, WAL write, apply, reply), and a step in every turn would delay it by several steps. etcd likewise
 * drops compacted revisions from its backend in batches, with a pause between them, after answering the
 * compaction.
 *
 * The steps always work on the member's current store: one replaced by a snapshot meanwhile is left
 * alone (its replacement has no compaction under way).
 *
 * @module
 */
import type { MvccStore } from "../../storage/mvcc/store.ts";

/** The pause between two steps of a compaction. */
export const STEP_PAUSE_MS = 10;

/** Drives {@link MvccStore.compactStep} until the compaction is done, one step after each pause. */
export class CompactionSteps {
  private running = false;
  private stopped = false;
  private waiters: (() => void)[] = [];

  /**
   * `store` gives the member's current store; `pause` resolves after the pause between steps
   * ({@link STEP_PAUSE_MS} on the member's clock); `onError` hears of a step that failed (the steps then
   * stop: the store finishes the compaction before anything reads what it drops, and at the next
   * compaction).
   */
  constructor(
    private readonly store: () => MvccStore,
    private readonly pause: () => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Whether steps are being taken. */
  get active(): boolean {
    return this.running;
  }

  /**
   * Resolves once the steps being taken are done (at once if none are): for a compaction asked for with
   * `physical`, whose answer waits until its revisions are gone.
   */
  finished(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** After a compaction was applied: takes its remaining steps, unless that is under way already. */
  kick(): void {
    if (this.running || this.stopped || !this.store().compacting) return;
    this.running = true;
    void this.run();
  }

  /** The member closes: no step is taken after the pause under way (the store is closed next). */
  stop(): void {
    this.stopped = true;
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        await this.pause();
        if (this.stopped) return;
        const store = this.store();
        if (!store.compacting || !store.compactStep()) return;
      }
    } catch (err) {
      this.onError(err);
    } finally {
      this.running = false;
      const waiters = this.waiters;
      this.waiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}
