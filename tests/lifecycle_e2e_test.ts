/**
 * A member's life as operators see it: the cluster version lines of its start, `/version`, and a
 * graceful shutdown on SIGTERM (leadership handed over, nothing acknowledged lost, exit 0, bounded in
 * time; a second signal ends it at once).
 */
import { assert, assertEquals } from "./assert.ts";
import {
  ctlOk,
  HAVE_ETCDCTL,
  type Impl,
  implementations,
  Member,
  runServer,
  sleep,
  waitUntil,
} from "./helpers.ts";
import { clientFor, Cluster } from "./cluster.ts";

const HOSTS: Record<Impl, string[]> = {
  "etcd-ts": ["127.0.2.90", "127.0.2.91", "127.0.2.92"],
  etcd: ["127.0.2.93", "127.0.2.94", "127.0.2.95"],
};
const SHUTDOWN_HOSTS = ["127.0.2.96", "127.0.2.97", "127.0.2.98"];
const SECOND_SIGNAL_HOSTS = ["127.0.2.99", "127.0.2.100", "127.0.2.101"];

/** The JSON log lines of a member's output (etcd 3.4 also prints plain lines, which are skipped). */
function logEntries(text: string): Record<string, unknown>[] {
  return text.split("\n").filter((l) => l.startsWith("{")).map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      return {};
    }
  });
}

async function versionOf(clientUrl: string): Promise<{ etcdserver: string; etcdcluster: string }> {
  const res = await fetch(`${clientUrl}/version`);
  return await res.json();
}

for (const impl of implementations()) {
  Deno.test({
    name: `[${impl}] lifecycle: every member sets the cluster version through Raft and logs it as etcd does`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      const c = await Cluster.start({ impl, hosts: HOSTS[impl], extraArgs: ["--logger", "zap"] });
      const expected = impl === "etcd" ? "3.4.0" : "3.5.0";
      try {
        for (const m of c.members) {
          await waitUntil(
            async () => (await versionOf(m.clientUrl)).etcdcluster === expected,
            15_000,
            () => `${m.name}: ${m.logSince()}`,
          );
        }
        for (const m of c.members) {
          await waitUntil(
            () => logEntries(m.logSince()).some((e) => e.msg === "enabled capabilities for version"),
            5000,
            () => m.logSince(),
          );
          const entries = logEntries(m.logSince());
          const set = entries.find((e) => e.msg === "set initial cluster version");
          assert(set !== undefined, m.logSince());
          const enabled = entries.filter((e) => e.msg === "enabled capabilities for version");
          // the last version enabled is the members' (a leader that could not reach every member at
          // first sets 3.0, then raises it, as etcd does)
          assertEquals(enabled.at(-1)!["cluster-version"], expected.slice(0, 3), m.logSince());
        }
        // exactly one member (the leader) proposed it
        const proposers = c.members.filter((m) =>
          logEntries(m.logSince()).some((e) => e.msg === "setting up initial cluster version")
        );
        assertEquals(proposers.length, 1, c.logs());
        // the cluster version survives a restart without being proposed again by a follower
        const follower = c.members.find((m) => m !== proposers[0])!;
        await follower.kill("SIGTERM");
        const mark = follower.mark();
        follower.spawn();
        await follower.waitReady();
        await waitUntil(
          async () => (await versionOf(follower.clientUrl)).etcdcluster === expected,
          10_000,
          () => follower.logSince(mark),
        );
        assert(
          !logEntries(follower.logSince(mark)).some((e) => e.msg === "setting up initial cluster version"),
          follower.logSince(mark),
        );
      } finally {
        await c.destroy();
      }
    },
  });
}

