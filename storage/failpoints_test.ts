import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "../tests/assert.ts";
import {
  type FailpointEffects,
  FailpointSpecError,
  formatFailpoints,
  parseFailpoints,
  withFailpoints,
} from "./failpoints.ts";
import { denoFs, type FileSystem } from "./fs.ts";
import { syncDir } from "./fs_util.ts";
import { isNoSpace, Wal, WalFailedError } from "./wal.ts";
import { Snapshotter } from "./snapshot.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "failpoints_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Effects that record instead of sleeping, and a crash that throws instead of killing the process. */
class Crashed extends Error {}
function recording(): FailpointEffects & { slept: number[]; blocked: number[]; crashes: number } {
  const r = {
    slept: [] as number[],
    blocked: [] as number[],
    crashes: 0,
    crash: (): never => {
      r.crashes++;
      throw new Crashed("crashed");
    },
    sleep: (ms: number) => {
      r.slept.push(ms);
      return Promise.resolve();
    },
    block: (ms: number) => {
      r.blocked.push(ms);
    },
  };
  return r;
}

function fsWith(spec: string, effects: FailpointEffects = {}): FileSystem {
  return withFailpoints(denoFs, parseFailpoints(spec), effects);
}

const META = { memberId: 7n, clusterId: 9n };
const entry = (index: number) => ({ term: 1, index, type: 0, data: new TextEncoder().encode(`e${index}`) });

Deno.test("parseFailpoints reads points, actions, counts and starting calls", () => {
  const points = parseFailpoints(
    " wal.fsync=error(EIO)@3; snapshot.write=2*error(ENOSPC) ;wal.write=torn@70;dir.fsync=delay(200);" +
      "rename=1*crash@2;",
  );
  assertEquals(points, [
    { name: "wal.fsync", action: { kind: "error", code: "EIO" }, from: 3, times: Infinity },
    { name: "snapshot.write", action: { kind: "error", code: "ENOSPC" }, from: 1, times: 2 },
    { name: "wal.write", action: { kind: "torn" }, from: 70, times: Infinity },
    { name: "dir.fsync", action: { kind: "delay", ms: 200 }, from: 1, times: Infinity },
    { name: "rename", action: { kind: "crash" }, from: 2, times: 1 },
  ]);
  assertEquals(
    formatFailpoints(points),
    "wal.fsync=error(EIO)@3;snapshot.write=2*error(ENOSPC);wal.write=torn@70;dir.fsync=delay(200);" +
      "rename=1*crash@2",
  );
  assertEquals(parseFailpoints(formatFailpoints(points)), points);
  assertEquals(parseFailpoints(""), []);
  assertEquals(parseFailpoints(" ; "), []);
});

Deno.test("parseFailpoints refuses what it does not know, in one line naming the part", () => {
  const cases: [string, string][] = [
    ["wal.fsnc=error(EIO)", 'unknown failpoint "wal.fsnc" (known: wal.write, wal.fsync,'],
    ["wal.fsync", '"wal.fsync" is not <point>=<action>'],
    ["wal.fsync=explode", 'wal.fsync: unknown action "explode"'],
    ["wal.fsync=error(EBUSY)", 'wal.fsync: unknown error code "EBUSY" (known: EIO, ENOSPC, EROFS)'],
    ["wal.fsync=error", 'wal.fsync: unknown error code ""'],
    ["wal.fsync=delay(soon)", "wal.fsync: delay needs a whole number of milliseconds"],
    ["wal.fsync=delay", "wal.fsync: delay needs a whole number of milliseconds"],
    ["wal.fsync=torn", "wal.fsync: torn applies to write points only"],
    ["wal.write=crash(now)", "wal.write: crash takes no argument"],
    ["wal.write=error(EIO)@0", "wal.write: @<nth> must be at least 1"],
    ["wal.write=0*error(EIO)", "wal.write: the count must be at least 1"],
    ["wal.write=error(EIO)@x", 'wal.write: malformed term "error(EIO)@x"'],
    ["wal.write=error(EIO);wal.write=torn", "failpoint wal.write is set twice"],
  ];
  for (const [spec, detail] of cases) {
    const err = assertThrows(() => parseFailpoints(spec), FailpointSpecError, detail);
    assert(
      err.message.startsWith(`invalid value ${JSON.stringify(spec)} for ETCD_TS_FAILPOINTS: `),
      err.message,
    );
    assert(!err.message.includes("\n"), err.message);
  }
});

