/**
 * etcd's command line: Go's flag syntax, the `ETCD_*` variables, or a YAML config file, turned into a
 * validated {@link Config} or into what to print and the exit code, as etcd 3.5's `etcd` command does.
 *
 * @module
 */
import { formatLogLine, type LogLevel } from "../logger.ts";
import { readConfigFile, type Sources } from "./config_file.ts";
import { type FlagValue, isDefaultValue, parseFlagText, storeFlag } from "./flag_kinds.ts";
import { FLAG_BY_NAME, FLAGS } from "./flags.ts";
import { helpText, USAGE, versionText } from "./help.ts";
import {
  type Config,
  ConfigError,
  DEFAULT_INITIAL_CLUSTER,
  DEFAULT_NAME,
  DEFAULT_SNAPSHOT_COUNT,
  DEFAULT_WATCH_PROGRESS_NOTIFY_MS,
  defaultConfig,
  type ParseOptions,
  type ParseResult,
} from "./types.ts";
import { NOT_YET_IMPLEMENTED } from "./unimplemented.ts";
import { UNSET_ADVERTISE_CLIENT_URLS, validateConfig } from "./validate.ts";
import { compareStrings, formatUrl, goOpenError, parseInitialCluster, reason } from "./values.ts";

/** Go's flag package refusing the command line: print the message and the usage, exit 2. */
class FlagSyntaxError extends Error {}
class HelpRequested extends Error {}

interface ParsedArgs {
  values: Map<string, FlagValue>;
  /** Flags set on the command line, in order. */
  set: string[];
  positional: string[];
}

/** The command line as Go's `flag.FlagSet.Parse` reads it (`-x`, `--x`, `-x=v`, `-x v`), up to a non-flag. */
function parseArgs(args: string[]): ParsedArgs {
  const values = new Map<string, FlagValue>();
  const set: string[] = [];
  let i = 0;
  while (i < args.length) {
    const s = args[i];
    if (s.length < 2 || s[0] !== "-") break;
    let dashes = 1;
    if (s[1] === "-") {
      dashes = 2;
      if (s.length === 2) {
        i++;
        break;
      }
    }
    let name = s.slice(dashes);
    if (name.length === 0 || name[0] === "-" || name[0] === "=") {
      throw new FlagSyntaxError(`bad flag syntax: ${s}`);
    }
    i++;
    let value: string | undefined;
    const eq = name.indexOf("=", 1);
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const f = FLAG_BY_NAME.get(name);
    if (!f) {
      if (name === "help" || name === "h") throw new HelpRequested();
      throw new FlagSyntaxError(`flag provided but not defined: -${name}`);
    }
    if (f.kind === "bool" || f.kind === "ignored") {
      try {
        values.set(name, value === undefined ? true : parseFlagText(f, value));
      } catch (err) {
        throw new FlagSyntaxError(
          `invalid boolean value ${JSON.stringify(value)} for -${name}: ${reason(err)}`,
        );
      }
    } else {
      if (value === undefined) {
        if (i >= args.length) throw new FlagSyntaxError(`flag needs an argument: -${name}`);
        value = args[i++];
      }
      try {
        values.set(name, parseFlagText(f, value));
      } catch (err) {
        throw new FlagSyntaxError(`invalid value ${JSON.stringify(value)} for flag -${name}: ${reason(err)}`);
      }
    }
    if (!set.includes(name)) set.push(name);
  }
  return { values, set, positional: args.slice(i) };
}

function envName(flag: string): string {
  return "ETCD_" + flag.replaceAll("-", "_").toUpperCase();
}

/** The caller named by the log lines parseCommandLine prints. */
const CALLER = "server/config";

const CONFLICT_MESSAGE =
  "conflicting environment variable is shadowed by corresponding command-line flag (either unset environment variable or disable flag))";

/**
 * Turns etcd's command line, environment and (when asked for) config file into a validated {@link Config},
 * or into what to print and the exit code, as etcd 3.5 does:
 *
 * - flag syntax errors and unknown flags: Go's message and the usage on stderr, exit 2;
 * - `--help`/`-h`: the usage on stderr and the flags on stdout, exit 0; `--version`: exit 0;
 * - a flag given both on the command line and as its `ETCD_*` variable: a fatal JSON log line, exit 1;
 * - unknown `ETCD_*` variables: warnings;
 * - with `--config-file` (or `ETCD_CONFIG_FILE`), other flags and variables are ignored;
 * - a flag of {@link NOT_YET_IMPLEMENTED} set to a non-default value: `etcd-ts: --x is not implemented yet`,
 *   exit 1;
 * - any other refused setting: a JSON warn line "failed to verify flags" with the error, exit 1.
 */
