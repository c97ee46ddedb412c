/**
 * What a learner answers: like etcd, a member that is a learner serves only serializable reads and
 * `Status`; every other call is refused with `etcdserver: rpc not supported for learner`.
 *
 * @module
 */
import { Errors } from "../errors.ts";
import { GrpcRouter, type StreamHandler, type UnaryHandler } from "../transport/grpc.ts";
import { decodeRangeRequest } from "../pb/rpc.ts";

const RANGE = "/etcdserverpb.KV/Range";
const STATUS = "/etcdserverpb.Maintenance/Status";

/** Whether a learner may answer a unary call (Range only when serializable). */
function allowedForLearner(path: string, raw: Uint8Array): boolean {
  if (path === STATUS) return true;
  if (path !== RANGE) return false;
  try {
    return decodeRangeRequest(raw).serializable;
  } catch {
    return true; // the handler answers a malformed request with its own error
  }
}

/**
 * A router whose handlers first ask `isLearner()`: while this member is a learner, the calls etcd
 * refuses on learners are refused the same way. Register the services on it as on a plain router.
 */
export class LearnerAwareRouter extends GrpcRouter {
  constructor(private readonly isLearner: () => boolean) {
    super();
  }

  override unary(path: string, handler: UnaryHandler): this {
    return super.unary(path, (raw, ctx) => {
      if (this.isLearner() && !allowedForLearner(path, raw)) throw Errors.notSupportedForLearner();
      return handler(raw, ctx);
    });
  }

  override stream(path: string, handler: StreamHandler): this {
    return super.stream(path, (stream, ctx) => {
      if (!this.isLearner()) return handler(stream, ctx);
      stream.end(Errors.notSupportedForLearner());
      return { onMessage() {}, onHalfClose() {}, onCancel() {} };
    });
  }
}
