import { assert, assertEquals } from "../../tests/assert.ts";
import { decodeProposal, encodeProposal, ProposalKind, proposalTag } from "./proposal.ts";
import { allocBytes } from "../slab.ts";

Deno.test("proposal: encode and decode", () => {
  const payload = new Uint8Array([1, 2, 3, 250]);
  const p = decodeProposal(encodeProposal(ProposalKind.Txn, 0xdeadbeef, 2 ** 40 + 7, payload));
  assertEquals(p.kind, ProposalKind.Txn);
  assertEquals(p.tag, 0xdeadbeef);
  assertEquals(p.seq, 2 ** 40 + 7);
  assertEquals([...p.payload], [...payload]);
});

Deno.test("proposal: the proposer's tag is read without decoding the rest", () => {
  const data = encodeProposal(ProposalKind.Put, 0xdeadbeef, 9, new Uint8Array([1]));
  assertEquals(proposalTag(data), 0xdeadbeef);
  assertEquals(proposalTag(data.subarray(0, 12)), undefined, "shorter than a header");
});

Deno.test("proposal: entry data is packed in slabs of its own, apart from request and response bytes", () => {
  // log entries outlive their requests: sharing a slab with responses would keep those alive with them
  const payload = new Uint8Array(100);
  const first = encodeProposal(ProposalKind.Put, 1, 1, payload);
  const message = allocBytes(100);
  const second = encodeProposal(ProposalKind.Put, 1, 2, payload);
  assert(first.buffer !== message.buffer && second.buffer !== message.buffer, "entry data in a message slab");
  assert(first.buffer === second.buffer, "consecutive entries share one slab");
  assertEquals(second.byteOffset - first.byteOffset, 120, "densely: 113 bytes, 8-byte aligned");
});
