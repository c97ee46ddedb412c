/**
 * The Maintenance service end to end with the real etcdctl, against etcd-ts and the real etcd alike:
 * the NOSPACE alarm (raised when a write would pass --quota-backend-bytes, refusing puts, txns with puts
 * and lease grants on every member until disarmed), defragmentation shrinking the reported database
 * size, Status's alarm errors, and `endpoint hashkv` agreeing across members, also after a restart.
 *
 * Loopback addresses 127.0.1.160-169 are this file's.
 */
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { ctlOk, etcdctl, HAVE_ETCDCTL, type Impl, implementations, Member, waitUntil } from "./helpers.ts";
import { clientFor, Cluster, parseCtlJson } from "./cluster.ts";

const NO_SPACE = "etcdserver: mvcc: database space exceeded";
const QUOTA = 2 * 1024 * 1024;
/** 100 KB values: about twenty fill the quota (etcdctl takes the value as one argument). */
const VALUE = "x".repeat(100_000);
const HOSTS: Record<Impl, { single: string; cluster: string[] }> = {
  "etcd-ts": { single: "127.0.1.160", cluster: ["127.0.1.161", "127.0.1.162", "127.0.1.163"] },
  etcd: { single: "127.0.1.165", cluster: ["127.0.1.166", "127.0.1.167", "127.0.1.168"] },
};

interface StatusJson {
  memberId: bigint;
  revision: number;
  dbSize: number;
  dbSizeInUse: number;
  raftAppliedIndex: number;
  errors: string[];
}

async function statuses(endpoints: string, cluster = false): Promise<StatusJson[]> {
  const out = await ctlOk(endpoints, ["endpoint", "status", "-w", "json", ...(cluster ? ["--cluster"] : [])]);
  const rows = parseCtlJson(out) as { Status: Record<string, unknown> }[];
  return rows.map(({ Status: s }) => {
    const h = s.header as Record<string, unknown>;
    return {
      memberId: BigInt(h.member_id as string),
      revision: Number(h.revision ?? 0),
      dbSize: Number(s.dbSize ?? 0),
      dbSizeInUse: Number(s.dbSizeInUse ?? 0),
      raftAppliedIndex: Number(s.raftAppliedIndex ?? 0),
      errors: (s.errors ?? []) as string[],
    };
  });
}

/** `endpoint hashkv` of every member: [hash, compact revision, revision] each. */
async function hashes(endpoints: string, rev = 0): Promise<[number, number, number][]> {
  const out = await ctlOk(endpoints, ["endpoint", "hashkv", "--cluster", "-w", "json", `--rev=${rev}`]);
  const rows = parseCtlJson(out) as { HashKV: Record<string, unknown> }[];
  return rows.map(({ HashKV: h }) => [
    Number(h.hash ?? 0),
    Number(h.compact_revision ?? 0),
    Number((h.header as Record<string, unknown>).revision ?? 0),
  ]);
}

/** Maintenance.Hash of one member (etcdctl has no command for it). */
async function wholeHash(endpoint: string): Promise<string> {
  const client = clientFor([endpoint]);
  try {
    return (await client.maintenance.hash()).hash;
  } finally {
    client.close();
  }
}

/** Waits until every member reports the same hash at the same revision; returns it. */
async function agreedHash(endpoints: string, members: number): Promise<[number, number, number]> {
  let last: [number, number, number][] = [];
  await waitUntil(
    async () => {
      last = await hashes(endpoints);
      return last.length === members && last.every((h) => JSON.stringify(h) === JSON.stringify(last[0]));
    },
    15_000,
    () => `members disagree: ${JSON.stringify(last)}`,
    200,
  );
  return last[0];
}

/** Puts big values through `endpoint` until one is refused; returns etcdctl's error output. */
async function fillUntilRefused(endpoint: string): Promise<string> {
  for (let i = 0; i < 60; i++) {
    const r = await etcdctl(endpoint, ["put", `fill/${i}`, VALUE]);
    if (r.code !== 0) return r.stderr;
  }
  throw new Error(`60 puts of ${VALUE.length} bytes fitted in a quota of ${QUOTA} bytes`);
}

function assertIncludes(text: string, part: string): void {
  assert(text.includes(part), `expected ${JSON.stringify(part)} in:\n${text}`);
}

/** The lines of etcdctl's output, sorted (etcd lists alarms in no fixed order). */
function sortedLines(out: string): string[] {
  return out.split("\n").filter((l) => l !== "").sort();
}

