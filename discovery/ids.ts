/**
 * etcd's deterministic member and cluster IDs. Every member of a new cluster computes the same IDs from
 * `--initial-cluster` and `--initial-cluster-token`, so they agree without talking to each other; a real
 * etcd member and an etcd-ts member given the same flags derive the same numbers.
 *
 * @module
 */

/**
 * SHA-1 (FIPS 180-4) of a short message. Written out here because the IDs must be computed synchronously
 * and node:crypto alone costs a few MB of resident memory; speed does not matter for a few hundred bytes.
 */
export function sha1(data: Uint8Array): Uint8Array {
  const bitLen = data.length * 8;
  const padded = new Uint8Array(((data.length + 9 + 63) >> 6) << 6);
  padded.set(data);
  padded[data.length] = 0x80;
  const pv = new DataView(padded.buffer);
  pv.setUint32(padded.length - 8, Math.floor(bitLen / 2 ** 32));
  pv.setUint32(padded.length - 4, bitLen >>> 0);
  const h = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];
  const w = new Uint32Array(80);
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = pv.getUint32(off + 4 * i);
    for (let i = 16; i < 80; i++) {
      const x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
      w[i] = (x << 1) | (x >>> 31);
    }
    let [a, b, c, d, e] = h;
    for (let i = 0; i < 80; i++) {
      let f: number;
      let k: number;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5a827999;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ed9eba1;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8f1bbcdc;
      } else {
        f = b ^ c ^ d;
        k = 0xca62c1d6;
      }
      const t = (((a << 5) | (a >>> 27)) + f + e + k + w[i]) >>> 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    h[0] = (h[0] + a) >>> 0;
    h[1] = (h[1] + b) >>> 0;
    h[2] = (h[2] + c) >>> 0;
    h[3] = (h[3] + d) >>> 0;
    h[4] = (h[4] + e) >>> 0;
  }
  const out = new Uint8Array(20);
  const ov = new DataView(out.buffer);
  h.forEach((x, i) => ov.setUint32(4 * i, x));
  return out;
}

/** The first 8 bytes of a SHA-1 digest, read as a big-endian unsigned 64-bit integer. */
function sha1Prefix(data: Uint8Array): bigint {
  return new DataView(sha1(data).buffer).getBigUint64(0);
}

/** Byte-wise comparison of two strings' UTF-8 encodings, as Go's string comparison. */
function compareUtf8(a: string, b: string): number {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/**
 * A member's ID: SHA-1 over its peer URLs (sorted, concatenated without separator), then the cluster token,
 * then, for a member added at run time (`member add`), the Unix time in seconds as decimal digits.
 * Members bootstrapped from `--initial-cluster` (state `new` or `existing`) are computed without a time.
 *
 * `peerUrls` are written as etcd writes URLs: `http://127.0.0.1:2380`, no trailing slash.
 */
export function memberId(peerUrls: string[], clusterToken: string, now?: Date): bigint {
  const sorted = [...peerUrls].sort(compareUtf8);
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
