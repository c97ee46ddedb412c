/**
 * Auth changes as they travel through Raft, and their effect when applied.
 *
 * A change is proposed as JSON (an {@linkcode AuthChange}) after the proposing member has checked that
 * its sender may make it, at auth revision `revision`. Applying it re-checks what may have changed since:
 * a change checked at an older revision is refused ("revision of auth store is old"), and management
 * changes are checked against the admin rule again, as etcd's apply step does. Passwords arrive hashed.
 *
 * @module
 */
import type { Permission } from "../pb/rpc.ts";
import { AuthErrors } from "./errors.ts";
import { latin1, latin1Bytes } from "../../storage/mvcc/bytes.ts";
import type { AuthStore } from "./store.ts";
import type { SimpleTokens } from "./tokens.ts";

/** One auth change; `user` and `revision` say who sent it and at which auth revision it was checked. */
export type AuthChange =
  & { user: string; revision: number }
  & (
    | { op: "authEnable" | "authDisable" }
    | { op: "authenticate"; name: string; tokenPrefix?: string }
    | { op: "userAdd"; name: string; password: string; noPassword: boolean }
    | { op: "userDelete"; name: string }
    | { op: "userChangePassword"; name: string; password: string }
    | { op: "userGrantRole" | "userRevokeRole"; name: string; role: string }
    | { op: "roleAdd" | "roleDelete"; name: string }
    | { op: "roleGrantPermission"; name: string; perm?: PermissionJson }
    | { op: "roleRevokePermission"; name: string; key: string; rangeEnd: string }
  );

/** A change without who sends it and when it was checked (what a service fills in). */
export type AuthChangeBody = AuthChange extends infer C
  ? C extends AuthChange ? Omit<C, "user" | "revision"> : never
  : never;

/** A permission in JSON: the type and base64 key and range end. */
export interface PermissionJson {
  type: number;
  key: string;
  rangeEnd: string;
}

/** What an applied Authenticate answers: the simple token, or who to sign a JWT for. */
export interface Authenticated {
  token?: string;
  username: string;
  revision: number;
}

export function encodeAuthChange(c: AuthChange): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(c));
}

export function decodeAuthChange(payload: Uint8Array): AuthChange {
  return JSON.parse(new TextDecoder().decode(payload)) as AuthChange;
}

export function permissionToJson(p: Permission): PermissionJson {
  return { type: p.permType, key: bytesToBase64(p.key), rangeEnd: bytesToBase64(p.rangeEnd) };
}

/**
 * Applies `c` to `store` (the entry's log index completes a simple token); throws a GrpcError the
 * proposer's client gets when the change is refused. `simple` learns of new and dead simple tokens.
 */
export function applyAuthChange(
  store: AuthStore,
  c: AuthChange,
  index: number,
  simple: SimpleTokens | undefined,
): Authenticated | undefined {
  if (c.op === "authenticate") {
    if (!store.enabled) throw AuthErrors.authNotEnabled();
    // the password was checked at `revision`: a change since (say, a new password) voids the check
    if (c.revision !== store.revision || !store.users.has(c.name)) throw AuthErrors.authOldRevision();
    const token = c.tokenPrefix === undefined ? undefined : `${c.tokenPrefix}.${index}`;
    if (token !== undefined) simple?.assign(token, c.name);
    return { token, username: c.name, revision: store.revision };
  }
  store.checkRevision(c.revision);
  store.checkAdmin({ username: c.user, revision: c.revision });
  switch (c.op) {
    case "authEnable":
      store.enable();
      break;
    case "authDisable":
      store.disable();
      simple?.clear();
      break;
    case "userAdd":
      store.userAdd(c.name, c.password, c.noPassword);
      break;
    case "userDelete":
      store.userDelete(c.name);
      simple?.invalidateUser(c.name);
      break;
    case "userChangePassword":
      store.userChangePassword(c.name, c.password);
      simple?.invalidateUser(c.name);
      break;
    case "userGrantRole":
      store.userGrantRole(c.name, c.role);
      break;
    case "userRevokeRole":
      store.userRevokeRole(c.name, c.role);
      break;
    case "roleAdd":
      store.roleAdd(c.name);
      break;
    case "roleDelete":
      store.roleDelete(c.name);
      break;
    case "roleGrantPermission":
      store.roleGrantPermission(
        c.name,
        c.perm === undefined ? undefined : {
          permType: c.perm.type,
          key: base64ToBytes(c.perm.key),
          rangeEnd: base64ToBytes(c.perm.rangeEnd),
        },
      );
      break;
    case "roleRevokePermission":
      store.roleRevokePermission(c.name, base64ToBytes(c.key), base64ToBytes(c.rangeEnd));
      break;
  }
  return undefined;
}

/** Bytes as base64 (keys and range ends in JSON). */
export function bytesToBase64(b: Uint8Array): string {
  return btoa(latin1(b));
}

export function base64ToBytes(s: string): Uint8Array {
  return latin1Bytes(atob(s));
}
