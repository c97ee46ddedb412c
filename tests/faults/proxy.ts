/**
 * A fault-injecting TCP proxy for tests: it listens on a loopback address, forwards every connection to
 * one target (a member's peer port) and, at run time, per direction — toward the member
 * (`"toMember"`) or back from it (`"fromMember"`) — adds delay with jitter, drops bytes (a blackhole: the
 * connection stays open, what is sent is lost) or closes connections (once, or every N ms). A member that
 * advertises the proxy's address as its peer URL receives every byte of its peers through it.
 *
 * Faults can be limited to the connections of one peer. The proxy cannot tell who dialed by the source
 * address (on loopback every connection comes from 127.0.0.1), so it reads the bytes sent toward the
 * member until `identify` names the other end, e.g. from the `X-Server-From` header every peer request of
 * etcd and etcd-ts carries; the first name found stays the connection's name.
 *
 * Semantics kept close to what TCP can do:
 * - Delay is per chunk read, `delayMs ± jitterMs` (uniform, from a seeded generator), but a chunk never
 *   leaves before the one read before it on the same connection and direction: bytes stay in order.
 * - Bytes are never lost in the middle of a stream that then goes on. Once a direction of a connection
 *   has dropped bytes it drops everything after them, and {@link FaultProxy.heal} closes such
 *   connections, so the ends see a broken connection and dial again, as after a real outage.
 * - A reset closes both sockets at once, without flushing what is queued. (Deno cannot set SO_LINGER, so
 *   the kernel sends FIN, or RST where unread data is left in a socket.)
 * - Buffers are bounded: a direction with `maxQueuedBytes` waiting stops reading until the queue drains,
 *   so a slow or frozen receiver pushes back on its sender as through a real network.
 *
 * Listens on 127.0.0.0/8 only; {@link FaultProxy.close} closes the listener and every connection.
 *
 * ```ts
 * const proxy = FaultProxy.listen({ hostname: "127.0.3.51", target: { hostname: "127.0.3.11", port } });
 * proxy.delay("both", 50, 30);
 * proxy.blackhole("toMember", "8e9e05c52164694d");
 * proxy.heal();
 * await proxy.close();
 * ```
 *
 * @module
 */
import { Prng } from "../sim/prng.ts";

/** Which way bytes go: from the dialing side toward the member, or from the member back. */
export type Direction = "toMember" | "fromMember";

/** What happens to bytes going one way. */
interface Rule {
  delayMs: number;
  jitterMs: number;
  blackhole: boolean;
}

/** How a proxy is set up. */
export interface ProxyOptions {
  /** The address to listen on (127.0.0.0/8 only). */
  hostname: string;
  /** The port; 0 (default) lets the system pick one. */
  port?: number;
  /** Where each connection is forwarded. */
  target: { hostname: string; port: number };
  /** Seeds the jitter; the same seed and the same traffic give the same delays. */
  seed?: number;
  /**
   * Names the dialing side of a connection from the text (latin1) sent toward the member so far: called on
   * each chunk (with the tail of the one before) until it returns a name.
   */
  identify?: (text: string) => string | undefined;
  /** Bytes a direction of one connection may hold before the proxy stops reading it (default 4 MiB). */
  maxQueuedBytes?: number;
}

/** What a proxy did, for a test's report and assertions. */
export interface ProxyStats {
  accepted: number;
  /** Connections closed by {@link FaultProxy.reset} or by a periodic reset. */
  resets: number;
  /** Connections closed by {@link FaultProxy.heal} because they had lost bytes. */
  closedBroken: number;
  forwardedBytes: Record<Direction, number>;
  droppedBytes: Record<Direction, number>;
  /** Chunks that were held back by a delay. */
  delayedChunks: number;
  /** The most bytes one direction of one connection held at once. */
  maxQueuedBytes: number;
}

const CHUNK_BYTES = 64 * 1024;
const DEFAULT_MAX_QUEUED = 4 * 1024 * 1024;
/** How much of the previous chunk `identify` sees again (a header may straddle two reads). */
const IDENTIFY_CARRY = 256;

/** Something to wait for: woken by {@link Wakeup.wake} or after a time, whichever comes first. */
class Wakeup {
  #waiters: (() => void)[] = [];

  wait(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      };
      this.#waiters.push(done);
      if (ms !== undefined) {
        timer = setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== done);
          resolve();
        }, Math.max(0, ms));
      }
    });
  }

  wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

/** One direction of one connection: what was read and waits to be written. */
class Pipe {
  readonly queue: { data: Uint8Array; due: number }[] = [];
  queued = 0;
  /** When the last queued chunk may leave: no chunk leaves before the one ahead of it. */
  lastDue = 0;
  /** The reading side ended (EOF); the writing side is closed for writing once the queue is empty. */
  ended = false;
  /** Bytes were dropped: everything after them is dropped too. */
  broken = false;
  /** Wakes the writer (data queued, end, close) and the reader (queue drained, close). */
  readonly toWriter = new Wakeup();
  readonly toReader = new Wakeup();

