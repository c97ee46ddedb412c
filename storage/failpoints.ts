/**
 * Failpoints: storage faults injected on purpose into a running member, as etcd's gofail injects them
 * into a build made for it. They are set by the environment variable `ETCD_TS_FAILPOINTS`, read once at
 * start-up, and arrive as a {@link FileSystem} wrapped around the real one (storage/fs.ts); without the
 * variable the member gets the real file system itself, so a member without failpoints pays nothing, not
 * even a check per call.
 *
 * ## Syntax
 *
 * ```
 * ETCD_TS_FAILPOINTS='wal.fsync=error(EIO)@3;snapshot.write=1*error(ENOSPC);wal.write=torn@70'
 * ```
 *
 * `;`-separated `<point>=[<count>*]<action>[@<nth>]`: the action fires from the `nth` call of the point
 * on (default 1), at most `count` times (default: every call from then on).
 *
 * Points (which file a handle is, is told by its name; storage opens only directories read-only):
 *
 * - `wal.write`, `wal.fsync`: write and fsync/fdatasync of WAL segments (`*.wal`, `*.wal.tmp`). Every
 *   call counts, also those that create a segment: its header, then its zero fill in calls of 1 MiB (64
 *   for the default 64 MiB), and on start-up the rewrite of the last segment. The segments after the
 *   first are zero-filled ahead of time, in the background once the last one is three quarters full,
 *   with an fdatasync every 4 MiB; the cut then writes only the header.
 * - `snapshot.write`, `snapshot.fsync`: write and fsync/fdatasync of snapshot files (`*.snap` and their
 *   temporary files, also those received from the leader). An image is fdatasynced every 8 MiB on the
 *   way, then fsynced.
 * - `dir.fsync`: fsync of a directory (made after creating, renaming or removing files in it).
 * - `rename`: every rename storage makes (a new WAL segment, a new WAL directory, a new snapshot).
 *
 * Actions:
 *
 * - `error(<code>)`: the call fails, as the kernel would fail it, with `EIO`, `ENOSPC` or `EROFS`, and
 *   does nothing.
 * - `delay(<ms>)`: the call waits `ms` milliseconds, then goes on (a slow disk). A synchronous write
 *   blocks the thread for that long, as a slow write(2) does.
 * - `torn` (write points only): the write is cut at the last 512-byte sector boundary inside it (file
 *   offsets), that part reaches the file, and the process is killed with SIGKILL at once. Only a crash
 *   leaves a torn write behind (a process that lives on completes a short write with the next call), and
 *   a crash runs no handler, closes and flushes nothing: SIGKILL is that, not an exit. The cut is at a
 *   sector boundary because disks write sectors whole and the kernel copies a write page by page, so a
 *   tear can only fall there; a write that crosses no boundary leaves nothing.
 * - `crash`: the process is killed with SIGKILL before the call (written data stays in the page cache,
 *   as after any process crash).
 *
 * @module
 */
import type { DirEntry, FileHandle, FileSystem, OpenOptions } from "./fs.ts";

/** The places a failpoint can be set. */
export const FAILPOINT_NAMES = [
  "wal.write",
  "wal.fsync",
  "snapshot.write",
  "snapshot.fsync",
  "dir.fsync",
  "rename",
] as const;

/** One of {@link FAILPOINT_NAMES}. */
export type FailpointName = typeof FAILPOINT_NAMES[number];

/** The error codes `error(...)` can raise, with their number and text on Linux. */
const ERRNO = {
  EIO: { errno: 5, text: "Input/output error" },
  ENOSPC: { errno: 28, text: "No space left on device" },
  EROFS: { errno: 30, text: "Read-only file system" },
} as const;

/** An errno code `error(...)` accepts. */
export type FailpointErrorCode = keyof typeof ERRNO;

/** What happens when a failpoint fires. */
export type FailpointAction =
  | { kind: "error"; code: FailpointErrorCode }
  | { kind: "delay"; ms: number }
  | { kind: "torn" }
  | { kind: "crash" };

/** One parsed failpoint. */
export interface Failpoint {
  name: FailpointName;
  action: FailpointAction;
  /** The first call (1-based) at which the action fires. */
  from: number;
  /** How many times it fires at most (`Infinity`: every call from `from` on). */
  times: number;
}

