/**
 * What a member gives the peer transport ({@linkcode PeerTransportOptions}) and what the transport
 * counts ({@linkcode PeerTransportStats}); every part of the peer room reads its settings from here.
 *
 * @module
 */
import type { Message } from "../../raft/types.ts";
import type { Clock } from "../clock.ts";
import type { ByteStream } from "../../storage/byte_stream.ts";
import type { PeerTls } from "./net.ts";
import { decodeMessage, encodeMessage } from "../pb/raftpb.ts";

/** Encodes and decodes Raft messages; the default is protobuf (`server/pb/raftpb.ts`). */
export interface MessageCodec {
  encode(m: Message): Uint8Array;
  decode(b: Uint8Array): Message;
}

/** The protobuf codec, wire-compatible with etcd-io/raft's raftpb. */
export const protobufCodec: MessageCodec = { encode: encodeMessage, decode: decodeMessage };

/** The logging the transport needs (a {@link Logger} fits). */
export interface PeerLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** A GET request to a handler of the peer port, as {@linkcode PeerHttpHandler}s see it. */
export interface PeerHttpRequest {
  /** The path without the query (`/members/hashkv`). */
  path: string;
  /** The query string's parameters (empty without one). */
  query: URLSearchParams;
  /** Header fields, names lowercased. */
  headers: Map<string, string>;
  /** The request body (etcd 3.4's `/members/hashkv` is a GET with a JSON body); empty without one. */
  body: Uint8Array;
  /** `host:port` of the other end, for logs. */
  remoteAddr: string;
}

/** What a {@linkcode PeerHttpHandler} answers; the body goes out as `contentType` (JSON by default). */
export interface PeerHttpResponse {
  status: number;
  body: string;
  contentType?: string;
}

/**
 * An extra GET handler on the peer port. It may ignore the request (`() => ({ status: 200, body })`) and
 * may answer asynchronously; a handler that throws is answered 500.
 */
export type PeerHttpHandler = (req: PeerHttpRequest) => PeerHttpResponse | Promise<PeerHttpResponse>;

/** How `PeerTransport.request` asks a peer. */
export interface PeerRequestOptions {
  /** Default GET. */
  method?: string;
  /** A body, sent with its `Content-Length`; none by default. */
  body?: string;
  /** The body's `Content-Type`; default `application/json`. */
  contentType?: string;
  /** Dial, request and answer must be done within this; default the transport's `dialTimeoutMs`. */
  timeoutMs?: number;
  /** Largest answer body accepted. Default 16 MiB. */
  maxBodyBytes?: number;
}

/** A peer's answer to `PeerTransport.request`. */
export interface PeerAnswer {
  status: number;
  /** Header fields, names lowercased. */
  headers: Map<string, string>;
  /** The body as UTF-8 text. */
  body: string;
}

/**
 * The image of an incoming snapshot, read from the connection as the member asks for it, so that it can
 * go to disk without ever being whole in memory.
 */
export interface IncomingImage {
  /** Bytes of the image, as the sender announced them. */
  readonly size: number;
  /**
   * The image in order, in chunks of at most `SNAPSHOT_CHUNK_BYTES` (1 MiB); together exactly `size`
   * bytes. A chunk is valid only until the next one is asked for (its buffer is reused). Can be iterated
   * once. Throws if the upload is cut or the transport stops.
   */
  chunks(): AsyncIterable<Uint8Array>;
}

