/**
 * Backups end to end: `etcdctl snapshot save` from a loaded etcd-ts member, `etcd-ts snapshot status`,
 * `etcd-ts snapshot restore` into three new data directories, and a new three-member cluster started on
 * them that has every key, lease and user of the backup under a new cluster ID, with auth on as it was.
 * A truncated or corrupt file is refused and nothing is written.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { clientFor, Cluster, ctlHeader } from "./cluster.ts";
import { ctlOk, etcdctl, HAVE_ETCDCTL, Member, runServer } from "./helpers.ts";

/** etcdctl's flag for the root user, once auth is on. */
const ROOT = ["--user", "root:rootpw"];

Deno.test({
  name: "[etcd-ts] snapshot save, status and restore into a new three-member cluster with every key",
  ignore: !HAVE_ETCDCTL,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "etcd-ts-backup-" });
    const source = await Member.start({ impl: "etcd-ts" });
    let restored: Cluster | undefined;
    try {
      for (let i = 0; i < 200; i++) await ctlOk(source.endpoint, ["put", `key${i}`, `value-${i}`.repeat(20)]);
      await ctlOk(source.endpoint, ["del", "key7"]);
      const lease = (await ctlOk(source.endpoint, ["lease", "grant", "900"])).split(" ")[1];
      await ctlOk(source.endpoint, ["put", "leased", "yes", `--lease=${lease}`]);
      // auth on, with a user that may only read the keys
      for (
        const args of [
          ["user", "add", "root:rootpw"],
          ["user", "add", "carol:cpw"],
          ["role", "add", "reader"],
          ["role", "grant-permission", "reader", "read", "key", "--prefix=true"],
          ["user", "grant-role", "carol", "reader"],
          ["auth", "enable"],
        ]
      ) await ctlOk(source.endpoint, args);
      const sourceCluster =
        ctlHeader(await ctlOk(source.endpoint, [...ROOT, "get", "leased", "-w", "json"])).clusterId;
      const file = join(dir, "backup.db");
      const save = await etcdctl(source.endpoint, [...ROOT, "snapshot", "save", file]);
      assertEquals(save.code, 0, save.stderr);
      assert(save.stdout.includes(`Snapshot saved at ${file}`), save.stdout);

      const status = await runServer("etcd-ts", ["snapshot", "status", file, "-w", "json"]);
      assertEquals(status.code, 0, status.stderr);
      const s = JSON.parse(status.stdout);
      assertEquals([s.revision, s.totalKey, s.totalSize], [203, 200, (await Deno.stat(file)).size]);

      // a truncated copy is refused, and no data directory appears
      const truncated = join(dir, "truncated.db");
      await Deno.writeFile(truncated, (await Deno.readFile(file)).subarray(0, 3000));
      const bad = await runServer("etcd-ts", [
        "snapshot",
        "restore",
        truncated,
        "--data-dir",
        join(dir, "bad"),
      ]);
      assertEquals(bad.code, 1);
      assert(bad.stderr.includes("truncated or corrupt"), bad.stderr);
      assert(!(await exists(join(dir, "bad"))), "nothing may be written for a bad file");
      // so is a copy with one bit changed
      const corrupt = join(dir, "corrupt.db");
      const bytes = await Deno.readFile(file);
      bytes[Math.floor(bytes.length / 2)] ^= 0x10;
      await Deno.writeFile(corrupt, bytes);
      const flipped = await runServer("etcd-ts", [
        "snapshot",
        "restore",
        corrupt,
        "--data-dir",
        join(dir, "bad"),
      ]);
      assertEquals(flipped.code, 1);
      assert(flipped.stderr.includes("the snapshot file is corrupt"), flipped.stderr);
      assert(!(await exists(join(dir, "bad"))), "nothing may be written for a corrupt file");

      restored = await Cluster.create({
        impl: "etcd-ts",
        hosts: ["127.0.1.181", "127.0.1.182", "127.0.1.183"],
        token: "restored-cluster",
        ctlArgs: ROOT,
      });
      const initialCluster = restored.members.map((m) => `${m.name}=${m.peerUrl}`).join(",");
      for (const m of restored.members) {
        const r = await runServer("etcd-ts", [
          "snapshot",
          "restore",
          file,
          "--name",
          m.name,
          "--initial-cluster",
          initialCluster,
          "--initial-cluster-token",
          "restored-cluster",
          "--initial-advertise-peer-urls",
          m.peerUrl,
          "--data-dir",
          m.dataDir,
        ]);
        assertEquals(r.code, 0, r.stderr);
      }
      for (const m of restored.members) m.spawn();
      await Promise.all(restored.members.map((m) => m.waitReady(30_000)));
      const last = restored.members[2].endpoint;
      // the users and roles came along, and auth is still on
      assertEquals(
        (await ctlOk(last, ["--user", "carol:cpw", "get", "key42", "--print-value-only"])).trim(),
        "value-42".repeat(20),
      );
      const refused = await etcdctl(last, ["--user", "carol:cpw", "put", "key42", "x"]);
      assert(refused.code !== 0 && refused.stderr.includes("etcdserver: permission denied"), refused.stderr);
      const nobody = await etcdctl(last, ["get", "key42"]);
      assert(nobody.code !== 0 && nobody.stderr.includes("etcdserver: user name is empty"), nobody.stderr);
      assertEquals((await ctlOk(last, [...ROOT, "user", "list"])).trim().split("\n"), ["carol", "root"]);
      const keys = (await ctlOk(last, [...ROOT, "get", "key", "--prefix", "--keys-only"])).split("\n").filter(
        (
          l,
        ) => l,
      );
      assertEquals(keys.length, 199);
      assertEquals(
        (await ctlOk(last, [...ROOT, "get", "key42", "--print-value-only"])).trim(),
        "value-42".repeat(20),
      );
      assertEquals((await ctlOk(last, [...ROOT, "get", "key7"])).trim(), "");
      assertEquals((await ctlOk(last, [...ROOT, "get", "leased", "--print-value-only"])).trim(), "yes");
      assert((await ctlOk(last, [...ROOT, "lease", "list"])).includes(lease), "the lease came along");
      const header = ctlHeader(await ctlOk(last, [...ROOT, "get", "leased", "-w", "json"]));
      assert(header.clusterId !== sourceCluster, "a restored cluster is a new cluster");
      assertEquals((await ctlOk(last, [...ROOT, "member", "list"])).trim().split("\n").length, 3);
    } catch (err) {
      throw new Error(`${err}\n${restored?.logs() ?? ""}`);
    } finally {
      await restored?.destroy();
      await source.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "[etcd-ts] a backup larger than one image chunk (1 MiB) reads back whole",
  ignore: !HAVE_ETCDCTL,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "etcd-ts-backup-large-" });
    const source = await Member.start({ impl: "etcd-ts", host: "127.0.2.105" });
    const client = clientFor([source.endpoint]);
    try {
      // 4 MiB of values: the image comes in several chunks, which the store refills one after another
      const value = "v".repeat(16 * 1024);
      for (let i = 0; i < 256; i += 32) {
        await Promise.all(
          [...Array(32).keys()].map((j) => client.put(`big/${i + j}`).value(`${i + j}:${value}`)),
        );
      }
      const file = join(dir, "backup.db");
      const save = await etcdctl(source.endpoint, ["snapshot", "save", file]);
      assertEquals(save.code, 0, save.stderr);
      const status = await runServer("etcd-ts", ["snapshot", "status", file, "-w", "json"]);
      assertEquals(status.code, 0, status.stderr);
      const s = JSON.parse(status.stdout);
      assertEquals([s.totalKey, s.revision], [256, 257]);
      assert((await Deno.stat(file)).size > 4 * 1024 * 1024);
    } finally {
      client.close();
      await source.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
