/**
 * One server-side HTTP/2 connection (RFC 9113) serving gRPC calls, independent of the socket: bytes
 * come in through `receive`, frames go out through an {@linkcode H2Socket} in batches: everything
 * produced during one turn of the event loop leaves in a single write.
 *
 * Covered: the connection preface, SETTINGS and their ACK, HEADERS + CONTINUATION with HPACK, DATA with
 * flow control both ways (stream and connection windows, WINDOW_UPDATE), PING, RST_STREAM, GOAWAY,
 * PRIORITY (parsed and ignored), the concurrent-stream limit, frame-size limits and padding. Stream
 * errors reset one stream; connection errors send GOAWAY and close this connection only.
 *
 * The work is split by direction: `inbound.ts` handles the frames that come in, `outbound.ts` writes
 * responses within the flow-control windows, `fallback.ts` serves non-gRPC requests, `stream.ts` holds a
 * stream and its gRPC call, and `session.ts` the connection's shared state, its output buffer and
 * flushing. This file is the connection's face: setup, input, and shutdown.
 *
 * @module
 */
import { type GrpcRouter, type ServeOptions, TRANSPORT_CLOSING } from "../grpc.ts";
import { Status } from "../status.ts";
import { DEFAULT_WINDOW, ErrorCode, FrameType, Setting, writeFrameHeader, writeUint32 } from "./frames.ts";
import { receive } from "./inbound.ts";
import { abortStream, drainBlocked } from "./outbound.ts";
import { CONNECTION_WINDOW, H2Session, READ_PAUSE_BYTES, STREAM_WINDOW } from "./session.ts";

/** Where a connection writes. */
export interface H2Socket {
  /** Writes all of `bytes`; the buffer is left alone until the promise settles. */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes the socket. */
  close(): void;
  /** Told after each write has completed. */
  written?(): void;
}

/** What the connection serves, shared by the connections of a listener. */
export interface H2ServerContext {
  readonly router: GrpcRouter;
  readonly options: ServeOptions;
  /** Set when the listener is shutting down: new streams are refused. */
  closing: boolean;
}

/** One server-side HTTP/2 connection. */
export class H2Connection {
  readonly #c: H2Session;
  /** Settles when the socket is closed. */
  readonly closed: Promise<void>;

  constructor(
    sock: H2Socket,
    ctx: H2ServerContext,
    peer: string,
    peerCertificate?: { commonName?: string; raw?: Uint8Array },
  ) {
    const c = this.#c = new H2Session(sock, ctx, peer);
    c.peerCertificate = peerCertificate;
    c.afterWrite = () => drainBlocked(c);
    this.closed = c.closed;
    // Our SETTINGS, then a connection window far above the 64 KiB default.
    const w = c.out;
    const settings: [number, number][] = [
      [Setting.MAX_CONCURRENT_STREAMS, c.maxStreams],
      [Setting.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
    ];
    writeFrameHeader(w, settings.length * 6, FrameType.SETTINGS, 0, 0);
    for (const [id, v] of settings) {
      w.byte(0);
      w.byte(id);
      writeUint32(w, v);
    }
    writeFrameHeader(w, 4, FrameType.WINDOW_UPDATE, 0, 0);
    writeUint32(w, CONNECTION_WINDOW - DEFAULT_WINDOW);
    c.recvWindow = CONNECTION_WINDOW;
    c.scheduleFlush();
  }

  /** Bytes queued for the socket and not yet written. */
  get backlog(): number {
    return this.#c.backlog;
  }

  /** Nothing left to wait for: draining with no stream running, or the socket is gone. */
  get drained(): boolean {
    const c = this.#c;
    return c.dead || (c.draining && c.streams.size === 0);
  }

  /** Resolves when reading may go on (output backlog below its limit); undefined when it may now. */
  readable(): Promise<void> | undefined {
    const c = this.#c;
    if (c.backlog < READ_PAUSE_BYTES || c.socketClosed) return undefined;
    return new Promise((r) => c.resumeReading = r);
  }

  /** Bytes from the socket. The chunk is not kept (the caller may reuse it). */
  receive(chunk: Uint8Array): void {
    receive(this.#c, chunk);
  }

  /** The socket is gone (peer closed, reset, or read error). */
  socketEnded(): void {
    this.#c.socketEnded();
  }

  // ---------------------------------------------------------------- shutdown

  /**
   * Graceful shutdown, step 1: streaming calls end with UNAVAILABLE, new streams are refused, and the
   * connection closes when the running calls have ended (see `H2Session.startDraining`).
   */
  drain(): void {
    const c = this.#c;
    if (c.dead || c.draining) return;
    c.startDraining();
    // `values()` is a copy (IntMap): streams may end while this walks them
    for (const s of c.streams.values()) {
      if (s.call?.streaming) s.call.abortWith(Status.UNAVAILABLE, TRANSPORT_CLOSING);
    }
  }

  /** Graceful shutdown, step 2: whatever still runs ends with UNAVAILABLE; then the socket closes. */
  abortAll(): void {
    const c = this.#c;
    for (const s of c.streams.values()) {
      if (s.call !== undefined) s.call.abortWith(Status.UNAVAILABLE, TRANSPORT_CLOSING);
      else abortStream(c, s, ErrorCode.CANCEL);
    }
    c.finishAndClose();
  }

  /** Closes the socket now, without flushing. */
  destroy(): void {
    const c = this.#c;
    c.dead = true;
    c.cancelAll();
    c.closeSocket();
  }
}
