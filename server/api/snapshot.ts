/**
 * Maintenance.Snapshot: streams a consistent image of the member's applied state, then the SHA-256 of
 * the image, in 32 KiB messages with the bytes still to come, as etcd does. `etcdctl snapshot save` writes
 * the blobs to a file that `etcd-ts snapshot status` and `restore` read.
 *
 * @module
 */
import type { GrpcRouter } from "../transport/grpc.ts";
import type { EtcdServer } from "../member/server.ts";
import { decodeSnapshotRequest, encodeSnapshotResponse } from "../pb/rpc.ts";
import { decodeOrFail } from "./decode.ts";
import type { RequestAuth } from "./auth_checks.ts";
import { GrpcError, Status } from "../transport/status.ts";
import { Digest, DIGEST_BYTES, envelope } from "../snapshot/file.ts";

/** Bytes per message (etcd's). */
const CHUNK_BYTES = 32 * 1024;

/** Registers Maintenance.Snapshot. */
export function registerSnapshot(router: GrpcRouter, server: EtcdServer, auth: RequestAuth): void {
  router.stream("/etcdserverpb.Maintenance/Snapshot", (stream, ctx) => {
    let started = false;
    let cancelled = false;
    return {
      onMessage(raw) {
        decodeOrFail(decodeSnapshotRequest, raw);
        if (started) return;
        started = true;
        (async () => {
          // while auth is on, only root may take a backup
          if (auth.enabled) await auth.admin(ctx);
          if (cancelled || stream.closed) return;
          const { capture, revision } = server.backup();
          const { head, pad } = envelope(capture.data.size);
          const total = head.length + capture.data.size + pad.length + DIGEST_BYTES;
          const header = server.header(revision);
          try {
            const digest = new Digest();
            let sent = 0;
            let buf = new Uint8Array(CHUNK_BYTES);
            let fill = 0;
            const flush = async (bytes: Uint8Array) => {
              sent += bytes.length;
              const ok = stream.send(
                encodeSnapshotResponse({ header, remainingBytes: total - sent, blob: bytes }),
              );
              if (!ok) await stream.waitDrain();
            };
            // one chunk at a time: a producer may refill the same buffer for its next chunk
            const chunks = function* () {
              yield head;
              yield* capture.data.chunks();
              yield pad;
            };
            for (const chunk of chunks()) {
              digest.update(chunk);
              let off = 0;
              while (off < chunk.length) {
                if (cancelled || stream.closed) return;
                const n = Math.min(CHUNK_BYTES - fill, chunk.length - off);
                buf.set(chunk.subarray(off, off + n), fill);
                fill += n;
                off += n;
                if (fill === CHUNK_BYTES) {
                  await flush(buf);
                  buf = new Uint8Array(CHUNK_BYTES);
                  fill = 0;
                }
              }
            }
            if (fill > 0) await flush(buf.subarray(0, fill));
            await flush(digest.finish());
            stream.end();
          } finally {
            capture.release();
          }
        })().catch((err) => {
          if (!stream.closed) {
            stream.end(err instanceof GrpcError ? err : new GrpcError(Status.INTERNAL, String(err)));
          }
        });
      },
      onHalfClose() {},
      onCancel() {
        cancelled = true;
      },
    };
  });
}
