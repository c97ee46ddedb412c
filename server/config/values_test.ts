import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { ConfigError } from "./types.ts";
import {
  BadValue,
  formatUrl,
  goOpenError,
  initialClusterString,
  parseDurationMs,
  parseGoInteger,
  parseInitialCluster,
  reason,
  sortedSet,
  splitList,
} from "./values.ts";

Deno.test("config: parseDurationMs reads Go durations", () => {
  assertEquals(parseDurationMs("0"), 0);
  assertEquals(parseDurationMs("1h30m"), 5400000);
  assertEquals(parseDurationMs("1.5s"), 1500);
  assertEquals(parseDurationMs("-2m"), -120000);
  assertEquals(parseDurationMs("100us"), 0.1);
  // both micro signs Go accepts: U+00B5 and the Greek mu U+03BC
  assertEquals(parseDurationMs("100µs"), 0.1);
  assertEquals(parseDurationMs("100μs"), 0.1);
  assertEquals(parseDurationMs(".5h"), 1800000);
  assertThrows(() => parseDurationMs("5"), Error, 'time: missing unit in duration "5"');
  assertThrows(() => parseDurationMs("5q"), Error, 'time: unknown unit "q" in duration "5q"');
  assertThrows(() => parseDurationMs(""), Error, 'time: invalid duration ""');
  assertThrows(() => parseDurationMs("h"), Error, 'time: invalid duration "h"');
});

Deno.test("config: formatUrl writes URLs as etcd does", () => {
  assertEquals(formatUrl(new URL("http://127.0.0.1:2380")), "http://127.0.0.1:2380");
  assertEquals(formatUrl(new URL("https://[::1]:2379/")), "https://[::1]:2379");
  assertEquals(formatUrl(new URL("unix://localhost:2379")), "unix://localhost:2379");
});

Deno.test("config: Go's integers, in base 0 and range-checked", () => {
  assertEquals(parseGoInteger("0x1f", false, 64), 31);
  assertEquals(parseGoInteger("017", false, 64), 15);
  assertEquals(parseGoInteger("-1_000", true, 64), -1000);
  assertEquals(parseGoInteger("4294967295", false, 32), 4294967295);
  for (
    const [text, signed, bits, reason] of [
      ["4294967296", false, 32, "value out of range"],
      ["-1", false, 64, "parse error"],
      ["1__0", true, 64, "parse error"],
      ["0x", true, 64, "parse error"],
    ] as const
  ) {
    const err = assertThrows(() => parseGoInteger(text, signed, bits), BadValue) as BadValue;
    assertEquals(err.reason, reason, text);
  }
});

Deno.test("config: lists, sets and the texts of errors", () => {
  assertEquals(splitList(",a,,b,"), ["a", "b"]);
  assertEquals(sortedSet(["b", "a", "b"]), ["a", "b"]);
  assertEquals(reason(new BadValue("parse error")), "parse error");
  assertEquals(reason(new Error("boom")), "boom");
  assertEquals(goOpenError(new Deno.errors.NotFound("x")), "no such file or directory");
  assertEquals(goOpenError(new Deno.errors.PermissionDenied("x")), "permission denied");
});

Deno.test("config: --initial-cluster errors name the flag", () => {
  const err = assertThrows(() => parseInitialCluster("a=http://x:1/p"), ConfigError) as ConfigError;
  assertEquals(
    err.message,
    "error setting up initial cluster: URL must not contain a path: http://x:1/p (--initial-cluster)",
  );
  assertEquals(err.flag, "initial-cluster");
  assertEquals(
    initialClusterString(parseInitialCluster("b=http://b:1,a=http://a:2,a=http://a:1")),
    "a=http://a:1,a=http://a:2,b=http://b:1",
  );
});
