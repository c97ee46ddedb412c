/**
 * Whole members (production Raft driver, WAL, snapshots, MVCC store, applier) on simulated disks and a
 * simulated network, over many seeds (see server_sim.ts for what one run does and checks).
 *
 * Environment:
 * - `SERVER_SIM_SEEDS=n` runs n seeds (default {@link DEFAULT_SEEDS}, about 30-60 s here) from
 *   `SERVER_SIM_FIRST_SEED` (default 1).
 * - `SERVER_SIM_SEED=s` runs only seed s (the replay command a failure prints); with `SIM_TRACE=1` it
 *   prints the whole trace of that run.
 *
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import {
  runServerSimulation,
  serverOptionsForSeed,
  serverReplayCommand,
  type ServerSabotage,
  ServerSimFailure,
} from "./server_sim.ts";

/** Seeds per default run. */
const DEFAULT_SEEDS = 800;

const env = (name: string): string | undefined => Deno.env.get(name);
const single = env("SERVER_SIM_SEED");
const first = Number(env("SERVER_SIM_FIRST_SEED") ?? 1);
const count = Number(env("SERVER_SIM_SEEDS") ?? DEFAULT_SEEDS);

Deno.test(
  single !== undefined
    ? `server simulation: seed ${single}`
    : `server simulation: no acknowledged write lost, linearizable, converged over ${count} seeds`,
  async () => {
    if (single !== undefined) {
      const seed = Number(single);
      const trace = env("SIM_TRACE") === "1";
      try {
        const r = await runServerSimulation(serverOptionsForSeed(seed, { trace }));
        if (trace) console.log(r.trace.join("\n"));
        console.log(
          `seed ${seed}: ok, digest ${r.digest}\n${JSON.stringify(r.options)}\n${JSON.stringify(r.stats)}`,
        );
      } catch (err) {
        if (trace && err instanceof ServerSimFailure) console.log(err.trace.join("\n"));
        throw err;
      }
      return;
    }
    const totals = {
      runs: 0,
      leaders: 0,
      processCrashes: 0,
      powerLosses: 0,
      fatalStops: 0,
      restarts: 0,
      walRepairs: 0,
      tornWrites: 0,
      syncFailures: 0,
      snapshotsSaved: 0,
      snapshotsApplied: 0,
      partitions: 0,
      transfers: 0,
      opsCompleted: 0,
      opsPending: 0,
      ackedWrites: 0,
      messages: 0,
      virtualMs: 0,
    };
    const start = performance.now();
    for (let seed = first; seed < first + count; seed++) {
      const r = await runServerSimulation(serverOptionsForSeed(seed));
      const s = r.stats;
      totals.runs++;
      totals.leaders += s.leaders;
      totals.processCrashes += s.processCrashes;
      totals.powerLosses += s.powerLosses;
      totals.fatalStops += s.fatalStops;
      totals.restarts += s.restarts;
      totals.walRepairs += s.walRepairs;
      totals.tornWrites += s.disk.tornWrites;
      totals.syncFailures += s.disk.syncFailures;
      totals.snapshotsSaved += s.snapshotsSaved;
      totals.snapshotsApplied += s.snapshotsApplied;
      totals.partitions += s.partitions;
      totals.transfers += s.transfers;
      totals.opsCompleted += s.opsCompleted;
      totals.opsPending += s.opsPending;
      totals.ackedWrites += s.ackedWrites;
      totals.messages += s.net.sent;
      totals.virtualMs += s.virtualMs;
    }
    const seconds = ((performance.now() - start) / 1000).toFixed(1);
    console.log(`server simulation: ${count} seeds from ${first} in ${seconds}s: ${JSON.stringify(totals)}`);
    if (count >= 20) {
      assert(totals.powerLosses > 0 && totals.processCrashes > 0, "members crashed, both ways");
      assert(totals.fatalStops > 0, "failed fsyncs stopped members");
      assert(totals.walRepairs > 0, "torn WAL tails were repaired");
      assert(
        totals.snapshotsSaved > count && totals.snapshotsApplied > 0,
        "snapshots were saved and installed",
      );
      assert(totals.ackedWrites > 10 * count, "writes were acknowledged");
      assert(totals.opsPending > 0, "some operations stayed pending");
      assert(totals.transfers > 0 && totals.partitions > count, "leadership moved, the network split");
    }
  },
);

/** Runs seeds in a broken world until one fails for a reason matching `reason`; returns that failure. */
async function firstFailure(
  sabotage: ServerSabotage,
  seeds: number,
  reason: RegExp,
): Promise<ServerSimFailure | undefined> {
  for (let seed = 1; seed <= seeds; seed++) {
    try {
      await runServerSimulation(serverOptionsForSeed(seed, { sabotage, syncFailures: false }));
    } catch (err) {
      if (!(err instanceof ServerSimFailure)) throw err;
      if (reason.test(err.reason)) return err;
    }
  }
  return undefined;
}

Deno.test("server simulation: the checks catch a broken world", async (t) => {
  await t.step("a disk whose fsync lies loses acknowledged writes, and that is caught", async () => {
    // (a lying disk also makes restarts fail on a damaged log; the point is that safety checks fire)
    const f = await firstFailure(
      "lying-fsync",
      120,
      /acknowledged write lost|linearizability|voted for|state machine safety|election safety/,
    );
    assert(f !== undefined, "no run failed a safety check");
    assert(f.message.includes(`replay: ${serverReplayCommand(f.seed)}`), f.message);
    assert(f.trace.length > 0, "a failure carries the trace of its replay");
  });

  await t.step("reads served without ReadIndex are caught as stale", async () => {
    const f = await firstFailure("stale-reads", 60, /linearizability: violation/);
    assert(f !== undefined, "no run failed");
  });
});

Deno.test("server simulation: a seed replays exactly", async () => {
  const a = await runServerSimulation(serverOptionsForSeed(3));
  const b = await runServerSimulation(serverOptionsForSeed(3));
  assertEquals(b.digest, a.digest);
  assertEquals(JSON.stringify(b.history), JSON.stringify(a.history));
  const traced = await runServerSimulation(serverOptionsForSeed(3, { trace: true }));
  const tracedAgain = await runServerSimulation(serverOptionsForSeed(3, { trace: true }));
  assertEquals(traced.digest, a.digest, "tracing must not change the run");
  assertEquals(tracedAgain.trace, traced.trace);
  assert(traced.trace.length > 100);
  // different seeds take different paths
  assert((await runServerSimulation(serverOptionsForSeed(4))).digest !== a.digest);
});
