/**
 * Log rotation for `--enable-log-rotation`, with etcd 3.5's settings (`--log-rotation-config-json`, the
 * options of the lumberjack rotator etcd uses) and its behaviour:
 *
 * - `maxsize` (MiB, default 100): a write that would take the file past it first moves the file aside
 *   as `<name>-<time><ext>` (time of the rotation, `2006-01-02T15-04-05.000` in UTC, or local time with
 *   `localtime`), then starts a new file;
 * - `maxbackups` (0: all): the most recent backups kept; `maxage` (days, 0: forever): older backups go;
 * - `compress`: backups are gzipped (`<backup>.gz`).
 *
 * Writes are synchronous, like the logger's other outputs, so a line is in the file when the call returns.
 *
 * @module
 */

/**
 * `bytes` gzipped by `node:zlib`, which is loaded (synchronously, as rotation is) the first time a backup is
 * compressed rather than by every member that logs.
 */
function gzip(bytes: Uint8Array): Uint8Array {
  return process.getBuiltinModule("node:zlib").gzipSync(bytes);
}

/** The settings of `--log-rotation-config-json`. */
export interface LogRotationConfig {
  /** MiB a file may reach before it is rotated. */
  maxsize: number;
  /** Days a backup is kept; 0 keeps them whatever their age. */
  maxage: number;
  /** Backups kept; 0 keeps all. */
  maxbackups: number;
  /** Name backups by local time instead of UTC. */
  localtime: boolean;
  /** gzip backups. */
  compress: boolean;
}

/** etcd's words for outputs rotation cannot work with. */
export const LOG_ROTATION_OUTPUTS_ERROR =
  "--log-outputs requires a single file path when --log-rotate-config-json is defined";

const FIELDS: Record<keyof LogRotationConfig, "int" | "bool"> = {
  maxsize: "int",
  maxage: "int",
  maxbackups: "int",
  localtime: "bool",
  compress: "bool",
};

/** Go's name of a JSON value's type, as its decoder reports a mismatch. */
function jsonKind(v: unknown): string {
  if (typeof v === "number") return "number";
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "bool";
  if (Array.isArray(v)) return "array";
  return "object";
}

/**
 * Parses `--log-rotation-config-json` as etcd does (unknown keys ignored, absent ones zero), throwing
 * etcd's messages for malformed JSON or a value of the wrong type.
 */
