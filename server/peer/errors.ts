/**
 * The errors the peer transport reports about other members (as `lastError` of a peer and in logs).
 * Malformed input from a peer is a {@linkcode PeerProtocolError} of `http.ts`.
 *
 * @module
 */

/** A peer answered our request with a cluster ID other than ours. */
export class ClusterIdMismatchError extends Error {
  /** Stable error code of this class. */
  readonly code = "CLUSTER_ID_MISMATCH";

  /**
   * @param localClusterId our cluster ID (hex).
   * @param remoteClusterId the peer's cluster ID (hex), empty when it did not say.
   */
  constructor(readonly localClusterId: string, readonly remoteClusterId: string) {
    super(`cluster ID mismatch (local ${localClusterId}, remote ${remoteClusterId || "unknown"})`);
    this.name = "ClusterIdMismatchError";
  }
}

/** A peer refused a stream or snapshot request for another reason than the cluster ID. */
export class PeerRefusedError extends Error {
  /** Stable error code of this class. */
  readonly code = "PEER_REFUSED";

  /**
   * @param status the HTTP status the peer answered.
   * @param reason the body of its answer.
   */
  constructor(readonly status: number, readonly reason: string) {
    super(`peer refused the request: ${status} ${reason}`);
    this.name = "PeerRefusedError";
  }
}

/** A connection attempt or a stream timed out. */
export class PeerTimeoutError extends Error {
  /** Stable error code of this class. */
  readonly code = "PEER_TIMEOUT";

  /** @param message what timed out. */
  constructor(message: string) {
    super(message);
    this.name = "PeerTimeoutError";
  }
}

/** The message of any thrown value, for logs. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** True for the errors a socket reports when it is closed under a pending operation. */
export function isClosedError(err: unknown): boolean {
  return err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted ||
    (err instanceof Error && err.name === "AbortError");
}
