/**
 * The state of one HTTP/2 connection, shared by the files that serve it: `inbound.ts` (frames in),
 * `outbound.ts` (responses out), `fallback.ts` (plain HTTP requests) and `connection.ts` (the public
 * `H2Connection`). Besides the fields, it owns what every one of them needs: the output buffer
 * and its flushing (everything produced during one turn of the event loop leaves in a single write),
 * backpressure towards senders and the reader, the stream table, and closing the socket.
 *
 * @module
 */
import { IntMap } from "../../int_map.ts";
import { HIGH_WATER_MARK } from "../grpc.ts";
import { ByteWriter, HpackDecoder, HpackEncoder } from "./hpack.ts";
import { DEFAULT_MAX_FRAME_SIZE, DEFAULT_WINDOW } from "./frames.ts";
import type { H2ServerContext, H2Socket } from "./connection.ts";
import type { H2Stream } from "./stream.ts";

/** `waitDrain` resolves below this (half the high-water mark, so senders do not flap at the mark). */
const LOW_WATER_MARK = HIGH_WATER_MARK / 2;
/** Our receive window for each stream (SETTINGS_INITIAL_WINDOW_SIZE). */
export const STREAM_WINDOW = 1 << 20;
/** Our receive window for the whole connection. */
export const CONNECTION_WINDOW = 16 << 20;
/** Output bytes queued after which reading pauses. */
export const READ_PAUSE_BYTES = 4 << 20;
/** The write buffer kept between writes; bigger ones are dropped after use. */
const KEEP_BUFFER_BYTES = 256 * 1024;

/** An empty byte array, shared. */
export const EMPTY: Uint8Array = new Uint8Array(0);

/** The state of one HTTP/2 connection. */
export class H2Session {
  readonly sock: H2Socket;
  readonly ctx: H2ServerContext;
  readonly peer: string;
  /** The client's certificate, on TLS listeners that asked for one. */
  peerCertificate?: { commonName?: string; raw?: Uint8Array };
  readonly decoder = new HpackDecoder();
  readonly encoder = new HpackEncoder();
  readonly maxStreams: number;
  readonly maxReceive: number;

  /** Frames produced and not yet handed to the socket; `spare` is the buffer being written. */
  out = new ByteWriter(64 * 1024);
  spare = new ByteWriter(64 * 1024);
  /** Scratch buffer for one encoded header block. */
  readonly hbuf = new ByteWriter(512);
  inflight = 0;
  writing = false;
  flushQueued = false;
  readonly #flushNow = (): void => void this.#flush();

  /** The tail of the last read when it ended inside a frame. */
  input: Uint8Array | undefined = undefined;
  /**
   * Reused buffers for a frame split across reads: the partial frame is kept in `carry` and joined with
   * the next chunk in `join`. Frame payloads are only read during `receive` (consumers copy what they
   * keep), so both can be overwritten on the next read; allocating them per read made tens of MB of
   * garbage under load.
   */
  carry: Uint8Array = EMPTY;
  join: Uint8Array = EMPTY;
  prefaceSeen = 0;
  settingsSeen = false;
  /** An open header block: its stream, flags and fragments. */
  blockStream = 0;
  blockEndStream = false;
  blockParts: Uint8Array[] = [];
  blockSize = 0;

  /** By stream ID; an `IntMap`, since one comes and goes per call (see int_map.ts). */
  readonly streams = new IntMap<H2Stream>();
  /** Streams with output waiting for flow-control window. */
  readonly blocked = new Set<H2Stream>();
  /** Drains the blocked streams again once a write is done (they stop at a slice of output per turn). */
  afterWrite: (() => void) | undefined = undefined;
  /** Streams with callers waiting in `waitDrain`. */
  readonly drainWatch = new Set<H2Stream>();
  lastStreamId = 0;

  peerMaxFrame = DEFAULT_MAX_FRAME_SIZE;
  peerInitialWindow = DEFAULT_WINDOW;
  /** What we may still send on the connection (the peer's connection window). */
  sendWindow = DEFAULT_WINDOW;
  /** What the peer may still send us on the connection. */
  recvWindow = DEFAULT_WINDOW;

