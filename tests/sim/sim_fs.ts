/**
 * A simulated disk for whole-member simulations: an in-memory file system behind storage's
 * {@link FileSystem} interface whose I/O takes virtual time on the simulator's {@link EventQueue} and
 * whose faults come from the simulator's seeded {@link Prng}.
 *
 * What it models, and how strictly:
 *
 * - Page cache and durability. A write is visible to reads as soon as it completes, but durable only
 *   once an fsync/fdatasync of its file succeeded. {@link SimDisk.crash} keeps, per file, the durable
 *   content plus a random prefix of the writes since the last sync; the first write not kept in full may
 *   survive in part, as a prefix of whole 512-byte sectors (a torn write).
 * - Directory entries. Creations, removals and renames go to a metadata journal, applied at once to
 *   what the process sees, but durable only once a directory they touch is synced (which commits the
 *   journal up to the last operation on that directory, as ext4's ordered journal would). A crash keeps a
 *   random prefix of the journal beyond that. An fsync of a file does not make its name durable.
 * - Failing fsync. An injected failure rejects the call, and the writes it should have flushed are
 *   never made durable, even by a later successful fsync (Linux marks the pages clean after reporting
 *   the error): code that retries an fsync and carries on would lose data here, as on a real disk.
 * - Time. Every asynchronous call completes after a random virtual delay (slow disks: long ones); a
 *   write may be short (writes fewer bytes than asked). Synchronous calls take no time. I/O started
 *   before a crash never completes.
 * - A lying disk ({@link DiskFaults.lyingFsync}): fsync reports success and makes nothing durable. Used
 *   only to prove that the simulation's checks catch lost acknowledged writes.
 *
 * Paths are "/"-separated and normalised ("." and ".." resolved); there is no permission model.
 *
 * @module
 */
import type { DirEntry, FileHandle, FileSystem, OpenOptions } from "../../storage/fs.ts";
import type { EventQueue } from "./network.ts";
import type { Prng } from "./prng.ts";

/** How the disk misbehaves; may be changed while a simulation runs. */
export interface DiskFaults {
  /** Virtual ms of an ordinary call, uniform in [minDelay, maxDelay]. */
  minDelay: number;
  maxDelay: number;
  /** Virtual ms of an fsync, uniform in [minSyncDelay, maxSyncDelay]. */
  minSyncDelay: number;
  maxSyncDelay: number;
  /** Probability that a call takes up to `slowDelay` more (a slow or busy disk). */
  slowRate: number;
  slowDelay: number;
  /** Probability that an fsync (of a file or a directory) fails. */
  syncFailRate: number;
  /** Probability that a write writes only part of what it was given. */
  shortWriteRate: number;
  /** Probability that a crash tears the first write it does not keep (keeps some of its sectors). */
  tornWriteRate: number;
  /** fsync succeeds without making anything durable (a sabotage: a disk that lies). */
  lyingFsync: boolean;
}

/** A well-behaved, fast disk. */
export const GOOD_DISK: DiskFaults = {
  minDelay: 0,
  maxDelay: 1,
  minSyncDelay: 1,
  maxSyncDelay: 3,
  slowRate: 0,
  slowDelay: 0,
  syncFailRate: 0,
  shortWriteRate: 0,
  tornWriteRate: 0.5,
  lyingFsync: false,
};

/** Counters for a run's report. */
export interface DiskStats {
  writes: number;
  syncs: number;
  syncFailures: number;
  crashes: number;
  /** Writes a crash dropped or tore (not durable when it came). */
  writesLost: number;
  tornWrites: number;
  /** Metadata operations a crash dropped. */
  metadataLost: number;
}

const SECTOR = 512;

/** An injected I/O error (EIO). */
export class SimIoError extends Error {
  constructor(what: string) {
    super(`EIO: simulated ${what} failure`);
    this.name = "SimIoError";
  }
}

/** Whether `err`, or an error it was caused by, is an injected I/O error. */
export function isSimIoError(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) if (e instanceof SimIoError) return true;
  return false;
}