  constructor(readonly direction: Direction) {}
}

/** A proxied connection: the dialing side, the member side, and a pipe each way. */
class Link {
  name: string | undefined;
  closed = false;
  readonly pipes: Record<Direction, Pipe> = {
    toMember: new Pipe("toMember"),
    fromMember: new Pipe("fromMember"),
  };
  done: Promise<void> = Promise.resolve();

  constructor(readonly outer: Deno.Conn, readonly inner: Deno.Conn) {}

  get broken(): boolean {
    return this.pipes.toMember.broken || this.pipes.fromMember.broken;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of [this.outer, this.inner]) {
      try {
        c.close();
      } catch {
        // already closed
      }
    }
    for (const p of Object.values(this.pipes)) {
      p.toWriter.wake();
      p.toReader.wake();
    }
  }
}

const latin1 = new TextDecoder("latin1");

/** A TCP proxy in front of one target with faults switched at run time; see the module documentation. */
export class FaultProxy {
  readonly stats: ProxyStats = {
    accepted: 0,
    resets: 0,
    closedBroken: 0,
    forwardedBytes: { toMember: 0, fromMember: 0 },
    droppedBytes: { toMember: 0, fromMember: 0 },
    delayedChunks: 0,
    maxQueuedBytes: 0,
  };
  /** Rules by `direction|name`, `*` for every connection. */
  readonly #rules = new Map<string, Partial<Rule>>();
  readonly #links = new Set<Link>();
  readonly #listener: Deno.TcpListener;
  readonly #prng: Prng;
  readonly #maxQueued: number;
  #resetTimers: ReturnType<typeof setInterval>[] = [];
  #closed = false;
  readonly #accepting: Promise<void>;

  private constructor(listener: Deno.TcpListener, readonly options: ProxyOptions) {
    this.#listener = listener;
    this.#prng = new Prng(options.seed ?? 1);
    this.#maxQueued = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED;
    this.#accepting = this.#accept();
  }

