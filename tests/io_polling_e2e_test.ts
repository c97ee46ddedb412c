/**
 * The executable gives itself the event-loop setting of server/io_polling.ts, and glibc's one heap of
 * server/memory/malloc_settings.ts. Started without `DENO_TOKIO_EVENT_INTERVAL` or `MALLOC_ARENA_MAX`, a
 * member becomes the same process (same id, same command line) with them set, serves, and logs no warning
 * about it; a value the user gave either is kept. Started without the permission that takes (FFI), it
 * serves as it was started and its log says what is wrong and how to set it.
 *
 * @module
 */
import { assert, assertEquals } from "./assert.ts";
import { ctlOk, HAVE_ETCDCTL, Member, waitUntil } from "./helpers.ts";
import { IO_POLLING_VALUE, IO_POLLING_VARIABLE, splitNulTerminated } from "../server/io_polling.ts";
import { ARENA_MAX, ARENA_VARIABLE } from "../server/memory/malloc_settings.ts";

const WARNING = `${IO_POLLING_VARIABLE} is not set`;

/**
 * Starts a member with the given Deno permissions, in an environment without either variable, but for
 * those in `own`.
 */
function start(host: string, permissions: string[], own: Record<string, string> = {}): Promise<Member> {
  const { [IO_POLLING_VARIABLE]: _, [ARENA_VARIABLE]: __, ...rest } = Deno.env.toObject();
  const env = { ...rest, ...own };
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
      assert(environ.includes(`${ARENA_VARIABLE}=${ARENA_MAX}`), "glibc's variable is set");
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
  name: "a value the user gave either variable is kept; the other is set in the same restart",
  ignore: !HAVE_ETCDCTL || Deno.build.os !== "linux",
  async fn() {
    const owns: Record<string, string>[] = [{ [IO_POLLING_VARIABLE]: "2" }, { [ARENA_VARIABLE]: "4" }];
    for (const own of owns) {
      const m = await start("127.0.2.104", ["--allow-all"], own);
      try {
        const set = (name: string) =>
          procStrings(m.child.pid, "environ").filter((e) => e.startsWith(`${name}=`)).map((e) =>
            e.slice(name.length + 1)
          );
        assertEquals(set(IO_POLLING_VARIABLE), [own[IO_POLLING_VARIABLE] ?? IO_POLLING_VALUE]);
        assertEquals(set(ARENA_VARIABLE), [own[ARENA_VARIABLE] ?? ARENA_MAX]);
        assertEquals(procStrings(m.child.pid, "cmdline"), m.command);
        await ctlOk(m.endpoint, ["put", "k", "v"]);
      } finally {
        await m.destroy();
      }
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
