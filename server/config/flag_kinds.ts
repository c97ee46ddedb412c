/**
 * The shape of one flag record and what its kind means. A flag in the table (`flags.ts`) is data: its
 * name, kind, default, usage and the {@link Config} field it fills. The kind alone decides how the value
 * is read from the command line or an `ETCD_*` variable (Go's flag syntax), how it is read from etcd's YAML
 * config file (YAML decoded as etcd's JSON -> Go struct step does), how it is stored in the Config and how it
 * is read back from one. So a new flag of a known kind needs no code.
 *
 * @module
 */
import { type Config, ConfigError, type TlsConfig } from "./types.ts";
import {
  BadValue,
  formatUrl,
  parseDurationMs,
  parseGoBool,
  parseGoDurationFlag,
  parseGoInteger,
  parseUrlList,
  reason,
  sortedSet,
  splitList,
} from "./values.ts";

/**
 * What a flag's value is:
 *
 * - `string`: any text;
 * - `bool`: Go's booleans (`true`, `1`, `t`, `F`, ...); on the command line a bare `--flag` means true;
 * - `uint`, `uint32`, `int`: Go's integers (`0x1f`, `017`, `1_000`), range-checked;
 * - `duration`: a Go duration (`1h30m`), held in milliseconds; YAML may also give integer nanoseconds;
 * - `urls`: etcd's comma-separated URL list, checked, sorted and deduplicated; "" keeps the default;
 * - `list`: comma-separated text, held in the Config as one comma-separated string;
 * - `strings`: comma-separated text, held in the Config as an array, in the order given (etcd's
 *   `StringsFlag`; a YAML list or a comma-separated string in the config file);
 * - `set`: comma-separated text, deduplicated and sorted;
 * - `enum`: one of the record's `choices`;
 * - `ignored`: a flag etcd 3.5 still accepts but no longer reads; it takes an optional boolean.
 */
export type FlagKind =
  | "string"
  | "bool"
  | "uint"
  | "uint32"
  | "int"
  | "duration"
  | "urls"
  | "list"
  | "strings"
  | "set"
  | "enum"
  | "ignored";

/** A parsed flag value; its type follows from the kind (URL lists as etcd writes them, as text). */
export type FlagValue = string | boolean | number | string[];

/** The section of `--help` a flag is listed in; `hidden` ones are not listed. */
export type Group =
  | "member"
  | "clustering"
  | "proxy"
  | "security"
  | "auth"
  | "monitoring"
  | "logging"
  | "tracing"
  | "experimental"
  | "unsafe"
  | "hidden";

/** A {@link Config} field a flag fills: a top-level one, or one of a side's TLS settings. */
export type ConfigField =
  | Exclude<keyof Config, "clientTls" | "peerTls" | "initialCluster">
  | `${"clientTls" | "peerTls"}.${keyof TlsConfig}`;

/** One of etcd's flags, as data. */
export interface FlagDef {
  /** etcd's name, without dashes. */
  readonly name: string;
  readonly kind: FlagKind;
  readonly group: Group;
  /** etcd's default, written as on the command line (and as `--help` prints it). */
  readonly def: string;
  /** The line `--help` prints under the flag. */
  readonly usage: string;
  /** The Config field the value goes to; none for flags etcd-ts accepts only at their default. */
  readonly field?: ConfigField;
  /** The accepted values of an `enum`. */
  readonly choices?: readonly string[];
  /** Key in the YAML config file ("a.b" for a nested key), when not the name; `null`: not in files. */
  readonly file?: string | null;
  /** How the config-file value is read, when not as {@link kind}. */
  readonly fileKind?: FlagKind;
  /** Other values that mean the same as the default (an unset value etcd fills in later). */
  readonly alsoDefault?: readonly FlagValue[];
  /** `false`: only a config-file key, no command-line flag or variable. */
  readonly cli?: boolean;
  /** etcd 3.5 warns that the flag goes away in 3.6 when it is given. */
  readonly deprecated?: boolean;
}

/** Where a config-file value came from, to word its errors as etcd-ts always has. */
interface FileValue {
  readonly flag: FlagDef;
  /** The key as written in the file ("a.b" for a nested key). */
  readonly key: string;
  readonly path: string;
  /** The YAML-decoded value, never null. */
  readonly raw: unknown;
}

/** What a kind does: read text, read a config-file value, store into a Config, read back from it. */
interface KindRules {
  /** From command-line or environment text; throws {@link BadValue} with Go's reason. */
  text(f: FlagDef, text: string): FlagValue;
  /** From a config-file value; throws {@link ConfigError}. */
  file(v: FileValue): FlagValue;
  /** The Config field's representation of a value. */
  store(v: FlagValue): unknown;
  /** A value back from its Config field (the inverse of `store`). */
  load(x: unknown): FlagValue;
}

/** The config-file error "<key> must be <want>, not <value>". */
function mustBe(v: FileValue, want: string): ConfigError {
  return new ConfigError(
    `config file ${v.path}: ${v.key} must be ${want}, not ${JSON.stringify(v.raw)}`,
    v.flag.name,
  );
}

const same = (x: unknown): FlagValue => x as FlagValue;

function textOfFile(v: FileValue): string {
  if (typeof v.raw === "object") throw mustBe(v, "a string");
  return String(v.raw);
}

function integerKind(signed: boolean, bits: 32 | 64): KindRules {
  return {
    text: (_f, text) => parseGoInteger(text, signed, bits),
    file: (v) => {
      if (typeof v.raw !== "number" || !Number.isInteger(v.raw)) throw mustBe(v, "an integer");
      if (!signed && v.raw < 0) throw mustBe(v, "a non-negative integer");
      return v.raw;
    },
    store: same,
    load: same,
  };
}

