/**
 * The MVCC key space of etcd-ts: revisions, key history, compaction, history reads for watchers, and
 * the snapshot encoding of it all.
 *
 * @module
 */
export {
  ErrCompacted,
  ErrFutureRev,
  ErrSnapshotCorrupt,
  ErrTxnState,
  type HashKVResult,
  type KeyValue,
  type MvccEvent,
  MvccStore,
  type MvccStoreOptions,
  type RangeOptions,
  type RangeResult,
  type TxnEnd,
  type WriteTxn,
} from "./store.ts";
export { compareBytes, isFromKey, keyInRange, latin1, latin1Bytes, prefixRangeEnd } from "./bytes.ts";
export { crc32c } from "../crc32c.ts";
