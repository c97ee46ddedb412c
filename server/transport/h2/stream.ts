/**
 * One HTTP/2 stream of a connection ({@linkcode H2Stream}: flow-control state and output queue) and the
 * gRPC call served on it ({@linkcode H2Call}, which writes through `outbound.ts`).
 *
 * @module
 */
import { GrpcCall, type MessageParts } from "../grpc.ts";
import type { StatusCode } from "../status.ts";
import type { FallbackRequest } from "./fallback.ts";
import { sendMessage, sendStatus, sendUnary, waitDrain } from "./outbound.ts";
import { type H2Session, STREAM_WINDOW } from "./session.ts";

const GRPC_RESPONSE = [":status", "200", "content-type", "application/grpc"];

/** One HTTP/2 stream: flow-control state and output queue, and what serves it. */
export class H2Stream {
  /** What we may still send (the peer's window for this stream). */
  sendWindow: number;
  /** What the peer may still send us. */
  recvWindow = STREAM_WINDOW;
  remoteEnded = false;
  headersSent = false;
  /** Output waiting for flow-control window: buffers and the read offset in the first. */
  pending: Uint8Array[] | undefined = undefined;
  pendingOffset = 0;
  pendingBytes = 0;
  /** Header list to send once `pending` drains (trailers), and whether to end with an empty DATA. */
  trailers: string[] | undefined = undefined;
  trailersKey: string | undefined = undefined;
  endAfterData = false;
  drainWaiters: (() => void)[] | undefined = undefined;
  call: H2Call | undefined = undefined;
  fallback: FallbackRequest | undefined = undefined;
  /** Response headers for gRPC, and their cache key. */
  responseHeaders: string[] = GRPC_RESPONSE;
  responseKey = "h";

  constructor(readonly id: number, sendWindow: number) {
    this.sendWindow = sendWindow;
  }
}

/** A gRPC call on an HTTP/2 stream of a connection. */
export class H2Call extends GrpcCall {
  constructor(
    readonly conn: H2Session,
    readonly stream: H2Stream,
    path: string,
    readonly headers: string[],
  ) {
    super(path);
  }

  protected readMetadata(): Map<string, string> {
    const m = new Map<string, string>();
    const h = this.headers;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i];
      if (name.charCodeAt(0) === 58) continue; // ':'
      const prev = m.get(name);
      m.set(name, prev === undefined ? h[i + 1] : `${prev}, ${h[i + 1]}`);
    }
    return m;
  }

  protected writeMessage(message: Uint8Array): void {
    sendMessage(this.conn, this.stream, message);
  }

  protected writeUnary(message: Uint8Array): void {
    sendUnary(this.conn, this.stream, message);
  }

  protected override writeUnaryParts(message: MessageParts): void {
    sendUnary(this.conn, this.stream, message);
  }

  protected writeStatus(status: StatusCode, encodedMessage: string): void {
    sendStatus(this.conn, this.stream, status, encodedMessage);
  }

  protected bufferedBytes(): number {
    return this.stream.pendingBytes + this.conn.backlog;
  }

  waitDrain(): Promise<void> {
    return waitDrain(this.conn, this.stream);
  }
}
