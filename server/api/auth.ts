/**
 * The etcdserverpb.Auth service: users, roles, permissions, enabling auth and authenticating.
 *
 * Changes are checked here (only root may manage auth once it is on), hashed here (a new password is
 * hashed with bcrypt before it is proposed, so every member stores the same hash), then proposed through
 * Raft and checked again where they are applied (see server/auth/apply.ts). Reads are answered from this
 * member's applied state after a linearizable read. Authenticate checks the password here, at bcrypt's
 * cost, and proposes only a correct one; the password itself never leaves this file.
 *
 * @module
 */
import type { CallContext, GrpcRouter } from "../transport/grpc.ts";
import type { ResponseHeader } from "../pb/rpc.ts";
import {
  decodeAuthenticateRequest,
  decodeAuthRoleAddRequest,
  decodeAuthRoleDeleteRequest,
  decodeAuthRoleGetRequest,
  decodeAuthRoleGrantPermissionRequest,
  decodeAuthRoleRevokePermissionRequest,
  decodeAuthUserAddRequest,
  decodeAuthUserChangePasswordRequest,
  decodeAuthUserDeleteRequest,
  decodeAuthUserGetRequest,
  decodeAuthUserGrantRoleRequest,
  decodeAuthUserRevokeRoleRequest,
  encodeAuthDisableResponse,
  encodeAuthEnableResponse,
  encodeAuthenticateResponse,
  encodeAuthRoleAddResponse,
  encodeAuthRoleDeleteResponse,
  encodeAuthRoleGetResponse,
  encodeAuthRoleGrantPermissionResponse,
  encodeAuthRoleListResponse,
  encodeAuthRoleRevokePermissionResponse,
  encodeAuthStatusResponse,
  encodeAuthUserAddResponse,
  encodeAuthUserChangePasswordResponse,
  encodeAuthUserDeleteResponse,
  encodeAuthUserGetResponse,
  encodeAuthUserGrantRoleResponse,
  encodeAuthUserListResponse,
  encodeAuthUserRevokeRoleResponse,
} from "../pb/rpc.ts";
import { decodeOrFail } from "./decode.ts";
import type { Auth } from "../auth/auth.ts";
import {
  type AuthChange,
  type AuthChangeBody,
  type Authenticated,
  bytesToBase64,
  encodeAuthChange,
  permissionToJson,
} from "../auth/apply.ts";
import { AuthErrors } from "../auth/errors.ts";
import { simpleTokenPrefix } from "../auth/tokens.ts";
import { ProposalKind } from "../member/proposal.ts";

/** What the Auth service needs of the member. */
export interface AuthBackend {
  readonly auth: Auth;
  propose<T>(kind: ProposalKind, payload: Uint8Array, decoded: unknown): Promise<T>;
  currentHeader(): ResponseHeader;
  linearizableReadNotify(): Promise<void>;
}

/** A change without who sends it: {@link register} adds that. */
type Change = AuthChange extends infer C ? C extends AuthChange ? Omit<C, "user" | "revision"> : never
  : never;

