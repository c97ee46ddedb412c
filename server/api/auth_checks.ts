/**
 * The permission checks every v3 service makes before it serves or proposes a request, as etcd makes
 * them: KV ranges, puts, deletes and transactions (every compare and operation) by key; Watch creation
 * by its range; lease revocation by the keys attached; Maintenance and Cluster changes by the admin rule.
 *
 * A check that passes while auth is on yields the auth revision it passed at: a write carries it
 * through Raft and is refused where it is applied if auth has changed since (see member/proposal.ts).
 * While auth is off the checks cost one field read: services test {@linkcode RequestAuth.enabled} first.
 *
 * @module
 */
import type { CallContext } from "../transport/grpc.ts";
import type { DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest } from "../pb/rpc.ts";
import type { Auth } from "../auth/auth.ts";
import type { LeaseStore } from "../../storage/lease.ts";
import type { RecipeBackend } from "./lock.ts";

/** The member as the lock and election services use it, with writes that carry an auth revision. */
export interface CheckedRecipeTarget extends RecipeBackend {
  txn(r: TxnRequest, raw: Uint8Array, authRevision?: number): ReturnType<RecipeBackend["txn"]>;
  deleteRange(
    r: DeleteRangeRequest,
    raw: Uint8Array,
    authRevision?: number,
  ): ReturnType<RecipeBackend["deleteRange"]>;
}

/** What the checks read of the member. */
export interface AuthChecked {
  readonly auth: Auth;
  readonly leases: LeaseStore;
}

export class RequestAuth {
  constructor(private readonly m: AuthChecked) {}

  /** Whether auth is on (then every request is checked). */
  get enabled(): boolean {
    return this.m.auth.store.enabled;
  }

  readonly #leaseKeys = (id: bigint): Iterable<string> | undefined => this.m.leases.leases.get(id)?.keys;

  async range(ctx: CallContext, r: RangeRequest): Promise<void> {
    const a = this.m.auth;
    a.store.checkRange(await a.infoOf(ctx), r.key, r.rangeEnd);
  }

  /** Resolves with the auth revision the put passed at (undefined while auth is off). */
  async put(ctx: CallContext, r: PutRequest): Promise<number | undefined> {
    const a = this.m.auth;
    const ai = await a.infoOf(ctx);
    a.checkPut(ai, r, this.#leaseKeys);
    return this.#passed();
  }

  async deleteRange(ctx: CallContext, r: DeleteRangeRequest): Promise<number | undefined> {
    const a = this.m.auth;
    a.checkDeleteRange(await a.infoOf(ctx), r);
    return this.#passed();
  }

  async txn(ctx: CallContext, r: TxnRequest): Promise<number | undefined> {
    const a = this.m.auth;
    a.checkTxn(await a.infoOf(ctx), r, this.#leaseKeys);
    return this.#passed();
  }

  /** Revoking a lease needs write permission on every key attached to it. */
  async leaseRevoke(ctx: CallContext, id: bigint): Promise<number | undefined> {
    const a = this.m.auth;
    a.checkLeaseKeys(await a.infoOf(ctx), this.#leaseKeys(id));
    return this.#passed();
  }

  /** A lease's time to live and keys: read permission on every attached key. */
  async leaseTimeToLive(ctx: CallContext, id: bigint): Promise<void> {
    const a = this.m.auth;
    a.checkLeaseKeysReadable(await a.infoOf(ctx), this.#leaseKeys(id));
  }

  /** A watch on `[key, rangeEnd)` needs read permission on all of it. */
  async watch(ctx: CallContext, key: Uint8Array, rangeEnd: Uint8Array): Promise<void> {
    const a = this.m.auth;
    a.store.checkRange(await a.infoOf(ctx), key, rangeEnd);
  }

  /** Cluster and maintenance changes: the caller has the root role. */
  async admin(ctx: CallContext): Promise<void> {
    const a = this.m.auth;
    a.store.checkAdmin(await a.infoOf(ctx));
  }

  /** Any authenticated caller (Status, listing alarms). */
  async user(ctx: CallContext): Promise<void> {
    const a = this.m.auth;
    a.requireUser(await a.infoOf(ctx));
  }

  /**
   * The member as the lock and election services see it for one call: while auth is on, every read and
   * write their recipes make is checked as the caller's own (etcd runs them with the caller's token).
   */
  async asCaller(server: CheckedRecipeTarget, ctx: CallContext): Promise<RecipeBackend> {
    if (!this.enabled) return server;
    const a = this.m.auth;
    const ai = await a.infoOf(ctx);
    return {
      range: async (r) => {
        a.store.checkRange(ai, r.key, r.rangeEnd);
        return await server.range(r);
      },
      txn: async (r, raw) => {
        a.checkTxn(ai, r, this.#leaseKeys);
        return await server.txn(r, raw, this.#passed());
      },
      deleteRange: async (r, raw) => {
        a.checkDeleteRange(ai, r);
        return await server.deleteRange(r, raw, this.#passed());
      },
      leaseGrant: (r) => server.leaseGrant(r),
      watchHub: server.watchHub,
      header: (revision) => server.header(revision),
    };
  }

  /** The revision a check just passed at; undefined while auth is off. */
  #passed(): number | undefined {
    const s = this.m.auth.store;
    return s.enabled ? s.revision : undefined;
  }
}
