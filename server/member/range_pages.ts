/**
 * Long range reads answered page by page, so that one client reading many keys does not hold every other
 * client for the whole read.
 *
 * A member serves everything on one thread. `etcdctl get "" --prefix` over 63,000 keys of 1 KiB took the
 * store about 400 ms to copy out and the codec 700 ms to encode, in one turn: every other request waited
 * 1.2 s. Read here, such a range goes in pages of about {@link PAGE_BYTES} at the revision of its first
 * page, each page encoded at once and the event loop let go in between. The answer is the same message:
 * the header, every kv in key order, `more` and `count`, handed to the transport in parts (joining them
 * would be one more copy of the whole answer, in one turn).
 *
 * Only what the store returns in key order without filters is paged (sorted by key or not at all, either
 * way; no revision filters, not `count_only`); a range whose first page holds all of it is answered in
 * one go as before. Between two pages the state may move on. Writes do not matter (the pages read at one
 * revision); a compaction past that revision, or a snapshot from the leader that replaces the store,
 * does: the range is then read again in one go, at the newest revision (or refused as compacted, when the
 * client asked for that revision itself).
 *
 * @module
 */
import type { KeyValue, MvccStore } from "../../storage/mvcc/store.ts";
import {
  encodeRangeResponse,
  type RangeRequest,
  type RangeResponse,
  type ResponseHeader,
  SortOrder,
  SortTarget,
} from "../pb/rpc.ts";
import { MessageParts } from "../transport/grpc.ts";

/** For the parts encoded without the header (the codec leaves out an absent one). */
const NO_HEADER = undefined as unknown as ResponseHeader;

/** Kvs of the first page: a range of at most this many is read in one go. */
export const FIRST_PAGE_KVS = 256;
/** Bytes of keys and values aimed at per later page. */
export const PAGE_BYTES = 128 * 1024;

/** What a paged range reads from and answers with. */
export interface RangePagesSource {
  /** The store now (a snapshot from the leader may replace it between two pages). */
  store(): MvccStore;
  /** The range read in one go, as the applier answers it (errors in the API's terms). */
  rangeAtOnce(r: RangeRequest): RangeResponse;
  /** The response header at `revision`. */
  header(revision: number): ResponseHeader;
  /** Resolves on a later turn of the event loop, after pending I/O. */
  nextTurn(): Promise<void>;
}

/** Whether the store hands out `r`'s kvs as the answer lists them: in key order either way, unfiltered. */
export function pageable(r: RangeRequest): boolean {
  if (r.countOnly || r.rangeEnd.length === 0) return false;
  if (
    r.minModRevision !== 0 || r.maxModRevision !== 0 || r.minCreateRevision !== 0 || r.maxCreateRevision !== 0
  ) {
    return false;
  }
  return r.sortTarget === SortTarget.KEY;
}

/**
 * The encoded RangeResponse of `r`, read page by page when it is long. `call`'s signal, read only once a
 * range turns out long, stops the pages when the client is gone.
 */
export async function encodedRange(
  src: RangePagesSource,
  r: RangeRequest,
  call?: { readonly signal: AbortSignal },
): Promise<Uint8Array | MessageParts> {
  if (chosenByKeys(r)) return await chosenRange(src, r, call);
  if (!pageable(r) || (r.limit > 0 && r.limit <= FIRST_PAGE_KVS)) {
    return encodeRangeResponse(src.rangeAtOnce(r));
  }
  const store = src.store();
  const first = src.rangeAtOnce({ ...r, limit: FIRST_PAGE_KVS });
  // all of it: the same answer as with the client's own limit, which is above what there is
  if (!first.more) return encodeRangeResponse(first);
  // every later page reads at the revision of the first one
  const rev = r.revision > 0 ? r.revision : first.header!.revision;
  const descending = r.sortOrder === SortOrder.DESCEND;
  const wanted = r.limit > 0 ? Math.min(r.limit, first.count) : first.count;
  const pages: Uint8Array[] = [encodeKvs(first.kvs)];
  let sent = first.kvs.length;
  let last = first.kvs[first.kvs.length - 1];
  let perKv = Math.max(1, pageBytes(first.kvs) / first.kvs.length);
  // a client gone (cancelled, deadline passed, connection closed) stops the pages: nobody reads them
  const signal = call?.signal;
  while (sent < wanted) {
    await src.nextTurn();
    signal?.throwIfAborted();
    if (src.store() !== store || store.compactRevision > rev) return encodeRangeResponse(src.rangeAtOnce(r));
    const n = Math.min(wanted - sent, Math.max(16, Math.floor(PAGE_BYTES / perKv)));
    const options = { revision: rev, limit: n, keysOnly: r.keysOnly, noCount: true, descending };
    // the next keys after the last one sent: above it, or below it when descending
    const page = descending
      ? store.range(r.key, last.key, options).kvs
      : store.range(after(last.key), r.rangeEnd, options).kvs;
    if (page.length === 0) break;
    pages.push(encodeKvs(page));
    sent += page.length;
    last = page[page.length - 1];
    perKv = Math.max(1, pageBytes(page) / page.length);
  }
  const more = r.limit > 0 && first.count > r.limit;
  return inParts(src, first.header!.revision, pages, more, first.count);
}

