/**
 * Damaged data directories at process level (etcd-ts only: the real etcd's files are another format).
 * A member is started, written to with etcdctl and killed; then its WAL segment or snapshot files are cut,
 * zeroed or flipped the way a crash or a bad disk would, and the member is started again:
 *
 * - a torn tail (the file cut inside its last record, or the last write's sectors never written) is
 *   repaired with a warning, and every write before the torn one is still there;
 * - a damaged record in the middle of the WAL stops the member, naming the file and the byte offset;
 * - with small `--snapshot-count`, a restart rebuilds from the newest snapshot plus the WAL; a damaged
 *   newest snapshot stops the member naming the file; without that file, an older snapshot and the WAL
 *   cover the same data.
 *
 * The tests read the segment's record framing (documented in `storage/wal.ts`) to find where the live
 * data ends: segments are preallocated, so the file size says nothing about it.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { ctlOk, freePort, HAVE_ETCDCTL, Member, runServer } from "./helpers.ts";

/** Record framing of storage/wal.ts: 16-byte header (u32 length, u8 kind, ...), payload padded to 8. */
const FRAME = 16;
const KIND_ENTRIES = 2;
const SECTOR = 512;

interface WalRecord {
  offset: number;
  kind: number;
  length: number;
}

/** The records of a segment, up to the zero-filled (preallocated) rest of the file. */
function records(bytes: Uint8Array): WalRecord[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: WalRecord[] = [];
  let off = 0;
  while (off + FRAME <= bytes.length) {
    const length = v.getUint32(off, true);
    const kind = bytes[off + 4];
    if (length === 0 && kind === 0) break;
    out.push({ offset: off, kind, length });
    off += FRAME + ((length + 7) & ~7);
  }
  return out;
}

function contains(haystack: Uint8Array, needle: string): boolean {
  const n = new TextEncoder().encode(needle);
  outer: for (let i = 0; i + n.length <= haystack.length; i++) {
    for (let k = 0; k < n.length; k++) if (haystack[i + k] !== n[k]) continue outer;
    return true;
  }
  return false;
}

function payload(bytes: Uint8Array, r: WalRecord): Uint8Array {
  return bytes.subarray(r.offset + FRAME, r.offset + FRAME + r.length);
}

/** Files of `dir` ending in `suffix`, sorted by name (WAL segments and snapshots sort by position). */
async function filesIn(dir: string, suffix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile && e.name.endsWith(suffix)) names.push(e.name);
  return names.sort().map((n) => join(dir, n));
}

/** Flags for a one-member cluster on free loopback ports (reused as they are for every restart). */
function memberArgs(dataDir: string, extra: string[]): { args: string[]; clientPort: number } {
  const clientPort = freePort();
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${freePort()}`;
  return {
    clientPort,
    args: [
      "--name=wal",
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=wal=${peer}`,
      ...extra,
    ],
  };
}

/** A member on a fresh data dir, `keys` written one put (one WAL write) each, then killed with -9. */
async function writtenAndKilled(
  keys: [string, string][],
  extra: string[],
): Promise<{ dataDir: string; args: string[]; clientPort: number }> {
  const dataDir = await Deno.makeTempDir({ prefix: "etcd-ts-wal-e2e-" });
  const { args, clientPort } = memberArgs(dataDir, extra);
  const m = await Member.start({ impl: "etcd-ts", rawArgs: args, clientPort, dataDir });
  try {
    for (const [k, v] of keys) await ctlOk(m.endpoint, ["put", k, v]);
  } finally {
    await m.stop("SIGKILL");
  }
  return { dataDir, args, clientPort };
}

/** All keys under `prefix` with their values. */
async function readAll(endpoint: string, prefix: string): Promise<Map<string, string>> {
  const out = await ctlOk(endpoint, ["get", prefix, "--prefix"]);
  const lines = out.split("\n");
  const kv = new Map<string, string>();
  for (let i = 0; i + 1 < lines.length; i += 2) kv.set(lines[i], lines[i + 1]);
  return kv;
}

function logEntries(m: Member): Record<string, unknown>[] {
  return m.logs.join("").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
}

function keyValues(n: number, prefix: string, value: (i: number) => string): [string, string][] {
  return Array.from({ length: n }, (_, i) => [`${prefix}${String(i).padStart(3, "0")}`, value(i)]);
}

