/**
 * A member's auth: the replicated {@linkcode AuthStore}, its tokens and password hashing, and the checks
 * requests pass before they are served or proposed.
 *
 * Who a request is from: the `token` (or `authorization`, as etcd's gateway sends it) metadata of the
 * call; without one, with `--client-cert-auth`, the verified client certificate's common name. A request
 * with neither is checked as nobody, which fails ("user name is empty") where a permission is needed.
 * While auth is disabled none of this runs: {@linkcode Auth.enabled} is one field read.
 *
 * @module
 */
import type { CallContext } from "../transport/grpc.ts";
import type { Clock } from "../clock.ts";
import type { Config } from "../config/mod.ts";
import type { RequestOp, TxnRequest } from "../pb/rpc.ts";
import { AuthErrors } from "./errors.ts";
import { type AuthInfo, AuthStore } from "./store.ts";
import {
  AuthTokenConfigError,
  JwtTokens,
  parseJwtOptions,
  SimpleTokens,
  type TokenProvider,
} from "./tokens.ts";
import { Passwords } from "./passwords.ts";
import { latin1Bytes } from "../../storage/mvcc/bytes.ts";

/** What auth takes from the member's configuration. */
export interface AuthOptions {
  /** `--auth-token`. */
  authToken: string;
  /** `--auth-token-ttl`, seconds. */
  authTokenTtlSeconds: number;
  /** `--bcrypt-cost`. */
  bcryptCost: number;
  /** `--client-cert-auth`: a client certificate's CN names the user when no token is sent. */
  clientCertAuth: boolean;
  clock: Clock;
  /** This member's applied index (a simple token from another member may not be applied here yet). */
  appliedIndex: () => number;
}

export class Auth {
  /** Replaced when a snapshot is restored. */
  store: AuthStore;
  readonly tokens: TokenProvider;
  readonly simple: SimpleTokens | undefined;
  readonly jwt: JwtTokens | undefined;
  readonly passwords: Passwords;

  private constructor(
    store: AuthStore,
    tokens: TokenProvider,
    passwords: Passwords,
    private readonly o: AuthOptions,
  ) {
    this.store = store;
    this.tokens = tokens;
    this.simple = tokens instanceof SimpleTokens ? tokens : undefined;
    this.jwt = tokens instanceof JwtTokens ? tokens : undefined;
    this.passwords = passwords;
  }

  /** Sets up tokens as `--auth-token` says; throws {@linkcode AuthTokenConfigError} for a bad value. */
  static async create(o: AuthOptions, store: AuthStore = new AuthStore()): Promise<Auth> {
    const kind = o.authToken.split(",")[0];
    let tokens: TokenProvider;
    if (kind === "simple") {
      tokens = new SimpleTokens(o.clock, o.authTokenTtlSeconds * 1000, o.appliedIndex);
    } else if (kind === "jwt") {
      tokens = await JwtTokens.create(o.clock, parseJwtOptions(o.authToken));
    } else {
      throw new AuthTokenConfigError("auth: invalid auth options");
    }
    return new Auth(store, tokens, new Passwords(o.bcryptCost), o);
  }

  /** Auth as a member's configuration sets it up (--auth-token, --auth-token-ttl, --bcrypt-cost). */
  static fromConfig(config: Config, clock: Clock, appliedIndex: () => number): Promise<Auth> {
    return Auth.create({
      authToken: config.authToken,
      authTokenTtlSeconds: config.authTokenTtlSeconds,
      bcryptCost: config.bcryptCost,
      clientCertAuth: config.clientTls.clientCertAuth,
      clock,
      appliedIndex,
    });
  }

  get enabled(): boolean {
    return this.store.enabled;
  }

