/**
 * Structured logging in the shape of etcd 3.5's zap logger: one JSON object per line with `level`, `ts`,
 * `caller` and `msg` first, then the entry's own fields in the order they were given.
 *
 * ```ts
 * const logger = createLogger({ level: "info" }).child("server/etcd");
 * logger.info("starting a new member", { "member-id": hexId(0x8e9e05c52164694dn) });
 * // {"level":"info","ts":"2026-11-25T04:00:00.000Z","caller":"server/etcd","msg":"starting a new member","member-id":"8e9e05c52164694d"}
 * ```
 *
 * @module
 */

import { type LogRotationConfig, RotatingFile } from "./log_rotation.ts";

/** The levels etcd's `--log-level` accepts, least severe first. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "panic" | "fatal";

/** Every level in severity order. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "panic", "fatal"];

const SEVERITY: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, panic: 4, fatal: 5 };

/** Extra key/value pairs of one log entry. */
export type LogFields = Record<string, unknown>;

/** A leveled structured logger. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger writing to the same place, whose entries name `component` (a short module name) as caller. */
  child(component: string): Logger;
}

/** How {@link createLogger} builds a logger. */
export interface LoggerOptions {
  /** Entries below this level are dropped. */
  level: LogLevel;
  /**
   * Receives each entry as one JSON line, without the trailing newline. When absent, entries go to
   * `outputs`, and with neither, synchronously to stderr.
   */
  write?: (line: string) => void;
  /**
   * etcd's `--log-outputs`: `default` and `stderr` mean stderr, `stdout` means stdout, anything else is a
   * file path the entries are appended to. Ignored when `write` is given.
   */
  outputs?: readonly string[];
  /**
   * `--enable-log-rotation`: the one file of `outputs` is rotated with these settings (the caller has
   * checked that there is exactly one, see log_rotation.ts).
   */
  rotation?: LogRotationConfig;
  /** The clock for `ts`; tests inject a fixed one. */
  now?: () => Date;
  /** The caller named by the root logger's entries; `child` replaces it. Absent: no `caller` key. */
  component?: string;
}

/**
 * etcd's way of printing a member, cluster or lease ID: lowercase hex without leading zeros, the value
 * taken as an unsigned 64-bit integer (`types.ID.String()` in etcd).
 */
export function hexId(id: bigint): string {
  return BigInt.asUintN(64, id).toString(16);
}

/** A duration as Go prints it (`1s`, `1.5s`, `250ms`, `1m30s`), for etcd's log fields. */
export function goDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  let rest = ms;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = (rest / 1000).toFixed(3).replace(/\.?0+$/, "");
  return (h > 0 ? `${h}h` : "") + (h > 0 || m > 0 ? `${m}m` : "") + `${s}s`;
}

/** Formats one entry exactly as the loggers of this module print it (without the newline). */
export function formatLogLine(
  level: LogLevel,
  ts: Date,
  caller: string | undefined,
  msg: string,
  fields?: LogFields,
): string {
  let line = `{"level":"${level}","ts":${JSON.stringify(ts.toISOString())}`;
  if (caller !== undefined) line += `,"caller":${JSON.stringify(caller)}`;
  line += `,"msg":${JSON.stringify(msg)}`;
  if (fields) {
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      line += `,${JSON.stringify(key)}:${encodeValue(value, new Set())}`;
    }
  }
  return line + "}";
}

/** Builds a logger; see {@link LoggerOptions}. */
export function createLogger(options: LoggerOptions): Logger {
  if (!(options.level in SEVERITY)) {
    throw new TypeError(`unrecognized level: ${JSON.stringify(options.level)}`);
  }
  const sink: Sink = {
    min: SEVERITY[options.level],
    write: options.write ?? writerFor(options.outputs ?? ["default"], options.rotation, options.now),
    now: options.now ?? (() => new Date()),
  };
  return new JsonLogger(sink, options.component);
}

interface Sink {
  min: number;
  write: (line: string) => void;
  now: () => Date;
}

class JsonLogger implements Logger {
  constructor(private readonly sink: Sink, private readonly component: string | undefined) {}

  debug(msg: string, fields?: LogFields): void {
    this.log("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.log("error", msg, fields);
  }
  child(component: string): Logger {
    return new JsonLogger(this.sink, component);
  }

  private log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (SEVERITY[level] < this.sink.min) return;
    this.sink.write(formatLogLine(level, this.sink.now(), this.component, msg, fields));
  }
}

const encoder = new TextEncoder();

function writeAll(file: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
}

function writerFor(
  outputs: readonly string[],
  rotation: LogRotationConfig | undefined,
  now: (() => Date) | undefined,
): (line: string) => void {
  const targets = [...new Set(outputs.map((o) => (o === "default" ? "stderr" : o)))];
  const writers = targets.map((target): (bytes: Uint8Array) => void => {
    if (target === "stderr") return (b) => writeAll(Deno.stderr, b);
    if (target === "stdout") return (b) => writeAll(Deno.stdout, b);
    if (rotation !== undefined) {
      const file = new RotatingFile(target, rotation, { now });
      return (b) => file.write(b);
    }
    return (b) => Deno.writeFileSync(target, b, { append: true, create: true });
  });
  return (line) => {
    const bytes = encoder.encode(line + "\n");
    for (const w of writers) w(bytes);
  };
}

/**
 * JSON for one field value, the way zap renders the corresponding Go types: bigints as exact numbers,
 * errors as their message, dates as ISO strings, URLs as strings, maps as objects, sets as arrays.
 */
function encodeValue(value: unknown, seen: Set<object>): string {
  switch (typeof value) {
    case "bigint":
      return value.toString();
    case "number":
      return Number.isFinite(value) ? String(value) : JSON.stringify(String(value));
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "undefined":
    case "function":
    case "symbol":
      return "null";
  }
  if (value === null) return "null";
  const obj = value as object;
  if (obj instanceof Error) return JSON.stringify(obj.message);
  if (obj instanceof Date) return JSON.stringify(obj.toISOString());
  if (obj instanceof URL) return JSON.stringify(obj.toString());
  if (obj instanceof Uint8Array) return JSON.stringify(new TextDecoder().decode(obj));
  if (seen.has(obj)) return '"[circular]"';
  seen.add(obj);
  try {
    if (Array.isArray(obj) || obj instanceof Set) {
      return `[${[...obj].map((v) => encodeValue(v, seen)).join(",")}]`;
    }
    const entries = obj instanceof Map ? [...obj.entries()] : Object.entries(obj);
    return `{${entries.map(([k, v]) => `${JSON.stringify(String(k))}:${encodeValue(v, seen)}`).join(",")}}`;
  } finally {
    seen.delete(obj);
  }
}
