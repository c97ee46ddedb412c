/**
 * Tests of the linearizability checker: hand-written histories with known verdicts, random small
 * histories cross-checked against brute force, and large generated histories for speed.
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertThrows } from "../assert.ts";
import {
  checkKv,
  checkOperations,
  type KvInput,
  kvModel,
  type KvOperation,
  type KvOutput,
} from "./linearizability.ts";
import { Prng } from "./prng.ts";

// Shorthands for hand-written histories. Times are [call, return]; `return` undefined = pending.
function put(key: string, value: string, call: number, ret?: number, client?: number): KvOperation {
  return { client, input: { kind: "put", key, value }, output: {}, call, return: ret };
}
function get(key: string, value: string | null, call: number, ret?: number, client?: number): KvOperation {
  return { client, input: { kind: "get", key }, output: { value }, call, return: ret };
}
function del(key: string, deleted: number | undefined, call: number, ret?: number): KvOperation {
  return { input: { kind: "delete", key }, output: { deleted }, call, return: ret };
}
function cas(
  key: string,
  expected: string | null,
  value: string | null,
  succeeded: boolean,
  call: number,
  ret?: number,
): KvOperation {
  return { input: { kind: "cas", key, expected, value }, output: { succeeded }, call, return: ret };
}

function expectOk(history: KvOperation[]): void {
  const r = checkKv(history);
  assert(r.ok, r.ok ? "" : r.explanation);
}

function expectViolation(history: KvOperation[], explanation?: RegExp): void {
  const r = checkKv(history);
  assert(!r.ok, "expected a linearizability violation");
  assert(!r.inconclusive, "expected a verdict");
  if (explanation) assertMatch(r.explanation, explanation);
}

Deno.test("linearizability: basic histories", async (t) => {
  await t.step("empty and sequential histories are linearizable", () => {
    expectOk([]);
    expectOk([put("x", "a", 0, 1), get("x", "a", 2, 3), put("x", "b", 4, 5), get("x", "b", 6, 7)]);
    expectOk([get("x", null, 0, 1)]);
  });

  await t.step("stale read after a completed write is a violation", () => {
    expectViolation(
      [put("x", "a", 0, 1), put("x", "b", 2, 3), get("x", "a", 4, 5)],
      /read "a" but the value was "b"/,
    );
  });

  await t.step("a read concurrent with a write may see either value", () => {
    expectOk([put("x", "a", 0, 1), put("x", "b", 2, 10), get("x", "a", 3, 4)]);
    expectOk([put("x", "a", 0, 1), put("x", "b", 2, 10), get("x", "b", 3, 4)]);
    // But once a read saw the new value, a later read must not see the old one.
    expectViolation([put("x", "a", 0, 1), put("x", "b", 2, 10), get("x", "b", 3, 4), get("x", "a", 5, 6)]);
  });

  await t.step("a lost write is a violation", () => {
    expectViolation([put("x", "a", 0, 1), get("x", null, 2, 3)], /read <absent> but the value was "a"/);
    // Two concurrent writes, then reads that flip between them without a third write.
    expectViolation([put("x", "a", 0, 5), put("x", "b", 0, 5), get("x", "a", 6, 7), get("x", "b", 8, 9)]);
    expectOk([put("x", "a", 0, 5), put("x", "b", 0, 5), get("x", "b", 6, 7), get("x", "b", 8, 9)]);
  });

  await t.step("operations touching at one instant count as concurrent", () => {
    expectOk([put("x", "a", 0, 5), get("x", null, 5, 6)]);
    expectViolation([put("x", "a", 0, 5), get("x", null, 6, 7)]);
  });

  await t.step("a value never written cannot be read", () => {
    expectViolation([put("x", "a", 0, 10), get("x", "zzz", 1, 2)], /read "zzz"/);
  });
});

Deno.test("linearizability: pending operations", async (t) => {
  await t.step("a pending write may be observed", () => {
    expectOk([put("x", "a", 0), get("x", "a", 5, 6)]);
    expectOk([put("x", "a", 0), get("x", null, 1, 2), get("x", "a", 3, 4)]);
  });

  await t.step("a pending write may never take effect", () => {
    expectOk([put("x", "a", 0), get("x", null, 1, 2), get("x", null, 100, 101)]);
  });

  await t.step("once observed, a pending write stays in effect", () => {
    expectViolation([put("x", "a", 0), get("x", "a", 3, 4), get("x", null, 5, 6)]);
  });

  await t.step("a pending write cannot take effect before its call", () => {
    expectViolation([get("x", "a", 0, 1), put("x", "a", 2)]);
  });

  await t.step("pending reads constrain nothing", () => {
    expectOk([put("x", "a", 0, 1), get("x", "zzz", 2)]);
  });

  await t.step("a pending cas takes effect only when its comparison holds", () => {
    expectOk([
      put("x", "a", 0, 1),
      { ...cas("x", "a", "b", true, 2), output: undefined },
      get("x", "b", 5, 6),
    ]);
    expectViolation([
      put("x", "a", 0, 1),
      { ...cas("x", "zzz", "b", true, 2), output: undefined },
      get("x", "b", 5, 6),
    ]);
  });

  await t.step("a pending delete may remove the key", () => {
    expectOk([put("x", "a", 0, 1), del("x", undefined, 2), get("x", null, 5, 6)]);
    expectViolation([put("x", "a", 0, 1), del("x", undefined, 2), get("x", null, 5, 6), get("x", "a", 7, 8)]);
  });
});

Deno.test("linearizability: compare-and-set and delete", async (t) => {
  await t.step("two concurrent cas from the same value cannot both succeed", () => {
    expectViolation([put("x", "0", 0, 1), cas("x", "0", "1", true, 2, 5), cas("x", "0", "2", true, 2, 5)]);
    expectOk([put("x", "0", 0, 1), cas("x", "0", "1", true, 2, 5), cas("x", "0", "2", false, 2, 5)]);
  });

  await t.step("cas on an absent key", () => {
    expectOk([cas("x", null, "a", true, 0, 1), get("x", "a", 2, 3)]);
    expectViolation(
      [put("x", "a", 0, 1), cas("x", null, "b", true, 2, 3)],
      /succeeded although the value was "a"/,
    );
    expectViolation(
      [cas("x", null, "b", false, 0, 1)],
      /failed although the value was the expected <absent>/,
    );
  });

  await t.step("cas may delete", () => {
    expectOk([put("x", "a", 0, 1), cas("x", "a", null, true, 2, 3), get("x", null, 4, 5)]);
  });

  await t.step("delete counts must match", () => {
    expectOk([put("x", "a", 0, 1), del("x", 1, 2, 3), del("x", 0, 4, 5), get("x", null, 6, 7)]);
    expectViolation([del("x", 1, 0, 1)], /deleted 1 but the key was absent/);
    expectViolation([put("x", "a", 0, 1), del("x", 0, 2, 3)], /deleted 0 but the key was present/);
  });
});

Deno.test("linearizability: keys are checked independently and the witness names the key", () => {
  const history = [
    put("x", "a", 0, 1),
    put("y", "b", 0, 1),
    get("x", "a", 2, 3),
    get("y", "old", 2, 3),
  ];
  const r = checkKv(history);
  assert(!r.ok);
  assertEquals(r.key, "y");
  assertEquals(r.partitions, 2);
  assertEquals(r.failures.length, 1);
  // The witness: put y linearized, then get y (history index 3) impossible.
  assertEquals(r.linearized.map((w) => w.op), [1]);
  assertEquals(r.state, 'value "b"');
  assertEquals(r.blocking?.op, 3);
  assertEquals(r.candidates.map((c) => c.op), [3]);
  assertMatch(r.explanation, /key "y" is not linearizable/);
  assertMatch(r.explanation, /#3 \[2\.\.3\] get "y" -> "old": read "old" but the value was "b"/);
  expectOk(history.slice(0, 3));
});

Deno.test("linearizability: inconclusive when the step budget runs out; malformed histories throw", () => {
  const history: KvOperation[] = [];
  for (let i = 0; i < 12; i++) history.push(put("x", String(i), 0, 100));
  history.push(get("x", "nope", 101, 102));
  const r = checkKv(history, { maxSteps: 50 });
  assert(!r.ok && r.inconclusive);
  assertMatch(r.explanation, /gave up after 50 steps/);
  assertThrows(() => checkKv([put("x", "a", 5, 1)]), RangeError, "before its call");
  assertThrows(
    () => checkKv([{ input: { kind: "get", key: "x" }, output: {}, call: 0, return: 1 }]),
    TypeError,
  );
});

/** Brute force: is there an order of the completed ops (plus any subset of pending ones) that works? */
function bruteForce(history: KvOperation[]): boolean {
  const n = history.length;
  const used = new Array<boolean>(n).fill(false);
  const mustPrecede = (a: KvOperation, b: KvOperation): boolean =>
    a.return !== undefined && a.return < b.call;
  const go = (state: string | null, count: number, completedLeft: number): boolean => {
    if (completedLeft === 0) return true;
    for (let i = 0; i < n; i++) {
      if (used[i]) continue;
      // Every unused op that must precede op i blocks it.
      let blocked = false;
      for (let j = 0; j < n; j++) {
        if (!used[j] && j !== i && mustPrecede(history[j], history[i])) blocked = true;
      }
      if (blocked) continue;
      const op = history[i];
      const pending = op.return === undefined;
      const r = kvModel.step(state, op.input, pending ? undefined : op.output);
      if (!r.ok) continue;
      used[i] = true;
      const ok = go(r.state, count + 1, completedLeft - (pending ? 0 : 1));
      used[i] = false;
      if (ok) return true;
    }
    return false;
  };
  return go(null, 0, history.filter((o) => o.return !== undefined).length);
}