/** How a {@linkcode PeerTransport} is set up. */
export interface PeerTransportOptions {
  /** This member's ID. */
  memberId: bigint;
  /** The cluster's ID; requests carrying another one are refused. */
  clusterId: bigint;
  /** Where to listen for peers (`http://` or `https://host:port`; port 0 picks a free port). */
  listen: URL[];
  /** Credentials for `https://` peer URLs, to listen and to dial. */
  tls?: PeerTls;
  /**
   * Every inbound Raft message, in order per sender. A MsgSnap arrives with its snapshot data in full,
   * or as `receiveSnapshot` returned it when that option is given.
   */
  onMessage(m: Message): void;
  /** A send to that peer failed or was dropped (the driver calls `node.reportUnreachable`). */
  onUnreachable?(id: bigint): void;
  /** Whether a member ID was removed from the cluster: its requests are answered 410 Gone, as etcd does. */
  isRemoved?(id: bigint): boolean;
  /** A peer answered 410 Gone: this member was removed from the cluster (etcd then stops it). */
  onRemovedFromCluster?(): void;
  /** Outcome of sending a MsgSnap (the driver calls `node.reportSnapshot`). */
  onSnapshotStatus?(id: bigint, ok: boolean): void;
  /**
   * The image to send for an outgoing MsgSnap, e.g. read from the snapshot file in pieces. Called once per
   * MsgSnap when its upload starts; its chunks are pulled one at a time, each only after the previous one
   * is written to the socket. The message's own `snapshot.data` is not sent when this is given. Throwing
   * fails the send (reported through `onSnapshotStatus`), and so does a stream that delivers other than
   * `size` bytes. Open files inside `chunks()` and close them in its `finally`: `chunks()` is not called
   * when the upload fails before its body, and is ended early (`return`) when it fails midway. Without
   * this option `snapshot.data` is sent, in the same chunks.
   */
  snapshotStream?(m: Message): ByteStream;
  /**
   * Takes the image of an incoming MsgSnap (e.g. writes it to disk) and resolves to the message to hand
   * to `onMessage`. `m` is the MsgSnap as sent, its `snapshot.data` empty. Called after the identity
   * checks, before the image is read. The message is delivered only if the image arrived whole and this
   * resolved after reading all of it; if it rejects, the sender is answered 500 and nothing is delivered.
   * It must clean up after itself when `chunks()` throws. The upload is closed when nothing has been
   * read from it for the longer of `idleTimeoutMs` and 10 s, so a sink should not pause longer. Without
   * this option the chunks are joined into `snapshot.data`.
   */
  receiveSnapshot?(m: Message, image: IncomingImage): Promise<Message>;
  /**
   * When given, every peer is probed every `probeIntervalMs` with a `GET /version` on a connection of its
   * own (as etcd's prober asks `/raft/probing`), and this hears how long dial, request and answer took.
   */
  onRoundTrip?(id: bigint, ms: number): void;
  /** How often each peer is probed for `onRoundTrip`. Default 4000 ms (etcd's prober interval). */
  probeIntervalMs?: number;
  logger: PeerLogger;
  /**
   * Extra GET handlers on the peer port by path, e.g. "/members" -> JSON (used when a member joins); more
   * can be registered later with `PeerTransport.handle`.
   */
  httpHandlers?: Map<string, PeerHttpHandler>;
  /** Message codec; protobuf unless a test swaps it. */
  codec?: MessageCodec;
  /** Time source for timers and timestamps; the system clock by default. */
  clock?: Clock;
  /** Versions sent in `X-Server-Version` and reported by `GET /version`. Default 3.5.0 for both. */
  version?: { server: string; cluster: string };
  /** Messages waiting for one peer's stream before new ones are dropped. Default 4096. */
  maxQueueMessages?: number;
  /** Bytes waiting for one peer's stream before new messages are dropped. Default 64 MiB. */
  maxQueueBytes?: number;
  /** Largest message accepted on a stream. Default 256 MiB. */
  maxMessageBytes?: number;
  /** Largest snapshot upload accepted. Default 8 GiB. */
  maxSnapshotBytes?: number;
  /** A keepalive frame goes out on a stream idle for this long. Default 1000 ms. */
  keepaliveMs?: number;
  /** A stream that received nothing for this long is closed and redialed. Default 5000 ms. */
  idleTimeoutMs?: number;
  /** Dial plus handshake must finish within this. Default 5000 ms. */
  dialTimeoutMs?: number;
  /** First redial delay after a failure; doubles up to `backoffMaxMs`. Default 100 ms. */
  backoffMinMs?: number;
  /** Longest redial delay. Default 1000 ms. */
  backoffMaxMs?: number;
}

/** Bytes on the Raft streams of one peer: written to its outbound stream, read from its inbound ones. */
export interface PeerTraffic {
  sent: number;
  received: number;
}

/** Counters of a transport's traffic. */
export interface PeerTransportStats {
  /** Messages written to outbound streams. */
  framesSent: number;
  /** Socket writes on outbound streams (batches); keepalives included. */
  writes: number;
  /** Bytes written to outbound streams. */
  bytesSent: number;
  /** Messages received on inbound streams and snapshot uploads. */
  framesReceived: number;
  /** Socket reads on inbound streams. */
  reads: number;
  /** Messages dropped on the send side: unknown peer, no stream, full queue, or lost with a stream. */
  dropped: number;
  /** Inbound messages or requests refused (wrong cluster, wrong recipient, unknown sender, malformed). */
  refused: number;
  snapshotsSent: number;
  snapshotsFailed: number;
  snapshotsReceived: number;
  /** Outbound streams established (first connects and reconnects). */
  connects: number;
}