export function parseLogRotationConfig(json: string): LogRotationConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new Error(`improperly formatted log rotation config: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error(
      `invalid log rotation config: json: cannot unmarshal ${jsonKind(raw)} into Go value of type ` +
        "embed.logRotationConfig",
    );
  }
  const out: LogRotationConfig = { maxsize: 0, maxage: 0, maxbackups: 0, localtime: false, compress: false };
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const field = Object.keys(FIELDS).find((f) => f === key.toLowerCase()) as
      | keyof LogRotationConfig
      | undefined;
    if (field === undefined || value === null) continue;
    const want = FIELDS[field];
    const ok = want === "bool"
      ? typeof value === "boolean"
      : typeof value === "number" && Number.isInteger(value);
    if (!ok) {
      throw new Error(
        `invalid log rotation config: json: cannot unmarshal ${jsonKind(value)} into Go struct field ` +
          `logRotationConfig.${field} of type ${want}`,
      );
    }
    (out as unknown as Record<string, unknown>)[field] = value;
  }
  if (out.maxsize === 0) out.maxsize = 100;
  return out;
}

/**
 * Checks the outputs rotation is asked for: exactly one file (besides stderr/stdout); throws etcd's
 * message otherwise.
 */
export function checkRotationOutputs(outputs: readonly string[]): void {
  const files = outputs.filter((o) => o !== "default" && o !== "stderr" && o !== "stdout");
  if (files.length !== 1) throw new Error(LOG_ROTATION_OUTPUTS_ERROR);
}

/** What the rotating file needs from the outside: the time (backup names, ages). */
export interface RotatingFileDeps {
  now?: () => Date;
}

const MIB = 1024 * 1024;
const DAY_MS = 24 * 60 * 60 * 1000;

/** One log file that is rotated by size, with its backups pruned by count and age. */
export class RotatingFile {
  readonly #path: string;
  readonly #dir: string;
  readonly #stem: string;
  readonly #ext: string;
  readonly #maxBytes: number;
  readonly #now: () => Date;
  #file: Deno.FsFile | undefined;
  #size = 0;

  constructor(path: string, readonly config: LogRotationConfig, deps: RotatingFileDeps = {}) {
    this.#path = path;
    const slash = path.lastIndexOf("/");
    this.#dir = slash < 0 ? "." : path.slice(0, slash) || "/";
    const base = slash < 0 ? path : path.slice(slash + 1);
    const dot = base.lastIndexOf(".");
    this.#stem = dot <= 0 ? base : base.slice(0, dot);
    this.#ext = dot <= 0 ? "" : base.slice(dot);
    this.#maxBytes = config.maxsize * MIB;
    this.#now = deps.now ?? (() => new Date());
  }

  /** Appends `bytes`, rotating first if the file would outgrow its limit. */
  write(bytes: Uint8Array): void {
    if (bytes.length > this.#maxBytes) {
      throw new Error(`write length ${bytes.length} exceeds maximum file size ${this.#maxBytes}`);
    }
    if (this.#file === undefined) this.#open();
    if (this.#size + bytes.length > this.#maxBytes) this.#rotate();
    let off = 0;
    while (off < bytes.length) off += this.#file!.writeSync(bytes.subarray(off));
    this.#size += bytes.length;
  }

  /** Closes the file (a later write opens it again). */
  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }

  #open(): void {
    this.#file = Deno.openSync(this.#path, { append: true, create: true });
    this.#size = this.#file.statSync().size;
  }

  /** The backup name for a rotation at `t`. */
  backupName(t: Date): string {
    const d = this.config.localtime ? new Date(t.getTime() - t.getTimezoneOffset() * 60_000) : t;
    const stamp = d.toISOString().slice(0, 23).replaceAll(":", "-");
    return `${this.#dir}/${this.#stem}-${stamp}${this.#ext}`;
  }

  #rotate(): void {
    this.close();
    const backup = this.backupName(this.#now());
    Deno.renameSync(this.#path, backup);
    if (this.config.compress) {
      Deno.writeFileSync(`${backup}.gz`, gzip(Deno.readFileSync(backup)));
      Deno.removeSync(backup);
    }
    this.#open();
    this.#prune();
  }

  /** The backups on disk, newest first, with the time in their name. */
  backups(): { path: string; time: number }[] {
    const found: { path: string; time: number }[] = [];
    const prefix = `${this.#stem}-`;
    for (const e of Deno.readDirSync(this.#dir)) {
      if (!e.isFile || !e.name.startsWith(prefix)) continue;
      let rest = e.name.slice(prefix.length);
      if (rest.endsWith(".gz")) rest = rest.slice(0, -3);
      if (!rest.endsWith(this.#ext)) continue;
      const stamp = rest.slice(0, rest.length - this.#ext.length);
      const m = /^(\d{4}-\d\d-\d\d)T(\d\d)-(\d\d)-(\d\d)\.(\d{3})$/.exec(stamp);
      if (m === null) continue;
      const time = Date.parse(`${m[1]}T${m[2]}:${m[3]}:${m[4]}.${m[5]}Z`);
      found.push({ path: `${this.#dir}/${e.name}`, time });
    }
    return found.sort((a, b) => b.time - a.time);
  }

  #prune(): void {
    const { maxbackups, maxage } = this.config;
    if (maxbackups === 0 && maxage === 0) return;
    const now = this.#now().getTime();
    const offset = this.config.localtime ? this.#now().getTimezoneOffset() * 60_000 : 0;
    this.backups().forEach((b, i) => {
      const tooMany = maxbackups > 0 && i >= maxbackups;
      const tooOld = maxage > 0 && b.time + offset < now - maxage * DAY_MS;
      if (tooMany || tooOld) Deno.removeSync(b.path);
    });
  }
}
