import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import {
  defaultValue,
  type FlagDef,
  isDefaultValue,
  loadFlag,
  parseFileValue,
  parseFlagText,
  storeFlag,
} from "./flag_kinds.ts";
import { ConfigError, defaultConfig } from "./types.ts";
import { BadValue, formatUrl } from "./values.ts";
import { plain } from "./test_util.ts";

const base = { group: "member", usage: "" } as const;

Deno.test("config kinds: command-line text is read by the flag's kind", () => {
  const cases: [FlagDef, string, unknown][] = [
    [{ ...base, name: "s", kind: "string", def: "" }, "a,b", "a,b"],
    [{ ...base, name: "b", kind: "bool", def: "false" }, "T", true],
    [{ ...base, name: "u", kind: "uint", def: "0" }, "0x10", 16],
    [{ ...base, name: "i", kind: "int", def: "0" }, "-0b11", -3],
    [{ ...base, name: "d", kind: "duration", def: "0s" }, "1m30s", 90_000],
    [{ ...base, name: "l", kind: "list", def: "" }, "b,,a,b", ["b", "a", "b"]],
    [{ ...base, name: "t", kind: "set", def: "" }, "b,,a,b", ["a", "b"]],
    [{ ...base, name: "o", kind: "strings", def: "" }, "b,,a,b", ["b", "a", "b"]],
    [{ ...base, name: "e", kind: "enum", def: "x", choices: ["x", "y"] }, "y", "y"],
    [{ ...base, name: "g", kind: "ignored", def: "" }, "anything", true],
    [{ ...base, name: "w", kind: "urls", def: "" }, "http://b:1,HTTP://a:2,http://b:1", [
      "http://a:2",
      "http://b:1",
    ]],
    // An empty URL list keeps the default.
    [{ ...base, name: "v", kind: "urls", def: "http://c:3" }, "", ["http://c:3"]],
  ];
  for (const [f, text, want] of cases) assertEquals(parseFlagText(f, text), want, f.kind);
});

Deno.test("config kinds: bad text gives Go's reason", () => {
  const cases: [FlagDef, string, string][] = [
    [{ ...base, name: "b", kind: "bool", def: "false" }, "yes", "parse error"],
    [{ ...base, name: "u", kind: "uint", def: "0" }, "-1", "parse error"],
    [{ ...base, name: "u32", kind: "uint32", def: "0" }, "4294967296", "value out of range"],
    [{ ...base, name: "d", kind: "duration", def: "0s" }, "5", "parse error"],
    [{ ...base, name: "e", kind: "enum", def: "x", choices: ["x"] }, "z", "invalid value"],
    [
      { ...base, name: "w", kind: "urls", def: "" },
      "http://a:1/p",
      "URL must not contain a path: http://a:1/p",
    ],
  ];
  for (const [f, text, reason] of cases) {
    const err = assertThrows(() => parseFlagText(f, text), BadValue) as BadValue;
    assertEquals(err.reason, reason, f.kind);
  }
});

Deno.test("config kinds: config-file values are read by the kind, or by fileKind when given", () => {
  const e: FlagDef = { ...base, name: "e", kind: "enum", def: "x", choices: ["x", "y"] };
  assertEquals(parseFileValue(e, "e", "y", "c.yml"), "y");
  assertThrows(
    () => parseFileValue(e, "e", "z", "c.yml"),
    ConfigError,
    "c.yml: e must be one of x, y, not z",
  );
  assertEquals(parseFileValue({ ...e, fileKind: "string" }, "e", "z", "c.yml"), "z");
  const d: FlagDef = { ...base, name: "d", kind: "duration", def: "0s" };
  assertEquals(parseFileValue(d, "d", 5_000_000_000, "c.yml"), 5000);
  assertEquals(parseFileValue(d, "d", "2s", "c.yml"), 2000);
  const set: FlagDef = { ...base, name: "t", kind: "set", def: "" };
  assertEquals(parseFileValue(set, "t", ["b", "a", "b"], "c.yml"), ["a", "b"]);
  const strings: FlagDef = { ...base, name: "o", kind: "strings", def: "" };
  assertEquals(parseFileValue(strings, "o", ["b", "a"], "c.yml"), ["b", "a"]);
  assertEquals(parseFileValue(strings, "o", "b,a", "c.yml"), ["b", "a"]);
  assertThrows(
    () => parseFileValue(strings, "o", { b: 1 }, "c.yml"),
    ConfigError,
    "must be a list of strings",
  );
  const u: FlagDef = { ...base, name: "u", kind: "uint", def: "0" };
  const err = assertThrows(() => parseFileValue(u, "a.u", -1, "c.yml"), ConfigError) as ConfigError;
  assertEquals(err.message, "config file c.yml: a.u must be a non-negative integer, not -1");
  assertEquals(err.flag, "u");
});