function randomSmallHistory(rng: Prng, values: string[], pendingRate: number): KvOperation[] {
  const n = rng.range(1, 7);
  const ops: KvOperation[] = [];
  for (let i = 0; i < n; i++) {
    const call = rng.int(10);
    const ret = rng.chance(pendingRate) ? undefined : call + rng.int(6);
    const k = rng.int(4);
    let input: KvInput;
    let output: KvOutput;
    if (k === 0) {
      input = { kind: "put", key: "x", value: rng.pick(values) };
      output = {};
    } else if (k === 1) {
      input = { kind: "get", key: "x" };
      output = { value: rng.chance(0.2) ? null : rng.pick(values) };
    } else if (k === 2) {
      input = { kind: "delete", key: "x" };
      output = { deleted: rng.chance(0.3) ? undefined : rng.int(2) };
    } else {
      input = {
        kind: "cas",
        key: "x",
        expected: rng.chance(0.2) ? null : rng.pick(values),
        value: rng.pick(values),
      };
      output = { succeeded: rng.chance(0.5) };
    }
    ops.push({ client: i, input, output, call, return: ret });
  }
  return ops;
}

Deno.test("linearizability: agrees with brute force on random small histories", async (t) => {
  const cases: [string, string[], number][] = [
    ["few values, some pending", ["a", "b", "c"], 0.15],
    ["many values, mostly pending (values nobody read are merged)", ["a", "b", "c", "d", "e", "f", "g"], 0.5],
  ];
  for (const [name, values, pendingRate] of cases) {
    await t.step(name, () => {
      const rng = new Prng(42);
      let ok = 0;
      for (let i = 0; i < 3000; i++) {
        const h = randomSmallHistory(rng, values, pendingRate);
        const expected = bruteForce(h);
        const r = checkKv(h);
        assertEquals(r.ok, expected, `history ${i}: ${JSON.stringify(h)}`);
        if (expected) ok++;
      }
      // Both verdicts must be well represented for this test to mean something.
      assert(ok > 300 && ok < 2700, `linearizable: ${ok} of 3000`);
    });
  }
});

