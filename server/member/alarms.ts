/**
 * Alarms: conditions raised against a member that change what the whole cluster accepts, as in etcd.
 *
 * - NOSPACE: a member found the database past `--quota-backend-bytes`. While any NOSPACE alarm is
 *   active, every member refuses puts, transactions with a put among their top-level operations and
 *   lease grants with `etcdserver: mvcc: database space exceeded`; reads, deletes and compaction still
 *   work, so an operator can compact, defragment and then disarm.
 * - CORRUPT: a member's data disagrees with the others'. While active, every request that goes through
 *   Raft (writes, compaction, lease grants and revokes) is refused with `etcdserver: corrupt cluster`.
 *
 * Alarms are replicated state: they are changed only by applying an Alarm entry (so every member has
 * the same set at the same log index), and they are part of the snapshot image. The refusals are
 * decided at apply time from that state, so a write proposed before an alarm and committed after it is
 * refused on every member alike, as etcd's "capped" applier does.
 *
 * @module
 */
import { GrpcError, Status } from "../transport/status.ts";
import { Errors } from "../errors.ts";
import { AlarmAction, type AlarmMember, type AlarmRequest, AlarmType, type TxnRequest } from "../pb/rpc.ts";
import { ProposalKind } from "./proposal.ts";

/** etcd's answer to requests refused while a CORRUPT alarm is active (gRPC DATA_LOSS). */
export function errCorrupt(): GrpcError {
  return new GrpcError(Status.DATA_LOSS, "etcdserver: corrupt cluster");
}

/** An alarm in the snapshot's JSON part: the member ID in hex (JSON has no 64-bit integers). */
export interface AlarmJson {
  memberID: string;
  alarm: number;
}

const TYPE_NAMES: Record<number, string> = { 0: "NONE", 1: "NOSPACE", 2: "CORRUPT" };

/** The name of an alarm type, as etcd prints it (`NOSPACE`). */
export function alarmName(type: number): string {
  return TYPE_NAMES[type] ?? String(type);
}

/** The active alarms of a cluster, at most one per (member, type). */
export class AlarmStore {
  #alarms = new Map<string, AlarmMember>();

  /**
   * Raises `type` for `memberID`; returns the alarm (the one already active, if it was), or undefined for
   * the type NONE, which is no alarm.
   */
  activate(memberID: bigint, type: number): AlarmMember | undefined {
    if (type === AlarmType.NONE) return undefined;
    const k = key(memberID, type);
    const old = this.#alarms.get(k);
    if (old) return { ...old };
    const m: AlarmMember = { memberID, alarm: type };
    this.#alarms.set(k, m);
    return { ...m };
  }

  /** Clears `type` for `memberID`; returns the alarm cleared, or undefined when it was not active. */
  deactivate(memberID: bigint, type: number): AlarmMember | undefined {
    const k = key(memberID, type);
    const m = this.#alarms.get(k);
    if (!m) return undefined;
    this.#alarms.delete(k);
    return { ...m };
  }

  /** The active alarms of `type` (every type for NONE), ordered by member ID, then type. */
  get(type: number = AlarmType.NONE): AlarmMember[] {
    const out: AlarmMember[] = [];
    for (const m of this.#alarms.values()) {
      if (type === AlarmType.NONE || m.alarm === type) out.push({ ...m });
    }
    return out.sort((a, b) => a.memberID < b.memberID ? -1 : a.memberID > b.memberID ? 1 : a.alarm - b.alarm);
  }

  /** Whether an alarm of `type` is active for any member. */
  has(type: number): boolean {
    for (const m of this.#alarms.values()) if (m.alarm === type) return true;
    return false;
  }

  /** Number of active alarms. */
  get size(): number {
    return this.#alarms.size;
  }

  /**
   * The alarms as Status lists them in `errors`: protobuf's compact text of each AlarmMember, decimal ID
   * and a trailing space included (`memberID:9046702341261447339 alarm:NOSPACE `), as etcd 3.4 prints.
   */
  statusErrors(): string[] {
    return this.get().map((m) => `memberID:${m.memberID} alarm:${alarmName(m.alarm)} `);
  }

  /** Makes this store hold exactly the alarms of `other` (a snapshot was installed). */
  replaceWith(other: AlarmStore): void {
    this.#alarms = new Map(other.#alarms);
  }

  /** The alarms for the snapshot's JSON part. */
  toJSON(): AlarmJson[] {
    return this.get().map((m) => ({ memberID: m.memberID.toString(16), alarm: m.alarm }));
  }

  /** The inverse of {@link toJSON}; absent (an image from before alarms existed) means none. */
  static fromJSON(j: AlarmJson[] | undefined): AlarmStore {
    const s = new AlarmStore();
    for (const a of j ?? []) s.activate(BigInt("0x" + a.memberID), a.alarm);
    return s;
  }
}

function key(memberID: bigint, type: number): string {
  return `${memberID.toString(16)}/${type}`;
}

/**
 * Applies an Alarm request: GET lists the active alarms of the type asked (all for NONE), ACTIVATE and
 * DEACTIVATE answer with the alarm changed (nothing when there was nothing to change). Returns the
 * alarms of the response and, for the log, whether the set of active alarms changed.
 */
export function applyAlarm(store: AlarmStore, r: AlarmRequest): { alarms: AlarmMember[]; changed: boolean } {
  switch (r.action) {
    case AlarmAction.GET:
      return { alarms: store.get(r.alarm), changed: false };
    case AlarmAction.ACTIVATE: {
      const before = store.size;
      const m = store.activate(r.memberID, r.alarm);
      return { alarms: m ? [m] : [], changed: store.size !== before };
    }
    case AlarmAction.DEACTIVATE: {
      const m = store.deactivate(r.memberID, r.alarm);
      return { alarms: m ? [m] : [], changed: m !== undefined };
    }
    default:
      return { alarms: [], changed: false };
  }
}

/**
 * Whether the active alarms refuse applying an entry of `kind` (for a Txn, `txn` is the request), and
 * with which error; undefined when it may be applied.
 */
export function alarmRefusal(store: AlarmStore, kind: ProposalKind, txn?: TxnRequest): GrpcError | undefined {
  if (store.size === 0) return undefined;
  if (store.has(AlarmType.CORRUPT)) {
    switch (kind) {
      case ProposalKind.Put:
      case ProposalKind.DeleteRange:
      case ProposalKind.Txn:
      case ProposalKind.Compaction:
      case ProposalKind.LeaseGrant:
      case ProposalKind.LeaseRevoke:
        return errCorrupt();
    }
  }
  if (store.has(AlarmType.NOSPACE)) {
    switch (kind) {
      case ProposalKind.Put:
      case ProposalKind.LeaseGrant:
        return Errors.noSpace();
      case ProposalKind.Txn:
        // etcd counts the cost of a transaction by its top-level puts only (a nested txn costs nothing)
        if (txn && [txn.success, txn.failure].some((ops) => ops.some((op) => op.requestPut))) {
          return Errors.noSpace();
        }
    }
  }
  return undefined;
}
