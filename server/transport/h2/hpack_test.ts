/**
 * HPACK and its Huffman code against the examples of RFC 7541 Appendix C, plus encoder/decoder
 * roundtrips under table churn and malformed input.
 */
import { assert, assertEquals, assertThrows } from "../test_util.ts";
import { decodeHuffman, encodeHuffman, huffmanCode, HuffmanError } from "./huffman.ts";
import { ByteWriter, HpackDecoder, HpackEncoder, HpackError, readInt } from "./hpack.ts";

function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  return new Uint8Array(clean.match(/../g)!.map((h) => parseInt(h, 16)));
}

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i], flat[i + 1]]);
  return out;
}

function decode(d: HpackDecoder, block: Uint8Array): [string, string][] {
  const out: string[] = [];
  d.decode(block, out);
  return pairs(out);
}

Deno.test("huffman: codes derived from the lengths match RFC 7541 Appendix B", () => {
  assertEquals(huffmanCode(0), [0x1ff8, 13]);
  assertEquals(huffmanCode(32), [0x14, 6]);
  assertEquals(huffmanCode(48), [0x0, 5]);
  assertEquals(huffmanCode(97), [0x3, 5]);
  assertEquals(huffmanCode(88), [0xfc, 8]);
  assertEquals(huffmanCode(92), [0x7fff0, 19]);
  assertEquals(huffmanCode(255), [0x3ffffee, 26]);
  assertEquals(huffmanCode(256), [0x3fffffff, 30]);
  assertEquals(huffmanCode(10), [0x3ffffffc, 30]);
});

