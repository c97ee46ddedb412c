/**
 * A real gateway client: Patroni's etcd3 DCS (Debian's `patroni` package, used unchanged) talks to etcd
 * only through the JSON gateway (`/version`, `/v3/kv/*`, `/v3/lease/*`, `/v3/watch` for its cache, and
 * `/v3/auth/authenticate` with the token in `Authorization`). gateway_patroni_e2e.py does what a Patroni
 * primary does without PostgreSQL; it runs against etcd-ts and, when installed, the real etcd, which must
 * see the same.
 */
import { assertEquals } from "./assert.ts";
import { ctlOk, freePorts, HAVE_ETCDCTL, type Impl, implementations, Member } from "./helpers.ts";

const PYTHON = "/usr/bin/python3";
const HAVE_PATRONI = (() => {
  try {
    return Deno.statSync(PYTHON).isFile &&
      Deno.statSync("/usr/lib/python3/dist-packages/patroni/dcs/etcd3.py").isFile;
  } catch {
    return false;
  }
})();
const SCRIPT = new URL("./gateway_patroni_e2e.py", import.meta.url).pathname;
const HOSTS: Record<Impl, string> = { "etcd-ts": "127.0.2.22", etcd: "127.0.2.23" };

/** What Patroni must see, on a fresh store. */
const EXPECTED = {
  acquire_leader: true,
  class: "Etcd3",
  config_ttl: 30,
  delete_leader: true,
  empty_leader: true,
  initialize: true,
  initialize_again: false,
  initialize_key: "7000000000000000001",
  leader: "postgresql0",
  leader_after_delete: true,
  leader_has_lease: true,
  members: ["postgresql0"],
  members_after_other: ["postgresql0", "postgresql1"],
  other_cannot_take_leader: true,
  touch_member: true,
  update_leader: true,
};

async function runPatroni(endpoint: string, auth: string[] = []): Promise<unknown> {
  const out = await new Deno.Command(PYTHON, {
    args: [SCRIPT, endpoint, ...auth],
    cwd: "/tmp",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(90_000),
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, `patroni's DCS failed:\n${stdout}\n${stderr}`);
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

const missing = !HAVE_PATRONI
  ? " (skipped: patroni is not installed)"
  : !HAVE_ETCDCTL
  ? " (skipped: etcdctl is not installed)"
  : "";

for (const impl of implementations()) {
  Deno.test({
    name: `[${impl}] Patroni's etcd3 DCS works through the JSON gateway${missing}`,
    ignore: missing !== "",
    fn: async (t) => {
      const host = HOSTS[impl];
      const [clientPort, peerPort] = freePorts(host, 2);
      const m = await Member.start({ impl, host, clientPort, peerPort });
      try {
        await t.step("leader key with a lease, members, config, and the watch-fed cache", async () => {
          assertEquals(await runPatroni(m.endpoint), EXPECTED);
        });
        await t.step("with etcd auth: Patroni authenticates and sends its token", async () => {
          await ctlOk(m.endpoint, ["user", "add", "root:pw"]);
          await ctlOk(m.endpoint, ["user", "grant-role", "root", "root"]);
          await ctlOk(m.endpoint, ["auth", "enable"]);
          // the store already holds the first run's keys: initialisation is taken, member keys remain
          assertEquals(await runPatroni(m.endpoint, ["root", "pw"]), {
            ...EXPECTED,
            initialize: false,
            members: ["postgresql0", "postgresql1"],
          });
        });
      } finally {
        await m.destroy();
      }
    },
  });
}
