/**
 * A linearizability checker for client histories, in the style of Porcupine: the Wing–Gong search with
 * Lowe's memoization, run separately on each partition of a P-compositional model.
 *
 * A history is a list of operations, each with the virtual time it was called and the time it returned.
 * An operation that never returned (the client timed out, or crashed) is *pending*: it may have taken
 * effect at any moment after its call, or never. The checker looks for a total order of the operations
 * that respects real time (an operation that returned before another was called comes first) and in which
 * every completed operation's output is what the sequential model produces. Pending operations take any
 * outcome, and may be left out (which is the same as placing them after everything else).
 *
 * The search walks a doubly linked list of call and return events. It tries to linearize, one at a time,
 * the calls that precede the first remaining return event; it backtracks when it meets a return event
 * (that operation had to take effect before it returned). Each visited configuration (set of linearized
 * operations, model state) is remembered, so it is never explored twice.
 *
 * `checkKv` applies this to a key-value register with put, get, delete and compare-and-set, partitioned by
 * key: a KV history is linearizable exactly when each key's sub-history is.
 *
 * @module
 */

/** One client operation. `return` is `undefined` for a pending operation (no answer was ever seen). */
export interface Operation<I, O> {
  /** The client that issued the operation (for explanations only). */
  client?: number | string;
  input: I;
  /** The observed result; ignored (and usually `undefined`) for pending operations. */
  output?: O;
  /** Virtual time of the call. */
  call: number;
  /** Virtual time of the return; `undefined` when the operation is pending. */
  return?: number;
}

/** The result of applying one operation to a model state. */
export interface StepResult<S> {
  /** Whether the observed output is what the model produces from this state. */
  ok: boolean;
  /** The state after the operation (meaningful only when `ok`). */
  state: S;
  /** Why the output is impossible from this state, for explanations. */
  reason?: string;
}

/**
 * A sequential specification. `step` gets `output === undefined` for a pending operation and must then
 * accept (any outcome is possible) and return the state after the operation took effect.
 */
export interface Model<S, I, O> {
  init(): S;
  step(state: S, input: I, output: O | undefined): StepResult<S>;
  /** A string that is equal for two states exactly when the states are equal. */
  stateKey(state: S): string;
  describeState(state: S): string;
  describeOperation(input: I, output: O | undefined): string;
  /**
   * A string equal for two inputs exactly when they have the same effect (default: their JSON). Pending
   * operations with equal inputs are interchangeable, and the search tries them in call order only.
   */
  inputKey?(input: I): string;
}

/** Limits on the search. */
export interface CheckOptions {
  /**
   * Upper bound on search steps per partition (each step tries or undoes one operation). When it is
   * exhausted the result is `{ ok: false, inconclusive: true }`. Default 20 million.
   */
  maxSteps?: number;
}

/** One operation of a witness, with its position in the original history. */
export interface WitnessStep {
  /** Index of the operation in the history given to the checker. */
  op: number;
  description: string;
  /** The model state after the operation. */
  stateAfter: string;
}

/** An operation that could not be linearized next, and why. */
export interface Candidate {
  op: number;
  description: string;
  reason: string;
}

/** A partition (key) that is not linearizable, or whose check ran out of steps. */
export interface PartitionFailure {
  key: string;
  /** True when the search ran out of steps: no verdict. */
  inconclusive: boolean;
  /** Number of operations in the partition. */
  size: number;
  /** The longest prefix of a linearization that was found (empty when inconclusive). */
  linearized: WitnessStep[];
  /** The state after that prefix. */
  state: string;
  /** The operation that returned before any consistent continuation of the prefix existed. */
  blocking?: Candidate;
  /** Every operation that could have come next after the prefix, and why each is impossible. */
  candidates: Candidate[];
  /** A readable, multi-line account of all of the above. */
  explanation: string;
}

/** What a check finds. */
export type CheckResult =
  | { ok: true; partitions: number; operations: number }
  | ({ ok: false; partitions: number; operations: number; failures: PartitionFailure[] } & PartitionFailure);

const DEFAULT_MAX_STEPS = 20_000_000;

interface SearchOutcome<S> {
  ok: boolean;
  inconclusive: boolean;
  /** For a violation: the deepest partial linearization and why nothing could follow it. */
  best?: { order: number[]; states: S[]; candidates: Candidate[]; blocking?: Candidate };
}