/** `ETCD_TS_FAILPOINTS` does not parse; the message says what is wrong with which part. */
export class FailpointSpecError extends Error {
  readonly code = "FAILPOINT_SPEC";
  constructor(spec: string, detail: string) {
    super(`invalid value ${JSON.stringify(spec)} for ETCD_TS_FAILPOINTS: ${detail}`);
    this.name = "FailpointSpecError";
  }
}

const WRITE_POINTS: ReadonlySet<FailpointName> = new Set(["wal.write", "snapshot.write"]);
const TERM = /^(?:(\d+)\*)?([a-z]+)(?:\(([^()]*)\))?(?:@(\d+))?$/;
const ACTIONS = "error(EIO|ENOSPC|EROFS), delay(<ms>), torn, crash";

/**
 * Parses an `ETCD_TS_FAILPOINTS` value (see the module doc). Throws {@link FailpointSpecError} for an
 * unknown point, action or error code, a malformed term, or a point set twice. Empty parts are ignored.
 */
export function parseFailpoints(spec: string): Failpoint[] {
  const out: Failpoint[] = [];
  const bad = (detail: string) => new FailpointSpecError(spec, detail);
  for (const raw of spec.split(";")) {
    const part = raw.trim();
    if (part === "") continue;
    const eq = part.indexOf("=");
    if (eq < 0) throw bad(`${JSON.stringify(part)} is not <point>=<action>`);
    const name = part.slice(0, eq).trim();
    const term = part.slice(eq + 1).trim();
    if (!(FAILPOINT_NAMES as readonly string[]).includes(name)) {
      throw bad(`unknown failpoint ${JSON.stringify(name)} (known: ${FAILPOINT_NAMES.join(", ")})`);
    }
    const point = name as FailpointName;
    if (out.some((f) => f.name === point)) throw bad(`failpoint ${point} is set twice`);
    const m = TERM.exec(term);
    if (!m) {
      throw bad(`${point}: malformed term ${JSON.stringify(term)} (expected [<count>*]<action>[@<nth>])`);
    }
    const [, count, verb, arg, nth] = m;
    const times = count === undefined ? Infinity : Number(count);
    const from = nth === undefined ? 1 : Number(nth);
    if (!(times >= 1)) throw bad(`${point}: the count must be at least 1`);
    if (!(from >= 1) || !Number.isSafeInteger(from)) throw bad(`${point}: @<nth> must be at least 1`);
    out.push({ name: point, action: parseAction(point, verb, arg, bad), from, times });
  }
  return out;
}

function parseAction(
  point: FailpointName,
  verb: string,
  arg: string | undefined,
  bad: (detail: string) => FailpointSpecError,
): FailpointAction {
  const noArg = (action: FailpointAction): FailpointAction => {
    if (arg !== undefined) throw bad(`${point}: ${verb} takes no argument`);
    return action;
  };
  switch (verb) {
    case "error": {
      const code = (arg ?? "").trim();
      if (!Object.hasOwn(ERRNO, code)) {
        throw bad(
          `${point}: unknown error code ${JSON.stringify(code)} (known: ${Object.keys(ERRNO).join(", ")})`,
        );
      }
      return { kind: "error", code: code as FailpointErrorCode };
    }
    case "delay": {
      const ms = Number((arg ?? "").trim());
      if (arg === undefined || !/^\s*\d+\s*$/.test(arg) || !Number.isSafeInteger(ms)) {
        throw bad(`${point}: delay needs a whole number of milliseconds, as delay(200)`);
      }
      return { kind: "delay", ms };
    }
    case "torn":
      if (!WRITE_POINTS.has(point)) throw bad(`${point}: torn applies to write points only`);
      return noArg({ kind: "torn" });
    case "crash":
      return noArg({ kind: "crash" });
    default:
      throw bad(`${point}: unknown action ${JSON.stringify(verb)} (known: ${ACTIONS})`);
  }
}

/** Renders failpoints back in the syntax {@link parseFailpoints} reads (for logs). */
export function formatFailpoints(points: Failpoint[]): string {
  return points.map((f) => {
    const a = f.action;
    const action = a.kind === "error" ? `error(${a.code})` : a.kind === "delay" ? `delay(${a.ms})` : a.kind;
    return `${f.name}=${f.times === Infinity ? "" : `${f.times}*`}${action}${
      f.from === 1 ? "" : `@${f.from}`
    }`;
  }).join(";");
}

