/**
 * Receiving a snapshot: `POST /raft/snapshot` on a connection of its own.
 *
 * The body, `Content-Length` bytes long, is one frame holding the MsgSnap without its image (4-byte
 * big-endian length, then the encoded message, whose `snapshot.data` is empty), followed by the image.
 * The identity headers are checked before any of the body is read (see `identity.ts`), and an upload
 * longer than `maxSnapshotBytes` is refused with 413 before any of it is read. The image is then read in
 * chunks of {@linkcode SNAPSHOT_CHUNK_BYTES} and handed, as it arrives, to the member's
 * `receiveSnapshot` (which writes it to disk), or joined into `snapshot.data` when the member gives none.
 * Only a whole image delivers the message to Raft and answers `204`; a cut upload delivers nothing.
 *
 * @module
 */
import { type Message, MessageType } from "../../raft/types.ts";
import { hexId } from "../logger.ts";
import type { PeerContext } from "./context.ts";
import { errorText } from "./errors.ts";
import {
  type ConnReader,
  FRAME_HEADER_BYTES,
  frameLength,
  type HttpHead,
  PeerProtocolError,
  SNAPSHOT_CHUNK_BYTES,
} from "./http.ts";
import type { PeerConn } from "./net.ts";
import type { IncomingImage } from "./options.ts";

/** The image part of an upload body, read from the connection only as the consumer asks for it. */
class BodyImage implements IncomingImage {
  /** Bytes handed to the consumer so far. */
  delivered = 0;
  /** Why reading the body failed (a cut upload, a closed connection); set before `chunks()` throws it. */
  failure: Error | undefined;
  private used = false;

  constructor(private readonly reader: ConnReader, readonly size: number) {}

  async *chunks(): AsyncGenerator<Uint8Array> {
    if (this.used) throw new Error("a snapshot image can be read only once");
    this.used = true;
    const buf = new Uint8Array(Math.min(SNAPSHOT_CHUNK_BYTES, this.size));
    while (this.delivered < this.size) {
      const want = Math.min(buf.length, this.size - this.delivered);
      let filled = 0;
      while (filled < want) {
        let n: number | null;
        try {
          n = await this.reader.readSome(buf.subarray(filled, want));
        } catch (err) {
          this.failure = err instanceof Error ? err : new Error(String(err));
          throw this.failure;
        }
        if (n === null) {
          const got = this.delivered + filled;
          this.failure = new PeerProtocolError(
            `snapshot upload ended after ${got} of ${this.size} image bytes`,
          );
          throw this.failure;
        }
        filled += n;
      }
      this.delivered += want;
      yield buf.subarray(0, want);
    }
  }
}

/** Joins the whole image into `m.snapshot.data` (what a member without `receiveSnapshot` gets). */
async function joinImage(m: Message, image: IncomingImage): Promise<Message> {
  const data = new Uint8Array(image.size);
  let at = 0;
  for await (const chunk of image.chunks()) {
    data.set(chunk, at);
    at += chunk.length;
  }
  if (m.snapshot) m.snapshot.data = data;
  return m;
}

/** Serves snapshot uploads from peers. */
export class SnapshotReceiver {
  /** @param ctx the transport's shared state. */
  constructor(private readonly ctx: PeerContext) {}

