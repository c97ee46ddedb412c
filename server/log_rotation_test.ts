import { gunzipSync } from "node:zlib";
import { assert, assertEquals, assertThrows } from "../tests/assert.ts";
import { createLogger } from "./logger.ts";
import {
  checkRotationOutputs,
  LOG_ROTATION_OUTPUTS_ERROR,
  parseLogRotationConfig,
  RotatingFile,
} from "./log_rotation.ts";
import { DEFAULT_LOG_ROTATION_CONFIG_JSON } from "./config/types.ts";
import { exit, run } from "./config/test_util.ts";

const KIB = 1024;

async function withDir(fn: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "etcd-ts-logrot-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

Deno.test("log rotation: etcd's settings and its errors", () => {
  assertEquals(parseLogRotationConfig(DEFAULT_LOG_ROTATION_CONFIG_JSON), {
    maxsize: 100,
    maxage: 0,
    maxbackups: 0,
    localtime: false,
    compress: false,
  });
  assertEquals(parseLogRotationConfig('{"maxsize": 1, "MaxBackups": 3, "other": "x"}').maxbackups, 3);
  assertThrows(
    () => parseLogRotationConfig("{maxsize: 1}"),
    Error,
    "improperly formatted log rotation config: ",
  );
  assertThrows(
    () => parseLogRotationConfig('{"maxsize": "1"}'),
    Error,
    "invalid log rotation config: json: cannot unmarshal string into Go struct field logRotationConfig.maxsize of type int",
  );
  assertThrows(
    () => parseLogRotationConfig('{"compress": 1}'),
    Error,
    "invalid log rotation config: json: cannot unmarshal number into Go struct field logRotationConfig.compress of type bool",
  );
  checkRotationOutputs(["stderr", "/var/log/etcd.log"]);
  for (const outputs of [["default"], ["stderr"], ["/a.log", "/b.log"]]) {
    assertThrows(() => checkRotationOutputs(outputs), Error, LOG_ROTATION_OUTPUTS_ERROR);
  }
});

Deno.test("log rotation: the command line refuses what etcd refuses, and takes the rest", () => {
  const refused = exit(["--enable-log-rotation"]);
  assertEquals(refused.code, 1);
  assert(refused.stderr.includes(LOG_ROTATION_OUTPUTS_ERROR), refused.stderr);
  const bad = exit([
    "--enable-log-rotation",
    "--log-outputs",
    "/tmp/x.log",
    "--log-rotation-config-json",
    "{",
  ]);
  assert(bad.stderr.includes("improperly formatted log rotation config"), bad.stderr);
  const ok = run([
    "--enable-log-rotation",
    "--log-outputs",
    "stderr,/tmp/etcd-ts-x.log",
    "--log-rotation-config-json",
    '{"maxsize": 1, "maxbackups": 2}',
  ]).config;
  assertEquals([ok.enableLogRotation, ok.logRotationConfigJson], [true, '{"maxsize": 1, "maxbackups": 2}']);
});

Deno.test("log rotation: a file past maxsize is moved aside under its time, and backups are pruned", async () => {
  await withDir((dir) => {
    let t = Date.parse("2026-12-05T03:00:00.000Z");
    const now = () => new Date(t);
    const f = new RotatingFile(`${dir}/etcd.log`, parseLogRotationConfig('{"maxsize": 1, "maxbackups": 2}'), {
      now,
    });
    const line = new TextEncoder().encode("x".repeat(100 * KIB - 1) + "\n");
    for (let i = 0; i < 10; i++) f.write(line); // 1000 KiB: fits in 1 MiB
    assertEquals(names(dir), ["etcd.log"]);
    f.write(line); // would pass 1 MiB: rotated first
    assertEquals(names(dir), ["etcd-2026-12-05T03-00-00.000.log", "etcd.log"]);
    assertEquals(Deno.statSync(`${dir}/etcd-2026-12-05T03-00-00.000.log`).size, 10 * 100 * KIB);
    assertEquals(Deno.statSync(`${dir}/etcd.log`).size, 100 * KIB);
    for (let r = 1; r <= 3; r++) {
      t += 60_000;
      for (let i = 0; i < 10; i++) f.write(line);
    }
    // four rotations in all; only the two newest backups are kept
    assertEquals(names(dir), [
      "etcd-2026-12-05T03-02-00.000.log",
      "etcd-2026-12-05T03-03-00.000.log",
      "etcd.log",
    ]);
    f.close();
  });
});

Deno.test("log rotation: compressed backups, and backups older than maxage removed", async () => {
  await withDir((dir) => {
    let t = Date.parse("2026-12-01T00:00:00.000Z");
    const cfg = parseLogRotationConfig('{"maxsize": 1, "maxage": 2, "compress": true}');
    const f = new RotatingFile(`${dir}/member.log`, cfg, { now: () => new Date(t) });
    const line = new TextEncoder().encode("y".repeat(512 * KIB - 1) + "\n");
    f.write(line);
    f.write(line);
    f.write(line); // rotation on 12-01
    assertEquals(names(dir), ["member-2026-12-01T00-00-00.000.log.gz", "member.log"]);
    const unzipped = gunzipSync(Deno.readFileSync(`${dir}/member-2026-12-01T00-00-00.000.log.gz`));
    assertEquals(unzipped.length, 2 * 512 * KIB);
    t = Date.parse("2026-12-02T12:00:00.000Z");
    f.write(line);
    f.write(line); // rotation on 12-02: the 12-01 backup is 1.5 days old, kept
    assertEquals(names(dir).length, 3);
    t = Date.parse("2026-12-04T00:00:00.000Z");
    f.write(line);
    f.write(line); // rotation on 12-04: the 12-01 backup is 3 days old, removed
    assertEquals(names(dir), [
      "member-2026-12-02T12-00-00.000.log.gz",
      "member-2026-12-04T00-00-00.000.log.gz",
      "member.log",
    ]);
    f.close();
  });
});

Deno.test("log rotation: the logger writes through the rotating file", async () => {
  await withDir((dir) => {
    const path = `${dir}/etcd.log`;
    const logger = createLogger({
      level: "info",
      outputs: [path],
      rotation: parseLogRotationConfig('{"maxsize": 1}'),
      now: () => new Date(Date.parse("2026-12-05T03:00:00.000Z")),
    });
    const big = "z".repeat(64 * KIB);
    for (let i = 0; i < 20; i++) logger.info("line", { i, big });
    const files = names(dir);
    assertEquals(files, ["etcd-2026-12-05T03-00-00.000.log", "etcd.log"]);
    // every line is whole JSON, and none is lost across the rotation
    const lines = files.flatMap((n) => Deno.readTextFileSync(`${dir}/${n}`).trim().split("\n"));
    assertEquals(lines.map((l) => JSON.parse(l).i).sort((a, b) => a - b), [...Array(20).keys()]);
  });
});
