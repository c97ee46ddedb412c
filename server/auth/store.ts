/**
 * The auth store: users, roles and their key permissions, whether auth is enabled, and the auth revision.
 * Replicated state: every change arrives through Raft (see apply.ts) and is applied here on every member
 * in the same order, so the store is the same everywhere; it is part of snapshots. Pure and synchronous.
 *
 * The rules are etcd's: auth cannot be enabled without a `root` user that has the `root` role, and while
 * it is enabled neither can be taken away; every change raises the revision, which makes requests that
 * were checked against an older revision fail (see `checkRevision`). Passwords are kept as bcrypt hashes
 * made before proposing (so every member stores the same hash).
 *
 * @module
 */
import { type Permission, Type as PermType } from "../pb/rpc.ts";
import { compareBytes, isFromKey } from "../../storage/mvcc/bytes.ts";
import { AuthErrors } from "./errors.ts";
import { type KeyRanges, mergedRanges } from "./key_ranges.ts";
import { base64ToBytes, bytesToBase64 } from "./apply.ts";

export const ROOT_USER = "root";
export const ROOT_ROLE = "root";

/** What the root role's permission reads as: read and write on every key. */
const ROOT_PERMISSION: Permission = {
  permType: PermType.READWRITE,
  key: new Uint8Array(0),
  rangeEnd: new Uint8Array([0]),
};

export interface AuthUser {
  name: string;
  /** The bcrypt hash; empty for a user made with no password. */
  password: string;
  /** Role names, sorted. */
  roles: string[];
  noPassword: boolean;
}

export interface AuthRole {
  name: string;
  /** Sorted by key. */
  perms: Permission[];
}

/** Who a request is from, as its token or certificate says, and the auth revision it was checked at. */
export interface AuthInfo {
  username: string;
  revision: number;
}

/** The store as snapshots carry it. */
export interface AuthStoreJson {
  enabled: boolean;
  revision: number;
  users: { name: string; password: string; roles: string[]; noPassword?: boolean }[];
  roles: { name: string; perms: { type: number; key: string; rangeEnd: string }[] }[];
}

/** Read and write ranges of one user, merged over its roles. */
interface UserRanges {
  read: KeyRanges;
  write: KeyRanges;
}

export class AuthStore {
  enabled = false;
  /** Raised by every change; starts at 1, as etcd's. */
  revision = 1;
  readonly users = new Map<string, AuthUser>();
  readonly roles = new Map<string, AuthRole>();
  /** Each user's merged permissions; dropped on every change and rebuilt when asked. */
  #ranges = new Map<string, UserRanges>();

  // ---- changes (apply time) ----------------------------------------------------------------------

  enable(): void {
    if (this.enabled) return;
    const root = this.users.get(ROOT_USER);
    if (root === undefined) throw AuthErrors.rootUserNotExist();
    if (!root.roles.includes(ROOT_ROLE)) throw AuthErrors.rootRoleNotExist();
    this.enabled = true;
  }

  disable(): void {
    if (!this.enabled) return;
    this.enabled = false;
    this.#changed();
  }

  userAdd(name: string, password: string, noPassword: boolean): void {
    if (name.length === 0) throw AuthErrors.userEmpty();
    if (this.users.has(name)) throw AuthErrors.userAlreadyExist();
    this.users.set(name, { name, password: noPassword ? "" : password, roles: [], noPassword });
    this.#changed();
  }

  userDelete(name: string): void {
    if (this.enabled && name === ROOT_USER) throw AuthErrors.invalidAuthMgmt();
    if (!this.users.delete(name)) throw AuthErrors.userNotFound();
    this.#changed();
  }

  userChangePassword(name: string, password: string): void {
    const user = this.#user(name);
    if (!user.noPassword) user.password = password;
    this.#changed();
  }

  userGrantRole(name: string, role: string): void {
    const user = this.#user(name);
    if (role !== ROOT_ROLE && !this.roles.has(role)) throw AuthErrors.roleNotFound();
    if (user.roles.includes(role)) return; // etcd ignores a repeated grant
    user.roles.push(role);
    user.roles.sort();
    this.#changed();
  }

