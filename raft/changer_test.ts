/**
 * Configuration changes through the Changer, as scripts of steps: each step is a command and the
 * configuration it must produce (or the error it must refuse with). Commands: `simple <ops>`,
 * `enter-joint [autoleave] <ops>`, `leave-joint`; ops are `v<id>` (make a voter), `l<id>` (make a
 * learner), `r<id>` (remove), `u<id>` (update). A refused step leaves the configuration as it was.
 */
import { assertEquals } from "../tests/assert.ts";
import { Changer, type ChangeResult, ErrInvalidConfChange, restoreConfig } from "./conf_change.ts";
import { emptyTrackerConfig, type Progress } from "./progress.ts";
import { type ConfChangeSingle, ConfChangeType, type ConfState, type NodeId } from "./types.ts";
import { sortedIds } from "./util.ts";

const OPS: Record<string, ConfChangeType> = {
  v: ConfChangeType.AddNode,
  l: ConfChangeType.AddLearnerNode,
  r: ConfChangeType.RemoveNode,
  u: ConfChangeType.UpdateNode,
};

function parseOps(tokens: string[]): ConfChangeSingle[] {
  return tokens.map((tok) => {
    const type = OPS[tok[0]];
    if (type === undefined) throw new Error(`unknown op ${tok}`);
    return { type, nodeId: BigInt(tok.slice(1)) };
  });
}

const list = (ids: Iterable<NodeId>): string => sortedIds(ids).join(" ");

/** The configuration in one line, then each peer's progress: `id: next=N [learner]`. */
function describe(r: ChangeResult): string {
  const c = r.config;
  let s = `voters=(${list(c.voters.incoming)})`;
  if (c.voters.outgoing.size > 0) s += `&&(${list(c.voters.outgoing)})`;
  if (c.learners.size > 0) s += ` learners=(${list(c.learners)})`;
  if (c.learnersNext.size > 0) s += ` learners_next=(${list(c.learnersNext)})`;
  if (c.autoLeave) s += " autoleave";
  for (const id of sortedIds(r.progress.keys())) {
    const pr = r.progress.get(id) as Progress;
    s += `\n${id}: next=${pr.next}${pr.isLearner ? " learner" : ""}`;
  }
  return s;
}

/** Runs `steps` from an empty configuration; `lastIndex` of each step starts added peers' progress. */
function run(steps: [string, string][]): void {
  let state: ChangeResult = { config: emptyTrackerConfig(), progress: new Map() };
  let lastIndex = 0;
  for (const [cmd, want] of steps) {
    lastIndex++;
    const [verb, ...args] = cmd.split(" ");
    const ch = new Changer(state.config, state.progress, 16, lastIndex);
    let got: string;
    try {
      let next: ChangeResult;
      if (verb === "simple") next = ch.simple(parseOps(args));
      else if (verb === "enter-joint") {
        const auto = args[0] === "autoleave";
        next = ch.enterJoint(auto, parseOps(auto ? args.slice(1) : args));
      } else if (verb === "leave-joint") next = ch.leaveJoint();
      else throw new Error(`unknown command ${verb}`);
      state = next;
      got = describe(next);
    } catch (err) {
      if (!(err instanceof ErrInvalidConfChange)) throw err;
      got = `error: ${err.message}`;
    }
    assertEquals(got, want, cmd);
  }
}

Deno.test("changer: simple changes add, promote, demote and remove one voter at a time", () => {
  run([
    ["simple v1", "voters=(1)\n1: next=1"],
    ["simple v2", "voters=(1 2)\n1: next=1\n2: next=2"],
    ["simple v2", "voters=(1 2)\n1: next=1\n2: next=2"], // adding a voter twice changes nothing
    ["simple l3", "voters=(1 2) learners=(3)\n1: next=1\n2: next=2\n3: next=4 learner"],
    ["simple v3", "voters=(1 2 3)\n1: next=1\n2: next=2\n3: next=4"], // promote: progress is kept
    ["simple l2", "voters=(1 3) learners=(2)\n1: next=1\n2: next=2 learner\n3: next=4"], // demote
    ["simple r2", "voters=(1 3)\n1: next=1\n3: next=4"],
    ["simple r9", "voters=(1 3)\n1: next=1\n3: next=4"], // removing an unknown peer is a no-op
    ["simple u3", "voters=(1 3)\n1: next=1\n3: next=4"], // an update changes no membership
    ["simple v0", "voters=(1 3)\n1: next=1\n3: next=4"], // node 0 is etcd's no-op change
    [
      "simple l4 l5",
      "voters=(1 3) learners=(4 5)\n1: next=1\n3: next=4\n4: next=11 learner\n5: next=11 learner",
    ],
  ]);
});

