/**
 * The images of snapshots a leader sends to lagging followers, streamed from frozen views of the applied
 * state rather than built in one buffer on the Raft loop.
 *
 * When Raft asks for a snapshot to send, the driver pins a view of the applied state at the applied index
 * (see {@link SnapshotCapture}: cheap to take, no value bytes copied) and Raft's message carries only the
 * metadata. When the peer transport starts the upload it opens a stream over the view of that index
 * ({@link SnapshotViews.open}), and the view's bytes are read chunk by chunk as the socket takes them.
 *
 * A view keeps store memory alive and holds back history trims, so each is counted and released as soon
 * as nothing can read it any more. One view per index, shared by every follower that needs it. A view is
 * held by:
 * - a pin, from Raft's request until the Ready carrying the MsgSnap has been handed to the transport
 *   (which opens its stream synchronously, or never);
 * - each stream, from `open` until its chunks end, fail or are abandoned (`return`); a stream whose
 *   chunks are never asked for (the upload failed before its body) until the transport reports that
 *   upload's outcome for the peer, or the peer is removed (both {@link SnapshotViews.settled});
 * - and nothing after {@link SnapshotViews.close}.
 *
 * @module
 */
import type { ByteStream } from "../../storage/byte_stream.ts";
import type { SnapshotCapture } from "./snapshot_writer.ts";

interface Held {
  readonly index: number;
  readonly capture: SnapshotCapture;
  refs: number;
  released: boolean;
}

interface StreamRef {
  readonly held: Held;
  live: boolean;
}

/** The views pinned or streamed for snapshots being sent. */
export class SnapshotViews {
  private readonly held = new Map<number, Held>();
  private pins: Held[] = [];
  /** Per peer, the stream opened for its upload whose chunks have not been asked for yet. */
  private readonly unstarted = new Map<bigint, StreamRef>();
  private closed = false;

  /** Views held now (pinned or being streamed). */
  get size(): number {
    return this.held.size;
  }

  /** Indexes of the views held now, ascending. */
  indexes(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /**
   * Pins the view at `index` for a MsgSnap about to be sent, taking it with `capture` if none is held.
   * `capture` must take the applied state at `index` now.
   */
  pin(index: number, capture: () => SnapshotCapture): void {
    if (this.closed) throw new Error("snapshot: no snapshot is sent after stop");
    let h = this.held.get(index);
    if (h === undefined) {
      h = { index, capture: capture(), refs: 0, released: false };
      this.held.set(index, h);
    }
    h.refs++;
    this.pins.push(h);
  }

  /**
   * Takes the pins made so far, and returns the function that drops them: call it once the messages
   * they were made for have been handed to the transport (whose streams then hold the views).
   */
  takePins(): () => void {
    const pins = this.pins;
    if (pins.length === 0) return noop;
    this.pins = [];
    return () => {
      for (const h of pins) this.unref(h);
    };
  }

  /**
   * The image of the view at `index`, for the upload of a MsgSnap to `to` (the transport's
   * `snapshotStream`). Throws if no view of that index is held: the send fails and Raft retries with
   * a fresh one.
   */
  open(to: bigint, index: number): ByteStream {
    const h = this.held.get(index);
    if (this.closed || h === undefined) throw new Error(`snapshot: no view of index ${index} to send`);
    h.refs++;
    const ref: StreamRef = { held: h, live: true };
    this.settled(to); // one upload per peer at a time: an older unread stream is over
    this.unstarted.set(to, ref);
    const release = (): void => {
      if (!ref.live) return;
      ref.live = false;
      if (this.unstarted.get(to) === ref) this.unstarted.delete(to);
      this.unref(h);
    };
    const data = h.capture.data;
    return {
      size: data.size,
      chunks: (): IterableIterator<Uint8Array> => {
        if (!ref.live || h.released) throw new Error(`snapshot: the view of index ${index} was released`);
        if (this.unstarted.get(to) === ref) this.unstarted.delete(to);
        let inner: Iterator<Uint8Array>;
        try {
          inner = data.chunks()[Symbol.iterator]();
        } catch (err) {
          release();
          throw err;
        }
        const it: IterableIterator<Uint8Array> = {
          [Symbol.iterator]: () => it,
          next: (): IteratorResult<Uint8Array> => {
            if (!ref.live || h.released) {
              release();
              throw new Error(`snapshot: the view of index ${index} was released`);
            }
            try {
              const r = inner.next();
              if (r.done) release();
              return r;
            } catch (err) {
              release();
              throw err;
            }
          },
          return: (): IteratorResult<Uint8Array> => {
            try {
              inner.return?.();
            } finally {
              release();
            }
            return { done: true, value: undefined };
          },
        };
        return it;
      },
    };
  }

  /**
   * The upload to `to` has ended (its outcome was reported) or was dropped (the peer was removed): a
   * stream opened for it whose chunks were never asked for is released. A stream being read is released
   * by its own end instead.
   */
  settled(to: bigint): void {
    const ref = this.unstarted.get(to);
    if (ref === undefined) return;
    this.unstarted.delete(to);
    if (!ref.live) return;
    ref.live = false;
    this.unref(ref.held);
  }

  /** Releases every view; call once no upload can run any more (the transport has stopped). */
  close(): void {
    this.closed = true;
    this.pins = [];
    this.unstarted.clear();
    for (const h of this.held.values()) this.drop(h);
    this.held.clear();
  }

  private unref(h: Held): void {
    if (h.released || --h.refs > 0) return;
    if (this.held.get(h.index) === h) this.held.delete(h.index);
    this.drop(h);
  }

  private drop(h: Held): void {
    if (h.released) return;
    h.released = true;
    h.capture.release();
  }
}

function noop(): void {}