  /**
   * Who the call is from, or undefined while auth is disabled. Throws "invalid auth token" for a token
   * that is unknown, expired or badly signed.
   */
  async infoOf(ctx: CallContext): Promise<AuthInfo | undefined> {
    if (!this.store.enabled) return undefined;
    let token = ctx.metadata.get("token") ?? ctx.metadata.get("authorization");
    if (token !== undefined) {
      if (token.startsWith("Bearer ")) token = token.slice(7);
      const info = await this.tokens.info(token, this.store.revision, ctx.signal);
      if (info === undefined) throw AuthErrors.invalidAuthToken();
      return info;
    }
    const cn = this.o.clientCertAuth ? ctx.peerCertificate?.commonName : undefined;
    if (cn !== undefined && cn !== "" && ctx.metadata.get("grpcgateway-accept") === undefined) {
      return { username: cn, revision: this.store.revision };
    }
    return { username: "", revision: 0 };
  }

  /** Any authenticated user (etcd's rule for Status and listing alarms). */
  requireUser(ai: AuthInfo | undefined): void {
    if (ai !== undefined && this.store.enabled && ai.username === "") throw AuthErrors.userEmpty();
  }

  /** A put: write on the key, write on every key of its lease, read on the key for the previous value. */
  checkPut(
    ai: AuthInfo | undefined,
    r: { key: Uint8Array; lease: bigint; prevKv: boolean },
    leaseKeys: (id: bigint) => Iterable<string> | undefined,
  ): void {
    const s = this.store;
    s.checkPut(ai, r.key);
    if (r.lease !== 0n) this.checkLeaseKeys(ai, leaseKeys(r.lease));
    if (r.prevKv) s.checkRange(ai, r.key, EMPTY);
  }

  /** A lease's keys may only be revoked (or attached to) by a user that may write them all. */
  checkLeaseKeys(ai: AuthInfo | undefined, keys: Iterable<string> | undefined): void {
    if (keys === undefined || this.store.isAdmin(ai)) return;
    for (const k of keys) this.store.checkPut(ai, latin1Bytes(k));
  }

  /** Read permission on every attached key (LeaseTimeToLive, as etcd checks it). */
  checkLeaseKeysReadable(ai: AuthInfo | undefined, keys: Iterable<string> | undefined): void {
    if (keys === undefined || this.store.isAdmin(ai)) return;
    for (const k of keys) this.store.checkRange(ai, latin1Bytes(k), EMPTY);
  }

  /** A delete: write on the range, and read on it when the previous values are asked for. */
  checkDeleteRange(
    ai: AuthInfo | undefined,
    r: { key: Uint8Array; rangeEnd: Uint8Array; prevKv: boolean },
  ): void {
    this.store.checkDeleteRange(ai, r.key, r.rangeEnd);
    if (r.prevKv) this.store.checkRange(ai, r.key, r.rangeEnd);
  }

  /** A transaction: read on every compare, and each operation as its own request (nested ones too). */
  checkTxn(
    ai: AuthInfo | undefined,
    r: TxnRequest,
    leaseKeys: (id: bigint) => Iterable<string> | undefined,
  ): void {
    for (const c of r.compare) this.store.checkRange(ai, c.key, c.rangeEnd);
    this.#checkOps(ai, r.success, leaseKeys);
    this.#checkOps(ai, r.failure, leaseKeys);
  }

  #checkOps(
    ai: AuthInfo | undefined,
    ops: RequestOp[],
    leaseKeys: (id: bigint) => Iterable<string> | undefined,
  ): void {
    for (const op of ops) {
      if (op.requestRange) this.store.checkRange(ai, op.requestRange.key, op.requestRange.rangeEnd);
      else if (op.requestPut) this.checkPut(ai, op.requestPut, leaseKeys);
      else if (op.requestDeleteRange) this.checkDeleteRange(ai, op.requestDeleteRange);
      else if (op.requestTxn) this.checkTxn(ai, op.requestTxn, leaseKeys);
    }
  }

  close(): void {
    this.tokens.close();
  }
}

const EMPTY = new Uint8Array(0);
