/**
 * The Raft messages of the peer transport (raftpb of etcd-io/raft) over the plain data types of
 * `raft/types.ts`: Message, Entry, Snapshot, SnapshotMetadata, ConfState, HardState. ConfChange and
 * ConfChangeV2, which travel inside entries, are encoded by `raft/conf_change.ts`.
 *
 * Field numbers follow raftpb/raft.proto (proto2). Node IDs are uint64 and travel as `bigint`; terms
 * and indexes are uint64 on the wire and `number` here (decoding throws if one reaches 2^53). Fields
 * raft/types.ts has no place for (Message.vote and Message.responses) are skipped when decoding.
 * Repeated node IDs are written unpacked, as Go's proto2 code does, and read in either form.
 *
 * Byte fields of decoded messages (Entry.data, Snapshot.data, Message.context) are views into the input
 * buffer (no copy): copy them before keeping them past the life of that buffer, or before it is reused.
 *
 * @module
 */
import type {
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  Snapshot,
  SnapshotMetadata,
} from "../../raft/types.ts";
import { fieldMask, Reader, varintSize32, varintSizeInt64, Writer } from "./wire.ts";

const EMPTY: Uint8Array = new Uint8Array(0);

/** The writer every encode function appends to; encoders never re-enter, so one is enough. */
const W = new Writer(4096);

// ---- Entry ----------------------------------------------------------------------------------------

function sizeEntry(m: Entry): number {
  let n = 0;
  if (m.type) n += 1 + varintSizeInt64(m.type);
  if (m.term) n += 1 + varintSizeInt64(m.term);
  if (m.index) n += 1 + varintSizeInt64(m.index);
  const d = m.data;
  if (d && d.length) n += 1 + varintSize32(d.length) + d.length;
  return n;
}

function writeEntry(w: Writer, m: Entry): void {
  if (m.type) {
    w.uint32(8);
    w.int32(m.type);
  }
  if (m.term) {
    w.uint32(16);
    w.uint64(m.term);
  }
  if (m.index) {
    w.uint32(24);
    w.uint64(m.index);
  }
  const d = m.data;
  if (d && d.length) {
    w.uint32(34);
    w.bytes(d);
  }
}

const ENTRY_FIELDS = fieldMask(1, 2, 3, 4);

function readEntry(r: Reader): Entry {
  let type = 0;
  let term = 0;
  let index = 0;
  let data = EMPTY;
  while (r.pos < r.end) {
    const tag = r.tag();
    switch (tag) {
      case 8:
        type = r.int32();
        break;
      case 16:
        term = r.uint64Number();
        break;
      case 24:
        index = r.uint64Number();
        break;
      case 34:
        data = r.bytes();
        break;
      default:
        r.skipField(tag, ENTRY_FIELDS);
    }
  }
  return { term, index, type, data };
}

/** Encodes a raftpb.Entry. */
export function encodeEntry(m: Entry): Uint8Array {
  W.reset();
  writeEntry(W, m);
  return W.finish();
}

/** Decodes a raftpb.Entry. */
export function decodeEntry(b: Uint8Array): Entry {
  return readEntry(new Reader(b));
}

// ---- ConfState, SnapshotMetadata, Snapshot --------------------------------------------------------

function writeIds(w: Writer, tag: number, ids: NodeId[] | undefined): void {
  if (!ids) return;
  for (let i = 0; i < ids.length; i++) {
    w.uint32(tag);
    w.uint64Big(ids[i]);
  }
}

/** Reads one ID (unpacked) or a packed run of them, depending on the wire type of `tag`. */
function readIds(r: Reader, tag: number, out: NodeId[]): void {
  if ((tag & 7) === 0) {
    out.push(r.uint64Big());
    return;
  }
  const outer = r.enter();
  while (r.pos < r.end) out.push(r.uint64Big());
  r.leave(outer);
}

function writeConfState(w: Writer, m: ConfState): void {
  writeIds(w, 8, m.voters);
  writeIds(w, 16, m.learners);
  writeIds(w, 24, m.votersOutgoing);
  writeIds(w, 32, m.learnersNext);
  if (m.autoLeave) {
    w.uint32(40);
    w.bool(true);
  }
}

const CONF_STATE_FIELDS = fieldMask(1, 2, 3, 4, 5);

