import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type Snapshot,
} from "../../raft/types.ts";
import * as raftpb from "./raftpb.ts";
import { ProtobufDecodeError } from "./wire.ts";
import { crossCheck, hex, parseProto, pbjsEncode, prng } from "./test_util.ts";

/**
 * raftpb's schema (etcd-io/raft raftpb/raft.proto) with the field numbers and types of the original;
 * Entry's capitalised field names are lower-cased to match raft/types.ts (names do not reach the wire).
 * `packed` variants and the newer Message fields 13-14 are used to check what the decoder tolerates.
 */
const RAFT_PROTO = `
syntax = "proto2";
package raftpb;
enum EntryType { EntryNormal = 0; EntryConfChange = 1; EntryConfChangeV2 = 2; }
message Entry {
  optional uint64 term = 2;
  optional uint64 index = 3;
  optional EntryType type = 1;
  optional bytes data = 4;
}
message SnapshotMetadata {
  optional ConfState conf_state = 1;
  optional uint64 index = 2;
  optional uint64 term = 3;
}
message Snapshot {
  optional bytes data = 1;
  optional SnapshotMetadata metadata = 2;
}
message Message {
  optional int32 type = 1;
  optional uint64 to = 2;
  optional uint64 from = 3;
  optional uint64 term = 4;
  optional uint64 logTerm = 5;
  optional uint64 index = 6;
  repeated Entry entries = 7;
  optional uint64 commit = 8;
  optional Snapshot snapshot = 9;
  optional bool reject = 10;
  optional uint64 rejectHint = 11;
  optional bytes context = 12;
}
message NewerMessage {
  optional int32 type = 1;
  optional uint64 to = 2;
  optional uint64 vote = 13;
  repeated NewerMessage responses = 14;
}
message HardState {
  optional uint64 term = 1;
  optional uint64 vote = 2;
  optional uint64 commit = 3;
}
message ConfState {
  repeated uint64 voters = 1;
  repeated uint64 learners = 2;
  repeated uint64 voters_outgoing = 3;
  repeated uint64 learners_next = 4;
  optional bool auto_leave = 5;
}
message PackedConfState {
  repeated uint64 voters = 1 [packed = true];
  repeated uint64 learners = 2 [packed = true];
}
`;

const root = parseProto(RAFT_PROTO);
const T = (name: string) => root.lookupType(`raftpb.${name}`);
const enc = new TextEncoder();
const TOP = 0x8e9e05c52164694dn;

const entries: Entry[] = [
  { term: 3, index: 101, type: EntryType.Normal, data: enc.encode("put foo bar") },
  { term: 3, index: 102, type: EntryType.ConfChange, data: new Uint8Array(300).fill(5) },
  { term: 4, index: 103, type: EntryType.Normal, data: new Uint8Array(0) }, // a leader's empty entry
];
const confState: ConfState = {
  voters: [1n, TOP, 0xffffffffffffffffn],
  learners: [4n],
  votersOutgoing: [1n, 2n],
  learnersNext: [5n],
  autoLeave: true,
};
const snapshot: Snapshot = {
  metadata: { index: 2 ** 40, term: 12, confState },
  data: new Uint8Array(5000).map((_, i) => i * 7),
};
const app: Message = {
  type: MessageType.App,
  to: TOP,
  from: 1n,
  term: 4,
  logTerm: 3,
  index: 100,
  entries,
  commit: 99,
  reject: true,
  rejectHint: 98,
  context: enc.encode("ctx"),
};
const snap: Message = { ...app, type: MessageType.Snap, entries: [], snapshot, context: new Uint8Array(0) };
const heartbeat: Message = {
  type: MessageType.Heartbeat,
  to: 2n,
  from: 1n,
  term: 1,
  logTerm: 0,
  index: 0,
  entries: [],
  commit: 0,
  reject: false,
  rejectHint: 0,
  context: new Uint8Array(0),
};
const hardState: HardState = { term: 5, vote: TOP, commit: Number.MAX_SAFE_INTEGER };

