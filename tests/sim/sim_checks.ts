/**
 * What both simulations (the Raft core in cluster.ts, whole members in server_sim.ts) share: how a run's
 * failure is reported (with the command that replays its seed and the tail of its trace), the trace
 * itself, and the safety checks both make the same way (one leader per term, one vote per term).
 *
 * It also holds the membership checks, as pure functions over what the simulator observes: the
 * configuration history decided by committed conf change entries ({@linkcode MembershipHistory}), against
 * which members' configurations must agree; elections won by a majority of the configuration's voters
 * ({@linkcode electionViolation}); commits durable on a majority of them ({@linkcode commitViolation}),
 * so that neither a learner nor a removed member ever counts; and one conf change in flight at a time
 * ({@linkcode confChangeInFlightViolation}).
 *
 * @module
 */
import { type ConfChange, ConfChangeType, type ConfState, type NodeId } from "../../raft/types.ts";

/** How many trace lines a failure message shows. */
const TRACE_TAIL = 80;

/** A violation of a checked property, thrown inside a run; anything else thrown is an exception. */
export class SimViolation extends Error {}

/** The reason a run failed: a violation's own message, or the exception with its stack. */
export function failureReason(err: unknown): string {
  return err instanceof SimViolation
    ? err.message
    : `exception: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
}

/** A failed seeded run: the message names the seed, the virtual time, the reason and how to replay. */
export class SeededRunFailure extends Error {
  constructor(
    what: string,
    readonly seed: number,
    readonly time: number,
    readonly reason: string,
    /** The whole trace when the run was traced (the message shows its last lines). */
    readonly trace: string[],
    replay: string,
  ) {
    super(
      `${what} failed: seed ${seed} at t=${time}ms: ${reason}\nreplay: ${replay}` +
        (trace.length > 0 ? `\nlast trace lines:\n${trace.slice(-TRACE_TAIL).join("\n")}` : ""),
    );
  }
}

/** A run's readable trace, kept only when asked for (lines are built only then). */
export class SimTrace {
  readonly lines: string[] = [];

  constructor(private readonly enabled: boolean, private readonly now: () => number) {}

  add(line: () => string): void {
    if (this.enabled) this.lines.push(`${this.now()} ${line()}`);
  }
}

/**
 * A run's digest: FNV-1a over the strings given, as 8 hex digits. Equal seeds must give equal digests
 * (exact replay).
 */
export function digestOf(parts: Iterable<string>): string {
  let h = 0x811c9dc5;
  for (const s of parts) {
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/** What {@link TermLeaders.record} found. */
export type LeaderRecord =
  | { kind: "first" }
  | { kind: "known" }
  | { kind: "conflict"; other: NodeId };

/** Election safety: the leader seen for each term, which must be the only one. */
export class TermLeaders {
  private readonly byTerm = new Map<number, NodeId>();

  /** Records that `id` leads `term`: its first leader, the one already known, or a second one. */
  record(term: number, id: NodeId): LeaderRecord {
    const other = this.byTerm.get(term);
    if (other === undefined) {
      this.byTerm.set(term, id);
      return { kind: "first" };
    }
    return other === id ? { kind: "known" } : { kind: "conflict", other };
  }
}

/** One member's votes by term: a vote once given in a term must never change, even across restarts. */
export class TermVotes {
  private readonly byTerm = new Map<number, NodeId>();

  /** Records a vote for `vote` in `term`; returns the different vote given earlier in it, if any. */
  record(term: number, vote: NodeId): NodeId | undefined {
    const earlier = this.byTerm.get(term);
    this.byTerm.set(term, vote);
    return earlier !== undefined && earlier !== vote ? earlier : undefined;
  }

  /** The vote given in `term`, if any. */
  get(term: number): NodeId | undefined {
    return this.byTerm.get(term);
  }
}

// ---- membership ------------------------------------------------------------------------------------

/** A configuration as etcd's members see it: voters and learners, each sorted. */
export interface Membership {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** The membership of a Raft ConfState (the simulator never enters a joint configuration). */
export function membershipOf(cs: ConfState): Membership {
  return { voters: sortIds([...cs.voters, ...cs.votersOutgoing]), learners: sortIds(cs.learners) };
}

/** Whether two memberships have the same voters and the same learners. */
export function sameMembership(a: Membership, b: Membership): boolean {
  return sameIds(a.voters, b.voters) && sameIds(a.learners, b.learners);
}

/** A membership for messages: "voters 1,2,3 learners 4". */
export function describeMembership(m: Membership): string {
  return `voters ${m.voters.join(",") || "-"} learners ${m.learners.join(",") || "-"}`;
}

function sortIds(ids: Iterable<NodeId>): NodeId[] {
  return [...new Set(ids)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function sameIds(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

/** Whether the voters for which `yes` holds are a majority of `voters` (never of an empty set). */
export function isQuorum(voters: readonly NodeId[], yes: (id: NodeId) => boolean): boolean {
  let n = 0;
  for (const id of voters) if (yes(id)) n++;
  return n > voters.length / 2;
}

/**
 * The configuration history of a run, decided by its committed conf change entries alone: a model of
 * etcd's simple (one member at a time) changes, independent of the Raft core's Changer, against which
 * every member's configuration is checked (configuration agreement). AddNode makes a member a voter
 * (promoting a learner), AddLearnerNode a learner, RemoveNode drops it; the configuration in effect at
 * index i is the one after every committed change at or below i.
 *
 * The bootstrap entries (1..n, one AddNode per initial member) are not changes: every initial member
 * starts with the whole bootstrap configuration, so the history starts at index n with it.
 */
export class MembershipHistory {
  /** Conf changes by index, sorted, each with the membership it leads to. */
  private readonly changes: { index: number; cc: ConfChange; after: Membership }[] = [];

  constructor(private readonly bootstrap: Membership, readonly bootstrapIndex: number) {}

  /**
   * Records the committed conf change at `index` (above the bootstrap). Returns a violation of the
   * model's own rules, if any: more than `maxLearners` learners (etcd's limit) or no voter left.
   */
  record(index: number, cc: ConfChange, maxLearners: number): string | undefined {
    if (index <= this.bootstrapIndex) return undefined;
    let at = this.changes.length;
    while (at > 0 && this.changes[at - 1].index > index) at--;
    if (at > 0 && this.changes[at - 1].index === index) return undefined; // already known
    this.changes.splice(at, 0, { index, cc, after: this.bootstrap });
    // Recompute from the insertion point (entries normally arrive in order: this is the last one).
    let problem: string | undefined;
    for (let i = at; i < this.changes.length; i++) {
      const c = this.changes[i];
      c.after = applyChange(i === 0 ? this.bootstrap : this.changes[i - 1].after, c.cc);
      if (c.after.learners.length > maxLearners) {
        problem ??= `more than ${maxLearners} learner(s) after the conf change at index ${c.index}: ` +
          describeMembership(c.after);
      }
      if (c.after.voters.length === 0) problem ??= `no voter left after the conf change at index ${c.index}`;
    }
    return problem;
  }

  /** The membership in effect once every entry up to `index` is applied. */
  at(index: number): Membership {
    let lo = 0;
    let hi = this.changes.length; // first change above index
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.changes[mid].index <= index) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? this.bootstrap : this.changes[lo - 1].after;
  }

  /**
   * The memberships a node went through while applying (from, to]: the one at `from`, then the one after
   * each change in between.
   */
  between(from: number, to: number): Membership[] {
    const out = [this.at(from)];
    for (const c of this.changes) if (c.index > from && c.index <= to) out.push(c.after);
    return out;
  }

  /** Committed conf changes recorded so far. */
  get size(): number {
    return this.changes.length;
  }
}

/** The membership after one simple conf change, as etcd applies it. */
export function applyChange(m: Membership, cc: ConfChange): Membership {
  const voters = new Set(m.voters);
  const learners = new Set(m.learners);
  const id = cc.nodeId;
  if (id !== 0n) {
    switch (cc.type) {
      case ConfChangeType.AddNode:
        learners.delete(id);
        voters.add(id);
        break;
      case ConfChangeType.AddLearnerNode:
        voters.delete(id);
        learners.add(id);
        break;
      case ConfChangeType.RemoveNode:
        voters.delete(id);
        learners.delete(id);
        break;
      case ConfChangeType.UpdateNode:
        break;
    }
  }
  return { voters: sortIds(voters), learners: sortIds(learners) };
}

/**
 * Election legitimacy under membership changes: the leader of `term` must be a voter of the
 * configuration it was elected in, and a majority of that configuration's voters must have voted for it
 * durably (`votedFor` gives each member's persisted vote in `term`; the leader's own vote may still be in
 * memory). A learner's or a removed member's vote never counts, whatever it granted. Returns the violation.
 */
export function electionViolation(
  leader: NodeId,
  term: number,
  config: Membership,
  votedFor: (id: NodeId) => NodeId | undefined,
): string | undefined {
  if (!config.voters.includes(leader)) {
    return `node ${leader} leads term ${term} but is not a voter of its configuration (${
      describeMembership(config)
    })`;
  }
  if (isQuorum(config.voters, (id) => votedFor(id) === leader)) return undefined;
  const granted = config.voters.filter((id) => votedFor(id) === leader);
  return `node ${leader} leads term ${term} with durable votes from ${granted.join(",") || "nobody"} only, ` +
    `not a majority of ${describeMembership(config)}`;
}

/**
 * Commitment under membership changes: when a leader's commit index reaches `index`, a majority of the
 * voters of a configuration it held meanwhile (`configs`: a leader applying several conf changes at once
 * commits with each in turn) must hold the entry durably. Learners and removed members never count.
 * Returns the violation.
 */
export function commitViolation(
  leader: NodeId,
  index: number,
  configs: readonly Membership[],
  durable: (id: NodeId) => boolean,
): string | undefined {
  if (configs.some((c) => isQuorum(c.voters, durable))) return undefined;
  const holders = sortIds(configs.flatMap((c) => c.voters).filter(durable));
  return `leader ${leader} committed index ${index}, durable only on ${holders.join(",") || "nobody"}: ` +
    `not a majority of ${configs.map(describeMembership).join(" nor ")}`;
}

/** What the one-change-in-flight check needs of a log entry. */
export interface EntryKind {
  index: number;
  term: number;
  confChange: boolean;
}

/**
 * One conf change in flight (raft's pendingConfIndex, which etcd relies on): a leader of `term` appends a
 * conf change only once every earlier conf change in its log is applied. `unapplied` are the leader's
 * entries above its applied index, in order. Returns the violation.
 */
export function confChangeInFlightViolation(
  leader: NodeId,
  term: number,
  unapplied: readonly EntryKind[],
): string | undefined {
  let earlier: EntryKind | undefined;
  for (const e of unapplied) {
    if (!e.confChange) continue;
    if (earlier !== undefined && e.term === term) {
      return `leader ${leader} of term ${term} appended the conf change at index ${e.index} while the one ` +
        `at index ${earlier.index} (term ${earlier.term}) was not applied`;
    }
    earlier ??= e;
  }
  return undefined;
}
