/**
 * One etcd member: storage, Raft, the apply loop and the client API, wired together.
 *
 * Every mutation is proposed to Raft as a log entry, persisted in the WAL, committed, and only then
 * applied here and answered. Reads are served from the applied state: linearizable ones after a
 * ReadIndex round confirms the applied state is current, serializable ones at once.
 *
 * The parts live beside this file, one concern each: `bootstrap.ts` (opening the data directory),
 * `proposer.ts` (proposals and their waiters), `read_index.ts` (linearizable reads), `apply_dispatch.ts`
 * (committed entries to state), `app_state.ts` (the snapshot image), `snapshot_writer.ts` (snapshots in
 * the background), `leadership.ts` (leadership transfer), `lease_backend.ts` (the Lease service's calls),
 * `publication.ts` (this member's attributes, and readiness), `raft_driver.ts` (the Ready loop).
 *
 * @module
 */
import {
  type ConfState,
  type Message,
  MessageType,
  NONE,
  type Snapshot,
  type SoftState,
  StateType,
} from "../../raft/types.ts";
import type { MvccStore, WriteOptions } from "../../storage/mvcc/store.ts";
import type { LeaseStore } from "../../storage/lease.ts";
import type { Config } from "../config/mod.ts";
import type { Logger } from "../logger.ts";
import { goDuration, hexId } from "../logger.ts";
import { type Clock, systemClock } from "../clock.ts";
import { Applier } from "./apply.ts";
import { Errors } from "../errors.ts";
import { GrpcError, Status } from "../transport/status.ts";
import type { CallContext, MessageParts } from "../transport/grpc.ts";
import { memberTag, ProposalKind, wrapAuthorized } from "./proposal.ts";
import { type Member, type Membership, memberToJson } from "./membership.ts";
import { RaftDriver } from "./raft_driver.ts";
import { PeerTransport } from "../peer/transport.ts";
import type { PeerTls } from "../peer/net.ts";
import { WatchHub } from "../watch/hub.ts";
import { Compactor, parseRetention } from "./compactor.ts";
import { type LeaseTimeToLive, Lessor, minLeaseTtlSeconds } from "../lease/lessor.ts";
import type { LeaseBackend } from "../api/lease.ts";
import {
  AlarmAction,
  type AlarmRequest,
  type AlarmResponse,
  AlarmType,
  type CompactionRequest,
  type CompactionResponse,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  encodeAlarmRequest,
  encodeCompactionRequest,
  encodeLeaseRevokeRequest,
  type HashKVResponse,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  type LeaseRevokeRequest,
  type LeaseRevokeResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type ResponseHeader,
  type StatusResponse,
  type TxnRequest,
  type TxnResponse,
} from "../pb/rpc.ts";
import { type MemberInit, openMember } from "./bootstrap.ts";
import type { DiscoveryDeps } from "../../discovery/discover.ts";
import type { FileSystem } from "../../storage/fs.ts";
import { Proposer } from "./proposer.ts";
import { ReadIndexBatcher } from "./read_index.ts";
import { applyEntries, type ApplyTarget, LEASE_GRANT_COST } from "./apply_dispatch.ts";
import { CompactionSteps, STEP_PAUSE_MS } from "./compaction_steps.ts";
import { alarmsRestoredWith, captureAppState, restoreAppState } from "./app_state.ts";
import {
  handOverLeadership,
  type LeadershipDeps,
  logLeaderChange,
  transferLeadership,
} from "./leadership.ts";
import { MemberLeases } from "./lease_backend.ts";
import { Publication } from "./publication.ts";
import { ClusterVersionMonitor, VERSION_NOT_DECIDED } from "./cluster_version.ts";
import { V2Backend } from "./v2_backend.ts";
import { Reconfiguration } from "./reconfig.ts";
import { LeaderForwarder } from "./forward.ts";
import { MEMBERS_PATH, type MembersJson } from "./join.ts";
import type { SnapshotCapture } from "./snapshot_writer.ts";
import { SnapshotViews } from "./snapshot_views.ts";
import { encodedRange, type RangePagesSource } from "./range_pages.ts";
import { setImmediate } from "node:timers";
import { AlarmStore } from "./alarms.ts";
import { keySpaceHash, stateHash } from "./hashes.ts";
import { Auth } from "../auth/auth.ts";
import { isReadOnlyTxn, isSerializableTxn } from "./txn_kind.ts";
import { AuthStore } from "../auth/store.ts";
import { MemberMetrics } from "../metrics/member_metrics.ts";

/** Where a member's peer port answers with its versions, as etcd's does. */
const PEER_VERSION_PATH = "/version";

/** The etcd API version etcd-ts speaks and reports. */
export const ETCD_VERSION = "3.5.0";
/** The cluster version reported alongside. */
export const CLUSTER_VERSION = "3.5.0";

