import { SortedKeys } from "./sorted_keys.ts";
import { crc32c } from "../crc32c.ts";
import { compareBytes, isFromKey, keyInRange, latin1, latin1Bytes, prefixRangeEnd } from "./bytes.ts";
import { assert, assertEquals } from "../../tests/assert.ts";
import { b, prng } from "./test_util.ts";

Deno.test("SortedKeys matches a sorted array under random inserts and removes", () => {
  const rnd = prng(7);
  const set = new SortedKeys();
  const ref = new Map<string, number>();
  const key = () =>
    latin1(new Uint8Array([Math.floor(rnd() * 256), Math.floor(rnd() * 256), Math.floor(rnd() * 4)]));
  for (let i = 0; i < 20000; i++) {
    const k = key();
    if (rnd() < 0.65) {
      const fresh = !ref.has(k);
      assertEquals(set.insert(k, i), fresh);
      if (fresh) ref.set(k, i);
    } else {
      assertEquals(set.remove(k), ref.has(k) ? ref.get(k) : -1);
      ref.delete(k);
    }
  }
  set.validate();
  const sorted = [...ref.keys()].sort();
  assertEquals(set.keys(), sorted);
  assertEquals(set.size, sorted.length);
  for (let i = 0; i < 200; i++) {
    const a = key();
    const z = key();
    const got: string[] = [];
    set.scan(a, z, (id, k) => {
      assertEquals(id, ref.get(k));
      got.push(k);
    });
    assertEquals(got, sorted.filter((k) => k >= a && k < z));
  }
  // descending: the same keys backwards, across every leaf, from an end inside, past or before them all
  const ends = [
    undefined,
    "",
    "\xff\xff\xff\xff",
    sorted[0],
    sorted[sorted.length - 1],
    ...sorted.slice(500, 520),
  ];
  for (let i = 0; i < 300; i++) {
    const a = i % 3 === 0 ? "" : key();
    const z = i < ends.length ? ends[i] : key();
    const got: string[] = [];
    set.scanDescending(a, z, (id, k) => {
      assertEquals(id, ref.get(k));
      got.push(k);
    });
    assertEquals(got, sorted.filter((k) => k >= a && (z === undefined || k < z)).reverse(), `[${a}, ${z})`);
  }
  const last: string[] = [];
  set.scanDescending("", sorted[100], (_id, k) => {
    last.push(k);
    return last.length < 5;
  });
  assertEquals(last, sorted.slice(95, 100).reverse());
  const tail: string[] = [];
  set.scan(sorted[100], undefined, (_id, k) => {
    tail.push(k);
    return tail.length < 5;
  });
  assertEquals(tail, sorted.slice(100, 105));
  assertEquals(set.get(sorted[3]), ref.get(sorted[3]));
  assertEquals(set.get("\xff\xff\xff\xff"), -1);
  set.filter((id) => id % 2 === 0);
  set.validate();
  assertEquals(set.keys(), sorted.filter((k) => ref.get(k)! % 2 === 0));
  for (const k of set.keys()) set.remove(k);
  set.validate();
  assertEquals(set.size, 0);
  assert(set.insert("again", 1));
  assertEquals(set.keys(), ["again"]);
});

Deno.test("crc32c", () => {
  assertEquals(crc32c(0, b("123456789")), 0xe3069283);
  assertEquals(crc32c(0, new Uint8Array(0)), 0);
  const data = new Uint8Array(1000).map((_, i) => (i * 31) & 0xff);
  // continuing over pieces equals one pass
  assertEquals(crc32c(crc32c(0, data.subarray(0, 333)), data.subarray(333)), crc32c(0, data));
});

Deno.test("byte helpers", () => {
  const bytes = new Uint8Array(20000).map((_, i) => i & 0xff);
  assertEquals(latin1Bytes(latin1(bytes)), bytes);
  assertEquals(latin1(new Uint8Array([0x00, 0x80, 0xff])), "\x00\x80\xff");
  assert(latin1(new Uint8Array([0x7f])) < latin1(new Uint8Array([0x80])));
  assert(compareBytes(b("ab"), b("abc")) < 0);
  assert(compareBytes(new Uint8Array([0xff]), b("a")) > 0);
  assertEquals(compareBytes(b("x"), b("x")), 0);
  assertEquals(prefixRangeEnd(b("ab")), b("ac"));
  assertEquals(prefixRangeEnd(new Uint8Array([0x61, 0xff])), b("b"));
  assertEquals(prefixRangeEnd(new Uint8Array([0xff, 0xff])), new Uint8Array([0]));
  assert(isFromKey(new Uint8Array([0])));
  assert(!isFromKey(undefined));
  assert(keyInRange(b("a"), b("a"), undefined));
  assert(!keyInRange(b("ab"), b("a"), new Uint8Array(0)));
  assert(keyInRange(b("ab"), b("a"), b("b")));
  assert(!keyInRange(b("b"), b("a"), b("b")));
  assert(keyInRange(b("zzz"), b("b"), new Uint8Array([0])));
  assert(!keyInRange(b("a"), b("b"), new Uint8Array([0])));
});