Deno.test("changer: simple changes refuse to change two voters or remove every voter", () => {
  const base: [string, string][] = [
    ["simple v1", "voters=(1)\n1: next=1"],
    ["simple v2", "voters=(1 2)\n1: next=1\n2: next=2"],
  ];
  run([
    ["simple r1", "error: removed all voters"],
    ["simple l1", "error: removed all voters"],
    ["simple v1", "voters=(1)\n1: next=3"],
    ["simple r1", "error: removed all voters"], // the last voter cannot go
    ["simple l1", "error: removed all voters"], // nor be demoted
  ]);
  run([
    ...base,
    ["simple v3 v4", "error: more than one voter changed without entering joint config"],
    ["simple r1 v5", "error: more than one voter changed without entering joint config"],
    ["simple l1 v5", "error: more than one voter changed without entering joint config"],
    ["simple r1 r2", "error: removed all voters"],
    ["simple l1 v1", "voters=(1 2)\n1: next=1\n2: next=2"], // demote and promote back: one step, no change
    ["simple v3 l3", "voters=(1 2) learners=(3)\n1: next=1\n2: next=2\n3: next=8 learner"],
  ]);
});

Deno.test("changer: entering and leaving a joint configuration", () => {
  run([
    ["enter-joint v1", "error: can't make a zero-voter config joint"],
    ["simple v1", "voters=(1)\n1: next=2"],
    ["simple v2", "voters=(1 2)\n1: next=2\n2: next=3"],
    ["simple v3", "voters=(1 2 3)\n1: next=2\n2: next=3\n3: next=4"],
    // replace 1 by 4 and 5 at once: the old voters stay as the outgoing half, 1 keeps its progress
    [
      "enter-joint autoleave r1 v4 v5",
      "voters=(2 3 4 5)&&(1 2 3) autoleave\n1: next=2\n2: next=3\n3: next=4\n4: next=5\n5: next=5",
    ],
    ["enter-joint v6", "error: config is already joint"],
    ["simple v6", "error: can't apply simple config change in joint config"],
    ["leave-joint", "voters=(2 3 4 5)\n2: next=3\n3: next=4\n4: next=5\n5: next=5"], // 1 is gone now
    ["leave-joint", "error: can't leave a non-joint config"],
    // a joint change without autoleave stays joint until the application leaves it
    ["enter-joint r2 r3", "voters=(4 5)&&(2 3 4 5)\n2: next=3\n3: next=4\n4: next=5\n5: next=5"],
    ["leave-joint", "voters=(4 5)\n4: next=5\n5: next=5"],
    ["enter-joint r4 r5", "error: removed all voters"],
  ]);
});

Deno.test("changer: a voter demoted in a joint change waits in learners_next", () => {
  run([
    ["simple v1", "voters=(1)\n1: next=1"],
    ["simple v2", "voters=(1 2)\n1: next=1\n2: next=2"],
    ["simple v3", "voters=(1 2 3)\n1: next=1\n2: next=2\n3: next=3"],
    // 3 still votes in the outgoing half, so it cannot be a learner yet
    ["enter-joint l3", "voters=(1 2)&&(1 2 3) learners_next=(3)\n1: next=1\n2: next=2\n3: next=3"],
    ["leave-joint", "voters=(1 2) learners=(3)\n1: next=1\n2: next=2\n3: next=3 learner"],
    // promoting a learner and demoting a voter in one joint change
    [
      "enter-joint v3 l2",
      "voters=(1 3)&&(1 2) learners_next=(2)\n1: next=1\n2: next=2\n3: next=3",
    ],
    ["leave-joint", "voters=(1 3) learners=(2)\n1: next=1\n2: next=2 learner\n3: next=3"],
    // a learner added and removed again inside a joint change leaves no trace
    ["enter-joint l7 r7", "voters=(1 3)&&(1 3) learners=(2)\n1: next=1\n2: next=2 learner\n3: next=3"],
    ["leave-joint", "voters=(1 3) learners=(2)\n1: next=1\n2: next=2 learner\n3: next=3"],
  ]);
});

Deno.test("changer: restoring a ConfState rebuilds the same configuration", () => {
  const table: ConfState[] = [
    { voters: [1n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    { voters: [1n, 2n, 3n], learners: [4n, 5n], votersOutgoing: [], learnersNext: [], autoLeave: false },
    { voters: [2n, 3n, 4n], learners: [], votersOutgoing: [1n, 2n, 3n], learnersNext: [], autoLeave: true },
    { voters: [1n, 2n], learners: [5n], votersOutgoing: [1n, 2n, 3n], learnersNext: [3n], autoLeave: false },
    { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
  ];
  for (const cs of table) {
    const r = restoreConfig(cs, 16, 10);
    const c = r.config;
    const got: ConfState = {
      voters: sortedIds(c.voters.incoming),
      learners: sortedIds(c.learners),
      votersOutgoing: sortedIds(c.voters.outgoing),
      learnersNext: sortedIds(c.learnersNext),
      autoLeave: c.autoLeave,
    };
    assertEquals(got, cs);
    const everyone = new Set([...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext]);
    assertEquals(sortedIds(r.progress.keys()), sortedIds(everyone), "a progress for every member");
    for (const id of cs.learners) assertEquals(r.progress.get(id)?.isLearner, true);
    for (const id of cs.learnersNext) assertEquals(r.progress.get(id)?.isLearner, false, "still votes");
  }
});