/** A write's options for the watchers: none synced, synced without and with one that asked for prevKv. */
const NO_EVENTS: WriteOptions = { events: false };
const EVENTS_WITHOUT_PREV: WriteOptions = { events: true, prevKvs: false };
const EVENTS_WITH_PREV: WriteOptions = { events: true, prevKvs: true };
/** Entries kept behind a snapshot for followers that lag a little. */
const SNAPSHOT_CATCH_UP_ENTRIES = 5000;
/** etcd's default and largest --quota-backend-bytes. */
const DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024;
const MAX_QUOTA_BYTES = 8 * 1024 * 1024 * 1024;

/** What a member takes from its embedder besides the configuration. */
export interface EtcdServerDeps {
  logger: Logger;
  clock?: Clock;
  /** Source of randomness for election timeouts and the WAL's segment salts. */
  random?: () => number;
  /** The file system of the data directory (default: Deno's). */
  fs?: FileSystem;
  /** Credentials for `https://` peer URLs. */
  peerTls?: PeerTls;
  /** What a new member's discovery reaches the outside world with (default: production's). */
  discovery?: DiscoveryDeps;
  /** Where the member counts what `/metrics` reports (default: a registry of its own, unexposed). */
  metrics?: MemberMetrics;
}

/** An etcd member's core: everything but the network listeners. */
export class EtcdServer implements LeaseBackend {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly membership: Membership;
  mvcc: MvccStore;
  leases: LeaseStore;
  applier: Applier;
  readonly driver: RaftDriver;
  readonly requestTimeoutMs: number;
  readonly clock: Clock;
  /** Watchers of the key space, fed by every applied write. */
  readonly watchHub: WatchHub;
  /** Raft messages to and from the other members. */
  readonly peers: PeerTransport;
  /** The views that snapshots sent to followers are streamed from. */
  private readonly snapshotViews = new SnapshotViews();
  /** Lease expiry, kept by the leader. */
  readonly lessor: Lessor;
  /** etcd's v2 key store and its writes through Raft. */
  readonly v2: V2Backend;
  /** Membership changes (the Cluster API). */
  readonly reconfig: Reconfiguration;
  /** Resolves with the reason when the member stops by itself (it was removed from the cluster). */
  readonly stopNotify: Promise<string>;
  readonly #stopItself = Promise.withResolvers<string>();
  /**
   * Resolves with the error when the member cannot go on (its Raft loop failed on a write that is not
   * retried): the process should exit so that its supervisor restarts it, which recovers from the WAL.
   */
  readonly failedNotify: Promise<Error>;
  readonly #failed = Promise.withResolvers<Error>();
  #removed = false;
  #forwarder: LeaderForwarder | undefined;
  /** A joining member: the running cluster's members when it joined. */
  private readonly remotes: Member[];
  private readonly logger: Logger;
  private readonly proposer: Proposer;
  private readonly reads: ReadIndexBatcher;
  private readonly leaseCalls: MemberLeases;
  private readonly applyTarget: ApplyTarget;
  private readonly leadership: LeadershipDeps;
  private readonly publication: Publication;
  private readonly clusterVersionMonitor: ClusterVersionMonitor;
  private sweeper = 0;
  private closed = false;
  private readonly electionTick: number;
  private knownPeers = new Set<bigint>();
  private lastLead: bigint = NONE;
  private compactor: Compactor | undefined;
  /** Writes are refused once the database would grow beyond this (--quota-backend-bytes). */
  private readonly quotaBytes: number;
  /** Where the MVCC store keeps superseded values. */
  private readonly historyFile: string;
  /** The cluster's active alarms (replicated state, see alarms.ts). */
  readonly alarms: AlarmStore;
  /** What `/metrics` reports (see server/metrics/). */
  readonly metrics: MemberMetrics;
  /** Users, roles, permissions and tokens (see server/auth/). */
  readonly auth: Auth;