async function alarmList(endpoint: string): Promise<string[]> {
  return sortedLines(await ctlOk(endpoint, ["alarm", "list"]));
}

/**
 * The alarms every member lists in Status, sorted, once they agree and stayed the same over two polls
 * (alarms raised at apply time arrive one by one).
 */
async function settledAlarms(endpoints: string): Promise<string[]> {
  let seen = "";
  let last: string[] = [];
  await waitUntil(
    async () => {
      const errs = (await statuses(endpoints, true)).map((s) => JSON.stringify(s.errors.toSorted()));
      const same = errs.length === 3 && errs[0] !== "[]" && errs.every((e) => e === errs[0]);
      const settled = same && errs[0] === seen;
      seen = same ? errs[0] : "";
      last = JSON.parse(errs[0]);
      return settled;
    },
    10_000,
    () => `members list different alarms: ${last}`,
    500,
  );
  return last;
}

const ALARM_LINE = /^memberID:(\d+) alarm:NOSPACE $/;

for (const impl of implementations()) {
  Deno.test({
    name: `[${impl}] NOSPACE: quota refuses, alarm caps writes, compact + defrag + disarm recover`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      const m = await Member.start({
        impl,
        host: HOSTS[impl].single,
        args: ["--quota-backend-bytes", String(QUOTA)],
      });
      const ep = m.endpoint;
      try {
        assertEquals(await ctlOk(ep, ["alarm", "list"]), "");
        const [fresh] = await statuses(ep);
        assertEquals(fresh.errors, []);
        assert(fresh.raftAppliedIndex > 0);

        // small keys whose deletes, which the alarm allows, make writes later on
        const ticks = [...Array(40).keys()].map((i) => `put tick/${i} v\n`).join("");
        await ctlOk(ep, ["txn"], `\n${ticks}\n\n`);
        assertIncludes(await fillUntilRefused(ep), `Error: ${NO_SPACE}`);
        // the member that refused raised the alarm for itself
        const listed = (await ctlOk(ep, ["alarm", "list"])).split("\n").filter((l) => l !== "");
        assertEquals(listed.length, 1, listed.join("\n"));
        assertMatch(listed[0], ALARM_LINE);
        assertEquals(BigInt(ALARM_LINE.exec(listed[0])![1]), fresh.memberId);
        const full = (await statuses(ep))[0];
        assertEquals(full.errors, [listed[0]]);

        // writes are refused; reads and deletes work
        assertIncludes((await etcdctl(ep, ["put", "small", "v"])).stderr, NO_SPACE);
        assertIncludes((await etcdctl(ep, ["lease", "grant", "60"])).stderr, NO_SPACE);
        assertIncludes((await etcdctl(ep, ["txn"], { stdin: "\nput t v\n\n\n" })).stderr, NO_SPACE);
        assertEquals(await ctlOk(ep, ["get", "fill/0", "--keys-only"]), "fill/0\n\n");
        assertEquals(await ctlOk(ep, ["del", "fill/0"]), "1\n");

        // compacting past the deletes of what filled the quota frees space in use, but the database keeps
        // its size until defragmented
        assert(Number(await ctlOk(ep, ["del", "--prefix", "fill/"])) > 0);
        const rev = (await statuses(ep))[0].revision;
        assertEquals(await ctlOk(ep, ["compact", String(rev)]), `compacted revision ${rev}\n`);
        // etcd compacts in the background and counts the freed pages at a later backend commit, once no
        // read transaction may still use them (which took over 5 s once under the whole suite's load).
        // With no writes there is no later commit: a delete, which the alarm allows, makes one.
        let compacted = full;
        let deletes = 0;
        await waitUntil(
          async () => {
            compacted = (await statuses(ep))[0];
            if (compacted.dbSizeInUse < compacted.dbSize) return true;
            await ctlOk(ep, ["del", `tick/${deletes++ % 40}`]);
            return false;
          },
          15_000,
          () => `in use ${compacted.dbSizeInUse} of ${compacted.dbSize} after the compaction`,
          100,
        );
        assertIncludes((await etcdctl(ep, ["put", "small", "v"])).stderr, NO_SPACE);
        // a defragmentation that ran before etcd's background compaction was done keeps the file's size:
        // defragment until it is below the quota (etcd-ts needs one round)
        let defragged = compacted;
        await waitUntil(
          async () => {
            assertEquals(await ctlOk(ep, ["defrag"]), `Finished defragmenting etcd member[${ep}]\n`);
            defragged = (await statuses(ep))[0];
            return defragged.dbSize < QUOTA;
          },
          15_000,
          () => `database size ${defragged.dbSize} after defragmenting`,
          200,
        );
        assert(defragged.dbSize < full.dbSize, `${full.dbSize} -> ${defragged.dbSize}`);
        assert(defragged.dbSizeInUse <= defragged.dbSize, `${defragged.dbSizeInUse} of ${defragged.dbSize}`);
        // the alarm still caps writes: only disarming lifts it
        assertIncludes((await etcdctl(ep, ["put", "small", "v"])).stderr, NO_SPACE);
        assertEquals(await ctlOk(ep, ["alarm", "disarm"]), `${listed[0]}\n`);
        assertEquals(await ctlOk(ep, ["alarm", "list"]), "");
        assertEquals((await statuses(ep))[0].errors, []);
        assertEquals(await ctlOk(ep, ["put", "small", "v"]), "OK\n");
        // disarming with no alarm is a no-op
        assertEquals(await ctlOk(ep, ["alarm", "disarm"]), "");

        // HashKV of compacted and future revisions fails as reads do
        const hk = await etcdctl(ep, ["endpoint", "hashkv", `--rev=${rev}`]);
        assertIncludes(hk.stderr, "etcdserver: mvcc: required revision has been compacted");
        const future = await etcdctl(ep, ["endpoint", "hashkv", `--rev=${rev + 1000}`]);
        assertIncludes(future.stderr, "etcdserver: mvcc: required revision is a future revision");
      } catch (err) {
        console.error(`--- ${impl} log ---\n${m.logs.join("")}`);
        throw err;
      } finally {
        await m.destroy();
      }
    },
  });

  Deno.test({
    name: `[${impl}] alarms and hashkv survive a restart from a snapshot`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      let m = await Member.start({
        impl,
        host: HOSTS[impl].single,
        args: ["--quota-backend-bytes", String(QUOTA), "--snapshot-count", "5"],
      });
      try {
        assertIncludes(await fillUntilRefused(m.endpoint), NO_SPACE);
        const alarms = await alarmList(m.endpoint);
        assertEquals(alarms.length, 1);
        await ctlOk(m.endpoint, ["compact", "3"]);
        for (let i = 0; i < 12; i++) await ctlOk(m.endpoint, ["del", `fill/${i}`]); // past a snapshot
        const [hash] = await hashes(m.endpoint);
        assertEquals(hash[1], 3);
        await m.stop();
        m = await m.restart();
        assertEquals(await alarmList(m.endpoint), alarms);
        assertEquals(await hashes(m.endpoint), [hash]);
        assertIncludes((await etcdctl(m.endpoint, ["put", "small", "v"])).stderr, NO_SPACE);
        // etcd: without a defragmentation the file is still past the quota and the next write re-arms
        await ctlOk(m.endpoint, ["compact", String(hash[2])]);
        await ctlOk(m.endpoint, ["defrag"]);
        assertEquals(await ctlOk(m.endpoint, ["alarm", "disarm"]), `${alarms[0]}\n`);
        assertEquals(await ctlOk(m.endpoint, ["put", "small", "v"]), "OK\n");
      } catch (err) {
        console.error(`--- ${impl} log ---\n${m.logs.join("")}`);
        throw err;
      } finally {
        await m.destroy();
      }
    },
  });

  Deno.test({
    name: `[${impl}] 3 members: NOSPACE is replicated, hashkv agrees, also after a restart`,
    ignore: !HAVE_ETCDCTL,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const c = await Cluster.start({
        impl,
        hosts: HOSTS[impl].cluster,
        extraArgs: ["--quota-backend-bytes", String(QUOTA)],
      });
      const all = c.endpoints();
      const ep = (i: number) => c.members[i].endpoint;
      try {
        for (let i = 0; i < 20; i++) await ctlOk(ep(i % 3), ["put", `k${i % 7}`, `v${i}`]);
        await ctlOk(ep(0), ["del", "k3"]);
        const before = await agreedHash(all, 3);
        assertEquals(before[1], -1, "no compaction yet");

        // a member refuses a write past the quota and raises NOSPACE for itself (etcd: so does every member
        // that applies a write past its own quota); every member then caps writes
        assertIncludes(await fillUntilRefused(ep(0)), NO_SPACE);
        let lines = await settledAlarms(all);
        for (const l of lines) assertMatch(l, ALARM_LINE);
        assertEquals(await alarmList(ep(2)), lines);
        assertIncludes((await etcdctl(ep(1), ["put", "small", "v"])).stderr, NO_SPACE);
        assertIncludes((await etcdctl(ep(2), ["put", "small", "v"])).stderr, NO_SPACE);
        assertEquals(await ctlOk(ep(2), ["get", "k0", "--print-value-only"]), "v14\n");
        // etcd: a member whose own quota check refuses a write raises NOSPACE for itself too
        lines = await settledAlarms(all);
        const full = await agreedHash(all, 3);
        if (impl === "etcd-ts") {
          // etcd hashes its whole bbolt file (per-member metadata included); etcd-ts hashes its replicated
          // state, so its members agree
          assertEquals(new Set(await Promise.all([0, 1, 2].map((i) => wholeHash(ep(i))))).size, 1);
        }

        // a restarted member comes back with the same history and the alarms still raised
        await c.members[1].kill("SIGTERM");
        c.members[1].spawn();
        await c.members[1].waitReady();
        assertEquals(await agreedHash(all, 3), full);
        assertEquals(await alarmList(ep(1)), lines);
        assertIncludes((await etcdctl(ep(1), ["put", "small", "v"])).stderr, NO_SPACE);

        // delete what filled the quota (deletes pass the alarm), compact, defragment every member, disarm:
        // writes work everywhere again
        assert(Number(await ctlOk(ep(0), ["del", "--prefix", "fill/"])) > 0);
        const rev = full[2] + 1;
        await ctlOk(ep(0), ["compact", String(rev)]);
        // etcd drops compacted revisions in the background after applying the compaction: a member that
        // defragments before that keeps its size (and raises NOSPACE again at the next write). So
        // defragment until every member's file is below the quota; etcd-ts needs one round.
        let sizes: number[] = [];
        await waitUntil(
          async () => {
            await ctlOk(all, ["defrag", "--cluster"]);
            sizes = (await statuses(all, true)).map((s) => s.dbSize);
            return sizes.every((n) => n < QUOTA);
          },
          15_000,
          () => `database sizes after defragmenting: ${sizes.join(", ")}`,
          200,
        );
        assertEquals(sortedLines(await ctlOk(ep(1), ["alarm", "disarm"])), lines);
        assertEquals(await alarmList(ep(0)), []);
        for (let i = 0; i < 3; i++) assertEquals(await ctlOk(ep(i), ["put", `after/${i}`, "v"]), "OK\n");
        const after = await agreedHash(all, 3);
        assertEquals(after[1], rev);
        assertEquals(after[2], rev + 3);
        for (const s of await statuses(all, true)) assertEquals(s.errors, []);
      } catch (err) {
        console.error(`--- logs of the ${impl} cluster ---\n${c.logs()}`);
        throw err;
      } finally {
        await c.destroy();
      }
    },
  });
}

