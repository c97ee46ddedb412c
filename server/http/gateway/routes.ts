/**
 * The gateway's routes: etcd 3.4's `google.api.http` options of rpc.proto, each a POST path with the
 * whole body as the request (`body: "*"`), and the gRPC method, request and reply messages it maps to.
 * etcd 3.4 registers `/v3/maintenance/hash` for both Hash and HashKV; Hash is the one that answers,
 * so HashKV has no route. AuthStatus and Downgrade came later (3.5) and have none either.
 *
 * @module
 */

/** One gateway route. */
export interface GatewayRoute {
  /** The gRPC method path, `/etcdserverpb.KV/Range`. */
  method: string;
  /** Request message (full name). */
  request: string;
  /** Reply message (full name). */
  response: string;
  /** Server-streaming or bidirectional: replies are streamed as `{"result":...}` lines. */
  stream: boolean;
}

const PB = "etcdserverpb";

function r(service: string, rpc: string, request: string, response: string, stream = false): GatewayRoute {
  return {
    method: `/${PB}.${service}/${rpc}`,
    request: `${PB}.${request}`,
    response: `${PB}.${response}`,
    stream,
  };
}

const LEASE_REVOKE = r("Lease", "LeaseRevoke", "LeaseRevokeRequest", "LeaseRevokeResponse");
const LEASE_TTL = r("Lease", "LeaseTimeToLive", "LeaseTimeToLiveRequest", "LeaseTimeToLiveResponse");
const LEASE_LEASES = r("Lease", "LeaseLeases", "LeaseLeasesRequest", "LeaseLeasesResponse");

/** Paths under `/v3` (and `/v3beta`) to routes. */
export const ROUTES: ReadonlyMap<string, GatewayRoute> = new Map([
  ["/kv/range", r("KV", "Range", "RangeRequest", "RangeResponse")],
  ["/kv/put", r("KV", "Put", "PutRequest", "PutResponse")],
  ["/kv/deleterange", r("KV", "DeleteRange", "DeleteRangeRequest", "DeleteRangeResponse")],
  ["/kv/txn", r("KV", "Txn", "TxnRequest", "TxnResponse")],
  ["/kv/compaction", r("KV", "Compact", "CompactionRequest", "CompactionResponse")],
  ["/watch", r("Watch", "Watch", "WatchRequest", "WatchResponse", true)],
  ["/lease/grant", r("Lease", "LeaseGrant", "LeaseGrantRequest", "LeaseGrantResponse")],
  ["/lease/revoke", LEASE_REVOKE],
  ["/kv/lease/revoke", LEASE_REVOKE],
  ["/lease/keepalive", r("Lease", "LeaseKeepAlive", "LeaseKeepAliveRequest", "LeaseKeepAliveResponse", true)],
  ["/lease/timetolive", LEASE_TTL],
  ["/kv/lease/timetolive", LEASE_TTL],
  ["/lease/leases", LEASE_LEASES],
  ["/kv/lease/leases", LEASE_LEASES],
  ["/cluster/member/add", r("Cluster", "MemberAdd", "MemberAddRequest", "MemberAddResponse")],
  ["/cluster/member/remove", r("Cluster", "MemberRemove", "MemberRemoveRequest", "MemberRemoveResponse")],
  ["/cluster/member/update", r("Cluster", "MemberUpdate", "MemberUpdateRequest", "MemberUpdateResponse")],
  ["/cluster/member/list", r("Cluster", "MemberList", "MemberListRequest", "MemberListResponse")],
  ["/cluster/member/promote", r("Cluster", "MemberPromote", "MemberPromoteRequest", "MemberPromoteResponse")],
  ["/maintenance/alarm", r("Maintenance", "Alarm", "AlarmRequest", "AlarmResponse")],
  ["/maintenance/status", r("Maintenance", "Status", "StatusRequest", "StatusResponse")],
  ["/maintenance/defragment", r("Maintenance", "Defragment", "DefragmentRequest", "DefragmentResponse")],
  ["/maintenance/hash", r("Maintenance", "Hash", "HashRequest", "HashResponse")],
  ["/maintenance/snapshot", r("Maintenance", "Snapshot", "SnapshotRequest", "SnapshotResponse", true)],
  [
    "/maintenance/transfer-leadership",
    r("Maintenance", "MoveLeader", "MoveLeaderRequest", "MoveLeaderResponse"),
  ],
  ["/auth/enable", r("Auth", "AuthEnable", "AuthEnableRequest", "AuthEnableResponse")],
  ["/auth/disable", r("Auth", "AuthDisable", "AuthDisableRequest", "AuthDisableResponse")],
  ["/auth/authenticate", r("Auth", "Authenticate", "AuthenticateRequest", "AuthenticateResponse")],
  ["/auth/user/add", r("Auth", "UserAdd", "AuthUserAddRequest", "AuthUserAddResponse")],
  ["/auth/user/get", r("Auth", "UserGet", "AuthUserGetRequest", "AuthUserGetResponse")],
  ["/auth/user/list", r("Auth", "UserList", "AuthUserListRequest", "AuthUserListResponse")],
  ["/auth/user/delete", r("Auth", "UserDelete", "AuthUserDeleteRequest", "AuthUserDeleteResponse")],
  [
    "/auth/user/changepw",
    r("Auth", "UserChangePassword", "AuthUserChangePasswordRequest", "AuthUserChangePasswordResponse"),
  ],
  ["/auth/user/grant", r("Auth", "UserGrantRole", "AuthUserGrantRoleRequest", "AuthUserGrantRoleResponse")],
  [
    "/auth/user/revoke",
    r("Auth", "UserRevokeRole", "AuthUserRevokeRoleRequest", "AuthUserRevokeRoleResponse"),
  ],
  ["/auth/role/add", r("Auth", "RoleAdd", "AuthRoleAddRequest", "AuthRoleAddResponse")],
  ["/auth/role/get", r("Auth", "RoleGet", "AuthRoleGetRequest", "AuthRoleGetResponse")],
  ["/auth/role/list", r("Auth", "RoleList", "AuthRoleListRequest", "AuthRoleListResponse")],
  ["/auth/role/delete", r("Auth", "RoleDelete", "AuthRoleDeleteRequest", "AuthRoleDeleteResponse")],
  [
    "/auth/role/grant",
    r("Auth", "RoleGrantPermission", "AuthRoleGrantPermissionRequest", "AuthRoleGrantPermissionResponse"),
  ],
  [
    "/auth/role/revoke",
    r("Auth", "RoleRevokePermission", "AuthRoleRevokePermissionRequest", "AuthRoleRevokePermissionResponse"),
  ],
]);

/**
 * The prefixes etcd 3.4 serves the routes under: `/v3/`, and `/v3beta/`, which it rewrites to `/v3/`.
 * (`/v3alpha/` is gone in 3.4: a 404.)
 */
export const PREFIXES: readonly string[] = ["/v3", "/v3beta"];

/** The route of a request path (query string already removed), if any. */
export function routeOf(path: string): GatewayRoute | undefined {
  for (const prefix of PREFIXES) {
    if (path.startsWith(`${prefix}/`)) return ROUTES.get(path.slice(prefix.length));
  }
  return undefined;
}
