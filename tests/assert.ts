/**
 * The project's assertions for tests, on top of node:assert (the standard library's @std/assert is not
 * reachable). Every test imports these; helpers of a room build on them rather than defining their own.
 *
 * Equality is node's strict deep equality: Maps and Sets by their entries, bigints by value (and never
 * equal to numbers), typed arrays by type and bytes, Dates by time, prototypes compared, and a property
 * set to `undefined` differs from a missing one.
 *
 * @module
 */
import nodeAssert from "node:assert/strict";

/** Throws unless `cond` is truthy. */
export function assert(cond: unknown, message?: string): asserts cond {
  nodeAssert.ok(cond, message ?? "assertion failed");
}

/** Throws unless `actual` and `expected` are strictly deeply equal (see the module doc). */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  if (message === undefined) nodeAssert.deepStrictEqual(actual, expected);
  else nodeAssert.deepStrictEqual(actual, expected, message);
}

/** Throws if `actual` and `expected` are strictly deeply equal. */
export function assertNotEquals<T>(actual: T, expected: T, message?: string): void {
  if (message === undefined) nodeAssert.notDeepStrictEqual(actual, expected);
  else nodeAssert.notDeepStrictEqual(actual, expected, message);
}

/** Throws unless `actual` matches `re`. */
export function assertMatch(actual: string, re: RegExp, message?: string): void {
  if (message === undefined) nodeAssert.match(actual, re);
  else nodeAssert.match(actual, re, message);
}

/**
 * Throws unless `fn` throws; the error must be an instance of `cls` and its message contain `includes`,
 * when given. Returns the error.
 */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  cls?: new (...a: never[]) => E,
  includes?: string,
): E {
  try {
    fn();
  } catch (err) {
    if (cls) nodeAssert.ok(err instanceof cls, `expected ${cls.name}, got ${err}`);
    if (includes) {
      nodeAssert.ok(
        String((err as Error).message).includes(includes),
        `"${(err as Error).message}" lacks "${includes}"`,
      );
    }
    return err as E;
  }
  throw new nodeAssert.AssertionError({ message: "expected the function to throw" });
}

/** Like {@link assertThrows}, for a promise that must reject. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  cls?: new (...a: never[]) => Error,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    if (cls) nodeAssert.ok(err instanceof cls, `expected ${cls.name}, got ${err}`);
    if (includes) {
      nodeAssert.ok(
        String((err as Error).message).includes(includes),
        `"${(err as Error).message}" lacks "${includes}"`,
      );
    }
    return err as Error;
  }
  throw new nodeAssert.AssertionError({ message: "expected the promise to reject" });
}
