/**
 * `etcd-ts snapshot status FILE` and `etcd-ts snapshot restore FILE [flags]`: etcdctl's (etcdutl's)
 * offline snapshot commands, with their flags, for backup files made with `etcdctl snapshot save` against
 * an etcd-ts member.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { decodeImage, imageOf, SnapshotFileError } from "./file.ts";
import { restoreSnapshot } from "./restore.ts";
import { hexId } from "../logger.ts";
import { ConfigError, formatUrl, parseInitialCluster } from "../config/mod.ts";

/** What a command printed and its exit code. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

const USAGE = "Usage: etcd-ts snapshot status <file> [-w simple|table|json]\n" +
  "       etcd-ts snapshot restore <file> [--name N] [--data-dir D] [--wal-dir W] [--initial-cluster C]\n" +
  "                                       [--initial-cluster-token T] [--initial-advertise-peer-urls U]\n" +
  "                                       [--skip-hash-check]\n";

/** Runs `etcd-ts snapshot ...` with the arguments after `snapshot`. */
export async function snapshotCommand(args: string[]): Promise<CommandResult> {
  const [sub, ...rest] = args;
  let flags: Map<string, string>;
  let files: string[];
  try {
    ({ flags, files } = parseFlags(rest));
  } catch (err) {
    return { code: 2, stdout: "", stderr: `Error: ${(err as Error).message}\n${USAGE}` };
  }
  if ((sub !== "status" && sub !== "restore") || files.length !== 1) {
    return { code: 2, stdout: "", stderr: `Error: snapshot ${sub ?? ""} needs one file\n${USAGE}` };
  }
  try {
    return sub === "status" ? await status(files[0], flags) : await restore(files[0], flags);
  } catch (err) {
    if (err instanceof SnapshotFileError) return { code: 1, stdout: "", stderr: `Error: ${err.message}\n` };
    throw err;
  }
}

async function status(file: string, flags: Map<string, string>): Promise<CommandResult> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch (err) {
    throw new SnapshotFileError(`open ${file}: ${(err as Error).message}`);
  }
  const state = decodeImage(imageOf(bytes));
  try {
    const hash = parseInt(createHash("sha256").update(bytes).digest("hex").slice(0, 8), 16);
    const s = {
      hash,
      revision: state.mvcc.currentRevision,
      totalKey: state.mvcc.keyCount(),
      totalSize: bytes.length,
    };
    const format = flags.get("write-out") ?? flags.get("w") ?? "simple";
    if (format === "json") return { code: 0, stdout: JSON.stringify(s) + "\n", stderr: "" };
    const size = humanBytes(s.totalSize);
    if (format === "table") {
      const cells = [s.hash.toString(16).padStart(8, "0"), String(s.revision), String(s.totalKey), size];
      const heads = ["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"];
      const w = heads.map((h, i) => Math.max(h.length, cells[i].length) + 2);
      const line = "+" + w.map((n) => "-".repeat(n)).join("+") + "+\n";
      const row = (xs: string[]) =>
        "|" + xs.map((x, i) => x.padStart(w[i] - 1).padEnd(w[i])).join("|") + "|\n";
      return { code: 0, stdout: line + row(heads) + line + row(cells) + line, stderr: "" };
    }
    return {
      code: 0,
      stdout: `${s.hash.toString(16).padStart(8, "0")}, ${s.revision}, ${s.totalKey}, ${size}\n`,
      stderr: "",
    };
  } finally {
    state.mvcc.close();
  }
}

async function restore(file: string, flags: Map<string, string>): Promise<CommandResult> {
  const name = flags.get("name") ?? "default";
  const peerUrls = flags.get("initial-advertise-peer-urls") ?? "http://localhost:2380";
  let initialCluster: Map<string, string[]>;
  try {
    const parsed = parseInitialCluster(flags.get("initial-cluster") ?? `${name}=${peerUrls}`);
    initialCluster = new Map([...parsed].map(([n, urls]) => [n, urls.map(formatUrl)]));
  } catch (err) {
    if (err instanceof ConfigError) throw new SnapshotFileError(err.message);
    throw err;
  }
  const dataDir = flags.get("data-dir") ?? `${name}.etcd`;
  const { memberId, clusterId } = await restoreSnapshot({
    file,
    name,
    initialCluster,
    initialClusterToken: flags.get("initial-cluster-token") ?? "etcd-cluster",
    dataDir,
    walDir: flags.get("wal-dir") ?? "",
    skipHashCheck: flags.has("skip-hash-check") && flags.get("skip-hash-check") !== "false",
  });
  return {
    code: 0,
    stdout: "",
    stderr: `restored snapshot ${file} into ${dataDir} (member ${hexId(memberId)}, cluster ${
      hexId(clusterId)
    })\n`,
  };
}

/** `--flag value`, `--flag=value` and bare booleans; other words are files. */
function parseFlags(args: string[]): { flags: Map<string, string>; files: string[] } {
  const flags = new Map<string, string>();
  const files: string[] = [];
  const booleans = new Set(["skip-hash-check"]);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("-")) {
      files.push(a);
      continue;
    }
    const body = a.replace(/^--?/, "");
    const eq = body.indexOf("=");
    if (eq >= 0) flags.set(body.slice(0, eq), body.slice(eq + 1));
    else if (booleans.has(body)) flags.set(body, "true");
    else if (i + 1 < args.length) flags.set(body, args[++i]);
    else throw new Error(`flag needs an argument: ${a}`);
  }
  return { flags, files };
}

/** Sizes as etcdctl prints them (humanize.Bytes: SI units). */
function humanBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const units = ["B", "kB", "MB", "GB", "TB"];
  const e = Math.min(Math.floor(Math.log(n) / Math.log(1000)), units.length - 1);
  const v = n / 1000 ** e;
  return `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ${units[e]}`;
}
