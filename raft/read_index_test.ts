/**
 * The leader's queue of ReadIndex requests: retries are not queued twice, an acknowledged heartbeat
 * context confirms every request queued before it, and a change of leadership forgets them all.
 */
import { assertEquals } from "../tests/assert.ts";
import { ReadOnly } from "./read_index.ts";
import { EntryType, MessageType } from "./types.ts";
import { makeMessage } from "./util.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function request(ctx: string) {
  return makeMessage({
    type: MessageType.ReadIndex,
    entries: [{ term: 0, index: 0, type: EntryType.Normal, data: enc.encode(ctx) }],
  });
}

Deno.test("read only: requests are confirmed in order, up to the acknowledged one", () => {
  const ro = new ReadOnly("safe");
  ro.addRequest(5, request("a"));
  ro.addRequest(6, request("b"));
  ro.addRequest(9, request("a")); // a retry of a pending request keeps its first index
  ro.addRequest(7, request("c"));
  assertEquals(ro.size(), 3);
  assertEquals(dec.decode(ro.lastPendingRequestCtx()), "c", "heartbeats carry the newest context");

  assertEquals(ro.recvAck(2n, enc.encode("unknown")), undefined);
  const acks = ro.recvAck(2n, enc.encode("b"));
  assertEquals([...acks!.keys()], [2n]);

  // a quorum that acknowledged "b" was asked after "a" arrived: both are confirmed, "c" is not
  const done = ro.advance(enc.encode("b"));
  assertEquals(done.map((rs) => [dec.decode(rs.req.entries[0].data), rs.index]), [["a", 5], ["b", 6]]);
  assertEquals(ro.size(), 1);
  assertEquals(ro.advance(enc.encode("b")), [], "already confirmed");

  ro.reset();
  assertEquals([ro.size(), ro.lastPendingRequestCtx()], [0, undefined]);
});
