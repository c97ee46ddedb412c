import { assertEquals, assertRejects } from "../../tests/assert.ts";
import { sortInSteps, turnsToSort } from "./sort_in_steps.ts";

/** A generator of pseudo-random numbers from `seed` (xorshift32). */
function random(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

Deno.test("sort in steps: the order Array.prototype.sort gives, ties kept in place, with the turns it says", async () => {
  const next = random(7);
  for (const n of [0, 1, 15, 16, 17, 40, 64, 100, 257, 1000]) {
    for (const ties of [3, 1000]) {
      // sort keys with many or few ties; the index shows whether equal items kept their order
      const items = Array.from({ length: n }, (_, i) => ({ k: Math.floor(next() * ties), i }));
      for (const descending of [false, true]) {
        const compare = descending
          ? (a: { k: number }, b: { k: number }) => b.k - a.k
          : (a: { k: number }, b: { k: number }) => a.k - b.k;
        let turns = 0;
        const got = await sortInSteps(
          items,
          compare,
          () => {
            turns++;
            return Promise.resolve();
          },
          16,
          40,
        );
        assertEquals(got, items.slice().sort(compare), `${n} items, ${ties} keys`);
        assertEquals(turns, turnsToSort(n, 16, 40), `${n} items`);
      }
    }
  }
  assertEquals(turnsToSort(16, 16, 40), 0);
  // two runs sorted, one turn between them, then one merge pass of 17 items in one turn
  assertEquals(turnsToSort(17, 16, 40), 2);
});

Deno.test("sort in steps: a turn that throws stops the sort; the input is left as it was", async () => {
  const items = Array.from({ length: 100 }, (_, i) => 100 - i);
  let turns = 0;
  await assertRejects(
    () =>
      sortInSteps(
        items,
        (a, b) => a - b,
        () => {
          if (++turns === 3) return Promise.reject(new Error("gone"));
          return Promise.resolve();
        },
        16,
        40,
      ),
    Error,
    "gone",
  );
  assertEquals(turns, 3);
  assertEquals(items, Array.from({ length: 100 }, (_, i) => 100 - i));
});
