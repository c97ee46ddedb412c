/**
 * etcd's YAML configuration file (`--config-file`): its keys mapped onto the flag table.
 *
 * @module
 */
import { type FlagValue, parseFileValue } from "./flag_kinds.ts";
import { FLAG_BY_FILE_KEY } from "./flags.ts";
import { ConfigError } from "./types.ts";
import { goOpenError } from "./values.ts";

/** Where each setting came from (`ETCD_X`, `key in file`; "" for the command line), for messages. */
export type Sources = Map<string, string>;

/**
 * Reads etcd's YAML config file into flag values, as etcd's `configFromFile` does: keys are the flags'
 * names (the TLS ones nested under `client-transport-security` / `peer-transport-security`, the socket ones
 * under `socket-options`), null keeps the default, unknown keys are warnings. Throws {@link ConfigError}.
 */
export function readConfigFile(
  path: string,
  readFile: (path: string) => string,
  parseYaml: ((text: string) => unknown) | undefined,
  values: Map<string, FlagValue>,
  sources: Sources,
  warnings: string[],
): void {
  if (!parseYaml) throw new ConfigError(`no YAML parser to read config file ${path}`);
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    throw new ConfigError(`open ${path}: ${goOpenError(err)}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    const msg = (err instanceof Error ? err.message : String(err)).split("\n")[0];
    throw new ConfigError(`error converting YAML to JSON: ${msg} (config file ${path})`);
  }
  if (doc === null || doc === undefined) return;
  if (!isMapping(doc)) {
    throw new ConfigError(`config file ${path}: the top level must be a mapping of keys to values`);
  }
  const visit = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [k, raw] of Object.entries(obj)) {
      const key = prefix + k;
      const f = FLAG_BY_FILE_KEY.get(key);
      if (!f) {
        if (
          prefix === "" &&
          ["client-transport-security", "peer-transport-security", "socket-options"].includes(k)
        ) {
          if (raw === null) continue;
          if (!isMapping(raw)) throw new ConfigError(`config file ${path}: ${k} must be a mapping`);
          visit(raw, key + ".");
          continue;
        }
        warnings.push(`unrecognized key ${JSON.stringify(key)} in config file ${path}; ignoring it`);
        continue;
      }
      if (raw === null || raw === undefined) continue;
      values.set(f.name, parseFileValue(f, key, raw, path));
      sources.set(f.name, `${key} in ${path}`);
    }
  };
  visit(doc, "");
  // etcd raises a zero certificate validity in a config file to its default of one year.
  if (values.get("self-signed-cert-validity") === 0) values.set("self-signed-cert-validity", 1);
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
