/**
 * The HPACK Huffman code (RFC 7541, Appendix B). The code is canonical (codes of one length are
 * consecutive and ordered by symbol), so the table is kept as the 257 code lengths and the codes are
 * derived from them.
 *
 * @module
 */

/** Code lengths in bits for symbols 0..255 and EOS (256), from RFC 7541 Appendix B. */
// deno-fmt-ignore
const LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const EOS = 256;
const MAX_LEN = 30;

/** Thrown for a malformed Huffman string (bad padding, EOS inside). */
export class HuffmanError extends Error {
  /** Stable error code of this class. */
  readonly code = "HPACK_HUFFMAN";
  constructor(message: string) {
    super(message);
    this.name = "HuffmanError";
  }
}

/** codes[sym]: the code, right-aligned. */
const CODES = new Uint32Array(257);
/** Canonical decoding: for each length, the first code, how many codes, and where their symbols start. */
const FIRST = new Int32Array(MAX_LEN + 1);
const COUNT = new Int32Array(MAX_LEN + 1);
const OFFSET = new Int32Array(MAX_LEN + 1);
const SORTED = new Uint16Array(257);
/** For codes of at most 8 bits: byte prefix -> (symbol << 4) | length; 0 when the code is longer. */
const FAST = new Uint16Array(256);

(function build(): void {
  const order = Array.from({ length: 257 }, (_, i) => i).sort((a, b) => LENGTHS[a] - LENGTHS[b] || a - b);
  let code = 0;
  let prevLen = LENGTHS[order[0]];
  for (let i = 0; i < order.length; i++) {
    const sym = order[i];
    const len = LENGTHS[sym];
    code <<= len - prevLen;
    prevLen = len;
    if (COUNT[len] === 0) {
      FIRST[len] = code;
      OFFSET[len] = i;
    }
    COUNT[len]++;
    SORTED[i] = sym;
    CODES[sym] = code;
    if (len <= 8) {
      const base = code << (8 - len);
      for (let s = 0; s < 1 << (8 - len); s++) FAST[base + s] = (sym << 4) | len;
    }
    code++;
  }
})();

/** The code of a symbol (0..256), right-aligned, and its length. */
export function huffmanCode(sym: number): [code: number, length: number] {
  return [CODES[sym], LENGTHS[sym]];
}

/** Decodes `src[start, end)` as a Huffman string into a latin1 string. */
export function decodeHuffman(src: Uint8Array, start: number, end: number): string {
  let out = "";
  let pos = start * 8;
  const stop = end * 8;
  while (pos < stop) {
    if (stop - pos >= 8) {
      const i = pos >> 3;
      const shift = pos & 7;
      const peek = shift === 0 ? src[i] : ((src[i] << shift) | (src[i + 1] >> (8 - shift))) & 0xff;
      const hit = FAST[peek];
      if (hit !== 0) {
        out += String.fromCharCode(hit >> 4);
        pos += hit & 15;
        continue;
      }
    }
    let code = 0;
    let len = 0;
    let sym = -1;
    while (sym < 0) {
      if (pos >= stop) {
        // What is left must be padding: fewer than 8 bits, all ones (a prefix of EOS).
        if (len > 7 || code !== (1 << len) - 1) throw new HuffmanError("invalid Huffman padding");
        return out;
      }
      code = (code << 1) | ((src[pos >> 3] >> (7 - (pos & 7))) & 1);
      pos++;
      len++;
      if (len > MAX_LEN) throw new HuffmanError("invalid Huffman code");
      const idx = code - FIRST[len];
      if (COUNT[len] > 0 && idx >= 0 && idx < COUNT[len]) sym = SORTED[OFFSET[len] + idx];
    }
    if (sym === EOS) throw new HuffmanError("EOS in Huffman string");
    out += String.fromCharCode(sym);
  }
  return out;
}

/** The length in bytes of a latin1 string once Huffman-encoded. */
function huffmanLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += LENGTHS[s.charCodeAt(i) & 0xff];
  return (bits + 7) >> 3;
}

/** Huffman-encodes a latin1 string (padding with the EOS prefix). */
export function encodeHuffman(s: string): Uint8Array {
  const out = new Uint8Array(huffmanLength(s));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    let len = LENGTHS[sym];
    const code = CODES[sym];
    // feed the code in pieces small enough for 32-bit arithmetic
    while (len > 0) {
      const take = Math.min(len, 8);
      len -= take;
      acc = (acc << take) | ((code >>> len) & ((1 << take) - 1));
      bits += take;
      while (bits >= 8) {
        bits -= 8;
        out[o++] = (acc >>> bits) & 0xff;
      }
      acc &= (1 << bits) - 1;
    }
  }
  if (bits > 0) out[o++] = ((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) & 0xff;
  return out;
}