/**
 * A linearizable history by construction: each op gets a linearization point inside its interval and its
 * output is computed by applying ops in that order. Some ops are made pending.
 */
function generatedHistory(
  rng: Prng,
  keys: string[],
  opsPerKey: number,
  clients: number,
  pendingRate: number,
): KvOperation[] {
  type Planned = { op: KvOperation; point: number };
  const planned: Planned[] = [];
  const clientFree = new Array<number>(clients).fill(0);
  const total = opsPerKey * keys.length;
  for (let i = 0; i < total; i++) {
    const c = rng.int(clients);
    const call = clientFree[c] + rng.int(3);
    const dur = 1 + rng.int(30);
    const ret = call + dur;
    const point = call + rng.float() * dur;
    const key = rng.pick(keys);
    const r = rng.int(10);
    const input: KvInput = r < 4
      ? { kind: "get", key }
      : r < 8
      ? { kind: "put", key, value: `v${i}` }
      : r < 9
      ? { kind: "delete", key }
      : { kind: "cas", key, expected: rng.chance(0.5) ? null : `v${i - 1 - rng.int(5)}`, value: `v${i}` };
    const pending = rng.chance(pendingRate);
    planned.push({ op: { client: c, input, call, return: pending ? undefined : ret }, point });
    // A client whose op is pending gave up on it; it continues after its timeout.
    clientFree[c] = ret + 1;
  }
  const state = new Map<string, string | null>();
  const byPoint = [...planned].sort((a, b) => a.point - b.point);
  for (const { op } of byPoint) {
    // A pending op takes effect with probability one half; otherwise it never happens.
    if (op.return === undefined && rng.chance(0.5)) continue;
    const r = kvModel.step(state.get(op.input.key) ?? null, op.input, undefined);
    const before = state.get(op.input.key) ?? null;
    switch (op.input.kind) {
      case "get":
        op.output = { value: before };
        break;
      case "put":
        op.output = {};
        break;
      case "delete":
        op.output = { deleted: before === null ? 0 : 1 };
        break;
      case "cas":
        op.output = { succeeded: before === op.input.expected };
        break;
    }
    state.set(op.input.key, r.state);
  }
  return planned.map((p) => p.op);
}

