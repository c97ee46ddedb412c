/**
 * Runtime reconfiguration: the Cluster API's MemberAdd, MemberRemove, MemberUpdate and MemberPromote as
 * Raft configuration changes, one at a time, with etcd's safety rules.
 *
 * Before proposing, a change is checked against the members that are up (with `--strict-reconfig-check`,
 * etcd's default): adding a voter needs a quorum of started members counting the new one, removing a
 * voter must leave a quorum of started, connected members, and a learner is promoted only once its log
 * has caught up with the leader's (90% of the leader's match index, as etcd). When the change is
 * applied, every member checks it again against the replicated membership ({@link validateConfChange}),
 * so all members accept or refuse it alike; the proposer's caller gets the result.
 *
 * @module
 */
import { ConfChangeType, StateType } from "../../raft/types.ts";
import type { ConfChange } from "../../raft/types.ts";
import { memberId as computeMemberId } from "../../discovery/ids.ts";
import type { Clock } from "../clock.ts";
import { Errors } from "../errors.ts";
import type { GrpcError } from "../transport/status.ts";
import { type Member, memberFromJson, type MemberJson, type Membership, memberToJson } from "./membership.ts";
import type { RaftDriver } from "./raft_driver.ts";

/** etcd 3.4/3.5 allow one learner at a time. */
export const MAX_LEARNERS = 1;
/** A learner may be promoted once its match index reaches this share of the leader's. */
const READY_PERCENT = 0.9;
/** A peer counts as connected for the quorum checks when its stream has been up at least this long (etcd). */
const HEALTH_INTERVAL_MS = 5000;

/** What reconfiguration needs from its member. */
export interface ReconfigDeps {
  memberId: bigint;
  driver: RaftDriver;
  membership: Membership;
  clock: Clock;
  strictReconfigCheck: boolean;
  requestTimeoutMs: number;
  /** Since when the stream to a peer has been up (ms), undefined while it is down. */
  activeSince(id: bigint): number | undefined;
  /** Random 64-bit IDs for the changes' waiters. */
  random(): number;
}

interface Waiter {
  resolve(): void;
  reject(err: GrpcError): void;
  timer: number;
}

/** The proposing side of membership changes. */
export class Reconfiguration {
  readonly #waiters = new Map<bigint, Waiter>();

  constructor(private readonly d: ReconfigDeps) {}

