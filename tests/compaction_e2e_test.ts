/**
 * A compaction of 50,000 revisions' entries on one member, with reads and writes while its entries are
 * still being dropped: etcd-ts drops them in steps with pauses between (server/member/compaction_steps.ts),
 * etcd in batches in the background. Reads below the compact revision fail at once, reads at it see every
 * key as it was, and writes go on; `--physical` answers once the entries are gone. The same writes go to
 * both servers, whose `endpoint hashkv` must then agree: the steps drop exactly what a compaction drops.
 */
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { connect } from "./client_util.ts";
import { ctlOk, etcdctl, HAVE_ETCDCTL, type Impl, implementations, Member } from "./helpers.ts";
import { parseCtlJson } from "./cluster.ts";

const HOST = "127.0.2.120";
const KEYS = 500;
const PER_TXN = 125; // etcd's default --max-txn-ops is 128
const keyOf = (i: number) => `k/${String(i % KEYS).padStart(4, "0")}`;

/** What the test wrote: each key's value at each revision it changed (undefined: deleted). */
class Written {
  private changes = new Map<string, [number, string | undefined][]>();

  set(key: string, rev: number, value: string | undefined): void {
    const list = this.changes.get(key) ?? [];
    list.push([rev, value]);
    this.changes.set(key, list);
  }

  /** Every key's value at `rev`, in key order, deleted keys left out. */
  at(rev: number): [string, string][] {
    const out: [string, string][] = [];
    for (const key of [...this.changes.keys()].sort()) {
      let value: string | undefined;
      for (const [r, v] of this.changes.get(key)!) if (r <= rev) value = v;
      if (value !== undefined) out.push([key, value]);
    }
    return out;
  }
}

/** Writes `txns` transactions of {@link PER_TXN} puts each, one revision each, from revision `rev` + 1. */
async function putTxns(endpoint: string, written: Written, first: number, txns: number, rev: number) {
  const client = connect(endpoint);
  try {
    for (let t = first; t < first + txns; t++) {
      const puts = Array.from({ length: PER_TXN }, (_, j) => [keyOf(t * PER_TXN + j), `v${t}.${j}`] as const);
      await client.kv.txn({
        compare: [],
        success: puts.map(([key, value]) => ({
          request_put: { key: Buffer.from(key), value: Buffer.from(value) },
        })),
        failure: [],
      });
      rev++;
      for (const [key, value] of puts) written.set(key, rev, value);
    }
  } finally {
    client.close();
  }
  return rev;
}

/** `get --prefix k/` at `rev`, as [key, value] pairs. */
async function prefixAt(endpoint: string, rev: number): Promise<[string, string][]> {
  const out = JSON.parse(await ctlOk(endpoint, ["get", "--prefix", "k/", `--rev=${rev}`, "-w", "json"]));
  return ((out.kvs ?? []) as { key: string; value: string }[]).map((kv) => [atob(kv.key), atob(kv.value)]);
}

/** `endpoint hashkv` at the current revision: [hash, compact revision, revision]. */
async function hashKv(endpoint: string): Promise<[number, number, number]> {
  const rows = parseCtlJson(await ctlOk(endpoint, ["endpoint", "hashkv", "-w", "json"])) as {
    HashKV: { hash?: number; compact_revision?: number; header: { revision?: number } };
  }[];
  const h = rows[0].HashKV;
  return [Number(h.hash ?? 0), Number(h.compact_revision ?? 0), Number(h.header.revision ?? 0)];
}

/** Status's `dbSizeInUse` of one member. */
async function sizeInUse(endpoint: string): Promise<number> {
  const rows = parseCtlJson(await ctlOk(endpoint, ["endpoint", "status", "-w", "json"])) as {
    Status: { dbSizeInUse?: number };
  }[];
  return Number(rows[0].Status.dbSizeInUse ?? 0);
}

/** The scenario on a fresh member of `impl`; returns the hashes after each compaction. */
async function scenario(impl: Impl): Promise<[number, number, number][]> {
  const m = await Member.start({ impl, host: HOST });
  try {
    const ep = m.endpoint;
    const written = new Written();
    // 400 revisions of 125 puts over 500 keys, a delete of a fifth of them, then 40 revisions more
    let rev = await putTxns(ep, written, 0, 400, 1);
    await ctlOk(ep, ["del", "k/0000", "k/0100"]);
    rev++;
    for (let i = 0; i < 100; i++) written.set(keyOf(i), rev, undefined);
    rev = await putTxns(ep, written, 400, 40, rev);
    const compactAt = rev - 20;

    assertEquals((await ctlOk(ep, ["compact", String(compactAt)])).trim(), `compacted revision ${compactAt}`);
    // while the entries go: below the compact revision nothing, at it everything, and writes go on
    const below = await etcdctl(ep, ["get", "k/0200", `--rev=${compactAt - 1}`]);
    assert(below.code !== 0, below.stdout);
    assertMatch(below.stderr, /required revision has been compacted/);
    const [atCompact, more] = await Promise.all([
      prefixAt(ep, compactAt),
      putTxns(ep, written, 440, 20, rev),
    ]);
    rev = more;
    assertEquals(atCompact, written.at(compactAt));
    assertEquals(await prefixAt(ep, rev), written.at(rev));
    const first = await hashKv(ep);
    assertEquals(first.slice(1), [compactAt, rev]);

    // --physical: the answer waits until the compacted entries are gone
    rev = await putTxns(ep, written, 460, 40, rev);
    await ctlOk(ep, ["compact", "--physical", String(rev - 1)]);
    const inUse = await sizeInUse(ep);
    if (impl === "etcd-ts") {
      // nothing of that compaction is left to drop later (etcd's backend commits its deletes in batches)
      await new Promise((r) => setTimeout(r, 300));
      assertEquals(await sizeInUse(ep), inUse);
    }
    assertEquals(await prefixAt(ep, rev - 1), written.at(rev - 1));
    const second = await hashKv(ep);
    assertEquals(second.slice(1), [rev - 1, rev]);
    return [first, second];
  } finally {
    await m.destroy();
  }
}

Deno.test({
  name: "a compaction of 50,000 entries while others read and write: etcd-ts and etcd agree",
  ignore: !HAVE_ETCDCTL,
  fn: async () => {
    const hashes = new Map<Impl, [number, number, number][]>();
    for (const impl of implementations()) hashes.set(impl, await scenario(impl));
    const [ours, theirs] = [hashes.get("etcd-ts"), hashes.get("etcd")];
    if (ours !== undefined && theirs !== undefined) assertEquals(ours, theirs);
  },
});