/** Cheap deterministic 32-bit values for Zobrist hashing of the linearized set. */
function zobrist(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    out[i] = (z ^ (z >>> 16)) >>> 0;
  }
  return out;
}

/**
 * Whether the configuration with linearized set `seen` makes the one with set `now` redundant: both hold
 * the same completed operations, and `seen` holds a subset of the pending ones that `now` holds.
 */
function dominates(seen: Uint32Array, now: Uint32Array, pendingMask: Uint32Array): boolean {
  for (let w = 0; w < seen.length; w++) {
    const d = seen[w] ^ now[w];
    if ((d & (seen[w] | ~pendingMask[w])) !== 0) return false;
  }
  return true;
}

/**
 * The Wing–Gong search over one partition. On a violation it reports the deepest partial linearization
 * it reached and why nothing could follow it.
 */
function search<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  maxSteps: number,
): SearchOutcome<S> {
  const n = ops.length;
  // Events: call of op i, and return of op i when it completed. Sorted by time; on a tie calls come
  // first, so operations that touch at one instant count as concurrent.
  const events: { time: number; isCall: boolean; op: number }[] = [];
  let remaining = 0;
  for (let i = 0; i < n; i++) {
    const op = ops[i];
    events.push({ time: op.call, isCall: true, op: i });
    if (op.return !== undefined) {
      if (op.return < op.call) {
        throw new RangeError(`operation ${i} returns (${op.return}) before its call (${op.call})`);
      }
      events.push({ time: op.return, isCall: false, op: i });
      remaining++;
    }
  }
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));

  // Entry 0 is the list head; event k is entry k + 1.
  const size = events.length + 1;
  const next = new Int32Array(size);
  const prev = new Int32Array(size);
  const isCall = new Uint8Array(size);
  const opOf = new Int32Array(size);
  const match = new Int32Array(size).fill(-1); // call entry -> its return entry
  const callEntry = new Int32Array(n);
  for (let k = 0; k < events.length; k++) {
    const e = k + 1;
    isCall[e] = events[k].isCall ? 1 : 0;
    opOf[e] = events[k].op;
    if (events[k].isCall) callEntry[events[k].op] = e;
    else match[callEntry[events[k].op]] = e;
  }
  for (let e = 0; e < size; e++) {
    prev[e] = e - 1;
    next[e] = e + 1 < size ? e + 1 : -1;
  }
  const unlink = (e: number): void => {
    next[prev[e]] = next[e];
    if (next[e] !== -1) prev[next[e]] = prev[e];
  };
  const relink = (e: number): void => {
    next[prev[e]] = e;
    if (next[e] !== -1) prev[next[e]] = e;
  };
  const lift = (c: number): void => {
    unlink(c);
    if (match[c] !== -1) unlink(match[c]);
  };
  const unlift = (c: number): void => {
    if (match[c] !== -1) relink(match[c]);
    relink(c);
  };

  // The linearized set as a bitset, with a hash over its completed operations only. Pending operations
  // are optional, so a configuration that linearized fewer of them (same completed set, same state) can
  // do everything one that linearized more can: the cache prunes a configuration dominated that way.
  const words = (n + 31) >>> 5;
  const bits = new Uint32Array(words);
  const pendingMask = new Uint32Array(words);
  for (let i = 0; i < n; i++) if (ops[i].return === undefined) pendingMask[i >>> 5] |= 1 << (i & 31);
  const z1 = zobrist(n, 0x1234567);
  const z2 = zobrist(n, 0x7654321);
  let h1 = 0;
  let h2 = 0;
  const flip = (i: number): void => {
    bits[i >>> 5] ^= 1 << (i & 31);
    if (ops[i].return === undefined) return;
    h1 = (h1 ^ z1[i]) >>> 0;
    h2 = (h2 ^ z2[i]) >>> 0;
  };
  const cache = new Map<string, Uint32Array[]>();
  /** Adds the current configuration to the cache; false when it is redundant. */
  const remember = (stateKey: string): boolean => {
    const key = `${h1}:${h2}:${stateKey}`;
    const bucket = cache.get(key);
    if (bucket === undefined) {
      cache.set(key, [bits.slice()]);
      return true;
    }
    for (const b of bucket) if (dominates(b, bits, pendingMask)) return false;
    bucket.push(bits.slice());
    return true;
  };

  // The order in which the calls of the current window (those before the first return event) are tried:
  // completed operations first, then pending ones, which can always wait and so are only a fallback.
  const pend = new Uint8Array(size);
  for (let e = 1; e < size; e++) pend[e] = isCall[e] && ops[opOf[e]].return === undefined ? 1 : 0;
  const BACKTRACK = -2;
  const pendingAfter = (from: number): number => {
    for (let f = next[from]; f !== -1 && isCall[f]; f = next[f]) if (pend[f]) return f;
    return BACKTRACK;
  };
  const completedAfter = (from: number): number => {
    for (let f = next[from]; f !== -1 && isCall[f]; f = next[f]) if (!pend[f]) return f;
    return pendingAfter(0);
  };
  const advance = (e: number): number => (pend[e] ? pendingAfter(e) : completedAfter(e));

  // For each pending operation, the latest pending operation called before it with the same input, or -1.
  const twinBefore = new Int32Array(n).fill(-1);
  const lastByInput = new Map<string, number>();
  for (const { isCall, op: i } of events) {
    if (!isCall || ops[i].return !== undefined) continue;
    const key = model.inputKey ? model.inputKey(ops[i].input) : JSON.stringify(ops[i].input);
    const before = lastByInput.get(key);
    if (before !== undefined) twinBefore[i] = before;
    lastByInput.set(key, i);
  }

  const stackEntries: number[] = [];
  const stackStates: S[] = [];
  let state = model.init();
  let entry = completedAfter(0);
  let steps = 0;
  // The deepest configuration reached (copied whenever the stack grows past it).
  let bestEntries: number[] = [];
  let bestStates: S[] = [];
  let bestState = state;

  /** After the search failed (the list is whole again): replays the deepest prefix and explains it. */
  const explainBest = (): SearchOutcome<S>["best"] => {
    for (const c of bestEntries) lift(c);
    const describe = (i: number): string => describeOp(model, ops[i], i);
    const candidates: Candidate[] = [];
    let blocking: Candidate | undefined;
    for (let e = next[0]; e !== -1; e = next[e]) {
      const i = opOf[e];
      if (!isCall[e]) {
        blocking = {
          op: i,
          description: describe(i),
          reason: "it returned here, so it must come before what follows",
        };
        break;
      }
      const r = model.step(bestState, ops[i].input, pend[e] ? undefined : ops[i].output);
      candidates.push({
        op: i,
        description: describe(i),
        reason: r.ok
          ? `would leave ${model.describeState(r.state)}, from which no linearization of the rest exists`
          : (r.reason ?? "the output is impossible here"),
      });
    }
    return {
      order: bestEntries.map((c) => opOf[c]),
      states: bestStates.slice(1).concat(bestEntries.length > 0 ? [bestState] : []),
      candidates,
      blocking,
    };
  };

  while (remaining > 0) {
    if (++steps > maxSteps) return { ok: false, inconclusive: true };
    if (entry !== BACKTRACK) {
      const i = opOf[entry];
      const op = ops[i];
      const twin = twinBefore[i];
      if (twin >= 0 && (bits[twin >>> 5] & (1 << (twin & 31))) === 0) {
        // An identical pending operation called earlier is still available: use that one first.
        entry = advance(entry);
        continue;
      }
      const r = model.step(state, op.input, pend[entry] ? undefined : op.output);
      if (r.ok) {
        flip(i);
        if (remember(model.stateKey(r.state))) {
          stackEntries.push(entry);
          stackStates.push(state);
          state = r.state;
          lift(entry);
          if (!pend[entry]) remaining--;
          entry = completedAfter(0);
          if (stackEntries.length > bestEntries.length) {
            bestEntries = stackEntries.slice();
            bestStates = stackStates.slice();
            bestState = state;
          }
          continue;
        }
        flip(i);
      }
      entry = advance(entry);
    } else {
      // No call of the window can go next, and the return event that ends the window says its operation
      // must already have taken effect: undo the last choice and try the one after it.
      if (stackEntries.length === 0) {
        return { ok: false, inconclusive: false, best: explainBest() };
      }
      const c = stackEntries.pop()!;
      state = stackStates.pop()!;
      flip(opOf[c]);
      unlift(c);
      if (!pend[c]) remaining++;
      entry = advance(c);
    }
  }
  return { ok: true, inconclusive: false };
}

