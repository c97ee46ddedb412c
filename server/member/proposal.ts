/**
 * The data of a normal log entry: what kind of request it is, who proposed it (so that member can hand
 * the result back to the waiting client), and the request's own protobuf bytes, unchanged.
 *
 * Layout: kind (1 byte) | proposer tag (uint32, low bits of the member ID) | sequence (float64) | payload.
 *
 * @module
 */

import { type ConfState, type Entry, EntryType } from "../../raft/types.ts";
import { SlabAllocator } from "../slab.ts";

/**
 * Entry data stays in the in-memory Raft log until the log window moves past it: it gets slabs of its
 * own, densely filled, instead of pinning slabs shared with short-lived request and response bytes.
 */
const entrySlabs = new SlabAllocator();

export enum ProposalKind {
  Put = 1,
  DeleteRange = 2,
  Txn = 3,
  Compaction = 4,
  LeaseGrant = 5,
  LeaseRevoke = 6,
  LeaseCheckpoint = 7,
  MemberAttributes = 8,
  Alarm = 9,
  /** A write to the v2 store (JSON: the request and the proposer's clock). */
  V2 = 10,
  /** The leader's clock, for the v2 store's TTL expiry (etcd's SYNC). */
  V2Sync = 11,
  /** An auth change (JSON, see server/auth/apply.ts). */
  Auth = 12,
  /**
   * A request checked against auth at an auth revision: the revision (float64), the request's kind
   * (1 byte), its payload. Applied only if auth has not changed since (see {@link wrapAuthorized}).
   */
  Authorized = 13,
  /** The cluster version the leader decided (UTF-8 "3.5.0"; see cluster_version.ts). */
  ClusterVersion = 14,
}

export const PROPOSAL_HEADER_BYTES = 13;

export interface Proposal {
  kind: ProposalKind;
  tag: number;
  seq: number;
  payload: Uint8Array;
}

export function encodeProposal(
  kind: ProposalKind,
  tag: number,
  seq: number,
  payload: Uint8Array,
): Uint8Array {
  const out = entrySlabs.alloc(PROPOSAL_HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[0] = kind;
  view.setUint32(1, tag);
  view.setFloat64(5, seq);
  out.set(payload, PROPOSAL_HEADER_BYTES);
  return out;
}

export function decodeProposal(data: Uint8Array): Proposal {
  if (data.length < PROPOSAL_HEADER_BYTES) throw new Error(`proposal of ${data.length} bytes is too short`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return {
    kind: data[0],
    tag: tagOf(data),
    seq: view.getFloat64(5),
    payload: data.subarray(PROPOSAL_HEADER_BYTES),
  };
}

/** The proposer tag of entry data, read without decoding the rest; undefined when too short for one. */
export function proposalTag(data: Uint8Array): number | undefined {
  return data.length < PROPOSAL_HEADER_BYTES ? undefined : tagOf(data);
}

/** The tag a member puts on its proposals: the low 32 bits of its ID. */
export function memberTag(id: bigint): number {
  return Number(id & 0xffffffffn);
}

/**
 * Whether every one of `entries` was proposed by the member of `tag`, so that only its clients wait for
 * them. Entries without data (a new leader's empty entry) count as such; membership changes do not.
 */
export function allProposedWith(entries: Entry[], tag: number): boolean {
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e.type !== EntryType.Normal) return false;
    if (e.data.length > 0 && proposalTag(e.data) !== tag) return false;
  }
  return true;
}

/**
 * The member of `conf` (voters and learners) that proposed the last of `entries`, found by the tag the
 * entry carries; undefined when that entry is no proposal (a configuration change, a new leader's empty
 * entry) or its tag is no member's.
 */
export function proposerOf(entries: Entry[], conf: ConfState): bigint | undefined {
  const last = entries[entries.length - 1];
  if (last === undefined || last.type !== EntryType.Normal) return undefined;
  const tag = proposalTag(last.data);
  if (tag === undefined) return undefined;
  for (const id of conf.voters) if (memberTag(id) === tag) return id;
  for (const id of conf.learners) if (memberTag(id) === tag) return id;
  return undefined;
}

/** The tag of a header: big-endian uint32 after the kind byte. */
function tagOf(data: Uint8Array): number {
  return ((data[1] << 24) | (data[2] << 16) | (data[3] << 8) | data[4]) >>> 0;
}

const AUTHORIZED_HEADER_BYTES = 9;

/**
 * The payload of an {@link ProposalKind.Authorized} proposal: `kind` and `payload`, checked for its
 * sender's permissions at auth revision `authRevision`.
 */
export function wrapAuthorized(authRevision: number, kind: ProposalKind, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(AUTHORIZED_HEADER_BYTES + payload.length);
  new DataView(out.buffer).setFloat64(0, authRevision);
  out[8] = kind;
  out.set(payload, AUTHORIZED_HEADER_BYTES);
  return out;
}

/** The inverse of {@link wrapAuthorized}: the revision, and the request as its own proposal. */
export function unwrapAuthorized(p: Proposal): { authRevision: number; inner: Proposal } {
  const data = p.payload;
  if (data.length < AUTHORIZED_HEADER_BYTES) throw new Error(`authorized proposal of ${data.length} bytes`);
  const authRevision = new DataView(data.buffer, data.byteOffset, data.byteLength).getFloat64(0);
  return {
    authRevision,
    inner: { kind: data[8], tag: p.tag, seq: p.seq, payload: data.subarray(AUTHORIZED_HEADER_BYTES) },
  };
}
