/**
 * The member's side of etcd's v2 key store: writes go through Raft like every other change, and the
 * leader expires TTL keys by proposing the time now and then (etcd's SYNC request), so that every member
 * removes the same keys at the same log position. Reads are served from this member's copy.
 *
 * @module
 */
import { V2Store } from "../../storage/v2store/store.ts";
import type { V2Event } from "../../storage/v2store/store.ts";
import { V2Error, V2ErrorCode } from "../../storage/v2store/errors.ts";
import { applyKeysRequest, type V2KeysRequest } from "../v2/request.ts";
import type { Clock } from "../clock.ts";
import { GrpcError } from "../transport/status.ts";
import { ProposalKind } from "./proposal.ts";

/** How often the leader proposes the time while TTL keys exist (etcd: every 500 ms). */
export const V2_SYNC_INTERVAL_MS = 500;

/** A v2 write as proposed: the request and the proposer's clock, so every member applies the same. */
export interface V2Proposal {
  req: V2KeysRequest;
  /** Milliseconds since the epoch at the proposing member. */
  now: number;
}

/** The leader's periodic proposal of its clock. */
export interface V2SyncProposal {
  now: number;
}

/** What applying a v2 write gives its waiter: the event, or the store's refusal. */
export type V2Result = { event: V2Event } | { error: V2Error };

/** What the backend needs from its member. */
export interface V2BackendDeps {
  clock: Clock;
  propose<T>(kind: ProposalKind, payload: Uint8Array, decoded: unknown): Promise<T>;
  isLeader(): boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The v2 store of a member and the proposals that change it. */
export class V2Backend {
  store = new V2Store();
  #timer = 0;

  constructor(private readonly deps: V2BackendDeps) {}

  /** Starts the leader's expiry proposals (they are sent only while this member leads). */
  start(): void {
    this.#timer = this.deps.clock.setInterval(() => this.#sync(), V2_SYNC_INTERVAL_MS);
  }

  close(): void {
    this.deps.clock.clearInterval(this.#timer);
  }

  /** Takes the contents of the store a snapshot holds; waiting watchers stay, as in etcd. */
  restore(store: V2Store): void {
    this.store.adopt(store);
  }

  /** Proposes a write and returns its event once applied here; refusals come back as {@link V2Error}. */
  async write(req: V2KeysRequest): Promise<V2Event> {
    const proposal: V2Proposal = { req, now: this.deps.clock.now() };
    let result: V2Result;
    try {
      result = await this.deps.propose<V2Result>(
        ProposalKind.V2,
        encoder.encode(JSON.stringify(proposal)),
        proposal,
      );
    } catch (err) {
      // etcd answers a failed proposal as a Raft internal error carrying the reason
      if (err instanceof GrpcError) {
        throw new V2Error(V2ErrorCode.RaftInternal, err.message, this.store.index);
      }
      throw err;
    }
    if ("error" in result) throw result.error;
    return result.event;
  }

  #sync(): void {
    if (!this.deps.isLeader() || !this.store.hasTtlKeys()) return;
    const proposal: V2SyncProposal = { now: this.deps.clock.now() };
    this.deps.propose(ProposalKind.V2Sync, encoder.encode(JSON.stringify(proposal)), proposal).catch(
      () => {},
    );
  }
}

/** Applies a committed v2 write (decoded on members that did not propose it). */
export function applyV2(store: V2Store, payload: Uint8Array, decoded: unknown): V2Result {
  const p = (decoded as V2Proposal | undefined) ?? JSON.parse(decoder.decode(payload)) as V2Proposal;
  try {
    return { event: applyKeysRequest(store, p.req, p.now) };
  } catch (err) {
    if (err instanceof V2Error) return { error: err };
    throw err;
  }
}

/** Applies the leader's clock: keys whose TTL ran out by then expire. */
export function applyV2Sync(store: V2Store, payload: Uint8Array, decoded: unknown): void {
  const p = (decoded as V2SyncProposal | undefined) ?? JSON.parse(decoder.decode(payload)) as V2SyncProposal;
  store.deleteExpired(p.now);
}
