/**
 * The auth errors of etcd's v3 API, with the gRPC codes and messages clients match on (etcdctl and
 * clientv3 compare the text: it must be exact).
 *
 * @module
 */
import { GrpcError, Status, type StatusCode } from "../transport/status.ts";

function e(status: StatusCode, message: string): () => GrpcError {
  return () => new GrpcError(status, message);
}

/** One factory per error, each giving a new {@linkcode GrpcError}. */
export const AuthErrors = {
  rootUserNotExist: e(Status.FAILED_PRECONDITION, "etcdserver: root user does not exist"),
  rootRoleNotExist: e(Status.FAILED_PRECONDITION, "etcdserver: root user does not have root role"),
  userAlreadyExist: e(Status.FAILED_PRECONDITION, "etcdserver: user name already exists"),
  userEmpty: e(Status.INVALID_ARGUMENT, "etcdserver: user name is empty"),
  userNotFound: e(Status.FAILED_PRECONDITION, "etcdserver: user name not found"),
  roleAlreadyExist: e(Status.FAILED_PRECONDITION, "etcdserver: role name already exists"),
  roleNotFound: e(Status.FAILED_PRECONDITION, "etcdserver: role name not found"),
  roleEmpty: e(Status.INVALID_ARGUMENT, "etcdserver: role name is empty"),
  authFailed: e(Status.INVALID_ARGUMENT, "etcdserver: authentication failed, invalid user ID or password"),
  permissionNotGiven: e(Status.INVALID_ARGUMENT, "etcdserver: permission not given"),
  permissionDenied: e(Status.PERMISSION_DENIED, "etcdserver: permission denied"),
  roleNotGranted: e(Status.FAILED_PRECONDITION, "etcdserver: role is not granted to the user"),
  permissionNotGranted: e(Status.FAILED_PRECONDITION, "etcdserver: permission is not granted to the role"),
  authNotEnabled: e(Status.FAILED_PRECONDITION, "etcdserver: authentication is not enabled"),
  invalidAuthToken: e(Status.UNAUTHENTICATED, "etcdserver: invalid auth token"),
  invalidAuthMgmt: e(Status.INVALID_ARGUMENT, "etcdserver: invalid auth management"),
  authOldRevision: e(Status.INVALID_ARGUMENT, "etcdserver: revision of auth store is old"),
};

const AUTH_MESSAGES = new Set(Object.values(AuthErrors).map((make) => make().message));

/** Whether `err` is one of the auth errors above. */
export function isAuthError(err: unknown): err is GrpcError {
  return err instanceof GrpcError && AUTH_MESSAGES.has(err.message);
}
