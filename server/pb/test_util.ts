/**
 * Test helpers: protobufjs as an independent reference implementation, a seeded PRNG, and the
 * conversion between this codec's objects and protobufjs' plain objects.
 *
 * @module
 */
import protobuf from "protobufjs";
import { assertEquals } from "../../tests/assert.ts";
import { Prng } from "../../tests/sim/prng.ts";
import { protoDir } from "./gen/main.ts";
import type { FieldModel, MessageModel, Schema } from "./gen/schema.ts";

/** etcd's own .proto files, as the etcd3 npm client ships them (rpc.proto, kv.proto, auth.proto). */
export const PROTO_DIR: string = protoDir();

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
function toPlain(
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
      // a set oneof member or proto3 optional field is on the wire even when it holds its default
      const explicit = field.partOf !== null && field.partOf !== undefined;
      if (isUnion ? name !== unionPick : !opts.keepDefaults && !explicit) continue;
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
function pbjsDecode(type: protobuf.Type, bytes: Uint8Array): Record<string, unknown> {
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

/** Floats in [0, 1) from the project's seeded generator, so fuzz failures replay. */
export function prng(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.float();
}

/** What {@linkcode randomMessage} reached: the messages it built, by full name. */
export type Reached = Set<string>;

const UNICODE = [
  "a",
  "z",
  "/",
  "é",
  "ü",
  "—",
  "中",
  "🙂",
  "\u0000",
  "\u007f",
  "\u0080",
  "\u07ff",
  "\u0800",
  "\uffff",
];

function randomString(rand: () => number): string {
  const len = rand() < 0.2 ? 64 + Math.floor(rand() * 100) : Math.floor(rand() * 12);
  let s = "";
  for (let i = 0; i < len; i++) s += UNICODE[Math.floor(rand() * UNICODE.length)];
  return s;
}

function randomBytes(rand: () => number): Uint8Array {
  const len = rand() < 0.1 ? 128 + Math.floor(rand() * 300) : Math.floor(rand() * 20);
  return new Uint8Array(len).map(() => Math.floor(rand() * 256));
}

/** A random integer of varied magnitude below 2^bits (bits <= 53). */
function randomMagnitude(rand: () => number, bits: number): number {
  const b = Math.floor(rand() * (bits + 1));
  return Math.floor(rand() * 2 ** b);
}

/** `v` negated sometimes (never -0). */
function randomSign(rand: () => number, v: number): number {
  return rand() < 0.3 && v !== 0 ? -v : v;
}

function randomBig(rand: () => number, signed: boolean): bigint {
  const hi = BigInt(Math.floor(rand() * 2 ** 32));
  const lo = BigInt(Math.floor(rand() * 2 ** 32));
  const shift = BigInt(Math.floor(rand() * 33));
  const v = ((hi << 32n) | lo) >> shift;
  return signed ? BigInt.asIntN(64, v) : v;
}

function randomScalar(schema: Schema, f: FieldModel, rand: () => number): unknown {
  switch (f.kind) {
    case "enum": {
      const values = schema.enums.find((e) => e.fullName === f.enumType)!.values;
      return values[Math.floor(rand() * values.length)].number;
    }
    case "int32":
    case "sint32":
      return randomSign(rand, randomMagnitude(rand, 31));
    case "uint32":
    case "fixed32":
      return randomMagnitude(rand, 32);
    case "int64":
    case "sint64":
      if (f.bigint) return randomBig(rand, true);
      return randomSign(rand, randomMagnitude(rand, 53));
    case "uint64":
    case "fixed64":
      return f.bigint ? randomBig(rand, false) : randomMagnitude(rand, 53);
    case "bool":
      return rand() < 0.5;
    case "string":
      return randomString(rand);
    case "bytes":
      return randomBytes(rand);
    default:
      throw new Error(`no random ${f.kind}`);
  }
}

function defaultScalar(f: FieldModel): unknown {
  if (f.kind === "bool") return false;
  if (f.kind === "string") return "";
  if (f.kind === "bytes") return new Uint8Array(0);
  return f.bigint ? 0n : 0;
}

/**
 * A random instance of `msg` in this codec's shape, from the generator's own model of it: scalars of
 * varied magnitude (often the default), 64-bit IDs over their whole range, optional messages and oneof
 * members sometimes present, recursion cut at `depth` 3. Records the messages it built in `reached`.
 */
export function randomMessage(
  schema: Schema,
  msg: MessageModel,
  rand: () => number,
  reached: Reached = new Set(),
  depth = 0,
): Record<string, unknown> {
  reached.add(msg.fullName);
  const out: Record<string, unknown> = {};
  const deep = depth >= 3;
  const sub = (f: FieldModel): Record<string, unknown> =>
    randomMessage(schema, schema.messages.find((m) => m.fullName === f.message)!, rand, reached, depth + 1);
  const value = (f: FieldModel): unknown =>
    f.kind === "message" ? sub(f) : rand() < 0.25 ? defaultScalar(f) : randomScalar(schema, f, rand);
  // one member per regular oneof, or none
  const chosen = new Map<string, FieldModel | undefined>();
  for (const o of msg.oneofs) {
    const members = msg.fields.filter((f) => f.oneof === o);
    const pick = Math.floor(rand() * (members.length + 1));
    chosen.set(o, deep ? undefined : members[pick]);
  }
  for (const f of msg.fields) {
    if (msg.selected && f.oneof === msg.selected.oneof) continue;
    if (f.oneof !== undefined && chosen.has(f.oneof)) {
      if (chosen.get(f.oneof) === f) out[f.name] = value(f);
      continue;
    }
    if (f.repeated) {
      const n = deep && f.kind === "message" ? 0 : Math.floor(rand() * 4);
      out[f.name] = Array.from(
        { length: n },
        () => f.kind === "message" ? sub(f) : randomScalar(schema, f, rand),
      );
    } else if (f.kind === "message") {
      if (f.alwaysPresent || (!deep && rand() < 0.5)) out[f.name] = sub(f);
    } else if (f.explicitPresence) {
      if (rand() < 0.5) out[f.name] = value(f);
    } else {
      out[f.name] = value(f);
    }
  }
  if (msg.selected) {
    const s = msg.selected;
    const target = out[s.by] as number;
    const e = schema.enums.find((x) => x.name === s.enumName)!;
    for (const [valueName, member] of s.cases) {
      const f = msg.fields.find((x) => x.name === member)!;
      const selected = e.values.find((v) => v.name === valueName)!.number === target;
      out[member] = selected ? value(f) : defaultScalar(f);
    }
  }
  return out;
}