function describeOp<S, I, O>(model: Model<S, I, O>, op: Operation<I, O>, i: number): string {
  const who = op.client === undefined ? "" : ` client ${op.client}`;
  const span = op.return === undefined ? `[${op.call}..pending]` : `[${op.call}..${op.return}]`;
  return `#${i}${who} ${span} ${
    model.describeOperation(op.input, op.return === undefined ? undefined : op.output)
  }`;
}

/**
 * Checks one partition. Returns `undefined` when it is linearizable, otherwise the failure with its
 * explanation (`ops` indexes in the explanation are positions in `ops`, mapped through `ids`).
 */
function checkPartition<S, I, O>(
  model: Model<S, I, O>,
  key: string,
  ops: readonly Operation<I, O>[],
  ids: readonly number[],
  maxSteps: number,
): PartitionFailure | undefined {
  const first = search(model, ops, maxSteps);
  if (first.ok) return undefined;
  if (first.inconclusive) {
    return {
      key,
      inconclusive: true,
      size: ops.length,
      linearized: [],
      state: "",
      candidates: [],
      explanation: `key ${JSON.stringify(key)}: no verdict, the search gave up after ${maxSteps} steps ` +
        `over ${ops.length} operations`,
    };
  }
  const best = first.best!;
  // Re-number operations as positions in the caller's history.
  const renumber = (c: Candidate): Candidate => ({
    op: ids[c.op],
    description: describeOp(model, ops[c.op], ids[c.op]),
    reason: c.reason,
  });
  const linearized = best.order.map((i, k) => ({
    op: ids[i],
    description: describeOp(model, ops[i], ids[i]),
    stateAfter: model.describeState(best.states[k]),
  }));
  const finalState = best.states.length > 0 ? best.states[best.states.length - 1] : model.init();
  const candidates = best.candidates.map(renumber);
  const blocking = best.blocking && renumber(best.blocking);
  const lines = [
    `key ${JSON.stringify(key)} is not linearizable (${ops.length} operations).`,
    linearized.length === 0
      ? "No operation can be linearized first."
      : `Longest linearizable prefix (${linearized.length} of ${ops.length} operations):`,
    ...linearized.map((w) => `  ${w.description}  => ${w.stateAfter}`),
    `State after the prefix: ${model.describeState(finalState)}.`,
  ];
  if (blocking) {
    lines.push(
      `Operation ${blocking.description} had to take effect before it returned, but nothing can come next:`,
    );
  }
  for (const c of candidates) lines.push(`  ${c.description}: ${c.reason}`);
  return {
    key,
    inconclusive: false,
    size: ops.length,
    linearized,
    state: model.describeState(finalState),
    blocking,
    candidates,
    explanation: lines.join("\n"),
  };
}

