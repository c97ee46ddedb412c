/**
 * The executable gives itself the event-loop setting of server/io_polling.ts. Started without
 * `DENO_TOKIO_EVENT_INTERVAL`, a member becomes the same process (same id, same command line) with the
 * variable set, serves, and logs no warning about it. Started without the permission that takes (FFI),
 * it serves as it was started and its log says what is wrong and how to set it.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "./assert.ts";
import { ctlOk, freePorts, HAVE_ETCDCTL, waitUntil } from "./helpers.ts";
import { IO_POLLING_VALUE, IO_POLLING_VARIABLE, parseCommandLine } from "../server/io_polling.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WARNING = `${IO_POLLING_VARIABLE} is not set`;

interface Started {
  child: Deno.ChildProcess;
  endpoint: string;
  argv: string[];
  log: () => string;
  stop(): Promise<void>;
}

/** Starts a member with the given Deno permissions, in an environment without the variable. */
async function start(host: string, permissions: string[]): Promise<Started> {
  const dataDir = await Deno.makeTempDir({ prefix: "etcd-ts-io-polling-" });
  const [clientPort, peerPort] = freePorts(host, 2);
  const client = `http://${host}:${clientPort}`;
  const peer = `http://${host}:${peerPort}`;
  const args = [
    "run",
    ...permissions,
    "--quiet",
    MAIN,
    "--name",
    "io polling", // a space: the command line must come back exactly
    "--data-dir",
    dataDir,
    "--listen-client-urls",
    client,
    "--advertise-client-urls",
    client,
    "--listen-peer-urls",
    peer,
    "--initial-advertise-peer-urls",
    peer,
    "--initial-cluster",
    `io polling=${peer}`,
  ];
  const { [IO_POLLING_VARIABLE]: _, ...env } = Deno.env.toObject();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env,
    clearEnv: true,
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const chunks: string[] = [];
  const drained = (async () => {
    const dec = new TextDecoder();
    for await (const c of child.stderr) chunks.push(dec.decode(c));
  })();
  const endpoint = `${host}:${clientPort}`;
  return {
    child,
    endpoint,
    argv: [Deno.execPath(), ...args],
    log: () => chunks.join(""),
    async stop() {
      child.kill("SIGKILL");
      await child.status;
      await drained;
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

async function ready(s: Started): Promise<void> {
  await waitUntil(
    async () => {
      try {
        await ctlOk(s.endpoint, ["endpoint", "health", "--dial-timeout=1s", "--command-timeout=2s"]);
        return true;
      } catch {
        return false;
      }
    },
    20_000,
    () => `the member on ${s.endpoint} is ready:\n${s.log()}`,
    100,
  );
}

function environOf(pid: number): string[] {
  return parseCommandLine(Deno.readFileSync(`/proc/${pid}/environ`));
}

Deno.test({
  name: "started without the variable, the executable restarts itself in place with it set, and serves",
  ignore: !HAVE_ETCDCTL || Deno.build.os !== "linux",
  async fn() {
    const s = await start("127.0.2.102", ["--allow-all"]);
    try {
      await ready(s);
      assert(
        environOf(s.child.pid).includes(`${IO_POLLING_VARIABLE}=${IO_POLLING_VALUE}`),
        "the variable is set",
      );
      assertEquals(parseCommandLine(Deno.readFileSync(`/proc/${s.child.pid}/cmdline`)), s.argv);
      await ctlOk(s.endpoint, ["put", "k", "v"]);
      assertEquals((await ctlOk(s.endpoint, ["get", "k", "--print-value-only"])).trim(), "v");
      assert(!s.log().includes(WARNING), `no warning:\n${s.log()}`);
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "started without the permission to restart itself, the executable serves as started and says so",
  ignore: !HAVE_ETCDCTL || Deno.build.os !== "linux",
  async fn() {
    const s = await start("127.0.2.103", [
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-sys",
    ]);
    try {
      await ready(s);
      assert(!environOf(s.child.pid).some((e) => e.startsWith(`${IO_POLLING_VARIABLE}=`)), "not set");
      await ctlOk(s.endpoint, ["put", "k", "v"]);
      await waitUntil(() => s.log().includes(WARNING), 5000, () => `the warning:\n${s.log()}`);
      const line = s.log().split("\n").find((l) => l.includes(WARNING))!;
      assertEquals(JSON.parse(line).level, "warn");
      assert(line.includes(`${IO_POLLING_VARIABLE}=${IO_POLLING_VALUE}`), line);
    } finally {
      await s.stop();
    }
  },
});
