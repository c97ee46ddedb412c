/**
 * What ships: `deno task start` from a clean copy of the repository fetches only the server's packages
 * (deno.json's imports and deno.lock; the test-only ones are in test_imports.json and deno.test.lock, which
 * `deno task test` uses);
 * the sample config (contrib/etcd-ts.conf.yml) starts an etcd-ts member, and the real etcd too (it is
 * etcd's format); the systemd unit (contrib/systemd/etcd-ts.service) passes `systemd-analyze verify`.
 *
 * The package test needs the npm registry (the copy starts with an empty DENO_DIR): it is skipped, and
 * says so, when the registry cannot be reached. There is no offline proof: the question is what Deno
 * downloads into an empty cache.
 *
 * @module
 */
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { assert, assertEquals } from "./assert.ts";
import { ctlOk, freePorts, HAVE_ETCDCTL, implementations, Member } from "./helpers.ts";
import { FLAGS } from "./run_all.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SAMPLE = `${ROOT}contrib/etcd-ts.conf.yml`;
const UNIT = `${ROOT}contrib/systemd/etcd-ts.service`;

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

async function registryReachable(): Promise<boolean> {
  try {
    const r = await fetch("https://registry.npmjs.org/yaml", {
      method: "HEAD",
      signal: AbortSignal.timeout(5000),
    });
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  }
}
const HAVE_REGISTRY = await registryReachable();
const HAVE_GIT = exists(`${ROOT}.git`) && (() => {
  try {
    return new Deno.Command("git", { args: ["--version"], stdout: "null" }).outputSync().success;
  } catch {
    return false;
  }
})();
const HAVE_SYSTEMD_ANALYZE = exists("/usr/bin/systemd-analyze") || exists("/bin/systemd-analyze");

/** The npm packages (name@version) a lockfile resolves. */
function lockedPackages(lockPath: string): Set<string> {
  const lock = JSON.parse(Deno.readTextFileSync(lockPath)) as { npm?: Record<string, unknown> };
  return new Set(Object.keys(lock.npm ?? {}).map((k) => k.replace(/_.*$/, "")));
}

/** The `imports` of a deno.json or import map file. */
function importMap(path: string): Record<string, string> {
  return (JSON.parse(Deno.readTextFileSync(path)) as { imports: Record<string, string> }).imports;
}

/** name@version of every package in a DENO_DIR's npm cache. */
function cachedPackages(denoDir: string): Set<string> {
  const out = new Set<string>();
  const reg = `${denoDir}/npm/registry.npmjs.org`;
  if (!exists(reg)) return out;
  const versions = (dir: string, name: string) => {
    for (const v of Deno.readDirSync(dir)) if (v.isDirectory) out.add(`${name}@${v.name}`);
  };
  for (const e of Deno.readDirSync(reg)) {
    if (!e.isDirectory) continue;
    if (e.name.startsWith("@")) {
      for (const s of Deno.readDirSync(`${reg}/${e.name}`)) {
        if (s.isDirectory) versions(`${reg}/${e.name}/${s.name}`, `${e.name}/${s.name}`);
      }
    } else versions(`${reg}/${e.name}`, e.name);
  }
  return out;
}

/** name@version of every package installed in a node_modules directory (Deno's `.deno` layout). */
function nodeModulesPackages(nodeModules: string): Set<string> {
  const out = new Set<string>();
  if (!exists(`${nodeModules}/.deno`)) return out;
  for (const e of Deno.readDirSync(`${nodeModules}/.deno`)) {
    if (e.isDirectory && e.name.includes("@", 1)) out.add(e.name.replace("+", "/").replace(/_.*$/, ""));
  }
  return out;
}

/** Copies the repository's files as a clone would have them (tracked, plus new files not ignored). */
async function copyRepository(dest: string): Promise<void> {
  const out = await new Deno.Command("git", {
    args: ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    cwd: ROOT,
    stdout: "piped",
  }).output();
  assert(out.success, "git ls-files failed");
  for (const rel of new TextDecoder().decode(out.stdout).split("\0")) {
    if (rel === "" || !exists(`${ROOT}${rel}`)) continue; // listed but deleted in the work tree
    const target = `${dest}/${rel}`;
    await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(`${ROOT}${rel}`, target);
  }
}

