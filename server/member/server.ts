/**
 * One etcd member: storage, Raft, the apply loop and the client API, wired together.
 *
 * Every mutation is proposed to Raft as a log entry, persisted in the WAL, committed, and only then
 * applied here and answered. Reads are served from the applied state: linearizable ones after a
 * ReadIndex round confirms the applied state is current, serializable ones at once.
 *
 * @module
 */
import { joinPath as join } from "../../storage/fs_util.ts";
import { ErrProposalDropped, RawNode } from "../../raft/node.ts";
import { decodeConfChange } from "../../raft/conf_change.ts";
import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  NONE,
  type ReadState,
  type Snapshot,
  type SoftState,
  StateType,
} from "../../raft/types.ts";
import { Wal } from "../../storage/wal.ts";
import { Snapshotter } from "../../storage/snapshot.ts";
import { type ByteStream, concatStreams, streamOf } from "../../storage/byte_stream.ts";
import { MvccStore } from "../../storage/mvcc/store.ts";
import { LeaseStore } from "../../storage/lease.ts";
import { type Config, formatUrl } from "../config/mod.ts";
import type { Logger } from "../logger.ts";
import { hexId } from "../logger.ts";
import { type Clock, systemClock } from "../clock.ts";
import { Applier } from "./apply.ts";
import { Errors } from "../errors.ts";
import { GrpcError, Status } from "../transport/status.ts";
import { decodeProposal, encodeProposal, type Proposal, ProposalKind } from "./proposal.ts";
import { type Member, memberFromJson, type MemberJson, Membership } from "./membership.ts";
import { RaftDriver, ServerStorage } from "./raft_driver.ts";
import { PeerTransport } from "../peer/transport.ts";
import { staticBootstrap } from "../../discovery/static.ts";
import { WatchHub } from "../watch/hub.ts";
import { Compactor, parseRetention } from "./compactor.ts";
import {
  applyLeaseCheckpoint,
  applyLeaseGrant,
  applyLeaseRevoke,
  type LeaseTimeToLive,
  Lessor,
  minLeaseTtlSeconds,
  newLeaseId,
  NotPrimaryError,
} from "../lease/lessor.ts";
import type { LeaseBackend } from "../api/lease.ts";
import { type LeaderCalls, LeaderForwarder } from "./forward.ts";
import {
  type CompactionRequest,
  type CompactionResponse,
  decodeCompactionRequest,
  decodeDeleteRangeRequest,
  decodeLeaseCheckpointRequest,
  decodeLeaseGrantRequest,
  decodeLeaseRevokeRequest,
  decodePutRequest,
  decodeTxnRequest,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  encodeCompactionRequest,
  encodeLeaseGrantRequest,
  encodeLeaseRevokeRequest,
  type LeaseCheckpointRequest,
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
import type { MvccEvent } from "../../storage/mvcc/store.ts";

/** The etcd API version etcd-ts speaks and reports. */
export const ETCD_VERSION = "3.5.0";
/** The cluster version reported alongside. */
export const CLUSTER_VERSION = "3.5.0";

/** Entries kept behind a snapshot for followers that lag a little. */
const SNAPSHOT_CATCH_UP_ENTRIES = 5000;
/** An unanswered ReadIndex is asked again after this long (etcd's readIndexRetryTime). */
const READ_INDEX_RETRY_MS = 500;
/** etcd's default and largest --quota-backend-bytes. */
const DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024;
const MAX_QUOTA_BYTES = 8 * 1024 * 1024 * 1024;

export interface EtcdServerDeps {
  logger: Logger;
  clock?: Clock;
  /** Source of randomness for election timeouts. */
  random?: () => number;
}

interface Waiter {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  /** The decoded request, so the proposer's apply need not decode it again. */
  decoded: unknown;
  deadline: number;
}

/** App state in a snapshot: a JSON part (membership, leases, conf state) then the key space. */
interface SnapshotMeta {
  confState: {
    voters: string[];
    learners: string[];
    votersOutgoing: string[];
    learnersNext: string[];
    autoLeave: boolean;
  };
  membership: ReturnType<Membership["toJSON"]>;
  leases: ReturnType<LeaseStore["toJSON"]>;
}

function confStateToJson(cs: ConfState): SnapshotMeta["confState"] {
  const hex = (ids: bigint[]) => ids.map((id) => id.toString(16));
  return {
    voters: hex(cs.voters),
    learners: hex(cs.learners),
    votersOutgoing: hex(cs.votersOutgoing),
    learnersNext: hex(cs.learnersNext),
    autoLeave: cs.autoLeave,
  };
}

function confStateFromJson(j: SnapshotMeta["confState"]): ConfState {
  const ids = (xs: string[]) => xs.map((x) => BigInt("0x" + x));
  return {
    voters: ids(j.voters),
    learners: ids(j.learners),
    votersOutgoing: ids(j.votersOutgoing),
    learnersNext: ids(j.learnersNext),
    autoLeave: j.autoLeave,
  };
}

/** The snapshot image: u32 length + JSON metadata, then the key space, streamed (never one buffer). */
function encodeAppState(meta: SnapshotMeta, mvcc: ByteStream): ByteStream {
  const json = new TextEncoder().encode(JSON.stringify(meta));
  const head = new Uint8Array(4 + json.length);
  new DataView(head.buffer).setUint32(0, json.length);
  head.set(json, 4);
  return concatStreams(streamOf(head), mvcc);
}

function decodeAppState(data: Uint8Array): { meta: SnapshotMeta; mvcc: Uint8Array } {
  const n = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
  const meta = JSON.parse(new TextDecoder().decode(data.subarray(4, 4 + n))) as SnapshotMeta;
  return { meta, mvcc: data.subarray(4 + n) };
}

const EMPTY_CONF_STATE: ConfState = {
  voters: [],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
};

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
  private readonly tag: number;
  private seq: number;
  private readonly waiters = new Map<number, Waiter>();
  readonly clock: Clock;
  /** Watchers of the key space, fed by every applied write. */
  readonly watchHub: WatchHub;
  private readonly logger: Logger;
  private pendingReads: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private readScheduled = false;
  private readSeq = 0;
  private readonly readBatches = new Map<number, {
    waiters: { resolve: () => void; reject: (e: Error) => void }[];
    deadline: number;
    ctx: Uint8Array;
    /** When to ask again if no answer came (the request or its heartbeat round may have been lost). */
    retryAt: number;
  }>();
  private proposalQueue: { seq: number; data: Uint8Array }[] = [];
  private proposalScheduled = false;
  /** Raft messages to and from the other members. */
  readonly peers: PeerTransport;
  private published = false;
  private publishing = false;
  private sweeper = 0;
  private closed = false;
  private readonly electionTick: number;
  private knownPeers = new Set<bigint>();
  private lastLead: bigint = NONE;
  private readonly readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private forwarder: LeaderForwarder | undefined;
  private compactor: Compactor | undefined;
  /** Lease expiry, kept by the leader. */
  readonly lessor: Lessor;
  private readonly minLeaseTtl: number;
  private readonly random: () => number;
  /** Writes are refused once the database would grow beyond this (--quota-backend-bytes). */
  private readonly quotaBytes: number;
  /** Where the MVCC store keeps superseded values. */
  private readonly historyFile: string;

  private constructor(
    readonly config: Config,
    deps: EtcdServerDeps,
    init: {
      memberId: bigint;
      clusterId: bigint;
      membership: Membership;
      mvcc: MvccStore;
      leases: LeaseStore;
      node: RawNode;
      storage: ServerStorage;
      wal: Wal;
      snapshotter: Snapshotter;
      appliedIndex: number;
      /** Where the MVCC store keeps superseded values (also for stores restored from snapshots). */
      historyFile: string;
      confState: ConfState;
    },
  ) {
    this.clock = deps.clock ?? systemClock;
    this.logger = deps.logger;
    this.memberId = init.memberId;
    this.clusterId = init.clusterId;
    this.membership = init.membership;
    this.mvcc = init.mvcc;
    this.leases = init.leases;
    this.watchHub = new WatchHub({ mvcc: this.mvcc });
    this.applier = new Applier(this.mvcc, this.leases, this.wantsEvents);
    this.tag = Number(init.memberId & 0xffffffffn);
    this.seq = this.clock.now() * 1000;
    this.requestTimeoutMs = 5000 + 2 * config.electionTimeoutMs;
    this.random = deps.random ?? Math.random;
    this.historyFile = init.historyFile;
    this.minLeaseTtl = minLeaseTtlSeconds(config.electionTimeoutMs, config.heartbeatIntervalMs);
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
        applyEntries: (entries) => this.applyEntries(entries),
        restoreSnapshot: (snap) => this.restoreSnapshot(snap),
        snapshotData: (cs) => this.snapshotData(cs),
        send: (messages) => this.send(messages),
        onSoftState: (state, term) => this.onSoftState(state, term),
        onReadStates: (states) => this.onReadStates(states),
      },
    });
    this.peers = new PeerTransport({
      memberId: this.memberId,
      clusterId: this.clusterId,
      listen: config.listenPeerUrls,
      logger: this.logger,
      clock: this.clock,
      version: { server: ETCD_VERSION, cluster: CLUSTER_VERSION },
      onMessage: (m) => this.receive(m),
      onUnreachable: (id) => {
        this.driver.node.reportUnreachable(id);
        this.driver.kick();
      },
      onSnapshotStatus: (id, ok) => {
        this.driver.node.reportSnapshot(id, !ok);
        this.driver.kick();
      },
    });
    this.syncPeers();
  }

  /** Opens (or creates) the member's data directory and starts Raft. */
  static async start(config: Config, deps: EtcdServerDeps): Promise<EtcdServer> {
    const logger = deps.logger;
    const memberDir = join(config.dataDir, "member");
    const walDir = config.walDir || join(memberDir, "wal");
    const snapDir = join(memberDir, "snap");
    // superseded values live in this file, current ones in memory (the file is unlinked once open)
    const historyFile = join(memberDir, "mvcc_history");
    const history = { historyFile };
    await Deno.mkdir(snapDir, { recursive: true });
    const snapshotter = new Snapshotter(snapDir);
    const storage = new ServerStorage();
    const random = deps.random ?? Math.random;
    const electionTick = Math.max(1, Math.round(config.electionTimeoutMs / config.heartbeatIntervalMs));
    const raftConfig = (id: bigint, applied: number) => ({
      id,
      electionTick,
      heartbeatTick: 1,
      storage,
      applied,
      checkQuorum: true,
      preVote: true,
      maxSizePerMsg: 1024 * 1024,
      maxInflightMsgs: 512,
      random,
    });

    if (await Wal.exists(walDir)) {
      // the newest snapshot the WAL knows about: a file saved just before a crash whose mark never became
      // durable is skipped, as etcd does
      const snap = await snapshotter.loadNewestAvailable(await Wal.snapshotMarks(walDir));
      let membership = new Membership(0n);
      let mvcc: MvccStore | undefined;
      let leases = new LeaseStore();
      let confState = EMPTY_CONF_STATE;
      if (snap) {
        const { meta, mvcc: mvccBytes } = decodeAppState(snap.data);
        membership = Membership.fromJSON(meta.membership);
        mvcc = MvccStore.decodeSnapshot(mvccBytes, history);
        leases = LeaseStore.fromJSON(meta.leases);
        confState = confStateFromJson(meta.confState);
        storage.applySnapshot({
          metadata: { index: snap.index, term: snap.term, confState },
          data: snap.data,
        });
      }
      const opened = await Wal.open(
        walDir,
        snap ? { index: snap.index, term: snap.term } : { index: 0, term: 0 },
      );
      if (opened.repaired) logger.warn("repaired the torn tail of the WAL", { "wal-dir": walDir });
      storage.setHardState(opened.hardState);
      storage.append(opened.entries);
      const { memberId, clusterId } = opened.metadata;
      membership.clusterId = clusterId;
      const node = new RawNode(raftConfig(memberId, snap?.index ?? 0));
      logger.info("restarting member", {
        "member-id": hexId(memberId),
        "cluster-id": hexId(clusterId),
        "commit-index": opened.hardState.commit,
        "snapshot-index": snap?.index ?? 0,
      });
      const server = new EtcdServer(config, deps, {
        memberId,
        clusterId,
        membership,
        mvcc: mvcc ?? new MvccStore(history),
        leases,
        node,
        storage,
        wal: opened.wal,
        snapshotter,
        appliedIndex: snap?.index ?? 0,
        historyFile,
        confState,
      });
      if (snap) server.rebuildLeaseKeys();
      await server.run();
      return server;
    }

    if (config.initialClusterState === "existing") {
      throw new Error(
        "joining an existing cluster (--initial-cluster-state=existing) is not implemented yet",
      );
    }
    const { members, memberId, clusterId } = staticBootstrap(
      config.name,
      new Map([...config.initialCluster].map(([n, urls]) => [n, urls.map(formatUrl)])),
      config.initialClusterToken,
    );
    const wal = await Wal.create(walDir, { memberId, clusterId });
    const node = new RawNode(raftConfig(memberId, 0));
    const encoder = new TextEncoder();
    node.bootstrap(members.map((m) => ({
      id: m.id,
      context: encoder.encode(JSON.stringify(
        {
          id: m.id.toString(16),
          name: "",
          peerUrls: m.peerUrls,
          clientUrls: [],
          isLearner: false,
        } satisfies MemberJson,
      )),
    })));
    logger.info("starting a new member", {
      "member-id": hexId(memberId),
      "cluster-id": hexId(clusterId),
      "initial-cluster": [...config.initialCluster.keys()].join(","),
    });
    const server = new EtcdServer(config, deps, {
      memberId,
      clusterId,
      membership: new Membership(clusterId),
      mvcc: new MvccStore(history),
      leases: new LeaseStore(),
      node,
      storage,
      wal,
      snapshotter,
      appliedIndex: 0,
      historyFile,
      confState: EMPTY_CONF_STATE,
    });
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
  }

  /** Called by the driver after bootstrap entries are applied, and on every leader change. */
  private onSoftState(state: SoftState, term: number): void {
    if (state.lead !== this.lastLead) {
      if (state.lead !== NONE) {
        this.logger.info("elected leader", {
          "member-id": hexId(this.memberId),
          leader: hexId(state.lead),
          term,
        });
      } else if (this.lastLead !== NONE) {
        this.logger.info("lost leader", {
          "member-id": hexId(this.memberId),
          "previous-leader": hexId(this.lastLead),
          term,
        });
      }
      this.lastLead = state.lead;
    }
    if (state.lead !== NONE) this.publish();
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

  /** Publishes this member's name and client URLs through the log, once per start. */
  private publish(): void {
    if (this.published || this.publishing || this.closed) return;
    this.publishing = true;
    const attrs = {
      id: this.memberId.toString(16),
      name: this.config.name,
      clientUrls: this.config.advertiseClientUrls.map((u) => u.toString().replace(/\/$/, "")),
    };
    const payload = new TextEncoder().encode(JSON.stringify(attrs));
    this.propose(ProposalKind.MemberAttributes, payload, attrs).then(
      () => {
        this.published = true;
        this.publishing = false;
        for (const w of this.readyWaiters.splice(0)) w.resolve();
        this.logger.info("published local member to cluster through raft", {
          "local-member-id": hexId(this.memberId),
          "local-member-attributes": JSON.stringify({ name: attrs.name, clientURLs: attrs.clientUrls }),
          "cluster-id": hexId(this.clusterId),
        });
      },
      () => {
        this.publishing = false;
      },
    );
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
   * The size of the database as Status reports it and the quota counts it: the key space (with its
   * history) plus an estimate for members and leases. Cheap enough to check on every write.
   */
  dbSize(): number {
    return this.mvcc.approximateBytes() + this.membership.members.size * 256 + this.leases.leases.size * 64;
  }

  /** Refuses a write that would take the database past its quota, in etcd's words. */
  private checkQuota(requestBytes: number): void {
    if (this.dbSize() + requestBytes > this.quotaBytes) throw Errors.noSpace();
  }

  // ---- leases ---------------------------------------------------------------------------------

  leaseGrant(r: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    // the proposing member picks the ID, so every member applies the same one
    const req: LeaseGrantRequest = { TTL: r.TTL, ID: r.ID === 0n ? newLeaseId(this.random) : r.ID };
    return this.propose<LeaseGrantResponse>(ProposalKind.LeaseGrant, encodeLeaseGrantRequest(req), req);
  }

  leaseRevoke(r: LeaseRevokeRequest, raw: Uint8Array): Promise<LeaseRevokeResponse> {
    return this.propose<LeaseRevokeResponse>(ProposalKind.LeaseRevoke, raw, r);
  }

  async leaseRenew(id: bigint, signal: AbortSignal): Promise<number> {
    if (this.lessor.isPrimary) {
      await this.driver.waitApplied(this.driver.node.commitIndex());
      try {
        return await this.lessor.renew(id, signal);
      } catch (err) {
        if (!(err instanceof NotPrimaryError)) throw err;
      }
    }
    return await this.forwardToLeader((f) => f.renew(id, signal));
  }

  async leaseTimeToLive(id: bigint, keys: boolean, signal: AbortSignal): Promise<LeaseTimeToLive> {
    if (this.lessor.isPrimary) {
      await this.driver.waitApplied(this.driver.node.commitIndex());
      try {
        return this.lessor.timeToLive(id, keys);
      } catch (err) {
        if (!(err instanceof NotPrimaryError)) throw err;
      }
    }
    return await this.forwardToLeader((f) => f.timeToLive(id, keys, signal));
  }

  leaseLeases(): bigint[] {
    if (this.lessor.isPrimary) return this.lessor.leases();
    // a follower lists what it has applied; order by ID as no expiry is known here
    return [...this.leases.leases.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  currentHeader(): ResponseHeader {
    return this.header(this.mvcc.currentRevision);
  }

  /** Runs a lease call on the leader's client URL; without a known leader the client should retry. */
  private async forwardToLeader<T>(call: (f: LeaderCalls) => Promise<T>): Promise<T> {
    const lead = this.driver.lead;
    const leader = lead === NONE ? undefined : this.membership.get(lead);
    if (!leader || lead === this.memberId || leader.clientUrls.length === 0) throw Errors.noLeader();
    this.forwarder ??= new LeaderForwarder();
    return await call(this.forwarder.to(leader.clientUrls[0]));
  }

  /**
   * Resolves once this member has published itself through Raft, i.e. it is part of a working cluster
   * with a leader. Like etcd, clients are served only from then on, so a member cut off in a minority
   * never answers with stale data.
   */
  whenReady(): Promise<void> {
    if (this.published) return Promise.resolve();
    if (this.closed) return Promise.reject(Errors.stopped());
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  // ---- the client API -------------------------------------------------------------------------

  header(revision: number): ResponseHeader {
    return { clusterId: this.clusterId, memberId: this.memberId, revision, raftTerm: this.driver.term };
  }

  async range(r: RangeRequest): Promise<RangeResponse> {
    if (!r.serializable) await this.linearizableReadNotify();
    const resp = this.applier.range(r);
    resp.header = this.header(resp.header?.revision ?? this.mvcc.currentRevision);
    return resp;
  }

  async put(r: PutRequest, raw: Uint8Array): Promise<PutResponse> {
    this.checkQuota(raw.length);
    const resp = await this.propose<PutResponse>(ProposalKind.Put, raw, r);
    resp.header = this.header(resp.header?.revision ?? 0);
    return resp;
  }

  async deleteRange(r: DeleteRangeRequest, raw: Uint8Array): Promise<DeleteRangeResponse> {
    const resp = await this.propose<DeleteRangeResponse>(ProposalKind.DeleteRange, raw, r);
    resp.header = this.header(resp.header?.revision ?? 0);
    return resp;
  }

  async txn(r: TxnRequest, raw: Uint8Array): Promise<TxnResponse> {
    let resp: TxnResponse;
    if (isReadOnlyTxn(r)) {
      if (!isSerializableTxn(r)) await this.linearizableReadNotify();
      resp = this.applier.txn(r).response;
    } else {
      this.checkQuota(raw.length);
      resp = await this.propose<TxnResponse>(ProposalKind.Txn, raw, r);
    }
    resp.header = this.header(resp.header?.revision ?? 0);
    return resp;
  }

  async compact(r: CompactionRequest, raw: Uint8Array): Promise<CompactionResponse> {
    const resp = await this.propose<CompactionResponse>(ProposalKind.Compaction, raw, r);
    resp.header = this.header(resp.header?.revision ?? 0);
    return resp;
  }

  memberList(): Member[] {
    return this.membership.list();
  }

  status(): StatusResponse {
    const hs = this.driver.node.status().hardState;
    const errors: string[] = [];
    if (this.driver.fatalError) errors.push(this.driver.fatalError.message);
    const size = this.dbSize();
    return {
      header: this.header(this.mvcc.currentRevision),
      version: ETCD_VERSION,
      dbSize: size,
      leader: this.driver.lead,
      raftIndex: hs.commit,
      raftTerm: hs.term,
      raftAppliedIndex: this.driver.appliedIndex,
      errors,
      dbSizeInUse: size,
      isLearner: this.membership.get(this.memberId)?.isLearner ?? false,
    } as StatusResponse;
  }

  // ---- proposals and reads --------------------------------------------------------------------

  /** Proposes a request and resolves with its apply result once it is committed and applied here. */
  propose<T>(kind: ProposalKind, payload: Uint8Array, decoded: unknown): Promise<T> {
    if (this.closed) return Promise.reject(Errors.stopped());
    if (this.driver.fatalError) return Promise.reject(Errors.stopped());
    const seq = this.seq++;
    const data = encodeProposal(kind, this.tag, seq, payload);
    if (data.length > this.config.maxRequestBytes) return Promise.reject(Errors.requestTooLarge());
    return new Promise<T>((resolve, reject) => {
      this.waiters.set(seq, {
        resolve: resolve as (v: unknown) => void,
        reject,
        decoded,
        deadline: this.clock.now() + this.requestTimeoutMs,
      });
      this.proposalQueue.push({ seq, data });
      if (!this.proposalScheduled) {
        this.proposalScheduled = true;
        queueMicrotask(() => this.flushProposals());
      }
    });
  }

  /**
   * Hands every proposal made during this task to Raft as one batch: one append to the log, one WAL
   * write and fsync, one message per follower (or one forward to the leader).
   */
  private flushProposals(): void {
    this.proposalScheduled = false;
    const batch = this.proposalQueue;
    if (batch.length === 0) return;
    this.proposalQueue = [];
    try {
      this.driver.node.proposeBatch(batch.map((p) => p.data));
    } catch (err) {
      const e = err instanceof ErrProposalDropped
        ? (this.driver.lead === NONE
          ? Errors.noLeader()
          : new GrpcError(Status.UNKNOWN, "raft proposal dropped"))
        : err as Error;
      for (const p of batch) {
        const w = this.waiters.get(p.seq);
        this.waiters.delete(p.seq);
        w?.reject(e);
      }
      return;
    }
    this.driver.kick();
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
    for (const m of this.membership.list()) if (m.id !== this.memberId) want.set(m.id, m.peerUrls);
    for (const [id, urls] of want) this.peers.addPeer(id, urls);
    for (const id of this.knownPeers) if (!want.has(id)) this.peers.removePeer(id);
    this.knownPeers = new Set(want.keys());
  }

  /** Resolves when this member's applied state includes everything committed before the call. */
  linearizableReadNotify(): Promise<void> {
    if (this.closed) return Promise.reject(Errors.stopped());
    return new Promise((resolve, reject) => {
      this.pendingReads.push({ resolve, reject });
      if (!this.readScheduled) {
        this.readScheduled = true;
        queueMicrotask(() => this.flushReads());
      }
    });
  }

  private flushReads(): void {
    this.readScheduled = false;
    const waiters = this.pendingReads;
    if (waiters.length === 0) return;
    this.pendingReads = [];
    const id = ++this.readSeq;
    const ctx = new Uint8Array(8);
    new DataView(ctx.buffer).setFloat64(0, id);
    const now = this.clock.now();
    this.readBatches.set(id, {
      waiters,
      deadline: now + this.requestTimeoutMs,
      ctx,
      retryAt: now + READ_INDEX_RETRY_MS,
    });
    this.driver.node.readIndex(ctx);
    this.driver.kick();
  }

  private onReadStates(states: ReadState[]): void {
    for (const rs of states) {
      if (rs.requestCtx.length !== 8) continue;
      const id = new DataView(rs.requestCtx.buffer, rs.requestCtx.byteOffset, 8).getFloat64(0);
      const batch = this.readBatches.get(id);
      if (!batch) continue;
      this.readBatches.delete(id);
      this.driver.waitApplied(rs.index).then(() => {
        for (const w of batch.waiters) w.resolve();
      });
    }
  }

  /** Fails requests that waited longer than the request timeout; re-asks unanswered read batches. */
  private sweep(): void {
    const now = this.clock.now();
    for (const [seq, w] of this.waiters) {
      if (w.deadline > now) break;
      this.waiters.delete(seq);
      w.reject(Errors.timeout());
    }
    let asked = false;
    for (const [id, batch] of this.readBatches) {
      if (batch.deadline <= now) {
        this.readBatches.delete(id);
        for (const w of batch.waiters) w.reject(Errors.timeout());
      } else if (batch.retryAt <= now) {
        // as etcd does: a ReadIndex whose answer did not come (lost message, leader change) is asked again
        batch.retryAt = now + READ_INDEX_RETRY_MS;
        this.driver.node.readIndex(batch.ctx);
        asked = true;
      }
    }
    if (asked) this.driver.kick();
  }

  // ---- apply ----------------------------------------------------------------------------------

  private applyEntries(entries: Entry[]): void {
    for (const e of entries) {
      if (e.type === EntryType.ConfChange) {
        this.applyConfChange(decodeConfChange(e.data));
        continue;
      }
      if (e.data.length === 0) {
        // a new leader's empty entry: once it applies its first entry of the term, it takes over leases
        if (this.driver.state === StateType.Leader) this.lessor.promote(this.config.electionTimeoutMs);
        continue;
      }
      const p = decodeProposal(e.data);
      const waiter = p.tag === this.tag ? this.waiters.get(p.seq) : undefined;
      if (waiter) this.waiters.delete(p.seq);
      let result: unknown;
      try {
        result = this.applyProposal(p, waiter?.decoded);
      } catch (err) {
        if (err instanceof GrpcError) {
          waiter?.reject(err);
          continue;
        }
        throw err;
      }
      waiter?.resolve(result);
    }
  }

  private applyProposal(p: Proposal, decoded: unknown): unknown {
    switch (p.kind) {
      case ProposalKind.Put: {
        const r = (decoded as PutRequest | undefined) ?? decodePutRequest(p.payload);
        const { response, events } = this.applier.put(r);
        this.emit(events, response.header.revision);
        return response;
      }
      case ProposalKind.DeleteRange: {
        const r = (decoded as DeleteRangeRequest | undefined) ?? decodeDeleteRangeRequest(p.payload);
        const { response, events } = this.applier.deleteRange(r);
        this.emit(events, response.header.revision);
        return response;
      }
      case ProposalKind.Txn: {
        const r = (decoded as TxnRequest | undefined) ?? decodeTxnRequest(p.payload);
        const { response, events } = this.applier.txn(r);
        this.emit(events, response.header.revision);
        return response;
      }
      case ProposalKind.Compaction: {
        const r = (decoded as CompactionRequest | undefined) ?? decodeCompactionRequest(p.payload);
        return this.applier.compact(r);
      }
      case ProposalKind.LeaseGrant: {
        const r = (decoded as LeaseGrantRequest | undefined) ?? decodeLeaseGrantRequest(p.payload);
        const lease = applyLeaseGrant(this.leases, r, this.minLeaseTtl);
        this.lessor.onGranted(lease.id);
        return {
          header: this.header(this.mvcc.currentRevision),
          ID: lease.id,
          TTL: lease.ttl,
          error: "",
        } as LeaseGrantResponse;
      }
      case ProposalKind.LeaseRevoke: {
        const r = (decoded as LeaseRevokeRequest | undefined) ?? decodeLeaseRevokeRequest(p.payload);
        const { response: revision, events } = applyLeaseRevoke(this.applier, r.ID);
        this.emit(events, revision);
        this.lessor.onRevoked(r.ID);
        return { header: this.header(revision) } as LeaseRevokeResponse;
      }
      case ProposalKind.LeaseCheckpoint: {
        const r = (decoded as LeaseCheckpointRequest | undefined) ?? decodeLeaseCheckpointRequest(p.payload);
        applyLeaseCheckpoint(this.leases, r);
        return { header: this.header(this.mvcc.currentRevision) };
      }
      case ProposalKind.MemberAttributes: {
        const attrs = JSON.parse(new TextDecoder().decode(p.payload)) as {
          id: string;
          name: string;
          clientUrls: string[];
        };
        const m = this.membership.get(BigInt("0x" + attrs.id));
        if (m) {
          m.name = attrs.name;
          m.clientUrls = attrs.clientUrls;
        }
        return undefined;
      }
      default:
        this.logger.warn("skipping an entry of unknown kind", { kind: p.kind });
        return undefined;
    }
  }

  /** Whether writes should produce watch events now (see {@link Applier}). */
  private readonly wantsEvents = (): boolean => this.watchHub.wantsEvents;

  private emit(events: MvccEvent[], revision: number): void {
    if (events.length === 0) return;
    this.watchHub.notify({ revision, events });
  }

  private applyConfChange(cc: ConfChange): void {
    this.driver.confState = this.driver.node.applyConfChange(cc);
    switch (cc.type) {
      case ConfChangeType.AddNode:
      case ConfChangeType.AddLearnerNode: {
        const existing = this.membership.get(cc.nodeId);
        if (existing && cc.type === ConfChangeType.AddNode) {
          existing.isLearner = false; // promotion
          break;
        }
        if (cc.context.length > 0) {
          const m = memberFromJson(JSON.parse(new TextDecoder().decode(cc.context)) as MemberJson);
          m.isLearner = cc.type === ConfChangeType.AddLearnerNode;
          this.membership.add(m);
        }
        break;
      }
      case ConfChangeType.RemoveNode:
        this.membership.remove(cc.nodeId);
        break;
      case ConfChangeType.UpdateNode:
        if (cc.context.length > 0) {
          const m = memberFromJson(JSON.parse(new TextDecoder().decode(cc.context)) as MemberJson);
          const existing = this.membership.get(cc.nodeId);
          if (existing) existing.peerUrls = m.peerUrls;
        }
        break;
    }
    this.syncPeers();
    this.campaignIfAlone();
  }

  private snapshotData(confState: ConfState): ByteStream {
    return encodeAppState({
      confState: confStateToJson(confState),
      membership: this.membership.toJSON(),
      leases: this.leases.toJSON(),
    }, this.mvcc.snapshotImage());
  }

  private restoreSnapshot(snap: Snapshot): void {
    const { meta, mvcc } = decodeAppState(snap.data);
    const m = Membership.fromJSON(meta.membership);
    this.membership.members.clear();
    for (const member of m.members.values()) this.membership.add(member);
    for (const r of m.removed) this.membership.removed.add(r);
    const old = this.mvcc;
    this.mvcc = MvccStore.decodeSnapshot(mvcc, { historyFile: this.historyFile });
    this.watchHub.restore(this.mvcc);
    old.close();
    this.leases = LeaseStore.fromJSON(meta.leases);
    this.applier = new Applier(this.mvcc, this.leases, this.wantsEvents);
    this.rebuildLeaseKeys();
    this.lessor.recover(this.leases);
    this.syncPeers();
  }

  /** Lease key sets are not in snapshots: they follow from the keys' lease fields. */
  private rebuildLeaseKeys(): void {
    if (this.leases.leases.size === 0) return;
    this.mvcc.forEachLeasedKey((key, lease) => this.leases.attach(lease, key));
  }

  private send(messages: Message[]): void {
    this.peers.send(messages);
  }

  // ---- leadership -----------------------------------------------------------------------------

  /** Maintenance.MoveLeader: hands leadership to `target` and waits until it has taken over. */
  async moveLeader(target: bigint): Promise<ResponseHeader> {
    if (this.driver.state !== StateType.Leader) throw Errors.notLeader();
    const m = this.membership.get(target);
    if (!m || m.isLearner) throw Errors.badLeaderTransferee();
    if (target !== this.memberId && !(await this.transferLeadership(target, this.requestTimeoutMs))) {
      throw new GrpcError(Status.UNAVAILABLE, "etcdserver: request timed out, leader transfer took too long");
    }
    return this.header(this.mvcc.currentRevision);
  }

  /** Asks Raft to transfer leadership and waits (bounded) until `target` leads. */
  private async transferLeadership(target: bigint, timeoutMs: number): Promise<boolean> {
    this.driver.node.transferLeader(target);
    this.driver.kick();
    const deadline = this.clock.now() + timeoutMs;
    while (this.clock.now() < deadline) {
      if (this.driver.lead === target) return true;
      await new Promise<void>((resolve) => this.clock.setTimeout(resolve, this.config.heartbeatIntervalMs));
    }
    return this.driver.lead === target;
  }

  /** On a graceful stop, a leader hands over to its most up-to-date voter first, as etcd does. */
  private async handOverLeadership(): Promise<void> {
    if (this.driver.state !== StateType.Leader) return;
    const progress = this.driver.node.status().progress;
    if (!progress) return;
    let best: bigint | undefined;
    let bestMatch = -1;
    for (const [id, pr] of progress) {
      if (id === this.memberId || !pr.recentActive || !this.driver.confState.voters.includes(id)) continue;
      if (pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    if (best === undefined) return;
    const ok = await this.transferLeadership(best, 2 * this.config.electionTimeoutMs);
    this.logger.info(ok ? "leadership transferred before stopping" : "leadership transfer timed out", {
      "member-id": hexId(this.memberId),
      transferee: hexId(best),
    });
  }

  /** Stops Raft and fails whatever is still waiting. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.handOverLeadership().catch(() => {});
    this.closed = true;
    for (const w of this.readyWaiters.splice(0)) w.reject(Errors.stopped());
    this.clock.clearInterval(this.sweeper);
    this.compactor?.stop();
    this.lessor.close();
    this.forwarder?.close();
    await this.driver.stop();
    await this.peers.stop();
    for (const w of this.waiters.values()) w.reject(Errors.stopped());
    this.waiters.clear();
    for (const b of this.readBatches.values()) for (const w of b.waiters) w.reject(Errors.stopped());
    this.readBatches.clear();
    for (const w of this.pendingReads) w.reject(Errors.stopped());
    this.pendingReads = [];
    await this.driver.closeStorage();
    this.mvcc.close();
  }
}

function isReadOnlyTxn(r: TxnRequest): boolean {
  for (const ops of [r.success, r.failure]) {
    for (const op of ops) {
      if (op.requestPut || op.requestDeleteRange) return false;
      if (op.requestTxn && !isReadOnlyTxn(op.requestTxn)) return false;
    }
  }
  return true;
}

function isSerializableTxn(r: TxnRequest): boolean {
  for (const ops of [r.success, r.failure]) {
    for (const op of ops) {
      if (op.requestRange && !op.requestRange.serializable) return false;
      if (op.requestTxn && !isSerializableTxn(op.requestTxn)) return false;
    }
  }
  return true;
}
