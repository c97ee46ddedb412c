/**
 * Turns a malformed request body into the status grpc-go gives it, for that call only.
 *
 * @module
 */
import { ProtobufDecodeError } from "../pb/wire.ts";
import { GrpcError, Status } from "../transport/status.ts";

/** Decodes a request; a malformed body becomes INTERNAL "grpc: error unmarshalling request: ..." like grpc-go. */
export function decodeOrFail<T>(decode: (b: Uint8Array) => T, raw: Uint8Array): T {
  try {
    return decode(raw);
  } catch (err) {
    if (err instanceof ProtobufDecodeError) {
      throw new GrpcError(Status.INTERNAL, `grpc: error unmarshalling request: ${err.message}`);
    }
    throw err;
  }
}