Deno.test({
  name: HAVE_REGISTRY && HAVE_GIT
    ? "deno task start and deno run main.ts, from a clean copy with an empty DENO_DIR, fetch no test-only package"
    : "deno task start fetches no test-only package (skipped: needs git and the npm registry)",
  ignore: !HAVE_REGISTRY || !HAVE_GIT,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "etcd_ts_ship_" });
    try {
      await copyRepository(`${dir}/repo`);
      assert(!exists(`${dir}/repo/node_modules`));
      // test-only: named only in the test import map, or pinned only in the test lock
      const nameOf = (p: string) => p.replace(/^npm:/, "").replace(/(.)@.*$/, "$1");
      const serverMap = importMap(`${dir}/repo/deno.json`);
      const testOnlyNames = new Set(
        Object.entries(importMap(`${dir}/repo/test_imports.json`))
          .filter(([name]) => serverMap[name] === undefined)
          .map(([, spec]) => nameOf(spec)),
      );
      const serverPackages = lockedPackages(`${dir}/repo/deno.lock`);
      for (const p of lockedPackages(`${dir}/repo/deno.test.lock`)) {
        if (!serverPackages.has(p)) testOnlyNames.add(nameOf(p));
      }
      assert(testOnlyNames.has("playwright-core"), `test-only: ${[...testOnlyNames]}`);
      for (
        const [what, args] of [["deno task start", ["task", "start"]], ["deno run main.ts", ["run", "-A"]]]
      ) {
        await t.step(`${what} --version`, async () => {
          const denoDir = `${dir}/deno_dir_${args[0]}`;
          await Deno.remove(`${dir}/repo/node_modules`, { recursive: true }).catch(() => {});
          const out = await new Deno.Command(Deno.execPath(), {
            args: [...args, ...(args[0] === "run" ? ["main.ts"] : []), "--version"],
            cwd: `${dir}/repo`,
            env: { DENO_DIR: denoDir, NO_COLOR: "1" },
            stdout: "piped",
            stderr: "piped",
          }).output();
          const text = new TextDecoder().decode(out.stdout);
          assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
          assert(text.startsWith("etcd-ts Version: "), text);
          const cached = cachedPackages(denoDir);
          for (const p of nodeModulesPackages(`${dir}/repo/node_modules`)) cached.add(p);
          const fetchedTestOnly = [...cached].filter((p) => testOnlyNames.has(nameOf(p)));
          assertEquals(fetchedTestOnly, [], `fetched test-only packages: ${fetchedTestOnly}`);
          // and what the server does import was fetched (the check above is not vacuous)
          for (const p of ["yaml@", "etcd3@", "jose@", "bcryptjs@", "@peculiar/x509@"]) {
            assert([...cached].some((c) => c.startsWith(p)), `${p} not fetched: ${[...cached]}`);
          }
          const relocked = [...lockedPackages(`${dir}/repo/deno.lock`)]
            .filter((p) => testOnlyNames.has(nameOf(p)));
          assertEquals(relocked, [], "deno.lock gained test-only packages");
        });
      }
      await t.step("the check fails when deno.json names a test-only package (sabotage)", async () => {
        const config = JSON.parse(await Deno.readTextFile(`${dir}/repo/deno.json`));
        config.imports = importMap(`${dir}/repo/test_imports.json`);
        await Deno.writeTextFile(`${dir}/repo/deno.json`, JSON.stringify(config));
        await Deno.remove(`${dir}/repo/node_modules`, { recursive: true }).catch(() => {});
        const denoDir = `${dir}/deno_dir_sabotage`;
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["task", "start", "--version"],
          cwd: `${dir}/repo`,
          env: { DENO_DIR: denoDir, NO_COLOR: "1" },
          stdout: "null",
          stderr: "piped",
        }).output();
        assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
        const cached = cachedPackages(denoDir);
        assert([...cached].some((p) => nameOf(p) === "playwright-core"), [...cached].join(" "));
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("the test import map is the server's plus the test-only packages", () => {
  const server =
    (JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)) as { imports: Record<string, string> })
      .imports;
  const tests = (JSON.parse(Deno.readTextFileSync(`${ROOT}test_imports.json`)) as {
    imports: Record<string, string>;
  }).imports;
  for (const [name, spec] of Object.entries(server)) assertEquals(tests[name], spec, name);
  assertEquals(server["playwright-core"], undefined);
  assert(tests["playwright-core"]?.startsWith("npm:playwright-core@"));
  const task =
    (JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)) as { tasks: Record<string, string> }).tasks
      .test;
  assertEquals(task, "deno run --allow-all tests/run_all.ts");
  assert(FLAGS.includes("--import-map=test_imports.json") && FLAGS.includes("--lock=deno.test.lock"));
});

