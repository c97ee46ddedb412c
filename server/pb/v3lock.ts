/**
 * Hand-written codec for the messages of etcd's lock and election services (`v3lockpb`, from
 * etcdserver/api/v3lock/v3lockpb/v3lock.proto, and `v3electionpb`, from
 * etcdserver/api/v3election/v3electionpb/v3election.proto). They are not in the generator's proto set;
 * field numbers and types follow those files exactly:
 *
 *     LockRequest      { bytes name = 1; int64 lease = 2; }
 *     LockResponse     { ResponseHeader header = 1; bytes key = 2; }
 *     UnlockRequest    { bytes key = 1; }
 *     UnlockResponse   { ResponseHeader header = 1; }
 *     LeaderKey        { bytes name = 1; bytes key = 2; int64 rev = 3; int64 lease = 4; }
 *     CampaignRequest  { bytes name = 1; int64 lease = 2; bytes value = 3; }
 *     CampaignResponse { ResponseHeader header = 1; LeaderKey leader = 2; }
 *     ProclaimRequest  { LeaderKey leader = 1; bytes value = 2; }
 *     ProclaimResponse { ResponseHeader header = 1; }
 *     LeaderRequest    { bytes name = 1; }
 *     LeaderResponse   { ResponseHeader header = 1; mvccpb.KeyValue kv = 2; }
 *     ResignRequest    { LeaderKey leader = 1; }
 *     ResignResponse   { ResponseHeader header = 1; }
 *
 * Like the generated codec, encoders leave out fields holding their default and decoders fill absent
 * fields with defaults; an absent nested message decodes as `undefined` (the services tell "no leader
 * key given" from an empty one). A repeated occurrence of a scalar field wins; of a message field, the
 * last occurrence wins too (etcd's messages are never split, so merging is not needed here).
 *
 * @module
 */
import { fieldMask, Reader, WireType, Writer } from "./wire.ts";
import type { KeyValue, ResponseHeader } from "./rpc.ts";

export type { KeyValue, ResponseHeader };

const EMPTY = new Uint8Array(0);
const W = new Writer(256);

const LEN = WireType.LENGTH_DELIMITED;
const VARINT = WireType.VARINT;
const tag = (field: number, wireType: number): number => (field << 3) | wireType;

/** v3lockpb.LockRequest. */
export interface LockRequest {
  name: Uint8Array;
  lease: bigint;
}
/** v3lockpb.LockResponse. */
export interface LockResponse {
  header?: ResponseHeader;
  key: Uint8Array;
}
/** v3lockpb.UnlockRequest. */
export interface UnlockRequest {
  key: Uint8Array;
}
/** v3lockpb.UnlockResponse (and the election's ProclaimResponse and ResignResponse, same shape). */
export interface HeaderOnlyResponse {
  header?: ResponseHeader;
}
/** v3electionpb.LeaderKey: what a campaign won, needed to proclaim and resign. */
export interface LeaderKey {
  name: Uint8Array;
  key: Uint8Array;
  rev: number;
  lease: bigint;
}
/** v3electionpb.CampaignRequest. */
export interface CampaignRequest {
  name: Uint8Array;
  lease: bigint;
  value: Uint8Array;
}
/** v3electionpb.CampaignResponse. */
export interface CampaignResponse {
  header?: ResponseHeader;
  leader?: LeaderKey;
}
/** v3electionpb.ProclaimRequest. */
export interface ProclaimRequest {
  leader?: LeaderKey;
  value: Uint8Array;
}
/** v3electionpb.LeaderRequest (also Observe's request). */
export interface LeaderRequest {
  name: Uint8Array;
}
/** v3electionpb.LeaderResponse (also Observe's stream message). */
export interface LeaderResponse {
  header?: ResponseHeader;
  kv?: KeyValue;
}
/** v3electionpb.ResignRequest. */
export interface ResignRequest {
  leader?: LeaderKey;
}

// ---- writing --------------------------------------------------------------------------------------

function bytesField(w: Writer, field: number, v: Uint8Array): void {
  if (v.length === 0) return;
  w.uint32(tag(field, LEN));
  w.bytes(v);
}

