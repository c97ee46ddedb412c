/**
 * Values as etcd reads them: Go's flag syntax for booleans, integers and durations, etcd's URL lists and
 * `--initial-cluster`, and URLs written back the way Go writes them. Errors carry Go's and etcd's wording.
 *
 * @module
 */
import { ConfigError } from "./types.ts";

/** A flag value Go's flag package would refuse; `reason` is the text after the colon in Go's message. */
export class BadValue extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** strconv.ParseBool, as Go's boolean flags read their value; throws {@link BadValue}. */
export function parseGoBool(s: string): boolean {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(s)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(s)) return false;
  throw new BadValue("parse error");
}

/** strconv.ParseUint/ParseInt with base 0 (so 0x1f, 0o17, 017, 0b101 and 1_000 work), as Go's flags do. */
export function parseGoInteger(s: string, signed: boolean, bits: 32 | 64): number {
  let body = s;
  let negative = false;
  if (signed && (body.startsWith("+") || body.startsWith("-"))) {
    negative = body.startsWith("-");
    body = body.slice(1);
  }
  let digits: string;
  if (/^0[xX](_?[0-9a-fA-F])+$/.test(body)) digits = "0x" + body.slice(2);
  else if (/^0[bB](_?[01])+$/.test(body)) digits = "0b" + body.slice(2);
  else if (/^0[oO](_?[0-7])+$/.test(body)) digits = "0o" + body.slice(2);
  else if (/^0(_?[0-7])+$/.test(body)) digits = "0o" + body.slice(1);
  else if (/^(0|[1-9](_?[0-9])*)$/.test(body)) digits = body;
  else throw new BadValue("parse error");
  let v = BigInt(digits.replaceAll("_", ""));
  if (negative) v = -v;
  const max = signed ? (1n << BigInt(bits - 1)) - 1n : (1n << BigInt(bits)) - 1n;
  const min = signed ? -(1n << BigInt(bits - 1)) : 0n;
  if (v > max || v < min) throw new BadValue("value out of range");
  return Number(v);
}

const DURATION_UNITS_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "\u03bcs": 1e-3, // Greek mu, escaped: a file with any character above U+00FF takes twice the memory in V8
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go duration (`time.ParseDuration`: "1h30m", "250ms", "1.5s", "0") into milliseconds.
 * Throws an Error whose message is Go's (`time: invalid duration "x"`).
 */