Deno.test("huffman: RFC examples, every byte value, bad padding", () => {
  assertEquals(encodeHuffman("www.example.com"), hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff"));
  assertEquals(encodeHuffman("no-cache"), hex("a8eb 1064 9cbf"));
  assertEquals(encodeHuffman("custom-key"), hex("25a8 49e9 5ba9 7d7f"));
  const www = hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff");
  assertEquals(decodeHuffman(www, 0, www.length), "www.example.com");
  let all = "";
  for (let i = 0; i < 256; i++) all += String.fromCharCode(i);
  for (
    const s of [all, all.split("").reverse().join(""), "", "a", "/etcdserverpb.KV/Range", "\u00ff\u0000"]
  ) {
    const enc = encodeHuffman(s);
    assertEquals(decodeHuffman(enc, 0, enc.length), s);
  }
  // padding longer than 7 bits, padding with a zero bit, and an explicit EOS
  assertThrows(() => decodeHuffman(new Uint8Array([0x1f, 0xff]), 0, 2), HuffmanError); // "a" + 11 bits of ones
  assertThrows(() => decodeHuffman(new Uint8Array([0x1e]), 0, 1), HuffmanError); // "a" + 110
  assertThrows(() => decodeHuffman(new Uint8Array([0xff, 0xff, 0xff, 0xfc]), 0, 4), HuffmanError);
});

Deno.test("hpack integers: RFC C.1 examples and bounds", () => {
  assertEquals(readInt(new Uint8Array([0x0a]), 0, 5), [10, 1]);
  assertEquals(readInt(new Uint8Array([0x1f, 0x9a, 0x0a]), 0, 5), [1337, 3]);
  assertEquals(readInt(new Uint8Array([0x2a]), 0, 8), [42, 1]);
  assertThrows(() => readInt(new Uint8Array([0x1f, 0x9a]), 0, 5), HpackError, "truncated");
  assertThrows(() => readInt(new Uint8Array([0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]), 0, 5), HpackError);
});

Deno.test("hpack decoder: RFC C.3 and C.4 requests share the dynamic table", () => {
  const raw = new HpackDecoder();
  assertEquals(decode(raw, hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
  ]);
  const d = new HpackDecoder();
  assertEquals(decode(d, hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
  ]);
  assertEquals(decode(d, hex("8286 84be 5886 a8eb 1064 9cbf")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ]);
  assertEquals(decode(d, hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")), [
    [":method", "GET"],
    [":scheme", "https"],
    [":path", "/index.html"],
    [":authority", "www.example.com"],
    ["custom-key", "custom-value"],
  ]);
});

Deno.test("hpack decoder: RFC C.6 responses with eviction (table size 256)", () => {
  const d = new HpackDecoder(256);
  const date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
  assertEquals(
    decode(
      d,
      hex(`4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
           2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`),
    ),
    [[":status", "302"], ["cache-control", "private"], ["date", date1], [
      "location",
      "https://www.example.com",
    ]],
  );
  assertEquals(decode(d, hex("4883 640e ff c1 c0 bf")), [
    [":status", "307"],
    ["cache-control", "private"],
    ["date", date1],
    ["location", "https://www.example.com"],
  ]);
  assertEquals(
    decode(
      d,
      hex(`88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
           77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
           9587 3160 65c0 03ed 4ee5 b106 3d50 07`),
    ),
    [
      [":status", "200"],
      ["cache-control", "private"],
      ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
      ["location", "https://www.example.com"],
      ["content-encoding", "gzip"],
      ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
    ],
  );
});

Deno.test("hpack decoder: malformed blocks", () => {
  const bad = (bytes: number[], why: string): void => {
    assertThrows(() => new HpackDecoder().decode(new Uint8Array(bytes), []), HpackError, undefined);
    void why;
  };
  bad([0x80], "index 0");
  bad([0xbe], "empty dynamic table");
  bad([0xff, 0x80, 0x80, 0x80, 0x80, 0x08], "huge index");
  bad([0x82, 0x20], "size update after a field");
  bad([0x3f, 0xe2, 0x1f], "size update over the limit (4097)");
  bad([0x41, 0x05, 0x61], "truncated string");
  bad([0x41, 0x81, 0x00], "bad huffman");
  // a size update to 0 empties the table, then a reference to it fails
  const d = new HpackDecoder();
  d.decode(new Uint8Array([0x41, 0x01, 0x61]), []);
  assertEquals(decode(d, new Uint8Array([0xbe])), [[":authority", "a"]]);
  assertThrows(() => d.decode(new Uint8Array([0x20, 0xbe]), []), HpackError);
});

Deno.test("hpack encoder: indexes repeated fields; roundtrips through the decoder under churn", () => {
  const enc = new HpackEncoder();
  const dec = new HpackDecoder();
  const w = new ByteWriter();
  const roundtrip = (headers: string[], key?: string): number => {
    w.reset();
    enc.encode(headers, w, key);
    const out: string[] = [];
    dec.decode(w.bytes().slice(), out);
    assertEquals(out, headers);
    return w.len;
  };
  const response = [":status", "200", "content-type", "application/grpc"];
  const ok = ["grpc-status", "0", "grpc-message", ""];
  const first = roundtrip(response, "h");
  assertEquals(roundtrip(response, "h"), 2, ":status 200 static, content-type dynamic");
  assert(first > 2);
  roundtrip(ok, "t");
  assertEquals(roundtrip(ok, "t"), 2);
  // varied error trailers: long messages are not indexed, short ones are
  for (let i = 0; i < 300; i++) {
    roundtrip(["grpc-status", String(i % 17), "grpc-message", `etcdserver: error number ${i}`]);
    roundtrip(["grpc-status", "5", "grpc-message", "x".repeat(200 + i)]);
    roundtrip(["x-custom-" + (i % 50), "v" + i, ...response]);
    roundtrip(response, "h");
    roundtrip(ok, "t");
  }
  // the peer shrinks its table: a size update goes out first and everything still decodes
  enc.setPeerMaxTableSize(64);
  w.reset();
  enc.encode(response, w, "h");
  assertEquals(w.buf[0] & 0xe0, 0x20, "dynamic table size update first");
  const out: string[] = [];
  new HpackDecoder().decode(w.bytes().slice(), out);
  assertEquals(out, response);
  enc.setPeerMaxTableSize(0);
  const dec0 = new HpackDecoder();
  for (let i = 0; i < 3; i++) {
    w.reset();
    enc.encode([...response, ...ok], w, "all");
    const o: string[] = [];
    dec0.decode(w.bytes().slice(), o);
    assertEquals(o, [...response, ...ok]);
  }
});

/** A `:path` field as nghttp2 sends it: a literal without indexing, the value Huffman-coded or raw. */
function pathLiteral(value: Uint8Array, huffman: boolean): Uint8Array {
  return new Uint8Array([0x04, (huffman ? 0x80 : 0) | value.length, ...value]);
}

Deno.test("hpack decoder: a literal that repeats decodes the same; the cache tells apart what only looks alike", () => {
  const d = new HpackDecoder();
  const put = pathLiteral(encodeHuffman("/etcdserverpb.KV/Put"), true);
  for (let i = 0; i < 3; i++) assertEquals(decode(d, put), [[":path", "/etcdserverpb.KV/Put"]]);
  // the same bytes sent raw are another string
  const bytes = encodeHuffman("/etcdserverpb.KV/Put");
  assertEquals(decode(d, pathLiteral(bytes, false)), [[":path", String.fromCharCode(...bytes)]]);
  assertEquals(decode(d, put), [[":path", "/etcdserverpb.KV/Put"]]);
  // many more literals than the cache has slots, each decoded twice in a row and once more later
  const paths = Array.from({ length: 200 }, (_, i) => `/svc/M${i}`);
  for (const p of paths) {
    const block = pathLiteral(encodeHuffman(p), true);
    assertEquals(decode(d, block), [[":path", p]]);
    assertEquals(decode(d, block), [[":path", p]]);
  }
  for (const p of paths) assertEquals(decode(d, pathLiteral(encodeHuffman(p), true)), [[":path", p]]);
  // a long value is decoded every time, and right
  const long = "/" + "x".repeat(200);
  const big = encodeHuffman(long);
  assert(big.length >= 0x7f && big.length - 0x7f < 0x80);
  const block = new Uint8Array([0x04, 0x80 | 0x7f, big.length - 0x7f, ...big]);
  assertEquals(decode(d, block), [[":path", long]]);
  assertEquals(decode(d, block), [[":path", long]]);
});
