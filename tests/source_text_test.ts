/**
 * The server's own source files hold no character above U+00FF. V8 keeps the text of every loaded
 * module in memory (with Deno's inline source map, which carries the TypeScript source once more), one
 * byte per character when all of them fit in Latin-1 and two bytes otherwise: a single arrow in a comment
 * doubles a module's share of the heap (the generated codec alone went from 934 KB to 467 KB).
 */
import { assertEquals } from "./assert.ts";

const ROOT = new URL("../", import.meta.url);

/** The files a running member loads: everything under these, except tests and benchmarks. */
const PRODUCT = ["main.ts", "mod.ts", "server", "storage", "raft", "discovery"];

async function* sources(path: string): AsyncGenerator<string> {
  const info = await Deno.stat(new URL(path, ROOT));
  if (info.isFile) {
    if (path.endsWith(".ts") && !/(_test|_bench|test_util)\.ts$/.test(path)) yield path;
    return;
  }
  for await (const e of Deno.readDir(new URL(path, ROOT))) yield* sources(`${path}/${e.name}`);
}

Deno.test("source text: the server's modules are Latin-1, so V8 holds them at one byte per character", async () => {
  const wide: string[] = [];
  let files = 0;
  for (const top of PRODUCT) {
    for await (const path of sources(top)) {
      files++;
      const lines = (await Deno.readTextFile(new URL(path, ROOT))).split("\n");
      lines.forEach((line, i) => {
        const c = [...line].find((ch) => ch.codePointAt(0)! > 0xff);
        if (c) {
          wide.push(`${path}:${i + 1}: U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`);
        }
      });
    }
  }
  assertEquals(files > 100, true, `only ${files} source files found`);
  assertEquals(wide, [], "write these characters in ASCII (->, ..., a \\u escape in a string)");
});
