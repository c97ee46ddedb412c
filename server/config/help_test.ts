import { assert, assertEquals, assertMatch } from "../../tests/assert.ts";
import { ETCD_35_FLAGS, ETCD_36_DISCOVERY_FLAGS, exit, parse } from "./test_util.ts";

/** Flags of etcd-ts's own, beyond etcd's: the dashboard, busy polling. */
const ETCD_TS_FLAGS = ["enable-ui", "busy-poll-duration"];

Deno.test("config: --version prints etcd-ts's release, then etcd's lines with Deno's in place of Go's", () => {
  for (const flag of ["--version", "-version", "--version=true"]) {
    const r = exit([flag, "--name", "x"]);
    assertEquals(r.code, 0);
    assertEquals(r.stderr, "");
    assertEquals(
      r.stdout,
      "etcd-ts Version: 9.9.9\netcd Version: 3.5.99\nGit SHA: Not provided\n" +
        `Deno Version: ${Deno.version.deno}\nDeno OS/Arch: ${Deno.build.os}/${Deno.build.arch}\n`,
    );
  }
  assertEquals(parse(["--version=false"]).kind, "run");
});

Deno.test("config: --help/-h print the usage on stderr and the flags by group on stdout", () => {
  for (const flag of ["-h", "--help", "-help", "--h=1"]) {
    const r = exit(["--name", "x", flag]);
    assertEquals(r.code, 0);
    assert(r.stderr.startsWith("Usage:\n"));
    assertMatch(r.stderr, /etcd-ts --config-file/);
    for (const group of ["Member:", "Clustering:", "Security:", "Logging:", "Experimental:", "Unsafe"]) {
      assert(r.stdout.includes(`\n${group}`), `help lacks ${group}`);
    }
  }
  const help = exit(["--help"]).stdout;
  assertMatch(help, /^ {2}--name 'default'\n {6}\S/m);
  assertMatch(help, /^ {2}--experimental-enable-v2v3 ''\n.*\[not implemented yet\]$/m);
  assertMatch(help, /^ {2}--enable-v2 'false'\n.*[^\]]$/m);
  assertMatch(help, /^ {2}--cert-file ''\n.*[^\]]$/m);
  assert(!/^ {2}--name 'default'\n.*not implemented/m.test(help));
  // Every flag in the help is accepted, and every etcd flag (but the special ones) is in the help.
  const listed = [...help.matchAll(/^ {2}--([a-z0-9.-]+) /gm)].map((m) => m[1]);
  const hidden = new Set(["version", "config-file", "cluster-active-size", "cluster-remove-delay"]);
  for (const name of ETCD_35_FLAGS) {
    if (hidden.has(name) || name.startsWith("test.") || /^(config|force|v|vv|snapshot)$/.test(name)) continue;
    if (/^(max-result-buffer|max-retry-attempts|peer-heartbeat-interval|peer-election-timeout)$/.test(name)) {
      continue;
    }
    if (/^(retry-interval|cluster-sync-interval)$/.test(name)) continue;
    assert(listed.includes(name), `help lacks --${name}`);
  }
  for (const name of listed) {
    assert(
      ETCD_35_FLAGS.includes(name) || ETCD_36_DISCOVERY_FLAGS.includes(name) || ETCD_TS_FLAGS.includes(name),
      `help lists unknown --${name}`,
    );
  }
});
