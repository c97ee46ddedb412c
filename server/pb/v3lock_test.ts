import { assertEquals, assertThrows } from "../../tests/assert.ts";
import * as pb from "./v3lock.ts";
import { ProtobufDecodeError } from "./wire.ts";
import { hex, parseProto, pbjsEncode } from "./test_util.ts";

const enc = new TextEncoder();
const b = (s: string): Uint8Array => enc.encode(s);
const EMPTY = new Uint8Array(0);

/** The messages as etcd's v3lock.proto and v3election.proto declare them (imports inlined). */
const PROTO = `
syntax = "proto3";
package t;
message ResponseHeader { uint64 cluster_id = 1; uint64 member_id = 2; int64 revision = 3; uint64 raft_term = 4; }
message KeyValue { bytes key = 1; int64 create_revision = 2; int64 mod_revision = 3; int64 version = 4;
  bytes value = 5; int64 lease = 6; }
message LockRequest { bytes name = 1; int64 lease = 2; }
message LockResponse { ResponseHeader header = 1; bytes key = 2; }
message UnlockRequest { bytes key = 1; }
message UnlockResponse { ResponseHeader header = 1; }
message LeaderKey { bytes name = 1; bytes key = 2; int64 rev = 3; int64 lease = 4; }
message CampaignRequest { bytes name = 1; int64 lease = 2; bytes value = 3; }
message CampaignResponse { ResponseHeader header = 1; LeaderKey leader = 2; }
message ProclaimRequest { LeaderKey leader = 1; bytes value = 2; }
message LeaderRequest { bytes name = 1; }
message LeaderResponse { ResponseHeader header = 1; KeyValue kv = 2; }
message ResignRequest { LeaderKey leader = 1; }
`;
const root = parseProto(PROTO);
const type = (name: string) => root.lookupType(`t.${name}`);

const header: pb.ResponseHeader = {
  clusterId: 0xcdf818194e3a8c32n,
  memberId: 0x8e9e05c52164694dn, // top bit set: uint64 beyond int64
  revision: 2 ** 40 + 3,
  raftTerm: 9,
};
const MAX_LEASE = 0x7fffffffffffffffn;
const leader: pb.LeaderKey = {
  name: b("e"),
  key: b("e/694d7d3f1a2b3c4d"),
  rev: 17,
  lease: 0x694d7d3f1a2b3c4dn,
};
const kv: pb.KeyValue = {
  key: b("e/694d"),
  createRevision: 4,
  modRevision: 9,
  version: 3,
  value: b("v1"),
  lease: MAX_LEASE,
};

interface Case<T> {
  name: string;
  type: string;
  m: T;
  encode(m: T): Uint8Array;
  decode(b: Uint8Array): T;
}

const c = <T>(x: Case<T>): Case<unknown> => x as Case<unknown>;

const CASES: Case<unknown>[] = [
  c({
    name: "LockRequest",
    type: "LockRequest",
    m: { name: b("l"), lease: MAX_LEASE },
    encode: pb.encodeLockRequest,
    decode: pb.decodeLockRequest,
  }),
  c({
    name: "LockRequest, negative lease",
    type: "LockRequest",
    m: { name: b("l"), lease: -1n },
    encode: pb.encodeLockRequest,
    decode: pb.decodeLockRequest,
  }),
  c({
    name: "LockResponse",
    type: "LockResponse",
    m: { header, key: b("l/1") },
    encode: pb.encodeLockResponse,
    decode: pb.decodeLockResponse,
  }),
  c({
    name: "UnlockRequest",
    type: "UnlockRequest",
    m: { key: b("l/1") },
    encode: pb.encodeUnlockRequest,
    decode: pb.decodeUnlockRequest,
  }),
  c({
    name: "UnlockResponse",
    type: "UnlockResponse",
    m: { header },
    encode: pb.encodeHeaderOnlyResponse,
    decode: pb.decodeHeaderOnlyResponse,
  }),
  c({
    name: "LeaderKey",
    type: "LeaderKey",
    m: leader,
    encode: pb.encodeLeaderKey,
    decode: pb.decodeLeaderKey,
  }),
  c({
    name: "CampaignRequest",
    type: "CampaignRequest",
    m: { name: b("e"), lease: 5n, value: b("p") },
    encode: pb.encodeCampaignRequest,
    decode: pb.decodeCampaignRequest,
  }),
  c({
    name: "CampaignResponse",
    type: "CampaignResponse",
    m: { header, leader },
    encode: pb.encodeCampaignResponse,
    decode: pb.decodeCampaignResponse,
  }),
  c({
    name: "ProclaimRequest",
    type: "ProclaimRequest",
    m: { leader, value: b("v2") },
    encode: pb.encodeProclaimRequest,
    decode: pb.decodeProclaimRequest,
  }),
  c({
    name: "LeaderRequest",
    type: "LeaderRequest",
    m: { name: b("e") },
    encode: pb.encodeLeaderRequest,
    decode: pb.decodeLeaderRequest,
  }),
  c({
    name: "LeaderResponse",
    type: "LeaderResponse",
    m: { header, kv },
    encode: pb.encodeLeaderResponse,
    decode: pb.decodeLeaderResponse,
  }),
  c({
    name: "ResignRequest",
    type: "ResignRequest",
    m: { leader },
    encode: pb.encodeResignRequest,
    decode: pb.decodeResignRequest,
  }),
];

Deno.test("v3lock codec: round trip, byte for byte with protobufjs", async (t) => {
  for (const k of CASES) {
    await t.step(k.name, () => {
      const bytes = k.encode(k.m);
      assertEquals(hex(bytes), hex(pbjsEncode(type(k.type), k.m as Record<string, unknown>)));
      assertEquals(k.decode(bytes), k.m);
    });
  }
});

Deno.test("v3lock codec: defaults", async (t) => {
  await t.step("default fields stay off the wire; absent ones decode as defaults", () => {
    assertEquals(pb.encodeLockRequest({ name: EMPTY, lease: 0n }).length, 0);
    assertEquals(pb.decodeLockRequest(EMPTY), { name: EMPTY, lease: 0n });
    assertEquals(pb.decodeCampaignRequest(EMPTY), { name: EMPTY, lease: 0n, value: EMPTY });
  });
  await t.step("an absent nested message is undefined, an empty one is not", () => {
    assertEquals(pb.decodeResignRequest(EMPTY).leader, undefined);
    assertEquals(pb.decodeProclaimRequest(EMPTY), { value: EMPTY });
    const empty = pb.encodeResignRequest({ leader: { name: EMPTY, key: EMPTY, rev: 0, lease: 0n } });
    assertEquals(hex(empty), "0a00");
    assertEquals(pb.decodeResignRequest(empty).leader, { name: EMPTY, key: EMPTY, rev: 0, lease: 0n });
    assertEquals(pb.decodeLeaderResponse(EMPTY), {});
  });
});

Deno.test("v3lock codec: unknown fields are skipped, wrong wire types refused", () => {
  // field 9 varint, then name
  assertEquals(pb.decodeLeaderRequest(new Uint8Array([0x48, 0x01, 0x0a, 0x01, 0x65])).name, b("e"));
  // name (field 1) sent as a varint
  assertThrows(() => pb.decodeLeaderRequest(new Uint8Array([0x08, 0x01])), ProtobufDecodeError);
  // truncated nested leader key
  assertThrows(() => pb.decodeResignRequest(new Uint8Array([0x0a, 0x05, 0x0a])), ProtobufDecodeError);
});