/** One process using the disk: when it dies, its pending calls never return and its locks go. */
class Process {
  alive = true;
  readonly handles = new Set<SimHandle>();
}

/** A process's view of a {@link SimDisk}. */
export interface ProcessFs {
  /** The file system as this process sees it. */
  fs: FileSystem;
  /**
   * The process dies (the disk and its page cache stay): its pending calls never return, its files
   * close, its locks are released. Unsynced data stays in the page cache, and a later crash of the
   * disk may still lose it.
   */
  kill(): void;
}

/** A change to a file since its last successful sync. */
type FileOp = { kind: "write"; at: number; bytes: Uint8Array } | { kind: "truncate"; size: number };

class Inode {
  /** What reads see. */
  data = new Uint8Array(0);
  size = 0;
  /** What survives a crash for sure. */
  durable = new Uint8Array(0);
  durableSize = 0;
  /** Changes since the last sync, in order; a crash keeps a prefix of them. */
  pending: FileOp[] = [];
}

type Node = { kind: "file"; inode: Inode } | { kind: "dir" };

/** A namespace change, journaled until a directory sync makes it durable. */
type NsOp =
  | { kind: "link"; path: string; node: Node }
  | { kind: "unlink"; path: string }
  | { kind: "rename"; from: string; to: string };

function normalize(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return "/" + out.join("/");
}

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

function isUnder(path: string, dir: string): boolean {
  return dir === "/" ? path !== "/" : path.startsWith(dir + "/");
}

function setBytes(target: { buf: Uint8Array; size: number }, at: number, bytes: Uint8Array): void {
  const end = at + bytes.length;
  if (end > target.buf.length) {
    const grown = new Uint8Array(Math.max(end, target.buf.length * 2, 4096));
    grown.set(target.buf.subarray(0, target.size));
    target.buf = grown;
  }
  if (at > target.size) target.buf.fill(0, target.size, at);
  target.buf.set(bytes, at);
  if (end > target.size) target.size = end;
}

function truncateBytes(target: { buf: Uint8Array; size: number }, size: number): void {
  if (size > target.buf.length) {
    const grown = new Uint8Array(size);
    grown.set(target.buf.subarray(0, target.size));
    target.buf = grown;
  }
  if (size > target.size) target.buf.fill(0, target.size, size);
  target.size = size;
}

function applyOp(target: { buf: Uint8Array; size: number }, op: FileOp): void {
  if (op.kind === "write") setBytes(target, op.at, op.bytes);
  else truncateBytes(target, op.size);
}

function applyNsOp(ns: Map<string, Node>, op: NsOp): void {
  if (op.kind === "link") {
    ns.set(op.path, op.node);
  } else if (op.kind === "unlink") {
    for (const p of [...ns.keys()]) if (p === op.path || isUnder(p, op.path)) ns.delete(p);
  } else {
    const moved: [string, Node][] = [];
    for (const [p, n] of ns) {
      if (p === op.from || isUnder(p, op.from)) moved.push([op.to + p.slice(op.from.length), n]);
    }
    for (const p of [...ns.keys()]) {
      if (p === op.from || isUnder(p, op.from) || p === op.to || isUnder(p, op.to)) ns.delete(p);
    }
    for (const [p, n] of moved) ns.set(p, n);
  }
}

function touches(op: NsOp, dir: string): boolean {
  if (op.kind === "rename") return parentOf(op.from) === dir || parentOf(op.to) === dir;
  return parentOf(op.path) === dir;
}

const notFound = (what: string, path: string) => new Deno.errors.NotFound(`${what} '${path}': no such file`);

/**
 * One member's disk. Its {@link SimDisk.fs} is what the member's storage is given; the simulator
 * crashes it with {@link SimDisk.crash}.
 */