  private constructor(readonly config: Config, deps: EtcdServerDeps, init: MemberInit, auth: Auth) {
    this.clock = deps.clock ?? systemClock;
    this.logger = deps.logger;
    this.memberId = init.memberId;
    this.clusterId = init.clusterId;
    this.membership = init.membership;
    this.mvcc = init.mvcc;
    this.leases = init.leases;
    this.watchHub = new WatchHub({ mvcc: this.mvcc });
    this.metrics = deps.metrics ?? new MemberMetrics({ processMetrics: false });
    this.applier = new Applier(this.mvcc, this.leases, this.watching, this.metrics.mvcc);
    this.requestTimeoutMs = 5000 + 2 * config.electionTimeoutMs;
    this.historyFile = init.historyFile;
    this.alarms = alarmsRestoredWith(init.mvcc) ?? new AlarmStore();
    this.auth = auth;
    const minLeaseTtl = minLeaseTtlSeconds(config.electionTimeoutMs, config.heartbeatIntervalMs);
    this.lessor = new Lessor({
      clock: this.clock,
      store: this.leases,
      revokeRetryMs: this.requestTimeoutMs,
      revoke: (id) => {
        const r: LeaseRevokeRequest = { ID: id };
        this.propose(ProposalKind.LeaseRevoke, encodeLeaseRevokeRequest(r), r).catch(() => {});
      },
    });
    this.quotaBytes = config.quotaBackendBytes < 0
      ? Infinity
      : config.quotaBackendBytes === 0
      ? DEFAULT_QUOTA_BYTES
      : Math.min(config.quotaBackendBytes, MAX_QUOTA_BYTES);
    this.electionTick = Math.max(2, Math.round(config.electionTimeoutMs / config.heartbeatIntervalMs));
    this.driver = new RaftDriver({
      node: init.node,
      storage: init.storage,
      wal: init.wal,
      snapshotter: init.snapshotter,
      clock: this.clock,
      logger: this.logger,
      tickMs: config.heartbeatIntervalMs,
      snapshotCount: config.snapshotCount,
      maxSnapshots: config.maxSnapshots,
      catchUpEntries: Math.min(SNAPSHOT_CATCH_UP_ENTRIES, config.snapshotCount),
      appliedIndex: init.appliedIndex,
      snapshotIndex: init.appliedIndex,
      confState: init.confState,
      handler: {
        applyEntries: (entries) => {
          const started = this.metrics.now();
          applyEntries(this.applyTarget, entries);
          this.metrics.observeApplyBatch(this.metrics.now() - started);
        },
        restoreSnapshot: (snap) => this.restoreSnapshot(snap),
        captureSnapshot: (confState) => this.captureSnapshot(confState),
        send: (messages) => {
          if (this.driver.state === StateType.Leader) this.heartbeatsSent(messages);
          this.peers.send(messages);
        },
        proposedHere: (entries) => this.proposer.proposedHere(entries),
        proposedBy: (entries) => this.proposer.proposedBy(entries),
        onSoftState: (state, term) => this.onSoftState(state, term),
        onReadStates: (states) => this.reads.onReadStates(states),
        onFatal: (err) => this.#failed.resolve(err),
      },
      views: this.snapshotViews,
    });
    this.proposer = new Proposer({
      driver: this.driver,
      clock: this.clock,
      tag: memberTag(init.memberId),
      requestTimeoutMs: this.requestTimeoutMs,
      maxRequestBytes: config.maxRequestBytes,
      accepting: () => !this.closed,
    });
    this.reads = new ReadIndexBatcher(this.driver, this.clock, this.requestTimeoutMs);
    this.v2 = new V2Backend({
      clock: this.clock,
      propose: (kind, payload, decoded) => this.propose(kind, payload, decoded),
      isLeader: () => this.driver.state === StateType.Leader,
    });
    this.v2.store = init.v2store;
    this.stopNotify = this.#stopItself.promise;
    this.failedNotify = this.#failed.promise;
    this.remotes = init.remotes ?? [];
    this.reconfig = new Reconfiguration({
      memberId: this.memberId,
      driver: this.driver,
      membership: this.membership,
      clock: this.clock,
      strictReconfigCheck: config.strictReconfigCheck,
      requestTimeoutMs: this.requestTimeoutMs,
      activeSince: (id) => this.peers.activeSince(id),
      random: deps.random ?? Math.random,
    });
    this.leaseCalls = new MemberLeases({
      memberId: this.memberId,
      driver: this.driver,
      lessor: this.lessor,
      membership: this.membership,
      leases: () => this.leases,
      propose: (kind, payload, decoded) => this.propose(kind, payload, decoded),
      random: deps.random ?? Math.random,
    });
    this.publication = new Publication({
      memberId: this.memberId,
      clusterId: this.clusterId,
      name: config.name,
      advertiseClientUrls: config.advertiseClientUrls,
      logger: this.logger,
      propose: (kind, payload, decoded) => this.propose(kind, payload, decoded),
      clock: this.clock,
    });
    this.clusterVersionMonitor = new ClusterVersionMonitor({
      memberId: this.memberId,
      serverVersion: ETCD_VERSION,
      membership: this.membership,
      isLeader: () => this.driver.state === StateType.Leader,
      fetchVersion: (urls) => this.peerVersion(urls),
      propose: (kind, payload, decoded) => this.propose(kind, payload, decoded),
      clock: this.clock,
      logger: this.logger,
    });
    this.leadership = {
      memberId: this.memberId,
      driver: this.driver,
      clock: this.clock,
      logger: this.logger,
      pollMs: config.heartbeatIntervalMs,
      activeSince: (id) => this.peers.activeSince(id),
    };
    // what applying entries reads and changes; the parts a snapshot replaces are read afresh
    const server = this as EtcdServer;
    this.applyTarget = {
      driver: this.driver,
      proposer: this.proposer,
      get applier() {
        return server.applier;
      },
      get mvcc() {
        return server.mvcc;
      },
      get compactionSteps() {
        return server.compactionSteps;
      },
      get leases() {
        return server.leases;
      },
      get v2store() {
        return server.v2.store;
      },
      lessor: this.lessor,
      membership: this.membership,
      watchHub: this.watchHub,
      logger: this.logger,
      electionTimeoutMs: config.electionTimeoutMs,
      minLeaseTtl,
      header: (revision) => this.header(revision),
      syncPeers: () => this.syncPeers(),
      campaignIfAlone: () => this.campaignIfAlone(),
      memberId: this.memberId,
      get reconfig() {
        return server.reconfig;
      },
      onRemoved: () => this.onRemoved(),
      alarms: this.alarms,
      overQuota: (cost) => this.overQuota(cost),
      raiseNoSpace: () => this.raiseNoSpace(),
      replayedUpTo: init.storage.initialState().hardState.commit,
      auth,
    };
    this.peers = new PeerTransport({
      memberId: this.memberId,
      clusterId: this.clusterId,
      listen: config.listenPeerUrls,
      tls: deps.peerTls,
      logger: this.logger,
      clock: this.clock,
      version: { server: ETCD_VERSION, cluster: CLUSTER_VERSION },
      onMessage: (m) => this.receive(m),
      httpHandlers: new Map([
        [MEMBERS_PATH, () => ({ status: 200, body: this.membersJson() })],
        [
          PEER_VERSION_PATH,
          () => ({ status: 200, body: this.versionJson(), contentType: "application/json" }),
        ],
      ]),
      isRemoved: (id) => this.membership.removed.has(id),
      onRemovedFromCluster: () => this.onRemoved(),
      onUnreachable: (id) => {
        this.driver.node.reportUnreachable(id);
        this.driver.kick();
      },
      onSnapshotStatus: (id, ok) => {
        this.snapshotViews.settled(id);
        this.driver.node.reportSnapshot(id, !ok);
        this.driver.kick();
      },
      // a snapshot is streamed from the view of its index, and received straight into its file
      snapshotStream: (m) => this.snapshotViews.open(m.to, m.snapshot?.metadata.index ?? 0),
      receiveSnapshot: (m, image) => this.driver.receiveSnapshot(m, image),
      onRoundTrip: (id, ms) => this.metrics.observePeerRoundTrip(id, ms),
    });
    this.syncPeers();
    init.wal.observeFsync({ observe: (ms) => this.metrics.observeWalFsync(ms) });
    this.metrics.bind({
      memberId: this.memberId,
      serverVersion: ETCD_VERSION,
      clusterVersion: () => this.membership.clusterVersion,
      hasLeader: () => this.driver.lead !== NONE,
      isLeader: () => this.driver.state === StateType.Leader,
      isLearner: () => this.isLearner(),
      committedIndex: () => this.driver.node.status().hardState.commit,
      appliedIndex: () => this.driver.appliedIndex,
      pendingProposals: () => this.proposer.pending,
      dbSizeBytes: () => this.dbSize(),
      dbSizeInUseBytes: () => this.dbSizeInUse(),
      quotaBytes: () => this.quotaBytes,
      keys: () => this.mvcc.keyCount(),
      watchers: () => {
        const w = this.watchHub.stats();
        return w.synced + w.pending + w.blocked;
      },
      currentRevision: () => this.mvcc.currentRevision,
      compactRevision: () => this.mvcc.compactRevision,
      peerTraffic: () => this.peers.traffic(),
    });
  }