function readConfState(r: Reader): ConfState {
  const voters: NodeId[] = [];
  const learners: NodeId[] = [];
  const votersOutgoing: NodeId[] = [];
  const learnersNext: NodeId[] = [];
  let autoLeave = false;
  while (r.pos < r.end) {
    const tag = r.tag();
    switch (tag) {
      case 8:
      case 10:
        readIds(r, tag, voters);
        break;
      case 16:
      case 18:
        readIds(r, tag, learners);
        break;
      case 24:
      case 26:
        readIds(r, tag, votersOutgoing);
        break;
      case 32:
      case 34:
        readIds(r, tag, learnersNext);
        break;
      case 40:
        autoLeave = r.bool();
        break;
      default:
        r.skipField(tag, CONF_STATE_FIELDS);
    }
  }
  return { voters, learners, votersOutgoing, learnersNext, autoLeave };
}

function emptyConfState(): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

/** Encodes a raftpb.ConfState. */
export function encodeConfState(m: ConfState): Uint8Array {
  W.reset();
  writeConfState(W, m);
  return W.finish();
}

/** Decodes a raftpb.ConfState. */
export function decodeConfState(b: Uint8Array): ConfState {
  return readConfState(new Reader(b));
}

function writeSnapshotMetadata(w: Writer, m: SnapshotMetadata): void {
  w.uint32(10);
  const mark = w.beginLength();
  if (m.confState) writeConfState(w, m.confState);
  w.endLength(mark);
  if (m.index) {
    w.uint32(16);
    w.uint64(m.index);
  }
  if (m.term) {
    w.uint32(24);
    w.uint64(m.term);
  }
}

const METADATA_FIELDS = fieldMask(1, 2, 3);

function readSnapshotMetadata(r: Reader): SnapshotMetadata {
  let confState: ConfState | undefined;
  let index = 0;
  let term = 0;
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag === 10) {
      const outer = r.enter();
      confState = readConfState(r);
      r.leave(outer);
    } else if (tag === 16) index = r.uint64Number();
    else if (tag === 24) term = r.uint64Number();
    else r.skipField(tag, METADATA_FIELDS);
  }
  return { index, term, confState: confState ?? emptyConfState() };
}

/** Encodes a raftpb.SnapshotMetadata. */
export function encodeSnapshotMetadata(m: SnapshotMetadata): Uint8Array {
  W.reset();
  writeSnapshotMetadata(W, m);
  return W.finish();
}

/** Decodes a raftpb.SnapshotMetadata. */
export function decodeSnapshotMetadata(b: Uint8Array): SnapshotMetadata {
  return readSnapshotMetadata(new Reader(b));
}

function writeSnapshot(w: Writer, m: Snapshot): void {
  const d = m.data;
  if (d && d.length) {
    w.uint32(10);
    w.bytes(d);
  }
  w.uint32(18);
  const mark = w.beginLength();
  if (m.metadata) writeSnapshotMetadata(w, m.metadata);
  w.endLength(mark);
}

const SNAPSHOT_FIELDS = fieldMask(1, 2);

function readSnapshot(r: Reader): Snapshot {
  let data = EMPTY;
  let metadata: SnapshotMetadata | undefined;
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag === 10) data = r.bytes();
    else if (tag === 18) {
      const outer = r.enter();
      metadata = readSnapshotMetadata(r);
      r.leave(outer);
    } else r.skipField(tag, SNAPSHOT_FIELDS);
  }
  return { metadata: metadata ?? { index: 0, term: 0, confState: emptyConfState() }, data };
}

/** Encodes a raftpb.Snapshot. */
export function encodeSnapshot(m: Snapshot): Uint8Array {
  W.reset();
  writeSnapshot(W, m);
  return W.finish();
}

/** Decodes a raftpb.Snapshot. */
export function decodeSnapshot(b: Uint8Array): Snapshot {
  return readSnapshot(new Reader(b));
}

// ---- Message --------------------------------------------------------------------------------------

