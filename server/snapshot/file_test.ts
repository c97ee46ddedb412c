import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { Digest, DIGEST_BYTES, envelope, imageOf, SnapshotFileError } from "./file.ts";

/** A backup file around `image`, as the Snapshot stream writes it. */
function fileOf(image: Uint8Array): Uint8Array {
  const { head, pad } = envelope(image.length);
  const body = new Uint8Array(head.length + image.length + pad.length);
  body.set(head);
  body.set(image, head.length);
  const d = new Digest();
  d.update(body);
  const out = new Uint8Array(body.length + DIGEST_BYTES);
  out.set(body);
  out.set(d.finish(), body.length);
  return out;
}

Deno.test("backup file: whole 512-byte pages plus the digest, as etcdctl checks; the image comes back", () => {
  for (const n of [0, 1, 495, 496, 497, 5000]) {
    const image = new Uint8Array(n).map((_, i) => i % 251);
    const file = fileOf(image);
    assertEquals(file.length % 512, DIGEST_BYTES, `size ${n}`);
    assertEquals(imageOf(file), image);
  }
});

Deno.test("backup file: a truncated, corrupt or foreign file is refused in words", () => {
  const file = fileOf(new Uint8Array(3000).fill(7));
  assertThrows(() => imageOf(file.subarray(0, 1000)), SnapshotFileError, "truncated or corrupt");
  const flipped = file.slice();
  flipped[100] ^= 1;
  assertThrows(() => imageOf(flipped), SnapshotFileError, "expected sha256 does not match");
  assertEquals(imageOf(flipped, true).length, 3000); // --skip-hash-check
  assertThrows(() => imageOf(new Uint8Array(600)), SnapshotFileError, "not an etcd-ts snapshot");
});