  /** Opens (or creates) the member's data directory and starts Raft. */
  static async start(config: Config, deps: EtcdServerDeps): Promise<EtcdServer> {
    // tokens first: a bad --auth-token (or unreadable JWT keys) stops the member before its data
    // directory is touched; they ask for the applied index, which the driver made below keeps
    const applied = { index: () => 0 };
    const auth = await Auth.fromConfig(config, deps.clock ?? systemClock, () => applied.index());
    let init: MemberInit;
    try {
      init = await openMember(config, deps.logger, deps.random ?? Math.random, {
        fs: deps.fs,
        discovery: deps.discovery,
        peerTls: deps.peerTls,
      });
    } catch (err) {
      auth.close();
      throw err;
    }
    auth.store = init.auth ?? new AuthStore();
    const server = new EtcdServer(config, deps, init, auth);
    applied.index = () => server.driver.appliedIndex;
    if (init.restored) server.rebuildLeaseKeys();
    await server.run();
    return server;
  }

  private async run(): Promise<void> {
    try {
      await this.peers.start();
    } catch (err) {
      await this.driver.closeStorage();
      throw err;
    }
    // a member of a multi-member cluster starts its first election timer nearly expired, as etcd does,
    // so that a fresh cluster elects a leader within about one election timeout
    if (this.driver.confState.voters.length > 1 || this.membership.list().length > 1) {
      for (let i = 1; i < this.electionTick; i++) this.driver.node.tick();
    }
    this.driver.start();
    this.startCompactor();
    this.campaignIfAlone();
    this.sweeper = this.clock.setInterval(() => this.sweep(), 100);
    this.v2.start();
    this.clusterVersionMonitor.start();
  }

