/**
 * The Raft simulator over many seeds: safety after every event, liveness after healing, and
 * linearizability of the client history (see cluster.ts for what one run does).
 *
 * Environment:
 * - `SIM_SEEDS=n` runs n seeds (default 1000) starting at `SIM_FIRST_SEED` (default 1).
 * - `SIM_SEED=s` runs only seed s (the replay command printed by a failure); with `SIM_TRACE=1` it
 *   prints the whole trace of that run.
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertNotEquals } from "../assert.ts";
import {
  optionsForSeed,
  replayCommand,
  runSimulation,
  type Sabotage,
  SimFailure,
  type SimOptions,
  type SimReport,
} from "./cluster.ts";

const env = (name: string): string | undefined => Deno.env.get(name);

Deno.test("raft simulation: safety, liveness and linearizability over many seeds", () => {
  const single = env("SIM_SEED");
  if (single !== undefined) {
    const seed = Number(single);
    const trace = env("SIM_TRACE") === "1";
    let report: SimReport;
    try {
      report = runSimulation(optionsForSeed(seed, { trace }));
    } catch (err) {
      if (trace && err instanceof SimFailure) console.log(err.trace.join("\n"));
      throw err;
    }
    if (trace) console.log(report.trace.join("\n"));
    console.log(
      `seed ${seed}: ok, digest ${report.digest}\n${JSON.stringify(report.options)}\n${
        JSON.stringify(report.stats)
      }`,
    );
    return;
  }
  const first = Number(env("SIM_FIRST_SEED") ?? 1);
  const count = Number(env("SIM_SEEDS") ?? 1000);
  const totals = {
    runs: 0,
    threeNodes: 0,
    fiveNodes: 0,
    leaders: 0,
    crashes: 0,
    partitions: 0,
    snapshotsInstalled: 0,
    pauses: 0,
    confChanges: 0,
    readyAsync: 0,
    opsCompleted: 0,
    opsPending: 0,
    messages: 0,
    duplicated: 0,
  };
  const start = performance.now();
  for (let seed = first; seed < first + count; seed++) {
    // A failure throws a SimFailure whose message names the seed and the replay command.
    const r = runSimulation(optionsForSeed(seed));
    totals.runs++;
    if (r.options.nodes === 3) totals.threeNodes++;
    else totals.fiveNodes++;
    totals.leaders += r.stats.leaders;
    totals.crashes += r.stats.crashes;
    totals.partitions += r.stats.partitions;
    totals.snapshotsInstalled += r.stats.snapshotsInstalled;
    totals.pauses += r.stats.pauses;
    totals.confChanges += r.stats.confChanges;
    totals.readyAsync += r.stats.readyAsync;
    totals.opsCompleted += r.stats.opsCompleted;
    totals.opsPending += r.stats.opsPending;
    totals.messages += r.stats.net.sent;
    totals.duplicated += r.stats.net.duplicated;
  }
  const seconds = ((performance.now() - start) / 1000).toFixed(1);
  console.log(`${count} seeds from ${first} in ${seconds}s: ${JSON.stringify(totals)}`);
  // The runs must have exercised what they claim to (when enough seeds ran for that to be certain).
  if (count >= 100) {
    assert(totals.threeNodes > 0 && totals.fiveNodes > 0, "both cluster sizes ran");
    assert(totals.leaders > 2 * count, "leaders changed");
    assert(totals.crashes > count, "nodes crashed");
    assert(totals.partitions > count, "the network was partitioned");
    assert(totals.snapshotsInstalled > count / 10, "followers caught up from snapshots");
    assert(totals.readyAsync > 0, "persistence overlapped with new messages");
    assert(totals.pauses > count / 2, "processes froze");
    assert(totals.confChanges > count / 10, "membership changed");
    assert(
      totals.opsPending > 0 && totals.opsCompleted > 10 * totals.opsPending,
      "clients saw results and timeouts",
    );
    assert(totals.duplicated > 0, "messages were duplicated");
  }
});

/** A run's outcome as text: its digest, or how it failed (failures replay exactly too). */
function outcome(options: SimOptions): { summary: string; trace: string[] } {
  try {
    const r = runSimulation(options);
    return { summary: `ok ${r.digest} ${JSON.stringify(r.history)}`, trace: r.trace };
  } catch (err) {
    if (!(err instanceof SimFailure)) throw err;
    return { summary: `failed ${err.message}`, trace: err.trace };
  }
}

Deno.test("raft simulation: a seed replays exactly", () => {
  for (const seed of [7, 8]) {
    const a = outcome(optionsForSeed(seed));
    const b = outcome(optionsForSeed(seed));
    assertEquals(b.summary, a.summary);
    const traced = outcome(optionsForSeed(seed, { trace: true }));
    const tracedAgain = outcome(optionsForSeed(seed, { trace: true }));
    assertEquals(tracedAgain.trace, traced.trace);
    assert(traced.trace.length > 100);
    if (a.summary.startsWith("ok")) {
      assertEquals(traced.summary, a.summary, "tracing must not change the run");
    }
  }
  // Different seeds take different paths.
  assertNotEquals(outcome(optionsForSeed(9)).summary, outcome(optionsForSeed(10)).summary);
});

/**
 * Runs seeds with a deliberately broken harness until one fails; returns that failure. Snapshots are off
 * so that only the sabotage can be at fault.
 */
function firstFailure(sabotage: Sabotage, seeds: number): SimFailure | undefined {
  for (let seed = 1; seed <= seeds; seed++) {
    try {
      runSimulation(optionsForSeed(seed, { sabotage, snapshotEvery: 0 }));
    } catch (err) {
      if (err instanceof SimFailure) return err;
      throw err;
    }
  }
  return undefined;
}

Deno.test("raft simulation: the checks catch a broken harness", async (t) => {
  await t.step("reads served without ReadIndex are caught as stale", () => {
    const f = firstFailure("stale-reads", 50);
    assert(f !== undefined, "no run failed");
    assertMatch(f.reason, /linearizability: violation/);
    assert(f.message.includes(`replay: ${replayCommand(f.seed)}`), f.message);
    assert(f.trace.length > 0, "a failure carries the trace of its replay");
  });

  await t.step("writes acknowledged before they commit are caught", () => {
    const f = firstFailure("ack-on-propose", 50);
    assert(f !== undefined, "no run failed");
    assertMatch(f.reason, /linearizability|liveness/);
  });

  await t.step("a vote forgotten across a restart is caught", () => {
    const f = firstFailure("forget-vote", 500);
    assert(f !== undefined, "no run failed");
    assertMatch(
      f.reason,
      /changed its vote|election safety|state machine safety|log matching|linearizability/,
    );
  });
});
