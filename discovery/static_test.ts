import { assertEquals, assertThrows } from "../tests/assert.ts";
import { BootstrapError, staticBootstrap } from "./static.ts";

const guide = new Map([
  ["infra0", ["http://127.0.1.10:2380"]],
  ["infra1", ["http://127.0.1.11:2380"]],
  ["infra2", ["http://127.0.1.12:2380"]],
]);

Deno.test("every member of the guide's cluster derives the same IDs", () => {
  const views = ["infra0", "infra1", "infra2"].map((n) => staticBootstrap(n, guide, "etcd-cluster-1"));
  for (const v of views) {
    assertEquals(v.clusterId, views[0].clusterId);
    assertEquals(v.members, views[0].members);
  }
  assertEquals(views.map((v) => v.memberId), views[0].members.map((m) => m.id));
  assertEquals(new Set(views.map((v) => v.memberId)).size, 3);
});

Deno.test("etcd's default single member: the IDs the real etcd reports", () => {
  const b = staticBootstrap("default", new Map([["default", ["http://localhost:2380"]]]), "etcd-cluster");
  assertEquals(b.memberId.toString(16), "8e9e05c52164694d");
  assertEquals(b.clusterId.toString(16), "cdf818194e3a8c32");
});

Deno.test("another token is another cluster", () => {
  const a = staticBootstrap("infra0", guide, "etcd-cluster-1");
  const b = staticBootstrap("infra0", guide, "etcd-cluster-2");
  assertEquals(a.clusterId === b.clusterId, false);
});

Deno.test("a name missing from the initial cluster is refused in etcd's words", () => {
  assertThrows(
    () => staticBootstrap("infra9", guide, "t"),
    BootstrapError,
    'couldn\'t find local name "infra9" in the initial cluster configuration',
  );
});