function int64Field(w: Writer, field: number, v: number): void {
  if (v === 0) return;
  w.uint32(tag(field, VARINT));
  w.int64(v);
}

function int64BigField(w: Writer, field: number, v: bigint): void {
  if (v === 0n) return;
  w.uint32(tag(field, VARINT));
  w.int64Big(v);
}

function messageField<T>(w: Writer, field: number, m: T | undefined, write: (w: Writer, m: T) => void): void {
  if (m === undefined) return;
  w.uint32(tag(field, LEN));
  const mark = w.beginLength();
  write(w, m);
  w.endLength(mark);
}

function writeHeader(w: Writer, m: ResponseHeader): void {
  if (m.clusterId !== 0n) {
    w.uint32(tag(1, VARINT));
    w.uint64Big(m.clusterId);
  }
  if (m.memberId !== 0n) {
    w.uint32(tag(2, VARINT));
    w.uint64Big(m.memberId);
  }
  int64Field(w, 3, m.revision);
  if (m.raftTerm !== 0) {
    w.uint32(tag(4, VARINT));
    w.uint64(m.raftTerm);
  }
}

function writeKeyValue(w: Writer, m: KeyValue): void {
  bytesField(w, 1, m.key);
  int64Field(w, 2, m.createRevision);
  int64Field(w, 3, m.modRevision);
  int64Field(w, 4, m.version);
  bytesField(w, 5, m.value);
  int64BigField(w, 6, m.lease);
}

function writeLeaderKey(w: Writer, m: LeaderKey): void {
  bytesField(w, 1, m.name);
  bytesField(w, 2, m.key);
  int64Field(w, 3, m.rev);
  int64BigField(w, 4, m.lease);
}

function encode(write: (w: Writer) => void): Uint8Array {
  W.reset();
  write(W);
  return W.finish();
}

/** Encodes a v3lockpb.LockRequest. */
export function encodeLockRequest(m: LockRequest): Uint8Array {
  return encode((w) => {
    bytesField(w, 1, m.name);
    int64BigField(w, 2, m.lease);
  });
}
/** Encodes a v3lockpb.LockResponse. */
export function encodeLockResponse(m: LockResponse): Uint8Array {
  return encode((w) => {
    messageField(w, 1, m.header, writeHeader);
    bytesField(w, 2, m.key);
  });
}
/** Encodes a v3lockpb.UnlockRequest. */
export function encodeUnlockRequest(m: UnlockRequest): Uint8Array {
  return encode((w) => bytesField(w, 1, m.key));
}
/** Encodes UnlockResponse, ProclaimResponse or ResignResponse (all `{header = 1}`). */
export function encodeHeaderOnlyResponse(m: HeaderOnlyResponse): Uint8Array {
  return encode((w) => messageField(w, 1, m.header, writeHeader));
}
/** Encodes a v3electionpb.LeaderKey on its own. */
export function encodeLeaderKey(m: LeaderKey): Uint8Array {
  return encode((w) => writeLeaderKey(w, m));
}
/** Encodes a v3electionpb.CampaignRequest. */
export function encodeCampaignRequest(m: CampaignRequest): Uint8Array {
  return encode((w) => {
    bytesField(w, 1, m.name);
    int64BigField(w, 2, m.lease);
    bytesField(w, 3, m.value);
  });
}
/** Encodes a v3electionpb.CampaignResponse. */
export function encodeCampaignResponse(m: CampaignResponse): Uint8Array {
  return encode((w) => {
    messageField(w, 1, m.header, writeHeader);
    messageField(w, 2, m.leader, writeLeaderKey);
  });
}
/** Encodes a v3electionpb.ProclaimRequest. */
export function encodeProclaimRequest(m: ProclaimRequest): Uint8Array {
  return encode((w) => {
    messageField(w, 1, m.leader, writeLeaderKey);
    bytesField(w, 2, m.value);
  });
}
/** Encodes a v3electionpb.LeaderRequest. */
export function encodeLeaderRequest(m: LeaderRequest): Uint8Array {
  return encode((w) => bytesField(w, 1, m.name));
}
/** Encodes a v3electionpb.LeaderResponse. */
export function encodeLeaderResponse(m: LeaderResponse): Uint8Array {
  return encode((w) => {
    messageField(w, 1, m.header, writeHeader);
    messageField(w, 2, m.kv, writeKeyValue);
  });
}
/** Encodes a v3electionpb.ResignRequest. */
export function encodeResignRequest(m: ResignRequest): Uint8Array {
  return encode((w) => messageField(w, 1, m.leader, writeLeaderKey));
}

