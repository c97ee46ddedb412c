/**
 * What a transaction does, judged from its operations: whether it only reads (then it is served without
 * Raft), and whether all its reads are serializable (then without a ReadIndex round either).
 *
 * @module
 */
import type { TxnRequest } from "../pb/rpc.ts";

/** No put or delete in any branch, nested transactions included. */
export function isReadOnlyTxn(r: TxnRequest): boolean {
  for (const ops of [r.success, r.failure]) {
    for (const op of ops) {
      if (op.requestPut || op.requestDeleteRange) return false;
      if (op.requestTxn && !isReadOnlyTxn(op.requestTxn)) return false;
    }
  }
  return true;
}

/** Every range in any branch is serializable. */
export function isSerializableTxn(r: TxnRequest): boolean {
  for (const ops of [r.success, r.failure]) {
    for (const op of ops) {
      if (op.requestRange && !op.requestRange.serializable) return false;
      if (op.requestTxn && !isSerializableTxn(op.requestTxn)) return false;
    }
  }
  return true;
}
