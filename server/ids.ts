/**
 * etcd's deterministic member and cluster IDs. Every member of a new cluster computes the same IDs from
 * `--initial-cluster` and `--initial-cluster-token`, so they agree without talking to each other; a real
 * etcd member and an etcd-ts member given the same flags derive the same numbers.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";

/** The first 8 bytes of a SHA-1 digest, read as a big-endian unsigned 64-bit integer. */
function sha1Prefix(data: Uint8Array): bigint {
  const digest = createHash("sha1").update(data).digest();
  return digest.readBigUInt64BE(0);
}

/**
 * A member's ID: SHA-1 over its peer URLs (sorted, concatenated without separator), then the cluster token,
 * then — for a member added at run time (`member add`) — the Unix time in seconds as decimal digits.
 * Members bootstrapped from `--initial-cluster` (state `new` or `existing`) are computed without a time.
 *
 * `peerUrls` are written as etcd writes URLs: `http://127.0.0.1:2380`, no trailing slash.
 */
export function memberId(peerUrls: string[], clusterToken: string, now?: Date): bigint {
  const sorted = [...peerUrls].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  let text = sorted.join("") + clusterToken;
  if (now !== undefined) text += String(Math.floor(now.getTime() / 1000));
  return sha1Prefix(new TextEncoder().encode(text));
}

/** A cluster's ID: SHA-1 over its members' IDs, sorted ascending, each as 8 big-endian bytes. */
export function clusterId(memberIds: bigint[]): bigint {
  const sorted = memberIds.map((id) => BigInt.asUintN(64, id)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const bytes = new Uint8Array(8 * sorted.length);
  const view = new DataView(bytes.buffer);
  sorted.forEach((id, i) => view.setBigUint64(8 * i, id));
  return sha1Prefix(bytes);
}
