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
import type { Etcd3 } from "etcd3";
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

  /**
   * Operation `i` of client `w` in the mixed load of the fault tests: a put or a get of one of `registers`
   * keys shared by all clients (`<prefix>reg/n`), or, every third operation, a put of a key written only
   * this once (`<prefix>acked/w/i`). Resolves to that key and its value when that put was acknowledged,
   * for the check that no acknowledged write is lost.
   */
  async mixed(
    client: Etcd3,
    w: number,
    i: number,
    o: { prefix: string; registers: number; deadline: () => { deadline: number } },
  ): Promise<[key: string, value: string] | undefined> {
    const reg = `${o.prefix}reg/${(w + i) % o.registers}`;
    const value = `w${w}-${i}`;
    switch (i % 3) {
      case 0:
        await this.run(w, { kind: "put", key: reg, value }, async () => {
          await client.put(reg).value(value).options(o.deadline());
          return {};
        });
        return undefined;
      case 1:
        await this.run(w, { kind: "get", key: reg }, async () => ({
          value: await client.get(reg).options(o.deadline()).string(),
        }));
        return undefined;
      default: {
        const key = `${o.prefix}acked/${w}/${i}`;
        const out = await this.run(w, { kind: "put", key, value }, async () => {
          await client.put(key).value(value).options(o.deadline());
          return {};
        });
        return out === undefined ? undefined : [key, value];
      }
    }
  }
}