  /** MemberAdd: a new member with `peerUrls` (a learner when asked); its ID is derived as etcd does. */
  async add(peerUrls: string[], isLearner: boolean): Promise<Member> {
    if (peerUrls.length === 0 || peerUrls.some((u) => !isPeerUrl(u))) throw Errors.memberBadUrls();
    const id = computeMemberId(peerUrls, "", new Date(this.d.clock.now()));
    const m: Member = { id, name: "", peerUrls: [...peerUrls], clientUrls: [], isLearner };
    if (this.d.strictReconfigCheck && !isLearner) {
      if (!readyToAddVoter(this.d.membership)) throw Errors.memberNotEnoughStarted();
      if (!this.#connectedToAll(this.d.membership.list().filter((x) => !x.isLearner))) {
        throw Errors.unhealthy();
      }
    }
    await this.#configure({
      type: isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode,
      nodeId: id,
      context: encodeMember(m),
    });
    return m;
  }

  /** MemberRemove. */
  async remove(id: bigint): Promise<void> {
    const m = this.d.membership.get(id);
    if (this.d.strictReconfigCheck && m !== undefined && !m.isLearner) {
      if (!readyToRemoveVoter(this.d.membership, id)) throw Errors.memberNotEnoughStarted();
      // a member that is down is safe to remove; otherwise the rest must still make a quorum
      const down = id !== this.d.memberId && this.d.activeSince(id) === undefined;
      if (!down) {
        const voters = this.d.membership.list().filter((x) => !x.isLearner);
        const active = this.#connectedCount(voters);
        if (active - 1 < 1 + Math.floor((voters.length - 1) / 2)) throw Errors.unhealthy();
      }
    }
    await this.#configure({ type: ConfChangeType.RemoveNode, nodeId: id, context: new Uint8Array() });
  }

  /** MemberUpdate: new peer URLs for a member. */
  async update(id: bigint, peerUrls: string[]): Promise<void> {
    if (peerUrls.length === 0 || peerUrls.some((u) => !isPeerUrl(u))) throw Errors.memberBadUrls();
    const m = this.d.membership.get(id);
    const updated: Member = m === undefined
      ? { id, name: "", peerUrls, clientUrls: [], isLearner: false }
      : { ...m, peerUrls: [...peerUrls] };
    await this.#configure({ type: ConfChangeType.UpdateNode, nodeId: id, context: encodeMember(updated) });
  }

  /** MemberPromote: a learner becomes a voter once it has caught up (asked of the leader). */
  async promote(id: bigint): Promise<void> {
    const m = this.d.membership.get(id);
    if (m === undefined) throw Errors.memberNotFound();
    if (!m.isLearner) throw Errors.memberNotLearner();
    if (this.d.driver.state !== StateType.Leader) throw Errors.notLeader();
    const progress = this.d.driver.node.status().progress;
    const learner = progress?.get(id);
    const leader = progress?.get(this.d.memberId);
    if (learner !== undefined && leader !== undefined && learner.match < leader.match * READY_PERCENT) {
      throw Errors.learnerNotReady();
    }
    if (this.d.strictReconfigCheck && !readyToPromote(this.d.membership, id)) {
      throw Errors.memberNotEnoughStarted();
    }
    await this.#configure({
      type: ConfChangeType.AddNode,
      nodeId: id,
      context: encodeMember({ ...m, isLearner: false }),
    });
  }

  /** Called when the change `id` is applied here: `err` when the membership refused it. */
  settle(id: bigint | undefined, err?: GrpcError): void {
    if (id === undefined) return;
    const w = this.#waiters.get(id);
    if (w === undefined) return;
    this.#waiters.delete(id);
    this.d.clock.clearTimeout(w.timer);
    if (err) w.reject(err);
    else w.resolve();
  }

  /** Fails every change still waiting (the member stops). */
  close(err: GrpcError): void {
    for (const [id, w] of this.#waiters) {
      this.d.clock.clearTimeout(w.timer);
      w.reject(err);
      this.#waiters.delete(id);
    }
  }

  /** Proposes `cc` and waits until it is applied on this member (or times out). */
  #configure(cc: ConfChange): Promise<void> {
    const id = BigInt(Math.floor(this.d.random() * 2 ** 32)) << 32n |
      BigInt(Math.floor(this.d.random() * 2 ** 32));
    return new Promise<void>((resolve, reject) => {
      const timer = this.d.clock.setTimeout(() => {
        this.#waiters.delete(id);
        reject(Errors.timeout());
      }, this.d.requestTimeoutMs);
      this.#waiters.set(id, { resolve, reject, timer });
      try {
        this.d.driver.node.proposeConfChange({ ...cc, id });
        this.d.driver.kick();
      } catch {
        this.#waiters.delete(id);
        this.d.clock.clearTimeout(timer);
        reject(this.d.driver.lead === 0n ? Errors.noLeader() : Errors.timeout());
      }
    });
  }

  #connectedCount(members: Member[]): number {
    const since = this.d.clock.now() - HEALTH_INTERVAL_MS;
    let n = 0;
    for (const m of members) {
      if (m.id === this.d.memberId) {
        n++;
        continue;
      }
      const t = this.d.activeSince(m.id);
      if (t !== undefined && t <= since) n++;
    }
    return n;
  }

  #connectedToAll(members: Member[]): boolean {
    return this.#connectedCount(members) === members.length;
  }
}