/** Restarts, checks the torn-tail warning and that exactly the keys before the last one survived. */
async function expectRepaired(
  w: { dataDir: string; args: string[]; clientPort: number },
  keys: [string, string][],
  prefix: string,
): Promise<void> {
  const m = await Member.start({
    impl: "etcd-ts",
    rawArgs: w.args,
    clientPort: w.clientPort,
    dataDir: w.dataDir,
  });
  try {
    const warning = logEntries(m).find((e) => e.msg === "repaired the torn tail of the WAL");
    assert(warning, `no torn-tail warning:\n${m.logs.join("")}`);
    assertEquals(warning.level, "warn");
    assertEquals(warning["wal-dir"], join(w.dataDir, "member", "wal"));
    const expected = new Map(keys.slice(0, -1));
    assertEquals(await readAll(m.endpoint, prefix), expected, "the writes before the torn one");
    // The repaired log takes new writes, and the next restart finds nothing to repair.
    await ctlOk(m.endpoint, ["put", `${prefix}after`, "repair"]);
    expected.set(`${prefix}after`, "repair");
  } finally {
    await m.stop("SIGKILL");
  }
  const again = await m.restart();
  try {
    assert(
      !logEntries(again).some((e) => e.msg === "repaired the torn tail of the WAL"),
      `a second repair:\n${again.logs.join("")}`,
    );
    const expected = new Map([...keys.slice(0, -1), [`${prefix}after`, "repair"]]);
    assertEquals(await readAll(again.endpoint, prefix), expected);
  } finally {
    await again.destroy();
  }
}

/**
 * The last WAL segment, its bytes and records, and its last entries record, checked to hold `lastKey`
 * (the write's hard state and end record come after it).
 */
async function lastSegment(
  dataDir: string,
  lastKey: string,
): Promise<{ path: string; bytes: Uint8Array; recs: WalRecord[]; last: WalRecord }> {
  const segments = await filesIn(join(dataDir, "member", "wal"), ".wal");
  assert(segments.length >= 1, "no WAL segment");
  const path = segments[segments.length - 1];
  const bytes = await Deno.readFile(path);
  const recs = records(bytes);
  const last = recs.findLast((r) => r.kind === KIND_ENTRIES);
  assert(last, "no entries record in the last WAL segment");
  assert(contains(payload(bytes, last), lastKey), `the last entries record does not hold ${lastKey}`);
  return { path, bytes, recs, last };
}

