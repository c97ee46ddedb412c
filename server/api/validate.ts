/**
 * Request checks done before a request is proposed, in the order etcd's v3 API does them, so that a bad
 * request gets the same error as from etcd and never reaches the log.
 *
 * @module
 */
import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from "../pb/rpc.ts";
import { Errors } from "../errors.ts";

const MAX_SORT_ORDER = 2; // NONE, ASCEND, DESCEND
const MAX_SORT_TARGET = 4; // KEY, VERSION, CREATE, MOD, VALUE

export function checkRangeRequest(r: RangeRequest): void {
  if (r.key.length === 0) throw Errors.emptyKey();
  if (r.sortOrder < 0 || r.sortOrder > MAX_SORT_ORDER) throw Errors.invalidSortOption();
  if (r.sortTarget < 0 || r.sortTarget > MAX_SORT_TARGET) throw Errors.invalidSortOption();
}

export function checkPutRequest(r: PutRequest): void {
  if (r.key.length === 0) throw Errors.emptyKey();
  if (r.ignoreValue && r.value.length !== 0) throw Errors.valueProvided();
  if (r.ignoreLease && r.lease !== 0n) throw Errors.leaseProvided();
}

export function checkDeleteRequest(r: DeleteRangeRequest): void {
  if (r.key.length === 0) throw Errors.emptyKey();
}

/** The whole txn check: sizes, keys, nested ops, then overlapping writes in each branch. */
export function checkTxnRequest(r: TxnRequest, maxTxnOps: number): void {
  checkTxnShape(r, maxTxnOps);
  checkIntervals(r.success);
  checkIntervals(r.failure);
}

function checkTxnShape(r: TxnRequest, maxTxnOps: number): void {
  const opc = Math.max(r.compare.length, r.success.length, r.failure.length);
  if (opc > maxTxnOps) throw Errors.tooManyOps();
  for (const c of r.compare) if (c.key.length === 0) throw Errors.emptyKey();
  for (const op of r.success) checkRequestOp(op, maxTxnOps - opc);
  for (const op of r.failure) checkRequestOp(op, maxTxnOps - opc);
}

function checkRequestOp(op: RequestOp, maxTxnOps: number): void {
  if (op.requestRange) checkRangeRequest(op.requestRange);
  else if (op.requestPut) checkPutRequest(op.requestPut);
  else if (op.requestDeleteRange) checkDeleteRequest(op.requestDeleteRange);
  else if (op.requestTxn) checkTxnShape(op.requestTxn, maxTxnOps);
  else throw Errors.keyNotFound();
}

/** A deleted interval [start, end) of latin1 keys; end undefined means a single key. */
interface Interval {
  start: string;
  end: string | undefined;
}

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

function intersects(dels: Interval[], key: string): boolean {
  for (const d of dels) {
    if (d.end === undefined) {
      if (d.start === key) return true;
    } else if (key >= d.start && key < d.end) return true;
  }
  return false;
}

/**
 * Puts and deletes of one branch must not touch the same key, looking through nested txns; the two
 * branches of a nested txn may put the same key since only one of them runs.
 */
function checkIntervals(ops: RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of ops) {
    const d = op.requestDeleteRange;
    if (!d) continue;
    // as in etcd, a range end of "\0" is taken literally here, so a from-key delete overlaps no put
    dels.push({ start: latin1(d.key), end: d.rangeEnd.length === 0 ? undefined : latin1(d.rangeEnd) });
  }
  const puts = new Set<string>();
  for (const op of ops) {
    const t = op.requestTxn;
    if (!t) continue;
    const then = checkIntervals(t.success);
    const otherwise = checkIntervals(t.failure);
    for (const k of then.puts) {
      if (puts.has(k) || intersects(dels, k)) throw Errors.duplicateKey();
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      if (puts.has(k) && !then.puts.has(k)) throw Errors.duplicateKey();
      if (intersects(dels, k)) throw Errors.duplicateKey();
      puts.add(k);
    }
    dels.push(...then.dels, ...otherwise.dels);
  }
  for (const op of ops) {
    const p = op.requestPut;
    if (!p) continue;
    const k = latin1(p.key);
    if (puts.has(k) || intersects(dels, k)) throw Errors.duplicateKey();
    puts.add(k);
  }
  return { puts, dels };
}