Deno.test("config kinds: a value is stored in its field and read back unchanged", () => {
  const cases: [FlagDef, string][] = [
    [{ ...base, name: "name", kind: "string", def: "", field: "name" }, "n1"],
    [{ ...base, name: "max-wals", kind: "uint", def: "5", field: "maxWals" }, "7"],
    [{ ...base, name: "v2", kind: "bool", def: "false", field: "enableV2" }, "true"],
    [{ ...base, name: "gk", kind: "duration", def: "5s", field: "grpcKeepAliveMinTimeMs" }, "1s"],
    [{ ...base, name: "lm", kind: "urls", def: "", field: "listenMetricsUrls" }, "http://b:1,http://a:1"],
    [{ ...base, name: "lo", kind: "set", def: "", field: "logOutputs" }, "stdout,stderr"],
    [{ ...base, name: "cn", kind: "list", def: "", field: "peerTls.allowedCn" }, "b,a"],
    [{ ...base, name: "cs", kind: "strings", def: "", field: "cipherSuites" }, "b,a"],
  ];
  for (const [f, text] of cases) {
    const c = defaultConfig();
    const v = parseFlagText(f, text);
    storeFlag(c, f, v);
    assertEquals(loadFlag(c, f), v, f.name);
  }
});

Deno.test("config kinds: the Config holds each kind in its own representation", () => {
  const c = defaultConfig();
  const urls: FlagDef = { ...base, name: "lm", kind: "urls", def: "", field: "listenMetricsUrls" };
  storeFlag(c, urls, ["http://127.0.0.1:2381"]);
  assert(c.listenMetricsUrls[0] instanceof URL);
  assertEquals(c.listenMetricsUrls.map(formatUrl), ["http://127.0.0.1:2381"]);
  // A list lands in a TLS field as one comma-separated string, on its side only.
  storeFlag(c, { ...base, name: "cn", kind: "list", def: "", field: "clientTls.allowedCn" }, ["a", "b"]);
  assertEquals(c.clientTls.allowedCn, "a,b");
  assertEquals(c.peerTls.allowedCn, "");
  // A set is copied, so the Config does not share the parsed array.
  const outputs = ["stderr"];
  storeFlag(c, { ...base, name: "lo", kind: "set", def: "", field: "logOutputs" }, outputs);
  outputs.push("x");
  assertEquals(c.logOutputs, ["stderr"]);
  // Strings keep their order and are copied as well.
  const suites = ["b", "a"];
  storeFlag(c, { ...base, name: "cs", kind: "strings", def: "", field: "cipherSuites" }, suites);
  suites.push("x");
  assertEquals(c.cipherSuites, ["b", "a"]);
});

Deno.test("config kinds: a flag without a field changes nothing and reads back nothing", () => {
  const f: FlagDef = { ...base, name: "pre-vote", kind: "bool", def: "true" };
  const c = defaultConfig();
  storeFlag(c, f, false);
  assertEquals(plain(c), plain(defaultConfig()));
  assertEquals(loadFlag(c, f), undefined);
});

Deno.test("config kinds: defaults, and the other values that mean the default", () => {
  const f: FlagDef = { ...base, name: "fl", kind: "string", def: "map", alsoDefault: [""] };
  assertEquals(defaultValue(f), "map");
  assert(isDefaultValue(f, "map"));
  assert(isDefaultValue(f, ""));
  assert(!isDefaultValue(f, "array"));
  const urls: FlagDef = { ...base, name: "w", kind: "urls", def: "" };
  assertEquals(defaultValue(urls), []);
  const d: FlagDef = { ...base, name: "d", kind: "duration", def: "1m0s" };
  assert(isDefaultValue(d, 60_000));
});
