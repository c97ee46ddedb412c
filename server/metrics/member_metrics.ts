/**
 * One member's metrics, under etcd 3.4's names, types, help strings and labels, in a registry of its
 * own: several members in one process (as the tests run them) never share a series.
 *
 * Nothing here costs a client request more than an increment of a plain number field. What the member
 * knows anyway (leader, indexes, database size, keys, watchers) is read through a {@link MemberView}
 * only when scraped; counters the member bumps (leader changes, mvcc operations, failed proposals) are
 * plain fields turned into Prometheus counters at scrape time; histograms are observed once per fsync,
 * per applied batch or per peer probe, never per request (except `grpc_server_handling_seconds` with
 * `--metrics extensive`, see grpc_metrics.ts).
 *
 * @module
 */
import { type Histogram, type HistogramChild, Registry } from "./exposition.ts";
import { registerProcessMetrics } from "./process_metrics.ts";
import { GrpcMetrics } from "./grpc_metrics.ts";

/** etcd's `--metrics`: `extensive` adds per-method gRPC latency histograms. */
export type MetricsLevel = "basic" | "extensive";

/** etcd's buckets for disk latencies (WAL fsync, backend commit): 1 ms doubling up to 8.192 s. */
export const DISK_SECONDS_BUCKETS: readonly number[] = exponentialBuckets(0.001, 2, 14);
/** etcd's buckets for peer round trips: 0.1 ms doubling up to 0.8192 s. */
export const PEER_RTT_SECONDS_BUCKETS: readonly number[] = exponentialBuckets(0.0001, 2, 14);

/** An apply batch slower than this counts in `etcd_server_slow_apply_total` (etcd's 100 ms warning). */
export const SLOW_APPLY_MS = 100;

/** Prometheus's exponential buckets: `count` upper bounds from `start`, each `factor` times the last. */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0, b = start; i < count; i++, b *= factor) out.push(Number(b.toPrecision(12)));
  return out;
}

/** What a member reports when scraped. */
export interface MemberView {
  readonly memberId: bigint;
  /** The member's own version, e.g. "3.5.0". */
  readonly serverVersion: string;
  /** The version the cluster agreed on ("3.5.0"), undefined before the leader decided it. */
  clusterVersion(): string | undefined;
  hasLeader(): boolean;
  isLeader(): boolean;
  isLearner(): boolean;
  /** Raft's commit index on this member. */
  committedIndex(): number;
  /** The index applied to the state machine. */
  appliedIndex(): number;
  /** Proposals made here and not yet applied or failed. */
  pendingProposals(): number;
  /** The database's physical size (Status `dbSize`). */
  dbSizeBytes(): number;
  /** The part of it in use (Status `dbSizeInUse`). */
  dbSizeInUseBytes(): number;
  /** The --quota-backend-bytes in effect. */
  quotaBytes(): number;
  /** Live keys. */
  keys(): number;
  /** Watchers of the key space. */
  watchers(): number;
  currentRevision(): number;
  compactRevision(): number;
  /** Bytes sent to and received from each peer on its Raft streams, by member ID. */
  peerTraffic(): Iterable<[bigint, { sent: number; received: number }]>;
}

/** Operations on the key space, counted as etcd's mvcc counts them (see apply.ts). */
export interface MvccCounts {
  puts: number;
  ranges: number;
  deletes: number;
  txns: number;
}

/** What {@link MemberMetrics} takes. */
export interface MemberMetricsOptions {
  /** `--metrics`; default basic. */
  level?: MetricsLevel;
  /**
   * Report the process's figures (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
   * `process_open_fds`, ... and the JavaScript heap's `nodejs_*`), see process_metrics.ts. Default true.
   */
  processMetrics?: boolean;
  /** Milliseconds, for the durations measured here; default `performance.now`. */
  now?: () => number;
}

/** A member's metrics: its registry, its counters and the observers the member calls. */
export class MemberMetrics {
  /** The registry `/metrics` exposes. */
  readonly registry: Registry = new Registry();
  /** The gRPC counters; a router counts its calls with it (`GrpcRouter.observe`). */
  readonly grpc: GrpcMetrics;
  /** The level the member runs with. */
  readonly level: MetricsLevel;
  /** Milliseconds (monotonic), for the durations the member measures. */
  readonly now: () => number;
  /** Key-space operations, bumped by the applier. */
  readonly mvcc: MvccCounts = { puts: 0, ranges: 0, deletes: 0, txns: 0 };
  /** New leaders seen by this member. */
  leaderChanges = 0;
  /** Proposals that failed (timed out) before they were applied. */
  proposalsFailed = 0;
  /** Apply batches slower than {@link SLOW_APPLY_MS}. */
  slowApplies = 0;
  /** Heartbeats a leader sent late (more than twice the heartbeat interval after the previous one). */
  heartbeatSendFailures = 0;