export class SimDisk {
  faults: DiskFaults;
  readonly stats: DiskStats = {
    writes: 0,
    syncs: 0,
    syncFailures: 0,
    crashes: 0,
    writesLost: 0,
    tornWrites: 0,
    metadataLost: 0,
  };
  /** What the process sees. */
  private ns = new Map<string, Node>([["/", { kind: "dir" }]]);
  /** What a crash starts from. */
  private durableNs = new Map<string, Node>([["/", { kind: "dir" }]]);
  private journal: NsOp[] = [];
  /** Journal operations (a prefix) that are durable. */
  private journalDurable = 0;
  /** Bumped by every crash: I/O of an earlier epoch never completes. */
  private epoch = 0;
  private readonly locks = new Map<string, SimHandle>();
  private readonly inodes = new Set<Inode>();
  private processes = new Set<Process>();
  private armed: { left: number; fire: () => void } | undefined;
  #fs: FileSystem;

  constructor(
    private readonly queue: EventQueue,
    private readonly rng: Prng,
    faults: DiskFaults = GOOD_DISK,
  ) {
    this.faults = { ...faults };
    this.#fs = this.openProcess().fs;
  }

  /** The file system over this disk for a process that lives until the next crash (then a new one). */
  get fs(): FileSystem {
    return this.#fs;
  }

  /** A new process using the disk (see {@link ProcessFs}). */
  openProcess(): ProcessFs {
    const proc = new Process();
    this.processes.add(proc);
    return {
      fs: this.makeFs(proc),
      kill: () => this.kill(proc),
    };
  }

  private kill(proc: Process): void {
    proc.alive = false;
    for (const h of proc.handles) h.close();
    proc.handles.clear();
    this.processes.delete(proc);
  }

