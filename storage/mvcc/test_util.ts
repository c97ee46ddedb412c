/**
 * Test helpers for the MVCC store (no dependencies: `@std/assert` is not available here).
 *
 * @module
 */
import type { KeyValue, MvccStore, WriteTxn } from "./store.ts";

const te = new TextEncoder();
const td = new TextDecoder();

/** UTF-8 bytes of a string. */
export function b(s: string): Uint8Array {
  return te.encode(s);
}

/** A string from UTF-8 bytes. */
export function s(bytes: Uint8Array): string {
  return td.decode(bytes);
}

/** A comparable plain form of a KeyValue (strings for bytes). */
export interface PlainKv {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: bigint;
}

/** Plain form of a KeyValue, for deep equality checks. */
export function plain(kv: KeyValue): PlainKv {
  return {
    key: s(kv.key),
    value: s(kv.value),
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  };
}

/** Throws unless `cond` holds. */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

function show(v: unknown): string {
  return JSON.stringify(v, (_k, x) => typeof x === "bigint" ? `${x}n` : x instanceof Uint8Array ? [...x] : x);
}

/** Throws unless `actual` and `expected` are structurally equal (JSON-like values, bigints, bytes). */
export function assertEquals(actual: unknown, expected: unknown, msg?: string): void {
  const a = show(actual);
  const e = show(expected);
  if (a !== e) throw new Error(`${msg ? msg + ": " : ""}expected ${e}\n  actual ${a}`);
}

/** Throws unless `fn` throws an error of class `cls` (optionally with `code`). */
export function assertThrows(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  cls: new (...args: any[]) => Error,
  code?: string,
): Error {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof cls)) throw new Error(`expected ${cls.name}, got ${err}`);
    if (code !== undefined && (err as Error & { code?: string }).code !== code) {
      throw new Error(`expected code ${code}, got ${(err as Error & { code?: string }).code}`);
    }
    return err;
  }
  throw new Error(`expected ${cls.name} to be thrown`);
}

/** Runs `fn` in one write transaction and commits it; returns the new revision. */
export function txn(store: MvccStore, fn: (t: WriteTxn) => void): number {
  const t = store.write();
  fn(t);
  return t.end().revision;
}

/** Puts `key` = `value` in its own transaction; returns the new revision. */
export function put(store: MvccStore, key: string, value: string, lease = 0n): number {
  return txn(store, (t) => t.put(b(key), b(value), lease));
}

/** Deletes a key or range in its own transaction; returns the revision afterwards. */
export function del(store: MvccStore, key: string, end?: string): number {
  return txn(store, (t) => t.deleteRange(b(key), end === undefined ? undefined : b(end)));
}

/** Keys and values of a range at `revision`, as "key=value" strings. */
export function dump(store: MvccStore, revision = 0): string[] {
  return store.range(new Uint8Array([0]), new Uint8Array([0]), { revision }).kvs.map((kv) =>
    `${s(kv.key)}=${s(kv.value)}`
  );
}

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
