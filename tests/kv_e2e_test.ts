/**
 * The KV API end to end: a real server process, the real etcdctl. Each test runs against etcd-ts and,
 * where it is installed, against the real etcd with the same expectations.
 */
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { ctlOk, etcdctl, HAVE_ETCDCTL, implementations, Member } from "./helpers.ts";

const lines = (s: string) => s.split("\n").filter((l) => l !== "");

for (const impl of implementations()) {
  Deno.test({
    name: `[${impl}] put, get with every range option, delete`,
    ignore: !HAVE_ETCDCTL,
    fn: async (t) => {
      const m = await Member.start({ impl });
      const ep = m.endpoint;
      try {
        await t.step("put", async () => {
          for (
            const [k, v] of [["a", "1"], ["b", "2"], ["c", "3"], ["a", "11"], ["d/x", "4"], ["d/y", "5"]]
          ) {
            assertEquals(await ctlOk(ep, ["put", k, v]), "OK\n");
          }
        });
        await t.step("get one key", async () => {
          assertEquals(lines(await ctlOk(ep, ["get", "a"])), ["a", "11"]);
          assertEquals(await ctlOk(ep, ["get", "missing"]), "");
        });
        await t.step("prefix, range, from-key", async () => {
          assertEquals(lines(await ctlOk(ep, ["get", "--prefix", "d/"])), ["d/x", "4", "d/y", "5"]);
          assertEquals(lines(await ctlOk(ep, ["get", "a", "c"])), ["a", "11", "b", "2"]);
          assertEquals(lines(await ctlOk(ep, ["get", "--from-key", "c"])), [
            "c",
            "3",
            "d/x",
            "4",
            "d/y",
            "5",
          ]);
          assertEquals(lines(await ctlOk(ep, ["get", "--prefix", ""])).length, 10);
        });
        await t.step("limit, more, count (json)", async () => {
          const j = JSON.parse(await ctlOk(ep, ["get", "--prefix", "", "--limit", "2", "-w", "json"]));
          assertEquals(j.kvs.length, 2);
          assertEquals(j.more, true);
          assertEquals(j.count, 5);
          assertEquals(atob(j.kvs[0].key), "a");
          assertEquals(j.kvs[0].create_revision, 2);
          assertEquals(j.kvs[0].mod_revision, 5);
          assertEquals(j.kvs[0].version, 2);
          assertEquals(j.header.revision, 7);
          assert(BigInt(j.header.member_id) !== 0n && BigInt(j.header.cluster_id) !== 0n);
          assert(j.header.raft_term >= 1);
          const all = JSON.parse(await ctlOk(ep, ["get", "--prefix", "", "-w", "json"]));
          assertEquals(all.more, undefined);
        });
        await t.step("sort orders and targets", async () => {
          const keys = async (...a: string[]) =>
            lines(await ctlOk(ep, ["get", "--prefix", "", "--keys-only", ...a]));
          assertEquals(await keys("--sort-by=modify", "--order=descend"), ["d/y", "d/x", "a", "c", "b"]);
          assertEquals(await keys("--sort-by=create", "--order=ascend"), ["a", "b", "c", "d/x", "d/y"]);
          assertEquals(await keys("--sort-by=key", "--order=descend"), ["d/y", "d/x", "c", "b", "a"]);
          assertEquals(await keys("--sort-by=value", "--order=descend"), ["d/y", "d/x", "c", "b", "a"]);
          assertEquals((await keys("--sort-by=version", "--order=descend"))[0], "a");
          // a sort with a limit sorts everything first, then cuts
          assertEquals(await keys("--sort-by=modify", "--order=descend", "--limit=2"), ["d/y", "d/x"]);
        });
        await t.step("keys-only and print-value-only", async () => {
          assertEquals(lines(await ctlOk(ep, ["get", "--prefix", "d/", "--keys-only"])), ["d/x", "d/y"]);
          assertEquals(lines(await ctlOk(ep, ["get", "--prefix", "d/", "--print-value-only"])), ["4", "5"]);
        });
        await t.step("history with --rev", async () => {
          assertEquals(lines(await ctlOk(ep, ["get", "a", "--rev", "2"])), ["a", "1"]);
          assertEquals(lines(await ctlOk(ep, ["get", "a", "--rev", "4"])), ["a", "1"]);
          assertEquals(lines(await ctlOk(ep, ["get", "a", "--rev", "5"])), ["a", "11"]);
          assertEquals(await ctlOk(ep, ["get", "d/x", "--rev", "5"]), "");
        });
        await t.step("delete: single, prefix, prev-kv, missing", async () => {
          assertEquals(lines(await ctlOk(ep, ["del", "b"])), ["1"]);
          assertEquals(lines(await ctlOk(ep, ["del", "zz"])), ["0"]);
          assertEquals(lines(await ctlOk(ep, ["del", "--prefix", "d/", "--prev-kv"])), [
            "2",
            "d/x",
            "4",
            "d/y",
            "5",
          ]);
          assertEquals(lines(await ctlOk(ep, ["get", "--prefix", "", "--keys-only"])), ["a", "c"]);
          const j = JSON.parse(await ctlOk(ep, ["get", "b", "-w", "json"]));
          assertEquals(j.header.revision, 9);
        });
        await t.step("put --prev-kv and ignore-value", async () => {
          assertEquals(lines(await ctlOk(ep, ["put", "c", "33", "--prev-kv"])), ["OK", "c", "3"]);
          assertEquals(lines(await ctlOk(ep, ["put", "c", "--ignore-value"])), ["OK"]);
          const j = JSON.parse(await ctlOk(ep, ["get", "c", "-w", "json"]));
          assertEquals(atob(j.kvs[0].value), "33");
          assertEquals(j.kvs[0].version, 3);
          const r = await etcdctl(ep, ["put", "nokey", "--ignore-value"]);
          assertEquals(r.code, 1);
          assertMatch(r.stderr, /etcdserver: key not found/);
        });
      } finally {
        await m.destroy();
      }
    },
  });

  Deno.test({
    name: `[${impl}] txn, compaction and errors`,
    ignore: !HAVE_ETCDCTL,
    fn: async (t) => {
      const m = await Member.start({ impl, args: ["--max-txn-ops", "3", "--max-request-bytes", "4096"] });
      const ep = m.endpoint;
      try {
        await ctlOk(ep, ["put", "a", "11"]);
        await t.step("interactive txn, success branch", async () => {
          const out = await ctlOk(ep, ["txn", "-i"], 'value("a") = "11"\n\nput x 1\nget a\n\nput y 2\n\n');
          assertEquals(lines(out).slice(-4), ["SUCCESS", "OK", "a", "11"]);
          assertEquals(lines(await ctlOk(ep, ["get", "y"])), []);
        });
        await t.step("txn failure branch and compare targets", async () => {
          const out = await ctlOk(
            ep,
            ["txn"],
            'version("a") = "5"\ncreate("a") > "0"\n\nput x 2\n\nput y 2\n\n',
          );
          assertEquals(lines(out), ["FAILURE", "", "OK"].filter((l) => l !== ""));
          const j = JSON.parse(
            await ctlOk(ep, ["txn", "-w", "json"], 'mod("x") < "100"\nvalue("y") = "2"\n\ndel y\n\n\n'),
          );
          assertEquals(j.succeeded, true);
          assertEquals(j.responses[0].Response.ResponseDeleteRange.deleted, 1);
          assertEquals(j.header.revision, 5);
          assertEquals(j.responses[0].Response.ResponseDeleteRange.header.revision, 5);
        });
        await t.step("compare on a missing key", async () => {
          const out = await ctlOk(ep, ["txn"], 'version("nope") = "0"\n\nput n 1\n\n\n');
          assertEquals(lines(out), ["SUCCESS", "OK"]);
          const out2 = await ctlOk(ep, ["txn"], 'value("nope2") = ""\n\nput n 2\n\nput n 3\n\n');
          assertEquals(lines(out2), ["FAILURE", "OK"]);
        });
        await t.step("duplicate key in txn", async () => {
          const r = await etcdctl(ep, ["txn"], { stdin: 'mod("a") > "0"\n\nput k 1\nput k 2\n\n\n' });
          assertEquals(r.code, 1);
          assertMatch(r.stderr, /etcdserver: duplicate key given in txn request/);
        });
        await t.step("too many txn ops (--max-txn-ops 3)", async () => {
          const r = await etcdctl(ep, ["txn"], { stdin: "\nput k1 1\nput k2 2\nput k3 3\nput k4 4\n\n\n" });
          assertEquals(r.code, 1);
          assertMatch(r.stderr, /etcdserver: too many operations in txn request/);
        });
        await t.step("request too large (--max-request-bytes 4096)", async () => {
          const r = await etcdctl(ep, ["put", "big", "v".repeat(8000)]);
          assertEquals(r.code, 1);
          assertMatch(r.stderr, /etcdserver: request is too large/);
        });
        await t.step("empty key", async () => {
          const r = await etcdctl(ep, ["put", "", "v"]);
          assertEquals(r.code, 1);
          assertMatch(r.stderr, /etcdserver: key is not provided/);
        });
        await t.step("future revision", async () => {
          const r = await etcdctl(ep, ["get", "a", "--rev", "99"]);
          assertEquals(r.code, 1);
          assertMatch(
            r.stderr,
            /code = OutOfRange desc = etcdserver: mvcc: required revision is a future revision/,
          );
        });
        await t.step("compaction and compacted reads", async () => {
          const rev = JSON.parse(await ctlOk(ep, ["get", "a", "-w", "json"])).header.revision as number;
          assertEquals(lines(await ctlOk(ep, ["compaction", String(rev - 1)])), [
            `compacted revision ${rev - 1}`,
          ]);
          const r = await etcdctl(ep, ["get", "a", "--rev", "2"]);
          assertEquals(r.code, 1);
          assertMatch(
            r.stderr,
            /code = OutOfRange desc = etcdserver: mvcc: required revision has been compacted/,
          );
          assertEquals(lines(await ctlOk(ep, ["get", "a", "--rev", String(rev - 1)])), ["a", "11"]);
          const again = await etcdctl(ep, ["compaction", String(rev - 1)]);
          assertEquals(again.code, 1);
          assertMatch(again.stderr, /required revision has been compacted/);
          const future = await etcdctl(ep, ["compaction", String(rev + 100)]);
          assertEquals(future.code, 1);
          assertMatch(future.stderr, /required revision is a future revision/);
          assertEquals(lines(await ctlOk(ep, ["compaction", "--physical", String(rev)])), [
            `compacted revision ${rev}`,
          ]);
        });
      } finally {
        await m.destroy();
      }
    },
  });

  Deno.test({
    name: `[${impl}] member list and endpoint status`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      const m = await Member.start({ impl, name: "infra9" });
      try {
        const list = lines(await ctlOk(m.endpoint, ["member", "list"]));
        assertEquals(list.length, 1);
        const [id, state, name, peer, client, learner] = list[0].split(", ");
        assertMatch(id, /^[0-9a-f]{1,16}$/);
        assertEquals([state, name, learner], ["started", "infra9", "false"]);
        assertMatch(peer, /^http:\/\/127\.0\.0\.1:\d+$/);
        assertEquals(client, `http://${m.endpoint}`);
        const json = await ctlOk(m.endpoint, ["endpoint", "status", "-w", "json"]);
        const status = JSON.parse(json)[0].Status;
        // uint64 IDs do not survive JSON.parse as numbers: read them from the text
        const leader = BigInt(json.match(/"leader":(\d+)/)?.[1] ?? "0");
        const memberId = BigInt(json.match(/"member_id":(\d+)/)?.[1] ?? "0");
        assertEquals(leader, memberId);
        assertEquals(memberId, BigInt("0x" + id));
        assert(status.raftIndex > 0 && status.raftTerm > 0);
        assert(status.dbSize > 0);
        assertMatch(status.version, /^3\.\d+\.\d+$/);
        const table = await ctlOk(m.endpoint, ["endpoint", "status"]);
        assertMatch(
          table,
          new RegExp(`^${m.endpoint}, ${id}, 3\\.\\d+\\.\\d+, .*, true, false, \\d+, \\d+, \\d+, \n$`),
        );
        const health = await etcdctl(m.endpoint, ["endpoint", "health"]);
        assertEquals(health.code, 0);
        assertMatch(health.stdout + health.stderr, /is healthy: successfully committed proposal/);
      } finally {
        await m.destroy();
      }
    },
  });
}