  #view: MemberView | undefined;
  #lead = 0n;
  readonly #walFsync: HistogramChild;
  readonly #backendCommit: HistogramChild;
  readonly #peerRtt: Histogram;
  readonly #rttByPeer = new Map<bigint, HistogramChild>();
  readonly #lastHeartbeat = new Map<bigint, number>();

  constructor(o: MemberMetricsOptions = {}) {
    this.level = o.level ?? "basic";
    this.now = o.now ?? (() => performance.now());
    const registry = this.registry;
    const view = (): MemberView | undefined => this.#view;
    if (o.processMetrics ?? true) registerProcessMetrics(registry);
    this.grpc = new GrpcMetrics({ registry, extensive: this.level === "extensive", now: this.now });

    // before the member binds its view, its gauges read 0
    const gauge = (name: string, help: string, read: (v: MemberView) => number) =>
      registry.gauge({
        name,
        help,
        collect(emit) {
          const v = view();
          emit(v === undefined ? 0 : read(v));
        },
      });
    const counter = (name: string, help: string, read: () => number) =>
      registry.counter({ name, help, collect: (emit) => emit(read()) });
    /** A gauge of 1 labelled with `label`'s value, when `read` gives one. */
    const info = (name: string, help: string, label: string, read: (v: MemberView) => string | undefined) =>
      registry.gauge({
        name,
        help,
        labelNames: [label],
        collect(emit) {
          const v = view();
          const value = v === undefined ? undefined : read(v);
          if (value !== undefined) emit(1, [value]);
        },
      });
    const flag = (b: boolean) => b ? 1 : 0;

    gauge(
      "etcd_server_has_leader",
      "Whether or not a leader exists. 1 is existence, 0 is not.",
      (v) => flag(v.hasLeader()),
    );
    gauge(
      "etcd_server_is_leader",
      "Whether or not this member is a leader. 1 if is, 0 otherwise.",
      (v) => flag(v.isLeader()),
    );
    gauge(
      "etcd_server_is_learner",
      "Whether or not this member is a learner. 1 if is, 0 otherwise.",
      (v) => flag(v.isLearner()),
    );
    counter(
      "etcd_server_leader_changes_seen_total",
      "The number of leader changes seen.",
      () => this.leaderChanges,
    );
    gauge(
      "etcd_server_proposals_committed_total",
      "The total number of consensus proposals committed.",
      (v) => v.committedIndex(),
    );
    gauge(
      "etcd_server_proposals_applied_total",
      "The total number of consensus proposals applied.",
      (v) => v.appliedIndex(),
    );
    gauge(
      "etcd_server_proposals_pending",
      "The current number of pending proposals to commit.",
      (v) => v.pendingProposals(),
    );
    counter(
      "etcd_server_proposals_failed_total",
      "The total number of failed proposals seen.",
      () => this.proposalsFailed,
    );
    counter(
      "etcd_server_slow_apply_total",
      "The total number of slow apply requests (likely overloaded from slow disk).",
      () => this.slowApplies,
    );
    counter(
      "etcd_server_heartbeat_send_failures_total",
      "The total number of leader heartbeat send failures (likely overloaded from slow disk).",
      () => this.heartbeatSendFailures,
    );
    gauge(
      "etcd_server_quota_backend_bytes",
      "Current backend storage quota size in bytes.",
      (v) => v.quotaBytes(),
    );
    info(
      "etcd_server_id",
      "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
      "server_id",
      (v) => v.memberId.toString(16),
    );
    info(
      "etcd_server_version",
      "Which version is running. 1 for 'server_version' label with current version.",
      "server_version",
      (v) => v.serverVersion,
    );
    info(
      "etcd_cluster_version",
      "Which version is running. 1 for 'cluster_version' label with current cluster version",
      "cluster_version",
      // etcd labels it with major.minor, once the cluster has decided it
      (v) => v.clusterVersion()?.split(".").slice(0, 2).join("."),
    );

    this.#walFsync = registry.histogram({
      name: "etcd_disk_wal_fsync_duration_seconds",
      help: "The latency distributions of fsync called by WAL.",
      buckets: DISK_SECONDS_BUCKETS,
    }).labels();
    this.#backendCommit = registry.histogram({
      name: "etcd_disk_backend_commit_duration_seconds",
      help: "The latency distributions of commit called by backend.",
      buckets: DISK_SECONDS_BUCKETS,
    }).labels();

    gauge(
      "etcd_mvcc_db_total_size_in_bytes",
      "Total size of the underlying database physically allocated in bytes.",
      (v) => v.dbSizeBytes(),
    );
    gauge(
      "etcd_mvcc_db_total_size_in_use_in_bytes",
      "Total size of the underlying database logically in use in bytes.",
      (v) => v.dbSizeInUseBytes(),
    );
    gauge("etcd_debugging_mvcc_keys_total", "Total number of keys.", (v) => v.keys());
    gauge("etcd_debugging_mvcc_watcher_total", "Total number of watchers.", (v) => v.watchers());
    gauge(
      "etcd_debugging_mvcc_current_revision",
      "The current revision of store.",
      (v) => v.currentRevision(),
    );
    gauge(
      "etcd_debugging_mvcc_compact_revision",
      "The revision of the last compaction in store.",
      (v) => v.compactRevision(),
    );
    const mvcc = this.mvcc;
    counter("etcd_mvcc_put_total", "Total number of puts seen by this member.", () => mvcc.puts);
    counter("etcd_mvcc_range_total", "Total number of ranges seen by this member.", () => mvcc.ranges);
    counter("etcd_mvcc_delete_total", "Total number of deletes seen by this member.", () => mvcc.deletes);
    counter("etcd_mvcc_txn_total", "Total number of txns seen by this member.", () => mvcc.txns);

    this.#peerRtt = registry.histogram({
      name: "etcd_network_peer_round_trip_time_seconds",
      help: "Round-Trip-Time histogram between peers.",
      labelNames: ["To"],
      buckets: PEER_RTT_SECONDS_BUCKETS,
    });
    const traffic = (name: string, help: string, label: "To" | "From", pick: "sent" | "received") =>
      registry.counter({
        name,
        help,
        labelNames: [label],
        collect(emit) {
          const v = view();
          if (v === undefined) return;
          for (const [id, t] of v.peerTraffic()) emit(t[pick], [id.toString(16)]);
        },
      });
    traffic("etcd_network_peer_sent_bytes_total", "The total number of bytes sent to peers.", "To", "sent");
    traffic(
      "etcd_network_peer_received_bytes_total",
      "The total number of bytes received from peers.",
      "From",
      "received",
    );
  }

  /** Makes the scrape-time metrics read `view` (the member, once it exists). */
  bind(view: MemberView): void {
    this.#view = view;
  }

  /** One WAL fdatasync took `ms`. */
  observeWalFsync(ms: number): void {
    this.#walFsync.observe(ms / 1000);
  }

  /**
   * One batch of committed entries took `ms` to apply (etcd-ts's counterpart of a backend commit; see
   * the README); a batch slower than {@link SLOW_APPLY_MS} also counts as a slow apply.
   */
  observeApplyBatch(ms: number): void {
    this.#backendCommit.observe(ms / 1000);
    if (ms > SLOW_APPLY_MS) this.slowApplies++;
  }

  /** A probe of peer `id` came back after `ms`. */
  observePeerRoundTrip(id: bigint, ms: number): void {
    let child = this.#rttByPeer.get(id);
    if (child === undefined) {
      child = this.#peerRtt.labels(id.toString(16));
      this.#rttByPeer.set(id, child);
    }
    child.observe(ms / 1000);
  }

  /** The leader this member follows is now `lead` (0 for none): a new leader counts as a change. */
  leaderIs(lead: bigint): void {
    if (lead !== 0n && lead !== this.#lead) this.leaderChanges++;
    this.#lead = lead;
  }

  /**
   * A leader sent a heartbeat to `to` at `now` (ms): one sent more than twice `intervalMs` after the
   * previous one to the same peer counts as a heartbeat send failure, as etcd's timeout detector counts.
   * Returns by how many ms such a late heartbeat exceeded twice the interval, 0 for one on time.
   */
  heartbeatSent(to: bigint, now: number, intervalMs: number): number {
    const last = this.#lastHeartbeat.get(to);
    this.#lastHeartbeat.set(to, now);
    const exceeded = last === undefined ? 0 : now - last - 2 * intervalMs;
    if (exceeded <= 0) return 0;
    this.heartbeatSendFailures++;
    return exceeded;
  }

  /** This member stopped leading: the next heartbeats start afresh. */
  resetHeartbeats(): void {
    this.#lastHeartbeat.clear();
  }

  /** The content type of {@link text}: Prometheus's text format 0.0.4. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in Prometheus's text exposition format. */
  text(): Promise<string> {
    return new Promise((resolve) => resolve(this.registry.text()));
  }
}
