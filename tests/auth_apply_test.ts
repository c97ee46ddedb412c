/**
 * Auth where requests are applied, in a member started in this process: a write checked before an auth
 * change is refused once it reaches the log after the change ("revision of auth store is old"), a write
 * sent while auth was off is refused if auth is on when it is applied, and auth state survives a
 * restart from a snapshot.
 */
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { encodePutRequest, type PutRequest } from "../server/pb/rpc.ts";
import { ProposalKind } from "../server/member/proposal.ts";
import { type AuthChange, type AuthChangeBody, encodeAuthChange } from "../server/auth/apply.ts";
import { GrpcError } from "../server/transport/status.ts";
import type { Etcd } from "../mod.ts";
import { clusterMembers, startMember } from "./in_process.ts";

function putRequest(key: string): [PutRequest, Uint8Array] {
  const r: PutRequest = {
    key: new TextEncoder().encode(key),
    value: new Uint8Array([1]),
    lease: 0n,
    prevKv: false,
    ignoreValue: false,
    ignoreLease: false,
  };
  return [r, encodePutRequest(r)];
}

async function change(etcd: Etcd, c: AuthChangeBody, user = "root"): Promise<void> {
  const full = { ...c, user, revision: etcd.server.auth.store.revision } as AuthChange;
  await etcd.server.propose(ProposalKind.Auth, encodeAuthChange(full), undefined);
}

Deno.test("auth at apply time: stale and unchecked writes are refused; auth survives a snapshot restart", async () => {
  const dir = await Deno.makeTempDir();
  const [m] = clusterMembers(dir, (c) => {
    c.snapshotCount = 5;
  }).slice(0, 1);
  m.config.initialCluster = new Map([[m.name, m.config.initialAdvertisePeerUrls]]);
  let etcd = await startMember(m);
  try {
    await change(etcd, { op: "userAdd", name: "root", password: "", noPassword: true }, "");
    await change(etcd, { op: "userGrantRole", name: "root", role: "root" }, "");
    await change(etcd, { op: "authEnable" }, "");
    const store = etcd.server.auth.store;
    assert(store.enabled);
    const [r, raw] = putRequest("k");
    // checked at the current revision: applied
    await etcd.server.put(r, raw, store.revision);
    // checked before a change that raised the revision: refused where it is applied
    const checkedAt = store.revision;
    await change(etcd, { op: "roleAdd", name: "later" });
    const stale = await assertRejects(() => etcd.server.put(r, raw, checkedAt), GrpcError);
    assertEquals(stale.message, "etcdserver: revision of auth store is old");
    // sent as if auth were off: refused as a write from nobody
    const nobody = await assertRejects(() => etcd.server.put(r, raw), GrpcError);
    assertEquals(nobody.message, "etcdserver: user name is empty");
    // enough entries for snapshots; then a restart restores auth from the newest one
    for (let i = 0; i < 12; i++) await etcd.server.put(r, raw, store.revision);
    const revision = store.revision;
    await etcd.close();
    const snaps = [...Deno.readDirSync(`${m.config.dataDir}/member/snap`)].filter((e) =>
      e.name.endsWith(".snap")
    );
    assert(snaps.length > 0, "a snapshot was taken");
    etcd = await startMember(m);
    const restart = m.log.find((l) => l.msg === "restarting member");
    assert(Number(restart?.["snapshot-index"]) > 0, "restarted from a snapshot");
    const restored = etcd.server.auth.store;
    assert(restored.enabled);
    assertEquals(restored.revision, revision);
    assertEquals(restored.roleList(), ["later"]);
    assertEquals(restored.userGet("root"), ["root"]);
  } finally {
    await etcd.close();
    await Deno.remove(dir, { recursive: true });
  }
});