Deno.test("linearizability: thousands of operations per key are checked quickly", () => {
  const rng = new Prng(7);
  const history = generatedHistory(rng, ["k1", "k2"], 3000, 8, 0.01);
  const start = performance.now();
  const r = checkKv(history);
  const elapsed = performance.now() - start;
  assert(r.ok, r.ok ? "" : r.explanation);
  assertEquals(r.partitions, 2);
  assert(elapsed < 1000, `took ${elapsed.toFixed(0)} ms`);

  // Corrupt one read in the middle: a value that was never written there.
  const victim = history.findIndex((o, i) => i > 3000 && o.input.kind === "get" && o.return !== undefined);
  history[victim] = { ...history[victim], output: { value: "never-written" } };
  const start2 = performance.now();
  const bad = checkKv(history);
  const elapsed2 = performance.now() - start2;
  assert(!bad.ok && !bad.inconclusive, "expected a violation");
  assertEquals(bad.blocking?.op, victim);
  assert(elapsed2 < 2000, `took ${elapsed2.toFixed(0)} ms`);
});

Deno.test("linearizability: many pending writes on one key are checked quickly", () => {
  // Clients that time out a lot (one operation in eight never returns) contending on a single key.
  const rng = new Prng(15);
  const history = generatedHistory(rng, ["k"], 1000, 6, 0.12);
  const start = performance.now();
  const r = checkKv(history);
  const elapsed = performance.now() - start;
  assert(r.ok, r.ok ? "" : r.explanation);
  assert(elapsed < 1000, `took ${elapsed.toFixed(0)} ms`);
});

Deno.test("linearizability: a generic model without partitions (a counter)", () => {
  // Increments return the new value; "read" returns the current one.
  type In = { kind: "inc" } | { kind: "read" };
  const counter = {
    init: () => 0,
    stateKey: (s: number) => String(s),
    describeState: (s: number) => `count ${s}`,
    describeOperation: (i: In, o: number | undefined) => `${i.kind} -> ${o ?? "?"}`,
    step: (s: number, i: In, o: number | undefined) => {
      const next = i.kind === "inc" ? s + 1 : s;
      return o === undefined || o === next
        ? { ok: true, state: next }
        : { ok: false, state: s, reason: `expected ${next}` };
    },
  };
  const inc = (o: number, call: number, ret: number) => ({
    input: { kind: "inc" } as In,
    output: o,
    call,
    return: ret,
  });
  assert(checkOperations(counter, [inc(2, 0, 10), inc(1, 0, 10)]).ok);
  const r = checkOperations(counter, [inc(1, 0, 1), inc(1, 2, 3)]);
  assert(!r.ok);
  assertMatch(r.explanation, /expected 2/);
});
