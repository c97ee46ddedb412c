import { assertEquals } from "../tests/assert.ts";
import { crc32c } from "./crc32c.ts";

Deno.test("crc32c: published check values (RFC 3720 B.4) and continuation", () => {
  assertEquals(crc32c(0, new TextEncoder().encode("123456789")), 0xe3069283);
  assertEquals(crc32c(0, new Uint8Array(32)), 0x8a9136aa);
  assertEquals(crc32c(0, new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  const ascending = Uint8Array.from({ length: 32 }, (_, i) => i);
  assertEquals(crc32c(0, ascending), 0x46dd794e);
  assertEquals(crc32c(0, new Uint8Array(0)), 0);
  // continuing over a split gives the checksum of the whole, at every split point
  const data = Uint8Array.from({ length: 100 }, (_, i) => (i * 37 + 11) & 0xff);
  const whole = crc32c(0, data);
  for (let cut = 0; cut <= data.length; cut++) {
    assertEquals(crc32c(crc32c(0, data, 0, cut), data, cut), whole, `split at ${cut}`);
  }
});