Deno.test({
  name:
    "[etcd-ts] lifecycle: SIGTERM to the leader under writes hands leadership over, loses nothing, exits 0",
  ignore: !HAVE_ETCDCTL,
  fn: async () => {
    const c = await Cluster.start({ impl: "etcd-ts", hosts: SHUTDOWN_HOSTS });
    const client = clientFor(c.members.map((m) => m.endpoint));
    try {
      const leader = await c.waitLeader();
      const victim = c.members[leader.index];
      const others = c.members.filter((m) => m !== victim);
      // writes to every member, the leader included, until a bounded count or time
      const acknowledged: string[] = [];
      let stop = false;
      const writer = (async () => {
        const deadline = Date.now() + 15_000;
        for (let i = 0; i < 2000 && !stop && Date.now() < deadline; i++) {
          const key = `shutdown/${i}`;
          try {
            await client.put(key).value("v");
            acknowledged.push(key);
          } catch {
            // refused or cut off while the leader stops: not acknowledged, may or may not be there
          }
        }
      })();
      await waitUntil(
        () => acknowledged.length >= 50,
        10_000,
        () => `${acknowledged.length} writes acknowledged`,
      );
      const started = Date.now();
      Deno.kill(victim.pid, "SIGTERM");
      const status = await victim.exited();
      const took = Date.now() - started;
      await sleep(300);
      stop = true;
      await writer;
      const log = logEntries(victim.logSince());
      assertEquals(status.code, 0, victim.logSince());
      assert(log.some((e) => e.msg === "received signal; shutting down"), victim.logSince());
      assert(log.some((e) => e.msg === "leadership transferred before stopping"), victim.logSince());
      // bounded: two election timeouts for the hand-over, the listeners' grace, and the rest
      assert(took < 10_000, `shutdown took ${took} ms`);
      // the other two lead at once, without waiting out an election timeout of their own
      const next = await c.waitLeader(others.map((m) => c.members.indexOf(m)), leader.term - 1, 5000);
      assert(next.index !== leader.index);
      // every acknowledged write is there, read linearizably from the members left
      const survivor = clientFor(others.map((m) => m.endpoint));
      try {
        const keys = await survivor.getAll().prefix("shutdown/").keys();
        const present = new Set(keys);
        const lost = acknowledged.filter((k) => !present.has(k));
        assertEquals(lost, [], `${lost.length} of ${acknowledged.length} acknowledged writes lost`);
      } finally {
        survivor.close();
      }
    } finally {
      client.close();
      await c.destroy();
    }
  },
});

Deno.test({
  name: "[etcd-ts] lifecycle: a second signal during a slow graceful shutdown exits at once",
  ignore: !HAVE_ETCDCTL,
  fn: async () => {
    // long election timeouts make the hand-over slow when the followers do not answer
    const c = await Cluster.start({
      impl: "etcd-ts",
      hosts: SECOND_SIGNAL_HOSTS,
      extraArgs: ["--heartbeat-interval", "500", "--election-timeout", "5000"],
    });
    try {
      const leader = await c.waitLeader();
      const victim = c.members[leader.index];
      const frozen = c.members.filter((m) => m !== victim);
      for (const m of frozen) m.pause();
      const started = Date.now();
      Deno.kill(victim.pid, "SIGTERM");
      await waitUntil(
        () => logEntries(victim.logSince()).some((e) => e.msg === "received signal; shutting down"),
        5000,
        () => victim.logSince(),
      );
      await sleep(500);
      assert(victim.running, "the graceful shutdown should still be waiting for the frozen followers");
      Deno.kill(victim.pid, "SIGINT");
      const status = await victim.exited();
      const took = Date.now() - started;
      assertEquals(status.code, 1, victim.logSince());
      assert(
        logEntries(victim.logSince()).some((e) => e.msg === "received signal again; exiting at once"),
        victim.logSince(),
      );
      assert(took < 5000, `exit took ${took} ms after the first signal`);
      for (const m of frozen) m.resume();
    } finally {
      await c.destroy();
    }
  },
});

Deno.test({
  name: "[etcd-ts] lifecycle: --enable-log-rotation writes the log to its one file; a second file is refused",
  ignore: !HAVE_ETCDCTL,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "etcd-ts-logrot-e2e-" });
    const logFile = `${dir}/etcd.log`;
    const host = "127.0.2.105";
    try {
      const m = await Member.start({
        impl: "etcd-ts",
        host,
        args: [
          "--enable-log-rotation",
          "--log-outputs",
          logFile,
          "--log-rotation-config-json",
          '{"maxsize": 1, "maxbackups": 2}',
        ],
      });
      try {
        await ctlOk(m.endpoint, ["put", "k", "v"]);
      } finally {
        assertEquals((await m.stop()).code, 0);
        await Deno.remove(m.dataDir, { recursive: true });
      }
      // nothing on stderr: the log went to its file
      assertEquals(m.logs.join(""), "");
      const entries = logEntries(await Deno.readTextFile(logFile));
      assert(entries.some((e) => e.msg === "ready to serve client requests"), JSON.stringify(entries));
      assert(entries.some((e) => e.msg === "received signal; shutting down"), JSON.stringify(entries));

      const refused = await runServer("etcd-ts", [
        "--enable-log-rotation",
        "--log-outputs",
        `${dir}/a.log,${dir}/b.log`,
        "--data-dir",
        `${dir}/refused.etcd`,
      ]);
      assertEquals(refused.code, 1);
      assert(
        refused.stderr.includes(
          "--log-outputs requires a single file path when --log-rotate-config-json is defined",
        ),
        refused.stderr,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
