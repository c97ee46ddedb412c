/**
 * The errors etcd's v3 API returns, with the gRPC status codes and messages real clients match on
 * (etcdctl and clientv3 compare the message text, so it must be exact).
 *
 * @module
 */
import { GrpcError, Status, type StatusCode } from "./transport/status.ts";

function e(status: StatusCode, message: string): () => GrpcError {
  return () => new GrpcError(status, message);
}

export const Errors = {
  emptyKey: e(Status.INVALID_ARGUMENT, "etcdserver: key is not provided"),
  keyNotFound: e(Status.INVALID_ARGUMENT, "etcdserver: key not found"),
  valueProvided: e(Status.INVALID_ARGUMENT, "etcdserver: value is provided"),
  leaseProvided: e(Status.INVALID_ARGUMENT, "etcdserver: lease is provided"),
  tooManyOps: e(Status.INVALID_ARGUMENT, "etcdserver: too many operations in txn request"),
  duplicateKey: e(Status.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request"),
  invalidSortOption: e(Status.INVALID_ARGUMENT, "etcdserver: invalid sort option"),
  compacted: e(Status.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted"),
  futureRev: e(Status.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision"),
  noSpace: e(Status.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded"),
  leaseNotFound: e(Status.NOT_FOUND, "etcdserver: requested lease not found"),
  leaseExist: e(Status.FAILED_PRECONDITION, "etcdserver: lease already exists"),
  leaseTtlTooLarge: e(Status.OUT_OF_RANGE, "etcdserver: too large lease TTL"),
  memberExist: e(Status.FAILED_PRECONDITION, "etcdserver: member ID already exist"),
  peerUrlExist: e(Status.FAILED_PRECONDITION, "etcdserver: Peer URLs already exists"),
  memberNotFound: e(Status.NOT_FOUND, "etcdserver: member not found"),
  memberBadUrls: e(Status.INVALID_ARGUMENT, "etcdserver: given member URLs are invalid"),
  requestTooLarge: e(Status.INVALID_ARGUMENT, "etcdserver: request is too large"),
  noLeader: e(Status.UNAVAILABLE, "etcdserver: no leader"),
  notLeader: e(Status.FAILED_PRECONDITION, "etcdserver: not leader"),
  leaderChanged: e(Status.UNAVAILABLE, "etcdserver: leader changed"),
  stopped: e(Status.UNAVAILABLE, "etcdserver: server stopped"),
  timeout: e(Status.UNAVAILABLE, "etcdserver: request timed out"),
  canceled: e(Status.CANCELLED, "etcdserver: request canceled"),
  notCapable: e(Status.FAILED_PRECONDITION, "etcdserver: not capable"),
  badLeaderTransferee: e(Status.FAILED_PRECONDITION, "etcdserver: bad leader transferee"),
  memberNotEnoughStarted: e(
    Status.FAILED_PRECONDITION,
    "etcdserver: re-configuration failed due to not enough started members",
  ),
  memberNotLearner: e(Status.FAILED_PRECONDITION, "etcdserver: can only promote a learner member"),
  learnerNotReady: e(
    Status.FAILED_PRECONDITION,
    "etcdserver: can only promote a learner member which is in sync with leader",
  ),
  tooManyLearners: e(Status.FAILED_PRECONDITION, "etcdserver: too many learner members in cluster"),
  unhealthy: e(Status.UNAVAILABLE, "etcdserver: unhealthy cluster"),
  notSupportedForLearner: e(Status.UNAVAILABLE, "etcdserver: rpc not supported for learner"),
} as const;