  /** Called by the driver after bootstrap entries are applied, and on every leader change. */
  private onSoftState(state: SoftState, term: number): void {
    this.metrics.leaderIs(state.lead);
    if (state.raftState !== StateType.Leader) this.metrics.resetHeartbeats();
    if (state.lead !== this.lastLead) {
      logLeaderChange(this.logger, this.memberId, this.lastLead, state.lead, term);
      this.lastLead = state.lead;
    }
    if (state.lead !== NONE) this.publication.publish();
    this.compactor?.setLeader(state.raftState === StateType.Leader);
    if (state.raftState !== StateType.Leader) this.lessor.demote();
    if (state.raftState === StateType.Leader) {
      this.logger.info("became leader", { "member-id": hexId(this.memberId) });
    }
  }

  /** Makes the lone voter of a fresh single-member cluster campaign at once. */
  campaignIfAlone(): void {
    queueMicrotask(() => {
      const voters = this.driver.confState.voters;
      if (this.closed || voters.length !== 1 || voters[0] !== this.memberId || this.driver.lead !== NONE) {
        return;
      }
      this.driver.node.campaign();
      this.driver.kick();
    });
  }

  private startCompactor(): void {
    const retention = parseRetention(this.config.autoCompactionMode, this.config.autoCompactionRetention);
    if (!retention) return;
    this.compactor = new Compactor(
      retention,
      {
        currentRevision: () => this.mvcc.currentRevision,
        compact: async (revision) => {
          const r: CompactionRequest = { revision, physical: false };
          await this.compact(r, encodeCompactionRequest(r));
          this.logger.info("completed auto compaction", { "compact-revision": revision });
        },
      },
      this.clock,
      (err, revision) => {
        this.logger.warn("failed auto compaction", { revision, error: err.message });
      },
    );
    this.compactor.start();
    this.compactor.setLeader(this.driver.state === StateType.Leader);
  }

  /**
   * The size of the database as Status reports it (`dbSize`) and the quota counts it, like etcd's bbolt
   * file: the key space's footprint (its largest size since the last defragmentation, see
   * `MvccStore.footprintBytes`) plus an estimate for members and leases. Cheap enough for every write.
   */
  dbSize(): number {
    return this.mvcc.footprintBytes() + this.metaBytes();
  }

  /** The part of {@link dbSize} holding live data now (Status `dbSizeInUse`): it drops on compaction. */
  dbSizeInUse(): number {
    return this.mvcc.approximateBytes() + this.metaBytes();
  }

  private metaBytes(): number {
    return this.membership.members.size * 256 + this.leases.leases.size * 64;
  }

  /**
   * Refuses a write that would take the database past its quota, in etcd's words, after raising the
   * NOSPACE alarm for this member (through Raft, as etcd does; a failure to raise it is not the
   * client's error).
   */
  private async refuseOverQuota(): Promise<never> {
    await this.raiseNoSpace();
    throw Errors.noSpace();
  }

  /** Whether the database plus `requestBytes` reaches the quota (checked on the request path, synchronously). */
  private overQuota(requestBytes: number): boolean {
    return this.dbSize() + requestBytes >= this.quotaBytes;
  }

  /** Proposes the NOSPACE alarm for this member; settles once applied, or failed (never rejects). */
  private async raiseNoSpace(): Promise<void> {
    const r: AlarmRequest = {
      action: AlarmAction.ACTIVATE,
      memberID: this.memberId,
      alarm: AlarmType.NOSPACE,
    };
    await this.propose(ProposalKind.Alarm, encodeAlarmRequest(r), r).catch(() => {});
  }

  // ---- leases (see lease_backend.ts) ----------------------------------------------------------

  async leaseGrant(r: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    if (this.overQuota(LEASE_GRANT_COST)) await this.refuseOverQuota();
    return await this.leaseCalls.grant(r);
  }

  leaseRevoke(r: LeaseRevokeRequest, raw: Uint8Array, authRevision?: number): Promise<LeaseRevokeResponse> {
    if (authRevision !== undefined) {
      return this.#proposeChecked(ProposalKind.LeaseRevoke, raw, r, authRevision);
    }
    return this.leaseCalls.revoke(r, raw);
  }

  leaseRenew(id: bigint, signal: AbortSignal): Promise<number> {
    return this.leaseCalls.renew(id, signal);
  }

  leaseTimeToLive(id: bigint, keys: boolean, signal: AbortSignal): Promise<LeaseTimeToLive> {
    return this.leaseCalls.timeToLive(id, keys, signal);
  }

  leaseLeases(): bigint[] {
    return this.leaseCalls.list();
  }

  currentHeader(): ResponseHeader {
    return this.header(this.mvcc.currentRevision);
  }

  /**
   * Resolves once this member has published itself through Raft, i.e. it is part of a working cluster
   * with a leader. Like etcd, clients are served only from then on, so a member cut off in a minority
   * never answers with stale data.
   */
  whenReady(): Promise<void> {
    return this.publication.whenPublished();
  }

  // ---- the client API -------------------------------------------------------------------------

  header(revision: number): ResponseHeader {
    return { clusterId: this.clusterId, memberId: this.memberId, revision, raftTerm: this.driver.term };
  }

