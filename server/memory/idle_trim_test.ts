import { assert, assertEquals } from "../../tests/assert.ts";
import { createLogger } from "../logger.ts";
import type { Clock } from "../clock.ts";
import { glibcMallocTrim, IdleTrim } from "./idle_trim.ts";

/** A clock that moves only when told; its interval is run by hand (`check`). */
function manualClock(): Clock & { advance(ms: number): void } {
  let t = 0;
  return {
    now: () => t,
    advance: (ms) => t += ms,
    setInterval: () => 1,
    clearInterval: () => {},
    setTimeout: () => 1,
    clearTimeout: () => {},
  };
}

Deno.test("idle trim: trims once per quiet spell, and only after the member has been quiet long enough", () => {
  const clock = manualClock();
  let activity = 0;
  let trims = 0;
  const idle = new IdleTrim({
    trim: () => (trims++, true),
    activity: () => activity,
    clock,
    logger: createLogger({ level: "error" }),
    quietMs: 5000,
  });
  const after = (ms: number) => {
    clock.advance(ms);
    idle.check();
    return trims;
  };
  assertEquals(after(4999), 0, "not quiet long enough");
  assertEquals(after(1), 1, "quiet for 5 s since it started");
  assertEquals(after(1000), 1, "once per quiet spell");
  assertEquals(after(60_000), 1);
  activity++;
  assertEquals(after(1000), 1, "busy again");
  for (let i = 0; i < 10; i++) {
    activity++;
    assertEquals(after(1000), 1, "a steady load is never trimmed");
  }
  assertEquals(after(4999), 1);
  assertEquals(after(1), 2, "the next quiet spell");
  assertEquals(idle.trims, 2);
});

Deno.test({
  name: "idle trim: glibc's malloc_trim gives freed heap pages back to the system",
  ignore: Deno.build.os !== "linux",
  fn() {
    const trim = glibcMallocTrim();
    assert(trim !== undefined, "malloc_trim is callable here");
    const libc = Deno.dlopen("libc.so.6", {
      malloc: { parameters: ["usize"], result: "pointer" },
      free: { parameters: ["pointer"], result: "void" },
    });
    const rss = () => Number(Deno.readTextFileSync("/proc/self/statm").split(" ")[1]) * 4096;
    try {
      trim(); // whatever this process freed before
      // 20 MB in 1000-byte blocks, every page written; then all freed but every 50th block, which keeps
      // glibc from giving the pages back by itself (freed memory below memory in use stays in the heap)
      const blocks: Deno.PointerObject[] = [];
      for (let i = 0; i < 20_000; i++) {
        const p = libc.symbols.malloc(1000n)!;
        new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, 1000)).fill(1);
        blocks.push(p);
      }
      for (let i = 0; i < blocks.length; i++) if (i % 50 !== 0) libc.symbols.free(blocks[i]);
      const before = rss();
      assert(trim(), "there was freed memory to give back");
      const released = before - rss();
      assert(released > 10 * 1024 * 1024, `RSS fell by ${released} bytes`);
      for (let i = 0; i < blocks.length; i += 50) libc.symbols.free(blocks[i]);
    } finally {
      libc.close();
    }
  },
});
