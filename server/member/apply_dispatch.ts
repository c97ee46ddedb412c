/**
 * Committed entries, in log order, to the state they change: configuration changes to Raft and the
 * membership, requests to the key space and the leases (through the {@link Applier}), and each result to
 * the client waiting for it on this member. The only writer of a member's replicated state.
 *
 * @module
 */
import type { CompactionSteps } from "./compaction_steps.ts";
import { decodeConfChange } from "../../raft/conf_change.ts";
import { type ConfChange, ConfChangeType, type Entry, EntryType, StateType } from "../../raft/types.ts";
import type { LeaseStore } from "../../storage/lease.ts";
import type { MvccEvent, MvccStore } from "../../storage/mvcc/store.ts";
import type { Logger } from "../logger.ts";
import { GrpcError } from "../transport/status.ts";
import type { WatchHub } from "../watch/hub.ts";
import { applyLeaseCheckpoint, applyLeaseGrant, applyLeaseRevoke, type Lessor } from "../lease/lessor.ts";
import {
  type CompactionRequest,
  decodeCompactionRequest,
  decodeDeleteRangeRequest,
  decodeLeaseCheckpointRequest,
  decodeLeaseGrantRequest,
  decodeLeaseRevokeRequest,
  decodePutRequest,
  decodeTxnRequest,
  type DeleteRangeRequest,
  type LeaseCheckpointRequest,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  type LeaseRevokeRequest,
  type LeaseRevokeResponse,
  type PutRequest,
  type ResponseHeader,
  type TxnRequest,
} from "../pb/rpc.ts";
import type { Applier } from "./apply.ts";
import { memberFromJson, type MemberJson, type Membership } from "./membership.ts";
import { applyClusterVersion } from "./cluster_version.ts";
import { decodeProposal, type Proposal, ProposalKind, unwrapAuthorized } from "./proposal.ts";
import type { Proposer } from "./proposer.ts";
import type { RaftDriver } from "./raft_driver.ts";
import type { V2Store } from "../../storage/v2store/store.ts";
import { applyV2, applyV2Sync } from "./v2_backend.ts";
import { type Reconfiguration, validateConfChange } from "./reconfig.ts";
import { alarmName, alarmRefusal, type AlarmStore, applyAlarm } from "./alarms.ts";
import {
  AlarmAction,
  type AlarmRequest,
  type AlarmResponse,
  AlarmType,
  decodeAlarmRequest,
} from "../pb/rpc.ts";
import { Errors } from "../errors.ts";
import { hexId } from "../logger.ts";
import type { Auth } from "../auth/auth.ts";
import { AuthErrors } from "../auth/errors.ts";
import { applyAuthChange, type AuthChange, decodeAuthChange } from "../auth/apply.ts";

/** What a lease grant counts against the quota (etcd's leaseOverhead). */
export const LEASE_GRANT_COST = 64;

/** The member state entries are applied to; read afresh for every entry (a snapshot replaces it). */
export interface ApplyTarget {
  readonly driver: RaftDriver;
  readonly proposer: Proposer;
  readonly applier: Applier;
  readonly mvcc: MvccStore;
  readonly leases: LeaseStore;
  readonly lessor: Lessor;
  readonly membership: Membership;
  readonly watchHub: WatchHub;
  readonly v2store: V2Store;
  readonly logger: Logger;
  readonly electionTimeoutMs: number;
  /** Shortest TTL a lease is granted with. */
  readonly minLeaseTtl: number;
  header(revision: number): ResponseHeader;
  /** After a membership change: the peer transport follows it. */
  syncPeers(): void;
  /** After a membership change: a lone voter elects itself. */
  campaignIfAlone(): void;
  /** This member's ID. */
  readonly memberId: bigint;
  /** Membership changes proposed here wait on it for their result. */
  readonly reconfig: Reconfiguration;
  /** This member was removed from the cluster by an applied change. */
  onRemoved(): void;
  /** The active alarms (see alarms.ts): changed by Alarm entries, they refuse some requests. */
  readonly alarms: AlarmStore;
  /** Whether this member's database plus `cost` bytes is past its quota (--quota-backend-bytes). */
  overQuota(cost: number): boolean;
  /** Proposes a NOSPACE alarm for this member; settles when it is applied (or failed). */
  raiseNoSpace(): Promise<void>;
  /**
   * Entries up to this index were committed before this process started (they are replayed from the
   * WAL): they raise no alarm, as the state they were first applied to did that (or not) already.
   */
  readonly replayedUpTo: number;
  /** Users, roles and tokens: changed by Auth entries, checked for requests sent while auth was on. */
  readonly auth: Auth;
  /** Takes an applied compaction's remaining steps between other requests. */
  readonly compactionSteps: CompactionSteps;
}

