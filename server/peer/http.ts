/**
 * The little HTTP/1.1 the peer port speaks: its paths, a buffered reader over a {@linkcode PeerConn},
 * request and response heads, fixed-length bodies read whole or in pieces, and the length-prefixed frames
 * of a Raft stream.
 *
 * A frame is a 4-byte big-endian length followed by that many bytes of an encoded `raftpb.Message`. A
 * zero-length frame carries nothing and keeps an idle stream alive.
 *
 * @module
 */
import type { PeerConn } from "./net.ts";

/** Path prefix of the message streams (`/raft/stream/<from-id-hex>`). */
export const STREAM_PREFIX = "/raft/stream";
/** Path of snapshot uploads. */
export const SNAPSHOT_PATH = "/raft/snapshot";
/** The `Upgrade` token of a message stream. */
export const STREAM_PROTOCOL = "etcd-ts-raft-stream/1";
/** Largest request or response head accepted. */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Largest error body read from a refusing peer (more is ignored, the reason phrase is kept). */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;
/**
 * Size of the pieces a snapshot image travels in: the most of an image either side holds in memory at
 * once, apart from what the sockets buffer.
 */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;

/** Malformed or oversized HTTP or frame input from a peer. */
export class PeerProtocolError extends Error {
  /** Stable error code of this class. */
  readonly code = "PEER_PROTOCOL";

  /** @param message what is wrong with the input. */
  constructor(message: string) {
    super(message);
    this.name = "PeerProtocolError";
  }
}

/** Bytes of a frame's length prefix. */
export const FRAME_HEADER_BYTES = 4;

/** The parsed head of a request (`a`=method, `b`=path) or a response (`a`=version, `b`=status code). */
export interface HttpHead {
  /** Request: the method. Response: the HTTP version. */
  a: string;
  /** Request: the path. Response: the status code as text. */
  b: string;
  /** Request: the HTTP version. Response: the reason phrase. */
  c: string;
  /** Header fields, names lowercased; repeated fields are joined with ", ". */
  headers: Map<string, string>;
}

const CRLFCRLF = [13, 10, 13, 10];
const latin1 = new TextDecoder("latin1");
const utf8 = new TextEncoder();

/** Parses the bytes of an HTTP head (without the final empty line). */
export function parseHead(bytes: Uint8Array): HttpHead {
  const lines = latin1.decode(bytes).split("\r\n");
  const first = lines[0];
  const sp1 = first.indexOf(" ");
  const sp2 = sp1 < 0 ? -1 : first.indexOf(" ", sp1 + 1);
  if (sp1 <= 0) {
    throw new PeerProtocolError(`malformed HTTP start line ${JSON.stringify(first.slice(0, 100))}`);
  }
  const a = first.slice(0, sp1);
  const b = sp2 < 0 ? first.slice(sp1 + 1) : first.slice(sp1 + 1, sp2);
  const c = sp2 < 0 ? "" : first.slice(sp2 + 1);
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) {
      throw new PeerProtocolError(`malformed HTTP header line ${JSON.stringify(line.slice(0, 100))}`);
    }
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prev = headers.get(name);
    headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
  }
  return { a, b, c, headers };
}

/** Formats an HTTP head: the start line, each header, and the empty line. */
export function formatHead(startLine: string, headers: Record<string, string | number>): Uint8Array {
  let s = startLine + "\r\n";
  for (const [k, v] of Object.entries(headers)) s += `${k}: ${v}\r\n`;
  return utf8.encode(s + "\r\n");
}

/** A whole response with a text body, closing the connection afterwards. */
export function formatResponse(
  status: number,
  reason: string,
  body: string,
  headers: Record<string, string | number> = {},
  contentType = "text/plain; charset=utf-8",
): Uint8Array {
  const b = utf8.encode(body);
  const head = formatHead(`HTTP/1.1 ${status} ${reason}`, {
    "Content-Type": contentType,
    "Content-Length": b.length,
    "Connection": "close",
    ...headers,
  });
  const out = new Uint8Array(head.length + b.length);
  out.set(head);
  out.set(b, head.length);
  return out;
}

/** Reads the 4-byte big-endian length prefix at `off`. */
export function frameLength(buf: Uint8Array, off: number): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
}

/** Writes the 4-byte big-endian length prefix `len` at `off`. */
export function putFrameLength(buf: Uint8Array, off: number, len: number): void {
  buf[off] = len >>> 24;
  buf[off + 1] = (len >>> 16) & 0xff;
  buf[off + 2] = (len >>> 8) & 0xff;
  buf[off + 3] = len & 0xff;
}