Deno.test("the sample config and the unit agree on paths", () => {
  const cfg = parseYaml(Deno.readTextFileSync(SAMPLE)) as Record<string, unknown>;
  const unit = Deno.readTextFileSync(UNIT);
  assertEquals(cfg["data-dir"], "/var/lib/etcd-ts");
  assert(unit.includes("\nStateDirectory=etcd-ts\n"), "the unit creates /var/lib/etcd-ts");
  assert(/\nExecStart=\S+ --config-file \/etc\/etcd-ts\/etcd-ts\.conf\.yml\n/.test(unit), "ExecStart");
  assert(/\nType=(simple|exec)\n/.test(unit), "etcd-ts does not sd_notify: Type must not be notify");
  assertEquals(cfg["initial-cluster"], `${cfg.name}=${cfg["initial-advertise-peer-urls"]}`);
});

/** The sample with its data dir and addresses moved to `dataDir` and `host`'s free ports. */
function rewrittenSample(dataDir: string, host: string): { yaml: string; clientPort: number } {
  const cfg = parseYaml(Deno.readTextFileSync(SAMPLE)) as Record<string, unknown>;
  const [client, peer] = freePorts(host, 2);
  cfg["data-dir"] = dataDir;
  cfg["listen-client-urls"] = cfg["advertise-client-urls"] = `http://${host}:${client}`;
  cfg["listen-peer-urls"] = cfg["initial-advertise-peer-urls"] = `http://${host}:${peer}`;
  cfg["initial-cluster"] = `${cfg.name}=http://${host}:${peer}`;
  return { yaml: stringifyYaml(cfg), clientPort: client };
}

for (const [impl, host] of [["etcd-ts", "127.0.2.71"], ["etcd", "127.0.2.72"]] as const) {
  const available = implementations().includes(impl);
  Deno.test({
    name: available
      ? `the sample config starts ${impl}, and etcdctl writes to it`
      : `the sample config starts ${impl} (skipped: ${impl} is not installed or not selected)`,
    ignore: !available || !HAVE_ETCDCTL,
    fn: async () => {
      const dir = await Deno.makeTempDir({ prefix: "etcd_ts_conf_" });
      const { yaml, clientPort } = rewrittenSample(`${dir}/data`, host);
      await Deno.writeTextFile(`${dir}/etcd.conf.yml`, yaml);
      const m = await Member.start({
        impl,
        host,
        clientPort,
        dataDir: `${dir}/data`,
        rawArgs: ["--config-file", `${dir}/etcd.conf.yml`],
      });
      try {
        assertEquals((await ctlOk(m.endpoint, ["put", "shipped", "yes"])).trim(), "OK");
        assertEquals((await ctlOk(m.endpoint, ["get", "shipped", "--print-value-only"])).trim(), "yes");
        // the member took its name from the file
        assert((await ctlOk(m.endpoint, ["member", "list"])).includes(", etcd-ts-1, "));
        assert(exists(`${dir}/data/member`), "data-dir from the file");
      } finally {
        await m.destroy();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    },
  });
}

Deno.test({
  name: HAVE_SYSTEMD_ANALYZE
    ? "systemd-analyze verify passes on the unit (ExecStart pointed at an executable that exists)"
    : "systemd-analyze verify on the unit (skipped: systemd-analyze is not installed)",
  ignore: !HAVE_SYSTEMD_ANALYZE,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "etcd_ts_unit_" });
    const verify = async (unit: string) => {
      const path = `${dir}/etcd-ts.service`;
      await Deno.writeTextFile(path, unit);
      const out = await new Deno.Command("systemd-analyze", {
        args: ["verify", path],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
    };
    try {
      const exe = `${dir}/etcd-ts`;
      await Deno.writeTextFile(exe, "#!/bin/sh\nexit 0\n");
      await Deno.chmod(exe, 0o755);
      const unit = Deno.readTextFileSync(UNIT);
      assert(unit.includes("ExecStart=/usr/local/bin/etcd-ts "), "the unit runs /usr/local/bin/etcd-ts");
      await t.step("the unit verifies without a warning", async () => {
        const r = await verify(unit.replace("ExecStart=/usr/local/bin/etcd-ts ", `ExecStart=${exe} `));
        assertEquals(r, { code: 0, text: "" });
      });
      await t.step("a missing executable fails verification (the check can fail)", async () => {
        const r = await verify(unit.replace("ExecStart=/usr/local/bin/etcd-ts ", `ExecStart=${dir}/absent `));
        assert(r.code !== 0, r.text);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