function listOfFile(v: FileValue): string[] {
  if (typeof v.raw === "string") return splitList(v.raw);
  if (Array.isArray(v.raw) && v.raw.every((x) => typeof x !== "object")) return v.raw.map(String);
  throw mustBe(v, "a list of strings");
}

/** The rules of every kind: the one place that knows how values are read, stored and read back. */
const KINDS: Readonly<Record<FlagKind, KindRules>> = {
  string: { text: (_f, text) => text, file: textOfFile, store: same, load: same },
  bool: {
    text: (_f, text) => parseGoBool(text),
    file: (v) => {
      if (typeof v.raw !== "boolean") throw mustBe(v, "true or false");
      return v.raw;
    },
    store: same,
    load: same,
  },
  uint: integerKind(false, 64),
  uint32: integerKind(false, 32),
  int: integerKind(true, 64),
  duration: {
    text: (_f, text) => parseGoDurationFlag(text),
    file: (v) => {
      // etcd decodes durations in YAML as integer nanoseconds; a Go duration string is accepted as well.
      if (typeof v.raw === "number" && Number.isInteger(v.raw)) return v.raw / 1e6;
      if (typeof v.raw === "string") {
        try {
          return parseDurationMs(v.raw);
        } catch (err) {
          throw new ConfigError(`config file ${v.path}: ${v.key}: ${reason(err)}`, v.flag.name);
        }
      }
      throw mustBe(v, 'a duration in nanoseconds or a duration string such as "5s"');
    },
    store: same,
    load: same,
  },
  urls: {
    // etcd's URL flags accept "" and then keep their default.
    text: (f, text) => text === "" ? defaultValue(f) : parseUrlList(text),
    file: (v) => {
      if (typeof v.raw !== "string") throw mustBe(v, "a comma-separated string of URLs");
      if (v.raw === "") return defaultValue(v.flag);
      try {
        return parseUrlList(v.raw);
      } catch (err) {
        throw new ConfigError(`unexpected error setting up ${v.key}: ${reason(err)}`, v.flag.name);
      }
    },
    store: (v) => (v as string[]).map((u) => new URL(u)),
    load: (x) => (x as URL[]).map(formatUrl),
  },
  list: {
    text: (_f, text) => splitList(text),
    file: listOfFile,
    store: (v) => (v as string[]).join(","),
    load: (x) => splitList(x as string),
  },
  strings: {
    text: (_f, text) => splitList(text),
    file: listOfFile,
    store: (v) => [...(v as string[])],
    load: (x) => [...(x as string[])],
  },
  set: {
    text: (_f, text) => sortedSet(splitList(text)),
    file: (v) => sortedSet(listOfFile(v)),
    store: (v) => [...(v as string[])],
    load: (x) => [...(x as string[])],
  },
  enum: {
    text: (f, text) => {
      if (!f.choices!.includes(text)) throw new BadValue("invalid value");
      return text;
    },
    file: (v) => {
      const s = textOfFile(v);
      if (!v.flag.choices!.includes(s)) {
        throw new ConfigError(
          `config file ${v.path}: ${v.key} must be one of ${v.flag.choices!.join(", ")}, not ${s}`,
          v.flag.name,
        );
      }
      return s;
    },
    store: same,
    load: same,
  },
  ignored: { text: () => true, file: () => true, store: same, load: same },
};

/** Parses a flag's text (command line or environment) into its typed value; throws {@link BadValue}. */
export function parseFlagText(f: FlagDef, text: string): FlagValue {
  return KINDS[f.kind].text(f, text);
}

/**
 * A config-file value converted to the flag's type, as etcd's YAML -> JSON -> Go struct decoding does;
 * throws {@link ConfigError} naming the key and the file.
 */
export function parseFileValue(f: FlagDef, key: string, raw: unknown, path: string): FlagValue {
  return KINDS[f.fileKind ?? f.kind].file({ flag: f, key, path, raw });
}

/** etcd's default of a flag, as a parsed value. */
export function defaultValue(f: FlagDef): FlagValue {
  if (f.kind === "urls") return f.def === "" ? [] : parseUrlList(f.def);
  return parseFlagText(f, f.def);
}

/** Whether two parsed values are the same setting. */
export function sameValue(a: FlagValue, b: FlagValue): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Whether a value means etcd's default for the flag. */
export function isDefaultValue(f: FlagDef, v: FlagValue): boolean {
  return sameValue(v, defaultValue(f)) || (f.alsoDefault ?? []).some((d) => sameValue(v, d));
}

/** The object holding a field and the field's key in it. */
function slot(c: Config, field: ConfigField): [Record<string, unknown>, string] {
  const dot = field.indexOf(".");
  if (dot < 0) return [c as unknown as Record<string, unknown>, field];
  const side = field.slice(0, dot) as "clientTls" | "peerTls";
  return [c[side] as unknown as Record<string, unknown>, field.slice(dot + 1)];
}

/** Stores a flag's value into its Config field; a flag without a field changes nothing. */
export function storeFlag(c: Config, f: FlagDef, v: FlagValue): void {
  if (f.field === undefined) return;
  const [holder, key] = slot(c, f.field);
  holder[key] = KINDS[f.kind].store(v);
}

/** Reads a flag's value back from its Config field, to tell a setting from etcd's default; none without one. */
export function loadFlag(c: Config, f: FlagDef): FlagValue | undefined {
  if (f.field === undefined) return undefined;
  const [holder, key] = slot(c, f.field);
  return KINDS[f.kind].load(holder[key]);
}