/**
 * Checks a history against a model, after splitting it with `partition` (which returns, for each
 * operation, the partition it belongs to; the default puts everything in one partition).
 */
export function checkOperations<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  options: CheckOptions & {
    partition?: (op: Operation<I, O>) => string;
    skip?: (op: Operation<I, O>) => boolean;
  } = {},
): CheckResult {
  const maxSteps = options.maxSteps ?? DEFAULT_MAX_STEPS;
  const parts = new Map<string, { ops: Operation<I, O>[]; ids: number[] }>();
  for (let i = 0; i < history.length; i++) {
    const op = history[i];
    if (options.skip?.(op)) continue;
    const key = options.partition ? options.partition(op) : "";
    let p = parts.get(key);
    if (p === undefined) parts.set(key, p = { ops: [], ids: [] });
    p.ops.push(op);
    p.ids.push(i);
  }
  const failures: PartitionFailure[] = [];
  for (const [key, p] of parts) {
    const f = checkPartition(model, key, p.ops, p.ids, maxSteps);
    if (f) failures.push(f);
  }
  // Report real violations before inconclusive partitions.
  failures.sort((a, b) => Number(a.inconclusive) - Number(b.inconclusive));
  if (failures.length === 0) return { ok: true, partitions: parts.size, operations: history.length };
  return { ok: false, partitions: parts.size, operations: history.length, failures, ...failures[0] };
}

// ---------------------------------------------------------------------------------------------------
// The key-value model.

/** A KV operation's input. `cas` is etcd's `txn` "if value(key) == expected then put value": `expected`
 * `null` means "the key is absent", `value` `null` means "delete". */
