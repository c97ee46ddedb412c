/**
 * The Raft log's storage keeps V8's optimized code: code that reads the log through an object V8 knows
 * (as the member's hot paths do) stays optimized when the log is compacted, its tail replaced, or a snapshot
 * applied. V8 treats a field that has kept its first value as a constant; replacing the field throws away
 * every piece of code that relied on it at once, which in a running member happened at the log's first
 * compaction, a few seconds into a load (docs/benchmarks.md).
 *
 * V8's optimization status is only visible with `--allow-natives-syntax`, so the check runs in a child
 * process. A control class that does replace its field shows that the check can see the loss.
 */
import { assert, assertEquals } from "./assert.ts";

const STORAGE_URL = new URL("../raft/storage.ts", import.meta.url).href;

/**
 * One case of the probe, at the top level of the script: V8 specializes a function that is the only
 * closure of its code to the objects it reaches, which is where a field's first value counts as constant.
 * `target` and `change` are expressions; `read` is an expression of `t`.
 */
function probeCase(name: string, target: string, read: string, change: string): string {
  return `
const holder_${name} = { t: ${target} };
function reader_${name}() { const t = holder_${name}.t; return ${read}; }
%PrepareFunctionForOptimization(reader_${name});
for (let i = 0; i < 10; i++) reader_${name}();
%OptimizeFunctionOnNextCall(reader_${name});
reader_${name}();
result.${name} = { before: %GetOptimizationStatus(reader_${name}) };
{ const t = holder_${name}.t; ${change}; }
result.${name}.after = %GetOptimizationStatus(reader_${name});
`;
}

/** JavaScript run by the child: prints, per case, V8's optimization status before and after the change. */
const PROBE = `
const { MemoryStorage } = await import(${JSON.stringify(STORAGE_URL)});
const entry = (term, index) => ({ term, index, type: 0, data: new Uint8Array(0) });
function filled() {
  const s = new MemoryStorage();
  const ents = [];
  for (let i = 1; i <= 100; i++) ents.push(entry(1, i));
  s.append(ents);
  return s;
}
class Replacing {
  list = [{ v: 1 }, { v: 2 }];
  first() { return this.list[0].v + this.list.length; }
  replace() { this.list = [{ v: 3 }]; }
}
const result = {};
${probeCase("control", "new Replacing()", "t.first()", "t.replace()")}
${probeCase("compact", "filled()", "t.lastIndex() + t.firstIndex() + t.term(60)", "t.compact(50)")}
${
  probeCase(
    "replaceTail",
    "filled()",
    "t.lastIndex() + t.firstIndex() + t.term(60)",
    "t.append([entry(2, 90)])",
  )
}
${
  probeCase(
    "applySnapshot",
    "filled()",
    "t.lastIndex() + t.firstIndex()",
    "t.applySnapshot({ metadata: { index: 200, term: 3, confState: undefined }, data: new Uint8Array(0) })",
  )
}
console.log(JSON.stringify(result));
`;

Deno.test("raft storage: compacting, replacing the tail and applying a snapshot keep V8's optimized code", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const probe = `${dir}/probe.js`;
    await Deno.writeTextFile(probe, PROBE);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--v8-flags=--allow-natives-syntax", probe],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert(out.success, `the probe failed: ${stderr}`);
    const r: Record<string, { before: number; after: number }> = JSON.parse(
      new TextDecoder().decode(out.stdout),
    );
    // the status's bits differ between V8 versions: what counts is whether it changed
    assert(
      r.control.after !== r.control.before,
      `the probe cannot see code thrown away by a replaced field (status ${r.control.before} both times)`,
    );
    for (const name of ["compact", "replaceTail", "applySnapshot"]) {
      assertEquals(r[name].after, r[name].before, `${name}: optimized code thrown away`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
