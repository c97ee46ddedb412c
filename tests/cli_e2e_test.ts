/**
 * The command line end to end: the server run as a process, its exit code, what it prints, and the member
 * it starts, for `--version`, `--help`, refused flags, flags etcd-ts does not implement yet, `ETCD_*`
 * variables, `--config-file`, a start without flags, and its JSON log lines. Each case runs against every
 * implementation of {@link implementations}, so the real etcd proves the expected words and codes are
 * etcd's; the few that only etcd-ts can pass say so in their names.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  ctlOk,
  etcdctl,
  freePort,
  HAVE_ETCDCTL,
  type Impl,
  implementations,
  Member,
  runServer,
  sleep,
} from "./helpers.ts";
import { VERSION } from "../main.ts";
import { ETCD_VERSION } from "../mod.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * The loopback address this file's members listen on. On 127.0.0.1 a free port could be taken meanwhile
 * as the source port of another test file's outgoing connection (seen once: "address already in use").
 */
const HOST = "127.0.2.118";

/** Standard flags for a one-member cluster on free ports of {@link HOST}. */
function memberFlags(name: string, dataDir: string): { args: string[]; client: string; clientPort: number } {
  const clientPort = freePort(HOST);
  const client = `http://${HOST}:${clientPort}`;
  const peer = `http://${HOST}:${freePort(HOST)}`;
  const args = [
    `--name=${name}`,
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=${name}=${peer}`,
  ];
  return { args, client, clientPort };
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l.trim() !== "");
}

/** Every line is a JSON object with etcd's zap fields `level`, `ts` and `msg`; returns the objects. */
function jsonLogLines(text: string): Record<string, unknown>[] {
  return lines(text).map((l) => {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(l);
    } catch {
      throw new Error(`log line is not JSON: ${l}`);
    }
    for (const key of ["level", "ts", "msg"]) {
      assertEquals(typeof entry[key], "string", `log line lacks "${key}": ${l}`);
    }
    assert(!Number.isNaN(Date.parse(entry.ts as string)), `"ts" is not a time: ${l}`);
    return entry;
  });
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "etcd-ts-cli-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The member names `etcdctl member list` shows. */
async function memberNames(endpoint: string): Promise<string[]> {
  const out = await ctlOk(endpoint, ["member", "list"]);
  return lines(out).map((l) => l.split(", ")[2]);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------
// --version and --help

for (const impl of implementations()) {
  Deno.test(`[${impl}] --version prints the version lines on stdout and exits 0`, async () => {
    const r = await runServer(impl, ["--version"]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stderr, "");
    const out = lines(r.stdout);
    const etcdVersion = impl === "etcd-ts" ? ETCD_VERSION : "3.";
    assert(out.some((l) => l.startsWith(`etcd Version: ${etcdVersion}`)), r.stdout);
    assert(out.some((l) => l.startsWith("Git SHA: ")), r.stdout);
    if (impl === "etcd-ts") {
      assertEquals(out, [
        `etcd-ts Version: ${VERSION}`,
        `etcd Version: ${ETCD_VERSION}`,
        "Git SHA: Not provided",
        `Deno Version: ${Deno.version.deno}`,
        `Deno OS/Arch: ${Deno.build.os}/${Deno.build.arch}`,
      ]);
    } else {
      assertMatch(r.stdout, /^Go OS\/Arch: \S+\/\S+$/m);
    }
  });

  Deno.test(`[${impl}] --help prints the usage and the flags and exits 0`, async () => {
    const r = await runServer(impl, ["--help"]);
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stderr, /^Usage:/);
    for (const flag of ["name", "data-dir", "listen-client-urls", "initial-cluster", "snapshot-count"]) {
      assertMatch(r.stdout, new RegExp(`^ {2}--${flag} `, "m"), `--help lacks --${flag}`);
    }
  });
}

// ---------------------------------------------------------------------------------------------------------
// Refused values: the exit code and the first line are etcd's

interface BadCase {
  what: string;
  args: string[];
  code: number;
  /** The first line of stderr, exactly (Go's flag package message). */
  first?: string;
  /** Text every implementation's stderr holds. */
  includes?: string;
  /** What etcd-ts's one-line message holds on top of etcd's words (the flag at fault). */
  etcdTsNames?: string;
}

const BAD_CASES: BadCase[] = [
  {
    what: "a malformed URL in --listen-client-urls",
    args: ["--listen-client-urls", "http//127.0.0.1:2379"],
    code: 2,
    first: 'invalid value "http//127.0.0.1:2379" for flag -listen-client-urls: ' +
      "URL scheme must be http, https, unix, or unixs: http//127.0.0.1:2379",
  },
  {
    what: "a URL with a path in --listen-client-urls",
    args: ["--listen-client-urls", "http://127.0.0.1:2379/v3"],
    code: 2,
    first: 'invalid value "http://127.0.0.1:2379/v3" for flag -listen-client-urls: ' +
      "URL must not contain a path: http://127.0.0.1:2379/v3",
  },
  {
    what: "an unknown --initial-cluster-state",
    args: ["--initial-cluster-state", "bogus"],
    code: 2,
    first: 'invalid value "bogus" for flag -initial-cluster-state: invalid value',
  },
  {
    what: "a non-numeric --snapshot-count",
    args: ["--snapshot-count", "abc"],
    code: 2,
    first: 'invalid value "abc" for flag -snapshot-count: parse error',
  },
  {
    what: "a negative --snapshot-count",
    args: ["--snapshot-count=-1"],
    code: 2,
    first: 'invalid value "-1" for flag -snapshot-count: parse error',
  },
  {
    what: "an unknown flag",
    args: ["--bogus-flag"],
    code: 2,
    first: "flag provided but not defined: -bogus-flag",
  },
  {
    what: "a flag without its value",
    args: ["--name"],
    code: 2,
    first: "flag needs an argument: -name",
  },
];

for (const impl of implementations()) {
  for (const c of BAD_CASES) {
    Deno.test(`[${impl}] ${c.what} exits ${c.code} naming the flag`, async () => {
      const r = await runServer(impl, c.args);
      assertEquals(r.code, c.code, r.stderr);
      assertEquals(r.stdout, "");
      assertEquals(r.stderr.split("\n")[0], c.first);
      // Go's flag package follows its message with the usage.
      assertMatch(r.stderr.split("\n").slice(1).join("\n"), /^Usage:/);
    });
  }

  Deno.test(`[${impl}] a name missing from --initial-cluster exits 1 with etcd's words`, async () => {
    await withTempDir(async (dir) => {
      const { args } = memberFlags("x", join(dir, "data"));
      const peer = `http://${HOST}:${freePort(HOST)}`;
      const r = await runServer(impl, [
        ...args,
        `--initial-cluster=y=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
      ]);
      assertEquals(r.code, 1, r.stderr);
      assertMatch(r.stderr, /couldn't find local name \\?"x\\?" in the initial cluster configuration/);
      if (impl === "etcd-ts") {
        // One JSON line that names the flag, and no data directory left behind.
        const entries = jsonLogLines(r.stderr);
        assertEquals(entries.length, 1, r.stderr);
        assertEquals(entries[0].msg, "failed to verify flags");
        assertEquals(
          entries[0].error,
          `couldn't find local name "x" in the initial cluster configuration (--initial-cluster)`,
        );
        assert(!await exists(join(dir, "data")), "a refused configuration created the data directory");
      }
    });
  });

  Deno.test(`[${impl}] a flag set both on the command line and as ETCD_* is refused`, async () => {
    // etcd 3.5 (pkg/flags SetFlagsFromEnv → verifyEnv) logs a fatal "conflicting environment variable is
    // shadowed by corresponding command-line flag" and exits 1; it does not let the flag win silently.
    await withTempDir(async (dir) => {
      const { args } = memberFlags("fromflag", join(dir, "data"));
      const r = await runServer(impl, args, { ETCD_NAME: "fromenv" });
      assertEquals(r.code, 1, r.stderr);
      assertMatch(r.stderr, /conflicting environment variable.*ETCD_NAME/);
      assertMatch(r.stderr, /shadowed by corresponding command-line flag/);
      assert(!await exists(join(dir, "data")), "the refused member created its data directory");
    });
  });

  Deno.test(`[${impl}] a bad value in an ETCD_* variable names the variable`, async () => {
    const r = await runServer(impl, [], { ETCD_SNAPSHOT_COUNT: "many" });
    assertEquals(r.code, 1, r.stderr);
    assertMatch(r.stderr, /invalid value \\?"many\\?" for ETCD_SNAPSHOT_COUNT: parse error/);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Flags etcd-ts accepts but does not implement yet

Deno.test("[etcd-ts] flags not implemented yet exit 1 with one line saying so", async (t) => {
  const cases: { args: string[]; env?: Record<string, string>; line: string }[] = [
    {
      args: ["--max-concurrent-streams", "100"],
      line: "etcd-ts: --max-concurrent-streams is not implemented yet",
    },
    {
      args: ["--socket-reuse-port", "--socket-reuse-address"],
      line: "etcd-ts: --socket-reuse-port, --socket-reuse-address are not implemented yet",
    },
    {
      args: [],
      env: { ETCD_ENABLE_PPROF: "true" },
      line: "etcd-ts: --enable-pprof is not implemented yet (set by ETCD_ENABLE_PPROF)",
    },
  ];
  for (const c of cases) {
    await t.step([...c.args, ...Object.keys(c.env ?? {})].join(" "), async () => {
      const r = await runServer("etcd-ts", c.args, c.env);
      assertEquals(r.code, 1, r.stderr);
      assertEquals(r.stdout, "");
      assertEquals(lines(r.stderr), [c.line]);
    });
  }
  await t.step("from a config file", async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, "etcd.yaml");
      await Deno.writeTextFile(file, "name: n1\nenable-pprof: true\n");
      const r = await runServer("etcd-ts", ["--config-file", file]);
      assertEquals(r.code, 1, r.stderr);
      assertEquals(lines(r.stderr), [
        `etcd-ts: --enable-pprof is not implemented yet (set by enable-pprof in ${file})`,
      ]);
    });
  });
});