// ---- reading --------------------------------------------------------------------------------------

/**
 * Reads the fields of one message up to `r.end`: `read` handles the tags it knows and returns false
 * for any other, which is then skipped (or refused, for a known field with the wrong wire type).
 */
function readFields(r: Reader, known: number, read: (t: number) => boolean): void {
  while (r.pos < r.end) {
    const t = r.tag();
    if (!read(t)) r.skipField(t, known);
  }
}

function nested<T>(r: Reader, read: (r: Reader) => T): T {
  const outer = r.enter();
  const m = read(r);
  r.leave(outer);
  return m;
}

const HEADER_FIELDS = fieldMask(1, 2, 3, 4);
function readHeader(r: Reader): ResponseHeader {
  const m: ResponseHeader = { clusterId: 0n, memberId: 0n, revision: 0, raftTerm: 0 };
  readFields(r, HEADER_FIELDS, (t) => {
    if (t === tag(1, VARINT)) m.clusterId = r.uint64Big();
    else if (t === tag(2, VARINT)) m.memberId = r.uint64Big();
    else if (t === tag(3, VARINT)) m.revision = r.int64Number();
    else if (t === tag(4, VARINT)) m.raftTerm = r.uint64Number();
    else return false;
    return true;
  });
  return m;
}

const KEY_VALUE_FIELDS = fieldMask(1, 2, 3, 4, 5, 6);
function readKeyValue(r: Reader): KeyValue {
  const m: KeyValue = { key: EMPTY, createRevision: 0, modRevision: 0, version: 0, value: EMPTY, lease: 0n };
  readFields(r, KEY_VALUE_FIELDS, (t) => {
    if (t === tag(1, LEN)) m.key = r.bytes();
    else if (t === tag(2, VARINT)) m.createRevision = r.int64Number();
    else if (t === tag(3, VARINT)) m.modRevision = r.int64Number();
    else if (t === tag(4, VARINT)) m.version = r.int64Number();
    else if (t === tag(5, LEN)) m.value = r.bytes();
    else if (t === tag(6, VARINT)) m.lease = r.int64Big();
    else return false;
    return true;
  });
  return m;
}

const LEADER_KEY_FIELDS = fieldMask(1, 2, 3, 4);
function readLeaderKey(r: Reader): LeaderKey {
  const m: LeaderKey = { name: EMPTY, key: EMPTY, rev: 0, lease: 0n };
  readFields(r, LEADER_KEY_FIELDS, (t) => {
    if (t === tag(1, LEN)) m.name = r.bytes();
    else if (t === tag(2, LEN)) m.key = r.bytes();
    else if (t === tag(3, VARINT)) m.rev = r.int64Number();
    else if (t === tag(4, VARINT)) m.lease = r.int64Big();
    else return false;
    return true;
  });
  return m;
}

const ONE = fieldMask(1);
const TWO = fieldMask(1, 2);
const THREE = fieldMask(1, 2, 3);