  /** Starts a proxy listening on `options.hostname` (127.0.0.0/8 only). */
  static listen(options: ProxyOptions): FaultProxy {
    if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(options.hostname)) {
      throw new Error(`a test proxy listens on 127.0.0.0/8 only, not ${options.hostname}`);
    }
    const listener = Deno.listen({ hostname: options.hostname, port: options.port ?? 0 });
    return new FaultProxy(listener, options);
  }

  /** The address the proxy listens on. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  /** `http://host:port` of the proxy, for a peer URL. */
  get url(): string {
    return `http://${this.addr.hostname}:${this.addr.port}`;
  }

  /** How many connections are open now, and the names of those identified. */
  connections(): { open: number; names: string[] } {
    const names = [...this.#links].map((l) => l.name).filter((n): n is string => n !== undefined);
    return { open: this.#links.size, names };
  }

  /**
   * Delays each chunk going `direction` ("both": each way) by `delayMs ± jitterMs` (order kept), on every
   * connection or only on those of `name`. Replaces an earlier delay of the same scope.
   */
  delay(direction: Direction | "both", delayMs: number, jitterMs = 0, name?: string): void {
    if (delayMs < 0 || jitterMs < 0) throw new RangeError("delay and jitter must not be negative");
    for (const d of directions(direction)) this.#update(d, name, { delayMs, jitterMs });
  }

  /** Drops every byte going `direction` from now on, on every connection or only on those of `name`. */
  blackhole(direction: Direction | "both", name?: string): void {
    for (const d of directions(direction)) this.#update(d, name, { blackhole: true });
  }

  /** Closes the current connections (only those of `name` when given) at once; returns how many. */
  reset(name?: string): number {
    let n = 0;
    for (const link of this.#links) {
      if (name !== undefined && link.name !== name) continue;
      link.close();
      n++;
    }
    this.stats.resets += n;
    return n;
  }

  /** Closes the current connections (of `name` when given) every `everyMs` until {@link heal}. */
  resetEvery(everyMs: number, name?: string): void {
    if (this.#closed) return;
    this.#resetTimers.push(setInterval(() => this.reset(name), everyMs));
  }

  /**
   * Ends every fault: no more delay, blackhole or periodic reset; connections that lost bytes are closed
   * (their streams have a hole). Bytes already held back by a delay still leave in order.
   */
  heal(): void {
    this.#rules.clear();
    for (const t of this.#resetTimers) clearInterval(t);
    this.#resetTimers = [];
    for (const link of this.#links) {
      if (link.broken) {
        link.close();
        this.stats.closedBroken++;
      }
    }
  }

  /** Stops listening and closes every connection; resolves once all of the proxy's work has ended. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#resetTimers) clearInterval(t);
    this.#resetTimers = [];
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    await this.#accepting;
    const links = [...this.#links];
    for (const link of links) link.close();
    await Promise.all(links.map((l) => l.done));
  }

  #update(direction: Direction, name: string | undefined, change: Partial<Rule>): void {
    const key = `${direction}|${name ?? "*"}`;
    this.#rules.set(key, { ...this.#rules.get(key), ...change });
  }

  /** The rule for bytes going `direction` on a connection named `name`: its own over the general one. */
  #rule(direction: Direction, name: string | undefined): Rule {
    const all = this.#rules.get(`${direction}|*`);
    const own = name === undefined ? undefined : this.#rules.get(`${direction}|${name}`);
    return {
      delayMs: own?.delayMs ?? all?.delayMs ?? 0,
      jitterMs: own?.jitterMs ?? all?.jitterMs ?? 0,
      blackhole: (own?.blackhole ?? false) || (all?.blackhole ?? false),
    };
  }

  async #accept(): Promise<void> {
    const pending = new Set<Promise<void>>();
    try {
      for await (const outer of this.#listener) {
        this.stats.accepted++;
        const p = this.#open(outer).finally(() => pending.delete(p));
        pending.add(p);
      }
    } catch {
      // the listener was closed
    }
    await Promise.all(pending);
  }

  /** Dials the target for a new connection and starts moving bytes both ways. */
  async #open(outer: Deno.Conn): Promise<void> {
    let inner: Deno.Conn;
    try {
      inner = await Deno.connect({ ...this.options.target, transport: "tcp" });
    } catch {
      outer.close(); // the target is down: the dialer sees its connection closed
      return;
    }
    if (this.#closed) {
      outer.close();
      inner.close();
      return;
    }
    const link = new Link(outer, inner);
    this.#links.add(link);
    link.done = Promise.all([
      this.#read(link, link.pipes.toMember, outer),
      this.#write(link, link.pipes.toMember, inner),
      this.#read(link, link.pipes.fromMember, inner),
      this.#write(link, link.pipes.fromMember, outer),
    ]).then(() => {
      link.close();
      this.#links.delete(link);
    });
  }

  /** Reads one direction, dropping or queueing each chunk with its time to leave. */
  async #read(link: Link, pipe: Pipe, from: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(CHUNK_BYTES);
    let carry = "";
    while (!link.closed) {
      if (pipe.queued >= this.#maxQueued) {
        await pipe.toReader.wait();
        continue;
      }
      let n: number | null;
      try {
        n = await from.read(buf);
      } catch {
        link.close();
        return;
      }
      if (n === null) {
        pipe.ended = true;
        pipe.toWriter.wake();
        return;
      }
      if (link.closed) return;
      const data = buf.slice(0, n);
      if (pipe.direction === "toMember" && link.name === undefined && this.options.identify) {
        const text = carry + latin1.decode(data);
        link.name = this.options.identify(text);
        carry = text.slice(-IDENTIFY_CARRY);
      }
      const rule = this.#rule(pipe.direction, link.name);
      if (rule.blackhole || pipe.broken) {
        pipe.broken = true;
        this.stats.droppedBytes[pipe.direction] += n;
        continue;
      }
      const now = performance.now();
      const jitter = rule.jitterMs > 0 ? (this.#prng.float() * 2 - 1) * rule.jitterMs : 0;
      const due = Math.max(now + Math.max(0, rule.delayMs + jitter), pipe.lastDue);
      if (due > now) this.stats.delayedChunks++;
      pipe.lastDue = due;
      pipe.queue.push({ data, due });
      pipe.queued += n;
      this.stats.maxQueuedBytes = Math.max(this.stats.maxQueuedBytes, pipe.queued);
      pipe.toWriter.wake();
    }
  }

  /** Writes one direction's queue in order, each chunk not before its time. */
  async #write(link: Link, pipe: Pipe, to: Deno.Conn): Promise<void> {
    while (!link.closed) {
      const head = pipe.queue[0];
      if (head === undefined) {
        if (pipe.ended) {
          // the sender finished: pass the end on, and end the link once both ways have ended
          try {
            await to.closeWrite();
          } catch {
            link.close();
          }
          const other = link.pipes[pipe.direction === "toMember" ? "fromMember" : "toMember"];
          if (other.ended && other.queue.length === 0) link.close();
          return;
        }
        await pipe.toWriter.wait();
        continue;
      }
      const wait = head.due - performance.now();
      if (wait > 0) {
        await pipe.toWriter.wait(wait);
        continue;
      }
      try {
        for (let off = 0; off < head.data.length;) off += await to.write(head.data.subarray(off));
      } catch {
        link.close();
        return;
      }
      pipe.queue.shift();
      pipe.queued -= head.data.length;
      this.stats.forwardedBytes[pipe.direction] += head.data.length;
      pipe.toReader.wake();
    }
  }
}

function directions(d: Direction | "both"): Direction[] {
  return d === "both" ? ["toMember", "fromMember"] : [d];
}

/**
 * Names a peer connection of etcd or etcd-ts by the `X-Server-From` header (the sender's member ID in
 * hex) of its requests; for {@link ProxyOptions.identify}.
 */
export function peerSender(text: string): string | undefined {
  return /\r\nx-server-from:\s*([0-9a-f]+)\r\n/i.exec(text)?.[1]?.toLowerCase();
}