/** Applies committed entries to `t` in order, and answers their waiters on this member. */
export function applyEntries(t: ApplyTarget, entries: Entry[]): void {
  for (const e of entries) {
    if (e.type === EntryType.ConfChange) {
      applyConfChange(t, decodeConfChange(e.data));
      continue;
    }
    if (e.data.length === 0) {
      // a new leader's empty entry: once it applies its first entry of the term, it takes over leases
      if (t.driver.state === StateType.Leader) t.lessor.promote(t.electionTimeoutMs);
      continue;
    }
    let p = decodeProposal(e.data);
    const waiter = t.proposer.take(p.tag, p.seq);
    let result: unknown;
    let over = false;
    try {
      p = authorized(t, p);
      over = e.index > t.replayedUpTo && exceedsQuota(t, p, waiter?.decoded);
      result = applyProposal(t, p, waiter?.decoded, e.index);
    } catch (err) {
      if (err instanceof GrpcError) {
        waiter?.reject(err);
        continue;
      }
      throw err;
    }
    if (over && !t.alarms.has(AlarmType.NOSPACE)) {
      // as etcd: the write is applied, but past this member's quota it answers NOSPACE once the member
      // has raised the alarm for itself
      t.logger.warn("applying raft message exceeded backend quota", { "member-id": hexId(t.memberId) });
      void t.raiseNoSpace().finally(() => waiter?.reject(Errors.noSpace()));
      continue;
    }
    waiter?.resolve(result);
  }
}

/**
 * The request of `p` as it may be applied now. One checked against auth (wrapped) passes if auth has not
 * changed since the check; a write sent while auth was off finds it on now and is refused as etcd refuses
 * a write from nobody.
 */
function authorized(t: ApplyTarget, p: Proposal): Proposal {
  if (p.kind === ProposalKind.Authorized) {
    const { authRevision, inner } = unwrapAuthorized(p);
    t.auth.store.checkRevision(authRevision);
    return inner;
  }
  if (
    t.auth.store.enabled &&
    (p.kind === ProposalKind.Put || p.kind === ProposalKind.DeleteRange || p.kind === ProposalKind.Txn)
  ) {
    throw AuthErrors.userEmpty();
  }
  return p;
}

/**
 * Whether applying `p` finds this member's database past its quota, judged before applying it as etcd's
 * quota applier does: for puts, transactions (costing nothing without a top-level put) and lease grants.
 */
function exceedsQuota(t: ApplyTarget, p: Proposal, decoded: unknown): boolean {
  switch (p.kind) {
    case ProposalKind.Put:
      return t.overQuota(p.payload.length);
    case ProposalKind.LeaseGrant:
      return t.overQuota(LEASE_GRANT_COST);
    case ProposalKind.Txn: {
      if (!t.overQuota(p.payload.length)) return false; // the cheap test first: the cost is at most that
      const r = (decoded as TxnRequest | undefined) ?? decodeTxnRequest(p.payload);
      const puts = [r.success, r.failure].some((ops) => ops.some((op) => op.requestPut));
      return t.overQuota(puts ? p.payload.length : 0);
    }
    default:
      return false;
  }
}

