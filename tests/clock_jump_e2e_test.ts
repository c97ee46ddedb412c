/**
 * A member whose wall clock jumps must not revoke leases early: lease expiry is measured on a monotonic
 * clock, as Go's runtime measures etcd's. The member runs under libfaketime (Debian's `faketime`), whose
 * timestamp file moves the process's wall clock an hour ahead mid-test while its monotonic clock runs on.
 *
 * Only etcd-ts runs here: Go reads the clock through the vDSO, past libfaketime, so the real etcd would
 * not see the jump at all.
 */
import { assert } from "./assert.ts";
import { ctlOk, HAVE_ETCDCTL, Member, sleep } from "./helpers.ts";

const LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const HAVE_FAKETIME = (() => {
  try {
    return Deno.statSync(LIBFAKETIME).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "[etcd-ts] a wall-clock jump of an hour does not expire a lease early" +
    (HAVE_FAKETIME ? "" : " (needs Debian's faketime: skipped)"),
  ignore: !HAVE_ETCDCTL || !HAVE_FAKETIME,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "etcd-ts-clockjump-" });
    const timeFile = `${dir}/faketime`;
    await Deno.writeTextFile(timeFile, "+0\n");
    const m = await Member.start({
      impl: "etcd-ts",
      host: "127.0.2.109",
      env: {
        LD_PRELOAD: LIBFAKETIME,
        FAKETIME_TIMESTAMP_FILE: timeFile,
        FAKETIME_NO_CACHE: "1",
        FAKETIME_DONT_FAKE_MONOTONIC: "1",
      },
    });
    try {
      const granted = await ctlOk(m.endpoint, ["lease", "grant", "30"]);
      const id = /lease ([0-9a-f]+) granted/.exec(granted)![1];
      await ctlOk(m.endpoint, ["put", "held", "by-lease", "--lease", id]);
      // the member's wall clock jumps an hour ahead
      await Deno.writeTextFile(timeFile, "+1h\n");
      await sleep(3000);
      const ttl = await ctlOk(m.endpoint, ["lease", "timetolive", id]);
      const remaining = Number(/remaining\(([-0-9]+)s\)/.exec(ttl)?.[1] ?? "NaN");
      assert(remaining >= 20 && remaining <= 30, `after the jump: ${ttl}`);
      const held = await ctlOk(m.endpoint, ["get", "held", "--print-value-only"]);
      assert(held.trim() === "by-lease", `the key of the lease is gone: ${JSON.stringify(held)}`);
    } finally {
      await m.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