export function parseCommandLine(
  args: string[],
  env: Record<string, string>,
  options: ParseOptions,
): ParseResult {
  const now = options.now ?? (() => new Date());
  const warnings: string[] = [];
  const line = (level: LogLevel, caller: string, msg: string, fields?: Record<string, unknown>): string =>
    formatLogLine(level, now(), caller, msg, fields) + "\n";
  const warningLines = (): string => warnings.map((w) => line("warn", CALLER, w)).join("");
  const exitWith = (code: number, stderr: string, stdout = ""): ParseResult => ({
    kind: "exit",
    code,
    stdout,
    stderr,
  });
  const fail = (message: string): ParseResult => {
    let stderr = warningLines() + line("warn", CALLER, "failed to verify flags", { error: message });
    if (message === UNSET_ADVERTISE_CLIENT_URLS) {
      stderr += line("warn", CALLER, "advertise client URLs are not set", { error: message });
    }
    return exitWith(1, stderr);
  };

  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(args);
  } catch (err) {
    if (err instanceof HelpRequested) return exitWith(0, USAGE + "\n", helpText());
    if (err instanceof FlagSyntaxError) return exitWith(2, `${err.message}\n${USAGE}\n`);
    throw err;
  }
  if (parsed.positional.length > 0) return fail(`'${parsed.positional[0]}' is not a valid flag`);
  if (parsed.values.get("version") === true) {
    return exitWith(0, "", versionText(options.version, options.etcdVersion));
  }

  const values = new Map<string, FlagValue>();
  const sources: Sources = new Map();
  const configFile = (parsed.values.get("config-file") as string | undefined) || env["ETCD_CONFIG_FILE"] ||
    "";
  const fromFile = configFile !== "";
  if (fromFile) {
    const ignored = parsed.set.filter((n) => n !== "config-file");
    if (ignored.length > 0) {
      warnings.push(
        `a config file is in use; ignoring the other command-line flags: ${
          ignored.map((n) => "--" + n).join(" ")
        }`,
      );
    }
    try {
      readConfigFile(
        configFile,
        options.readFile ?? ((p) => Deno.readTextFileSync(p)),
        options.parseYaml,
        values,
        sources,
        warnings,
      );
    } catch (err) {
      if (err instanceof ConfigError) return fail(err.message);
      throw err;
    }
  } else {
    const envEffect = applyEnvironment(parsed, env, values, sources, warnings);
    if (envEffect.conflict !== undefined) {
      const fatal = line("fatal", "pkg/flags", CONFLICT_MESSAGE, {
        "environment-variable": envEffect.conflict,
      });
      return exitWith(1, warningLines() + fatal);
    }
    if (envEffect.error !== undefined) return fail(envEffect.error);
    for (const name of parsed.set) {
      const f = FLAG_BY_NAME.get(name);
      if (f?.deprecated) {
        warnings.push(`--${name} is deprecated in 3.5 and will be decommissioned in 3.6.`);
      }
      if (f?.kind === "ignored") {
        warnings.push(`flag --${name} is no longer supported; ignoring it`);
      }
    }
  }

  const unimplementedSet = options.unimplemented ?? NOT_YET_IMPLEMENTED;
  const unimplemented = notImplemented(values, sources, unimplementedSet);
  if (unimplemented.length > 0) {
    const names = unimplemented.map(([n]) => `--${n}`).join(", ");
    const from = unimplemented.map(([, s]) => s).filter((s) => s !== "").join(", ");
    const verb = unimplemented.length === 1 ? "is" : "are";
    return exitWith(
      1,
      warningLines() + `etcd-ts: ${names} ${verb} not implemented yet${from ? ` (set by ${from})` : ""}\n`,
    );
  }

  const logger = values.get("logger");
  if (logger === "capnslog") return fail("--logger=capnslog is removed in v3.5");
  if (logger !== undefined && logger !== "zap") {
    return fail(`unknown logger option ${JSON.stringify(logger)}`);
  }

  let config: Config;
  try {
    config = buildConfig(values, fromFile);
    validateConfig(config, unimplementedSet);
    checkLogFiles(config.logOutputs, options.openLogFile ?? openForAppend);
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message);
    throw err;
  }
  if (!values.get("data-dir")) warnings.push(`'data-dir' was empty; using default ${config.dataDir}`);
  return { kind: "run", config, warnings };
}

/** etcd's `SetFlagsFromEnv` and `verifyEnv`: variables fill the flags not given on the command line. */
function applyEnvironment(
  parsed: ParsedArgs,
  env: Record<string, string>,
  values: Map<string, FlagValue>,
  sources: Sources,
  warnings: string[],
): { conflict?: string; error?: string } {
  for (const [name, v] of parsed.values) {
    values.set(name, v);
    sources.set(name, "");
  }
  const environment = { ...env };
  const version = environment["ETCD_VERSION"];
  if (version !== undefined && version !== "") {
    warnings.push(`cannot set special environment variable ETCD_VERSION=${version}; ignoring it`);
    delete environment["ETCD_VERSION"];
  }
  const alreadySet = new Set(parsed.set.map(envName));
  const used = new Set<string>();
  let error: string | undefined;
  for (const f of [...FLAG_BY_NAME.values()].sort((a, b) => compareStrings(a.name, b.name))) {
    const key = envName(f.name);
    if (alreadySet.has(key)) continue;
    const text = environment[key];
    if (text === undefined || text === "") continue;
    used.add(key);
    try {
      values.set(f.name, parseFlagText(f, text));
      sources.set(f.name, key);
    } catch (err) {
      error = `invalid value ${JSON.stringify(text)} for ${key}: ${reason(err)}`;
    }
  }
  for (const [key, text] of Object.entries(environment)) {
    if (used.has(key)) continue;
    if (alreadySet.has(key)) return { conflict: key };
    if (key.startsWith("ETCD_")) warnings.push(`unrecognized environment variable ${key}=${text}`);
  }
  return { error };
}

