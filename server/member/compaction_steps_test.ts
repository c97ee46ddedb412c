import { CompactionSteps } from "./compaction_steps.ts";
import { MvccStore } from "../../storage/mvcc/store.ts";
import { assert, assertEquals } from "../../tests/assert.ts";

const te = new TextEncoder();

/** A store of `n` puts over 10 keys, compacting in steps of 32 entries. */
function filled(n: number): MvccStore {
  const st = new MvccStore({ compactStepEntries: 32 });
  for (let i = 0; i < n; i++) {
    const w = st.write();
    w.put(te.encode(`k${i % 10}`), te.encode(`v${i}`), 0n);
    w.end();
  }
  return st;
}

/** Pauses ended one at a time by the test. */
function turns(): { next: () => Promise<void>; waiting: () => number; step: () => Promise<void> } {
  const pending: (() => void)[] = [];
  return {
    next: () => new Promise<void>((resolve) => pending.push(resolve)),
    waiting: () => pending.length,
    step: async () => {
      pending.shift()!();
      // let the stepper run up to its next wait
      for (let i = 0; i < 5; i++) await Promise.resolve();
    },
  };
}

Deno.test("compaction steps: one step after each pause, on the current store, until done", async () => {
  let store = filled(400);
  const t = turns();
  const errors: unknown[] = [];
  const steps = new CompactionSteps(() => store, t.next, (err) => errors.push(err));
  steps.kick();
  assertEquals(t.waiting(), 0, "nothing to do before a compaction");

  store.compact(390);
  assert(store.compacting, "a compaction of 390 revisions in steps of 32 goes on after its first");
  const rangeBefore = store.range(te.encode("k0"), undefined).kvs.map((kv) => kv.modRevision);
  steps.kick();
  steps.kick(); // a second kick while stepping adds no second stepper
  assertEquals(t.waiting(), 1);
  let physical = false;
  steps.finished().then(() => physical = true);
  let taken = 0;
  while (store.compacting) {
    assertEquals(physical, false, "a physical compaction answered before its last step");
    await t.step();
    taken++;
    assert(taken < 30, "the steps do not end");
  }
  assert(taken >= 3, `${taken} steps`);
  assertEquals(steps.active, false);
  assertEquals(physical, true);
  await steps.finished(); // nothing under way: at once
  assertEquals(t.waiting(), 0);
  assertEquals(store.range(te.encode("k0"), undefined).kvs.map((kv) => kv.modRevision), rangeBefore);
  assertEquals(errors, []);

  // a store replaced by a snapshot while its compaction is under way is left alone
  store.compact(399);
  store = filled(400);
  const old = store;
  store.compact(300);
  assert(store.compacting);
  steps.kick();
  store = filled(10);
  await t.step();
  assertEquals(steps.active, false);
  assert(old.compacting, "the replaced store was stepped");
});

Deno.test("compaction steps: a failing step is reported and stepping stops", async () => {
  const store = filled(400);
  store.compact(390);
  const t = turns();
  const errors: unknown[] = [];
  const steps = new CompactionSteps(() => store, t.next, (err) => errors.push(err));
  steps.kick();
  const w = store.write(); // a write transaction open across turns: a step then fails
  await t.step();
  assertEquals(errors.length, 1);
  assertEquals((errors[0] as Error).name, "ErrTxnState");
  assertEquals(steps.active, false);
  w.end();
  // the store finishes the compaction before anything reads what it drops
  store.hashKV(0);
  assertEquals(store.compacting, false);
});

Deno.test("compaction steps: none after the member stops", async () => {
  const store = filled(400);
  store.compact(390);
  const t = turns();
  const steps = new CompactionSteps(() => store, t.next, (err) => {
    throw err;
  });
  steps.kick();
  await t.step();
  assert(store.compacting);
  steps.stop();
  await t.step(); // the pause under way ends: no step follows
  assertEquals(steps.active, false);
  assertEquals(t.waiting(), 0);
  assert(store.compacting, "a step was taken after stop()");
  steps.kick();
  assertEquals(t.waiting(), 0, "a stopped stepper started again");
});
