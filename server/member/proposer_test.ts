import { assertEquals } from "../../tests/assert.ts";
import { type ConfState, type Entry, EntryType } from "../../raft/types.ts";
import { systemClock } from "../clock.ts";
import { encodeProposal, ProposalKind } from "./proposal.ts";
import { Proposer } from "./proposer.ts";
import type { RaftDriver } from "./raft_driver.ts";

function proposerTagged(tag: number, driver = {} as RaftDriver): Proposer {
  return new Proposer({
    driver,
    clock: systemClock,
    tag,
    requestTimeoutMs: 1000,
    maxRequestBytes: 1 << 20,
    accepting: () => true,
  });
}

function entry(index: number, data: Uint8Array, type = EntryType.Normal): Entry {
  return { term: 1, index, type, data };
}

Deno.test("proposer: tells whether committed entries were all proposed by this member", () => {
  const p = proposerTagged(5);
  const mine = entry(1, encodeProposal(ProposalKind.Put, 5, 1, new Uint8Array([1])));
  const theirs = entry(2, encodeProposal(ProposalKind.Put, 6, 1, new Uint8Array([1])));
  const empty = entry(3, new Uint8Array(0));
  const member = entry(4, new Uint8Array([8, 1]), EntryType.ConfChange);
  assertEquals(p.proposedHere([mine, empty]), true, "a leader's empty entry waits for nobody");
  assertEquals(p.proposedHere([mine, theirs]), false, "another member's client waits");
  assertEquals(p.proposedHere([mine, member]), false, "a membership change is answered where it was asked");
});

Deno.test("proposer: names the member of the configuration whose client proposed the last entry", () => {
  const a = 0x1_0000_0005n, b = 0x2_0000_0006n, learner = 0x3_0000_0007n;
  const conf = (voters: bigint[], learners: bigint[]): ConfState => ({
    voters,
    learners,
    votersOutgoing: [],
    learnersNext: [],
    autoLeave: false,
  });
  const driver = { confState: conf([a, b], []) };
  const p = proposerTagged(5, driver as unknown as RaftDriver);
  const by = (tag: number, index: number) =>
    entry(index, encodeProposal(ProposalKind.Put, tag, index, new Uint8Array([1])));
  assertEquals(p.proposedBy([by(5, 1), by(6, 2)]), b, "the last entry's proposer, by its ID's low 32 bits");
  assertEquals(p.proposedBy([by(6, 1), by(5, 2)]), a, "this member's own tag names this member");
  assertEquals(p.proposedBy([by(7, 1)]), undefined, "a tag of no member in the configuration");
  assertEquals(p.proposedBy([by(6, 1), entry(2, new Uint8Array([8, 1]), EntryType.ConfChange)]), undefined);
  assertEquals(p.proposedBy([entry(1, new Uint8Array(0))]), undefined, "a new leader's empty entry");
  assertEquals(p.proposedBy([]), undefined);
  // the configuration changes: the new member is found
  driver.confState = conf([a, b], [learner]);
  assertEquals(p.proposedBy([by(7, 3)]), learner);
});
