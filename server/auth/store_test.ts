import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { GrpcError } from "../transport/status.ts";
import { type AuthInfo, AuthStore } from "./store.ts";
import { mergedRanges } from "./key_ranges.ts";
import { Type as PermType } from "../pb/rpc.ts";

const te = new TextEncoder();
const k = (s: string) => te.encode(s);
const perm = (permType: number, key: string, rangeEnd = "") => ({
  permType,
  key: k(key),
  rangeEnd: rangeEnd === "\0" ? new Uint8Array([0]) : k(rangeEnd),
});

function throwsMessage(fn: () => void, message: string): void {
  const err = assertThrows(fn, GrpcError);
  assertEquals(err.message, message);
}

/** A store with root (root role) and alice (role r: read [a, c), write the key "w"), auth enabled. */
function enabledStore(): AuthStore {
  const s = new AuthStore();
  s.userAdd("root", "h", false);
  s.userGrantRole("root", "root");
  s.userAdd("alice", "h", false);
  s.roleAdd("r");
  s.roleGrantPermission("r", perm(PermType.READ, "a", "c"));
  s.roleGrantPermission("r", perm(PermType.WRITE, "w"));
  s.userGrantRole("alice", "r");
  s.enable();
  return s;
}

Deno.test("auth store: enabling needs root with the root role, and then root cannot be taken away", () => {
  const s = new AuthStore();
  throwsMessage(() => s.enable(), "etcdserver: root user does not exist");
  s.userAdd("root", "h", false);
  throwsMessage(() => s.enable(), "etcdserver: root user does not have root role");
  s.userGrantRole("root", "root");
  s.enable();
  assert(s.enabled);
  throwsMessage(() => s.userDelete("root"), "etcdserver: invalid auth management");
  throwsMessage(() => s.userRevokeRole("root", "root"), "etcdserver: invalid auth management");
  s.disable();
  s.userRevokeRole("root", "root");
  s.userDelete("root");
  assertEquals(s.userList(), []);
});

Deno.test("auth store: users and roles with etcd's errors", () => {
  const s = new AuthStore();
  throwsMessage(() => s.userAdd("", "h", false), "etcdserver: user name is empty");
  s.userAdd("bob", "h", false);
  throwsMessage(() => s.userAdd("bob", "h", false), "etcdserver: user name already exists");
  throwsMessage(() => s.roleAdd(""), "etcdserver: role name is empty");
  s.roleAdd("x");
  throwsMessage(() => s.roleAdd("x"), "etcdserver: role name already exists");
  throwsMessage(() => s.userGrantRole("bob", "nope"), "etcdserver: role name not found");
  throwsMessage(() => s.userGrantRole("nobody", "x"), "etcdserver: user name not found");
  throwsMessage(() => s.userRevokeRole("bob", "x"), "etcdserver: role is not granted to the user");
  throwsMessage(
    () => s.roleRevokePermission("x", k("a"), k("")),
    "etcdserver: permission is not granted to the role",
  );
  throwsMessage(
    () => s.roleGrantPermission("x", perm(PermType.READ, "")),
    "etcdserver: invalid auth management",
  );
  throwsMessage(() => s.roleGrantPermission("x", undefined), "etcdserver: permission not given");
  s.userGrantRole("bob", "x");
  s.userGrantRole("bob", "x"); // repeated: ignored
  assertEquals(s.userGet("bob"), ["x"]);
  // deleting a role takes it from its users
  s.roleDelete("x");
  assertEquals(s.userGet("bob"), []);
  // granting the same range again changes its type instead of adding one
  s.roleAdd("y");
  s.roleGrantPermission("y", perm(PermType.READ, "k"));
  s.roleGrantPermission("y", perm(PermType.READWRITE, "k"));
  assertEquals(s.roleGet("y").map((p) => p.permType), [PermType.READWRITE]);
});

Deno.test("auth store: every change raises the revision, and old checks fail", () => {
  const s = enabledStore();
  const rev = s.revision;
  const ai: AuthInfo = { username: "alice", revision: rev };
  s.checkRange(ai, k("a"), k(""));
  s.roleAdd("other");
  assertEquals(s.revision, rev + 1);
  throwsMessage(() => s.checkRange(ai, k("a"), k("")), "etcdserver: revision of auth store is old");
  throwsMessage(() => s.checkRevision(rev), "etcdserver: revision of auth store is old");
});

Deno.test("auth store: key permissions as etcd checks them", () => {
  const s = enabledStore();
  const alice: AuthInfo = { username: "alice", revision: s.revision };
  const root: AuthInfo = { username: "root", revision: s.revision };
  const denied = "etcdserver: permission denied";
  s.checkRange(alice, k("b"), k(""));
  s.checkRange(alice, k("a"), k("c"));
  s.checkRange(alice, k("ab"), k("b"));
  throwsMessage(() => s.checkRange(alice, k("a"), k("d")), denied);
  throwsMessage(() => s.checkRange(alice, k("a"), new Uint8Array([0])), denied);
  throwsMessage(() => s.checkRange(alice, k("c"), k("")), denied);
  throwsMessage(() => s.checkPut(alice, k("b")), denied);
  s.checkPut(alice, k("w"));
  throwsMessage(() => s.checkPut(alice, k("w0")), denied);
  throwsMessage(() => s.checkDeleteRange(alice, k("w"), k("x")), denied);
  s.checkRange(root, k(""), new Uint8Array([0]));
  throwsMessage(
    () => s.checkRange({ username: "", revision: 0 }, k("a"), k("")),
    "etcdserver: user name is empty",
  );
  throwsMessage(() => s.checkRange(undefined, k("a"), k("")), "etcdserver: user name is empty");
  throwsMessage(() => s.checkRange({ username: "ghost", revision: s.revision }, k("a"), k("")), denied);
  throwsMessage(() => s.checkAdmin(alice), denied);
  throwsMessage(() => s.checkAdmin({ username: "ghost", revision: 1 }), "etcdserver: user name not found");
  s.checkAdmin(root);
  // with auth off nothing is checked
  s.disable();
  s.checkPut(undefined, k("anything"));
});

Deno.test("auth store: snapshots keep everything, and the root role reads as every key", () => {
  const s = enabledStore();
  const copy = AuthStore.fromJSON(JSON.parse(JSON.stringify(s.toJSON())));
  assertEquals(copy.toJSON(), s.toJSON());
  assertEquals(copy.revision, s.revision);
  assert(copy.enabled);
  copy.checkRange({ username: "alice", revision: copy.revision }, k("a"), k("c"));
  s.roleAdd("root");
  assertEquals(s.roleGet("root"), [{
    permType: PermType.READWRITE,
    key: k(""),
    rangeEnd: new Uint8Array([0]),
  }]);
});

Deno.test("key ranges: merged ranges cover what their union covers", () => {
  const r = mergedRanges([
    perm(PermType.READ, "a", "b"),
    perm(PermType.READ, "b", "c"),
    perm(PermType.READ, "e"),
    perm(PermType.READ, "x", "\0"),
  ]);
  assert(r.covers(k("a"), k("c")), "adjacent ranges merge");
  assert(!r.covers(k("a"), k("c0")));
  assert(r.containsKey(k("e")));
  assert(!r.containsKey(k("e0")));
  assert(r.covers(k("e"), k("e\0")));
  assert(r.covers(k("y"), undefined), "from-key");
  assert(r.covers(k("x"), k("zz")));
  assert(!r.covers(k("w"), undefined));
  assert(!r.containsKey(k("d")));
  assert(!mergedRanges([]).containsKey(k("a")));
});
