import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import {
  MAX_DEPTH,
  ProtobufDecodeError,
  Reader,
  utf8Length,
  varintSize32,
  varintSizeBig,
  varintSizeInt64,
  Writer,
} from "./wire.ts";

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function bytesOf(h: string): Uint8Array {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function written(fn: (w: Writer) => void): Uint8Array {
  const w = new Writer(16);
  fn(w);
  return w.finish();
}

Deno.test("varints: known encodings from the protobuf spec", () => {
  assertEquals(hex(written((w) => w.uint32(0))), "00");
  assertEquals(hex(written((w) => w.uint32(1))), "01");
  assertEquals(hex(written((w) => w.uint32(150))), "9601");
  assertEquals(hex(written((w) => w.uint32(300))), "ac02");
  assertEquals(hex(written((w) => w.uint32(0xffffffff))), "ffffffff0f");
  assertEquals(hex(written((w) => w.int64(2 ** 32))), "8080808010");
  assertEquals(hex(written((w) => w.int64(Number.MAX_SAFE_INTEGER))), "ffffffffffffff0f");
  assertEquals(hex(written((w) => w.sint32(-1))), "01");
  assertEquals(hex(written((w) => w.sint32(1))), "02");
  assertEquals(hex(written((w) => w.sint64(-2))), "03");
  assertEquals(hex(written((w) => w.fixed32(0x01020304))), "04030201");
  assertEquals(hex(written((w) => w.fixed64(2 ** 32 + 5))), "0500000001000000");
  assertEquals(hex(written((w) => w.string("testing"))), "0774657374696e67");
});

Deno.test("negative int64 is a 10-byte two's complement varint, as protobuf writes it", () => {
  const minus1 = written((w) => w.int64(-1));
  assertEquals(minus1.length, 10);
  assertEquals(hex(minus1), "ffffffffffffffffff01");
  assertEquals(hex(written((w) => w.int64Big(-1n))), "ffffffffffffffffff01");
  assertEquals(hex(written((w) => w.int32(-1))), "ffffffffffffffffff01");
  assertEquals(new Reader(minus1).int64Number(), -1);
  assertEquals(new Reader(minus1).int64Big(), -1n);
  assertEquals(new Reader(minus1).int32(), -1);
  assertEquals(new Reader(minus1).uint64Big(), 0xffffffffffffffffn);
  const minus300 = written((w) => w.int64(-300));
  assertEquals(minus300.length, 10);
  assertEquals(new Reader(minus300).int64Number(), -300);
  const minSafe = written((w) => w.int64(-Number.MAX_SAFE_INTEGER));
  assertEquals(new Reader(minSafe).int64Number(), -Number.MAX_SAFE_INTEGER);
  assertEquals(new Reader(minSafe).int64Big(), -BigInt(Number.MAX_SAFE_INTEGER));
});

Deno.test("number and bigint writers produce the same bytes", () => {
  const values = [
    0,
    1,
    127,
    128,
    16383,
    16384,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 35,
    2 ** 49,
    Number.MAX_SAFE_INTEGER,
    -1,
    -(2 ** 31),
    -(2 ** 32),
    -Number.MAX_SAFE_INTEGER,
  ];
  for (const v of values) {
    const a = written((w) => w.int64(v));
    const b = written((w) => w.int64Big(BigInt(v)));
    assertEquals(hex(a), hex(b), `value ${v}`);
    assertEquals(a.length, varintSizeInt64(v), `size of ${v}`);
    assertEquals(a.length, varintSizeBig(BigInt(v)), `big size of ${v}`);
    assertEquals(new Reader(a).int64Number(), v);
    assertEquals(new Reader(a).int64Big(), BigInt(v));
    const z = written((w) => w.sint64(v));
    assertEquals(hex(z), hex(written((w) => w.sint64Big(BigInt(v)))), `zigzag ${v}`);
    assertEquals(new Reader(z).sint64Number(), v);
    assertEquals(new Reader(z).sint64Big(), BigInt(v));
  }
});

Deno.test("64-bit edge values round-trip exactly as bigint", () => {
  const edges = [
    0n,
    1n,
    0x7fffffffffffffffn,
    0x8000000000000000n,
    0xffffffffffffffffn,
    0x8000000000000001n,
    0xdeadbeefcafebaben,
    (1n << 56n) - 1n,
    1n << 56n,
    (1n << 63n) - 1n,
  ];
  for (const v of edges) {
    const b = written((w) => w.uint64Big(v));
    assertEquals(b.length, varintSizeBig(v), `size of ${v}`);
    assertEquals(new Reader(b).uint64Big(), v);
    assertEquals(new Reader(b).int64Big(), BigInt.asIntN(64, v));
    const f = written((w) => w.fixed64Big(v));
    assertEquals(f.length, 8);
    assertEquals(new Reader(f).fixed64Big(), v);
  }
  assertEquals(hex(written((w) => w.uint64Big(0xffffffffffffffffn))), "ffffffffffffffffff01");
  assertEquals(hex(written((w) => w.int64Big(0x7fffffffffffffffn))), "ffffffffffffffff7f");
  assertEquals(hex(written((w) => w.sint64Big(-0x8000000000000000n))), "ffffffffffffffffff01");
  assertEquals(
    new Reader(written((w) => w.sint64Big(-0x8000000000000000n))).sint64Big(),
    -0x8000000000000000n,
  );
});

Deno.test("int64Number/uint64Number refuse values beyond 2^53", () => {
  const big = written((w) => w.uint64Big(1n << 53n));
  assertThrows(() => new Reader(big).int64Number(), ProtobufDecodeError, "53 bits");
  assertThrows(() => new Reader(big).uint64Number(), ProtobufDecodeError);
  const neg = written((w) => w.int64Big(-(1n << 53n)));
  assertThrows(() => new Reader(neg).int64Number(), ProtobufDecodeError);
  assertThrows(() => new Reader(written((w) => w.int64(-1))).uint64Number(), ProtobufDecodeError);
  assertThrows(
    () => new Reader(written((w) => w.fixed64Big(1n << 60n))).fixed64Number(),
    ProtobufDecodeError,
  );
  assertEquals(new Reader(written((w) => w.uint64Big((1n << 53n) - 1n))).uint64Number(), 2 ** 53 - 1);
});

Deno.test("uint32 keeps the low 32 bits of longer varints and consumes all of them", () => {
  const r = new Reader(bytesOf("ffffffffffffffffff01" + "05"));
  assertEquals(r.uint32(), 0xffffffff);
  assertEquals(r.pos, 10);
  assertEquals(r.uint32(), 5);
  assertEquals(new Reader(bytesOf("8080808010")).uint32(), 0);
  assertEquals(varintSize32(0xffffffff), 5);
});

Deno.test("strings: UTF-8 like TextEncoder, including surrogate pairs and lone surrogates", () => {
  const enc = new TextEncoder();
  const samples = [
    "",
    "a",
    "héllo",
    "日本語",
    "😀 emoji",
    "lone \ud800 high",
    "lone \udc00 low",
    "end \ud83d",
    "x".repeat(63),
    "é".repeat(40),
    "y".repeat(64) + "€",
    "z".repeat(200),
  ];
  for (const s of samples) {
    const b = written((w) => w.string(s));
    const expected = enc.encode(s);
    assertEquals(utf8Length(s), expected.length, JSON.stringify(s));
    const r = new Reader(b);
    assertEquals(r.length(), expected.length);
    assertEquals(hex(b.subarray(r.pos)), hex(expected), JSON.stringify(s));
    assertEquals(new Reader(b).string(), new TextDecoder().decode(expected));
  }
});

Deno.test("bytes are returned as views into the input", () => {
  const input = written((w) => w.bytes(new Uint8Array([1, 2, 3])));
  const view = new Reader(input).bytes();
  assertEquals(Array.from(view), [1, 2, 3]);
  input[1] = 9;
  assertEquals(view[0], 9, "the view shares memory with the input");
});

Deno.test("Writer: grows, back-patches lengths of any size, resets", async (t) => {
  await t.step("length back-patching moves the payload when the length needs more bytes", () => {
    for (const n of [0, 1, 127, 128, 300, 16383, 16384, 70000]) {
      const w = new Writer(8);
      w.uint32(10);
      const mark = w.beginLength();
      for (let i = 0; i < n; i++) w.bool((i & 1) === 1);
      w.endLength(mark);
      w.uint32(16);
      w.uint32(7);
      const out = w.finish();
      const r = new Reader(out);
      assertEquals(r.tag(), 10);
      const body = r.bytes();
      assertEquals(body.length, n);
      for (let i = 0; i < n; i++) assert(body[i] === (i & 1), `byte ${i} of ${n}`);
      assertEquals(r.tag(), 16);
      assertEquals(r.uint32(), 7);
      assertEquals(r.pos, out.length);
    }
  });
  await t.step("finish copies and the writer is reusable", () => {
    const w = new Writer(16);
    w.bytes(new Uint8Array(5000).fill(7));
    const first = w.finish();
    assertEquals(first.length, 5002);
    w.uint32(1);
    const second = w.finish();
    assertEquals(hex(second), "01");
    assertEquals(first[2], 7, "a finished buffer is not overwritten by later writes");
    w.bytes(new Uint8Array(2 << 20));
    w.finish();
    assert(w.buf.length < 1 << 20, "a huge buffer is released on reset");
  });
});

Deno.test("malformed input throws ProtobufDecodeError", async (t) => {
  await t.step("truncated varint", () => {
    assertThrows(() => new Reader(bytesOf("80")).uint32(), ProtobufDecodeError, "unexpected EOF");
    assertThrows(() => new Reader(bytesOf("ffffffff")).int64Number(), ProtobufDecodeError, "unexpected EOF");
    assertThrows(() => new Reader(bytesOf("ffffffffffff")).uint64Big(), ProtobufDecodeError);
    assertThrows(() => new Reader(new Uint8Array(0)).bool(), ProtobufDecodeError);
    assertThrows(() => new Reader(bytesOf("80")).skipType(0), ProtobufDecodeError);
  });
  await t.step("varint longer than 10 bytes", () => {
    const b = bytesOf("ffffffffffffffffffff01");
    assertThrows(() => new Reader(b).uint32(), ProtobufDecodeError, "overflow");
    assertThrows(() => new Reader(b).int64Number(), ProtobufDecodeError, "overflow");
    assertThrows(() => new Reader(b).skipType(0), ProtobufDecodeError, "overflow");
  });
  await t.step("length beyond the end", () => {
    assertThrows(() => new Reader(bytesOf("0501")).bytes(), ProtobufDecodeError, "unexpected EOF");
    assertThrows(() => new Reader(bytesOf("ffffffff0f")).bytes(), ProtobufDecodeError);
    assertThrows(() => new Reader(bytesOf("ffffffffffffffffff01")).bytes(), ProtobufDecodeError, "negative");
    assertThrows(() => new Reader(bytesOf("8080808080")).string(), ProtobufDecodeError);
    assertThrows(() => new Reader(bytesOf("0a")).skipType(2), ProtobufDecodeError);
  });
  await t.step("fixed widths past the end", () => {
    assertThrows(() => new Reader(bytesOf("010203")).fixed32(), ProtobufDecodeError);
    assertThrows(() => new Reader(bytesOf("01020304050607")).skipType(1), ProtobufDecodeError);
    assertThrows(() => new Reader(bytesOf("010203")).skipType(5), ProtobufDecodeError);
  });
  await t.step("illegal wire types and tags", () => {
    for (const wt of [4, 6, 7]) {
      assertThrows(() => new Reader(bytesOf("00")).skipType(wt), ProtobufDecodeError, "illegal wireType");
    }
    assertThrows(() => new Reader(bytesOf("00")).tag(), ProtobufDecodeError, "illegal tag 0");
    assertThrows(() => new Reader(bytesOf("8000")).tag(), ProtobufDecodeError, "illegal tag");
    assertThrows(() => new Reader(bytesOf("8080808080808001")).tag(), ProtobufDecodeError, "illegal tag");
  });
  await t.step("nested reads stay inside the nested message", () => {
    // field 1, length 2, containing a bytes field claiming 5 bytes (the outer buffer has enough)
    const r = new Reader(bytesOf("0a021205" + "0102030405"));
    assertEquals(r.tag(), 10);
    const outer = r.enter();
    assertEquals(r.end, 4);
    assertEquals(r.tag(), 18);
    assertThrows(() => r.bytes(), ProtobufDecodeError, "unexpected EOF");
    r.leave(outer);
  });
  await t.step("known field with a wrong wire type", () => {
    const r = new Reader(bytesOf("0d01020304"));
    assertThrows(() => r.skipField(r.tag(), 1 << 1), ProtobufDecodeError, "wrong wireType = 5 for field 1");
  });
});

Deno.test("skipType skips every wire type, groups included", () => {
  // varint, fixed64, bytes, group{varint, nested group{}}, fixed32, then a marker varint field 15
  const w = new Writer();
  w.tag(1, 0);
  w.int64(-5);
  w.tag(2, 1);
  w.fixed64(99);
  w.tag(3, 2);
  w.bytes(new Uint8Array(200));
  w.tag(4, 3);
  w.tag(1, 0);
  w.uint32(1);
  w.tag(2, 3);
  w.tag(2, 4);
  w.tag(4, 4);
  w.tag(5, 5);
  w.fixed32(1);
  w.tag(15, 0);
  w.uint32(42);
  const r = new Reader(w.finish());
  let marker = -1;
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag >>> 3 === 15) marker = r.uint32();
    else r.skipType(tag & 7);
  }
  assertEquals(marker, 42);
  assertEquals(r.depth, 0);
});

Deno.test("deep nesting is refused, not a stack overflow", () => {
  // MAX_DEPTH + 1 nested groups
  const w = new Writer();
  for (let i = 0; i <= MAX_DEPTH; i++) w.tag(1, 3);
  for (let i = 0; i <= MAX_DEPTH; i++) w.tag(1, 4);
  const r = new Reader(w.finish());
  assertThrows(() => r.skipType(r.tag() & 7), ProtobufDecodeError, "depth");
  // an unterminated group
  const g = new Reader(bytesOf("0b08010b"));
  assertThrows(() => g.skipType(g.tag() & 7), ProtobufDecodeError, "unexpected EOF");
});