  userRevokeRole(name: string, role: string): void {
    if (this.enabled && name === ROOT_USER && role === ROOT_ROLE) throw AuthErrors.invalidAuthMgmt();
    const user = this.#user(name);
    const at = user.roles.indexOf(role);
    if (at < 0) throw AuthErrors.roleNotGranted();
    user.roles.splice(at, 1);
    this.#changed();
  }

  roleAdd(name: string): void {
    if (name.length === 0) throw AuthErrors.roleEmpty();
    if (this.roles.has(name)) throw AuthErrors.roleAlreadyExist();
    this.roles.set(name, { name, perms: [] });
    this.#changed();
  }

  roleDelete(name: string): void {
    if (this.enabled && name === ROOT_ROLE) throw AuthErrors.invalidAuthMgmt();
    if (!this.roles.delete(name)) throw AuthErrors.roleNotFound();
    // the role leaves every user that had it
    for (const user of this.users.values()) {
      const at = user.roles.indexOf(name);
      if (at >= 0) user.roles.splice(at, 1);
    }
    this.#changed();
  }

  roleGrantPermission(name: string, perm: Permission | undefined): void {
    if (perm === undefined) throw AuthErrors.permissionNotGiven();
    if (!isValidPermissionRange(perm.key, perm.rangeEnd)) throw AuthErrors.invalidAuthMgmt();
    const role = this.roles.get(name);
    if (role === undefined) throw AuthErrors.roleNotFound();
    const same = role.perms.find((p) =>
      compareBytes(p.key, perm.key) === 0 && compareBytes(p.rangeEnd, perm.rangeEnd) === 0
    );
    if (same !== undefined) {
      same.permType = perm.permType;
    } else {
      role.perms.push({ permType: perm.permType, key: perm.key.slice(), rangeEnd: perm.rangeEnd.slice() });
      role.perms.sort((a, b) => compareBytes(a.key, b.key));
    }
    this.#changed();
  }

  roleRevokePermission(name: string, key: Uint8Array, rangeEnd: Uint8Array): void {
    const role = this.roles.get(name);
    if (role === undefined) throw AuthErrors.roleNotFound();
    const kept = role.perms.filter((p) =>
      compareBytes(p.key, key) !== 0 || compareBytes(p.rangeEnd, rangeEnd) !== 0
    );
    if (kept.length === role.perms.length) throw AuthErrors.permissionNotGranted();
    role.perms = kept;
    this.#changed();
  }

  // ---- reads -------------------------------------------------------------------------------------

  userGet(name: string): string[] {
    return [...this.#user(name).roles];
  }

  userList(): string[] {
    return [...this.users.keys()].sort();
  }

  roleGet(name: string): Permission[] {
    const role = this.roles.get(name);
    if (role === undefined) throw AuthErrors.roleNotFound();
    return name === ROOT_ROLE ? [ROOT_PERMISSION] : role.perms;
  }

  roleList(): string[] {
    return [...this.roles.keys()].sort();
  }

  hasRole(user: string, role: string): boolean {
    return this.users.get(user)?.roles.includes(role) === true;
  }

  // ---- permission checks (etcd's isOpPermitted and IsAdminPermitted) ------------------------------

  /** Read permission on `key` (a point when `rangeEnd` is empty, `[key, rangeEnd)` otherwise). */
  checkRange(ai: AuthInfo | undefined, key: Uint8Array, rangeEnd: Uint8Array): void {
    this.#checkOp(ai, key, rangeEnd, false);
  }

  checkPut(ai: AuthInfo | undefined, key: Uint8Array): void {
    this.#checkOp(ai, key, EMPTY, true);
  }

  checkDeleteRange(ai: AuthInfo | undefined, key: Uint8Array, rangeEnd: Uint8Array): void {
    this.#checkOp(ai, key, rangeEnd, true);
  }

  /** Whether `ai` may manage the cluster: its user has the root role. */
  checkAdmin(ai: AuthInfo | undefined): void {
    if (!this.enabled) return;
    if (ai === undefined || ai.username === "") throw AuthErrors.userEmpty();
    const user = this.users.get(ai.username);
    if (user === undefined) throw AuthErrors.userNotFound();
    if (!user.roles.includes(ROOT_ROLE)) throw AuthErrors.permissionDenied();
  }

  /** Whether `ai` is an admin; never throws. */
  isAdmin(ai: AuthInfo | undefined): boolean {
    if (!this.enabled) return true;
    const user = ai === undefined ? undefined : this.users.get(ai.username);
    return user !== undefined && user.roles.includes(ROOT_ROLE);
  }

  /** A request checked at an older revision than the store's now must be checked again. */
  checkRevision(revision: number): void {
    if (this.enabled && revision < this.revision) throw AuthErrors.authOldRevision();
  }

  #checkOp(ai: AuthInfo | undefined, key: Uint8Array, rangeEnd: Uint8Array, write: boolean): void {
    if (!this.enabled) return;
    if (ai === undefined || ai.revision === 0) throw AuthErrors.userEmpty();
    if (ai.revision < this.revision) throw AuthErrors.authOldRevision();
    const user = this.users.get(ai.username);
    if (user === undefined) throw AuthErrors.permissionDenied();
    if (user.roles.includes(ROOT_ROLE)) return;
    const ranges = this.#rangesOf(user);
    const set = write ? ranges.write : ranges.read;
    const ok = rangeEnd.length === 0
      ? set.containsKey(key)
      : set.covers(key, isFromKey(rangeEnd) ? undefined : rangeEnd);
    if (!ok) throw AuthErrors.permissionDenied();
  }