Deno.test("without failpoints the file system is the inner one, and unconcerned files are not wrapped", async () => {
  assert(withFailpoints(denoFs, []) === denoFs);
  await withDir(async (dir) => {
    const fs = fsWith("snapshot.fsync=error(EIO)");
    const wal = await fs.open(join(dir, "0000000000000000-0000000000000000.wal"), {
      write: true,
      create: true,
    });
    const other = fs.openSync(join(dir, "mvcc_history"), { write: true, create: true });
    const d = await fs.open(dir, { read: true });
    const snap = await fs.open(join(dir, "0000000000000001-0000000000000002.snap.tmp"), {
      write: true,
      create: true,
    });
    try {
      assert(wal instanceof Deno.FsFile, "a WAL handle is wrapped though no WAL point is set");
      assert(other instanceof Deno.FsFile);
      assert(d instanceof Deno.FsFile, "a directory handle is wrapped though dir.fsync is not set");
      assert(!(snap instanceof Deno.FsFile), "the snapshot handle is not wrapped");
    } finally {
      for (const h of [wal, other, d, snap]) h.close();
    }
  });
});

Deno.test("error(EIO)@3 fails the third fsync and every later one; 1* only the first time", async () => {
  await withDir(async (dir) => {
    for (
      const [spec, expected] of [
        ["wal.fsync=error(EIO)@3", [true, true, false, false, false]],
        ["wal.fsync=1*error(EIO)@3", [true, true, false, true, true]],
      ] as const
    ) {
      const fs = fsWith(spec);
      const f = await fs.open(join(dir, "0000000000000000-0000000000000000.wal"), {
        read: true,
        write: true,
        create: true,
      });
      const outcomes: boolean[] = [];
      try {
        for (let i = 0; i < 5; i++) {
          try {
            await (i % 2 === 0 ? f.syncData() : f.sync());
            outcomes.push(true);
          } catch (err) {
            assertEquals((err as { code?: string }).code, "EIO");
            assert(String(err).includes("Input/output error (os error 5)"), String(err));
            assert(String(err).includes("(failpoint wal.fsync)"), String(err));
            outcomes.push(false);
          }
        }
      } finally {
        f.close();
      }
      assertEquals(outcomes, [...expected], spec);
    }
  });
});

Deno.test("a WAL whose fsync fails refuses the write; reopened, it holds what was synced before", async () => {
  await withDir(async (dir) => {
    const walDir = join(dir, "wal");
    // one fsync when the log is created, then one per sync(): the fourth sync() is the fifth fsync
    const fs = fsWith("wal.fsync=error(EIO)@5");
    const wal = await Wal.create(walDir, META, { fs, segmentBytes: 64 * 1024 });
    for (let i = 1; i <= 3; i++) {
      wal.append([entry(i)], { term: 1, vote: 0n, commit: i });
      await wal.sync();
    }
    wal.append([entry(4)], { term: 1, vote: 0n, commit: 4 });
    const err = await assertRejects(() => wal.sync(), WalFailedError, "Input/output error");
    assert(!isNoSpace(err), "an I/O error is not a full disk");
    await assertRejects(() => wal.sync(), WalFailedError);
    await wal.close();
    const reopened = await Wal.open(walDir, { index: 0, term: 0 });
    try {
      const indexes = reopened.entries.map((e) => e.index);
      assert(indexes.length === 3 || indexes.length === 4, `entries ${indexes}`);
      assertEquals(indexes.slice(0, 3), [1, 2, 3]);
    } finally {
      await reopened.wal.close();
    }
  });
});

Deno.test("error(ENOSPC) on snapshot writes is a full disk; the next save succeeds and nothing is left", async () => {
  await withDir(async (dir) => {
    const snapDir = join(dir, "snap");
    const snapshotter = new Snapshotter(snapDir, { fs: fsWith("snapshot.write=1*error(ENOSPC)@2") });
    const data = new Uint8Array(5000).map((_, i) => i & 0xff);
    const err = await assertRejects(() => snapshotter.save({ index: 10, term: 2, data }));
    assert(isNoSpace(err), `not seen as a full disk: ${err}`);
    assertEquals((err as { code?: string }).code, "ENOSPC");
    const left = [];
    for await (const e of Deno.readDir(snapDir)) left.push(e.name);
    assertEquals(left, [], "a failed save leaves no file");
    await snapshotter.save({ index: 10, term: 2, data });
    assertEquals((await new Snapshotter(snapDir).load(10, 2)).data, data);
  });
});