Deno.test({
  name: "[etcd-ts] a WAL cut inside its last record is repaired on restart, keeping earlier writes",
  ignore: !HAVE_ETCDCTL,
  fn: async () => {
    const keys = keyValues(12, "torn/", (i) => `value-${i}`);
    const w = await writtenAndKilled(keys, ["--snapshot-count=100000"]);
    try {
      const { path, last } = await lastSegment(w.dataDir, keys[keys.length - 1][0]);
      // The process died while writing its last write: the file ends halfway into its entries.
      await Deno.truncate(path, last.offset + FRAME + Math.floor(last.length / 2));
      await expectRepaired(w, keys, "torn/");
    } finally {
      await Deno.remove(w.dataDir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "[etcd-ts] a last write whose later sectors never reached the disk is repaired on restart",
  ignore: !HAVE_ETCDCTL,
  fn: async () => {
    // A large last value makes its record span several 512-byte sectors.
    const keys = keyValues(8, "sector/", (i) => (i === 7 ? "x".repeat(3000) : `value-${i}`));
    const w = await writtenAndKilled(keys, ["--snapshot-count=100000"]);
    try {
      const { path, bytes, last } = await lastSegment(w.dataDir, keys[keys.length - 1][0]);
      const end = last.offset + FRAME + last.length;
      // The first sector boundary inside the record's payload: from there on, the write never landed.
      const from = Math.ceil((last.offset + FRAME + 1) / SECTOR) * SECTOR;
      assert(from < end, "the last record does not cross a sector boundary");
      const file = await Deno.open(path, { write: true });
      try {
        await file.seek(from, Deno.SeekMode.Start);
        await file.write(new Uint8Array(end - from));
      } finally {
        file.close();
      }
      assertEquals((await Deno.stat(path)).size, bytes.length, "the segment keeps its preallocated size");
      await expectRepaired(w, keys, "sector/");
    } finally {
      await Deno.remove(w.dataDir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "[etcd-ts] a damaged record in the middle of the WAL stops the restart, naming file and offset",
  ignore: !HAVE_ETCDCTL,
  fn: async () => {
    const keys = keyValues(12, "mid/", (i) => `value-${i}`);
    const w = await writtenAndKilled(keys, ["--snapshot-count=100000"]);
    try {
      const { path, bytes, recs } = await lastSegment(w.dataDir, keys[keys.length - 1][0]);
      const victim = recs.find((r) => r.kind === KIND_ENTRIES && contains(payload(bytes, r), keys[5][0]));
      assert(victim, `no WAL record holds ${keys[5][0]}`);
      const at = victim.offset + FRAME + Math.floor(victim.length / 2);
      const file = await Deno.open(path, { write: true });
      try {
        await file.seek(at, Deno.SeekMode.Start);
        await file.write(new Uint8Array([bytes[at] ^ 0x5a]));
      } finally {
        file.close();
      }
      const r = await runServer("etcd-ts", w.args);
      assertEquals(r.code, 1, r.stderr);
      const failure = r.stderr.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))
        .find((e) => e.level === "error" || e.level === "fatal");
      assert(failure, `no error logged:\n${r.stderr}`);
      assertEquals(failure.msg, "failed to start etcd");
      assertMatch(
        String(failure.error),
        new RegExp(`${reEscape(path)}: corrupt record at byte offset ${victim.offset}\\b`),
      );
      // The damaged log is left as it was, for inspection or repair by hand.
      assertEquals(await Deno.readFile(path).then((b) => b[at]), bytes[at] ^ 0x5a);
    } finally {
      await Deno.remove(w.dataDir, { recursive: true }).catch(() => {});
    }
  },
});

/** The index in a snapshot file's name (`<term>-<index>.snap`, 16 hex digits each). */
function snapIndexOf(path: string): number {
  return parseInt(path.slice(-21, -5), 16);
}

function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test({
  name: "[etcd-ts] restart from snapshot + WAL; a damaged newest snapshot is set aside for an older one",
  ignore: !HAVE_ETCDCTL,
  fn: async () => {
    const keys = keyValues(45, "snap/", (i) => `value-${i}`);
    const w = await writtenAndKilled(keys, ["--snapshot-count=10"]);
    try {
      const snapDir = join(w.dataDir, "member", "snap");
      const snaps = await filesIn(snapDir, ".snap");
      assert(snaps.length >= 2, `expected several snapshots, found ${snaps.length}`);
      const start = () =>
        Member.start({ impl: "etcd-ts", rawArgs: w.args, clientPort: w.clientPort, dataDir: w.dataDir });

      await (async () => {
        const m = await start();
        try {
          const restarting = logEntries(m).find((e) => e.msg === "restarting member");
          assert(restarting, m.logs.join(""));
          const newestIndex = snapIndexOf(snaps[snaps.length - 1]);
          assertEquals(restarting["snapshot-index"], newestIndex, "did not restart from the newest snapshot");
          assertEquals(await readAll(m.endpoint, "snap/"), new Map(keys));
        } finally {
          await m.stop("SIGKILL");
        }
      })();

      // Damage the newest snapshot: it is set aside, with a warning naming it, and the previous snapshot
      // and the WAL behind it give the same data.
      const all = await filesIn(snapDir, ".snap");
      const newest = all.at(-1)!;
      const b = await Deno.readFile(newest);
      b[Math.floor(b.length / 2)] ^= 0xff;
      await Deno.writeFile(newest, b);
      const m = await start();
      try {
        const warned = logEntries(m).find((e) =>
          e.msg === "snapshot file is damaged; set aside, starting from an older one"
        );
        assertEquals(warned?.path, newest, m.logs.join(""));
        assertMatch(String(warned?.error), new RegExp(`${reEscape(newest)} is corrupt: checksum mismatch`));
        assertEquals(await Deno.readFile(`${newest}.broken`), b, "the damaged file is kept as .broken");
        const restarting = logEntries(m).find((e) => e.msg === "restarting member");
        const olderIndex = snapIndexOf(all.at(-2)!);
        assertEquals(restarting?.["snapshot-index"], olderIndex, "did not restart from the older snapshot");
        assertEquals(await readAll(m.endpoint, "snap/"), new Map(keys));
      } finally {
        await m.destroy();
      }
    } finally {
      await Deno.remove(w.dataDir, { recursive: true }).catch(() => {});
    }
  },
});
