/**
 * What both simulations (the Raft core in cluster.ts, whole members in server_sim.ts) share: how a run's
 * failure is reported (with the command that replays its seed and the tail of its trace), the trace
 * itself, and the safety checks both make the same way (one leader per term, one vote per term).
 *
 * @module
 */
import type { NodeId } from "../../raft/types.ts";

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
}