  /**
   * Reads the upload whose head is `head` from the identified member `from`, hands it to the member and
   * answers. Resolves when the exchange is over; the caller closes the connection.
   */
  async serve(conn: PeerConn, reader: ConnReader, head: HttpHead, from: bigint): Promise<void> {
    const ctx = this.ctx;
    const fromHex = hexId(from);
    const lenText = head.headers.get("content-length");
    const len = lenText === undefined || !/^\d+$/.test(lenText) ? NaN : Number(lenText);
    if (!Number.isSafeInteger(len)) return ctx.respond(conn, 411, "Length Required", "length required\n");
    if (len > ctx.maxSnapshotBytes) {
      ctx.stats.refused++;
      ctx.logger.warn("refused database snapshot: too large", {
        "local-member-id": ctx.idHex,
        "remote-peer-id": fromHex,
        "snapshot-size": len,
        "max-snapshot-size": ctx.maxSnapshotBytes,
      });
      return ctx.respond(conn, 413, "Payload Too Large", "snapshot too large\n");
    }
    const read = await this.readMessage(conn, reader, len, fromHex);
    if (read === undefined) return;
    const m = read.m;
    const size = len - FRAME_HEADER_BYTES - read.msgLen;
    const fields = {
      "local-member-id": ctx.idHex,
      "remote-peer-id": fromHex,
      "snapshot-index": m.snapshot?.metadata.index ?? 0,
      "snapshot-size": size,
    };
    const started = ctx.clock.now();
    ctx.logger.info("receiving database snapshot", fields);
    const image = new BodyImage(reader, size);
    let out: Message;
    try {
      out = ctx.o.receiveSnapshot ? await ctx.o.receiveSnapshot(m, image) : await joinImage(m, image);
      if (image.failure) throw image.failure;
      if (image.delivered !== image.size) {
        throw new Error(
          `the snapshot sink returned after reading ${image.delivered} of ${image.size} image bytes`,
        );
      }
    } catch (err) {
      const cut = image.failure !== undefined;
      if (!ctx.stopped) {
        ctx.logger.warn("failed to save KV snapshot", {
          ...fields,
          "received-bytes": image.delivered,
          error: errorText(image.failure ?? err),
        });
      }
      // after a cut upload nobody is left to answer
      if (!cut) await ctx.respond(conn, 500, "Internal Server Error", "error saving raft snapshot\n");
      return;
    }
    ctx.logger.info("received database snapshot", { ...fields, took: `${ctx.clock.now() - started}ms` });
    ctx.stats.framesReceived++;
    ctx.stats.snapshotsReceived++;
    try {
      ctx.o.onMessage(out);
    } catch (err) {
      ctx.logger.error("failed to process Raft snapshot message", { error: errorText(err) });
      return ctx.respond(conn, 500, "Internal Server Error", "error processing raft message\n");
    }
    await ctx.respond(conn, 204, "No Content", "");
  }

  /** Reads and checks the leading MsgSnap frame; answers and resolves to undefined when it is refused. */
  private async readMessage(
    conn: PeerConn,
    reader: ConnReader,
    len: number,
    fromHex: string,
  ): Promise<{ m: Message; msgLen: number } | undefined> {
    const ctx = this.ctx;
    const refuse = async (status: number, reason: string, body: string): Promise<undefined> => {
      ctx.stats.refused++;
      await ctx.respond(conn, status, reason, body);
      return undefined;
    };
    if (len < FRAME_HEADER_BYTES) return refuse(400, "Bad Request", "error decoding raft message\n");
    const msgLen = frameLength(await reader.readBody(FRAME_HEADER_BYTES), 0);
    if (msgLen > len - FRAME_HEADER_BYTES || msgLen > ctx.maxMessageBytes) {
      ctx.logger.warn("failed to decode snapshot message", {
        "remote-peer-id": fromHex,
        error: `message of ${msgLen} bytes in an upload of ${len}`,
      });
      return refuse(400, "Bad Request", "error decoding raft message\n");
    }
    let m: Message;
    try {
      m = ctx.codec.decode(await reader.readBody(msgLen));
    } catch (err) {
      if (err instanceof PeerProtocolError) throw err;
      ctx.logger.warn("failed to decode snapshot message", {
        "remote-peer-id": fromHex,
        error: errorText(err),
      });
      return refuse(400, "Bad Request", "error decoding raft message\n");
    }
    if (m.type !== MessageType.Snap) {
      return refuse(400, "Bad Request", `unexpected raft message type ${m.type} on snapshot path\n`);
    }
    if (m.to !== ctx.memberId) return refuse(412, "Precondition Failed", "to field mismatch\n");
    return { m, msgLen };
  }
}
