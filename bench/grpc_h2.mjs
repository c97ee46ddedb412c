/**
 * A minimal gRPC client over `node:http2`: unary calls and one bidirectional stream kind, with bytes in and
 * bytes out. It does per call only what gRPC requires (one HEADERS frame, one length-prefixed message, the
 * trailers' `grpc-status`), which costs the generator several times less CPU than @grpc/grpc-js (see
 * README.md, "Why this generator").
 *
 * @module
 */
import http2 from "node:http2";
import { readFileSync } from "node:fs";
import { grpcFrame } from "./etcd_pb.mjs";

/** A gRPC failure: the status code and message the server sent (or a transport error's text). */
export class GrpcError extends Error {
  /**
   * @param {number} code
   * @param {string} details
   */
  constructor(code, details) {
    super(`grpc status ${code}: ${details}`);
    this.code = code;
    this.details = details;
  }
}

/** gRPC's CANCELLED, what a stream the client ended itself reports. */
export const CANCELLED = 1;

/**
 * Collects gRPC messages from DATA chunks that may split or join them.
 * @param {(message: Buffer) => void} onMessage
 * @returns {(chunk: Buffer) => void}
 */
function deframer(onMessage) {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= 5) {
      const n = buf.readUInt32BE(1);
      if (buf.length < 5 + n) break;
      onMessage(buf.subarray(5, 5 + n));
      buf = buf.subarray(5 + n);
    }
  };
}

function statusOf(headers) {
  const code = headers["grpc-status"];
  if (code === undefined) return undefined;
  let msg = String(headers["grpc-message"] ?? "");
  try {
    msg = decodeURIComponent(msg);
  } catch {
    // keep it as sent
  }
  return { code: Number(code), msg };
}

/** One HTTP/2 connection to an etcd endpoint. */
export class Connection {
  /**
   * @param {string} endpoint host:port
   * @param {{ cacert?: string, cert?: string, key?: string }} tls TLS when `cacert` is set (the
   *   certificate is not verified: the bench only needs the same encryption cost as real clients)
   */
  constructor(endpoint, tls = {}) {
    const secure = tls.cacert !== undefined;
    const options = secure
      ? {
        ca: readFileSync(tls.cacert),
        cert: tls.cert ? readFileSync(tls.cert) : undefined,
        key: tls.key ? readFileSync(tls.key) : undefined,
        rejectUnauthorized: false,
        ALPNProtocols: ["h2"],
      }
      : {};
    this.session = http2.connect(`${secure ? "https" : "http"}://${endpoint}`, options);
    this.session.on("error", () => {}); // each call reports its own failure
    this.authority = endpoint;
  }

  /**
   * Sends one request message and resolves to the one response message.
   * @param {string} path e.g. "/etcdserverpb.KV/Put"
   * @param {Uint8Array} message
   * @returns {Promise<Buffer>}
   */
  unary(path, message) {
    return new Promise((resolve, reject) => {
      let reply;
      let status;
      const req = this.session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
      });
      const feed = deframer((m) => reply ??= Buffer.from(m));
      req.on("response", (h) => status ??= statusOf(h)); // trailers-only answers carry the status here
      req.on("data", feed);
      req.on("trailers", (h) => status = statusOf(h));
      req.on("error", (err) => reject(new GrpcError(14, err.message)));
      req.on("close", () => {
        if (status === undefined) reject(new GrpcError(14, `stream closed (rst ${req.rstCode})`));
        else if (status.code !== 0) reject(new GrpcError(status.code, status.msg));
        else if (reply === undefined) reject(new GrpcError(13, "no response message"));
        else resolve(reply);
      });
      req.end(grpcFrame(message));
    });
  }

  /**
   * Opens a bidirectional stream; `onMessage` gets each response message, `onEnd` the final status.
   * @param {string} path
   * @param {(message: Buffer) => void} onMessage
   * @param {(err: GrpcError) => void} onEnd
   * @returns {{ write(message: Uint8Array): void, cancel(): void }}
   */
  stream(path, onMessage, onEnd) {
    const req = this.session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
    });
    let ended = false;
    const end = (err) => {
      if (!ended) onEnd(err);
      ended = true;
    };
    req.on("data", deframer(onMessage));
    req.on("trailers", (h) => {
      const s = statusOf(h);
      end(new GrpcError(s?.code ?? 2, s?.msg ?? "no grpc-status"));
    });
    req.on("error", (err) => end(new GrpcError(14, err.message)));
    req.on("close", () => end(new GrpcError(CANCELLED, "closed")));
    return {
      write: (message) => req.write(grpcFrame(message)),
      cancel: () => {
        ended = true;
        req.close(http2.constants.NGHTTP2_CANCEL);
      },
    };
  }

  /** Closes the connection. */
  close() {
    this.session.close();
  }
}
