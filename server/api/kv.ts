/**
 * The etcdserverpb.KV service: decode, check as etcd does, hand to the server, encode.
 *
 * @module
 */
import type { GrpcRouter } from "../transport/grpc.ts";
import type { EtcdServer } from "../member/server.ts";
import {
  decodeCompactionRequest,
  decodeDeleteRangeRequest,
  decodePutRequest,
  decodeRangeRequest,
  decodeTxnRequest,
  encodeCompactionResponse,
  encodeDeleteRangeResponse,
  encodePutResponse,
  encodeRangeResponse,
  encodeTxnResponse,
} from "../pb/rpc.ts";
import { checkDeleteRequest, checkPutRequest, checkRangeRequest, checkTxnRequest } from "./validate.ts";
import { decodeOrFail } from "./decode.ts";

/** Registers the KV methods. */
export function registerKv(router: GrpcRouter, server: EtcdServer): void {
  const maxTxnOps = server.config.maxTxnOps;
  router
    .unary("/etcdserverpb.KV/Range", async (raw) => {
      const r = decodeOrFail(decodeRangeRequest, raw);
      checkRangeRequest(r);
      return encodeRangeResponse(await server.range(r));
    })
    .unary("/etcdserverpb.KV/Put", async (raw) => {
      const r = decodeOrFail(decodePutRequest, raw);
      checkPutRequest(r);
      return encodePutResponse(await server.put(r, raw));
    })
    .unary("/etcdserverpb.KV/DeleteRange", async (raw) => {
      const r = decodeOrFail(decodeDeleteRangeRequest, raw);
      checkDeleteRequest(r);
      return encodeDeleteRangeResponse(await server.deleteRange(r, raw));
    })
    .unary("/etcdserverpb.KV/Txn", async (raw) => {
      const r = decodeOrFail(decodeTxnRequest, raw);
      checkTxnRequest(r, maxTxnOps);
      return encodeTxnResponse(await server.txn(r, raw));
    })
    .unary("/etcdserverpb.KV/Compact", async (raw) => {
      const r = decodeOrFail(decodeCompactionRequest, raw);
      return encodeCompactionResponse(await server.compact(r, raw));
    });
}
