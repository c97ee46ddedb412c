/**
 * What the Lease service asks of a member: grants and revokes go through Raft like any write; renewals
 * and time-to-live answers come from the leader's lessor, and a follower forwards them to the leader's
 * client URL (as etcd does), since only the leader knows when a lease expires.
 *
 * @module
 */
import { NONE } from "../../raft/types.ts";
import type { LeaseStore } from "../../storage/lease.ts";
import { Errors } from "../errors.ts";
import { type LeaseTimeToLive, type Lessor, newLeaseId, NotPrimaryError } from "../lease/lessor.ts";
import {
  encodeLeaseGrantRequest,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  type LeaseRevokeRequest,
  type LeaseRevokeResponse,
} from "../pb/rpc.ts";
import { type LeaderCalls, LeaderForwarder } from "./forward.ts";
import type { Membership } from "./membership.ts";
import { ProposalKind } from "./proposal.ts";
import type { RaftDriver } from "./raft_driver.ts";

/** What the lease calls need of the member. */
export interface MemberLeasesDeps {
  memberId: bigint;
  driver: RaftDriver;
  lessor: Lessor;
  membership: Membership;
  /** The applied lease state (replaced when a snapshot is restored). */
  leases: () => LeaseStore;
  propose<T>(kind: ProposalKind, payload: Uint8Array, decoded: unknown): Promise<T>;
  /** Source of randomness for lease IDs. */
  random: () => number;
}

/** The lease calls of one member. */
export class MemberLeases {
  private forwarder: LeaderForwarder | undefined;

  constructor(private readonly d: MemberLeasesDeps) {}

  /** Proposes a grant; the proposing member picks the ID, so every member applies the same one. */
  grant(r: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    const req: LeaseGrantRequest = { TTL: r.TTL, ID: r.ID === 0n ? newLeaseId(this.d.random) : r.ID };
    return this.d.propose<LeaseGrantResponse>(ProposalKind.LeaseGrant, encodeLeaseGrantRequest(req), req);
  }

  /** Proposes a revoke; `raw` is the request as received. */
  revoke(r: LeaseRevokeRequest, raw: Uint8Array): Promise<LeaseRevokeResponse> {
    return this.d.propose<LeaseRevokeResponse>(ProposalKind.LeaseRevoke, raw, r);
  }

  /** Renews on the leader (once it has applied all it committed), else on the leader it knows. */
  async renew(id: bigint, signal: AbortSignal): Promise<number> {
    const { lessor, driver } = this.d;
    if (lessor.isPrimary) {
      await driver.waitApplied(driver.node.commitIndex());
      try {
        return await lessor.renew(id, signal);
      } catch (err) {
        if (!(err instanceof NotPrimaryError)) throw err;
      }
    }
    return await this.forwardToLeader((f) => f.renew(id, signal));
  }

  /** The leader's view of a lease, asked of the leader when this member is not it. */
  async timeToLive(id: bigint, keys: boolean, signal: AbortSignal): Promise<LeaseTimeToLive> {
    const { lessor, driver } = this.d;
    if (lessor.isPrimary) {
      await driver.waitApplied(driver.node.commitIndex());
      try {
        return lessor.timeToLive(id, keys);
      } catch (err) {
        if (!(err instanceof NotPrimaryError)) throw err;
      }
    }
    return await this.forwardToLeader((f) => f.timeToLive(id, keys, signal));
  }

  /** Every lease: the leader's in expiry order, a follower's applied ones by ID. */
  list(): bigint[] {
    if (this.d.lessor.isPrimary) return this.d.lessor.leases();
    // a follower lists what it has applied; order by ID as no expiry is known here
    return [...this.d.leases().leases.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Closes the connection to the leader, if one was opened. */
  close(): void {
    this.forwarder?.close();
  }

  /** Runs a lease call on the leader's client URL; without a known leader the client should retry. */
  private async forwardToLeader<T>(call: (f: LeaderCalls) => Promise<T>): Promise<T> {
    const lead = this.d.driver.lead;
    const leader = lead === NONE ? undefined : this.d.membership.get(lead);
    if (!leader || lead === this.d.memberId || leader.clientUrls.length === 0) throw Errors.noLeader();
    this.forwarder ??= new LeaderForwarder();
    return await call(this.forwarder.to(leader.clientUrls[0]));
  }
}
