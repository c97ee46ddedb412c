/**
 * Test helpers for the MVCC store, on `tests/assert.ts` and the seeded generator of
 * `tests/sim/prng.ts`.
 *
 * @module
 */
import { Prng } from "../../tests/sim/prng.ts";
import type { KeyValue, MvccStore, WriteTxn } from "./store.ts";
import { waitUntil } from "../../tests/helpers.ts";

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

/** Floats in [0, 1) from the project's seeded generator: the same seed replays the same run. */
export function prng(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.float();
}

/**
 * The descriptors of this process open on `path` (once unlinked, their links read "<path> (deleted)"), as
 * /proc/self/fd paths. Only that file counts, whatever else the process (other test files run in
 * parallel) opens and closes meanwhile.
 */
export function descriptorsOn(path: string): string[] {
  const found: string[] = [];
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    let target: string;
    try {
      target = Deno.readLinkSync(`/proc/self/fd/${entry.name}`);
    } catch {
      continue; // closed since the listing, by someone else
    }
    if (target === path || target === `${path} (deleted)`) found.push(`/proc/self/fd/${entry.name}`);
  }
  return found;
}

/** Bytes of the files opened at `path` that this process holds open (a history file's segments). */
export function heldFileBytes(path: string): number {
  let total = 0;
  for (const fd of descriptorsOn(path)) total += Deno.statSync(fd).size;
  return total;
}

/**
 * Waits until the files opened at `path` hold at most `bytes`, and every one of them emptied is closed (a
 * store gives freed segments back in the background); returns what they hold, or fails after `timeoutMs`.
 */
export async function heldFileBytesFall(path: string, bytes: number, timeoutMs = 2000): Promise<number> {
  let sizes: number[] = [];
  const held = () => sizes.reduce((a, n) => a + n, 0);
  await waitUntil(
    () => {
      sizes = descriptorsOn(path).map((fd) => Deno.statSync(fd).size);
      // an emptied segment still open: its close is under way (the live segment may be empty too)
      return held() <= bytes && sizes.filter((n) => n === 0).length <= 1;
    },
    timeoutMs,
    () => `${held()} bytes in ${sizes.length} files still held at ${path}`,
    5,
  );
  return held();
}