  /**
   * Runs `op` after a virtual delay; its result settles the promise. If the disk crashes meanwhile, the
   * operation never happens and the promise never settles (the process that waited is gone).
   */
  io<T>(proc: Process, op: () => T, sync = false): Promise<T> {
    const f = this.faults;
    let delay = sync
      ? this.rng.range(f.minSyncDelay, f.maxSyncDelay)
      : this.rng.range(f.minDelay, f.maxDelay);
    if (this.rng.chance(f.slowRate)) delay += this.rng.range(0, f.slowDelay);
    const epoch = this.epoch;
    return new Promise<T>((resolve, reject) => {
      this.queue.after(delay, () => {
        if (this.epoch !== epoch || !proc.alive) return;
        try {
          resolve(op());
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  /** Whether `handle` belongs to the current epoch (it was opened since the last crash). */
  isLive(epoch: number): boolean {
    return this.epoch === epoch;
  }

  /**
   * Power loss: everything not durable is lost, except a random prefix of it (see the module doc).
   * Pending I/O never completes, handles and locks die.
   */
  crash(): void {
    this.stats.crashes++;
    this.epoch++;
    this.armed = undefined;
    for (const proc of [...this.processes]) this.kill(proc);
    this.#fs = this.openProcess().fs;
    this.locks.clear();
    // the namespace: durable journal prefix, plus a random further prefix
    const keep = this.rng.range(this.journalDurable, this.journal.length);
    this.stats.metadataLost += this.journal.length - keep;
    // durableNs holds the durable prefix already: a rename applied twice would unlink its target
    const ns = new Map(this.durableNs);
    for (let i = this.journalDurable; i < keep; i++) applyNsOp(ns, this.journal[i]);
    this.ns = ns;
    this.durableNs = new Map(ns);
    this.journal = [];
    this.journalDurable = 0;
    // file contents: durable bytes, plus a random prefix of the unsynced changes (the next one torn)
    const live = new Set<Inode>();
    for (const n of ns.values()) if (n.kind === "file") live.add(n.inode);
    for (const inode of this.inodes) {
      if (!live.has(inode)) continue;
      const t = { buf: inode.durable.slice(0, Math.max(inode.durableSize, 1)), size: inode.durableSize };
      const ops = inode.pending;
      const kept = this.rng.range(0, ops.length);
      for (let i = 0; i < kept; i++) applyOp(t, ops[i]);
      this.stats.writesLost += ops.length - kept;
      const next = ops[kept];
      if (next?.kind === "write" && this.rng.chance(this.faults.tornWriteRate)) {
        const first = Math.floor(next.at / SECTOR) * SECTOR + SECTOR;
        const cuts: number[] = [];
        for (let c = first; c < next.at + next.bytes.length; c += SECTOR) cuts.push(c);
        if (cuts.length > 0) {
          const cut = this.rng.pick(cuts);
          setBytes(t, next.at, next.bytes.subarray(0, cut - next.at));
          this.stats.tornWrites++;
        }
      }
      inode.data = t.buf.slice(0, Math.max(t.size, 1));
      inode.size = t.size;
      inode.durable = inode.data.slice();
      inode.durableSize = t.size;
      inode.pending = [];
    }
    this.inodes.clear();
    for (const inode of live) this.inodes.add(inode);
  }

  /**
   * Calls `fire` (as an event of its own, at once) when the `writes`-th write from now has completed:
   * the simulator cuts the power there, while that write is not yet synced.
   */
  armCrash(writes: number, fire: () => void): void {
    this.armed = { left: Math.max(1, writes), fire };
  }

  /** The bytes a read of `path` would return now (for tests). */
  contents(path: string): Uint8Array | undefined {
    const n = this.ns.get(normalize(path));
    return n?.kind === "file" ? n.inode.data.slice(0, n.inode.size) : undefined;
  }

  // ---- operations, used by the handles and the FileSystem ------------------------------------------

  /** @internal A draw from the disk's random stream. */
  chance(p: number): boolean {
    return this.rng.chance(p);
  }

  /** @internal A draw from the disk's random stream. */
  int(n: number): number {
    return this.rng.int(n);
  }

  /** @internal */
  nsChange(op: NsOp): void {
    applyNsOp(this.ns, op);
    this.journal.push(op);
  }

  /** @internal */
  fileChange(inode: Inode, op: FileOp): void {
    const t = { buf: inode.data, size: inode.size };
    applyOp(t, op);
    inode.data = t.buf;
    inode.size = t.size;
    inode.pending.push(op);
    if (op.kind !== "write") return;
    this.stats.writes++;
    const armed = this.armed;
    if (armed && --armed.left === 0) {
      this.armed = undefined;
      this.queue.after(0, armed.fire);
    }
  }

  /** @internal Makes a file's changes durable, or (on an injected failure) loses them for good. */
  syncFile(inode: Inode): void {
    this.stats.syncs++;
    if (this.rng.chance(this.faults.syncFailRate)) {
      this.stats.syncFailures++;
      inode.pending = []; // the pages are marked clean: these writes will never reach the disk
      throw new SimIoError("fsync");
    }
    if (this.faults.lyingFsync) return;
    const d = { buf: inode.durable, size: inode.durableSize };
    for (const op of inode.pending) applyOp(d, op);
    inode.durable = d.buf;
    inode.durableSize = d.size;
    inode.pending = [];
  }

  /** @internal Makes the journal durable up to the last operation on `dir`. */
  syncDirectory(dir: string): void {
    this.stats.syncs++;
    if (this.rng.chance(this.faults.syncFailRate)) {
      this.stats.syncFailures++;
      throw new SimIoError("directory fsync");
    }
    if (this.faults.lyingFsync) return;
    let upTo = this.journalDurable;
    for (let i = this.journalDurable; i < this.journal.length; i++) {
      if (touches(this.journal[i], dir)) upTo = i + 1;
    }
    for (let i = this.journalDurable; i < upTo; i++) applyNsOp(this.durableNs, this.journal[i]);
    this.journalDurable = upTo;
    if (upTo === this.journal.length) {
      this.journal = [];
      this.journalDurable = 0;
    }
  }

  /** @internal */
  tryLock(path: string, handle: SimHandle): boolean {
    const holder = this.locks.get(path);
    if (holder && holder !== handle) return false;
    this.locks.set(path, handle);
    return true;
  }

  /** @internal */
  unlock(path: string, handle: SimHandle): void {
    if (this.locks.get(path) === handle) this.locks.delete(path);
  }

  private openNow(proc: Process, path: string, o: OpenOptions): SimHandle {
    const p = normalize(path);
    let n = this.ns.get(p);
    if (n === undefined) {
      if (!o.create) throw notFound("open", path);
      const parent = this.ns.get(parentOf(p));
      if (parent?.kind !== "dir") throw notFound("open", path);
      const inode = new Inode();
      this.inodes.add(inode);
      n = { kind: "file", inode };
      this.nsChange({ kind: "link", path: p, node: n });
    } else if (n.kind === "file" && o.truncate && o.write) {
      this.fileChange(n.inode, { kind: "truncate", size: 0 });
    } else if (n.kind === "dir" && o.write) {
      throw new Deno.errors.IsADirectory(`open '${path}': is a directory`);
    }
    const handle = new SimHandle(this, proc, p, n.kind === "file" ? n.inode : undefined, this.epoch);
    proc.handles.add(handle);
    return handle;
  }

  private mkdirNow(path: string, recursive: boolean): void {
    const p = normalize(path);
    const n = this.ns.get(p);
    if (n !== undefined) {
      if (recursive && n.kind === "dir") return;
      throw new Deno.errors.AlreadyExists(`mkdir '${path}': exists`);
    }
    const parent = this.ns.get(parentOf(p));
    if (parent === undefined) {
      if (!recursive) throw notFound("mkdir", path);
      this.mkdirNow(parentOf(p), true);
    } else if (parent.kind !== "dir") {
      throw new Deno.errors.NotADirectory(`mkdir '${path}'`);
    }
    this.nsChange({ kind: "link", path: p, node: { kind: "dir" } });
  }

  private removeNow(path: string, recursive: boolean): void {
    const p = normalize(path);
    const n = this.ns.get(p);
    if (n === undefined) throw notFound("remove", path);
    if (n.kind === "dir" && !recursive) {
      for (const q of this.ns.keys()) {
        if (isUnder(q, p)) throw new Error(`ENOTEMPTY: remove '${path}'`);
      }
    }
    this.nsChange({ kind: "unlink", path: p });
  }

  private renameNow(from: string, to: string): void {
    const f = normalize(from);
    const t = normalize(to);
    const n = this.ns.get(f);
    if (n === undefined) throw notFound("rename", from);
    if (this.ns.get(parentOf(t))?.kind !== "dir") throw notFound("rename", to);
    const existing = this.ns.get(t);
    if (existing?.kind === "dir") {
      for (const q of this.ns.keys()) {
        if (isUnder(q, t)) throw new Error(`ENOTEMPTY: rename to '${to}'`);
      }
    }
    this.nsChange({ kind: "rename", from: f, to: t });
  }

  private listNow(path: string): DirEntry[] {
    const p = normalize(path);
    const n = this.ns.get(p);
    if (n === undefined) throw notFound("readDir", path);
    if (n.kind !== "dir") throw new Deno.errors.NotADirectory(`readDir '${path}'`);
    const out: DirEntry[] = [];
    for (const [q, m] of this.ns) {
      if (q !== p && parentOf(q) === p) {
        out.push({ name: baseName(q), isFile: m.kind === "file", isDirectory: m.kind === "dir" });
      }
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private makeFs(proc: Process): FileSystem {
    // deno-lint-ignore no-this-alias
    const disk = this;
    return {
      open: (path, o) => this.io(proc, () => this.openNow(proc, path, o)),
      openSync: (path, o) => this.openNow(proc, path, o),
      readFile: (path) =>
        this.io(proc, () => {
          const n = this.ns.get(normalize(path));
          if (n === undefined) throw notFound("readFile", path);
          if (n.kind !== "file") throw new Deno.errors.IsADirectory(`readFile '${path}'`);
          return n.inode.data.slice(0, n.inode.size);
        }),
      readDir: (path) => ({
        async *[Symbol.asyncIterator]() {
          const entries = await disk.io(proc, () => disk.listNow(path));
          for (const e of entries) yield e;
        },
      }),
      mkdir: (path, o) => this.io(proc, () => this.mkdirNow(path, o?.recursive ?? false)),
      remove: (path, o) => this.io(proc, () => this.removeNow(path, o?.recursive ?? false)),
      removeSync: (path) => this.removeNow(path, false),
      rename: (from, to) => this.io(proc, () => this.renameNow(from, to)),
    };
  }
}

/** An open file or directory of a {@link SimDisk}. */
class SimHandle implements FileHandle {
  private pos = 0;
  private closed = false;

  constructor(
    private readonly disk: SimDisk,
    private readonly proc: Process,
    private readonly path: string,
    private readonly inode: Inode | undefined,
    private readonly epoch: number,
  ) {}

  private file(): Inode {
    if (this.closed) throw new Deno.errors.BadResource("file closed");
    if (!this.disk.isLive(this.epoch)) throw new Deno.errors.BadResource("file of a crashed process");
    if (!this.inode) throw new Deno.errors.IsADirectory(this.path);
    return this.inode;
  }

  private check(): void {
    if (this.closed) throw new Deno.errors.BadResource("file closed");
  }

  write(p: Uint8Array): Promise<number> {
    this.file();
    const f = this.disk.faults;
    // a short write: fewer bytes than asked, as write(2) may do
    const n = p.length > 1 && f.shortWriteRate > 0 && this.disk.chance(f.shortWriteRate)
      ? 1 + this.disk.int(p.length - 1)
      : p.length;
    const bytes = p.slice(0, n); // the caller may reuse its buffer once the call returns
    return this.disk.io(this.proc, () => {
      const inode = this.file();
      this.disk.fileChange(inode, { kind: "write", at: this.pos, bytes });
      this.pos += n;
      return n;
    });
  }

  writeSync(p: Uint8Array): number {
    const inode = this.file();
    this.disk.fileChange(inode, { kind: "write", at: this.pos, bytes: p.slice() });
    this.pos += p.length;
    return p.length;
  }

  readSync(p: Uint8Array): number | null {
    const inode = this.file();
    if (this.pos >= inode.size) return null;
    const n = Math.min(p.length, inode.size - this.pos);
    p.set(inode.data.subarray(this.pos, this.pos + n));
    this.pos += n;
    return n;
  }

  seek(offset: number, whence: Deno.SeekMode): Promise<number> {
    this.file();
    return this.disk.io(this.proc, () => this.seekSync(offset, whence));
  }

  seekSync(offset: number, whence: Deno.SeekMode): number {
    const inode = this.file();
    const base = whence === Deno.SeekMode.Start
      ? 0
      : whence === Deno.SeekMode.Current
      ? this.pos
      : inode.size;
    this.pos = base + offset;
    return this.pos;
  }

  sync(): Promise<void> {
    this.check();
    return this.disk.io(this.proc, () => {
      this.check();
      if (this.inode) this.disk.syncFile(this.inode);
      else this.disk.syncDirectory(this.path);
    }, true);
  }

  syncData(): Promise<void> {
    return this.sync();
  }

  truncate(len = 0): Promise<void> {
    this.file();
    return this.disk.io(this.proc, () => this.truncateSync(len));
  }

  truncateSync(len = 0): void {
    this.disk.fileChange(this.file(), { kind: "truncate", size: len });
  }

  tryLock(_exclusive?: boolean): Promise<boolean> {
    this.check();
    return this.disk.io(this.proc, () => this.disk.tryLock(this.path, this));
  }

  close(): void {
    this.check();
    this.closed = true;
    this.proc.handles.delete(this);
    this.disk.unlock(this.path, this);
  }
}
