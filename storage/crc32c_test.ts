import { assertEquals } from "../tests/assert.ts";
import { crc32c } from "./crc32c.ts";

/** One bit at a time, straight from the definition: the reference the table-driven code must match. */
function bitwise(seed: number, data: Uint8Array): number {
  let c = ~seed >>> 0;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

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

Deno.test("crc32c: subarrays and [start, end) windows at every alignment match the bitwise definition", () => {
  const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff);
  // a view that does not start at its buffer's first byte, continued over pieces
  assertEquals(crc32c(crc32c(0, data.subarray(0, 333)), data.subarray(333)), crc32c(0, data));
  assertEquals(crc32c(0, data), bitwise(0, data));
  for (let start = 0; start < 9; start++) {
    for (const len of [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 500]) {
      const end = start + len;
      const want = bitwise(0, data.subarray(start, end));
      assertEquals(crc32c(0, data, start, end), want, `[${start}, ${end})`);
      assertEquals(crc32c(0, data.subarray(start, end)), want, `subarray [${start}, ${end})`);
    }
  }
  // a non-zero seed continues a checksum exactly as the bitwise form does
  assertEquals(crc32c(0x12345678, data, 3, 700), bitwise(0x12345678, data.subarray(3, 700)));
});
