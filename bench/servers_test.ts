import { assert, assertEquals } from "../tests/assert.ts";
import { ETCD_TS_V8_FLAGS, etcdTsCommand, pickEndpoint } from "./servers.ts";

Deno.test("the benchmarks start etcd-ts with the V8 flags that deno task start and the executable use", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).tasks;
  for (const task of ["start", "compile"]) {
    assert(
      String(tasks[task]).split(/\s+/).includes(`--v8-flags=${ETCD_TS_V8_FLAGS}`),
      `deno task ${task} runs with ${ETCD_TS_V8_FLAGS}: ${tasks[task]}`,
    );
  }
  const saved = Deno.env.get("OTHER_CMD");
  try {
    Deno.env.delete("OTHER_CMD");
    assertEquals(etcdTsCommand(), [
      Deno.execPath(),
      "run",
      "--allow-all",
      `--v8-flags=${ETCD_TS_V8_FLAGS}`,
      "main.ts",
    ]);
    Deno.env.set("OTHER_CMD", " dist/etcd-ts  --log-level warn ");
    assertEquals(etcdTsCommand(), ["dist/etcd-ts", "--log-level", "warn"]);
  } finally {
    if (saved === undefined) Deno.env.delete("OTHER_CMD");
    else Deno.env.set("OTHER_CMD", saved);
  }
});

Deno.test("a run through the leader or a follower picks its member from etcdctl endpoint status", () => {
  // etcdctl prints member IDs as 64-bit integers; these two differ only below a double's precision
  const status = (endpoint: string, id: string, leader: string) =>
    `{"Endpoint":"${endpoint}","Status":{"header":{"cluster_id":14841639068965178418,"member_id":${id},` +
    `"revision":1,"raft_term":2},"version":"3.4.23","dbSize":20480,"leader":${leader},"raftIndex":8,` +
    `"raftTerm":2}}`;
  const lead = "10276657743932975437", other = "10276657743932975436", third = "1";
  const json = `[${status("127.0.0.1:23790", other, lead)},${status("127.0.0.1:23792", lead, lead)},${
    status("127.0.0.1:23794", third, lead)
  }]`;
  assertEquals(pickEndpoint(json, "leader"), "127.0.0.1:23792");
  assertEquals(pickEndpoint(json, "follower"), "127.0.0.1:23790");
  // no member leads yet (leader 0), or the status could not be read
  const noLeader = `[${status("127.0.0.1:23790", other, "0")},${status("127.0.0.1:23792", lead, "0")}]`;
  assertEquals(pickEndpoint(noLeader, "follower"), undefined);
  assertEquals(pickEndpoint("Failed to get the status", "leader"), undefined);
});