export type KvInput =
  | { kind: "put"; key: string; value: string }
  | { kind: "get"; key: string }
  | { kind: "delete"; key: string }
  | { kind: "cas"; key: string; expected: string | null; value: string | null };

/**
 * A KV operation's output: `value` for get (`null` = absent), optionally `deleted` (keys removed) for
 * delete, `succeeded` for cas. Put needs nothing.
 */
export interface KvOutput {
  value?: string | null;
  deleted?: number;
  succeeded?: boolean;
}

/** A KV history entry. */
export type KvOperation = Operation<KvInput, KvOutput>;

/** The value of one key; `null` when absent. */
export type KvState = string | null;

const show = (v: string | null): string => (v === null ? "<absent>" : JSON.stringify(v));

/** The sequential specification of a single key. */
export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => null,
  stateKey: (s) => (s === null ? "-" : "+" + s),
  describeState: (s) => `value ${show(s)}`,
  describeOperation(input, output): string {
    const k = JSON.stringify(input.key);
    switch (input.kind) {
      case "put":
        return `put ${k} = ${show(input.value)}`;
      case "get":
        return `get ${k} -> ${output === undefined ? "?" : show(output.value ?? null)}`;
      case "delete":
        return `delete ${k}${output?.deleted === undefined ? "" : ` -> deleted ${output.deleted}`}`;
      case "cas":
        return `cas ${k} if ${show(input.expected)} then ${
          input.value === null ? "delete" : `put ${show(input.value)}`
        }` +
          ` -> ${output === undefined ? "?" : output.succeeded ? "succeeded" : "failed"}`;
    }
  },
  step(state, input, output): StepResult<KvState> {
    switch (input.kind) {
      case "put":
        return { ok: true, state: input.value };
      case "get": {
        if (output === undefined) return { ok: true, state };
        if (output.value === undefined) {
          throw new TypeError("a completed get must report a value (null when absent)");
        }
        if (output.value === state) return { ok: true, state };
        return { ok: false, state, reason: `read ${show(output.value)} but the value was ${show(state)}` };
      }
      case "delete": {
        if (output?.deleted !== undefined && (output.deleted > 0) !== (state !== null)) {
          return {
            ok: false,
            state,
            reason: `deleted ${output.deleted} but the key was ${state === null ? "absent" : "present"}`,
          };
        }
        return { ok: true, state: null };
      }
      case "cas": {
        const holds = state === input.expected;
        if (output === undefined) return { ok: true, state: holds ? input.value : state };
        if (output.succeeded === undefined) throw new TypeError("a completed cas must report succeeded");
        if (output.succeeded === holds) return { ok: true, state: holds ? input.value : state };
        return {
          ok: false,
          state,
          reason: holds
            ? `failed although the value was the expected ${show(state)}`
            : `succeeded although the value was ${show(state)}, not ${show(input.expected)}`,
        };
      }
    }
  },
};

/**
 * The KV model for one history, in which written values that no get returned and no compare-and-set
 * expected count as equal: the model only ever compares values with those, so such values cannot be
 * told apart, and merging them in the cache (and among interchangeable pending writes) keeps the search
 * small when many writes are pending. States still carry the real values, for explanations.
 */
function kvModelFor(history: readonly KvOperation[]): Model<KvState, KvInput, KvOutput> {
  const read = new Set<string>();
  for (const op of history) {
    const i = op.input;
    if (i.kind === "get" && op.return !== undefined && typeof op.output?.value === "string") {
      read.add(op.output.value);
    }
    if (i.kind === "cas" && i.expected !== null) read.add(i.expected);
  }
  const unread = (v: string | null): boolean => v !== null && !read.has(v);
  return {
    ...kvModel,
    stateKey: (s) => (s === null ? "-" : unread(s) ? "?" : "+" + s),
    inputKey: (i) =>
      JSON.stringify((i.kind === "put" || i.kind === "cas") && unread(i.value) ? { ...i, value: "?" } : i),
  };
}

/**
 * Checks a KV history, one key at a time. Pending gets are dropped first: a read that returned nothing
 * constrains nothing.
 */
export function checkKv(history: readonly KvOperation[], options: CheckOptions = {}): CheckResult {
  return checkOperations(kvModelFor(history), history, {
    ...options,
    partition: (op) => op.input.key,
    skip: (op) => op.return === undefined && op.input.kind === "get",
  });
}