/** Registers the Auth methods. */
export function registerAuth(router: GrpcRouter, b: AuthBackend): void {
  const auth = () => b.auth;
  /** Checks that the caller may manage auth, then proposes the change and waits for it to apply. */
  const change = async (ctx: CallContext, c: AuthChangeBody | (() => Promise<AuthChangeBody>)) => {
    const ai = await auth().infoOf(ctx);
    auth().store.checkAdmin(ai);
    const body = typeof c === "function" ? await c() : c;
    // the revision the admin check holds for: a change since makes the apply step refuse this one
    const revision = auth().store.revision;
    auth().store.checkAdmin(ai);
    const full = { ...body, user: ai?.username ?? "", revision } as AuthChange;
    await b.propose(ProposalKind.Auth, encodeAuthChange(full), full);
    return { header: b.currentHeader() };
  };
  /** A read: admins, or (where `self` says so) the user it is about. */
  const read = async (ctx: CallContext, self?: (username: string) => boolean) => {
    const ai = await auth().infoOf(ctx);
    await b.linearizableReadNotify();
    const store = auth().store;
    if (!(self !== undefined && ai !== undefined && self(ai.username))) store.checkAdmin(ai);
    return store;
  };

  router
    .unary("/etcdserverpb.Auth/AuthEnable", async (_raw, ctx) => {
      return encodeAuthEnableResponse(await change(ctx, { op: "authEnable" }));
    })
    .unary("/etcdserverpb.Auth/AuthDisable", async (_raw, ctx) => {
      return encodeAuthDisableResponse(await change(ctx, { op: "authDisable" }));
    })
    .unary("/etcdserverpb.Auth/AuthStatus", async () => {
      await b.linearizableReadNotify();
      const store = auth().store;
      return encodeAuthStatusResponse({
        header: b.currentHeader(),
        enabled: store.enabled,
        authRevision: store.revision,
      });
    })
    .unary("/etcdserverpb.Auth/Authenticate", async (raw) => {
      const r = decodeOrFail(decodeAuthenticateRequest, raw);
      // as etcd: a password checked at one auth revision is applied only at that revision; when auth
      // changed in between (another user added, say), the check is made again
      for (let attempt = 1;; attempt++) {
        const a = auth();
        if (!a.enabled) throw AuthErrors.authNotEnabled();
        const revision = a.store.revision;
        const user = a.store.users.get(r.name);
        // an unknown user costs a comparison too, so that the answer's timing does not tell users apart
        const ok = await a.passwords.matches(r.password, user?.password ?? UNKNOWN_USER_HASH);
        if (user === undefined || user.noPassword || !ok) throw AuthErrors.authFailed();
        const c: AuthChange = {
          op: "authenticate",
          name: r.name,
          user: r.name,
          revision,
          ...(a.simple !== undefined ? { tokenPrefix: simpleTokenPrefix() } : {}),
        };
        let done: Authenticated;
        try {
          done = await b.propose<Authenticated>(ProposalKind.Auth, encodeAuthChange(c), c);
        } catch (err) {
          if (attempt < AUTHENTICATE_ATTEMPTS && isOldRevision(err)) continue;
          throw err;
        }
        const token = done.token ?? await a.jwt!.sign(done.username, done.revision);
        return encodeAuthenticateResponse({ header: b.currentHeader(), token });
      }
    })
    .unary("/etcdserverpb.Auth/UserAdd", async (raw, ctx) => {
      const r = decodeOrFail(decodeAuthUserAddRequest, raw);
      const noPassword = r.options?.noPassword === true;
      if (r.name === "") throw AuthErrors.userEmpty();
      return encodeAuthUserAddResponse(
        await change(ctx, async () => ({
          op: "userAdd",
          name: r.name,
          noPassword,
          password: noPassword ? "" : await auth().passwords.hash(r.password),
        })),
      );
    })
    .unary("/etcdserverpb.Auth/UserGet", async (raw, ctx) => {
      const r = decodeOrFail(decodeAuthUserGetRequest, raw);
      const store = await read(ctx, (me) => me === r.name);
      return encodeAuthUserGetResponse({ header: b.currentHeader(), roles: store.userGet(r.name) });
    })
    .unary("/etcdserverpb.Auth/UserList", async (_raw, ctx) => {
      const store = await read(ctx);
      return encodeAuthUserListResponse({ header: b.currentHeader(), users: store.userList() });
    })
    .unary("/etcdserverpb.Auth/UserDelete", async (raw, ctx) => {
      const r = decodeOrFail(decodeAuthUserDeleteRequest, raw);
      return encodeAuthUserDeleteResponse(await change(ctx, { op: "userDelete", name: r.name }));
    })
    .unary("/etcdserverpb.Auth/UserChangePassword", async (raw, ctx) => {
      const r = decodeOrFail(decodeAuthUserChangePasswordRequest, raw);
      return encodeAuthUserChangePasswordResponse(
        await change(ctx, async () => ({
          op: "userChangePassword",
          name: r.name,
          password: await auth().passwords.hash(r.password),
        })),
      );
    })
    .unary("/etcdserverpb.Auth/UserGrantRole", async (raw, ctx) => {
      const r = decodeOrFail(decodeAuthUserGrantRoleRequest, raw);
      return encodeAuthUserGrantRoleResponse(
        await change(ctx, { op: "userGrantRole", name: r.user, role: r.role }),
      );
    })
    .unary("/etcdserverpb.Auth/UserRevokeRole", async (raw, ctx) => {
      const r = decodeOrFail(decodeAuthUserRevokeRoleRequest, raw);
      return encodeAuthUserRevokeRoleResponse(
        await change(ctx, { op: "userRevokeRole", name: r.name, role: r.role }),
      );
    })
    .unary("/etcdserverpb.Auth/RoleAdd", async (raw, ctx) => {
      const r = decodeOrFail(decodeAuthRoleAddRequest, raw);
      return encodeAuthRoleAddResponse(await change(ctx, { op: "roleAdd", name: r.name }));
    })
    .unary("/etcdserverpb.Auth/RoleGet", async (raw, ctx) => {
      const r = decodeOrFail(decodeAuthRoleGetRequest, raw);
      const store = await read(ctx, (me) => auth().store.hasRole(me, r.role));
      return encodeAuthRoleGetResponse({ header: b.currentHeader(), perm: store.roleGet(r.role) });
    })
    .unary("/etcdserverpb.Auth/RoleList", async (_raw, ctx) => {
      const store = await read(ctx);
      return encodeAuthRoleListResponse({ header: b.currentHeader(), roles: store.roleList() });
    })
    .unary("/etcdserverpb.Auth/RoleDelete", async (raw, ctx) => {
      const r = decodeOrFail(decodeAuthRoleDeleteRequest, raw);
      return encodeAuthRoleDeleteResponse(await change(ctx, { op: "roleDelete", name: r.role }));
    })
    .unary("/etcdserverpb.Auth/RoleGrantPermission", async (raw, ctx) => {
      const r = decodeOrFail(decodeAuthRoleGrantPermissionRequest, raw);
      return encodeAuthRoleGrantPermissionResponse(
        await change(ctx, {
          op: "roleGrantPermission",
          name: r.name,
          ...(r.perm === undefined ? {} : { perm: permissionToJson(r.perm) }),
        }),
      );
    })
    .unary("/etcdserverpb.Auth/RoleRevokePermission", async (raw, ctx) => {
      const r = decodeOrFail(decodeAuthRoleRevokePermissionRequest, raw);
      return encodeAuthRoleRevokePermissionResponse(
        await change(ctx, {
          op: "roleRevokePermission",
          name: r.role,
          key: bytesToBase64(r.key),
          rangeEnd: bytesToBase64(r.rangeEnd),
        }),
      );
    });
}

/** Authenticate checks a password again this many times at most when auth keeps changing meanwhile. */
const AUTHENTICATE_ATTEMPTS = 3;

function isOldRevision(err: unknown): boolean {
  return err instanceof Error && err.message === AuthErrors.authOldRevision().message;
}

/** A well-formed bcrypt hash no password matches in practice, compared against for unknown users. */
const UNKNOWN_USER_HASH = "$2b$10$" + "N".repeat(53);
