/**
 * A leader whose heartbeats leave late says so in etcd's words. The leader of three members is stopped
 * (SIGSTOP) for five heartbeat intervals, well inside the election timeout, then resumed: its next
 * heartbeat to each follower leaves more than twice the interval after the one before, and its log has
 * etcd's warning with the follower's ID and the excess. Run against etcd (with `--logger zap`) and
 * etcd-ts.
 *
 * @module
 */
import { assert, assertEquals } from "./assert.ts";
import { Cluster } from "./cluster.ts";
import { HAVE_ETCDCTL, type Impl, implementations, sleep } from "./helpers.ts";

const HOSTS: Record<Impl, string[]> = {
  "etcd-ts": ["127.0.2.112", "127.0.2.113", "127.0.2.114"],
  etcd: ["127.0.2.115", "127.0.2.116", "127.0.2.117"],
};
const WARNING =
  "leader failed to send out heartbeat on time; took too long, leader is overloaded likely from slow disk";

for (const impl of implementations()) {
  Deno.test({
    name: `[${impl}] a leader stopped for a few heartbeat intervals logs etcd's late-heartbeat warning`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      const c = await Cluster.start({
        impl,
        hosts: HOSTS[impl],
        extraArgs: ["--logger", "zap", "--heartbeat-interval", "100", "--election-timeout", "3000"],
      });
      try {
        const lead = await c.waitLeader();
        const leader = c.members[lead.index];
        const followers = lead.statuses.filter((s) => !s.isLeader).map((s) => s.memberId.toString(16));
        const mark = leader.mark();
        leader.pause();
        await sleep(500);
        leader.resume();
        const line = await leader.waitForLog(/failed to send out heartbeat on time/, mark, 5000);
        assert(line !== undefined, `no late-heartbeat warning:\n${leader.logSince(mark)}`);
        const e = JSON.parse(line) as Record<string, string>;
        assertEquals([e.level, e.msg], ["warn", WARNING]);
        assert(followers.includes(e.to), `to ${e.to}, not one of the followers ${followers}`);
        assertEquals([e["heartbeat-interval"], e["expected-duration"]], ["100ms", "200ms"]);
        const exceeded = e["exceeded-duration"].match(/^([\d.]+)(ms|s)$/);
        assert(exceeded !== null, `exceeded-duration ${e["exceeded-duration"]}`);
        const ms = Number(exceeded[1]) * (exceeded[2] === "s" ? 1000 : 1);
        assert(ms >= 200 && ms < 3000, `exceeded by ${ms} ms after a 500 ms stop`);
        // a pause inside the election timeout: the same leader, in the same term
        const after = await c.waitLeader();
        assertEquals([after.id, after.term], [lead.id, lead.term]);
      } finally {
        await c.destroy();
      }
    },
  });
}
