import { assert, assertEquals } from "../../tests/assert.ts";
import {
  ARENA_MAX,
  ARENA_VARIABLE,
  mallocEnvironment,
  mallocSettingsWanted,
  USER_MALLOC_VARIABLES,
} from "./malloc_settings.ts";

Deno.test("malloc settings: made unless the user set glibc's allocator up in the environment", () => {
  assert(mallocSettingsWanted(() => undefined));
  assert(mallocSettingsWanted((name) => name === "MALLOC_ARENA_MAX" ? "2" : undefined));
  for (const variable of USER_MALLOC_VARIABLES) {
    assert(!mallocSettingsWanted((name) => name === variable ? "" : undefined), variable);
  }
});

Deno.test("malloc settings: one heap for all threads at start, unless the user chose the number of heaps", () => {
  assertEquals(mallocEnvironment(() => undefined), { [ARENA_VARIABLE]: ARENA_MAX });
  assertEquals(ARENA_VARIABLE, "MALLOC_ARENA_MAX");
  assertEquals(mallocEnvironment((name) => name === "MALLOC_ARENA_MAX" ? "8" : undefined), {});
  assertEquals(
    mallocEnvironment((name) => name === "GLIBC_TUNABLES" ? "glibc.malloc.arena_max=2" : undefined),
    {},
  );
  // the thresholds' variables are another matter
  assertEquals(mallocEnvironment((name) => name === "MALLOC_MMAP_THRESHOLD_" ? "65536" : undefined), {
    [ARENA_VARIABLE]: ARENA_MAX,
  });
});

/**
 * A fresh process that (with "apply") applies the settings, then has glibc free a mapped block of 8 MiB
 * and allocate one of 2 MiB; prints whether the settings were applied and whether the 2 MiB block got a
 * mapping of its own (mallinfo2's bytes in mapped blocks grew by its size).
 */
const PROBE = `
import { applyMallocSettings } from ${JSON.stringify(new URL("./malloc_settings.ts", import.meta.url).href)};
const applied = Deno.args[0] === "apply" ? applyMallocSettings() : false;
const libc = Deno.dlopen("libc.so.6", {
  malloc: { parameters: ["usize"], result: "pointer" },
  free: { parameters: ["pointer"], result: "void" },
  mallinfo2: { parameters: [], result: { struct: Array(10).fill("usize") } },
});
const mappedBytes = () => new BigUint64Array(libc.symbols.mallinfo2().buffer)[4];
libc.symbols.free(libc.symbols.malloc(8n << 20n));
const before = mappedBytes();
const block = libc.symbols.malloc(2n << 20n);
const mapped = mappedBytes() - before >= 2n << 20n;
libc.symbols.free(block);
console.log(JSON.stringify({ applied, mapped }));
`;

async function probe(
  apply: boolean,
  env: Record<string, string>,
): Promise<{ applied: boolean; mapped: boolean }> {
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(file, PROBE);
    // only what Deno needs from this environment, so that no allocator variable of the runner's leaks in
    const keep = ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"].filter((n) => Deno.env.get(n) !== undefined);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-lock", file, apply ? "apply" : "leave"],
      clearEnv: true,
      env: { ...Object.fromEntries(keep.map((n) => [n, Deno.env.get(n)!])), NO_COLOR: "1", ...env },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert(out.success, new TextDecoder().decode(out.stderr));
    return JSON.parse(text.trim());
  } finally {
    await Deno.remove(file);
  }
}

Deno.test({
  name:
    "malloc settings: a freed large block no longer moves glibc's mmap threshold; the user's own value wins",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    // glibc as it comes: freeing the mapped 8 MiB block raised the threshold, so 2 MiB come from the heap
    assertEquals(await probe(false, {}), { applied: false, mapped: false });
    // with the settings the threshold stays at 1 MiB
    assertEquals(await probe(true, {}), { applied: true, mapped: true });
    // a threshold the user set is left as it is
    assertEquals(await probe(true, { MALLOC_MMAP_THRESHOLD_: String(16 << 20) }), {
      applied: false,
      mapped: false,
    });
  },
});
