/**
 * gRPC status codes, the error type handlers throw to return one, and the small wire encodings that go
 * with them (`grpc-message` percent-encoding, `grpc-timeout` parsing), as grpc-go writes and reads them.
 *
 * @module
 */

/** The gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** One of the values of {@linkcode Status}. */
export type StatusCode = typeof Status[keyof typeof Status];

/** A non-OK gRPC status; throw it from a handler (or pass it to `ServerStream.end`) to answer with it. */
export class GrpcError extends Error {
  /** Stable error code of this class. */
  readonly code = "GRPC_ERROR";

  /** @param status the gRPC status code; @param message the `grpc-message` text. */
  constructor(readonly status: StatusCode, message: string) {
    super(message);
    this.name = "GrpcError";
  }
}

/** Turns anything thrown by a handler into a status: GrpcError as is, anything else UNKNOWN with its message. */
export function toGrpcError(err: unknown): GrpcError {
  if (err instanceof GrpcError) return err;
  if (err instanceof Error) return new GrpcError(Status.UNKNOWN, err.message);
  return new GrpcError(Status.UNKNOWN, String(err));
}

const HEX = "0123456789ABCDEF";
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/**
 * Percent-encodes a `grpc-message` value as the gRPC spec (and grpc-go) do: the UTF-8 bytes outside
 * printable ASCII, and `%` itself, become `%XX`.
 */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = "";
  for (const b of utf8.encode(message)) {
    if (b >= 0x20 && b <= 0x7e && b !== 0x25) out += String.fromCharCode(b);
    else out += "%" + HEX[b >> 4] + HEX[b & 15];
  }
  return out;
}

/** Reverses {@linkcode encodeGrpcMessage}; malformed escapes are kept as they are. */
export function decodeGrpcMessage(value: string): string {
  if (!value.includes("%")) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25 && i + 2 < value.length) {
      const hi = hexValue(value.charCodeAt(i + 1));
      const lo = hexValue(value.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        bytes.push(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    const cp = value.codePointAt(i)!;
    if (cp > 0xffff) i++;
    for (const b of utf8.encode(String.fromCodePoint(cp))) bytes.push(b);
  }
  return utf8Decoder.decode(new Uint8Array(bytes));
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

const TIMEOUT_UNIT_MS: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 1e-3,
  n: 1e-6,
};

/** The longest timeout honoured, as grpc-go caps it (about 2^63 ns); longer ones count as no deadline. */
const MAX_TIMEOUT_MS = 9.2e12;

/**
 * Parses a `grpc-timeout` header (1 to 8 ASCII digits and a unit of H, M, S, m, u, n) into milliseconds.
 * Returns `undefined` when malformed (grpc-go resets such a stream with PROTOCOL_ERROR) and `Infinity`
 * when too long to matter.
 */
export function parseGrpcTimeout(value: string): number | undefined {
  const n = value.length;
  if (n < 2 || n > 9) return undefined;
  const unit = TIMEOUT_UNIT_MS[value[n - 1]];
  if (unit === undefined) return undefined;
  let digits = 0;
  for (let i = 0; i < n - 1; i++) {
    const c = value.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return undefined;
    digits = digits * 10 + c;
  }
  const ms = digits * unit;
  return ms > MAX_TIMEOUT_MS ? Infinity : ms;
}
