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
 * What the store returns in key order without filters is paged as it is read (sorted by key or not at
 * all, either way; no revision filters). A range sorted by anything else, or filtered, is chosen from the
 * whole range: that is read page by page first, without values unless they are the order, then sorted in
 * steps (`sort_in_steps.ts`), the kvs chosen from it in one go and encoded page by page; unless a few are
 * sorted by a revision or the version, which the store picks in one scan. `count_only` reads no kvs and
 * is answered in one go, as is a range whose first page holds all of it.
 *
 * Between two pages the state may move on. Writes do not matter (the pages read at one revision); a
 * compaction past that revision, or a snapshot from the leader that replaces the store, does: the range
 * is then read again in one go, at the newest revision (or refused as compacted, when the client asked
 * for that revision itself).
 *
 * @module
 */
import type { KeyValue, MvccStore } from "../../storage/mvcc/store.ts";
import { executeRange, isFiltered, listedOrder, type RangeReader } from "./apply.ts";
import { sortInSteps } from "./sort_in_steps.ts";
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
/**
 * Kvs per later page at most: keys alone are short, and a page of keys without values cut by bytes alone
 * held 13,000 of them (4,096 took the thread 7 ms).
 */
export const MAX_PAGE_KVS = 1024;

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
  if (r.countOnly || r.rangeEnd.length === 0 || isFiltered(r)) return false;
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
  if (chosen(r)) return await chosenRange(src, r, call);
  if (!pageable(r) || (r.limit > 0 && r.limit <= FIRST_PAGE_KVS)) {
    return encodeRangeResponse(src.rangeAtOnce(r));
  }
  const store = src.store();
  const first = src.rangeAtOnce({ ...r, limit: FIRST_PAGE_KVS });
  // all of it: the same answer as with the client's own limit, which is above what there is
  if (!first.more) return encodeRangeResponse(first);
  // every later page reads at the revision of the first one
  const rev = r.revision > 0 ? r.revision : first.header!.revision;
  const wanted = r.limit > 0 ? Math.min(r.limit, first.count) : first.count;
  const pages: Uint8Array[] = [encodeKvs(first.kvs)];
  const read = await readOn(src, store, r, first.kvs, rev, {
    wanted,
    keysOnly: r.keysOnly,
    descending: r.sortOrder === SortOrder.DESCEND,
    signal: call?.signal,
  }, (page) => pages.push(encodeKvs(page)));
  if (!read) return encodeRangeResponse(src.rangeAtOnce(r));
  const more = r.limit > 0 && first.count > r.limit;
  return inParts(src, first.header!.revision, pages, more, first.count);
}

/**
 * Reads on after the kvs of a first page (`first`, not empty) page by page at `rev`, in the same order,
 * until `wanted` kvs are read in all, handing each page to `take`. The event loop goes between two pages;
 * a client gone (cancelled, deadline passed, connection closed) stops them, since nobody reads them.
 * False when `store`, the store of the first page, was compacted past `rev` or replaced in between.
 */
async function readOn(
  src: RangePagesSource,
  store: MvccStore,
  r: RangeRequest,
  first: KeyValue[],
  rev: number,
  how: { wanted: number; keysOnly: boolean; descending: boolean; signal?: AbortSignal },
  take: (page: KeyValue[]) => void,
): Promise<boolean> {
  let read = first.length;
  let last = first[first.length - 1];
  let perKv = Math.max(1, pageBytes(first) / first.length);
  while (read < how.wanted) {
    await src.nextTurn();
    how.signal?.throwIfAborted();
    if (moved(src, store, rev)) return false;
    const n = Math.min(how.wanted - read, MAX_PAGE_KVS, Math.max(16, Math.floor(PAGE_BYTES / perKv)));
    const options = {
      revision: rev,
      limit: n,
      keysOnly: how.keysOnly,
      noCount: true,
      descending: how.descending,
    };
    // the next keys after the last one read: above it, or below it when descending
    const page = how.descending
      ? store.range(r.key, last.key, options).kvs
      : store.range(after(last.key), r.rangeEnd, options).kvs;
    if (page.length === 0) break;
    take(page);
    read += page.length;
    last = page[page.length - 1];
    perKv = Math.max(1, pageBytes(page) / page.length);
  }
  return true;
}

/** Whether `store`, read at `rev` before, was since compacted past `rev` or replaced by a snapshot. */
function moved(src: RangePagesSource, store: MvccStore, rev: number): boolean {
  return src.store() !== store || store.compactRevision > rev;
}

/**
 * Whether `r`'s kvs are chosen from the whole range, the store not handing them out as the answer lists
 * them: sorted by a revision, the version or the value, or filtered by revision (not count-only, which
 * reads no kvs).
 */
export function chosen(r: RangeRequest): boolean {
  return !r.countOnly && r.rangeEnd.length > 0 && !pageable(r) && !pickedInOneScan(r);
}

/**
 * Whether the store picks `r`'s kvs itself as it scans the range's keys, copying out no others: a few
 * (a limit up to {@link FIRST_PAGE_KVS}), sorted by a revision or the version, unfiltered. That scan is
 * one turn, 16-19 ms for 63,000 keys here: less than reading them all out in pages to choose from
 * (`--sort-by=MODIFY --limit=1` held other clients up to 119 ms that way).
 */
