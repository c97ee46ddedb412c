/**
 * The checks every fault run ends with, whatever made the faults: the members converge on one key space
 * (equal HashKV at one revision) that holds every acknowledged write, every watcher kept etcd's guarantees
 * and saw the same events, the events replay into a linearizable read, and the history is linearizable.
 *
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { sleep } from "../helpers.ts";
import type { WorkerResult } from "./load_worker.ts";
import { checkKv } from "../sim/linearizability.ts";
import { checkWatchStream, eventLine, replay } from "./watch_checks.ts";

/** What a run's checks found (they throw on any anomaly). */
export interface Outcome {
  operations: number;
  completed: number;
  ackedWrites: number;
  watchResponses: number[];
  finalRevision: number;
  /** The revision every member's HashKV was equal at. */
  revision: number;
  /** What the watchers saw wrong, where the target's known watch bugs are reported instead of thrown. */
  anomalies: string[];
}

/** How the checks reach the members. */
export interface OutcomeTarget {
  /** Runs etcdctl against `endpoints`; resolves to its standard output, rejects when it fails. */
  ctl(endpoints: string[], args: string[]): Promise<string>;
  /** Every member's client endpoint, and its name for messages, in the watchers' order. */
  endpoints: string[];
  names: string[];
  /** Fewer completed operations than this means the load never really ran. */
  minCompleted: number;
  /**
   * The members are the real etcd 3.4.23. Its watcher on a member that was cut off and then brought up
   * to date by the leader's snapshot has been seen here to miss revisions and to get wrong previous
   * values (etcd's watch bugs around snapshot restores, as in etcd-io/etcd issue 15271): what the
   * watchers saw wrong is returned as anomalies instead of thrown. Every other check still throws.
   */
  referenceWatchBugs?: boolean;
}

/** The checks (see the module's comment); throws on the first anomaly. */
export async function checkOutcome(target: OutcomeTarget, result: WorkerResult): Promise<Outcome> {
  const { ctl, endpoints: all, names } = target;
  const n = all.length;
  const completed = result.ops.filter((o) => o.return !== undefined).length;
  assert(completed > target.minCompleted, `only ${completed} of ${result.ops.length} operations completed`);
  // every member converges on the same key space, holding every acknowledged write
  let hashes: { rev: number; hash: number }[] = [];
  const same = () =>
    hashes.length === n && hashes.every((h) => h.rev === hashes[0].rev && h.hash === hashes[0].hash);
  const until = Date.now() + 15_000;
  while (Date.now() < until) {
    try {
      const j = JSON.parse(await ctl(all, ["endpoint", "hashkv", "-w", "json"])) as {
        HashKV: { header: { revision: number }; hash: number };
      }[];
      hashes = j.map((e) => ({ rev: e.HashKV.header.revision, hash: e.HashKV.hash }));
      if (same()) break;
    } catch {
      // a member still catching up
    }
    await sleep(200);
  }
  assert(same(), `members differ: ${JSON.stringify(hashes)}`);
  for (let i = 0; i < n; i++) {
    const out = await ctl([all[i]], ["get", "--prefix", "lab/acked/", "--consistency=s", "-w", "json"]);
    const kvs = (JSON.parse(out).kvs ?? []) as { key: string; value: string }[];
    const stored = new Map(kvs.map((kv) => [atob(kv.key), atob(kv.value)]));
    const lost = Object.entries(result.acked).filter(([k, v]) => stored.get(k) !== v).map(([k]) => k);
    assertEquals(lost, [], `${names[i]} lacks acknowledged writes`);
  }
  // every watcher (one per member) kept etcd's guarantees through the faults, and all saw the same
  assertEquals(result.watches.length, n);
  assert(result.finalRevision > 0, "the final write never succeeded");
  const anomalies: string[] = [];
  /** Whether a watch check failed and is reported (else it is for the caller to throw). */
  const reported = (failed: boolean, what: () => string) => {
    if (failed && target.referenceWatchBugs) anomalies.push(what());
    return failed && target.referenceWatchBugs === true;
  };
  result.watches.forEach((w, i) => {
    const problems = checkWatchStream(w, 2, result.finalRevision);
    const first = problems.slice(0, 3).join("; ");
    if (
      reported(problems.length > 0, () => `watcher of ${names[i]}: ${problems.length} problems: ${first}`)
    ) return;
    assertEquals(
      problems.slice(0, 10),
      [],
      `watcher of ${names[i]}: ${problems.length} problems; what its client saw of the stream:\n${
        (result.streamLog?.[i] ?? []).join("\n")
      }`,
    );
  });
  const lines = result.watches.map((w) =>
    eventLine(w).filter((l) => Number(l.split(" ")[0]) <= result.finalRevision)
  );
  for (let i = 1; i < n; i++) {
    const differ = JSON.stringify(lines[i]) !== JSON.stringify(lines[0]);
    const what = `the watchers of ${names[0]} and ${names[i]} saw different events`;
    if (!reported(differ, () => what)) assertEquals(lines[i], lines[0], what);
  }
  // and the events replay into what a linearizable read returns
  const everything = await ctl(all, ["get", "--prefix", "lab/", "-w", "json"]);
  const read = new Map(
    ((JSON.parse(everything).kvs ?? []) as { key: string; value: string }[]).map((
      kv,
    ) => [atob(kv.key), atob(kv.value)]),
  );
  const replayed = [...replay(result.watches[0])].sort();
  const differ = JSON.stringify(replayed) !== JSON.stringify([...read].sort());
  const what = `the events of ${names[0]}'s watcher replay into other values than a linearizable read`;
  if (!reported(differ, () => what)) assertEquals(replayed, [...read].sort(), what);
  const verdict = checkKv(result.ops);
  assert(verdict.ok, verdict.ok ? "" : `history not linearizable:\n${verdict.explanation}`);
  return {
    operations: result.ops.length,
    completed,
    ackedWrites: Object.keys(result.acked).length,
    watchResponses: result.watches.map((w) => w.length),
    finalRevision: result.finalRevision,
    revision: hashes[0].rev,
    anomalies,
  };
}
