/**
 * Small helpers shared by the Raft modules: message construction, entry sizes, state comparisons.
 *
 * @module
 */
import {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  NONE,
  type Snapshot,
} from "./types.ts";

/** A sentinel for "no limit" on byte sizes. */
export const NO_LIMIT = Number.MAX_SAFE_INTEGER;

/** Builds a message with every field defaulted; `fields` overrides. */
export function makeMessage(fields: Partial<Message> & { type: MessageType }): Message {
  return {
    to: NONE,
    from: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: EMPTY_BYTES,
    ...fields,
  };
}

/** A shared empty byte array (never written to). */
export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/** An approximation of an entry's encoded size, used for batching limits. */
export function entrySize(e: Entry): number {
  return e.data.length + 12;
}

/**
 * Returns the longest prefix of `ents` whose total size is at most `maxSize`, but never fewer than one
 * entry when `ents` is not empty.
 */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0 || maxSize >= NO_LIMIT) return ents;
  let size = entrySize(ents[0]);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]);
    if (size > maxSize) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

/** An empty hard state (term 0, no vote, commit 0). */
export function emptyHardState(): HardState {
  return { term: 0, vote: NONE, commit: 0 };
}

/** Whether two hard states are equal. */
export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** Whether a hard state is the empty one. */
export function isEmptyHardState(hs: HardState): boolean {
  return hardStateEqual(hs, emptyHardState());
}

/** An empty configuration. */
export function emptyConfState(): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

/** An empty snapshot (index 0). */
export function emptySnapshot(): Snapshot {
  return { metadata: { index: 0, term: 0, confState: emptyConfState() }, data: EMPTY_BYTES };
}

/** Whether a message type is generated only locally and must never arrive from the network. */
export function isLocalMessage(t: MessageType): boolean {
  return t === MessageType.Hup || t === MessageType.Beat || t === MessageType.Unreachable ||
    t === MessageType.SnapStatus || t === MessageType.CheckQuorum;
}

/** Whether a message type is a response to another message. */
export function isResponseMessage(t: MessageType): boolean {
  return t === MessageType.AppResp || t === MessageType.VoteResp || t === MessageType.HeartbeatResp ||
    t === MessageType.Unreachable || t === MessageType.PreVoteResp;
}

/** The response type that answers a vote request type. */
export function voteResponseType(t: MessageType): MessageType {
  if (t === MessageType.Vote) return MessageType.VoteResp;
  if (t === MessageType.PreVote) return MessageType.PreVoteResp;
  throw new Error(`not a vote message: ${MessageType[t]}`);
}

/** Compares two node IDs for sorting. */
function compareIds(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sorted copy of a set of node IDs. */
export function sortedIds(ids: Iterable<bigint>): bigint[] {
  return [...ids].sort(compareIds);
}

/** Whether an entry carries a configuration change. */
export function isConfChangeEntry(e: Entry): boolean {
  return e.type === EntryType.ConfChange || e.type === EntryType.ConfChangeV2;
}

/** A logger that discards everything. */
export const SILENT_LOGGER: RaftLogger = {
  debug(): void {},
  info(): void {},
  warn(): void {},
};

/** The logging surface the Raft core uses. */
export interface RaftLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}
