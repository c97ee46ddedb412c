/**
 * The member's configuration: the {@link Config} type, etcd's defaults, validation, and the command line
 * shell around it: etcd 3.5's server flags (in the forms Go's `flag` package accepts), the matching
 * `ETCD_*` environment variables, and etcd's YAML configuration file (`--config-file`).
 *
 * ```ts
 * const options = { version: "0.1.0", etcdVersion: "3.5.0" };
 * const parsed = parseCommandLine(Deno.args, Deno.env.toObject(), options);
 * if (parsed.kind === "run") console.log(parsed.config.name);
 * ```
 *
 * The room, one file per job: `types.ts` (Config and defaults), `values.ts` (Go's and etcd's value
 * syntax), `flag_kinds.ts` and `flags.ts` / `flags_member.ts` (the flag table as data), `unimplemented.ts`
 * (what is refused as not implemented yet), `parse.ts` (command line and environment), `config_file.ts`
 * (YAML), `help.ts` (`--help`, `--version`), `validate.ts` (validation and bootstrap checks),
 * `cipher_suites.ts` (the TLS 1.2 suites `--cipher-suites` accepts).
 *
 * @module
 */
export {
  type Config,
  ConfigError,
  defaultConfig,
  type ParseOptions,
  type ParseResult,
  type TlsConfig,
  type TlsVersion,
} from "./types.ts";
export { formatUrl, parseDurationMs, parseInitialCluster } from "./values.ts";
export { NOT_YET_IMPLEMENTED, SETTINGS_WITHOUT_EFFECT_YET } from "./unimplemented.ts";
export { parseCommandLine } from "./parse.ts";
export { tlsWarnings, validateConfig } from "./validate.ts";
export { TLS12_CIPHER_SUITES } from "./cipher_suites.ts";
