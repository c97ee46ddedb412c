/**
 * Writes a member's periodic snapshots in the background, so the Raft loop (heartbeats, appends, votes)
 * never waits behind a write of the whole key space.
 *
 * The driver captures the applied state at the snapshot index synchronously (see
 * {@link SnapshotCapture}: the key space as a frozen view, the small parts copied), then hands it here.
 * The image is written chunk by chunk while the loop goes on, and only once it is durable does the rest
 * follow, in this order: the snapshot mark in the WAL, its fsync, the in-memory log's snapshot record,
 * releasing the WAL segments behind the mark, purging old snapshot files. A crash anywhere in between
 * recovers: a snapshot file without a durable mark is skipped on restart, and nothing the WAL needs is
 * released before the mark is durable.
 *
 * One snapshot is in flight at a time. A failed write is fatal for the member, as a failed WAL write is.
 *
 * @module
 */
import type { ByteStream } from "../../storage/byte_stream.ts";
import type { ConfState } from "../../raft/types.ts";
import type { Snapshotter } from "../../storage/snapshot.ts";
import type { Wal } from "../../storage/wal.ts";
import type { Logger } from "../logger.ts";
import type { ServerStorage } from "./raft_driver.ts";

/**
 * The applied state at one index, readable later while the state moves on. `release` lets the state
 * drop what the capture kept alive; call it once the data is written (or abandoned).
 */
export interface SnapshotCapture {
  readonly data: ByteStream;
  release(): void;
}

/** One snapshot to write: where it sits in the log and what it holds. */
export interface SnapshotJob {
  index: number;
  term: number;
  confState: ConfState;
  capture: SnapshotCapture;
}

/** What the writer needs; the WAL and snapshotter are the driver's. */
export interface SnapshotWriterOptions {
  wal: Wal;
  snapshotter: Snapshotter;
  storage: ServerStorage;
  logger: Logger;
  /** Snapshot files to keep on disk (--max-snapshots); 0 keeps all. */
  maxSnapshots: number;
  /** Called once a snapshot and its WAL mark are durable (and the WAL behind it released). */
  onSaved(index: number): void;
  /** Called when a write fails: the member must stop, as after a failed fsync. */
  onFailed(err: Error): void;
}

/** Thrown into an abandoned write to stop it between two chunks. */
class SnapshotAbandoned extends Error {
  readonly code = "SNAPSHOT_ABANDONED";
  constructor() {
    super("snapshot: abandoned for a newer one");
    this.name = "SnapshotAbandoned";
  }
}

interface InFlight {
  index: number;
  done: Promise<void>;
  abandoned: boolean;
}

/** The background snapshot writer of one member. */
export class SnapshotWriter {
  private inFlight: InFlight | undefined;

  constructor(private readonly o: SnapshotWriterOptions) {}

  /** Whether a snapshot is being written. */
  get busy(): boolean {
    return this.inFlight !== undefined;
  }

  /** Starts writing `job` in the background; the caller must check {@link busy} first. */
  start(job: SnapshotJob): void {
    if (this.inFlight) throw new Error("snapshot: one is being written already");
    const flight: InFlight = { index: job.index, done: Promise.resolve(), abandoned: false };
    this.inFlight = flight;
    flight.done = this.write(job, flight).then(
      (saved) => {
        this.inFlight = undefined;
        if (saved) this.o.onSaved(job.index);
      },
      (err) => {
        this.inFlight = undefined;
        if (flight.abandoned && err instanceof SnapshotAbandoned) return;
        this.o.onFailed(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  /** Resolves once no snapshot is being written (a failure is reported through `onFailed`, not here). */
  async settle(): Promise<void> {
    while (this.inFlight) await this.inFlight.done;
  }

  /**
   * Abandons the snapshot being written, if any, and waits until it has stopped: for a snapshot from the
   * leader, which supersedes it and whose WAL mark must not be followed by an older one. The write stops
   * at its next chunk (its temporary file is removed); if its data is already written, the file stays
   * without a WAL mark, which recovery skips and a later purge removes.
   */
  async abandon(): Promise<void> {
    if (this.inFlight) this.inFlight.abandoned = true;
    await this.settle();
  }

  /** Resolves true once saved, false if abandoned after its data was written. */
  private async write(job: SnapshotJob, flight: InFlight): Promise<boolean> {
    const { wal, snapshotter, storage, logger } = this.o;
    const { index, term } = job;
    const started = performance.now();
    try {
      const data = job.capture.data;
      await snapshotter.save({
        index,
        term,
        data: {
          size: data.size,
          *chunks() {
            for (const c of data.chunks()) {
              if (flight.abandoned) throw new SnapshotAbandoned();
              yield c;
            }
          },
        },
      });
    } finally {
      job.capture.release();
    }
    if (flight.abandoned) return false;
    wal.saveSnapshotMark({ index, term });
    await wal.sync();
    // the in-memory log may have been trimmed past `index` while the image was written: its snapshot
    // record only says what the newest durable snapshot is, and a newer one supersedes it anyway
    if (index > storage.heldSnapshotIndex() && index >= storage.firstIndex() - 1) {
      storage.createSnapshot(index, job.confState, new Uint8Array(0));
    }
    await wal.releaseTo(index);
    if (this.o.maxSnapshots > 0) await snapshotter.purge(this.o.maxSnapshots);
    logger.info("saved snapshot", {
      "snapshot-index": index,
      term,
      bytes: job.capture.data.size,
      took: `${Math.round(performance.now() - started)}ms`,
    });
    return true;
  }
}
