#!/usr/bin/env node
/**
 * Writes one framed gRPC request to standard output, for h2load's `-d` (the -h2 rows of compare.ts):
 *
 *     node bench/h2_body.mjs put KEY VALUE_SIZE     a PutRequest of KEY with VALUE_SIZE bytes of "x"
 *     node bench/h2_body.mjs range-ser KEY          a serializable RangeRequest of KEY
 *
 * @module
 */
import { encodePut, encodeRange, grpcFrame } from "./etcd_pb.mjs";

const [kind, key, size] = process.argv.slice(2);
if (!key || (kind === "put" && !size) || !["put", "range-ser"].includes(kind)) {
  console.error("usage: h2_body.mjs put KEY VALUE_SIZE | range-ser KEY");
  process.exit(2);
}
const k = Buffer.from(key);
const message = kind === "put"
  ? encodePut({ key: k, value: Buffer.alloc(Number(size), "x") })
  : encodeRange({ key: k, serializable: true });
process.stdout.write(grpcFrame(message));