function openForAppend(path: string): void {
  Deno.openSync(path, { append: true, create: true }).close();
}

/** etcd opens every log file of `--log-outputs` while it checks its flags; one it cannot open is refused. */
function checkLogFiles(outputs: readonly string[], open: (path: string) => void): void {
  for (const out of outputs) {
    if (out === "default" || out === "stderr" || out === "stdout") continue;
    try {
      open(out);
    } catch (err) {
      throw new ConfigError(
        `open sink ${JSON.stringify(out)}: open ${out}: ${goOpenError(err)} (--log-outputs)`,
        "log-outputs",
      );
    }
  }
}

/** The not-yet-implemented settings that differ from etcd's default, with where they came from. */
function notImplemented(
  values: Map<string, FlagValue>,
  sources: Sources,
  unimplemented: ReadonlySet<string>,
): [string, string][] {
  const out: [string, string][] = [];
  for (const f of FLAGS) {
    if (!unimplemented.has(f.name) || !values.has(f.name)) continue;
    if (!isDefaultValue(f, values.get(f.name)!)) out.push([f.name, sources.get(f.name) ?? ""]);
  }
  return out;
}

/** The Config of parsed flag values: etcd's defaults, the values set, then what etcd derives from them. */
function buildConfig(values: Map<string, FlagValue>, fromFile: boolean): Config {
  const c = defaultConfig();
  for (const f of FLAGS) {
    const v = values.get(f.name);
    if (v !== undefined) storeFlag(c, f, v);
  }
  if (values.has("log-level")) c.logLevel = c.logLevel.toLowerCase() as LogLevel;
  if (c.dataDir === "" || !values.has("data-dir")) c.dataDir = `${c.name}.etcd`;
  // etcd: "updating snapshot-count to default".
  if (c.snapshotCount === 0) c.snapshotCount = DEFAULT_SNAPSHOT_COUNT;
  if (c.experimentalWatchProgressNotifyIntervalMs === 0) {
    c.experimentalWatchProgressNotifyIntervalMs = DEFAULT_WATCH_PROGRESS_NOTIFY_MS;
  }
  // etcd takes an empty --tls-min-version as Go's default, which its TLS setup raises to TLS 1.2.
  if ((c.tlsMinVersion as string) === "") c.tlsMinVersion = "TLS1.2";

  // --initial-cluster: discovery replaces the default one, and while the value is still the default a
  // member with its own name gets "<name>=<advertised peer URLs>" (etcd's UpdateDefaultClusterFromName).
  let cluster = (values.get("initial-cluster") as string | undefined) ?? DEFAULT_INITIAL_CLUSTER;
  const discovering = c.discovery !== "" || c.discoverySrv !== "" || c.discoveryEndpoints.length > 0 ||
    (!fromFile && c.discoverySrvName !== "");
  if (discovering && (fromFile ? cluster === DEFAULT_INITIAL_CLUSTER : !values.has("initial-cluster"))) {
    cluster = "";
  }
  if (
    c.name !== DEFAULT_NAME && cluster === DEFAULT_INITIAL_CLUSTER && c.initialAdvertisePeerUrls.length > 0
  ) {
    const n = c.name === "" ? DEFAULT_NAME : c.name;
    cluster = c.initialAdvertisePeerUrls.map((u) => `${n}=${formatUrl(u)}`).join(",");
  }
  c.initialCluster = parseInitialCluster(cluster);
  // etcd falls back to a v2 proxy when discovery finds the cluster full; etcd-ts has no v2 proxy (etcd
  // removed it in 3.6), so a member that asks for one is refused, and one that does not ask exits
  if (c.discovery !== "" && values.has("discovery-fallback") && c.discoveryFallback === "proxy") {
    throw new ConfigError(
      "--discovery-fallback=proxy needs the v2 proxy, which etcd-ts does not have; " +
        "use --discovery-fallback=exit (a member that finds the cluster full then exits)",
      "discovery-fallback",
    );
  }

  // On the command line, an explicit --listen-client-urls needs an explicit --advertise-client-urls.
  if (!fromFile && values.has("listen-client-urls") && !values.has("advertise-client-urls")) {
    const proxy = values.get("proxy") ?? "off";
    const mayBeProxy = proxy !== "off" || (c.discovery !== "" && c.discoveryFallback === "proxy");
    if (!mayBeProxy) c.advertiseClientUrls = [];
  }
  return c;
}
