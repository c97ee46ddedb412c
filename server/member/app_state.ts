/**
 * The application state in a snapshot, and how it is captured and restored.
 *
 * Image layout (unchanged since the first snapshot format): u32 big-endian length of a JSON part
 * (Raft configuration, membership, leases), the JSON, then the MVCC store's own image.
 *
 * A capture is taken on the Raft loop in one synchronous step at the snapshot index: the JSON part is
 * small and encoded at once, the key space is a frozen view of the store (see
 * `MvccStore.snapshotView`), so the image can be written later while the store goes on changing.
 *
 * @module
 */
import type { ConfState } from "../../raft/types.ts";
import { type ByteStream, concatStreams, streamOf } from "../../storage/byte_stream.ts";
import { MvccStore, type MvccStoreOptions } from "../../storage/mvcc/store.ts";
import { LeaseStore } from "../../storage/lease.ts";
import { Membership } from "./membership.ts";
import { V2Store } from "../../storage/v2store/store.ts";
import type { SnapshotCapture } from "./snapshot_writer.ts";
import { type AlarmJson, AlarmStore } from "./alarms.ts";
import { AuthStore, type AuthStoreJson } from "../auth/store.ts";

/** The JSON part of a snapshot image. */
export interface SnapshotMeta {
  confState: {
    voters: string[];
    learners: string[];
    votersOutgoing: string[];
    learnersNext: string[];
    autoLeave: boolean;
  };
  membership: ReturnType<Membership["toJSON"]>;
  leases: ReturnType<LeaseStore["toJSON"]>;
  /** The v2 store; absent in images written before it existed. */
  v2?: unknown;
  /** The active alarms; absent in images written before alarms existed (then: none). */
  alarms?: AlarmJson[];
  /** Users, roles and whether auth is on; absent in images written before auth existed (then: none). */
  auth?: AuthStoreJson;
}

/** The configuration of a member that has none yet. */
export const EMPTY_CONF_STATE: ConfState = {
  voters: [],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
};

/** Member IDs as hex strings: JSON has no 64-bit integers. */
export function confStateToJson(cs: ConfState): SnapshotMeta["confState"] {
  const hex = (ids: bigint[]) => ids.map((id) => id.toString(16));
  return {
    voters: hex(cs.voters),
    learners: hex(cs.learners),
    votersOutgoing: hex(cs.votersOutgoing),
    learnersNext: hex(cs.learnersNext),
    autoLeave: cs.autoLeave,
  };
}

/** The inverse of {@link confStateToJson}. */
export function confStateFromJson(j: SnapshotMeta["confState"]): ConfState {
  const ids = (xs: string[]) => xs.map((x) => BigInt("0x" + x));
  return {
    voters: ids(j.voters),
    learners: ids(j.learners),
    votersOutgoing: ids(j.votersOutgoing),
    learnersNext: ids(j.learnersNext),
    autoLeave: j.autoLeave,
  };
}

/** The snapshot image: u32 length + JSON metadata, then the key space, streamed (never one buffer). */
export function encodeAppState(meta: SnapshotMeta, mvcc: ByteStream): ByteStream {
  const json = new TextEncoder().encode(JSON.stringify(meta));
  const head = new Uint8Array(4 + json.length);
  new DataView(head.buffer).setUint32(0, json.length);
  head.set(json, 4);
  return concatStreams(streamOf(head), mvcc);
}

/** Splits an image into its JSON part and the key space's bytes (a view, not a copy). */
export function decodeAppState(data: Uint8Array): { meta: SnapshotMeta; mvcc: Uint8Array } {
  const n = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
  const meta = JSON.parse(new TextDecoder().decode(data.subarray(4, 4 + n))) as SnapshotMeta;
  return { meta, mvcc: data.subarray(4 + n) };
}

/** What a snapshot holds of a member's applied state. */
export interface AppState {
  confState: ConfState;
  membership: Membership;
  leases: LeaseStore;
  mvcc: MvccStore;
  v2store: V2Store;
  /** The active alarms (none when absent). */
  alarms?: AlarmStore;
  /** Users, roles and permissions (none when absent). */
  auth?: AuthStore;
}

/**
 * The image of the applied state as it is now, readable later: the JSON part is encoded at once, the
 * key space is a view of the store that stays valid while the store takes writes and compactions.
 * Costs a copy of the store's entry columns and the key table, no value bytes.
 */
export function captureAppState(state: AppState): SnapshotCapture {
  const meta: SnapshotMeta = {
    confState: confStateToJson(state.confState),
    membership: state.membership.toJSON(),
    leases: state.leases.toJSON(),
    v2: state.v2store.toJSON(),
  };
  if (state.alarms && state.alarms.size > 0) meta.alarms = state.alarms.toJSON();
  if (state.auth && (state.auth.users.size > 0 || state.auth.roles.size > 0 || state.auth.revision > 1)) {
    meta.auth = state.auth.toJSON();
  }
  const view = state.mvcc.snapshotView();
  try {
    return { data: encodeAppState(meta, view.image), release: () => view.release() };
  } catch (err) {
    view.release();
    throw err;
  }
}

/**
 * The state an image holds, decoded (synchronously: about as long as the image takes to read once).
 * `options` are the new store's (its history file).
 */
export function restoreAppState(data: Uint8Array, options: MvccStoreOptions): AppState {
  const { meta, mvcc } = decodeAppState(data);
  const state = {
    confState: confStateFromJson(meta.confState),
    membership: Membership.fromJSON(meta.membership),
    leases: LeaseStore.fromJSON(meta.leases),
    mvcc: MvccStore.decodeSnapshot(mvcc, options),
    v2store: meta.v2 === undefined ? new V2Store() : V2Store.fromJSON(meta.v2),
    alarms: AlarmStore.fromJSON(meta.alarms),
    auth: meta.auth === undefined ? new AuthStore() : AuthStore.fromJSON(meta.auth),
  };
  restoredAlarms.set(state.mvcc, state.alarms);
  return state;
}

/**
 * The alarms restored with a store by {@link restoreAppState}. Bootstrap hands the member only the parts
 * it names (`bootstrap.ts`'s MemberInit has no alarms), so a restarting member finds its alarms through
 * the store they were restored with.
 */
const restoredAlarms = new WeakMap<MvccStore, AlarmStore>();

/** The alarms of the snapshot `mvcc` was restored from (by {@link restoreAppState}), if any. */
export function alarmsRestoredWith(mvcc: MvccStore): AlarmStore | undefined {
  return restoredAlarms.get(mvcc);
}