Deno.test("[etcd-ts] a bad --auth-token stops the member in etcd's words before its data directory is made", async (t) => {
  for (
    const token of [
      "jwt",
      "jwt,sign-method=RS256",
      "jwt,sign-method=RS256,priv-key=/nonexistent.key",
      "bogus",
    ]
  ) {
    await t.step(token, async () => {
      await withTempDir(async (dir) => {
        const dataDir = join(dir, "member.etcd");
        const r = await runServer("etcd-ts", ["--data-dir", dataDir, "--auth-token", token]);
        assertEquals(r.code, 1, r.stderr);
        const last = JSON.parse(lines(r.stderr).at(-1)!);
        assertEquals(last.msg, "failed to start etcd");
        assert(/^(auth: invalid auth options|open \/nonexistent\.key: )/.test(last.error), last.error);
        assert(!(await exists(dataDir)), "nothing may be written");
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------------------
// Members started from ETCD_* variables, a config file, and no flags at all

for (const impl of implementations()) {
  Deno.test({
    name: `[${impl}] ETCD_* variables fill the flags the command line leaves out`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      await withTempDir(async (dir) => {
        const dataDir = join(dir, "from-env");
        const { args, client, clientPort } = memberFlags("unused", dataDir);
        // Peer settings from flags; name, data dir and client URLs from the environment.
        const peerFlags = args.filter((a) => /^--(listen-peer|initial-advertise-peer)-urls=/.test(a));
        const peer = peerFlags[0].split("=")[1];
        const m = await Member.start({
          impl,
          host: HOST,
          clientPort,
          dataDir,
          rawArgs: peerFlags,
          env: {
            ETCD_NAME: "envname",
            ETCD_DATA_DIR: dataDir,
            ETCD_LISTEN_CLIENT_URLS: client,
            ETCD_ADVERTISE_CLIENT_URLS: client,
            ETCD_INITIAL_CLUSTER: `envname=${peer}`,
          },
        });
        try {
          assertEquals(await memberNames(m.endpoint), ["envname"]);
          const list = await ctlOk(m.endpoint, ["member", "list"]);
          assert(list.includes(`, ${peer}, ${client}, `), list);
          assert(await exists(join(dataDir, "member", "wal")), "the WAL is not in ETCD_DATA_DIR");
        } finally {
          await m.destroy();
        }
      });
    },
  });

  Deno.test({
    name: `[${impl}] --config-file takes etcd's YAML and ignores the other flags and ETCD_* variables`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      await withTempDir(async (dir) => {
        const dataDir = join(dir, "from-file");
        const clientPort = freePort(HOST);
        const client = `http://${HOST}:${clientPort}`;
        const peer = `http://${HOST}:${freePort(HOST)}`;
        const file = join(dir, "etcd.conf.yml");
        await Deno.writeTextFile(
          file,
          [
            "# etcd's configuration file format",
            "name: filename",
            `data-dir: ${dataDir}`,
            `listen-client-urls: ${client}`,
            `advertise-client-urls: ${client}`,
            `listen-peer-urls: ${peer}`,
            `initial-advertise-peer-urls: ${peer}`,
            `initial-cluster: filename=${peer}`,
            "initial-cluster-state: new",
            "snapshot-count: 5000",
            "",
          ].join("\n"),
        );
        const ignoredDir = join(dir, "ignored");
        const m = await Member.start({
          impl,
          host: HOST,
          clientPort,
          dataDir,
          // Without the file, these would clash (flag and variable both set) and name another directory.
          rawArgs: ["--config-file", file, "--name", "flagname", "--data-dir", ignoredDir],
          env: { ETCD_NAME: "envname", ETCD_DATA_DIR: ignoredDir, ETCD_SNAPSHOT_COUNT: "many" },
        });
        try {
          assertEquals(await memberNames(m.endpoint), ["filename"]);
          assert(await exists(join(dataDir, "member", "wal")), "the WAL is not in the file's data-dir");
          assert(!await exists(ignoredDir), "a flag or variable overrode the config file");
        } finally {
          await m.destroy();
        }
      });
    },
  });

  Deno.test(`[${impl}] ETCD_CONFIG_FILE names the config file`, async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, "bad.yml");
      await Deno.writeTextFile(file, `name: n1\ndata-dir: ${join(dir, "d")}\ninitial-cluster-state: bogus\n`);
      const r = await runServer(impl, [], { ETCD_CONFIG_FILE: file });
      assertEquals(r.code, 1, r.stderr);
      assertMatch(r.stderr, /unexpected clusterState \\?"bogus\\?"/);
    });
  });

  Deno.test(`[${impl}] --log-outputs sends the JSON log lines to stdout or to a file`, async (t) => {
    for (const target of ["stdout", "file"] as const) {
      await t.step(target, async () => {
        await withTempDir(async (dir) => {
          // The client port is taken, so the member logs why it cannot start and exits.
          const busy = Deno.listen({ hostname: HOST, port: 0 });
          try {
            const port = (busy.addr as Deno.NetAddr).port;
            const { args } = memberFlags("default", join(dir, "data"));
            const client = `http://${HOST}:${port}`;
            const logFile = join(dir, "etcd.log");
            const r = await runServer(impl, [
              ...args,
              `--listen-client-urls=${client}`,
              `--advertise-client-urls=${client}`,
              "--logger=zap",
              `--log-outputs=${target === "stdout" ? "stdout" : logFile}`,
            ]);
            assertEquals(r.code, 1, r.stdout + r.stderr);
            assertEquals(r.stderr, "");
            let log = r.stdout;
            if (target === "file") {
              assertEquals(r.stdout, "");
              log = await Deno.readTextFile(logFile);
            }
            const failure = jsonLogLines(log).find((e) => e.level === "error" || e.level === "fatal");
            assert(failure, `no error logged:\n${log}`);
            assertMatch(String(failure.error), new RegExp(`${HOST.replaceAll(".", "\\.")}:${port}`));
            assertMatch(String(failure.error), /address already in use/);
          } finally {
            busy.close();
          }
        });
      });
    }
  });

  Deno.test(`[${impl}] a log file that cannot be opened is refused before the member starts`, async () => {
    await withTempDir(async (dir) => {
      const { args } = memberFlags("default", join(dir, "data"));
      const logFile = join(dir, "no", "such", "dir", "etcd.log");
      const r = await runServer(impl, [...args, "--logger=zap", `--log-outputs=${logFile}`]);
      assertEquals(r.code, 1, r.stdout + r.stderr);
      const etcdWords = `open sink "${logFile}": open ${logFile}: no such file or directory`;
      if (impl === "etcd-ts") {
        const entries = jsonLogLines(r.stderr);
        assertEquals(entries.length, 1, r.stderr);
        assertEquals(entries[0].msg, "failed to verify flags");
        assertEquals(entries[0].error, `${etcdWords} (--log-outputs)`);
      } else {
        assert(r.stderr.includes(etcdWords), r.stderr);
      }
      assert(!await exists(join(dir, "data")), "the refused member created its data directory");
    });
  });
}

/** True if something answers on, or holds, 127.0.0.1:port. */
async function portTaken(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    // nothing listening; make sure it can be bound
  }
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return false;
  } catch {
    return true;
  }
}

