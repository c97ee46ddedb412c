/**
 * Plain data that crosses the boundary of the Raft state machine.
 *
 * Node IDs are etcd member IDs: unsigned 64-bit numbers, so they are `bigint`. Terms and indexes stay
 * below 2^53 in any real cluster and are plain `number`s. `0n` means "no node".
 *
 * @module
 */

/** A node (member) ID; `NONE` means no node. */
export type NodeId = bigint;
export const NONE: NodeId = 0n;

export enum EntryType {
  Normal = 0,
  ConfChange = 1,
  ConfChangeV2 = 2,
}

/** One entry of the replicated log. */
export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must be persisted before any message of the same Ready is sent. */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

/** The voting configuration (joint configurations keep `votersOutgoing` non-empty). */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
  votersOutgoing: NodeId[];
  learnersNext: NodeId[];
  autoLeave: boolean;
}

export interface SnapshotMetadata {
  index: number;
  term: number;
  confState: ConfState;
}

/** A point-in-time image of the application state plus where it sits in the log. */
export interface Snapshot {
  metadata: SnapshotMetadata;
  data: Uint8Array;
}

export enum ConfChangeType {
  AddNode = 0,
  RemoveNode = 1,
  UpdateNode = 2,
  AddLearnerNode = 3,
}

/**
 * A single membership change (raftpb.ConfChange); `context` is opaque to Raft (etcd puts the member's
 * JSON there). `id` is etcd's request ID, which lets the proposer recognise its change when it is
 * applied; Raft ignores it, and it is absent when zero.
 */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  context: Uint8Array;
  id?: bigint;
}

/** How a ConfChangeV2 uses joint consensus (raftpb.ConfChangeTransition). */
export enum ConfChangeTransition {
  /** The simple protocol when the change allows it (one change), else joint with automatic leave. */
  Auto = 0,
  /** Always joint consensus; Raft leaves the joint configuration by itself. */
  JointImplicit = 1,
  /** Always joint consensus; the application proposes the change that leaves it. */
  JointExplicit = 2,
}

/** One operation of a ConfChangeV2 (raftpb.ConfChangeSingle). */
export interface ConfChangeSingle {
  type: ConfChangeType;
  nodeId: NodeId;
}

/**
 * Several membership changes applied atomically (raftpb.ConfChangeV2). An empty one (no changes,
 * transition Auto) leaves a joint configuration.
 */
export interface ConfChangeV2 {
  transition: ConfChangeTransition;
  changes: ConfChangeSingle[];
  context: Uint8Array;
}

export enum MessageType {
  Hup = 0,
  Beat = 1,
  Prop = 2,
  App = 3,
  AppResp = 4,
  Vote = 5,
  VoteResp = 6,
  Snap = 7,
  Heartbeat = 8,
  HeartbeatResp = 9,
  Unreachable = 10,
  SnapStatus = 11,
  CheckQuorum = 12,
  TransferLeader = 13,
  TimeoutNow = 14,
  ReadIndex = 15,
  ReadIndexResp = 16,
  PreVote = 17,
  PreVoteResp = 18,
}

/** A Raft message; the field set mirrors etcd-io/raft's raftpb.Message. */
export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  snapshot?: Snapshot;
  reject: boolean;
  rejectHint: number;
  context: Uint8Array;
}

export enum StateType {
  Follower = 0,
  Candidate = 1,
  Leader = 2,
  PreCandidate = 3,
}

export interface SoftState {
  lead: NodeId;
  raftState: StateType;
}

/** The answer to a ReadIndex request: reads tagged `requestCtx` may be served once `index` is applied. */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

/**
 * Everything the outside world must do after the state machine moved. The driver:
 * 1. persists `hardState`, `entries` and `snapshot` (fsync),
 * 2. sends `messages`,
 * 3. applies `snapshot` then `committedEntries`,
 * 4. calls `advance()`.
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  readStates: ReadState[];
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  mustSync: boolean;
}
