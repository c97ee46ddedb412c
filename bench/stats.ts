/**
 * Order statistics shared by the bench tools.
 *
 * @module
 */

/** The q-quantile (0..1) of `sorted` (ascending), nearest rank; NaN when empty. */
export function quantileOfSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** The q-quantile (0..1) of `xs`, in any order, nearest rank; NaN when empty. */
export function quantile(xs: readonly number[], q: number): number {
  return quantileOfSorted([...xs].sort((a, b) => a - b), q);
}
