/**
 * The data of a normal log entry: what kind of request it is, who proposed it (so that member can hand
 * the result back to the waiting client), and the request's own protobuf bytes, unchanged.
 *
 * Layout: kind (1 byte) | proposer tag (uint32, low bits of the member ID) | sequence (float64) | payload.
 *
 * @module
 */

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
    tag: view.getUint32(1),
    seq: view.getFloat64(5),
    payload: data.subarray(PROPOSAL_HEADER_BYTES),
  };
}