function writeMessage(w: Writer, m: Message): void {
  if (m.type) {
    w.uint32(8);
    w.int32(m.type);
  }
  if (m.to) {
    w.uint32(16);
    w.uint64Big(m.to);
  }
  if (m.from) {
    w.uint32(24);
    w.uint64Big(m.from);
  }
  if (m.term) {
    w.uint32(32);
    w.uint64(m.term);
  }
  if (m.logTerm) {
    w.uint32(40);
    w.uint64(m.logTerm);
  }
  if (m.index) {
    w.uint32(48);
    w.uint64(m.index);
  }
  const entries = m.entries;
  if (entries) {
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      w.uint32(58);
      w.uint32(sizeEntry(e));
      writeEntry(w, e);
    }
  }
  if (m.commit) {
    w.uint32(64);
    w.uint64(m.commit);
  }
  if (m.snapshot) {
    w.uint32(74);
    const mark = w.beginLength();
    writeSnapshot(w, m.snapshot);
    w.endLength(mark);
  }
  if (m.reject) {
    w.uint32(80);
    w.bool(true);
  }
  if (m.rejectHint) {
    w.uint32(88);
    w.uint64(m.rejectHint);
  }
  const c = m.context;
  if (c && c.length) {
    w.uint32(98);
    w.bytes(c);
  }
}

// Fields 13 (vote) and 14 (responses) exist in newer raftpb; they are skipped, but only with their
// own wire types.
const MESSAGE_FIELDS = fieldMask(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);

function readMessage(r: Reader): Message {
  let type = 0;
  let to = 0n;
  let from = 0n;
  let term = 0;
  let logTerm = 0;
  let index = 0;
  const entries: Entry[] = [];
  let commit = 0;
  let snapshot: Snapshot | undefined;
  let reject = false;
  let rejectHint = 0;
  let context = EMPTY;
  while (r.pos < r.end) {
    const tag = r.tag();
    let outer: number;
    switch (tag) {
      case 8:
        type = r.int32();
        break;
      case 16:
        to = r.uint64Big();
        break;
      case 24:
        from = r.uint64Big();
        break;
      case 32:
        term = r.uint64Number();
        break;
      case 40:
        logTerm = r.uint64Number();
        break;
      case 48:
        index = r.uint64Number();
        break;
      case 58:
        outer = r.enter();
        entries.push(readEntry(r));
        r.leave(outer);
        break;
      case 64:
        commit = r.uint64Number();
        break;
      case 74:
        outer = r.enter();
        snapshot = readSnapshot(r);
        r.leave(outer);
        break;
      case 80:
        reject = r.bool();
        break;
      case 88:
        rejectHint = r.uint64Number();
        break;
      case 98:
        context = r.bytes();
        break;
      default:
        r.skipField(tag, MESSAGE_FIELDS);
    }
  }
  const m: Message = { type, to, from, term, logTerm, index, entries, commit, reject, rejectHint, context };
  if (snapshot) m.snapshot = snapshot;
  return m;
}

/** Encodes a raftpb.Message. */
export function encodeMessage(m: Message): Uint8Array {
  W.reset();
  writeMessage(W, m);
  return W.finish();
}

/** Decodes a raftpb.Message. */
export function decodeMessage(b: Uint8Array): Message {
  return readMessage(new Reader(b));
}

/** Encoded size of a raftpb.Entry (useful to budget a batch of entries before encoding). */
export function entrySize(m: Entry): number {
  return sizeEntry(m);
}

// ---- HardState -----------------------------------------------------------------------------------

/** Encodes a raftpb.HardState. */
export function encodeHardState(m: HardState): Uint8Array {
  W.reset();
  if (m.term) {
    W.uint32(8);
    W.uint64(m.term);
  }
  if (m.vote) {
    W.uint32(16);
    W.uint64Big(m.vote);
  }
  if (m.commit) {
    W.uint32(24);
    W.uint64(m.commit);
  }
  return W.finish();
}

const HARD_STATE_FIELDS = fieldMask(1, 2, 3);

/** Decodes a raftpb.HardState. */
export function decodeHardState(b: Uint8Array): HardState {
  const r = new Reader(b);
  let term = 0;
  let vote = 0n;
  let commit = 0;
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag === 8) term = r.uint64Number();
    else if (tag === 16) vote = r.uint64Big();
    else if (tag === 24) commit = r.uint64Number();
    else r.skipField(tag, HARD_STATE_FIELDS);
  }
  return { term, vote, commit };
}