export function parseDurationMs(text: string): number {
  const quoted = JSON.stringify(text);
  let s = text;
  let negative = false;
  if (s.startsWith("-") || s.startsWith("+")) {
    negative = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") throw new Error(`time: invalid duration ${quoted}`);
  let total = 0;
  while (s !== "") {
    const m = /^([0-9]*)(?:\.([0-9]*))?/.exec(s)!;
    const whole = m[1];
    const frac = m[2];
    if (whole === "" && (frac === undefined || frac === "")) {
      throw new Error(`time: invalid duration ${quoted}`);
    }
    s = s.slice(m[0].length);
    const unitMatch = /^[^0-9.]*/.exec(s)!;
    const unit = unitMatch[0];
    if (unit === "") throw new Error(`time: missing unit in duration ${quoted}`);
    const scale = DURATION_UNITS_MS[unit];
    if (scale === undefined) {
      throw new Error(`time: unknown unit ${JSON.stringify(unit)} in duration ${quoted}`);
    }
    s = s.slice(unit.length);
    total += Number(`${whole || "0"}.${frac || "0"}`) * scale;
  }
  return negative ? -total : total;
}

/** A duration flag's value in milliseconds; like Go's flag package, any error is a plain "parse error". */
export function parseGoDurationFlag(s: string): number {
  try {
    return parseDurationMs(s);
  } catch {
    throw new BadValue("parse error");
  }
}

/** Splits `host:port` as Go's net.SplitHostPort does; returns an error text or the host. */
function splitHostPort(hostport: string): { host: string } | { error: string } {
  const missing = { error: `address ${hostport}: missing port in address` };
  if (hostport.startsWith("[")) {
    const end = hostport.indexOf("]");
    if (end < 0) return { error: `address ${hostport}: missing ']' in address` };
    if (end + 1 === hostport.length) return missing;
    if (hostport[end + 1] !== ":") return missing;
    if (hostport.indexOf(":", end + 2) >= 0) {
      return { error: `address ${hostport}: too many colons in address` };
    }
    return { host: hostport.slice(1, end) };
  }
  const i = hostport.lastIndexOf(":");
  if (i < 0) return missing;
  const host = hostport.slice(0, i);
  if (host.includes(":")) return { error: `address ${hostport}: too many colons in address` };
  return { host };
}

/**
 * One URL as etcd's `types.NewURLs` takes it: http/https with `host:port` and no path, or unix/unixs.
 * Returns the URL written the way Go writes it (scheme in lower case).
 */
function parseEtcdUrl(raw: string): string {
  const input = raw.trim();
  const quoted = JSON.stringify(input);
  const schemeMatch = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(input);
  if (!schemeMatch) {
    const firstSegment = input.split("/")[0];
    if (firstSegment.includes(":")) {
      throw new BadValue(`parse ${quoted}: first path segment in URL cannot contain colon`);
    }
    throw new BadValue(`URL scheme must be http, https, unix, or unixs: ${input}`);
  }
  const scheme = schemeMatch[1].toLowerCase();
  const rest = input.slice(schemeMatch[0].length);
  const text = scheme + ":" + rest;
  if (scheme === "unix" || scheme === "unixs") {
    try {
      new URL(text);
    } catch {
      throw new BadValue(`parse ${quoted}: invalid URL`);
    }
    return text;
  }
  if (scheme !== "http" && scheme !== "https") {
    throw new BadValue(`URL scheme must be http, https, unix, or unixs: ${input}`);
  }
  let host = "";
  let after = rest;
  if (rest.startsWith("//")) {
    const end = rest.slice(2).search(/[/?#]/);
    const authority = end < 0 ? rest.slice(2) : rest.slice(2, 2 + end);
    after = end < 0 ? "" : rest.slice(2 + end);
    host = authority.slice(authority.lastIndexOf("@") + 1);
    const portMatch = /:([^\]]*)$/.exec(host);
    if (portMatch && !/^[0-9]*$/.test(portMatch[1])) {
      throw new BadValue(`parse ${quoted}: invalid port ${JSON.stringify(":" + portMatch[1])} after host`);
    }
  }
  if ("error" in splitHostPort(host)) {
    throw new BadValue(`URL address does not have the form "host:port": ${input}`);
  }
  const path = after.split(/[?#]/)[0];
  if (path !== "") throw new BadValue(`URL must not contain a path: ${input}`);
  try {
    new URL(text);
  } catch {
    throw new BadValue(`parse ${quoted}: invalid URL`);
  }
  return text;
}

/** A comma-separated URL list as etcd's URL flags take it: each URL checked, then sorted and deduplicated. */
export function parseUrlList(s: string): string[] {
  const urls = s.split(",").map(parseEtcdUrl);
  return [...new Set(urls)].sort(compareStrings);
}

/** Orders strings as Go's `sort.Strings` does (by UTF-16 code units, which agrees for etcd's ASCII). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Writes a URL the way etcd does (Go's `url.URL.String()` for the URLs etcd accepts): no trailing slash
 * after the host. Use it wherever a URL is compared with or hashed like etcd's (member IDs, member lists).
 */
export function formatUrl(u: URL): string {
  if (u.host === "") return u.href;
  const auth = u.username ? `${u.username}${u.password ? ":" + u.password : ""}@` : "";
  const path = u.pathname === "/" ? "" : u.pathname;
  return `${u.protocol}//${auth}${u.host}${path}${u.search}${u.hash}`;
}

/**
 * Parses an `--initial-cluster` value (`name=url,name=url,...`; a name may repeat to give a member several
 * URLs) into member name -> sorted peer URLs, as etcd's `types.NewURLsMap`. Throws {@link ConfigError}.
 */
export function parseInitialCluster(s: string): Map<string, URL[]> {
  const byName = new Map<string, string[]>();
  for (const item of s.split(",")) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    const name = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? "" : item.slice(eq + 1);
    byName.set(name, [...(byName.get(name) ?? []), value]);
  }
  const out = new Map<string, URL[]>();
  for (const [name, raws] of byName) {
    let urls: string[];
    try {
      urls = raws.map(parseEtcdUrl).sort(compareStrings);
    } catch (err) {
      const reason = err instanceof BadValue ? err.reason : String(err);
      throw new ConfigError(
        `error setting up initial cluster: ${reason} (--initial-cluster)`,
        "initial-cluster",
      );
    }
    out.set(name, urls.map((u) => new URL(u)));
  }
  return out;
}

/** An `--initial-cluster` map written back as etcd prints it in messages: sorted `name=url` pairs. */
export function initialClusterString(m: Map<string, URL[]>): string {
  const pairs: string[] = [];
  for (const [name, urls] of m) for (const u of urls) pairs.push(`${name}=${formatUrl(u)}`);
  return pairs.sort(compareStrings).join(",");
}

/** A comma-separated list without its empty items. */
export function splitList(s: string): string[] {
  return s.split(",").filter((x) => x !== "");
}

/** A comma-separated list as a sorted set, as etcd's `StringsFlag`-backed sets give it. */
export function sortedSet(items: readonly string[]): string[] {
  return [...new Set(items)].sort(compareStrings);
}

/** The text of a thrown value, or of a {@link BadValue}'s reason. */
export function reason(err: unknown): string {
  return err instanceof BadValue ? err.reason : err instanceof Error ? err.message : String(err);
}

/** The text Go's os.Open gives after "open <path>: " for the errors a user can fix. */
export function goOpenError(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file or directory";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.IsADirectory) return "is a directory";
  return err instanceof Error ? err.message : String(err);
}
