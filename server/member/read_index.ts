/**
 * Linearizable reads: every read that arrives during one task joins one batch, and the batch asks Raft
 * for a ReadIndex once. When the leader confirms it still leads, the batch waits until this member has
 * applied up to the index it returned, and then every read of the batch may be served from local state.
 *
 * @module
 */
import type { ReadState } from "../../raft/types.ts";
import type { Clock } from "../clock.ts";
import { Errors } from "../errors.ts";
import type { RaftDriver } from "./raft_driver.ts";

/** An unanswered ReadIndex is asked again after this long (etcd's readIndexRetryTime). */
export const READ_INDEX_RETRY_MS = 500;

interface ReadWaiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

interface ReadBatch {
  waiters: ReadWaiter[];
  deadline: number;
  ctx: Uint8Array;
  /** When to ask again if no answer came (the request or its heartbeat round may have been lost). */
  retryAt: number;
}

/** The member's linearizable reads in flight. */
export class ReadIndexBatcher {
  private pending: ReadWaiter[] = [];
  private scheduled = false;
  private lastId = 0;
  private readonly batches = new Map<number, ReadBatch>();

  constructor(
    private readonly driver: RaftDriver,
    private readonly clock: Clock,
    private readonly requestTimeoutMs: number,
  ) {}

  /** Resolves when the applied state includes everything committed before the call. */
  notify(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => this.flush());
      }
    });
  }

  /** Answers from Raft: each releases its batch once the applied index reaches it. */
  onReadStates(states: ReadState[]): void {
    for (const rs of states) {
      if (rs.requestCtx.length !== 8) continue;
      const id = new DataView(rs.requestCtx.buffer, rs.requestCtx.byteOffset, 8).getFloat64(0);
      const batch = this.batches.get(id);
      if (!batch) continue;
      this.batches.delete(id);
      this.driver.waitApplied(rs.index).then(() => {
        for (const w of batch.waiters) w.resolve();
      });
    }
  }

  /** Fails batches past their deadline; asks again for those whose answer did not come in time. */
  sweep(now: number): void {
    let asked = false;
    for (const [id, batch] of this.batches) {
      if (batch.deadline <= now) {
        this.batches.delete(id);
        for (const w of batch.waiters) w.reject(Errors.timeout());
      } else if (batch.retryAt <= now) {
        // as etcd does: a ReadIndex whose answer did not come (lost message, leader change) is asked again
        batch.retryAt = now + READ_INDEX_RETRY_MS;
        this.driver.node.readIndex(batch.ctx);
        asked = true;
      }
    }
    if (asked) this.driver.kick();
  }

  /** Fails every read waiting, asked or not. */
  failAll(err: Error): void {
    for (const b of this.batches.values()) for (const w of b.waiters) w.reject(err);
    this.batches.clear();
    for (const w of this.pending) w.reject(err);
    this.pending = [];
  }

  private flush(): void {
    this.scheduled = false;
    const waiters = this.pending;
    if (waiters.length === 0) return;
    this.pending = [];
    const id = ++this.lastId;
    const ctx = new Uint8Array(8);
    new DataView(ctx.buffer).setFloat64(0, id);
    const now = this.clock.now();
    this.batches.set(id, {
      waiters,
      deadline: now + this.requestTimeoutMs,
      ctx,
      retryAt: now + READ_INDEX_RETRY_MS,
    });
    this.driver.node.readIndex(ctx);
    this.driver.kick();
  }
}
