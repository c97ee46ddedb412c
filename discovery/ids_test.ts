import { assertEquals } from "../tests/assert.ts";
import { createHash } from "node:crypto";
import { clusterId, memberId, sha1 } from "./ids.ts";

// Every expected value below was read from a real etcd 3.4.23 (`etcdctl member list -w json`,
// `endpoint status -w json`, and the member's own log) started with the flags given in each test.

Deno.test("ids: etcd's defaults (`etcd` with no flags)", () => {
  const m = memberId(["http://localhost:2380"], "etcd-cluster");
  assertEquals(m, 0x8e9e05c52164694dn);
  assertEquals(clusterId([m]), 0xcdf818194e3a8c32n);
});

Deno.test("ids: one member, token tkn", () => {
  // etcd --name infra0 --initial-advertise-peer-urls http://127.0.0.1:24301
  //   --initial-cluster infra0=http://127.0.0.1:24301 --initial-cluster-token tkn
  const m = memberId(["http://127.0.0.1:24301"], "tkn");
  assertEquals(m, 4722122813334930173n); // 418859ae0a98c2fd
  assertEquals(clusterId([m]), 4474015564053858693n); // 3e16e5737effc985
});

Deno.test("ids: three members, one with two peer URLs given out of order", () => {
  // --initial-cluster a=http://127.0.0.1:24312,a=http://127.0.0.1:24311,b=http://127.0.0.1:24313,
  //   c=http://127.0.0.1:24314 --initial-cluster-token tkn3
  const a = memberId(["http://127.0.0.1:24312", "http://127.0.0.1:24311"], "tkn3");
  const b = memberId(["http://127.0.0.1:24313"], "tkn3");
  const c = memberId(["http://127.0.0.1:24314"], "tkn3");
  assertEquals([a, b, c], [0xcf3eceae7a8d031cn, 0x7240d9c9906be6a5n, 0x7af9c743e3e1ed25n]);
  assertEquals(memberId(["http://127.0.0.1:24311", "http://127.0.0.1:24312"], "tkn3"), a);
  // The cluster ID does not depend on the order the members are listed in.
  assertEquals(clusterId([a, b, c]), 0x8c89a87f062d287cn);
  assertEquals(clusterId([c, a, b]), 0x8c89a87f062d287cn);
});

Deno.test("ids: a member added at run time hashes its URLs and the time, without the token", () => {
  // `etcdctl member add newbie --peer-urls=http://127.0.0.1:24399` at Unix time 1795585726 answered
  // "Member d96e0ef9fa7d2ca added to cluster 3e16e5737effc985".
  const at = new Date(1795585726 * 1000 + 999);
  assertEquals(memberId(["http://127.0.0.1:24399"], "", at), 0xd96e0ef9fa7d2can);
  assertEquals(
    memberId(["http://127.0.0.1:24399"], "", new Date(1795585727 * 1000)) === 0xd96e0ef9fa7d2can,
    false,
  );
});

Deno.test("ids: the token changes the member ID", () => {
  const a = memberId(["http://127.0.0.1:24301"], "tkn");
  const b = memberId(["http://127.0.0.1:24301"], "tkn2");
  assertEquals(a === b, false);
});

Deno.test("sha1 matches node:crypto for lengths around the block boundaries", () => {
  for (const n of [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 200, 1000]) {
    const data = new Uint8Array(n).map((_, i) => (i * 131 + n) & 255);
    const want = createHash("sha1").update(data).digest("hex");
    const got = [...sha1(data)].map((b) => b.toString(16).padStart(2, "0")).join("");
    assertEquals(got, want, `length ${n}`);
  }
});
