import { assertEquals } from "../../tests/assert.ts";
import { FakeClock } from "../../tests/fake_clock.ts";
import { createLogger } from "../logger.ts";
import {
  applyClusterVersion,
  ClusterVersionMonitor,
  clusterVersionOf,
  decideClusterVersion,
  lowerVersion,
} from "./cluster_version.ts";
import { Membership } from "./membership.ts";
import { ProposalKind } from "./proposal.ts";

function loggerInto(lines: string[]) {
  return createLogger({ level: "info", write: (l) => lines.push(l) });
}

function messages(lines: string[]): Record<string, unknown>[] {
  return lines.map((l) => JSON.parse(l));
}

Deno.test("cluster version: the lowest member version, by major.minor; unknown when a member is", () => {
  assertEquals(clusterVersionOf("3.5.2"), "3.5.0");
  assertEquals(clusterVersionOf("v3"), undefined);
  assertEquals(lowerVersion("3.4.23", "3.5.0"), true);
  assertEquals(lowerVersion("3.5.9", "3.5.0"), false);
  assertEquals(lowerVersion("2.9.0", "3.0.0"), true);
  assertEquals(decideClusterVersion(["3.5.0", "3.4.23", "3.5.1"]), "3.4.0");
  assertEquals(decideClusterVersion(["3.5.0", undefined]), undefined);
  assertEquals(decideClusterVersion(["3.5.0", "garbage"]), undefined);
  assertEquals(decideClusterVersion([]), undefined);
});

Deno.test("cluster version: applying sets it once, raises it, never lowers it, in etcd's log words", () => {
  const lines: string[] = [];
  const m = new Membership(0x5cn);
  applyClusterVersion(m, "3.0.0", loggerInto(lines), 0x3en);
  assertEquals(m.clusterVersion, "3.0.0");
  applyClusterVersion(m, "3.5.0", loggerInto(lines), 0x3en);
  assertEquals(m.clusterVersion, "3.5.0");
  applyClusterVersion(m, "3.4.0", loggerInto(lines), 0x3en);
  applyClusterVersion(m, "3.5.0", loggerInto(lines), 0x3en);
  assertEquals(m.clusterVersion, "3.5.0");
  const logged = messages(lines).map((e) => [e.msg, e["cluster-version"] ?? `${e.from}->${e.to}`]);
  assertEquals(logged, [
    ["set initial cluster version", "3.0"],
    ["enabled capabilities for version", "3.0"],
    ["updated cluster version", "3.0->3.5"],
    ["enabled capabilities for version", "3.5"],
  ]);
  // kept in snapshots
  assertEquals(Membership.fromJSON(m.toJSON()).clusterVersion, "3.5.0");
  assertEquals(Membership.fromJSON(new Membership(1n).toJSON()).clusterVersion, undefined);
});

Deno.test("cluster version monitor: the leader proposes 3.0 while a member is silent, then the lowest version", async () => {
  const clock = new FakeClock();
  const lines: string[] = [];
  const m = new Membership(1n);
  for (const id of [1n, 2n, 3n]) {
    m.add({ id, name: `m${id}`, peerUrls: [`http://m${id}`], clientUrls: [], isLearner: false });
  }
  const versions = new Map<string, string | undefined>([["http://m2", "3.5.1"], ["http://m3", undefined]]);
  let leader = false;
  const proposed: string[] = [];
  const monitor = new ClusterVersionMonitor({
    memberId: 1n,
    serverVersion: "3.5.0",
    membership: m,
    isLeader: () => leader,
    fetchVersion: (urls) => Promise.resolve(versions.get(urls[0])),
    propose: (kind, payload) => {
      assertEquals(kind, ProposalKind.ClusterVersion);
      const v = new TextDecoder().decode(payload);
      proposed.push(v);
      applyClusterVersion(m, v, loggerInto(lines), 1n);
      return Promise.resolve(undefined);
    },
    clock,
    logger: loggerInto(lines),
  });
  monitor.start();
  // a follower proposes nothing
  await clock.advance(5000);
  assertEquals(proposed, []);
  leader = true;
  await clock.advance(1000);
  assertEquals(proposed, ["3.0.0"]);
  // every member answers now: the lowest of 3.5.0, 3.5.1, 3.4.9 is 3.4
  versions.set("http://m3", "3.4.9");
  await clock.advance(4000);
  assertEquals(proposed, ["3.0.0", "3.4.0"]);
  // nothing more while nothing changes
  await clock.advance(12_000);
  assertEquals(proposed, ["3.0.0", "3.4.0"]);
  assertEquals(m.clusterVersion, "3.4.0");
  const msgs = messages(lines).map((e) => e.msg);
  assertEquals(msgs.filter((x) => x === "setting up initial cluster version").length, 1);
  assertEquals(msgs.filter((x) => x === "updating cluster version").length, 1);
  assertEquals(msgs.filter((x) => x === "cluster version is updated").length, 2);
  monitor.stop();
  assertEquals(clock.pending, 0);
});
