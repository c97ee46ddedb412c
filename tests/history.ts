/**
 * A recorder of client operations with their call and return times, for the linearizability checker
 * ({@link checkKv} of `sim/linearizability.ts`). End-to-end tests that run a load against real servers
 * wrap each client call in {@link History.run} and check the history at the end.
 *
 * ```ts
 * const history = new History();
 * await history.run(0, { kind: "put", key: "k", value: "v" }, async () => {
 *   await client.put("k").value("v");
 *   return {};
 * });
 * const verdict = checkKv(history.ops);
 * ```
 *
 * @module
 */
import type { KvInput, KvOperation, KvOutput } from "./sim/linearizability.ts";

/** Records client operations with their call and return times, for the linearizability checker. */
export class History {
  readonly ops: KvOperation[] = [];

  /**
   * Runs `fn` as one operation. A call that fails stays pending (its effect is unknown: a write may have
   * been committed after all); returns the output, or undefined when the call failed.
   */
  async run(client: number, input: KvInput, fn: () => Promise<KvOutput>): Promise<KvOutput | undefined> {
    const op: KvOperation = { client, input, call: performance.now() };
    this.ops.push(op);
    try {
      op.output = await fn();
      op.return = performance.now();
      return op.output;
    } catch {
      return undefined;
    }
  }

  /** Operations that completed. */
  completed(): number {
    return this.ops.filter((o) => o.return !== undefined).length;
  }
}
