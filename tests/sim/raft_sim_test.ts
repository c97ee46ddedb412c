/**
 * The Raft simulator over many seeds: safety after every event, liveness after healing, and
 * linearizability of the client history (see cluster.ts for what one run does).
 *
 * Every run also reconfigures the cluster under faults (voters and learners added, learners promoted,
 * voters and the leader removed, leaders crashing mid-change, joiners cut off), and the membership checks
 * run after every event; the sabotage runs prove that each check can fail.
 *
 * Environment:
 * - `SIM_SEEDS=n` runs n seeds (default 2000) starting at `SIM_FIRST_SEED` (default 1).
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
  const count = Number(env("SIM_SEEDS") ?? 2000);
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
    runsWithConfChanges: 0,
    confChangesProposed: 0,
    confChangesRefused: 0,
    votersAdded: 0,
    learnersAdded: 0,
    promotions: 0,
    promotionsBehind: 0,
    votersRemoved: 0,
    learnersRemoved: 0,
    leadersRemoved: 0,
    isolatedJoiners: 0,
    joinerSnapshots: 0,
    midChangeCrashes: 0,
    removedPeerDrops: 0,
    stoppedByPeers: 0,
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
    if (r.stats.confChanges > 0) totals.runsWithConfChanges++;
    for (
      const k of [
        "confChangesProposed",
        "confChangesRefused",
        "votersAdded",
        "learnersAdded",
        "promotions",
        "promotionsBehind",
        "votersRemoved",
        "learnersRemoved",
        "leadersRemoved",
        "isolatedJoiners",
        "joinerSnapshots",
        "midChangeCrashes",
        "removedPeerDrops",
        "stoppedByPeers",
      ] as const
    ) {
      totals[k] += r.stats[k];
    }
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
    assert(totals.runsWithConfChanges > 0.9 * count, "membership changed in (nearly) every run");
    assert(totals.confChanges > 3 * count, "membership changed several times per run");
    assert(totals.confChangesRefused > count / 10, "raft refused changes proposed while one was in flight");
    assert(totals.votersAdded > count / 2, "voters were added");
    assert(
      totals.learnersAdded > count / 2 && totals.promotions > count / 4,
      "learners joined and were promoted",
    );
    assert(totals.promotionsBehind > count / 20, "learners far behind were promoted");
    assert(totals.votersRemoved > count / 2 && totals.learnersRemoved > 0, "members were removed");
    assert(totals.leadersRemoved > count / 10, "leaders removed themselves");
    assert(totals.isolatedJoiners > count / 4, "joiners were cut off");
    assert(totals.joinerSnapshots > count / 10, "joiners caught up from snapshots");
    assert(totals.midChangeCrashes > count / 4, "leaders crashed in the middle of changes");
    assert(totals.removedPeerDrops > 0 && totals.stoppedByPeers > 0, "peers refused removed members");
    // Reconfiguration leaves the cluster without a leader now and then, hence more timeouts than without.
    assert(
      totals.opsPending > 0 && totals.opsCompleted > 5 * totals.opsPending,
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
 * (unless `overrides` turn them on) so that only the sabotage can be at fault.
 */
function firstFailure(
  sabotage: Sabotage,
  seeds: number,
  overrides: Partial<SimOptions> = {},
): SimFailure | undefined {
  for (let seed = 1; seed <= seeds; seed++) {
    try {
      runSimulation(optionsForSeed(seed, { sabotage, snapshotEvery: 0, ...overrides }));
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

  // Each membership check, caught by the first failing seed of a harness broken the way it guards against.
  await t.step("a snapshot with a stale configuration breaks configuration agreement", () => {
    const f = firstFailure("stale-snapshot-conf", 50, { snapshotEvery: 8 });
    assert(f !== undefined, "no run failed");
    assertMatch(
      f.reason,
      /^configuration agreement: node \d+ .*but the committed conf changes up to \d+ give/,
    );
  });

  await t.step("acknowledging entries before persisting them breaks the commit quorum", () => {
    const f = firstFailure("unsynced-entries", 50, { asyncPersistRate: 1 });
    assert(f !== undefined, "no run failed");
    assertMatch(
      f.reason,
      /^commit quorum: leader \d+ committed index \d+, durable only on .* not a majority/,
    );
  });

  await t.step("granting votes before persisting them breaks the election quorum", () => {
    const f = firstFailure("unsynced-votes", 50, { asyncPersistRate: 1 });
    assert(f !== undefined, "no run failed");
    assertMatch(
      f.reason,
      /^election quorum: node \d+ leads term \d+ with durable votes from .* not a majority/,
    );
  });

  await t.step("a second conf change in flight is caught", () => {
    const f = firstFailure("unguarded-conf-change", 50);
    assert(f !== undefined, "no run failed");
    assertMatch(f.reason, /^one conf change in flight: leader \d+ of term \d+ appended the conf change at/);
  });

  await t.step("a second learner is caught", () => {
    const f = firstFailure("two-learners", 100);
    assert(f !== undefined, "no run failed");
    assertMatch(f.reason, /^configuration: more than 1 learner\(s\) after the conf change at index \d+/);
  });
});