/** Replaceable effects of {@link withFailpoints}, for tests of the wrapper itself. */
export interface FailpointEffects {
  /** Ends the process as a crash does. Default: SIGKILL to itself. */
  crash?: () => never;
  /** Waits `ms` (asynchronous calls). Default: a timer. */
  sleep?: (ms: number) => Promise<void>;
  /** Blocks the thread `ms` (synchronous calls). Default: `Atomics.wait`. */
  block?: (ms: number) => void;
}

/** The sector size a torn write is cut at. */
const SECTOR = 512;

function crashNow(): never {
  try {
    Deno.kill(Deno.pid, "SIGKILL");
  } catch {
    // not allowed to signal: exit as abruptly as the runtime lets us
  }
  Deno.exit(137);
}

function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Whose file a handle is, by its name and how it was opened. */
type FileKind = "wal" | "snapshot" | "dir";

function kindOf(path: string, options: OpenOptions): FileKind | undefined {
  if (/\.wal(\.tmp)?$/.test(path)) return "wal";
  if (/\.snap(\.\d+)?(\.tmp)?$/.test(path)) return "snapshot";
  // storage opens only directories read-only (to fsync or lock them)
  if (!options.write && !options.create && !options.truncate) return "dir";
  return undefined;
}

/** The counters of the points that are set. */
class Points {
  readonly #points = new Map<FailpointName, { f: Failpoint; calls: number; fired: number }>();
  readonly crash: () => never;
  readonly sleep: (ms: number) => Promise<void>;
  readonly block: (ms: number) => void;

  constructor(points: Failpoint[], effects: FailpointEffects) {
    for (const f of points) this.#points.set(f.name, { f, calls: 0, fired: 0 });
    this.crash = effects.crash ?? crashNow;
    this.sleep = effects.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.block = effects.block ?? blockFor;
  }

  has(name: FailpointName): boolean {
    return this.#points.has(name);
  }

  /** Counts a call of `name`; returns the action if it fires on this call. */
  hit(name: FailpointName): FailpointAction | undefined {
    const p = this.#points.get(name);
    if (p === undefined) return undefined;
    p.calls++;
    if (p.calls < p.f.from || p.fired >= p.f.times) return undefined;
    p.fired++;
    return p.f.action;
  }

  /** Carries out a fired action before an asynchronous call (torn is the write's own business). */
  async before(action: FailpointAction | undefined, point: FailpointName, op: string, path: string) {
    if (action === undefined) return;
    if (action.kind === "error") throw failure(action.code, point, op, path);
    if (action.kind === "delay") await this.sleep(action.ms);
    if (action.kind === "crash") this.crash();
  }

  /** The same before a synchronous call. */
  beforeSync(action: FailpointAction | undefined, point: FailpointName, op: string, path: string): void {
    if (action === undefined) return;
    if (action.kind === "error") throw failure(action.code, point, op, path);
    if (action.kind === "delay") this.block(action.ms);
    if (action.kind === "crash") this.crash();
  }
}

/** An error shaped like the runtime's own for that errno (message and `code`). */
function failure(code: FailpointErrorCode, point: FailpointName, op: string, path: string): Error {
  const { errno, text } = ERRNO[code];
  const err = new Error(`${text} (os error ${errno}): ${op} '${path}' (failpoint ${point})`);
  Object.defineProperty(err, "code", { value: code, enumerable: true });
  return err;
}

/** How many bytes of a write at file offset `pos` reach the file when it is torn. */
function tornLength(pos: number, len: number): number {
  const cut = Math.floor((pos + len - 1) / SECTOR) * SECTOR - pos;
  return Math.max(0, cut);
}

/** A file handle whose writes and fsyncs pass through the failpoints of its kind. */
class FaultyFile implements FileHandle {
  readonly #inner: FileHandle;
  readonly #points: Points;
  readonly #path: string;
  readonly #write: FailpointName | undefined;
  readonly #fsync: FailpointName;

