/**
 * Calls on the leader's client API for requests only the leader can answer: lease keep-alives and
 * TimeToLive (the leader alone tracks expiry). A follower forwards them over gRPC to the leader's first
 * advertised client URL, on one cached HTTP/2 connection per URL, and hands the answer back unchanged.
 *
 * @module
 */
import type http2 from "node:http2";
import { Errors } from "../errors.ts";
import { GrpcError, Status, type StatusCode } from "../transport/status.ts";
import { frameMessage } from "../transport/grpc.ts";
import {
  decodeLeaseKeepAliveResponse,
  decodeLeaseTimeToLiveResponse,
  encodeLeaseKeepAliveRequest,
  encodeLeaseTimeToLiveRequest,
} from "../pb/rpc.ts";
import type { LeaseTimeToLive } from "../lease/lessor.ts";
import { concatBytes } from "../slab.ts";

/** A forwarded call that got no answer within this fails with the request timeout error. */
const FORWARD_TIMEOUT_MS = 5000;

/** Lease calls against one leader. */
export interface LeaderCalls {
  renew(id: bigint, signal: AbortSignal): Promise<number>;
  timeToLive(id: bigint, keys: boolean, signal: AbortSignal): Promise<LeaseTimeToLive>;
}

/** Forwards calls to leaders, reusing connections. */
export class LeaderForwarder {
  private readonly sessions = new Map<string, http2.ClientHttp2Session>();

  to(url: string): LeaderCalls {
    return {
      renew: async (id, signal) => {
        // one message on the keep-alive stream, then half-close: the leader answers it and ends the call
        const out = await this.call(
          url,
          "/etcdserverpb.Lease/LeaseKeepAlive",
          encodeLeaseKeepAliveRequest({ ID: id }),
          signal,
        );
        const resp = decodeLeaseKeepAliveResponse(out);
        if (resp.TTL <= 0) throw Errors.leaseNotFound();
        return resp.TTL;
      },
      timeToLive: async (id, keys, signal) => {
        const out = await this.call(
          url,
          "/etcdserverpb.Lease/LeaseTimeToLive",
          encodeLeaseTimeToLiveRequest({ ID: id, keys }),
          signal,
        );
        const resp = decodeLeaseTimeToLiveResponse(out);
        if (resp.TTL === -1) throw Errors.leaseNotFound();
        return { TTL: resp.TTL, grantedTTL: resp.grantedTTL, keys: resp.keys };
      },
    };
  }

  private async session(url: string): Promise<http2.ClientHttp2Session> {
    const s = this.sessions.get(url);
    if (s && !s.closed && !s.destroyed) return s;
    // loaded on first use: only followers forwarding lease calls need an HTTP/2 client
    const { connect } = await import("node:http2");
    const created = connect(url);
    created.on("error", () => this.sessions.delete(url));
    created.on("close", () => this.sessions.delete(url));
    this.sessions.set(url, created);
    return created;
  }

  /**
   * One request message, the first response message back; a non-OK status becomes a GrpcError.
   * `metadata` goes along as request headers (the caller's auth token).
   */
  async call(
    url: string,
    path: string,
    body: Uint8Array,
    signal: AbortSignal,
    metadata: Record<string, string> = {},
  ): Promise<Uint8Array> {
    let session: http2.ClientHttp2Session;
    try {
      session = await this.session(url);
    } catch (err) {
      throw new GrpcError(Status.UNAVAILABLE, `error forwarding to the leader: ${(err as Error).message}`);
    }
    return await new Promise((resolve, reject) => {
      let req: http2.ClientHttp2Stream;
      try {
        req = session.request({
          ...metadata,
          ":method": "POST",
          ":path": path,
          "content-type": "application/grpc",
          te: "trailers",
        });
      } catch (err) {
        reject(
          new GrpcError(Status.UNAVAILABLE, `error forwarding to the leader: ${(err as Error).message}`),
        );
        return;
      }
      const chunks: Uint8Array[] = [];
      let settled = false;
      const finish = (err?: Error, out?: Uint8Array) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        if (!req.closed) req.close();
        if (err) reject(err);
        else resolve(out!);
      };
      const onAbort = () => finish(Errors.canceled());
      const timer = setTimeout(() => finish(Errors.timeout()), FORWARD_TIMEOUT_MS);
      signal.addEventListener("abort", onAbort);
      const tryMessage = () => {
        const all = concatBytes(chunks);
        chunks.length = 0;
        chunks.push(all);
        if (all.length < 5) return;
        const n = new DataView(all.buffer, all.byteOffset).getUint32(1);
        if (all.length >= 5 + n) finish(undefined, all.slice(5, 5 + n));
      };
      req.on("data", (d: Uint8Array) => {
        chunks.push(d);
        tryMessage();
      });
      const onStatus = (h: http2.IncomingHttpHeaders) => {
        const status = Number(h["grpc-status"] ?? "0");
        if (status !== 0) {
          const msg = decodeURIComponent(String(h["grpc-message"] ?? ""));
          finish(new GrpcError(status as StatusCode, msg));
        }
      };
      req.on("response", onStatus);
      req.on("trailers", onStatus);
      req.on(
        "end",
        () => finish(new GrpcError(Status.UNAVAILABLE, "error forwarding to the leader: no answer")),
      );
      req.on(
        "error",
        (err) => finish(new GrpcError(Status.UNAVAILABLE, `error forwarding to the leader: ${err.message}`)),
      );
      req.end(frameMessage(body));
    });
  }

  close(): void {
    for (const s of this.sessions.values()) s.close();
    this.sessions.clear();
  }
}
