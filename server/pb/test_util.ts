/**
 * Test helpers: protobufjs as an independent reference implementation, a seeded PRNG, and the
 * conversion between this codec's objects and protobufjs' plain objects.
 *
 * @module
 */
import protobuf from "protobufjs";
import { fileURLToPath } from "node:url";
import { assertEquals } from "../../tests/assert.ts";

/** The proto files of etcd's v3 API (rpc.proto imports kv.proto and auth.proto). */
/**
 * etcd's own .proto files, as the etcd3 npm client ships them (rpc.proto, kv.proto, auth.proto), resolved
 * from the package's entry point so that the test does not depend on where node_modules lives.
 */
export const PROTO_DIR = fileURLToPath(new URL("../proto/", import.meta.resolve("etcd3")));

/** A protobufjs root with etcd's rpc.proto loaded (camelCase field names). */
export async function loadEtcdProtos(): Promise<protobuf.Root> {
  const root = new protobuf.Root();
  await root.load(`${PROTO_DIR}/rpc.proto`, { keepCase: false });
  return root;
}

/** A protobufjs root parsed from proto source text. */
export function parseProto(source: string): protobuf.Root {
  return protobuf.parse(source, { keepCase: false }).root;
}

/** Where this codec's field names differ from protobufjs' camelCase (which keeps `_T`). */
const RENAMES: Record<string, string> = { remaining_TTL: "remainingTTL" };

/** Compare.target selects which target_union field is on the wire. */
const COMPARE_UNION = ["version", "createRevision", "modRevision", "value", "lease"];

const LONG_TYPES = new Set(["int64", "uint64", "sint64", "fixed64", "sfixed64"]);
const UNSIGNED_TYPES = new Set(["uint64", "fixed64"]);

/** How {@linkcode toPlain} renders values. */
export interface PlainOptions {
  /** Keep fields holding defaults (so protobufjs writes them explicitly). */
  keepDefaults: boolean;
  /** Bytes as number arrays (protobufjs `toObject({bytes: Array})`) instead of Uint8Array. */
  bytesAsArray: boolean;
}

function isDefault(v: unknown): boolean {
  if (v === 0 || v === 0n || v === false || v === "") return true;
  return v instanceof Uint8Array && v.length === 0;
}

/**
 * Converts one of this codec's messages to the plain object protobufjs' `fromObject` takes and
 * `toObject({longs: String, enums: Number})` returns: 64-bit values as decimal strings (signed or
 * unsigned by the field's type), proto3 defaults dropped unless asked otherwise.
 */
export function toPlain(
  type: protobuf.Type,
  obj: Record<string, unknown>,
  opts: PlainOptions,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const unionPick = type.name === "Compare" ? COMPARE_UNION[obj.target as number] : undefined;
  for (const field of type.fieldsArray) {
    field.resolve();
    const name = field.name;
    const value = obj[RENAMES[name] ?? name];
    if (value === undefined) continue;
    const isUnion = type.name === "Compare" && COMPARE_UNION.includes(name);
    const convert = (v: unknown): unknown => {
      if (field.resolvedType instanceof protobuf.Type) {
        return toPlain(field.resolvedType, v as Record<string, unknown>, opts);
      }
      if (LONG_TYPES.has(field.type)) {
        const big = BigInt(v as bigint | number);
        return (UNSIGNED_TYPES.has(field.type) ? BigInt.asUintN(64, big) : BigInt.asIntN(64, big)).toString();
      }
      if (v instanceof Uint8Array && opts.bytesAsArray) return Array.from(v);
      return v;
    };
    if (field.repeated) {
      const arr = value as unknown[];
      if (arr.length === 0 && !opts.keepDefaults) continue;
      out[name] = arr.map(convert);
      continue;
    }
    if (!(field.resolvedType instanceof protobuf.Type) && isDefault(value)) {
      if (isUnion ? name !== unionPick : !opts.keepDefaults) continue;
    }
    if (isUnion && name !== unionPick && !opts.keepDefaults) continue;
    out[name] = convert(value);
  }
  return out;
}

/** Encodes with protobufjs from one of this codec's objects. */
export function pbjsEncode(
  type: protobuf.Type,
  obj: Record<string, unknown>,
  keepDefaults = false,
): Uint8Array {
  const plain = toPlain(type, obj, { keepDefaults, bytesAsArray: false });
  // a plain Uint8Array copy: protobufjs hands out Buffers, whose subarrays are Buffers too
  return new Uint8Array(type.encode(type.fromObject(plain)).finish());
}

/** Decodes with protobufjs and returns what {@linkcode toPlain} would give for the same message. */
export function pbjsDecode(type: protobuf.Type, bytes: Uint8Array): Record<string, unknown> {
  return type.toObject(type.decode(bytes), { longs: String, enums: Number, bytes: Array, defaults: false });
}

/**
 * Checks one message both ways against protobufjs: the same bytes from both encoders (defaults
 * omitted, fields in number order), protobufjs reads back our bytes, and our decoder reads protobufjs'
 * bytes written with every default spelled out.
 */
export function crossCheck<T>(
  type: protobuf.Type,
  sample: T,
  encode: (m: T) => Uint8Array,
  decode: (b: Uint8Array) => T,
): void {
  const obj = sample as Record<string, unknown>;
  const ours = encode(sample);
  assertEquals(hex(ours), hex(pbjsEncode(type, obj)), `${type.name}: same bytes as protobufjs`);
  assertEquals(
    pbjsDecode(type, ours),
    toPlain(type, obj, { keepDefaults: false, bytesAsArray: true }),
    `${type.name}: protobufjs reads our bytes`,
  );
  const verbose = pbjsEncode(type, obj, true);
  assertEquals(decode(verbose), sample, `${type.name}: we read protobufjs' bytes with explicit defaults`);
}

/** Lower-case hex of bytes. */
export function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Bytes from hex. */
export function unhex(h: string): Uint8Array {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A small seeded PRNG (mulberry32) so fuzz failures replay. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
