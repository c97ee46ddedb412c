/**
 * Bringing a member's storage up: a restart opens the WAL at the newest snapshot it marks and restores
 * the applied state from that snapshot; a new member creates the WAL and bootstraps Raft with the
 * initial cluster. Either way the result is everything the member is built from, Raft not yet running.
 *
 * @module
 */
import { joinPath as join } from "../../storage/fs_util.ts";
import { RawNode } from "../../raft/node.ts";
import type { ConfState } from "../../raft/types.ts";
import { Wal, type WalOptions } from "../../storage/wal.ts";
import { denoFs, type FileSystem } from "../../storage/fs.ts";
import { Snapshotter } from "../../storage/snapshot.ts";
import { MvccStore } from "../../storage/mvcc/store.ts";
import { LeaseStore } from "../../storage/lease.ts";
import { V2Store } from "../../storage/v2store/store.ts";
import { type Config, formatUrl } from "../config/mod.ts";
import type { Logger } from "../logger.ts";
import { hexId } from "../logger.ts";
import { type Member, type MemberJson, Membership } from "./membership.ts";
import { assignIds, fetchRemoteCluster, JoinError } from "./join.ts";
import { forceNewCluster } from "./force_new_cluster.ts";
import type { PeerTls } from "../peer/net.ts";
import { ServerStorage } from "./raft_driver.ts";
import { staticBootstrap } from "../../discovery/static.ts";
import { discoverInitialCluster, type DiscoveryDeps } from "../../discovery/discover.ts";
import { EMPTY_CONF_STATE, restoreAppState } from "./app_state.ts";
import type { AuthStore } from "../auth/store.ts";

/** What a member is built from once its storage is open. */
export interface MemberInit {
  memberId: bigint;
  clusterId: bigint;
  membership: Membership;
  mvcc: MvccStore;
  leases: LeaseStore;
  /** etcd's v2 key store (served with --enable-v2; always kept, as every member applies its writes). */
  v2store: V2Store;
  /** Users, roles and permissions, as the snapshot had them (none for a new member). */
  auth?: AuthStore;
  node: RawNode;
  storage: ServerStorage;
  wal: Wal;
  snapshotter: Snapshotter;
  /** Index of the snapshot the state was restored from (0 for a new member). */
  appliedIndex: number;
  /** Where the MVCC store keeps superseded values (also for stores restored from snapshots later). */
  historyFile: string;
  confState: ConfState;
  /** Whether the state came from a snapshot (then lease key sets must be rebuilt from the keys). */
  restored: boolean;
  /** A joining member: the running cluster's members, to talk to until its own log lists them. */
  remotes?: Member[];
}

/** What the member's storage is opened with besides the configuration; the defaults are production's. */
export interface OpenMemberOptions {
  /** The file system of the WAL, the snapshots and the history file (default: Deno's). */
  fs?: FileSystem;
  /** WAL segment size and preallocation (default: the WAL's). */
  wal?: Pick<WalOptions, "segmentBytes" | "preallocate">;
  /** Size of the history file's write buffer (default: the MVCC store's). */
  historyBufferBytes?: number;
  /** What discovery reaches the outside world with (default: production's). */
  discovery?: DiscoveryDeps;
  /** Credentials to ask `https://` peers for the member list when joining. */
  peerTls?: PeerTls;
}

/**
 * Opens (or creates) the member's data directory; Raft is built but not started. `random` (values in
 * [0, 1)) drives Raft's election timeouts and the WAL's segment salts.
 */
