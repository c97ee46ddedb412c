/**
 * The single executable: `deno compile` of main.ts, started like etcd and used through etcdctl.
 *
 * `deno compile` needs Deno's runtime binary (`denort`). It downloads it unless `DENORT_BIN` names a
 * local copy, and this machine cannot download it, so the test runs only where `DENORT_BIN` points at an
 * existing file; elsewhere it is reported as ignored, with that reason in its name.
 *
 * @module
 */
import { assertEquals, assertMatch } from "./assert.ts";
import { ctlOk, freePort, HAVE_ETCDCTL, sleep } from "./helpers.ts";

const denort = Deno.env.get("DENORT_BIN");
const HAVE_DENORT = denort !== undefined && (() => {
  try {
    return Deno.statSync(denort).isFile;
  } catch {
    return false;
  }
})();

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test({
  name: HAVE_DENORT
    ? "the compiled etcd-ts executable starts a member that etcdctl uses"
    : "the compiled etcd-ts executable (skipped: DENORT_BIN does not name a denort binary, and deno compile cannot download one here)",
  ignore: !HAVE_DENORT || !HAVE_ETCDCTL,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "etcd_ts_compile_" });
    const exe = `${dir}/etcd-ts`;
    try {
      // the command of `deno task compile`, with another output path
      const task =
        (JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`)) as { tasks: { compile: string } })
          .tasks.compile.split(" ");
      assertEquals(task.slice(0, 2), ["deno", "compile"]);
      const build = await new Deno.Command(Deno.execPath(), {
        args: task.slice(1).map((a) => a === "dist/etcd-ts" ? exe : a),
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(build.code, 0, new TextDecoder().decode(build.stderr));

      const version = await new Deno.Command(exe, { args: ["--version"], stdout: "piped" }).output();
      assertMatch(
        new TextDecoder().decode(version.stdout),
        /^etcd-ts Version: .*\netcd Version: 3\.5\.\d+\n/,
      );

      const client = `127.0.0.1:${freePort("127.0.0.1")}`;
      const peer = `http://127.0.0.1:${freePort("127.0.0.1")}`;
      const child = new Deno.Command(exe, {
        args: [
          "--data-dir",
          `${dir}/data`,
          "--listen-client-urls",
          `http://${client}`,
          "--advertise-client-urls",
          `http://${client}`,
          "--listen-peer-urls",
          peer,
          "--initial-advertise-peer-urls",
          peer,
          "--initial-cluster",
          `default=${peer}`,
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();
      try {
        let ok = false;
        for (let i = 0; i < 100 && !ok; i++) {
          ok = await ctlOk(client, ["put", "compiled", "yes"]).then(() => true, () => false);
          if (!ok) await sleep(100);
        }
        assertEquals(await ctlOk(client, ["get", "compiled", "--print-value-only"]), "yes\n");
      } finally {
        child.kill("SIGTERM");
        await child.status;
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
