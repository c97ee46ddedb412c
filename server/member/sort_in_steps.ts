/**
 * A stable sort cut into steps, the event loop let go in between: for the kvs of a long range chosen by
 * a revision, the version or the value, which sorted in one go held every other client of the member
 * for the whole sort (7-20 ms for 63,000 kvs here, more with a comparator of values).
 *
 * Runs of {@link SORT_STEP} items are sorted one per turn, then merged pairwise, at most
 * {@link MERGE_STEP} items a turn. The merge takes the left run's item on a tie, so equal items keep
 * their order: the result is the same as `Array.prototype.sort` with the same comparator.
 *
 * @module
 */

/** Items sorted in one turn: a run, or the whole list when it is no longer. */
export const SORT_STEP = 4096;
/** Items a merge moves in one turn. */
export const MERGE_STEP = 16_384;

/** How many times {@link sortInSteps} lets the event loop go for `n` items. */
export function turnsToSort(n: number, step = SORT_STEP, mergeStep = MERGE_STEP): number {
  if (n <= step) return 0;
  const runs = Math.ceil(n / step);
  const passes = Math.ceil(Math.log2(runs));
  return runs + passes * Math.ceil(n / mergeStep) - 1;
}

/**
 * `items` sorted by `compare`, stably, into a new array; `nextTurn` is awaited between steps (it may
 * throw to stop the sort). Up to `step` items are sorted in one go, without a turn.
 */
export async function sortInSteps<T>(
  items: readonly T[],
  compare: (a: T, b: T) => number,
  nextTurn: () => Promise<void>,
  step = SORT_STEP,
  mergeStep = MERGE_STEP,
): Promise<T[]> {
  const n = items.length;
  if (n <= step) return items.slice().sort(compare);
  let from: T[] = new Array(n);
  for (let lo = 0; lo < n; lo += step) {
    if (lo > 0) await nextTurn();
    const run = items.slice(lo, lo + step).sort(compare);
    for (let i = 0; i < run.length; i++) from[lo + i] = run[i];
  }
  let to: T[] = new Array(n);
  for (let width = step; width < n; width *= 2) {
    let budget = 0;
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo;
      let j = mid;
      for (let k = lo; k < hi; k++) {
        if (budget === 0) {
          await nextTurn();
          budget = mergeStep;
        }
        budget--;
        to[k] = j >= hi || (i < mid && compare(from[i], from[j]) <= 0) ? from[i++] : from[j++];
      }
    }
    [from, to] = [to, from];
  }
  return from;
}