Deno.test("delay(ms) waits before fsyncs and blocks synchronous writes; other calls are not delayed", async () => {
  await withDir(async (dir) => {
    const fx = recording();
    const fs = fsWith("wal.fsync=delay(200);wal.write=2*delay(30)", fx);
    const f = await fs.open(join(dir, "0000000000000000-0000000000000000.wal"), {
      read: true,
      write: true,
      create: true,
    });
    try {
      assertEquals(f.writeSync(new Uint8Array(10)), 10);
      assertEquals(await f.write(new Uint8Array(10)), 10);
      assertEquals(await f.write(new Uint8Array(10)), 10);
      await f.syncData();
      await f.sync();
      await f.truncate(5);
    } finally {
      f.close();
    }
    assertEquals(fx.blocked, [30]);
    assertEquals(fx.slept, [30, 200, 200]);
    assertEquals((await Deno.stat(join(dir, "0000000000000000-0000000000000000.wal"))).size, 5);
  });
});

Deno.test("torn keeps the write up to its last sector boundary, then crashes", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "0000000000000000-0000000000000000.wal");
    const fx = recording();
    const fs = fsWith("wal.write=torn@2", fx);
    const f = await fs.open(path, { read: true, write: true, create: true });
    const bytes = new Uint8Array(1400).fill(7);
    try {
      f.writeSync(new Uint8Array(100).fill(1)); // the first call is not torn
      // from offset 100, 1400 bytes cross the boundaries at 512 and 1024 (and end at 1500)
      assertThrows(() => f.writeSync(bytes), Crashed);
    } finally {
      f.close();
    }
    assertEquals(fx.crashes, 1);
    const b = await Deno.readFile(path);
    assertEquals(b.length, 1024, "the write is cut at the last sector boundary inside it");
    assert(b.subarray(100).every((x) => x === 7));

    // asynchronously, and a write that crosses no boundary leaves nothing
    const g = await fsWith("snapshot.write=torn@2", fx).open(join(dir, "a.snap.tmp"), {
      write: true,
      create: true,
    });
    try {
      await g.write(new Uint8Array(600).fill(1));
      await assertRejects(() => g.write(new Uint8Array(1000).fill(2)), Crashed);
    } finally {
      g.close();
    }
    assertEquals((await Deno.readFile(join(dir, "a.snap.tmp"))).length, 1536);
    const h = await fsWith("snapshot.write=torn", fx).open(join(dir, "b.snap.tmp"), {
      write: true,
      create: true,
    });
    try {
      await assertRejects(() => h.write(new Uint8Array(400)), Crashed);
    } finally {
      h.close();
    }
    assertEquals((await Deno.readFile(join(dir, "b.snap.tmp"))).length, 0);
    assertEquals(fx.crashes, 3);
  });
});

Deno.test("dir.fsync and rename fail or crash before the call takes effect", async () => {
  await withDir(async (dir) => {
    const fx = recording();
    await assertRejects(
      () => syncDir(dir, fsWith("dir.fsync=error(EIO)", fx)),
      Error,
      "(failpoint dir.fsync)",
    );
    await Deno.writeFile(join(dir, "a.snap.tmp"), new Uint8Array(3));
    const fs = fsWith("rename=1*error(EROFS)@2", fx);
    await fs.rename(join(dir, "a.snap.tmp"), join(dir, "a.snap"));
    const err = await assertRejects(() => fs.rename(join(dir, "a.snap"), join(dir, "b.snap")));
    assertEquals((err as { code?: string }).code, "EROFS");
    await Deno.stat(join(dir, "a.snap")); // still there: nothing was renamed
    await fs.rename(join(dir, "a.snap"), join(dir, "b.snap"));
    await assertRejects(
      () => fsWith("rename=crash", fx).rename(join(dir, "b.snap"), join(dir, "c.snap")),
      Crashed,
    );
    await Deno.stat(join(dir, "b.snap"));
    assertEquals(fx.crashes, 1);
  });
});

Deno.test("torn kills the process with SIGKILL, the torn part written", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "0000000000000000-0000000000000000.wal");
    const script = `
      import { parseFailpoints, withFailpoints } from ${
      JSON.stringify(new URL("./failpoints.ts", import.meta.url).href)
    };
      import { denoFs } from ${JSON.stringify(new URL("./fs.ts", import.meta.url).href)};
      const fs = withFailpoints(denoFs, parseFailpoints("wal.write=torn"));
      const f = await fs.open(${JSON.stringify(path)}, { write: true, create: true });
      f.writeSync(new Uint8Array(2000).fill(9));
      console.log("still alive");
    `;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.signal, "SIGKILL", new TextDecoder().decode(out.stderr));
    assertEquals(new TextDecoder().decode(out.stdout), "");
    assertEquals((await Deno.readFile(path)).length, 1536);
  });
});