export async function openMember(
  config: Config,
  logger: Logger,
  random: () => number,
  options: OpenMemberOptions = {},
): Promise<MemberInit> {
  const fs = options.fs ?? denoFs;
  const memberDir = join(config.dataDir, "member");
  const walDir = config.walDir || join(memberDir, "wal");
  const snapDir = join(memberDir, "snap");
  // superseded values live in this file, current ones in memory (the file is unlinked once open)
  const historyFile = join(memberDir, "mvcc_history");
  const history = { historyFile, historyBufferBytes: options.historyBufferBytes, fs };
  const walOptions: WalOptions = {
    ...options.wal,
    fs,
    randomU32: () => Math.floor(random() * 0x1_0000_0000) >>> 0,
  };
  await fs.mkdir(snapDir, { recursive: true });
  const snapshotter = new Snapshotter(snapDir, { fs });
  const storage = new ServerStorage();
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

  if (await Wal.exists(walDir, fs)) {
    // the newest snapshot the WAL knows about: a file saved just before a crash whose mark never became
    // durable is skipped, and a damaged one set aside for an older one when the WAL reaches back to it,
    // as etcd does
    const snap = await snapshotter.loadNewestAvailable(
      await Wal.snapshotMarks(walDir, fs),
      (err, movedTo) =>
        logger.warn("snapshot file is damaged; set aside, starting from an older one", {
          path: err.file,
          "moved-to": movedTo,
          error: err.message,
        }),
    );
    let membership = new Membership(0n);
    let mvcc: MvccStore | undefined;
    let leases = new LeaseStore();
    let v2store = new V2Store();
    let confState = EMPTY_CONF_STATE;
    let auth: AuthStore | undefined;
    if (snap) {
      const state = restoreAppState(snap.data, history);
      ({ membership, mvcc, leases, confState, v2store, auth } = state);
      storage.applySnapshot({
        metadata: { index: snap.index, term: snap.term, confState },
        data: snap.data,
      });
    }
    let opened;
    try {
      opened = await Wal.open(
        walDir,
        snap ? { index: snap.index, term: snap.term } : { index: 0, term: 0 },
        walOptions,
      );
    } catch (err) {
      mvcc?.close();
      throw err;
    }
    if (opened.repaired) logger.warn("repaired the torn tail of the WAL", { "wal-dir": walDir });
    const { memberId, clusterId } = opened.metadata;
    if (config.forceNewCluster) {
      // disaster recovery: this member alone, with what it has committed; the others are removed by
      // configuration entries appended (and made durable) here, applied when the member starts
      const forced = forceNewCluster(opened.entries, opened.hardState, confState.voters, memberId);
      opened.wal.append(forced.appended, forced.hardState);
      await opened.wal.sync();
      opened.entries = forced.entries;
      opened.hardState = forced.hardState;
      logger.warn("forcing restart member as a single-member cluster", {
        "member-id": hexId(memberId),
        "removed-members": forced.removed.map(hexId).join(","),
        "commit-index": forced.hardState.commit,
      });
    }
    storage.setHardState(opened.hardState);
    storage.append(opened.entries);
    membership.clusterId = clusterId;
    const node = new RawNode(raftConfig(memberId, snap?.index ?? 0));
    logger.info("restarting member", {
      "member-id": hexId(memberId),
      "cluster-id": hexId(clusterId),
      "commit-index": opened.hardState.commit,
      "snapshot-index": snap?.index ?? 0,
      "last-index": storage.lastIndex(),
    });
    return {
      memberId,
      clusterId,
      membership,
      mvcc: mvcc ?? new MvccStore(history),
      leases,
      v2store,
      auth,
      node,
      storage,
      wal: opened.wal,
      snapshotter,
      appliedIndex: snap?.index ?? 0,
      historyFile,
      confState,
      restored: snap !== undefined,
    };
  }

  if (config.initialClusterState === "existing") {
    // the running cluster tells this member its ID and the cluster's; the log comes from the leader
    const local = new Map([...config.initialCluster].map(([n, urls]) => [n, urls.map(formatUrl)]));
    const others = [...local].filter(([n]) => n !== config.name).flatMap(([, urls]) => urls);
    const remote = await fetchRemoteCluster(others, options.peerTls);
    const memberId = assignIds(local, remote).get(config.name);
    if (memberId === undefined) {
      throw new JoinError(`couldn't find local name "${config.name}" in the initial cluster configuration`);
    }
    const wal = await Wal.create(walDir, { memberId, clusterId: remote.clusterId }, walOptions);
    const node = new RawNode(raftConfig(memberId, 0));
    logger.info("joining an existing cluster", {
      "member-id": hexId(memberId),
      "cluster-id": hexId(remote.clusterId),
      "initial-cluster": [...local].map(([n, urls]) => urls.map((u) => `${n}=${u}`).join(",")).join(","),
    });
    return {
      ...fresh(memberId, remote.clusterId, wal, node),
      remotes: remote.members.filter((m) => m.id !== memberId),
    };
  }
  const { cluster, token } = await discoverInitialCluster(
    {
      name: config.name,
      advertisePeerUrls: config.initialAdvertisePeerUrls.map(formatUrl),
      initialCluster: new Map([...config.initialCluster].map(([n, urls]) => [n, urls.map(formatUrl)])),
      initialClusterToken: config.initialClusterToken,
      discovery: config.discovery,
      discoveryProxy: config.discoveryProxy,
      v3: {
        token: config.discoveryToken,
        endpoints: config.discoveryEndpoints,
        dialTimeoutMs: config.discoveryDialTimeoutMs,
        requestTimeoutMs: config.discoveryRequestTimeoutMs,
        keepaliveTimeMs: config.discoveryKeepAliveTimeMs,
        keepaliveTimeoutMs: config.discoveryKeepAliveTimeoutMs,
        insecureTransport: config.discoveryInsecureTransport,
        insecureSkipTlsVerify: config.discoveryInsecureSkipTlsVerify,
        certFile: config.discoveryCert,
        keyFile: config.discoveryKey,
        caFile: config.discoveryCacert,
        user: config.discoveryUser,
        password: config.discoveryPassword,
      },
      discoverySrv: config.discoverySrv,
      discoverySrvName: config.discoverySrvName,
      peerTls: config.peerTls.autoTls || (config.peerTls.certFile !== "" && config.peerTls.keyFile !== ""),
    },
    logger,
    options.discovery,
  );
  const { members, memberId, clusterId } = staticBootstrap(config.name, cluster, token);
  const wal = await Wal.create(walDir, { memberId, clusterId }, walOptions);
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
    "initial-cluster": [...cluster].map(([n, urls]) => urls.map((u) => `${n}=${u}`).join(",")).join(","),
  });
  return fresh(memberId, clusterId, wal, node);

  /** A new member's empty state around its new WAL and Raft node. */
  function fresh(memberId: bigint, clusterId: bigint, wal: Wal, node: RawNode): MemberInit {
    return {
      memberId,
      clusterId,
      membership: new Membership(clusterId),
      mvcc: new MvccStore(history),
      leases: new LeaseStore(),
      v2store: new V2Store(),
      node,
      storage,
      wal,
      snapshotter,
      appliedIndex: 0,
      historyFile,
      confState: EMPTY_CONF_STATE,
      restored: false,
    };
  }
}
