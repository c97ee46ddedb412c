/**
 * What `--help` and `--version` print. The flag list is generated from the flag table, so it cannot drift
 * from what is parsed.
 *
 * @module
 */
import type { Group } from "./flag_kinds.ts";
import { FLAGS } from "./flags.ts";
import { NOT_YET_IMPLEMENTED } from "./unimplemented.ts";

/** What etcd-ts prints on stderr for `--help` and after a flag syntax error. */
export const USAGE = `Usage:

  etcd-ts [flags]
    Run an etcd member.

  etcd-ts --version
    Print version information and exit.

  etcd-ts -h | --help
    Print this help and exit.

  etcd-ts --config-file <path>
    Take the whole configuration from a YAML file in etcd's format; every other flag and ETCD_*
    variable is then ignored.
`;

/** The `--help` sections, in order, with their titles. */
const GROUP_TITLES: [Group, string][] = [
  ["member", "Member"],
  ["clustering", "Clustering"],
  ["proxy", "Proxy (etcd v2)"],
  ["security", "Security"],
  ["auth", "Auth"],
  ["monitoring", "Profiling and monitoring"],
  ["logging", "Logging"],
  ["tracing", "Distributed tracing (experimental)"],
  ["experimental", "Experimental"],
  ["unsafe", "Unsafe (can break the guarantees of consensus; use with care)"],
];

/** The flags by group, each with its default and usage, as `--help` prints them on stdout. */
export function helpText(): string {
  const lines = [
    "",
    "Every flag --some-flag can also be given as the environment variable ETCD_SOME_FLAG; a flag and its",
    "variable may not both be set. Flags marked [not implemented yet] are accepted only at their default.",
  ];
  for (const [group, title] of GROUP_TITLES) {
    lines.push("", `${title}:`);
    for (const f of FLAGS) {
      if (f.group !== group || f.cli === false) continue;
      lines.push(`  --${f.name} '${f.def}'`);
      lines.push(`      ${f.usage}${NOT_YET_IMPLEMENTED.has(f.name) ? " [not implemented yet]" : ""}`);
    }
  }
  return lines.join("\n") + "\n";
}

/** What `--version` prints: etcd-ts's release, then etcd's lines with Deno's in place of Go's. */
export function versionText(version: string, etcdVersion: string): string {
  return [
    `etcd-ts Version: ${version}`,
    `etcd Version: ${etcdVersion}`,
    "Git SHA: Not provided",
    `Deno Version: ${Deno.version.deno}`,
    `Deno OS/Arch: ${Deno.build.os}/${Deno.build.arch}`,
    "",
  ].join("\n");
}
