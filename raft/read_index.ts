/**
 * Linearizable reads without log writes (Raft thesis §6.4): the leader records its commit index when a
 * ReadIndex request arrives and answers once a quorum has acknowledged a heartbeat carrying the
 * request's context, which proves it was still the leader at that moment.
 *
 * @module
 */
import type { Message, NodeId } from "./types.ts";

/** How reads are confirmed: "safe" asks a quorum; "lease-based" trusts the leader lease (clock-dependent). */
export type ReadOnlyOption = "safe" | "lease-based";

/** A pending read: the request, the commit index at arrival, and who acknowledged it. */
export interface ReadIndexStatus {
  req: Message;
  index: number;
  acks: Map<NodeId, boolean>;
}

/** A stable string key for a request context. */
function contextKey(ctx: Uint8Array): string {
  let s = "";
  for (let i = 0; i < ctx.length; i++) s += String.fromCharCode(ctx[i]);
  return s;
}

/** The leader's queue of pending ReadIndex requests, in arrival order. */
export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  constructor(readonly option: ReadOnlyOption) {}

  /** Records a read request `m` that arrived when the commit index was `index`. */
  addRequest(index: number, m: Message): void {
    const key = contextKey(m.entries[0].data);
    if (this.pending.has(key)) return; // a retry of a pending request
    this.pending.set(key, { req: m, index, acks: new Map() });
    this.queue.push(key);
  }

  /** Records `id`'s heartbeat acknowledgement of context `ctx`; returns the acks so far. */
  recvAck(id: NodeId, ctx: Uint8Array): Map<NodeId, boolean> | undefined {
    const rs = this.pending.get(contextKey(ctx));
    if (!rs) return undefined;
    rs.acks.set(id, true);
    return rs.acks;
  }

  /**
   * Dequeues the request with context `ctx` and every request queued before it (a quorum that
   * acknowledged a later heartbeat acknowledged the earlier ones too). Returns them in order.
   */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const key = contextKey(ctx);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done = this.queue.splice(0, at + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      const rs = this.pending.get(k);
      if (!rs) throw new Error("cannot find the corresponding read state from pending map");
      this.pending.delete(k);
      out.push(rs);
    }
    return out;
  }

  /** The context of the most recent pending request (heartbeats carry it). */
  lastPendingRequestCtx(): Uint8Array | undefined {
    if (this.queue.length === 0) return undefined;
    return this.pending.get(this.queue[this.queue.length - 1])?.req.entries[0].data;
  }

  /** Forgets every pending request (on a change of leadership they can no longer be confirmed). */
  reset(): void {
    this.pending.clear();
    this.queue = [];
  }

  /** Number of pending requests. */
  size(): number {
    return this.queue.length;
  }
}
