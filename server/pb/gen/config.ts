/**
 * What the generator emits into server/pb/rpc.ts: the messages the server uses and the choices that make
 * the codec fast or give it its shape. Serving another RPC means adding its messages to
 * {@linkcode MESSAGES} and running `deno run -A server/pb/gen/main.ts`.
 *
 * Field selectors are `Message.field` with the message's short name or `*` for any message, and the
 * proto field name (`*.ID`, `ResponseHeader.cluster_id`).
 *
 * @module
 */

/** Generator input: which messages, and how to render them. */
export interface GenConfig {
  /** The .proto files, relative to the proto directory; the first imports the others. */
  files: readonly string[];
  /**
   * Fully qualified messages that get exported `encodeX`/`decodeX` functions. Messages they contain are
   * generated too, with exported types but internal codecs.
   */
  messages: readonly string[];
  /** 64-bit fields that hold IDs and are exact `bigint`s; other 64-bit fields are `number`s (< 2^53). */
  bigint: readonly string[];
  /** Message fields that decode as an all-default message when absent, so the type need not be optional. */
  alwaysPresent: readonly string[];
  /**
   * Messages whose encoded size is computed before they are written, so a parent writes their length
   * up front instead of back-patching it (which moves the bytes when the length takes 2+ bytes). Worth
   * it for messages that are nested in bulk and often exceed 127 bytes (KeyValue in ranges and events).
   * Their message fields must be sized messages themselves.
   */
  sized: readonly string[];
  /**
   * Oneofs flattened into plain fields, where an enum field of the same message selects the member on
   * the wire: `oneof` is `Message.oneof`, `by` the selecting field, `cases` maps enum value names (as
   * emitted) to member fields. The selected member is written even when it holds its default.
   */
  selectedOneofs: readonly { oneof: string; by: string; cases: Readonly<Record<string, string>> }[];
}

/** The messages and options of server/pb/rpc.ts. */
export const CONFIG: GenConfig = {
  files: ["rpc.proto", "kv.proto", "auth.proto"],
  messages: [
    "mvccpb.Event",
    // KV
    "etcdserverpb.RangeRequest",
    "etcdserverpb.RangeResponse",
    "etcdserverpb.PutRequest",
    "etcdserverpb.PutResponse",
    "etcdserverpb.DeleteRangeRequest",
    "etcdserverpb.DeleteRangeResponse",
    "etcdserverpb.TxnRequest",
    "etcdserverpb.TxnResponse",
    "etcdserverpb.CompactionRequest",
    "etcdserverpb.CompactionResponse",
    // Watch
    "etcdserverpb.WatchRequest",
    "etcdserverpb.WatchResponse",
    // Lease (LeaseCheckpointRequest travels through Raft)
    "etcdserverpb.LeaseGrantRequest",
    "etcdserverpb.LeaseGrantResponse",
    "etcdserverpb.LeaseRevokeRequest",
    "etcdserverpb.LeaseRevokeResponse",
    "etcdserverpb.LeaseKeepAliveRequest",
    "etcdserverpb.LeaseKeepAliveResponse",
    "etcdserverpb.LeaseTimeToLiveRequest",
    "etcdserverpb.LeaseTimeToLiveResponse",
    "etcdserverpb.LeaseLeasesRequest",
    "etcdserverpb.LeaseLeasesResponse",
    "etcdserverpb.LeaseCheckpointRequest",
    // Cluster
    "etcdserverpb.MemberListRequest",
    "etcdserverpb.MemberListResponse",
    "etcdserverpb.MemberAddRequest",
    "etcdserverpb.MemberAddResponse",
    "etcdserverpb.MemberRemoveRequest",
    "etcdserverpb.MemberRemoveResponse",
    "etcdserverpb.MemberUpdateRequest",
    "etcdserverpb.MemberUpdateResponse",
    "etcdserverpb.MemberPromoteRequest",
    "etcdserverpb.MemberPromoteResponse",
    // Maintenance
    "etcdserverpb.StatusRequest",
    "etcdserverpb.StatusResponse",
    "etcdserverpb.MoveLeaderRequest",
    "etcdserverpb.MoveLeaderResponse",
    "etcdserverpb.AlarmRequest",
    "etcdserverpb.AlarmResponse",
    "etcdserverpb.DefragmentRequest",
    "etcdserverpb.DefragmentResponse",
    "etcdserverpb.HashRequest",
    "etcdserverpb.HashResponse",
    "etcdserverpb.HashKVRequest",
    "etcdserverpb.HashKVResponse",
    "etcdserverpb.SnapshotRequest",
    "etcdserverpb.SnapshotResponse",
    // Auth
    "etcdserverpb.AuthEnableRequest",
    "etcdserverpb.AuthEnableResponse",
    "etcdserverpb.AuthDisableRequest",
    "etcdserverpb.AuthDisableResponse",
    "etcdserverpb.AuthStatusRequest",
    "etcdserverpb.AuthStatusResponse",
    "etcdserverpb.AuthenticateRequest",
    "etcdserverpb.AuthenticateResponse",
    "etcdserverpb.AuthUserAddRequest",
    "etcdserverpb.AuthUserAddResponse",
    "etcdserverpb.AuthUserGetRequest",
    "etcdserverpb.AuthUserGetResponse",
    "etcdserverpb.AuthUserListRequest",
    "etcdserverpb.AuthUserListResponse",
    "etcdserverpb.AuthUserDeleteRequest",
    "etcdserverpb.AuthUserDeleteResponse",
    "etcdserverpb.AuthUserChangePasswordRequest",
    "etcdserverpb.AuthUserChangePasswordResponse",
    "etcdserverpb.AuthUserGrantRoleRequest",
    "etcdserverpb.AuthUserGrantRoleResponse",
    "etcdserverpb.AuthUserRevokeRoleRequest",
    "etcdserverpb.AuthUserRevokeRoleResponse",
    "etcdserverpb.AuthRoleAddRequest",
    "etcdserverpb.AuthRoleAddResponse",
    "etcdserverpb.AuthRoleGetRequest",
    "etcdserverpb.AuthRoleGetResponse",
    "etcdserverpb.AuthRoleListRequest",
    "etcdserverpb.AuthRoleListResponse",
    "etcdserverpb.AuthRoleDeleteRequest",
    "etcdserverpb.AuthRoleDeleteResponse",
    "etcdserverpb.AuthRoleGrantPermissionRequest",
    "etcdserverpb.AuthRoleGrantPermissionResponse",
    "etcdserverpb.AuthRoleRevokePermissionRequest",
    "etcdserverpb.AuthRoleRevokePermissionResponse",
  ],
  bigint: [
    "*.ID",
    "*.lease",
    "*.memberID",
    "*.targetID",
    "ResponseHeader.cluster_id",
    "ResponseHeader.member_id",
    "StatusResponse.leader",
  ],
  alwaysPresent: ["*.header", "Event.kv"],
  sized: ["mvccpb.KeyValue", "mvccpb.Event", "etcdserverpb.LeaseStatus"],
  selectedOneofs: [{
    oneof: "Compare.target_union",
    by: "target",
    cases: {
      VERSION: "version",
      CREATE: "create_revision",
      MOD: "mod_revision",
      VALUE: "value",
      LEASE: "lease",
    },
  }],
};
