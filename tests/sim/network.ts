/**
 * Virtual time and a faulty network for the Raft simulator.
 *
 * `EventQueue` is a priority queue of callbacks ordered by virtual time (ties broken by insertion order,
 * so runs are deterministic). `Network` carries Raft messages between nodes over it with random delay
 * (hence reordering), loss, duplication, and partitions made of blocked directed links, which may be
 * asymmetric. Messages are copied on send, as a real transport serializes them, so no two nodes ever
 * share an object.
 *
 * @module
 */
import { type Entry, type Message, MessageType, type NodeId, type Snapshot } from "../../raft/types.ts";
import type { Prng } from "./prng.ts";

interface Event {
  time: number;
  seq: number;
  run: () => void;
}

/** A min-heap of timed callbacks: virtual time only moves when the next event runs. */
export class EventQueue {
  private heap: Event[] = [];
  private seq = 0;
  /** The current virtual time (milliseconds). */
  now = 0;

  /** Runs `run` at virtual time `time` (not before now). */
  at(time: number, run: () => void): void {
    const e = { time: Math.max(time, this.now), seq: this.seq++, run };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  /** Runs `run` after `delay` virtual milliseconds. */
  after(delay: number, run: () => void): void {
    this.at(this.now + delay, run);
  }

  /** Time of the next event, or Infinity. */
  peekTime(): number {
    return this.heap.length > 0 ? this.heap[0].time : Infinity;
  }

  /** Runs the next event; false when there is none. */
  runNext(): boolean {
    const h = this.heap;
    if (h.length === 0) return false;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l], h[m])) m = l;
        if (r < h.length && before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    this.now = top.time;
    top.run();
    return true;
  }
}

function before(a: Event, b: Event): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

/** How the network misbehaves right now. */
export interface NetworkFaults {
  /** Probability that a message is lost. */
  dropRate: number;
  /** Probability that a message is delivered twice. */
  duplicateRate: number;
  /** Delivery delay in virtual ms, uniform in [minDelay, maxDelay]. */
  minDelay: number;
  maxDelay: number;
  /** Probability that a message is held back by up to `maxDelay * 10` more (strong reordering). */
  slowRate: number;
}

/** A reliable, fast network. */
export const CALM: NetworkFaults = { dropRate: 0, duplicateRate: 0, minDelay: 1, maxDelay: 5, slowRate: 0 };

/** Why a message did not arrive. */
export type LossReason = "dropped" | "partitioned" | "sender crashed" | "receiver crashed";

/** What the network tells its owner about a message. */
export interface NetworkHandlers {
  /** A message arrives at `m.to`. */
  deliver(m: Message): void;
  /** A message was lost: dropped, blocked by a partition, or one of its ends crashed since it was sent. */
  lost(m: Message, reason: LossReason): void;
  /** The current incarnation of a node (bumped on every crash); 0 while it is down. */
  incarnation(id: NodeId): number;
}

/** Counters for a run's report. */
export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  partitioned: number;
  crashed: number;
}

/** The simulated network between the Raft nodes. */
export class Network {
  faults: NetworkFaults = { ...CALM };
  /** Blocked directed links, as "from>to". */
  private blocked = new Set<string>();
  readonly stats: NetworkStats = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    partitioned: 0,
    crashed: 0,
  };
  /** The virtual time by which every message sent so far has been delivered or lost. */
  drainedBy = 0;

  constructor(
    private readonly queue: EventQueue,
    private readonly rng: Prng,
    private readonly handlers: NetworkHandlers,
  ) {}

  /** Blocks messages from `from` to `to` (one direction). */
  block(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
  }

  /** Whether messages from `from` to `to` are blocked. */
  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(`${from}>${to}`);
  }

  /** Removes every partition. */
  heal(): void {
    this.blocked.clear();
  }

  /** The blocked links, for traces. */
  describePartitions(): string {
    return this.blocked.size === 0 ? "none" : [...this.blocked].sort().join(" ");
  }

  /**
   * Sends a message. Loss and partitions are decided at delivery time, so a partition that starts while
   * a message is in flight stops it; a message also dies if either end crashed meanwhile.
   */
  send(m: Message): void {
    this.stats.sent++;
    const f = this.faults;
    const fromInc = this.handlers.incarnation(m.from);
    const toInc = this.handlers.incarnation(m.to);
    // Forwarded proposals are never duplicated: each copy would become a log entry of its own, which is
    // the application's at-least-once problem, not Raft's (etcd's stream transport never duplicates).
    const copies = m.type !== MessageType.Prop && this.rng.chance(f.duplicateRate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let c = 0; c < copies; c++) {
      const copy = cloneMessage(m);
      let delay = this.rng.range(f.minDelay, f.maxDelay);
      if (this.rng.chance(f.slowRate)) delay += this.rng.range(0, f.maxDelay * 10);
      const drop = this.rng.chance(f.dropRate);
      this.drainedBy = Math.max(this.drainedBy, this.queue.now + delay);
      this.queue.after(delay, () => {
        if (this.handlers.incarnation(copy.from) !== fromInc) {
          this.stats.crashed++;
          this.handlers.lost(copy, "sender crashed");
        } else if (this.handlers.incarnation(copy.to) !== toInc) {
          this.stats.crashed++;
          this.handlers.lost(copy, "receiver crashed");
        } else if (this.isBlocked(copy.from, copy.to)) {
          this.stats.partitioned++;
          this.handlers.lost(copy, "partitioned");
        } else if (drop) {
          this.stats.dropped++;
          this.handlers.lost(copy, "dropped");
        } else {
          this.stats.delivered++;
          this.handlers.deliver(copy);
        }
      });
    }
  }
}

function cloneEntry(e: Entry): Entry {
  return { term: e.term, index: e.index, type: e.type, data: e.data.slice() };
}

function cloneSnapshot(s: Snapshot): Snapshot {
  const cs = s.metadata.confState;
  return {
    metadata: {
      index: s.metadata.index,
      term: s.metadata.term,
      confState: {
        voters: [...cs.voters],
        learners: [...cs.learners],
        votersOutgoing: [...cs.votersOutgoing],
        learnersNext: [...cs.learnersNext],
        autoLeave: cs.autoLeave,
      },
    },
    data: s.data.slice(),
  };
}

/** A deep copy of a message, as if it had been encoded and decoded. */
function cloneMessage(m: Message): Message {
  return {
    ...m,
    entries: m.entries.map(cloneEntry),
    context: m.context.slice(),
    snapshot: m.snapshot && cloneSnapshot(m.snapshot),
  };
}