/**
 * Whether `r`'s kvs are chosen by their keys, revisions and versions alone, the store not handing them
 * out in key order: sorted by a revision or the version, or filtered by revision (not sorted by value,
 * not count-only).
 */
export function chosenByKeys(r: RangeRequest): boolean {
  if (r.countOnly || r.rangeEnd.length === 0 || r.sortTarget === SortTarget.VALUE) return false;
  return !pageable(r);
}

/**
 * A range whose kvs are chosen without their values ({@link chosenByKeys}): they are chosen in one go
 * from a read without values, then their values are read and encoded page by page at that read's
 * revision, as {@link encodedRange} pages a range in key order.
 */
async function chosenRange(
  src: RangePagesSource,
  r: RangeRequest,
  call?: { readonly signal: AbortSignal },
): Promise<Uint8Array | MessageParts> {
  const store = src.store();
  const chosen = src.rangeAtOnce({ ...r, keysOnly: true });
  const rev = r.revision > 0 ? r.revision : chosen.header!.revision;
  const keys = chosen.kvs;
  const withValue = (kv: KeyValue): KeyValue => store.range(kv.key, undefined, { revision: rev }).kvs[0];
  if (r.keysOnly) return encodeRangeResponse(chosen);
  if (keys.length <= FIRST_PAGE_KVS) return encodeRangeResponse({ ...chosen, kvs: keys.map(withValue) });
  const pages: Uint8Array[] = [];
  const signal = call?.signal;
  for (let at = 0; at < keys.length;) {
    if (at > 0) {
      await src.nextTurn();
      signal?.throwIfAborted();
      if (src.store() !== store || store.compactRevision > rev) {
        return encodeRangeResponse(src.rangeAtOnce(r));
      }
    }
    // values of any size, in any order: a page ends at the bytes aimed at
    const page: KeyValue[] = [];
    for (let bytes = 0; at < keys.length && bytes < PAGE_BYTES; at++) {
      const kv = withValue(keys[at]);
      page.push(kv);
      bytes += kv.key.length + kv.value.length;
    }
    pages.push(encodeKvs(page));
  }
  return inParts(src, chosen.header!.revision, pages, chosen.more, chosen.count);
}

/** The header, the pages of kvs, then `more` and `count`: one RangeResponse in parts. */
function inParts(
  src: RangePagesSource,
  revision: number,
  pages: Uint8Array[],
  more: boolean,
  count: number,
): MessageParts {
  const head = encodeRangeResponse({ header: src.header(revision), kvs: [], more: false, count: 0 });
  const tail = encodeRangeResponse({ header: NO_HEADER, kvs: [], more, count });
  const parts = [head, ...pages, tail];
  let total = 0;
  for (const p of parts) total += p.length;
  return new MessageParts(parts, total);
}

/** The kvs as RangeResponse's repeated `kvs` field, and nothing else. */
function encodeKvs(kvs: KeyValue[]): Uint8Array {
  return encodeRangeResponse({ header: NO_HEADER, kvs, more: false, count: 0 });
}

function pageBytes(kvs: KeyValue[]): number {
  let n = 0;
  for (const kv of kvs) n += kv.key.length + kv.value.length;
  return n;
}

/** The smallest key after `key`. */
function after(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.length + 1);
  next.set(key);
  return next;
}
