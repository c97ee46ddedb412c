import { assert, assertEquals, assertThrows } from "../tests/assert.ts";
import { createLogger, formatLogLine, goDuration, hexId, type LogLevel } from "./logger.ts";

const NOW = new Date("2026-11-25T04:00:00.000Z");

function capture(
  level: LogLevel,
  component?: string,
): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const logger = createLogger({ level, write: (l) => lines.push(l), now: () => NOW, component });
  return { lines, logger };
}

Deno.test("logger: one JSON object per entry with level, ts, caller, msg first, then the fields in order", () => {
  const { lines, logger } = capture("info");
  logger.child("server/etcd").info("starting a new member", {
    "member-id": hexId(0x8e9e05c52164694dn),
    "initial-cluster": "default",
    revision: 7,
    ok: true,
  });
  assertEquals(lines, [
    '{"level":"info","ts":"2026-11-25T04:00:00.000Z","caller":"server/etcd","msg":"starting a new member",' +
    '"member-id":"8e9e05c52164694d","initial-cluster":"default","revision":7,"ok":true}',
  ]);
  const parsed = JSON.parse(lines[0]);
  assertEquals(Object.keys(parsed), [
    "level",
    "ts",
    "caller",
    "msg",
    "member-id",
    "initial-cluster",
    "revision",
    "ok",
  ]);
});

Deno.test("logger: the root logger has no caller unless given a component; child replaces it", () => {
  const { lines, logger } = capture("debug");
  logger.warn("plain");
  logger.child("storage/wal").child("server/raft").error("nested");
  const root = capture("debug", "main");
  root.logger.info("named");
  assertEquals(JSON.parse(lines[0]), { level: "warn", ts: NOW.toISOString(), msg: "plain" });
  assertEquals(JSON.parse(lines[1]).caller, "server/raft");
  assertEquals(JSON.parse(root.lines[0]).caller, "main");
});

Deno.test("logger: entries below the level are dropped", async (t) => {
  const cases: [LogLevel, string[]][] = [
    ["debug", ["debug", "info", "warn", "error"]],
    ["info", ["info", "warn", "error"]],
    ["warn", ["warn", "error"]],
    ["error", ["error"]],
    ["panic", []],
    ["fatal", []],
  ];
  for (const [level, expected] of cases) {
    await t.step(level, () => {
      const { lines, logger } = capture(level);
      const child = logger.child("x");
      child.debug("m");
      child.info("m");
      child.warn("m");
      child.error("m");
      assertEquals(lines.map((l) => JSON.parse(l).level), expected);
    });
  }
});

Deno.test("logger: bigints print as exact numbers, errors as messages, and other values as JSON", () => {
  const { lines, logger } = capture("info");
  logger.info("values", {
    big: 18446744073709551615n,
    error: new Error("disk full"),
    when: new Date(0),
    url: new URL("http://127.0.0.1:2379"),
    list: ["a", 1n],
    map: new Map([["k", 2]]),
    set: new Set([3]),
    nested: { a: { b: null } },
    skipped: undefined,
    nan: NaN,
    quote: 'say "hi"\n',
  });
  assertEquals(
    lines[0],
    '{"level":"info","ts":"2026-11-25T04:00:00.000Z","msg":"values","big":18446744073709551615,' +
      '"error":"disk full","when":"1970-01-01T00:00:00.000Z","url":"http://127.0.0.1:2379/","list":["a",1],' +
      '"map":{"k":2},"set":[3],"nested":{"a":{"b":null}},"nan":"NaN","quote":"say \\"hi\\"\\n"}',
  );
  assertEquals(JSON.parse(lines[0]).quote, 'say "hi"\n');
});

Deno.test("logger: a cyclic field does not hang the logger", () => {
  const { lines, logger } = capture("info");
  const cyclic: Record<string, unknown> = { name: "x" };
  cyclic.self = cyclic;
  logger.info("cycle", { cyclic });
  assertEquals(JSON.parse(lines[0]).cyclic, { name: "x", self: "[circular]" });
});

Deno.test("logger: hexId prints etcd's unpadded lowercase hex of the unsigned value", () => {
  assertEquals(hexId(0x8e9e05c52164694dn), "8e9e05c52164694d");
  assertEquals(hexId(0xd96e0ef9fa7d2can), "d96e0ef9fa7d2ca"); // a real member ID: etcd drops the leading zero
  assertEquals(hexId(0n), "0");
  assertEquals(hexId(-1n), "ffffffffffffffff");
});

Deno.test("logger: formatLogLine is the loggers' own format", () => {
  assertEquals(
    formatLogLine("fatal", NOW, "pkg/flags", "boom", { "environment-variable": "ETCD_NAME" }),
    '{"level":"fatal","ts":"2026-11-25T04:00:00.000Z","caller":"pkg/flags","msg":"boom","environment-variable":"ETCD_NAME"}',
  );
});

Deno.test("logger: an unknown level is refused", () => {
  assertThrows(
    () => createLogger({ level: "verbose" as LogLevel }),
    TypeError,
    'unrecognized level: "verbose"',
  );
});

Deno.test("logger: file outputs get one line per entry, appended", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/etcd.log`;
    Deno.writeTextFileSync(path, "existing\n");
    const logger = createLogger({ level: "info", outputs: [path], now: () => NOW });
    logger.info("one");
    logger.child("c").warn("two", { n: 2 });
    logger.debug("dropped");
    const lines = Deno.readTextFileSync(path).split("\n");
    assertEquals(lines.length, 4);
    assertEquals(lines[0], "existing");
    assertEquals(JSON.parse(lines[1]).msg, "one");
    assertEquals(JSON.parse(lines[2]), {
      level: "warn",
      ts: NOW.toISOString(),
      caller: "c",
      msg: "two",
      n: 2,
    });
    assertEquals(lines[3], "");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("logger: the default output is a synchronous stderr write", async () => {
  const code = `
    import { createLogger } from ${JSON.stringify(new URL("./logger.ts", import.meta.url).href)};
    createLogger({ level: "info" }).child("t").info("to stderr", { k: 1 });
    createLogger({ level: "info", outputs: ["stdout"] }).info("to stdout");
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  assert(out.success);
  const err = new TextDecoder().decode(out.stderr).trim().split("\n");
  const std = new TextDecoder().decode(out.stdout).trim().split("\n");
  assertEquals(err.length, 1);
  assertEquals(JSON.parse(err[0]).msg, "to stderr");
  assertEquals(JSON.parse(err[0]).caller, "t");
  assertEquals(std.map((l) => JSON.parse(l).msg), ["to stdout"]);
});

Deno.test("goDuration prints durations as Go does", () => {
  assertEquals(
    [0, 250, 1000, 1500, 7000, 60_000, 90_000, 3_600_000, 3_723_500].map(goDuration),
    ["0s", "250ms", "1s", "1.5s", "7s", "1m0s", "1m30s", "1h0m0s", "1h2m3.5s"],
  );
});