/** A member has started once it published its name (etcd's IsStarted). */
function started(m: Member): boolean {
  return m.name !== "";
}

/** etcd's IsReadyToAddVotingMember: with the new voter, a quorum of voters has started. */
function readyToAddVoter(ms: Membership): boolean {
  const voters = ms.list().filter((m) => !m.isLearner);
  const members = voters.length + 1;
  const up = voters.filter(started).length;
  // adding a second member to a one-member cluster (restoring from a backup) is always allowed
  if (up === 1 && members === 2) return true;
  return up >= Math.floor(members / 2) + 1;
}

/** etcd's IsReadyToRemoveVotingMember: without it, a quorum of the other voters has started. */
function readyToRemoveVoter(ms: Membership, id: bigint): boolean {
  const others = ms.list().filter((m) => !m.isLearner && m.id !== id);
  return others.filter(started).length >= Math.floor(others.length / 2) + 1;
}

/** etcd's IsReadyToPromoteMember: with the learner as a voter, a quorum has started. */
function readyToPromote(ms: Membership, id: bigint): boolean {
  const voters = ms.list().filter((m) => !m.isLearner || m.id === id);
  return voters.filter(started).length >= Math.floor(voters.length / 2) + 1;
}

function isPeerUrl(u: string): boolean {
  try {
    const url = new URL(u);
    return (url.protocol === "http:" || url.protocol === "https:") && url.port !== "" &&
      (url.pathname === "" || url.pathname === "/") && url.search === "" && url.hash === "";
  } catch {
    return false;
  }
}

function encodeMember(m: Member): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(memberToJson(m)));
}

/** The member a conf change's context describes, if any. */
export function decodeMember(context: Uint8Array): Member | undefined {
  if (context.length === 0) return undefined;
  return memberFromJson(JSON.parse(new TextDecoder().decode(context)) as MemberJson);
}

/**
 * etcd's ValidateConfigurationChange, at apply time on every member: the error a change gets from the
 * replicated membership, or undefined when it may be applied.
 */
export function validateConfChange(ms: Membership, cc: ConfChange): GrpcError | undefined {
  const m = decodeMember(cc.context);
  switch (cc.type) {
    case ConfChangeType.AddNode:
    case ConfChangeType.AddLearnerNode: {
      if (ms.removed.has(cc.nodeId)) return Errors.memberNotFound();
      const existing = ms.get(cc.nodeId);
      // adding a voter that is already a member promotes it, which only a learner can be
      if (existing !== undefined && cc.type === ConfChangeType.AddNode) {
        return existing.isLearner ? undefined : Errors.memberNotLearner();
      }
      if (existing !== undefined) return Errors.memberExist();
      if (m !== undefined && urlsTaken(ms, m.peerUrls, cc.nodeId)) return Errors.peerUrlExist();
      if (cc.type === ConfChangeType.AddLearnerNode) {
        const learners = ms.list().filter((x) => x.isLearner).length;
        if (learners + 1 > MAX_LEARNERS) return Errors.tooManyLearners();
      }
      return undefined;
    }
    case ConfChangeType.RemoveNode:
      if (ms.removed.has(cc.nodeId) || ms.get(cc.nodeId) === undefined) return Errors.memberNotFound();
      return undefined;
    case ConfChangeType.UpdateNode:
      if (ms.removed.has(cc.nodeId) || ms.get(cc.nodeId) === undefined) return Errors.memberNotFound();
      if (m !== undefined && urlsTaken(ms, m.peerUrls, cc.nodeId)) return Errors.peerUrlExist();
      return undefined;
    default:
      return undefined;
  }
}

/** Whether another member than `id` already has one of `urls`. */
function urlsTaken(ms: Membership, urls: string[], id: bigint): boolean {
  const mine = new Set(urls);
  return ms.list().some((x) => x.id !== id && x.peerUrls.some((u) => mine.has(u)));
}