  /** An applied compaction's remaining steps, with pauses between them (see compaction_steps.ts). */
  private readonly compactionSteps = new CompactionSteps(
    () => this.mvcc,
    () => new Promise((resolve) => this.clock.setTimeout(resolve, STEP_PAUSE_MS)),
    (err) =>
      this.logger.warn("failed compaction step", { error: err instanceof Error ? err.message : String(err) }),
  );

  /** What long range reads page through (see range_pages.ts). */
  private readonly rangePages: RangePagesSource = {
    store: () => this.mvcc,
    rangeAtOnce: (r) => {
      const resp = this.applier.range(r);
      resp.header = this.header(resp.header?.revision ?? this.mvcc.currentRevision);
      return resp;
    },
    header: (revision) => this.header(revision),
    nextTurn: () => new Promise((resolve) => setImmediate(resolve)),
  };

  async range(r: RangeRequest): Promise<RangeResponse> {
    if (!r.serializable) await this.linearizableReadNotify();
    return this.rangePages.rangeAtOnce(r);
  }

  /** {@link range}, encoded: a long range is read page by page (see range_pages.ts). */
  async rangeEncoded(r: RangeRequest, call?: CallContext): Promise<Uint8Array | MessageParts> {
    if (!r.serializable) await this.linearizableReadNotify();
    return await encodedRange(this.rangePages, r, call);
  }

  /** `authRevision`: the auth revision the request was checked at, while auth is on (see proposal.ts). */
  async put(r: PutRequest, raw: Uint8Array, authRevision?: number): Promise<PutResponse> {
    if (this.overQuota(raw.length)) await this.refuseOverQuota();
    const resp = await this.#proposeChecked<PutResponse>(ProposalKind.Put, raw, r, authRevision);
    resp.header = this.header(resp.header?.revision ?? 0);
    return resp;
  }

