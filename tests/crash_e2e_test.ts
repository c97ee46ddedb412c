/**
 * Durability end to end: acknowledged writes survive `kill -9` of the server process.
 */
import { Etcd3 } from "etcd3";
import { assert, assertEquals } from "./assert.ts";
import { HAVE_ETCDCTL, implementations, Member, sleep } from "./helpers.ts";

const WRITERS = 32;
const MAX_WRITES_PER_WRITER = 5000;

for (const impl of implementations()) {
  Deno.test({
    name: `[${impl}] kill -9 under concurrent writes loses no acknowledged write`,
    ignore: !HAVE_ETCDCTL,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const m = await Member.start({ impl });
      const acked = new Map<string, string>();
      let killed = false;
      const client = new Etcd3({ hosts: `http://${m.endpoint}`, dialTimeout: 2000 });
      try {
        const writer = async (w: number) => {
          for (let i = 0; i < MAX_WRITES_PER_WRITER && !killed; i++) {
            const key = `crash/${w}/${i}`;
            const value = `v${w}-${i}`;
            try {
              await client.put(key).value(value);
            } catch {
              return; // the server is gone: this write was never acknowledged
            }
            acked.set(key, value);
          }
        };
        const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
        const deadline = Date.now() + 10_000;
        while (acked.size < 2000 && Date.now() < deadline) await sleep(20);
        await m.stop("SIGKILL");
        killed = true;
        await Promise.all(writers);
      } finally {
        client.close();
      }
      assert(acked.size >= 500, `only ${acked.size} writes were acknowledged before the kill`);

      const again = await m.restart();
      const check = new Etcd3({ hosts: `http://${again.endpoint}` });
      try {
        const stored = await check.getAll().prefix("crash/").strings();
        const missing = [...acked].filter(([k, v]) => stored[k] !== v).map(([k]) => k);
        assertEquals(missing, [], `${missing.length} of ${acked.size} acknowledged writes lost`);
      } finally {
        check.close();
        await again.destroy();
      }
    },
  });
}
