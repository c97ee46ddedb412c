/**
 * What the parts of the peer transport share: the settings with their defaults, the counters, the set of
 * background tasks `stop` waits for, and the batched unreachable reports. One per transport.
 *
 * @module
 */
import type { Message } from "../../raft/types.ts";
import { type Clock, systemClock } from "../clock.ts";
import { hexId } from "../logger.ts";
import { errorText } from "./errors.ts";
import { formatResponse } from "./http.ts";
import { writeAll } from "../../storage/fs_util.ts";
import type { PeerConn } from "./net.ts";
import {
  type MessageCodec,
  type PeerLogger,
  type PeerTraffic,
  type PeerTransportOptions,
  type PeerTransportStats,
  protobufCodec,
} from "./options.ts";

/** The shared state of one peer transport. */
export class PeerContext {
  /** Traffic counters (the transport's `stats`). */
  readonly stats: PeerTransportStats = {
    framesSent: 0,
    writes: 0,
    bytesSent: 0,
    framesReceived: 0,
    reads: 0,
    dropped: 0,
    refused: 0,
    snapshotsSent: 0,
    snapshotsFailed: 0,
    snapshotsReceived: 0,
    connects: 0,
  };
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly idHex: string;
  readonly cidHex: string;
  readonly serverVersion: string;
  readonly clusterVersion: string;
  readonly codec: MessageCodec;
  readonly clock: Clock;
  readonly logger: PeerLogger;
  readonly maxQueueMessages: number;
  readonly maxQueueBytes: number;
  readonly maxMessageBytes: number;
  readonly maxSnapshotBytes: number;
  readonly keepaliveMs: number;
  readonly idleTimeoutMs: number;
  readonly dialTimeoutMs: number;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  /** Set once by `stop`; nothing new starts afterwards. */
  stopped = false;
  /** Stream bytes by peer, for metrics: one record per member ever talked to, bumped in place. */
  readonly traffic = new Map<bigint, PeerTraffic>();

  private readonly tasks = new Set<Promise<void>>();
  private readonly unreachable = new Set<bigint>();
  private unreachableScheduled = false;

  /** @param o the transport's options, as the member gave them. */
  constructor(readonly o: PeerTransportOptions) {
    this.memberId = o.memberId;
    this.clusterId = o.clusterId;
    this.idHex = hexId(o.memberId);
    this.cidHex = hexId(o.clusterId);
    const version = o.version ?? { server: "3.5.0", cluster: "3.5.0" };
    this.serverVersion = version.server;
    this.clusterVersion = version.cluster;
    this.codec = o.codec ?? protobufCodec;
    this.clock = o.clock ?? systemClock;
    this.logger = o.logger;
    this.maxQueueMessages = o.maxQueueMessages ?? 4096;
    this.maxQueueBytes = o.maxQueueBytes ?? 64 * 1024 * 1024;
    this.maxMessageBytes = o.maxMessageBytes ?? 256 * 1024 * 1024;
    this.maxSnapshotBytes = o.maxSnapshotBytes ?? 8 * 1024 * 1024 * 1024;
    this.keepaliveMs = o.keepaliveMs ?? 1000;
    this.idleTimeoutMs = o.idleTimeoutMs ?? 5000;
    this.dialTimeoutMs = o.dialTimeoutMs ?? 5000;
    this.backoffMinMs = o.backoffMinMs ?? 100;
    this.backoffMaxMs = o.backoffMaxMs ?? 1000;
  }

  /** The traffic record of peer `id` (made on first use; callers keep it). */
  trafficOf(id: bigint): PeerTraffic {
    let t = this.traffic.get(id);
    if (t === undefined) this.traffic.set(id, t = { sent: 0, received: 0 });
    return t;
  }

  /** Keeps `task` in the set `stop` waits for until it settles. */
  track(task: Promise<void>): void {
    this.tasks.add(task);
    task.finally(() => this.tasks.delete(task));
  }

  /** Waits for the background tasks; each ends once its socket is closed. */
  async drain(): Promise<void> {
    this.unreachable.clear();
    for (let i = 0; i < 100 && this.tasks.size > 0; i++) await Promise.allSettled([...this.tasks]);
  }

  /** True while background tasks are running. */
  get busy(): boolean {
    return this.tasks.size > 0;
  }

  /** Counts `n` dropped messages for `id` and reports it unreachable. */
  drop(id: bigint, n: number): void {
    this.stats.dropped += n;
    this.reportUnreachable(id);
  }

  /**
   * Reports `id` unreachable after the current synchronous run, once however many sends to it failed in
   * that run (so `send` never calls back into the member while it is sending).
   */
  reportUnreachable(id: bigint): void {
    if (this.stopped || this.o.onUnreachable === undefined) return;
    this.unreachable.add(id);
    if (this.unreachableScheduled) return;
    this.unreachableScheduled = true;
    queueMicrotask(() => {
      this.unreachableScheduled = false;
      const ids = [...this.unreachable];
      this.unreachable.clear();
      for (const id of ids) {
        if (this.stopped) return;
        try {
          this.o.onUnreachable?.(id);
        } catch (err) {
          this.logger.error("onUnreachable failed", { error: errorText(err) });
        }
      }
    });
  }

  /** Reports the outcome of a snapshot send, unless the transport has stopped. */
  snapshotStatus(id: bigint, ok: boolean): void {
    if (this.stopped) return;
    try {
      this.o.onSnapshotStatus?.(id, ok);
    } catch (err) {
      this.logger.error("onSnapshotStatus failed", { error: errorText(err) });
    }
  }

  /** Hands an inbound message to the member; a throwing handler is logged, not propagated. */
  deliver(m: Message): void {
    try {
      this.o.onMessage(m);
    } catch (err) {
      this.logger.error("failed to process Raft message", {
        "local-member-id": this.idHex,
        "remote-peer-id": hexId(m.from),
        error: errorText(err),
      });
    }
  }

  /** Answers a request with a small text body and our cluster ID, then the connection is to be closed. */
  async respond(
    conn: PeerConn,
    status: number,
    reason: string,
    body: string,
    extra: Record<string, string> = {},
    contentType?: string,
  ): Promise<void> {
    await writeAll(
      conn,
      formatResponse(status, reason, body, { "X-Etcd-Cluster-ID": this.cidHex, ...extra }, contentType),
    );
  }

  /** Resolves after `ms` on the transport's clock. */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => this.clock.setTimeout(resolve, ms));
  }
}
