/**
 * CRC-32C (Castagnoli polynomial, reflected 0x82F63B78): the checksum of the WAL and snapshot files, and
 * of the key space as etcd's HashKV reports it.
 *
 * Table-driven, eight bytes per step ("slicing-by-8"): table k maps a byte to its CRC contribution when
 * it is followed by k more bytes, so eight lookups fold eight input bytes at once.
 *
 * @module
 */

const POLY = 0x82f63b78;

/** Eight 256-entry tables, laid out back to back in one array: table k starts at k * 256. */
const T: Uint32Array = buildTables();

function buildTables(): Uint32Array {
  const t = new Uint32Array(8 * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let bit = 0; bit < 8; bit++) c = (c >>> 1) ^ (c & 1 ? POLY : 0);
    t[b] = c;
  }
  for (let b = 0; b < 256; b++) {
    let c = t[b];
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[k * 256 + b] = c;
    }
  }
  return t;
}

/**
 * Extends the CRC-32C `seed` (0 to start; or the result of an earlier call, to continue) over the bytes
 * `data[start, end)`. Returns the unsigned 32-bit checksum. `crc32c(0, "123456789")` is `0xe3069283`.
 */
export function crc32c(seed: number, data: Uint8Array, start = 0, end: number = data.length): number {
  let c = ~seed;
  let i = start;
  const stop8 = end - 8;
  while (i <= stop8) {
    const lo = c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    c = T[1792 + (lo & 0xff)] ^ T[1536 + ((lo >>> 8) & 0xff)] ^ T[1280 + ((lo >>> 16) & 0xff)] ^
      T[1024 + (lo >>> 24)] ^ T[768 + data[i + 4]] ^ T[512 + data[i + 5]] ^ T[256 + data[i + 6]] ^
      T[data[i + 7]];
    i += 8;
  }
  while (i < end) {
    c = T[(c ^ data[i]) & 0xff] ^ (c >>> 8);
    i++;
  }
  return ~c >>> 0;
}