  async deleteRange(
    r: DeleteRangeRequest,
    raw: Uint8Array,
    authRevision?: number,
  ): Promise<DeleteRangeResponse> {
    const resp = await this.#proposeChecked<DeleteRangeResponse>(
      ProposalKind.DeleteRange,
      raw,
      r,
      authRevision,
    );
    resp.header = this.header(resp.header?.revision ?? 0);
    return resp;
  }

  async txn(r: TxnRequest, raw: Uint8Array, authRevision?: number): Promise<TxnResponse> {
    let resp: TxnResponse;
    if (isReadOnlyTxn(r)) {
      if (!isSerializableTxn(r)) await this.linearizableReadNotify();
      resp = this.applier.txn(r).response;
    } else {
      if (this.overQuota(raw.length)) await this.refuseOverQuota();
      resp = await this.#proposeChecked<TxnResponse>(ProposalKind.Txn, raw, r, authRevision);
    }
    resp.header = this.header(resp.header?.revision ?? 0);
    return resp;
  }

  async compact(r: CompactionRequest, raw: Uint8Array): Promise<CompactionResponse> {
    const resp = await this.propose<CompactionResponse>(ProposalKind.Compaction, raw, r);
    // as etcd: with `physical`, the answer waits until the compacted revisions are gone from this member
    if (r.physical) await this.compactionSteps.finished();
    resp.header = this.header(resp.header?.revision ?? 0);
    return resp;
  }

  /** The cluster version the leader decided ("3.5.0"), or `not_decided`, as `/version` reports it. */
  get clusterVersion(): string {
    return this.membership.clusterVersion ?? VERSION_NOT_DECIDED;
  }

  /** `GET /version`'s body: this member's server version and the cluster version. */
  versionJson(): string {
    return JSON.stringify({ etcdserver: ETCD_VERSION, etcdcluster: this.clusterVersion });
  }

  /** A member's server version from its peer port's `/version`, or undefined if none answers in time. */
  private async peerVersion(peerUrls: string[]): Promise<string | undefined> {
    for (const url of peerUrls) {
      try {
        const a = await this.peers.request(url, PEER_VERSION_PATH, { timeoutMs: this.requestTimeoutMs });
        if (a.status !== 200) continue;
        const j = JSON.parse(a.body) as { etcdserver?: unknown };
        if (typeof j.etcdserver === "string") return j.etcdserver;
      } catch {
        // unreachable on this URL: try the next
      }
    }
    return undefined;
  }

  memberList(): Member[] {
    return this.membership.list();
  }

  status(): StatusResponse {
    const hs = this.driver.node.status().hardState;
    // as etcd: "no leader" first, then one line per active alarm
    const errors: string[] = [];
    if (this.driver.fatalError) errors.push(this.driver.fatalError.message);
    if (this.driver.lead === NONE) errors.push(Errors.noLeader().message);
    errors.push(...this.alarms.statusErrors());
    return {
      header: this.header(this.mvcc.currentRevision),
      version: ETCD_VERSION,
      dbSize: this.dbSize(),
      leader: this.driver.lead,
      raftIndex: hs.commit,
      raftTerm: hs.term,
      raftAppliedIndex: this.driver.appliedIndex,
      errors,
      dbSizeInUse: this.dbSizeInUse(),
      isLearner: this.isLearner(),
    };
  }

  // ---- proposals and reads --------------------------------------------------------------------

  /** Proposes a request and resolves with its apply result once it is committed and applied here. */
  propose<T>(kind: ProposalKind, payload: Uint8Array, decoded: unknown): Promise<T> {
    return this.proposer.propose<T>(kind, payload, decoded);
  }

  /** Proposes a request, wrapped with the auth revision it was checked at when there is one. */
  #proposeChecked<T>(
    kind: ProposalKind,
    raw: Uint8Array,
    r: unknown,
    authRevision: number | undefined,
  ): Promise<T> {
    if (authRevision === undefined) return this.propose<T>(kind, raw, r);
    return this.propose<T>(ProposalKind.Authorized, wrapAuthorized(authRevision, kind, raw), r);
  }

  /** Resolves when this member's applied state includes everything committed before the call. */
  linearizableReadNotify(): Promise<void> {
    if (this.closed) return Promise.reject(Errors.stopped());
    return this.reads.notify();
  }

  /** A Raft message from a peer. */
  private receive(m: Message): void {
    if (this.closed) return;
    try {
      this.driver.node.step(m);
    } catch (err) {
      // a response from a member that was removed, or a proposal while no leader is known: Raft retries
      this.logger.debug("dropped a Raft message", { type: m.type, from: hexId(m.from), error: String(err) });
      return;
    }
    this.driver.kick();
  }

  /** Makes the peer transport know exactly the other current members. */
  private syncPeers(): void {
    const want = new Map<bigint, string[]>();
    // a joining member talks to the members it was told of until its own log has caught up to itself
    if (this.membership.get(this.memberId) === undefined) {
      for (const m of this.remotes) if (!this.membership.removed.has(m.id)) want.set(m.id, m.peerUrls);
    }
    for (const m of this.membership.list()) if (m.id !== this.memberId) want.set(m.id, m.peerUrls);
    for (const [id, urls] of want) this.peers.addPeer(id, urls);
    for (const id of this.knownPeers) {
      if (want.has(id)) continue;
      this.peers.removePeer(id);
      this.snapshotViews.settled(id);
    }
    this.knownPeers = new Set(want.keys());
  }

  /**
   * The heartbeats a leader sends: one sent more than twice the interval after the previous one to the
   * same peer counts in etcd's late-heartbeat metric and is logged in etcd's words (its followers may
   * be about to start an election).
   */
  private heartbeatsSent(messages: Message[]): void {
    const now = this.clock.now();
    const interval = this.config.heartbeatIntervalMs;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      if (m.type !== MessageType.Heartbeat) continue;
      const exceeded = this.metrics.heartbeatSent(m.to, now, interval);
      if (exceeded > 0) {
        this.logger.warn(
          "leader failed to send out heartbeat on time; took too long, leader is overloaded likely from slow disk",
          {
            to: hexId(m.to),
            "heartbeat-interval": goDuration(interval),
            "expected-duration": goDuration(2 * interval),
            "exceeded-duration": goDuration(Math.round(exceeded)),
          },
        );
      }
    }
  }

  /** Fails requests that waited longer than the request timeout; re-asks unanswered read batches. */
  private sweep(): void {
    const now = this.clock.now();
    const waiting = this.proposer.pending;
    this.proposer.expire(now);
    this.metrics.proposalsFailed += waiting - this.proposer.pending;
    this.reads.sweep(now);
  }

  // ---- snapshots (see app_state.ts) -----------------------------------------------------------

  /** What each write should record now for the watchers (see {@link Applier}). */
  private readonly watching = (): WriteOptions => {
    const hub = this.watchHub;
    return !hub.wantsEvents ? NO_EVENTS : hub.wantsPrevKvs ? EVENTS_WITH_PREV : EVENTS_WITHOUT_PREV;
  };

  /**
   * The applied state as it is now, for a backup (Maintenance.Snapshot): taken in one synchronous step
   * between two applies, so it is consistent; release it once streamed.
   */
  backup(): { capture: SnapshotCapture; revision: number } {
    return { capture: this.captureSnapshot(this.driver.confState), revision: this.mvcc.currentRevision };
  }

  private captureSnapshot(confState: ConfState): SnapshotCapture {
    return captureAppState({
      confState,
      membership: this.membership,
      leases: this.leases,
      mvcc: this.mvcc,
      v2store: this.v2.store,
      alarms: this.alarms,
      auth: this.auth.store,
    });
  }

  private restoreSnapshot(snap: Snapshot): void {
    const state = restoreAppState(snap.data, { historyFile: this.historyFile });
    this.membership.members.clear();
    for (const member of state.membership.members.values()) this.membership.add(member);
    for (const r of state.membership.removed) this.membership.removed.add(r);
    if (state.membership.clusterVersion !== undefined) {
      this.membership.clusterVersion = state.membership.clusterVersion;
    }
    const old = this.mvcc;
    this.mvcc = state.mvcc;
    this.watchHub.restore(this.mvcc);
    old.close();
    this.leases = state.leases;
    this.v2.restore(state.v2store);
    this.alarms.replaceWith(state.alarms ?? new AlarmStore());
    this.auth.store = state.auth ?? new AuthStore();
    this.applier = new Applier(this.mvcc, this.leases, this.watching, this.metrics.mvcc);
    this.rebuildLeaseKeys();
    this.lessor.recover(this.leases);
    this.syncPeers();
  }

  /**
   * A unary call answered by the leader instead (MemberPromote: only the leader knows whether a learner
   * has caught up), sent to its first client URL.
   */
  async forwardToLeader(path: string, raw: Uint8Array, ctx: CallContext): Promise<Uint8Array> {
    const leader = this.membership.get(this.driver.lead);
    if (leader === undefined || leader.clientUrls.length === 0) throw Errors.noLeader();
    this.#forwarder ??= new LeaderForwarder();
    const token = ctx.metadata.get("token");
    return await this.#forwarder.call(leader.clientUrls[0], path, raw, ctx.signal, token ? { token } : {});
  }

  /** What the peer port's `GET /members` answers: the cluster ID and its members (for joining members). */
  private membersJson(): string {
    const j: MembersJson = {
      clusterId: this.clusterId.toString(16),
      members: this.membership.list().map(memberToJson),
    };
    return JSON.stringify(j);
  }

  /** Whether this member is a learner now. */
  isLearner(): boolean {
    return this.membership.get(this.memberId)?.isLearner === true;
  }

  /**
   * This member was removed from the cluster (a change applied here, or a peer answered 410): it stops
   * after a second, so that the change reaches the others first, as etcd does.
   */
  private onRemoved(): void {
    if (this.#removed || this.closed) return;
    this.#removed = true;
    const reason = "the member has been permanently removed from the cluster";
    this.logger.warn(reason, { "member-id": hexId(this.memberId) });
    this.clock.setTimeout(() => this.#stopItself.resolve(reason), 1000);
  }

  /** Lease key sets are not in snapshots: they follow from the keys' lease fields. */
  private rebuildLeaseKeys(): void {
    if (this.leases.leases.size === 0) return;
    this.mvcc.forEachLeasedKey((key, lease) => this.leases.attach(lease, key));
  }

  // ---- alarms, hashes, defragmentation (the Maintenance service) ----------------------------------

  /** Maintenance.Alarm: every action, GET included, goes through Raft as in etcd. */
  async alarm(r: AlarmRequest, raw: Uint8Array): Promise<AlarmResponse> {
    const resp = await this.propose<AlarmResponse>(ProposalKind.Alarm, raw, r);
    resp.header = this.header(this.mvcc.currentRevision);
    return resp;
  }

  /** Maintenance.HashKV at `revision` (0: current), from this member's applied state (see hashes.ts). */
  hashKV(revision: number): HashKVResponse {
    const h = keySpaceHash(this.mvcc, revision);
    return { header: this.header(h.revision), hash: h.hash, compactRevision: h.compactRevision };
  }

  /** Maintenance.Hash: a hash of the whole replicated state (see hashes.ts). */
  hash(): number {
    return stateHash(this.mvcc, this.leases);
  }

  /** Maintenance.Defragment: reclaims the space compaction freed, on this member only (not via Raft). */
  defragment(): ResponseHeader {
    this.mvcc.defragment();
    return this.header(this.mvcc.currentRevision);
  }

  // ---- leadership (see leadership.ts) ---------------------------------------------------------

  /** Maintenance.MoveLeader: hands leadership to `target` and waits until it has taken over. */
  async moveLeader(target: bigint): Promise<ResponseHeader> {
    if (this.driver.state !== StateType.Leader) throw Errors.notLeader();
    const m = this.membership.get(target);
    if (!m || m.isLearner) throw Errors.badLeaderTransferee();
    if (
      target !== this.memberId && !(await transferLeadership(this.leadership, target, this.requestTimeoutMs))
    ) {
      throw new GrpcError(Status.UNAVAILABLE, "etcdserver: request timed out, leader transfer took too long");
    }
    return this.header(this.mvcc.currentRevision);
  }

  /** Stops Raft and fails whatever is still waiting. */
  async close(): Promise<void> {
    if (this.closed) return;
    await handOverLeadership(this.leadership, 2 * this.config.electionTimeoutMs).catch(() => {});
    this.closed = true;
    this.publication.close(Errors.stopped());
    this.clusterVersionMonitor.stop();
    this.reconfig.close(Errors.stopped());
    this.#forwarder?.close();
    this.clock.clearInterval(this.sweeper);
    this.v2.close();
    this.compactor?.stop();
    this.compactionSteps.stop();
    this.lessor.close();
    this.leaseCalls.close();
    this.auth.close();
    // waits for the Ready in progress and for a snapshot being written to be durable
    await this.driver.stop();
    await this.peers.stop();
    // no upload runs any more: the views left (pinned for a message never sent) are released
    this.snapshotViews.close();
    this.proposer.failAll(Errors.stopped());
    this.reads.failAll(Errors.stopped());
    await this.driver.closeStorage();
    this.mvcc.close();
  }
}
