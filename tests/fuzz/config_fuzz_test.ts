/**
 * Fuzzing the configuration: command lines built from etcd's flags with random and mutated values,
 * `ETCD_*` variables, and damaged YAML config files. Whatever the input, the parser ends with a
 * configuration or an exit (a status and etcd's message); it never throws.
 */
import { assert } from "../assert.ts";
import { Prng } from "../sim/prng.ts";
import { FLAGS } from "../../server/config/flags.ts";
import { parse } from "../../server/config/test_util.ts";
import { fuzz, log } from "./fuzz.ts";

const te = new TextEncoder();
const td = new TextDecoder();

const VALUES = [
  "",
  "0",
  "-1",
  "true",
  "false",
  "1s",
  "10h",
  "http://127.0.0.1:2379",
  "https://[::1]:0",
  "unix://x",
  "a=http://127.0.0.1:2380,b=http://127.0.0.1:2381",
  "new",
  "existing",
  "*",
  "jwt,pub-key=/missing/k",
  '{"maxsize": 1}',
  "9".repeat(40),
  "\u0000",
  "TLS1.3",
];

/** A command line of etcd's flags, as bytes (NUL between arguments) for the mutator. */
function commandLine(rng: Prng): Uint8Array {
  const args: string[] = [];
  for (let i = 0, n = 1 + rng.int(6); i < n; i++) {
    const f = rng.pick(FLAGS);
    const v = rng.pick(VALUES);
    if (rng.chance(0.5)) args.push(`--${f.name}=${v}`);
    else args.push(`--${f.name}`, v);
  }
  return te.encode(args.join("\0"));
}

const YAML_SAMPLE = [
  "name: infra1",
  "data-dir: /var/lib/etcd",
  "listen-client-urls: http://127.0.0.1:2379",
  "advertise-client-urls: http://127.0.0.1:2379",
  "initial-cluster: infra1=http://127.0.0.1:2380",
  "initial-cluster-state: new",
  "snapshot-count: 10000",
  "client-transport-security:",
  "  cert-file: /c.pem",
  "  client-cert-auth: true",
  "log-outputs: [stderr]",
].join("\n");

Deno.test("fuzz: the command line, ETCD_* variables and the config file end in a config or an exit, never a throw", async () => {
  const rng = new Prng(1);
  const lines = Array.from({ length: 40 }, () => commandLine(rng));
  log(
    await fuzz({
      name: "command line",
      corpus: lines,
      run(input) {
        const args = td.decode(input).split("\0");
        const r = parse(args);
        assert(r.kind === "run" || r.kind === "exit");
        if (r.kind === "exit") assert(r.code === 0 || r.code === 1 || r.code === 2, `exit ${r.code}`);
      },
      expected: () => false,
    }),
  );
  log(
    await fuzz({
      name: "ETCD_* variables",
      corpus: lines,
      run(input) {
        const env: Record<string, string> = {};
        const parts = td.decode(input).split("\0");
        for (const p of parts) {
          const m = /^--([^=]+)=(.*)$/s.exec(p);
          if (m) env[`ETCD_${m[1].replaceAll("-", "_").toUpperCase()}`] = m[2];
        }
        const r = parse([], env);
        assert(r.kind === "run" || r.kind === "exit");
      },
      expected: () => false,
    }),
  );
  log(
    await fuzz({
      name: "config file",
      corpus: [te.encode(YAML_SAMPLE)],
      run(input) {
        const r = parse(["--config-file", "c.yml"], {}, { "c.yml": td.decode(input) });
        assert(r.kind === "run" || r.kind === "exit");
      },
      expected: () => false,
    }),
  );
});
