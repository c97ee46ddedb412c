import { isIP } from "node:net";
import { assertEquals } from "../../tests/assert.ts";
import { ipVersion, parseIp } from "./ip.ts";

const SAMPLES = [
  "127.0.0.1",
  "0.0.0.0",
  "255.255.255.255",
  "256.1.1.1",
  "01.2.3.4",
  "1.2.3",
  "1.2.3.4.5",
  "1.2.3.4%eth0",
  " 1.2.3.4",
  "",
  "localhost",
  "infra1.example.com",
  "::",
  "::1",
  "1::",
  "fe80::1",
  "fe80::1%eth0",
  "fe80::1%",
  "fe80::1%a b",
  "2001:db8::8a2e:370:7334",
  "2001:0db8:0000:0000:0000:ff00:0042:8329",
  "1:2:3:4:5:6:7:8",
  "1:2:3:4:5:6:7:8:9",
  "1:2:3:4:5:6:7::",
  "::2:3:4:5:6:7:8",
  "1:2:3:4:5:6:7:8::",
  "1::2::3",
  "12345::",
  "g::1",
  "::ffff:1.2.3.4",
  "::1.2.3.4",
  "1:2:3:4:5:6:1.2.3.4",
  "1:2:3:4:5:6:7:1.2.3.4",
  "::ffff:1.2.3",
  "::ffff:01.2.3.4",
  "1.2.3.4::",
  "[::1]",
  ":1",
  "1:",
];

Deno.test("ip: ipVersion answers as node:net's isIP", () => {
  for (const s of SAMPLES) assertEquals(ipVersion(s), isIP(s), JSON.stringify(s));
});

Deno.test("ip: the bytes of an address; IPv4-mapped IPv6 as its four bytes", () => {
  assertEquals(parseIp("127.0.0.1"), new Uint8Array([127, 0, 0, 1]));
  assertEquals(parseIp("::ffff:10.1.2.3"), new Uint8Array([10, 1, 2, 3]));
  assertEquals(parseIp("::1"), new Uint8Array([...new Array(15).fill(0), 1]));
  assertEquals(
    parseIp("2001:db8::1:0"),
    new Uint8Array([0x20, 1, 0xd, 0xb8, ...new Array(8).fill(0), 0, 1, 0, 0]),
  );
  assertEquals(parseIp("localhost"), undefined);
  assertEquals(parseIp("1::2::3"), undefined);
});
