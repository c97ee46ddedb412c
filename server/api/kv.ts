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
  encodeTxnResponse,
} from "../pb/rpc.ts";
import { checkDeleteRequest, checkPutRequest, checkRangeRequest, checkTxnRequest } from "./validate.ts";
import { decodeOrFail } from "./decode.ts";
import type { RequestAuth } from "./auth_checks.ts";

/** Registers the KV methods; `auth` checks each request's permissions while auth is on. */
export function registerKv(router: GrpcRouter, server: EtcdServer, auth: RequestAuth): void {
  const maxTxnOps = server.config.maxTxnOps;
  router
    .unary("/etcdserverpb.KV/Range", async (raw, ctx) => {
      const r = decodeOrFail(decodeRangeRequest, raw);
      checkRangeRequest(r);
      if (auth.enabled) await auth.range(ctx, r);
      return await server.rangeEncoded(r, ctx);
    })
    .unary("/etcdserverpb.KV/Put", async (raw, ctx) => {
      const r = decodeOrFail(decodePutRequest, raw);
      checkPutRequest(r);
      const checkedAt = auth.enabled ? await auth.put(ctx, r) : undefined;
      return encodePutResponse(await server.put(r, raw, checkedAt));
    })
    .unary("/etcdserverpb.KV/DeleteRange", async (raw, ctx) => {
      const r = decodeOrFail(decodeDeleteRangeRequest, raw);
      checkDeleteRequest(r);
      const checkedAt = auth.enabled ? await auth.deleteRange(ctx, r) : undefined;
      return encodeDeleteRangeResponse(await server.deleteRange(r, raw, checkedAt));
    })
    .unary("/etcdserverpb.KV/Txn", async (raw, ctx) => {
      const r = decodeOrFail(decodeTxnRequest, raw);
      checkTxnRequest(r, maxTxnOps);
      const checkedAt = auth.enabled ? await auth.txn(ctx, r) : undefined;
      return encodeTxnResponse(await server.txn(r, raw, checkedAt));
    })
    .unary("/etcdserverpb.KV/Compact", async (raw) => {
      const r = decodeOrFail(decodeCompactionRequest, raw);
      return encodeCompactionResponse(await server.compact(r, raw));
    });
}