const DEFAULT_PORTS_TAKEN = (await portTaken(2379)) || (await portTaken(2380));
if (DEFAULT_PORTS_TAKEN) {
  console.warn("cli_e2e_test: 127.0.0.1:2379 or :2380 is in use; the no-flags start test is skipped");
}

/** Starts a server with no flags at all, in `cwd`. */
function spawnIn(impl: Impl, cwd: string): Deno.ChildProcess {
  const [cmd, args] = impl === "etcd" ? ["etcd", []] : [Deno.execPath(), [
    "run",
    "--allow-all",
    "--quiet",
    "--config",
    join(ROOT, "deno.json"),
    join(ROOT, "main.ts"),
  ]];
  return new Deno.Command(cmd, { args, cwd, stdin: "null", stdout: "piped", stderr: "piped" }).spawn();
}

async function waitHealthy(endpoint: string, child: Deno.ChildProcess, timeoutMs: number): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !exited) {
    const r = await etcdctl(endpoint, ["endpoint", "health", "--dial-timeout=1s", "--command-timeout=2s"]);
    if (r.code === 0) return;
    await sleep(100);
  }
  throw new Error(exited ? "the server exited before it was ready" : `not ready after ${timeoutMs} ms`);
}

for (const impl of implementations()) {
  Deno.test({
    name: `[${impl}] with no flags: member "default", data in ./default.etcd, clients on localhost:2379`,
    ignore: !HAVE_ETCDCTL || DEFAULT_PORTS_TAKEN,
    fn: async () => {
      await withTempDir(async (cwd) => {
        const child = spawnIn(impl, cwd);
        const stderr = new Response(child.stderr).text();
        const stdout = new Response(child.stdout).text();
        try {
          await waitHealthy("127.0.0.1:2379", child, 20_000);
          const list = await ctlOk("127.0.0.1:2379", ["member", "list"]);
          assertEquals(lines(list).length, 1, list);
          assertMatch(list, /, started, default, http:\/\/localhost:2380, http:\/\/localhost:2379, false/);
          assert(await exists(join(cwd, "default.etcd", "member", "wal")), "no ./default.etcd/member/wal");
          await ctlOk("127.0.0.1:2379", ["put", "k", "v"]);
        } finally {
          child.kill("SIGTERM");
        }
        const status = await child.status;
        const log = await stderr;
        await stdout;
        if (impl === "etcd-ts") {
          // Graceful shutdown on SIGTERM, and every log line is etcd's zap JSON.
          assertEquals(status.code, 0, log);
          const entries = jsonLogLines(log);
          assert(entries.some((e) => e.msg === "received signal; shutting down"), log);
          assert(
            entries.some((e) => e.level === "warn" && String(e.msg).includes("data-dir")),
            `no warning about the default data dir:\n${log}`,
          );
        }
      });
    },
  });
}
