/**
 * The executable gives itself the event-loop setting of server/io_polling.ts. Started without
 * `DENO_TOKIO_EVENT_INTERVAL`, a member becomes the same process (same id, same command line) with the
 * variable set, serves, and logs no warning about it. Started without the permission that takes (FFI),
 * it serves as it was started and its log says what is wrong and how to set it.
 *
 * @module
 */
import { assert, assertEquals } from "./assert.ts";
import { ctlOk, HAVE_ETCDCTL, Member, waitUntil } from "./helpers.ts";
import { IO_POLLING_VALUE, IO_POLLING_VARIABLE, parseCommandLine } from "../server/io_polling.ts";

const WARNING = `${IO_POLLING_VARIABLE} is not set`;

/** Starts a member with the given Deno permissions, in an environment without the variable. */
function start(host: string, permissions: string[]): Promise<Member> {
  const { [IO_POLLING_VARIABLE]: _, ...env } = Deno.env.toObject();
  // a space in the name: the command line must come back exactly
  return Member.start({ impl: "etcd-ts", host, name: "io polling", env, clearEnv: true, permissions });
}

function environOf(pid: number): string[] {
  return parseCommandLine(Deno.readFileSync(`/proc/${pid}/environ`));
}

Deno.test({
  name: "started without the variable, the executable restarts itself in place with it set, and serves",
  ignore: !HAVE_ETCDCTL || Deno.build.os !== "linux",
  async fn() {
    const m = await start("127.0.2.102", ["--allow-all"]);
    try {
      const environ = environOf(m.child.pid);
      assert(environ.includes(`${IO_POLLING_VARIABLE}=${IO_POLLING_VALUE}`), "the variable is set");
      assertEquals(parseCommandLine(Deno.readFileSync(`/proc/${m.child.pid}/cmdline`)), m.command);
      await ctlOk(m.endpoint, ["put", "k", "v"]);
      assertEquals((await ctlOk(m.endpoint, ["get", "k", "--print-value-only"])).trim(), "v");
      assert(!m.logs.join("").includes(WARNING), `no warning:\n${m.logs.join("")}`);
    } finally {
      await m.destroy();
    }
  },
});

Deno.test({
  name: "started without the permission to restart itself, the executable serves as started and says so",
  ignore: !HAVE_ETCDCTL || Deno.build.os !== "linux",
  async fn() {
    const m = await start("127.0.2.103", [
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-sys",
    ]);
    try {
      assert(!environOf(m.child.pid).some((e) => e.startsWith(`${IO_POLLING_VARIABLE}=`)), "not set");
      await ctlOk(m.endpoint, ["put", "k", "v"]);
      await waitUntil(
        () => m.logs.join("").includes(WARNING),
        5000,
        () => `the warning:\n${m.logs.join("")}`,
      );
      const line = m.logs.join("").split("\n").find((l) => l.includes(WARNING))!;
      assertEquals(JSON.parse(line).level, "warn");
      assert(line.includes(`${IO_POLLING_VARIABLE}=${IO_POLLING_VALUE}`), line);
    } finally {
      await m.destroy();
    }
  },
});
