import { assertEquals } from "../../tests/assert.ts";
import { ConfChangeType } from "../../raft/types.ts";
import { Membership, memberToJson } from "./membership.ts";
import { validateConfChange } from "./reconfig.ts";

function ctx(id: bigint, urls: string[], isLearner = false): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify(memberToJson({ id, name: "", peerUrls: urls, clientUrls: [], isLearner })),
  );
}

function cluster(): Membership {
  const ms = new Membership(9n);
  ms.add({ id: 1n, name: "a", peerUrls: ["http://a:2380"], clientUrls: [], isLearner: false });
  ms.add({ id: 2n, name: "b", peerUrls: ["http://b:2380"], clientUrls: [], isLearner: false });
  ms.add({ id: 3n, name: "", peerUrls: ["http://c:2380"], clientUrls: [], isLearner: true });
  ms.remove(4n);
  return ms;
}

Deno.test("reconfig: changes are refused at apply time in etcd's words, from the replicated membership alone", () => {
  const ms = cluster();
  const check = (type: ConfChangeType, nodeId: bigint, context: Uint8Array = new Uint8Array()) =>
    validateConfChange(ms, { type, nodeId, context })?.message;
  assertEquals(check(ConfChangeType.AddNode, 5n, ctx(5n, ["http://e:2380"])), undefined);
  assertEquals(
    check(ConfChangeType.AddNode, 5n, ctx(5n, ["http://a:2380"])),
    "etcdserver: Peer URLs already exists",
  );
  assertEquals(check(ConfChangeType.AddNode, 4n, ctx(4n, ["http://d:2380"])), "etcdserver: member not found");
  assertEquals(
    check(ConfChangeType.AddLearnerNode, 6n, ctx(6n, ["http://f:2380"], true)),
    "etcdserver: too many learner members in cluster",
  );
  // adding an existing member as a voter promotes it: only a learner can be promoted
  assertEquals(check(ConfChangeType.AddNode, 3n, ctx(3n, ["http://c:2380"])), undefined);
  assertEquals(
    check(ConfChangeType.AddNode, 2n, ctx(2n, ["http://b:2380"])),
    "etcdserver: can only promote a learner member",
  );
  assertEquals(
    check(ConfChangeType.AddLearnerNode, 2n, ctx(2n, ["http://b:2380"])),
    "etcdserver: member ID already exist",
  );
  assertEquals(check(ConfChangeType.RemoveNode, 2n), undefined);
  assertEquals(check(ConfChangeType.RemoveNode, 4n), "etcdserver: member not found");
  assertEquals(check(ConfChangeType.RemoveNode, 8n), "etcdserver: member not found");
  assertEquals(check(ConfChangeType.UpdateNode, 2n, ctx(2n, ["http://b2:2380"])), undefined);
  assertEquals(
    check(ConfChangeType.UpdateNode, 2n, ctx(2n, ["http://a:2380"])),
    "etcdserver: Peer URLs already exists",
  );
  assertEquals(
    check(ConfChangeType.UpdateNode, 8n, ctx(8n, ["http://h:2380"])),
    "etcdserver: member not found",
  );
});