  #rangesOf(user: AuthUser): UserRanges {
    let ranges = this.#ranges.get(user.name);
    if (ranges === undefined) {
      const read: Permission[] = [];
      const write: Permission[] = [];
      for (const name of user.roles) {
        for (const p of this.roles.get(name)?.perms ?? []) {
          if (p.permType !== PermType.WRITE) read.push(p);
          if (p.permType !== PermType.READ) write.push(p);
        }
      }
      ranges = { read: mergedRanges(read), write: mergedRanges(write) };
      this.#ranges.set(user.name, ranges);
    }
    return ranges;
  }

  #user(name: string): AuthUser {
    const user = this.users.get(name);
    if (user === undefined) throw AuthErrors.userNotFound();
    return user;
  }

  #changed(): void {
    this.revision++;
    this.#ranges = new Map();
  }

  // ---- snapshots ---------------------------------------------------------------------------------

  toJSON(): AuthStoreJson {
    return {
      enabled: this.enabled,
      revision: this.revision,
      users: [...this.users.values()].map((u) => ({
        name: u.name,
        password: u.password,
        roles: u.roles,
        ...(u.noPassword ? { noPassword: true } : {}),
      })),
      roles: [...this.roles.values()].map((r) => ({
        name: r.name,
        perms: r.perms.map((p) => ({
          type: p.permType,
          key: bytesToBase64(p.key),
          rangeEnd: bytesToBase64(p.rangeEnd),
        })),
      })),
    };
  }

  static fromJSON(j: AuthStoreJson): AuthStore {
    const s = new AuthStore();
    s.enabled = j.enabled;
    s.revision = j.revision;
    for (const u of j.users) {
      s.users.set(u.name, {
        name: u.name,
        password: u.password,
        roles: [...u.roles],
        noPassword: !!u.noPassword,
      });
    }
    for (const r of j.roles) {
      s.roles.set(r.name, {
        name: r.name,
        perms: r.perms.map((p) => ({
          permType: p.type,
          key: base64ToBytes(p.key),
          rangeEnd: base64ToBytes(p.rangeEnd),
        })),
      });
    }
    return s;
  }
}

const EMPTY = new Uint8Array(0);

/** etcd's rule: a key is given, and a range end is empty, the from-key marker, or after the key. */
function isValidPermissionRange(key: Uint8Array, rangeEnd: Uint8Array): boolean {
  if (key.length === 0) return false;
  if (rangeEnd.length === 0 || isFromKey(rangeEnd)) return true;
  return compareBytes(key, rangeEnd) < 0;
}
