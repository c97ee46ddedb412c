import { assertEquals, assertThrows } from "./assert.ts";
import { freePorts } from "./helpers.ts";

/** A stand-in for Deno.listen that offers `offers` in turn (the system's choices) and counts closes. */
function offering(offers: number[]) {
  let closed = 0;
  const listen = () => {
    const port = offers.shift();
    if (port === undefined) throw new Error("no more offers");
    return {
      addr: { transport: "tcp", hostname: "127.0.0.1", port } as Deno.Addr,
      close: () => void closed++,
    };
  };
  return { listen, closed: () => closed };
}

Deno.test("freePorts never hands out a port twice, even when the system offers it again", () => {
  const first = offering([61001]);
  assertEquals(freePorts("127.0.0.1", 1, first.listen), [61001]);
  // the system offers the released port again: it is skipped for the next one
  const again = offering([61001, 61002, 61003]);
  assertEquals(freePorts("127.0.0.1", 2, again.listen), [61002, 61003]);
  assertEquals(again.closed(), 3, "every listener is closed");
  // a system that offers nothing new fails in words, not in a loop
  const stuck = offering(Array(2000).fill(61002));
  assertThrows(() => freePorts("127.0.0.1", 1, stuck.listen), Error, "no 1 fresh ports");
  assertEquals(stuck.closed(), 1001);
});
