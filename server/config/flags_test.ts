import { assert, assertEquals } from "../../tests/assert.ts";
import { defaultValue, loadFlag, storeFlag } from "./flag_kinds.ts";
import { FLAG_BY_FILE_KEY, FLAG_BY_NAME, FLAGS } from "./flags.ts";
import { defaultConfig } from "./types.ts";
import { defaultText, ETCD_35_FLAGS, parse, plain } from "./test_util.ts";

Deno.test("config: every flag etcd 3.5 defines is accepted at its default", () => {
  for (const name of ETCD_35_FLAGS) {
    if (name === "version" || name === "config-file") continue;
    const args = [`--${name}=${defaultText(name)}`];
    // An explicit --listen-client-urls needs --advertise-client-urls, as in etcd.
    if (name === "listen-client-urls") args.push("--advertise-client-urls=http://localhost:2379");
    const r = parse(args);
    assert(r.kind === "run", `--${name}: ${r.kind === "exit" ? r.stderr : ""}`);
  }
});

Deno.test("config table: names and config-file keys are unique", () => {
  const names = FLAGS.map((f) => f.name);
  assertEquals(new Set(names).size, names.length);
  const keys = FLAGS.filter((f) => f.file !== null).map((f) => f.file ?? f.name);
  assertEquals(new Set(keys).size, keys.length);
  assertEquals(FLAG_BY_FILE_KEY.size, keys.length);
  // Only the config file's client-transport-security.allowed-cn has no command-line flag.
  assertEquals(FLAGS.filter((f) => f.cli === false).map((f) => f.name), ["client-cert-allowed-cn"]);
  assertEquals(FLAG_BY_NAME.size, FLAGS.length - 1);
});

Deno.test("config table: every default is a valid value of its kind, enums list their choices", () => {
  for (const f of FLAGS) {
    defaultValue(f);
    assertEquals(f.kind === "enum", f.choices !== undefined, f.name);
    if (f.choices) assert(f.choices.includes(f.def), f.name);
  }
});

Deno.test("config table: a field's default in the table is defaultConfig's", () => {
  const defaults = defaultConfig();
  for (const f of FLAGS) {
    if (f.field === undefined) continue;
    const c = defaultConfig();
    // data-dir's default depends on the name ("${name}.etcd"); storing it must still be a plain text.
    if (f.name === "data-dir") continue;
    storeFlag(c, f, defaultValue(f));
    assertEquals(loadFlag(c, f), loadFlag(defaults, f), f.name);
    assertEquals(plain(c), plain(defaults), f.name);
  }
});

Deno.test("config table: every field of a Config but the initial cluster is filled by exactly one flag", () => {
  const fields = FLAGS.flatMap((f) => (f.field === undefined ? [] : [f.field as string]));
  assertEquals(new Set(fields).size, fields.length);
  const c = defaultConfig();
  const expected: string[] = [];
  for (const [k, v] of Object.entries(c)) {
    if (k === "initialCluster") continue;
    if (k === "clientTls" || k === "peerTls") expected.push(...Object.keys(v).map((t) => `${k}.${t}`));
    else expected.push(k);
  }
  assertEquals([...fields].sort(), expected.sort());
});

Deno.test("config table: deprecated flags are among etcd's and shown in the help", () => {
  const deprecated = FLAGS.filter((f) => f.deprecated).map((f) => f.name);
  assertEquals(deprecated.length, 8);
  for (const name of deprecated) {
    assert(ETCD_35_FLAGS.includes(name), name);
    assert(FLAG_BY_NAME.get(name)!.group !== "hidden", name);
  }
});
