/**
 * HTTP/2 wire constants (RFC 9113): frame types, flags, settings and error codes, and the frame header
 * writer.
 *
 * @module
 */
import type { ByteWriter } from "./hpack.ts";

/** The client connection preface. */
export const PREFACE: Uint8Array = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** Frame types. */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Frame flags. */
export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** SETTINGS identifiers. */
export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** Error codes of RST_STREAM and GOAWAY. */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

/** The default and smallest SETTINGS_MAX_FRAME_SIZE. */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
/** The largest SETTINGS_MAX_FRAME_SIZE. */
export const MAX_MAX_FRAME_SIZE = 16_777_215;
/** The flow-control window every stream and connection starts with. */
export const DEFAULT_WINDOW = 65_535;
/** The largest flow-control window. */
export const MAX_WINDOW = 0x7fffffff;

/** Appends a 9-byte frame header. */
export function writeFrameHeader(
  w: ByteWriter,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): void {
  w.ensure(9 + length);
  const b = w.buf;
  let i = w.len;
  b[i++] = length >>> 16;
  b[i++] = (length >>> 8) & 0xff;
  b[i++] = length & 0xff;
  b[i++] = type;
  b[i++] = flags;
  b[i++] = (streamId >>> 24) & 0x7f;
  b[i++] = (streamId >>> 16) & 0xff;
  b[i++] = (streamId >>> 8) & 0xff;
  b[i++] = streamId & 0xff;
  w.len = i;
}

/** Appends a 32-bit big-endian value. */
export function writeUint32(w: ByteWriter, v: number): void {
  w.ensure(4);
  const b = w.buf;
  b[w.len++] = v >>> 24;
  b[w.len++] = (v >>> 16) & 0xff;
  b[w.len++] = (v >>> 8) & 0xff;
  b[w.len++] = v & 0xff;
}

/** Reads a 32-bit big-endian value. */
export function readUint32(b: Uint8Array, i: number): number {
  return b[i] * 0x1000000 + ((b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]);
}