  constructor(inner: FileHandle, kind: FileKind, path: string, points: Points) {
    this.#inner = inner;
    this.#points = points;
    this.#path = path;
    this.#write = kind === "dir" ? undefined : `${kind}.write`;
    this.#fsync = kind === "dir" ? "dir.fsync" : `${kind}.fsync`;
    const syncDataSync = inner.syncDataSync?.bind(inner);
    if (syncDataSync !== undefined) {
      this.syncDataSync = () => {
        points.beforeSync(points.hit(this.#fsync), this.#fsync, "fdatasync", path);
        syncDataSync();
      };
    }
  }

  /** fdatasync on this thread, where the file system below has it. */
  readonly syncDataSync?: () => void;

  async write(p: Uint8Array): Promise<number> {
    const point = this.#write;
    const action = point === undefined ? undefined : this.#points.hit(point);
    if (action?.kind === "torn") {
      const pos = await this.#inner.seek(0, Deno.SeekMode.Current);
      const n = tornLength(pos, p.length);
      let done = 0;
      while (done < n) done += await this.#inner.write(p.subarray(done, n));
      this.#points.crash();
    }
    await this.#points.before(action, point!, "write", this.#path);
    return await this.#inner.write(p);
  }

  writeSync(p: Uint8Array): number {
    const point = this.#write;
    const action = point === undefined ? undefined : this.#points.hit(point);
    if (action?.kind === "torn") {
      const pos = this.#inner.seekSync(0, Deno.SeekMode.Current);
      const n = tornLength(pos, p.length);
      let done = 0;
      while (done < n) done += this.#inner.writeSync(p.subarray(done, n));
      this.#points.crash();
    }
    this.#points.beforeSync(action, point!, "write", this.#path);
    return this.#inner.writeSync(p);
  }

  async sync(): Promise<void> {
    await this.#points.before(this.#points.hit(this.#fsync), this.#fsync, "fsync", this.#path);
    await this.#inner.sync();
  }

  async syncData(): Promise<void> {
    await this.#points.before(this.#points.hit(this.#fsync), this.#fsync, "fdatasync", this.#path);
    await this.#inner.syncData();
  }

  seek(offset: number, whence: Deno.SeekMode): Promise<number> {
    return this.#inner.seek(offset, whence);
  }

  truncate(len?: number): Promise<void> {
    return this.#inner.truncate(len);
  }

  tryLock(exclusive?: boolean): Promise<boolean> {
    return this.#inner.tryLock(exclusive);
  }

  readSync(p: Uint8Array): number | null {
    return this.#inner.readSync(p);
  }

  seekSync(offset: number, whence: Deno.SeekMode): number {
    return this.#inner.seekSync(offset, whence);
  }

  truncateSync(len?: number): void {
    this.#inner.truncateSync(len);
  }

  close(): void {
    this.#inner.close();
  }
}

/**
 * `inner` with `points` set (see the module doc). Handles of files no set point concerns are `inner`'s
 * own, unwrapped; without points this returns `inner` itself.
 */
export function withFailpoints(
  inner: FileSystem,
  points: Failpoint[],
  effects: FailpointEffects = {},
): FileSystem {
  if (points.length === 0) return inner;
  const set = new Points(points, effects);
  const concerned = (kind: FileKind | undefined): kind is FileKind =>
    kind !== undefined &&
    (kind === "dir" ? set.has("dir.fsync") : set.has(`${kind}.write`) || set.has(`${kind}.fsync`));
  const wrap = (h: FileHandle, path: string, options: OpenOptions): FileHandle => {
    const kind = kindOf(path, options);
    return concerned(kind) ? new FaultyFile(h, kind, path, set) : h;
  };
  return {
    open: async (path, options) => wrap(await inner.open(path, options), path, options),
    openSync: (path, options) => wrap(inner.openSync(path, options), path, options),
    readFile: (path) => inner.readFile(path),
    readDir: (path): AsyncIterable<DirEntry> => inner.readDir(path),
    mkdir: (path, options) => inner.mkdir(path, options),
    remove: (path, options) => inner.remove(path, options),
    removeSync: (path) => inner.removeSync(path),
    rename: async (from, to) => {
      await set.before(set.hit("rename"), "rename", "rename", from);
      await inner.rename(from, to);
    },
  };
}