function pickedInOneScan(r: RangeRequest): boolean {
  return r.limit > 0 && r.limit <= FIRST_PAGE_KVS && !isFiltered(r) && r.sortTarget !== SortTarget.KEY &&
    r.sortTarget !== SortTarget.VALUE;
}

/**
 * A range whose kvs are chosen from the whole range ({@link chosen}). The whole range is read page by
 * page at one revision, in key order, without values unless they are sorted by them, and sorted in steps
 * into the order the answer lists them in. The kvs are chosen from it in one go, by {@link executeRange}
 * itself, so the choice is the same as the store's; then they are encoded page by page, their values read
 * at that revision where they were left out.
 */
async function chosenRange(
  src: RangePagesSource,
  r: RangeRequest,
  call?: { readonly signal: AbortSignal },
): Promise<Uint8Array | MessageParts> {
  const store = src.store();
  const byValue = r.sortTarget === SortTarget.VALUE;
  const whole: RangeRequest = {
    ...r,
    limit: FIRST_PAGE_KVS,
    keysOnly: !byValue,
    sortOrder: SortOrder.NONE,
    sortTarget: SortTarget.KEY,
    minModRevision: 0,
    maxModRevision: 0,
    minCreateRevision: 0,
    maxCreateRevision: 0,
  };
  const first = src.rangeAtOnce(whole);
  if (!first.more) return encodeRangeResponse(src.rangeAtOnce(r));
  const rev = r.revision > 0 ? r.revision : first.header!.revision;
  const signal = call?.signal;
  const all = first.kvs;
  const read = await readOn(src, store, r, first.kvs, rev, {
    wanted: first.count,
    keysOnly: !byValue,
    descending: false,
    signal,
  }, (page) => {
    for (const kv of page) all.push(kv);
  });
  if (!read) return encodeRangeResponse(src.rangeAtOnce(r));
  // sorted here in steps, so that the choice's own sort finds them in order; but unsorted and unfiltered,
  // a limited range is the first kvs in key order, sorted among themselves
  const order = r.limit > 0 && r.sortOrder === SortOrder.NONE && !isFiltered(r) ? undefined : listedOrder(r);
  let sorted: KeyValue[] | undefined;
  if (order !== undefined) {
    sorted = await sortInSteps(all, order, async () => {
      await src.nextTurn();
      signal?.throwIfAborted();
    });
    if (moved(src, store, rev)) return encodeRangeResponse(src.rangeAtOnce(r));
  }
  const revision = first.header!.revision;
  const reader = readerOf(all, sorted, rev, r.key);
  const choice = executeRange(reader, byValue ? r : { ...r, keysOnly: true }, revision);
  const kvs = choice.kvs;
  const valuesLeftOut = !byValue && !r.keysOnly;
  const withValue = (kv: KeyValue): KeyValue =>
    valuesLeftOut ? store.range(kv.key, undefined, { revision: rev }).kvs[0] : kv;
  if (kvs.length <= FIRST_PAGE_KVS) {
    return encodeRangeResponse({ ...choice, header: src.header(revision), kvs: kvs.map(withValue) });
  }
  const pages: Uint8Array[] = [];
  for (let at = 0; at < kvs.length;) {
    if (at > 0) {
      await src.nextTurn();
      signal?.throwIfAborted();
      if (moved(src, store, rev)) return encodeRangeResponse(src.rangeAtOnce(r));
    }
    // values of any size, in any order: a page ends at the bytes aimed at
    const page: KeyValue[] = [];
    for (let bytes = 0; at < kvs.length && bytes < PAGE_BYTES && page.length < MAX_PAGE_KVS; at++) {
      const kv = withValue(kvs[at]);
      page.push(kv);
      bytes += kv.key.length + kv.value.length;
    }
    pages.push(encodeKvs(page));
  }
  return inParts(src, revision, pages, choice.more, choice.count);
}

/**
 * The store's range read over `all`, every kv of one range at `revision` in key order, read before: for
 * {@link executeRange} to choose from. It reads that range alone, whole (its key is `key`, the very
 * array), with the options `executeRange` passes for a chosen range: a limit, and an order by a revision
 * or the version. `sorted`, where given, is `all` in the order {@link listedOrder} gives the range (keys in
 * order among equals), sorted before: handed out instead of `all`, it is what either sort makes of it.
 */
function readerOf(
  all: KeyValue[],
  sorted: KeyValue[] | undefined,
  revision: number,
  key: Uint8Array,
): RangeReader {
  return {
    range(from, _rangeEnd, o) {
      if (from !== key || o?.countOnly || o?.descending) {
        throw new Error("a range read before answers only itself, whole, in key order or sorted");
      }
      if (o?.sortBy !== undefined && sorted === undefined) throw new Error("a sorted range was not sorted");
      let kvs = sorted ?? all;
      if (o?.limit !== undefined && o.limit > 0 && kvs.length > o.limit) kvs = kvs.slice(0, o.limit);
      return { kvs, count: all.length, revision };
    },
  };
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