Deno.test({
  name: "[etcd-ts vs etcd] hashkv is etcd's own value for the same history",
  ignore: !HAVE_ETCDCTL || implementations().length < 2,
  fn: async () => {
    const ts = await Member.start({ impl: "etcd-ts", host: "127.0.1.169" });
    try {
      const etcd = await Member.start({ impl: "etcd", host: "127.0.1.169" });
      try {
        const at = async (rev: number) => [
          (await hashes(ts.endpoint, rev))[0][0],
          (await hashes(etcd.endpoint, rev))[0][0],
        ];
        const got: number[][] = [];
        for (const ep of [ts.endpoint, etcd.endpoint]) {
          await ctlOk(ep, ["put", "a", "1"]);
          await ctlOk(ep, ["put", "b", "2"]);
          await ctlOk(ep, ["del", "a"]);
          await ctlOk(ep, ["put", "a", "3"]);
          await ctlOk(ep, ["txn"], "\nput c 4\nput b 5\n\n\n");
        }
        got.push(await at(0), await at(4));
        for (const ep of [ts.endpoint, etcd.endpoint]) await ctlOk(ep, ["compact", "3"]);
        got.push(await at(0), await at(5));
        for (const [mine, theirs] of got) assertEquals(mine, theirs, JSON.stringify(got));
      } finally {
        await etcd.destroy();
      }
    } finally {
      await ts.destroy();
    }
  },
});
