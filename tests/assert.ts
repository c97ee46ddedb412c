/**
 * Assertions for tests, on top of node:assert (the standard library's @std/assert is not reachable).
 *
 * @module
 */
import nodeAssert from "node:assert/strict";

export function assert(cond: unknown, message?: string): asserts cond {
  nodeAssert.ok(cond, message ?? "assertion failed");
}

export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  if (message === undefined) nodeAssert.deepStrictEqual(actual, expected);
  else nodeAssert.deepStrictEqual(actual, expected, message);
}

export function assertNotEquals<T>(actual: T, expected: T, message?: string): void {
  if (message === undefined) nodeAssert.notDeepStrictEqual(actual, expected);
  else nodeAssert.notDeepStrictEqual(actual, expected, message);
}

export function assertMatch(actual: string, re: RegExp, message?: string): void {
  if (message === undefined) nodeAssert.match(actual, re);
  else nodeAssert.match(actual, re, message);
}

export function assertThrows(
  fn: () => unknown,
  cls?: new (...a: never[]) => Error,
  includes?: string,
): Error {
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
    return err as Error;
  }
  throw new nodeAssert.AssertionError({ message: "expected the function to throw" });
}

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
