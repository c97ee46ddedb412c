import { assertEquals } from "../../tests/assert.ts";
import { type Entry, EntryType } from "../../raft/types.ts";
import { systemClock } from "../clock.ts";
import { encodeProposal, ProposalKind } from "./proposal.ts";
import { Proposer } from "./proposer.ts";
import type { RaftDriver } from "./raft_driver.ts";

function proposerTagged(tag: number): Proposer {
  return new Proposer({
    driver: {} as RaftDriver,
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
