import { assert, assertEquals } from "../tests/assert.ts";
import { ETCD_TS_V8_FLAGS, etcdTsCommand } from "./servers.ts";

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