/**
 * A read buffer over a connection. Bytes `buf[start..end)` are read but not consumed yet; callers parse
 * them in place and advance `start`.
 */
export class ConnReader {
  /** The buffer; replaced when it grows or shrinks. */
  buf: Uint8Array;
  /** Offset of the first unconsumed byte. */
  start = 0;
  /** Offset one past the last byte read. */
  end = 0;
  /** Number of `read` calls made on the connection. */
  reads = 0;
  /** Bytes read from the connection. */
  bytes = 0;
  /** Called after every successful read (for idle tracking). */
  onRead: (() => void) | undefined;

  /**
   * @param conn the connection to read from.
   * @param size the usual buffer size; larger frames grow it temporarily.
   */
  constructor(private readonly conn: PeerConn, private readonly size = 64 * 1024) {
    this.buf = new Uint8Array(size);
  }

  /** Unconsumed bytes in the buffer. */
  get available(): number {
    return this.end - this.start;
  }

  /** Makes room for `n` unconsumed bytes from `start`, compacting or growing the buffer. */
  reserve(n: number): void {
    if (this.buf.length - this.start >= n) return;
    const live = this.buf.subarray(this.start, this.end);
    if (this.buf.length >= n && this.start > 0) {
      this.buf.copyWithin(0, this.start, this.end);
    } else {
      const grown = new Uint8Array(Math.max(n, this.buf.length * 2));
      grown.set(live);
      this.buf = grown;
    }
    this.end -= this.start;
    this.start = 0;
  }

  /** Reads more bytes from the connection; resolves false at end of stream. */
  async fill(): Promise<boolean> {
    if (this.start === this.end) {
      this.start = this.end = 0;
      if (this.buf.length > 4 * this.size) this.buf = new Uint8Array(this.size);
    } else if (this.buf.length - this.end < 4096) {
      this.reserve(Math.max(this.end - this.start + 4096, this.size));
      if (this.buf.length - this.end < 4096) this.reserve(this.buf.length * 2);
    }
    const n = await this.conn.read(this.buf.subarray(this.end));
    if (n === null) return false;
    this.reads++;
    this.bytes += n;
    this.end += n;
    this.onRead?.();
    return true;
  }

  /** Reads an HTTP head of at most `max` bytes; null when the stream ends cleanly before any byte. */
  async readHead(max: number): Promise<HttpHead | null> {
    let scanFrom = this.start;
    for (let i = 0; i <= max; i++) {
      for (let p = Math.max(scanFrom, this.start); p + 3 < this.end; p++) {
        if (
          this.buf[p] === CRLFCRLF[0] && this.buf[p + 1] === CRLFCRLF[1] && this.buf[p + 2] === CRLFCRLF[2] &&
          this.buf[p + 3] === CRLFCRLF[3]
        ) {
          const head = parseHead(this.buf.subarray(this.start, p));
          this.start = p + 4;
          return head;
        }
      }
      if (this.available > max) throw new PeerProtocolError(`HTTP head larger than ${max} bytes`);
      scanFrom = Math.max(this.start, this.end - 3);
      const before = this.start;
      if (!(await this.fill())) {
        if (this.available === 0) return null;
        throw new PeerProtocolError("connection closed in the middle of an HTTP head");
      }
      scanFrom -= before - this.start; // fill may have compacted the buffer
    }
    throw new PeerProtocolError(`HTTP head larger than ${max} bytes`);
  }

  /**
   * Reads at most `dst.length` bytes into `dst`: what is buffered first, otherwise one read from the
   * connection straight into `dst`. Resolves to the number of bytes, or null at end of stream.
   */
  async readSome(dst: Uint8Array): Promise<number | null> {
    if (this.available > 0) {
      const n = Math.min(dst.length, this.available);
      dst.set(this.buf.subarray(this.start, this.start + n));
      this.start += n;
      return n;
    }
    const got = await this.conn.read(dst);
    if (got === null) return null;
    this.reads++;
    this.bytes += got;
    this.onRead?.();
    return got;
  }

  /** Reads exactly `n` bytes into a new array (reading straight into it past what is buffered). */
  async readBody(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    const have = Math.min(n, this.available);
    out.set(this.buf.subarray(this.start, this.start + have));
    this.start += have;
    let off = have;
    while (off < n) {
      const got = await this.conn.read(out.subarray(off));
      if (got === null) throw new PeerProtocolError(`body ended after ${off} of ${n} bytes`);
      this.reads++;
      this.bytes += got;
      this.onRead?.();
      off += got;
    }
    return out;
  }
}