// deno-lint-ignore no-explicit-any
type Row = [string, (m: any) => Uint8Array, (b: Uint8Array) => any, unknown];
const rows: Row[] = [
  ["Entry", raftpb.encodeEntry, raftpb.decodeEntry, entries[0]],
  ["Entry", raftpb.encodeEntry, raftpb.decodeEntry, entries[1]],
  ["ConfState", raftpb.encodeConfState, raftpb.decodeConfState, confState],
  ["SnapshotMetadata", raftpb.encodeSnapshotMetadata, raftpb.decodeSnapshotMetadata, snapshot.metadata],
  ["Snapshot", raftpb.encodeSnapshot, raftpb.decodeSnapshot, snapshot],
  ["Message", raftpb.encodeMessage, raftpb.decodeMessage, app],
  ["Message", raftpb.encodeMessage, raftpb.decodeMessage, snap],
  ["Message", raftpb.encodeMessage, raftpb.decodeMessage, heartbeat],
  ["HardState", raftpb.encodeHardState, raftpb.decodeHardState, hardState],
];

Deno.test("raftpb: every message round-trips", () => {
  for (const [name, encode, decode, sample] of rows) {
    const bytes = encode(sample);
    assertEquals(decode(bytes), sample, name);
    assertEquals(hex(encode(decode(bytes))), hex(bytes), `${name}: re-encoding is stable`);
  }
  assertEquals(raftpb.entrySize(entries[1]), raftpb.encodeEntry(entries[1]).length);
});

Deno.test("raftpb: matches protobufjs on the raft.proto schema, both ways", () => {
  for (const [name, encode, decode, sample] of rows) crossCheck(T(name), sample, encode, decode);
});

Deno.test("raftpb: a message without a snapshot decodes without one; node IDs stay exact", () => {
  const m = raftpb.decodeMessage(raftpb.encodeMessage(heartbeat));
  assert(!("snapshot" in m));
  assertEquals(raftpb.decodeMessage(raftpb.encodeMessage(app)).to, TOP);
  const cs = raftpb.decodeConfState(raftpb.encodeConfState(confState));
  assertEquals(cs.voters[2], 2n ** 64n - 1n);
  // an empty snapshot still carries its metadata and conf state, as etcd expects
  const empty = raftpb.decodeSnapshot(new Uint8Array(0));
  assertEquals(empty, {
    metadata: {
      index: 0,
      term: 0,
      confState: { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    },
    data: new Uint8Array(0),
  });
});

Deno.test("raftpb: fields of newer raftpb versions are skipped", () => {
  const newer = pbjsEncode(T("NewerMessage"), {
    type: MessageType.Vote,
    to: 3n,
    vote: 7n,
    responses: [{ type: MessageType.VoteResp, to: 9n }],
  });
  assertEquals(raftpb.decodeMessage(newer), {
    ...heartbeat,
    type: MessageType.Vote,
    to: 3n,
    from: 0n,
    term: 0,
  });
});

Deno.test("raftpb: repeated IDs are read packed as well as unpacked", () => {
  const packed = pbjsEncode(T("PackedConfState"), { voters: [1n, TOP], learners: [0xffffffffffffffffn] });
  assertEquals(raftpb.decodeConfState(packed), {
    voters: [1n, TOP],
    learners: [0xffffffffffffffffn],
    votersOutgoing: [],
    learnersNext: [],
    autoLeave: false,
  });
});

Deno.test("raftpb: malformed input throws ProtobufDecodeError", () => {
  const bytes = raftpb.encodeMessage(snap);
  for (let i = 1; i < bytes.length; i += 97) {
    try {
      raftpb.decodeMessage(bytes.subarray(0, i));
    } catch (err) {
      assert(err instanceof ProtobufDecodeError, `cut at ${i}: ${err}`);
    }
  }
  assertThrows(() => raftpb.decodeMessage(bytes.subarray(0, bytes.length - 1)), ProtobufDecodeError);
  // an index beyond 2^53 cannot be a number
  const huge = pbjsEncode(T("Entry"), { term: 1, index: 2n ** 60n });
  assertThrows(() => raftpb.decodeEntry(huge), ProtobufDecodeError, "53 bits");
  const rand = prng(7);
  let refused = 0;
  for (let iter = 0; iter < 2000; iter++) {
    const copy = bytes.slice(0, 400);
    copy[Math.floor(rand() * copy.length)] = Math.floor(rand() * 256);
    try {
      raftpb.decodeMessage(copy);
    } catch (err) {
      assert(err instanceof ProtobufDecodeError, `iteration ${iter}: ${err}`);
      refused++;
    }
  }
  assert(refused > 0);
});