function applyProposal(t: ApplyTarget, p: Proposal, decoded: unknown, index: number): unknown {
  // requests the active alarms refuse (a Txn is judged by its operations, below)
  if (t.alarms.size > 0 && p.kind !== ProposalKind.Txn) {
    const refused = alarmRefusal(t.alarms, p.kind);
    if (refused) throw refused;
  }
  switch (p.kind) {
    case ProposalKind.Put: {
      const r = (decoded as PutRequest | undefined) ?? decodePutRequest(p.payload);
      const { response, events } = t.applier.put(r);
      emit(t, events, response.header.revision);
      return response;
    }
    case ProposalKind.DeleteRange: {
      const r = (decoded as DeleteRangeRequest | undefined) ?? decodeDeleteRangeRequest(p.payload);
      const { response, events } = t.applier.deleteRange(r);
      emit(t, events, response.header.revision);
      return response;
    }
    case ProposalKind.Txn: {
      const r = (decoded as TxnRequest | undefined) ?? decodeTxnRequest(p.payload);
      const refused = alarmRefusal(t.alarms, p.kind, r);
      if (refused) throw refused;
      const { response, events } = t.applier.txn(r);
      emit(t, events, response.header.revision);
      return response;
    }
    case ProposalKind.Compaction: {
      const r = (decoded as CompactionRequest | undefined) ?? decodeCompactionRequest(p.payload);
      const response = t.applier.compact(r);
      t.compactionSteps.kick();
      return response;
    }
    case ProposalKind.LeaseGrant: {
      const r = (decoded as LeaseGrantRequest | undefined) ?? decodeLeaseGrantRequest(p.payload);
      const lease = applyLeaseGrant(t.leases, r, t.minLeaseTtl);
      t.lessor.onGranted(lease.id);
      return {
        header: t.header(t.mvcc.currentRevision),
        ID: lease.id,
        TTL: lease.ttl,
        error: "",
      } as LeaseGrantResponse;
    }
    case ProposalKind.LeaseRevoke: {
      const r = (decoded as LeaseRevokeRequest | undefined) ?? decodeLeaseRevokeRequest(p.payload);
      const { response: revision, events } = applyLeaseRevoke(t.applier, r.ID);
      emit(t, events, revision);
      t.lessor.onRevoked(r.ID);
      return { header: t.header(revision) } as LeaseRevokeResponse;
    }
    case ProposalKind.LeaseCheckpoint: {
      const r = (decoded as LeaseCheckpointRequest | undefined) ?? decodeLeaseCheckpointRequest(p.payload);
      applyLeaseCheckpoint(t.leases, r);
      return { header: t.header(t.mvcc.currentRevision) };
    }
    case ProposalKind.MemberAttributes: {
      const attrs = JSON.parse(new TextDecoder().decode(p.payload)) as {
        id: string;
        name: string;
        clientUrls: string[];
      };
      const m = t.membership.get(BigInt("0x" + attrs.id));
      if (m) {
        m.name = attrs.name;
        m.clientUrls = attrs.clientUrls;
      }
      return undefined;
    }
    case ProposalKind.ClusterVersion:
      applyClusterVersion(t.membership, new TextDecoder().decode(p.payload), t.logger, t.memberId);
      return undefined;
    case ProposalKind.Alarm: {
      const r = (decoded as AlarmRequest | undefined) ?? decodeAlarmRequest(p.payload);
      const { alarms, changed } = applyAlarm(t.alarms, r);
      if (changed) {
        const [m] = alarms;
        t.logger.warn(r.action === AlarmAction.ACTIVATE ? "alarm raised" : "alarm cleared", {
          "member-id": hexId(m.memberID),
          alarm: alarmName(m.alarm),
        });
      }
      return { header: t.header(t.mvcc.currentRevision), alarms } as AlarmResponse;
    }
    case ProposalKind.V2:
      return applyV2(t.v2store, p.payload, decoded);
    case ProposalKind.V2Sync:
      applyV2Sync(t.v2store, p.payload, decoded);
      return undefined;
    case ProposalKind.Auth: {
      const c = (decoded as AuthChange | undefined) ?? decodeAuthChange(p.payload);
      return applyAuthChange(t.auth.store, c, index, t.auth.simple);
    }
    default:
      t.logger.warn("skipping an entry of unknown kind", { kind: p.kind });
      return undefined;
  }
}

function emit(t: ApplyTarget, events: MvccEvent[], revision: number): void {
  if (events.length === 0) return;
  t.watchHub.notify({ revision, events });
}

function applyConfChange(t: ApplyTarget, cc: ConfChange): void {
  // every member refuses the same changes: the check reads only replicated state
  const refused = validateConfChange(t.membership, cc);
  if (refused !== undefined) {
    t.logger.warn("rejected a configuration change", {
      type: ConfChangeType[cc.type],
      error: refused.message,
    });
    t.reconfig.settle(cc.id, refused);
    return;
  }
  t.driver.confState = t.driver.node.applyConfChange(cc);
  switch (cc.type) {
    case ConfChangeType.AddNode:
    case ConfChangeType.AddLearnerNode: {
      const existing = t.membership.get(cc.nodeId);
      if (existing && cc.type === ConfChangeType.AddNode) {
        existing.isLearner = false; // promotion
        break;
      }
      if (cc.context.length > 0) {
        const m = memberFromJson(JSON.parse(new TextDecoder().decode(cc.context)) as MemberJson);
        m.isLearner = cc.type === ConfChangeType.AddLearnerNode;
        t.membership.add(m);
      }
      break;
    }
    case ConfChangeType.RemoveNode:
      t.membership.remove(cc.nodeId);
      break;
    case ConfChangeType.UpdateNode:
      if (cc.context.length > 0) {
        const m = memberFromJson(JSON.parse(new TextDecoder().decode(cc.context)) as MemberJson);
        const existing = t.membership.get(cc.nodeId);
        if (existing) existing.peerUrls = m.peerUrls;
      }
      break;
  }
  t.syncPeers();
  t.campaignIfAlone();
  t.reconfig.settle(cc.id);
  if (cc.type === ConfChangeType.RemoveNode && cc.nodeId === t.memberId) t.onRemoved();
}
