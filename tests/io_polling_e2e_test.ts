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
import { IO_POLLING_VALUE, IO_POLLING_VARIABLE, splitNulTerminated } from "../server/io_polling.ts";

const WARNING = `${IO_POLLING_VARIABLE} is not set`;

/** Starts a member with the given Deno permissions, in an environment without the variable. */
function start(host: string, permissions: string[]): Promise<Member> {
  const { [IO_POLLING_VARIABLE]: _, ...env } = Deno.env.toObject();
  // a space in the name: the command line must come back exactly
  return Member.start({ impl: "etcd-ts", host, name: "io polling", env, clearEnv: true, permissions });
}

/** The NUL-terminated strings of `/proc/<pid>/<file>`, as text. */
function procStrings(pid: number, file: "cmdline" | "environ"): string[] {
  const dec = new TextDecoder();
  return splitNulTerminated(Deno.readFileSync(`/proc/${pid}/${file}`)).map((b) => dec.decode(b));
}

Deno.test({
  name: "started without the variable, the executable restarts itself in place with it set, and serves",
  ignore: !HAVE_ETCDCTL || Deno.build.os !== "linux",
  async fn() {
    const m = await start("127.0.2.102", ["--allow-all"]);
    try {
      const environ = procStrings(m.child.pid, "environ");
      assert(environ.includes(`${IO_POLLING_VARIABLE}=${IO_POLLING_VALUE}`), "the variable is set");
      assertEquals(procStrings(m.child.pid, "cmdline"), m.command);
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
      assert(
        !procStrings(m.child.pid, "environ").some((e) => e.startsWith(`${IO_POLLING_VARIABLE}=`)),
        "not set",
      );
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