/** Decodes a v3lockpb.LockRequest. */
export function decodeLockRequest(b: Uint8Array): LockRequest {
  const r = new Reader(b);
  const m: LockRequest = { name: EMPTY, lease: 0n };
  readFields(r, TWO, (t) => {
    if (t === tag(1, LEN)) m.name = r.bytes();
    else if (t === tag(2, VARINT)) m.lease = r.int64Big();
    else return false;
    return true;
  });
  return m;
}
/** Decodes a v3lockpb.LockResponse. */
export function decodeLockResponse(b: Uint8Array): LockResponse {
  const r = new Reader(b);
  const m: LockResponse = { key: EMPTY };
  readFields(r, TWO, (t) => {
    if (t === tag(1, LEN)) m.header = nested(r, readHeader);
    else if (t === tag(2, LEN)) m.key = r.bytes();
    else return false;
    return true;
  });
  return m;
}
/** Decodes a v3lockpb.UnlockRequest. */
export function decodeUnlockRequest(b: Uint8Array): UnlockRequest {
  const r = new Reader(b);
  const m: UnlockRequest = { key: EMPTY };
  readFields(r, ONE, (t) => {
    if (t !== tag(1, LEN)) return false;
    m.key = r.bytes();
    return true;
  });
  return m;
}
/** Decodes UnlockResponse, ProclaimResponse or ResignResponse. */
export function decodeHeaderOnlyResponse(b: Uint8Array): HeaderOnlyResponse {
  const r = new Reader(b);
  const m: HeaderOnlyResponse = {};
  readFields(r, ONE, (t) => {
    if (t !== tag(1, LEN)) return false;
    m.header = nested(r, readHeader);
    return true;
  });
  return m;
}
/** Decodes a v3electionpb.LeaderKey on its own. */
export function decodeLeaderKey(b: Uint8Array): LeaderKey {
  return readLeaderKey(new Reader(b));
}
/** Decodes a v3electionpb.CampaignRequest. */
export function decodeCampaignRequest(b: Uint8Array): CampaignRequest {
  const r = new Reader(b);
  const m: CampaignRequest = { name: EMPTY, lease: 0n, value: EMPTY };
  readFields(r, THREE, (t) => {
    if (t === tag(1, LEN)) m.name = r.bytes();
    else if (t === tag(2, VARINT)) m.lease = r.int64Big();
    else if (t === tag(3, LEN)) m.value = r.bytes();
    else return false;
    return true;
  });
  return m;
}
/** Decodes a v3electionpb.CampaignResponse. */
export function decodeCampaignResponse(b: Uint8Array): CampaignResponse {
  const r = new Reader(b);
  const m: CampaignResponse = {};
  readFields(r, TWO, (t) => {
    if (t === tag(1, LEN)) m.header = nested(r, readHeader);
    else if (t === tag(2, LEN)) m.leader = nested(r, readLeaderKey);
    else return false;
    return true;
  });
  return m;
}
/** Decodes a v3electionpb.ProclaimRequest. */
export function decodeProclaimRequest(b: Uint8Array): ProclaimRequest {
  const r = new Reader(b);
  const m: ProclaimRequest = { value: EMPTY };
  readFields(r, TWO, (t) => {
    if (t === tag(1, LEN)) m.leader = nested(r, readLeaderKey);
    else if (t === tag(2, LEN)) m.value = r.bytes();
    else return false;
    return true;
  });
  return m;
}
/** Decodes a v3electionpb.LeaderRequest. */
export function decodeLeaderRequest(b: Uint8Array): LeaderRequest {
  const r = new Reader(b);
  const m: LeaderRequest = { name: EMPTY };
  readFields(r, ONE, (t) => {
    if (t !== tag(1, LEN)) return false;
    m.name = r.bytes();
    return true;
  });
  return m;
}
/** Decodes a v3electionpb.LeaderResponse. */
export function decodeLeaderResponse(b: Uint8Array): LeaderResponse {
  const r = new Reader(b);
  const m: LeaderResponse = {};
  readFields(r, TWO, (t) => {
    if (t === tag(1, LEN)) m.header = nested(r, readHeader);
    else if (t === tag(2, LEN)) m.kv = nested(r, readKeyValue);
    else return false;
    return true;
  });
  return m;
}
/** Decodes a v3electionpb.ResignRequest. */
export function decodeResignRequest(b: Uint8Array): ResignRequest {
  const r = new Reader(b);
  const m: ResignRequest = {};
  readFields(r, ONE, (t) => {
    if (t !== tag(1, LEN)) return false;
    m.leader = nested(r, readLeaderKey);
    return true;
  });
  return m;
}
