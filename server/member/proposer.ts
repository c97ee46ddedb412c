/**
 * Proposals and their waiters: a client's write becomes a log entry tagged with this member and a
 * sequence number, and the client waits until the entry is applied here, which hands it the result.
 *
 * Every proposal made during one task goes to Raft as one batch: one append to the log, one WAL write
 * and fsync, one message per follower (or one forward to the leader).
 *
 * @module
 */
import { ErrProposalDropped } from "../../raft/node.ts";
import { type Entry, NONE } from "../../raft/types.ts";
import type { Clock } from "../clock.ts";
import { Errors } from "../errors.ts";
import { IntMap } from "../int_map.ts";
import { GrpcError, Status } from "../transport/status.ts";
import { allProposedWith, encodeProposal, type ProposalKind, proposerOf } from "./proposal.ts";
import type { RaftDriver } from "./raft_driver.ts";

/** A client waiting for its proposal to be applied. */
export interface Waiter {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  /** The decoded request, so the proposer's apply need not decode it again. */
  decoded: unknown;
  deadline: number;
}

/** What the proposer needs. */
export interface ProposerOptions {
  driver: RaftDriver;
  clock: Clock;
  /** Low bits of the member ID: entries with this tag were proposed here. */
  tag: number;
  requestTimeoutMs: number;
  /** Larger proposals are refused (--max-request-bytes). */
  maxRequestBytes: number;
  /** Whether the member still takes proposals. */
  accepting: () => boolean;
}

/** The member's proposals in flight. */
export class Proposer {
  private seq: number;
  /** By sequence number; an `IntMap`, since one is added and taken per request (see int_map.ts). */
  private readonly waiters = new IntMap<Waiter>();
  private queue: { seq: number; data: Uint8Array }[] = [];
  private scheduled = false;

  constructor(private readonly o: ProposerOptions) {
    // sequence numbers of a restarted member never repeat those of its previous run
    this.seq = Math.floor(o.clock.now() * 1000);
  }

  /** Proposals made here and not yet applied or failed. */
  get pending(): number {
    return this.waiters.size;
  }

  /** Proposes a request and resolves with its apply result once it is committed and applied here. */
  propose<T>(kind: ProposalKind, payload: Uint8Array, decoded: unknown): Promise<T> {
    if (!this.o.accepting()) return Promise.reject(Errors.stopped());
    if (this.o.driver.fatalError) return Promise.reject(Errors.stopped());
    // the disk is full: nothing new is taken until the write waiting for space has landed
    if (this.o.driver.noSpace) return Promise.reject(Errors.noSpace());
    const seq = this.seq++;
    const data = encodeProposal(kind, this.o.tag, seq, payload);
    if (data.length > this.o.maxRequestBytes) return Promise.reject(Errors.requestTooLarge());
    return new Promise<T>((resolve, reject) => {
      this.waiters.set(seq, {
        resolve: resolve as (v: unknown) => void,
        reject,
        decoded,
        deadline: this.o.clock.now() + this.o.requestTimeoutMs,
      });
      this.queue.push({ seq, data });
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => this.flush());
      }
    });
  }

  /** The waiter of an applied entry, if it was proposed here and is still waited for (taken away). */
  take(tag: number, seq: number): Waiter | undefined {
    if (tag !== this.o.tag) return undefined;
    const w = this.waiters.get(seq);
    if (w) this.waiters.delete(seq);
    return w;
  }

  /**
   * Whether every one of `entries` was proposed by this member (entries without data, such as a new
   * leader's empty entry, count as such: nobody waits for them). Membership changes do not.
   */
  proposedHere(entries: Entry[]): boolean {
    return allProposedWith(entries, this.o.tag);
  }

  /**
   * The member of the current configuration that proposed the last of `entries` (by the tag it carries),
   * or undefined when that entry is no proposal (a configuration change, a new leader's empty entry).
   */
  proposedBy(entries: Entry[]): bigint | undefined {
    return proposerOf(entries, this.o.driver.confState);
  }

  /** Fails the waiters whose request timeout has passed. */
  expire(now: number): void {
    if (this.waiters.size === 0) return;
    for (const [seq, w] of this.waiters.entries()) {
      if (w.deadline > now) continue;
      this.waiters.delete(seq);
      w.reject(Errors.timeout());
    }
  }

  /** Fails every waiter with `err`. */
  failAll(err: Error): void {
    for (const w of this.waiters.values()) w.reject(err);
    this.waiters.clear();
  }

  /** Hands every proposal made during this task to Raft as one batch. */
  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    const driver = this.o.driver;
    try {
      driver.node.proposeBatch(batch.map((p) => p.data));
    } catch (err) {
      const e = err instanceof ErrProposalDropped
        ? (driver.lead === NONE ? Errors.noLeader() : new GrpcError(Status.UNKNOWN, "raft proposal dropped"))
        : err as Error;
      for (const p of batch) {
        const w = this.waiters.get(p.seq);
        this.waiters.delete(p.seq);
        w?.reject(e);
      }
      return;
    }
    driver.kick();
  }
}