  /** A graceful shutdown began: new streams are refused, and the socket closes with the last one. */
  draining = false;
  goawayReceived = false;
  dead = false;
  socketClosed = false;
  closeAfterFlush = false;
  #resolveClosed!: () => void;
  /** Settles when the socket is closed. */
  readonly closed: Promise<void> = new Promise((r) => this.#resolveClosed = r);
  resumeReading: (() => void) | undefined = undefined;

  constructor(sock: H2Socket, ctx: H2ServerContext, peer: string) {
    this.sock = sock;
    this.ctx = ctx;
    this.peer = peer;
    this.maxStreams = ctx.options.maxConcurrentStreams ?? 0xffffffff;
    this.maxReceive = ctx.options.maxReceiveMessageBytes;
  }

  /** Bytes queued for the socket and not yet written. */
  get backlog(): number {
    return this.out.len + this.inflight;
  }

  // ---------------------------------------------------------------- streams

  /** Adds a stream to the connection's tables. */
  addStream(s: H2Stream): void {
    this.streams.set(s.id, s);
    this.ctx.options.clientActivity?.streams(1);
  }

  /** Drops a stream from the connection's tables. */
  forget(s: H2Stream): void {
    if (this.streams.get(s.id) !== s) return;
    this.streams.delete(s.id);
    this.ctx.options.clientActivity?.streams(-1);
    this.blocked.delete(s);
    s.pending = undefined;
    s.pendingBytes = 0;
    s.trailers = undefined;
    if (s.drainWaiters !== undefined) {
      for (const r of s.drainWaiters) r();
      s.drainWaiters = undefined;
    }
    this.drainWatch.delete(s);
    if (this.streams.size === 0 && (this.goawayReceived || this.draining)) this.finishAndClose();
  }

  /** Resolves the `waitDrain` callers of streams whose output fell under the low-water mark. */
  notifyDrain(): void {
    if (this.drainWatch.size === 0) return;
    const backlog = this.backlog;
    for (const s of [...this.drainWatch]) {
      if (s.pendingBytes + backlog < LOW_WATER_MARK) {
        this.drainWatch.delete(s);
        const waiters = s.drainWaiters;
        s.drainWaiters = undefined;
        if (waiters !== undefined) { for (const r of waiters) r(); }
      }
    }
  }

  // ---------------------------------------------------------------- closing

  /**
   * Graceful shutdown: new streams are refused (REFUSED_STREAM, which clients may retry elsewhere) and the
   * socket closes once the last running call has ended. No GOAWAY is sent, as etcd 3.4 sends none when it
   * stops: a GOAWAY reaching clients with calls in flight made the nghttp2-based client of Deno's
   * `node:http2` (the etcd3 package on Deno) crash its whole process, while a plain close does not.
   */
  startDraining(): void {
    if (this.dead || this.draining) return;
    this.draining = true;
    if (this.streams.size === 0) this.finishAndClose();
  }

  /** The socket is gone (peer closed, reset, or a read or write error). */
  socketEnded(): void {
    this.dead = true;
    this.cancelAll();
    this.closeSocket();
  }

  /** Cancels every stream and wakes everything waiting on one. */
  cancelAll(): void {
    const streams = this.streams.values(); // a copy (IntMap)
    this.streams.clear();
    if (streams.length > 0) this.ctx.options.clientActivity?.streams(-streams.length);
    this.blocked.clear();
    for (const s of streams) {
      s.call?.cancel();
      if (s.drainWaiters !== undefined) { for (const r of s.drainWaiters) r(); }
      s.drainWaiters = undefined;
    }
    this.drainWatch.clear();
  }

  /** Closes the socket once what is queued has been written. */
  finishAndClose(): void {
    this.closeAfterFlush = true;
    if (!this.writing && this.out.len === 0) this.closeSocket();
    else this.scheduleFlush();
  }

  closeSocket(): void {
    if (this.socketClosed) return;
    this.socketClosed = true;
    this.dead = true;
    try {
      this.sock.close();
    } catch {
      // already closed
    }
    this.resumeReading?.();
    this.resumeReading = undefined;
    this.#resolveClosed();
  }

  // ---------------------------------------------------------------- writing

  /** Writes what is in `out` at the end of this turn of the event loop. */
  scheduleFlush(): void {
    if (this.flushQueued || this.writing) return;
    this.flushQueued = true;
    queueMicrotask(this.#flushNow);
  }

  async #flush(): Promise<void> {
    this.flushQueued = false;
    if (this.writing) return;
    while (this.out.len > 0 && !this.socketClosed) {
      const w = this.out;
      this.out = this.spare;
      this.spare = w;
      this.writing = true;
      this.inflight = w.len;
      try {
        await this.sock.write(w.bytes());
      } catch {
        this.writing = false;
        this.inflight = 0;
        this.socketEnded();
        return;
      }
      this.writing = false;
      this.inflight = 0;
      this.sock.written?.();
      if (w.buf.length > KEEP_BUFFER_BYTES) this.spare = new ByteWriter(64 * 1024);
      else w.reset();
      if (this.blocked.size > 0 && this.sendWindow > 0) this.afterWrite?.();
      this.notifyDrain();
      if (this.resumeReading !== undefined && this.backlog < READ_PAUSE_BYTES) {
        const r = this.resumeReading;
        this.resumeReading = undefined;
        r();
      }
    }
    if (this.closeAfterFlush && this.out.len === 0) this.closeSocket();
  }
}
