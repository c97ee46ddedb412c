/**
 * Reading Prometheus's text format in tests: the value of one series, the names, types and label names
 * of every metric family, and what Prometheus's own `promtool` says of an exposition.
 *
 * @module
 */

/** One metric family of an exposition: its type, help and the label names its samples carry. */
export interface Family {
  type: string;
  help: string;
  labels: Set<string>;
}

/** The metric families of a text exposition, by name. */
export function families(text: string): Map<string, Family> {
  const out = new Map<string, Family>();
  const family = (name: string) => {
    let f = out.get(name);
    if (f === undefined) out.set(name, f = { type: "", help: "", labels: new Set() });
    return f;
  };
  const typed: string[] = [];
  for (const line of text.split("\n")) {
    let m = /^# HELP (\S+) (.*)$/.exec(line);
    if (m) {
      family(m[1]).help = m[2];
      continue;
    }
    m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m) {
      family(m[1]).type = m[2];
      typed.push(m[1]);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? /.exec(line);
    if (!m) continue;
    // a histogram's samples are name_bucket/_sum/_count: they belong to the family typed before them
    let name = m[1];
    if (!out.has(name)) name = name.replace(/_(bucket|sum|count)$/, "");
    const f = family(name);
    for (const [, label] of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) {
      if (label !== "le") f.labels.add(label);
    }
  }
  return out;
}

/**
 * The value of the sample `name` whose labels include `labels`, or undefined when there is none (the
 * first match when several are).
 */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const [, k, v] of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) have.set(k, v);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

/** Where the tests expect Debian's promtool. */
const PROMTOOL = "/usr/bin/promtool";

/** Whether promtool is installed; its checks are skipped without it. */
export const HAVE_PROMTOOL = (() => {
  try {
    return Deno.statSync(PROMTOOL).isFile;
  } catch {
    return false;
  }
})();

/** Runs `promtool check metrics` on an exposition: its exit code and its lines (parse errors, lint). */
export async function promtool(text: string): Promise<{ code: number; problems: string[] }> {
  const child = new Deno.Command(PROMTOOL, {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const out = await child.output();
  const lines = (new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr))
    .split("\n").filter((l) => l.trim() !== "");
  return { code: out.code, problems: lines };
}
