/**
 * The JSON side of the gateway: request bodies to protobuf bytes and reply bytes to JSON, walking the
 * generated field tables of server/pb/rpc_json.ts. Working on the wire format (not on decoded objects)
 * keeps presence exactly as the reply has it: a sub-message on the wire is written even when empty,
 * a oneof member even when it holds its default, other defaults never, as Go's jsonpb does with
 * etcd's gateway settings (proto field names, defaults omitted, 64-bit integers as strings, bytes as
 * base64, enums by name).
 *
 * Requests are read as Go's decoder reads them: one JSON value (what follows it is ignored), both the
 * proto and the lowerCamel names, integers as numbers or strings, `null` as absent, unknown fields
 * ignored; errors carry Go's wording, which etcd's gateway answers with.
 *
 * @module
 */
import { JSON_ENUMS, JSON_MESSAGES, type JsonField } from "../../pb/rpc_json.ts";
import { Reader, Writer } from "../../pb/wire.ts";

/** A request body the gateway cannot read: a JSON syntax error or a value of the wrong type. */
export class JsonRequestError extends Error {
  /** Stable error code of this class. */
  readonly code = "GATEWAY_BAD_JSON";
  /** @param message Go's wording of the problem. */
  constructor(message: string) {
    super(message);
    this.name = "JsonRequestError";
  }
}

/** A parsed JSON value; numbers keep their text so 64-bit integers stay exact. */
export type JsonValue =
  | { t: "object"; entries: [string, JsonValue][] }
  | { t: "array"; items: JsonValue[] }
  | { t: "string"; v: string }
  | { t: "number"; raw: string }
  | { t: "bool"; v: boolean }
  | { t: "null" };

/** Go's quoting of an offending character in syntax errors: 'x', '\'' , '"'. */
function quoteChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  const code = c.codePointAt(0)!;
  if (code < 0x20) {
    const named: Record<number, string> = { 9: "\\t", 10: "\\n", 13: "\\r" };
    return `'${named[code] ?? `\\x${code.toString(16).padStart(2, "0")}`}'`;
  }
  return `'${c}'`;
}

class Parser {
  pos = 0;
  constructor(readonly s: string) {}

  eof(): never {
    throw new JsonRequestError("unexpected EOF");
  }

  bad(context: string): never {
    const c = String.fromCodePoint(this.s.codePointAt(this.pos)!);
    throw new JsonRequestError(`invalid character ${quoteChar(c)} ${context}`);
  }

  ws(): void {
    const s = this.s;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c === 32 || c === 9 || c === 10 || c === 13) this.pos++;
      else break;
    }
  }

  value(): JsonValue {
    this.ws();
    if (this.pos >= this.s.length) this.eof();
    const c = this.s[this.pos];
    switch (c) {
      case "{":
        return this.object();
      case "[":
        return this.array();
      case '"':
        return { t: "string", v: this.string() };
      case "t":
        this.literal("true");
        return { t: "bool", v: true };
      case "f":
        this.literal("false");
        return { t: "bool", v: false };
      case "n":
        this.literal("null");
        return { t: "null" };
      default:
        if (c === "-" || (c >= "0" && c <= "9")) return { t: "number", raw: this.number() };
        this.bad("looking for beginning of value");
    }
  }

  literal(word: string): void {
    for (let i = 0; i < word.length; i++) {
      if (this.pos >= this.s.length) this.eof();
      if (this.s[this.pos] !== word[i]) this.bad(`in literal ${word} (expecting ${quoteChar(word[i])})`);
      this.pos++;
    }
  }

  number(): string {
    const start = this.pos;
    const s = this.s;
    const digits = (): number => {
      const from = this.pos;
      while (this.pos < s.length && s[this.pos] >= "0" && s[this.pos] <= "9") this.pos++;
      return this.pos - from;
    };
    if (s[this.pos] === "-") {
      this.pos++;
      if (this.pos >= s.length) this.eof();
      if (!(s[this.pos] >= "0" && s[this.pos] <= "9")) this.bad("in numeric literal");
    }
    if (s[this.pos] === "0") this.pos++;
    else digits();
    if (s[this.pos] === ".") {
      this.pos++;
      if (this.pos >= s.length) this.eof();
      if (digits() === 0) this.bad("after decimal point in numeric literal");
    }
    if (s[this.pos] === "e" || s[this.pos] === "E") {
      this.pos++;
      if (s[this.pos] === "+" || s[this.pos] === "-") this.pos++;
      if (this.pos >= s.length) this.eof();
      if (digits() === 0) this.bad("in exponent of numeric literal");
    }
    return s.slice(start, this.pos);
  }

  string(): string {
    const s = this.s;
    this.pos++; // opening quote
    let out = "";
    for (;;) {
      if (this.pos >= s.length) this.eof();
      const c = s[this.pos];
      if (c === '"') {
        this.pos++;
        return out;
      }
      if (c.charCodeAt(0) < 0x20) this.bad("in string literal");
      if (c !== "\\") {
        out += c;
        this.pos++;
        continue;
      }
      this.pos++;
      if (this.pos >= s.length) this.eof();
      const e = s[this.pos];
      const simple: Record<string, string> = {
        '"': '"',
        "\\": "\\",
        "/": "/",
        b: "\b",
        f: "\f",
        n: "\n",
        r: "\r",
        t: "\t",
      };
      if (e in simple) {
        out += simple[e];
        this.pos++;
      } else if (e === "u") {
        this.pos++;
        for (let i = 0; i < 4; i++) {
          if (this.pos + i >= s.length) {
            this.pos = s.length;
            this.eof();
          }
          if (!/[0-9a-fA-F]/.test(s[this.pos + i])) {
            this.pos += i;
            this.bad("in \\u hexadecimal character escape");
          }
        }
        out += String.fromCharCode(parseInt(s.slice(this.pos, this.pos + 4), 16));
        this.pos += 4;
      } else this.bad("in string escape code");
    }
  }

  object(): JsonValue {
    this.pos++;
    const entries: [string, JsonValue][] = [];
    this.ws();
    if (this.pos >= this.s.length) this.eof();
    if (this.s[this.pos] === "}") {
      this.pos++;
      return { t: "object", entries };
    }
    for (;;) {
      this.ws();
      if (this.pos >= this.s.length) this.eof();
      if (this.s[this.pos] !== '"') this.bad("looking for beginning of object key string");
      const key = this.string();
      this.ws();
      if (this.pos >= this.s.length) this.eof();
      if (this.s[this.pos] !== ":") this.bad("after object key");
      this.pos++;
      entries.push([key, this.value()]);
      this.ws();
      if (this.pos >= this.s.length) this.eof();
      const c = this.s[this.pos];
      this.pos++;
      if (c === "}") return { t: "object", entries };
      if (c !== ",") {
        this.pos--;
        this.bad("after object key:value pair");
      }
    }
  }

  array(): JsonValue {
    this.pos++;
    const items: JsonValue[] = [];
    this.ws();
    if (this.pos >= this.s.length) this.eof();
    if (this.s[this.pos] === "]") {
      this.pos++;
      return { t: "array", items };
    }
    for (;;) {
      items.push(this.value());
      this.ws();
      if (this.pos >= this.s.length) this.eof();
      const c = this.s[this.pos];
      this.pos++;
      if (c === "]") return { t: "array", items };
      if (c !== ",") {
        this.pos--;
        this.bad("after array element");
      }
    }
  }
}

/**
 * Reads the first JSON value of `text` as Go's json.Decoder does (what follows it is ignored);
 * `undefined` for a body that holds only white space.
 *
 * @throws {JsonRequestError} with Go's wording for a syntax error.
 */
export function parseJson(text: string): JsonValue | undefined {
  const p = new Parser(text);
  p.ws();
  if (p.pos >= text.length) return undefined;
  return p.value();
}

/**
 * Splits `text` into its successive JSON values, as a Go json.Decoder reads a stream of them; each
 * comes back as its own text.
 *
 * @throws {JsonRequestError} with Go's wording for a syntax error.
 */
export function splitJson(text: string, max = 10_000): string[] {
  const out: string[] = [];
  const p = new Parser(text);
  for (let i = 0; i < max; i++) {
    p.ws();
    if (p.pos >= text.length) break;
    const start = p.pos;
    p.value();
    out.push(text.slice(start, p.pos));
  }
  return out;
}

/** What Go's encoding/json calls a JSON value's type in "cannot unmarshal" errors. */
function jsonTypeName(v: JsonValue): string {
  return v.t === "bool" ? "bool" : v.t;
}

const NUMERIC_GO_TYPES = new Set(["int32", "int64", "uint32", "uint64"]);

/** Go's UnmarshalTypeError: a number names its text only when the target is a number type. */
function cannot(v: JsonValue, goType: string): JsonRequestError {
  const what = v.t === "number" && NUMERIC_GO_TYPES.has(goType) ? `number ${v.raw}` : jsonTypeName(v);
  return new JsonRequestError(`json: cannot unmarshal ${what} into Go value of type ${goType}`);
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_INDEX = new Map<string, number>([...B64].map((c, i) => [c, i]));

/**
 * Decodes standard base64 with padding as Go's encoding/base64 does (CR and LF are skipped); errors
 * name the input byte as Go does ("illegal base64 data at input byte 4").
 */
export function decodeBase64(s: string): Uint8Array {
  const out: number[] = [];
  const fail = (at: number): never => {
    throw new JsonRequestError(`illegal base64 data at input byte ${at}`);
  };
  let si = 0;
  const n = s.length;
  while (si < n) {
    const quantum: number[] = [];
    let j = 0;
    for (; j < 4;) {
      if (si === n) {
        if (j === 0) return Uint8Array.from(out);
        fail(si - j);
      }
      const c = s[si++];
      if (c === "\r" || c === "\n") continue;
      if (c === "=") {
        if (j < 2) fail(si - 1);
        // skip newlines, then expect the second '=' when one byte was encoded
        while (si < n && (s[si] === "\r" || s[si] === "\n")) si++;
        if (j === 2) {
          if (si === n) fail(n);
          if (s[si] !== "=") fail(si);
          si++;
        }
        while (si < n && (s[si] === "\r" || s[si] === "\n")) si++;
        if (si < n) fail(si);
        break;
      }
      const v = B64_INDEX.get(c);
      if (v === undefined) fail(si - 1);
      quantum.push(v!);
      j++;
    }
    if (quantum.length >= 2) out.push(((quantum[0] << 2) | (quantum[1] >> 4)) & 0xff);
    if (quantum.length >= 3) out.push(((quantum[1] << 4) | (quantum[2] >> 2)) & 0xff);
    if (quantum.length === 4) out.push(((quantum[2] << 6) | quantum[3]) & 0xff);
    if (quantum.length < 4) break;
  }
  return Uint8Array.from(out);
}

/** Standard base64 with padding. */
export function encodeBase64(b: Uint8Array): string {
  return b.toBase64();
}

const INT_GO_TYPE: Record<string, string> = {
  int32: "int32",
  sint32: "int32",
  uint32: "uint32",
  fixed32: "uint32",
  int64: "int64",
  sint64: "int64",
  uint64: "uint64",
  fixed64: "uint64",
};

const INT_RANGE: Record<string, [bigint, bigint]> = {
  int32: [-(1n << 31n), (1n << 31n) - 1n],
  uint32: [0n, (1n << 32n) - 1n],
  int64: [-(1n << 63n), (1n << 63n) - 1n],
  uint64: [0n, (1n << 64n) - 1n],
};

/** An integer field's value: a JSON number, or a string holding one (jsonpb unquotes it first). */
function integer(v: JsonValue, kind: string): bigint {
  const goType = INT_GO_TYPE[kind];
  let num: JsonValue = v;
  if (v.t === "string") {
    const inner = parseJson(v.v);
    if (inner === undefined) throw new JsonRequestError("unexpected end of JSON input");
    num = inner;
  }
  if (num.t !== "number") throw cannot(num, goType);
  if (!/^-?\d+$/.test(num.raw)) throw cannot(num, goType);
  const n = BigInt(num.raw);
  const [lo, hi] = INT_RANGE[goType];
  if (n < lo || n > hi) throw cannot(num, goType);
  return n;
}

function goTypeOfMessage(): string {
  return "map[string]json.RawMessage";
}

interface Scalar {
  field: JsonField;
  value: bigint | boolean | string | Uint8Array;
}

function isDefault(v: Scalar["value"]): boolean {
  if (typeof v === "bigint") return v === 0n;
  if (typeof v === "boolean") return !v;
  return v.length === 0;
}

function scalarOf(f: JsonField, v: JsonValue): Scalar["value"] {
  switch (f.kind) {
    case "bool":
      if (v.t !== "bool") throw cannot(v, "bool");
      return v.v;
    case "string":
      if (v.t !== "string") throw cannot(v, "string");
      return v.v;
    case "bytes":
      if (v.t !== "string") throw cannot(v, "[]uint8");
      return decodeBase64(v.v);
    case "enum": {
      const e = JSON_ENUMS[f.type!];
      if (v.t === "string") {
        const found = e.values.find(([name]) => name === v.v);
        if (found === undefined) {
          throw new JsonRequestError(`unknown value ${JSON.stringify(v.v)} for enum ${e.goName}`);
        }
        return BigInt(found[1]);
      }
      if (v.t === "number") return integer(v, "int32");
      throw cannot(v, e.goName);
    }
    default:
      return integer(v, f.kind);
  }
}

function writeScalar(w: Writer, kind: string, v: Scalar["value"]): void {
  switch (kind) {
    case "bool":
      w.bool(v as boolean);
      return;
    case "string":
      w.string(v as string);
      return;
    case "bytes":
      w.bytes(v as Uint8Array);
      return;
    case "sint32":
    case "sint64": {
      const n = v as bigint;
      w.uint64Big(n >= 0n ? n << 1n : ((-n) << 1n) - 1n);
      return;
    }
    case "fixed32":
      w.fixed32(Number(v as bigint));
      return;
    case "fixed64":
      w.fixed64Big(v as bigint);
      return;
    case "uint32":
    case "uint64":
      w.uint64Big(v as bigint);
      return;
    default: // int32, int64, enum: negative values take ten bytes
      w.int64Big(v as bigint);
  }
}

function wireType(kind: string): number {
  if (kind === "string" || kind === "bytes" || kind === "message") return 2;
  if (kind === "fixed32") return 5;
  if (kind === "fixed64") return 1;
  return 0;
}

function fieldByName(fields: readonly JsonField[], key: string): JsonField | undefined {
  return fields.find((f) => f.name === key) ?? fields.find((f) => f.json === key);
}

function writeMessage(w: Writer, type: string, v: JsonValue): void {
  if (v.t !== "object") throw cannot(v, goTypeOfMessage());
  const fields = JSON_MESSAGES[type];
  // last occurrence wins, as with Go's map decoding
  const chosen = new Map<JsonField, JsonValue>();
  for (const [key, value] of v.entries) {
    const f = fieldByName(fields, key);
    if (f === undefined) continue;
    chosen.delete(f);
    chosen.set(f, value);
  }
  for (const f of fields) {
    const value = chosen.get(f);
    if (value === undefined || value.t === "null") continue;
    if (f.repeated) {
      if (value.t !== "array") throw cannot(value, "[]json.RawMessage");
      if (f.kind === "message") {
        for (const item of value.items) {
          w.tag(f.number, 2);
          const mark = w.beginLength();
          if (item.t !== "null") writeMessage(w, f.type!, item);
          w.endLength(mark);
        }
        continue;
      }
      const values = value.items.filter((i) => i.t !== "null").map((i) => scalarOf(f, i));
      if (values.length === 0) continue;
      if (f.packed) {
        w.tag(f.number, 2);
        const mark = w.beginLength();
        for (const x of values) writeScalar(w, f.kind, x);
        w.endLength(mark);
      } else {
        for (const x of values) {
          w.tag(f.number, wireType(f.kind));
          writeScalar(w, f.kind, x);
        }
      }
      continue;
    }
    if (f.kind === "message") {
      w.tag(f.number, 2);
      const mark = w.beginLength();
      writeMessage(w, f.type!, value);
      w.endLength(mark);
      continue;
    }
    const x = scalarOf(f, value);
    if (f.oneof === undefined && isDefault(x)) continue;
    w.tag(f.number, wireType(f.kind));
    writeScalar(w, f.kind, x);
  }
}

/**
 * The protobuf bytes of message `type` (a full name, `etcdserverpb.RangeRequest`) for a request body;
 * an empty or `null` body is the empty message.
 *
 * @throws {JsonRequestError} for bodies Go's gateway refuses, with its wording.
 */
export function requestToProto(type: string, body: Uint8Array | string): Uint8Array {
  if (JSON_MESSAGES[type] === undefined) throw new Error(`no JSON mapping for ${type}`);
  const text = typeof body === "string" ? body : new TextDecoder().decode(body);
  const v = parseJson(text);
  const w = new Writer(256);
  if (v !== undefined && v.t !== "null") writeMessage(w, type, v);
  return w.finish().slice();
}

function readScalar(r: Reader, kind: string): bigint | number | boolean | string | Uint8Array {
  switch (kind) {
    case "bool":
      return r.bool();
    case "string":
      return r.string();
    case "bytes":
      return r.bytes();
    case "int32":
    case "enum":
      return r.int32();
    case "uint32":
      return r.uint32();
    case "sint32":
      return r.sint32();
    case "fixed32":
      return r.fixed32();
    case "int64":
      return r.int64Big();
    case "uint64":
      return r.uint64Big();
    case "sint64":
      return r.sint64Big();
    case "fixed64":
      return r.fixed64Big();
    default:
      throw new Error(`unsupported kind ${kind}`);
  }
}

type Out = bigint | number | boolean | string | Uint8Array | OutMessage;
/** A message read off the wire: its values by position in its type's field table (a list if repeated). */
interface OutMessage {
  type: string;
  values: (Out | Out[] | undefined)[];
}

/** Each message type's field positions (in its table) by field number, built once per type. */
const POSITIONS = new Map<string, Map<number, number>>();

function positionsByNumber(type: string): Map<number, number> {
  let byNumber = POSITIONS.get(type);
  if (byNumber === undefined) {
    byNumber = new Map(JSON_MESSAGES[type].map((f, i) => [f.number, i]));
    POSITIONS.set(type, byNumber);
  }
  return byNumber;
}

function readMessage(r: Reader, type: string): OutMessage {
  const byNumber = positionsByNumber(type);
  const table = JSON_MESSAGES[type];
  const values: (Out | Out[] | undefined)[] = new Array(table.length);
  while (r.pos < r.end) {
    const tag = r.tag();
    const i = byNumber.get(tag >>> 3);
    const wt = tag & 7;
    if (i === undefined) {
      r.skipType(wt);
      continue;
    }
    const f = table[i];
    if (f.repeated && f.kind !== "message" && wt === 2 && wireType(f.kind) !== 2) {
      // packed repeated scalars
      const list = (values[i] ??= []) as Out[];
      const outer = r.enter();
      while (r.pos < r.end) list.push(readScalar(r, f.kind));
      r.leave(outer);
      continue;
    }
    let v: Out;
    if (f.kind === "message") {
      const outer = r.enter();
      v = readMessage(r, f.type!);
      r.leave(outer);
    } else v = readScalar(r, f.kind);
    if (f.repeated) ((values[i] ??= []) as Out[]).push(v);
    else values[i] = v;
  }
  return { type, values };
}

function isDefaultOut(v: Out): boolean {
  if (typeof v === "bigint") return v === 0n;
  if (typeof v === "number") return v === 0;
  if (typeof v === "boolean") return !v;
  if (typeof v === "string") return v.length === 0;
  if (v instanceof Uint8Array) return v.length === 0;
  return false;
}

/** A JSON string as Go's encoder writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped. */
export function goString(s: string): string {
  return JSON.stringify(s).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

const textEncoder = new TextEncoder();
const QUOTE = 0x22;
const COMMA = 0x2c;

/**
 * JSON text written straight into bytes: no string per value to build and then encode again, which for a
 * long answer was most of the work and of the garbage.
 */
class JsonBytes {
  buf: Uint8Array;
  len = 0;

  /** `wire` is the length of the protobuf bytes it is written from: base64 makes values a third longer. */
  constructor(wire: number) {
    this.buf = new Uint8Array(Math.ceil(wire * 1.4) + 256);
  }

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  byte(c: number): void {
    this.room(1);
    this.buf[this.len++] = c;
  }

  /** Text known to be ASCII (names, numbers, base64). */
  ascii(s: string): void {
    this.room(s.length);
    if (s.length > 64) {
      this.len += textEncoder.encodeInto(s, this.buf.subarray(this.len)).written;
      return;
    }
    const buf = this.buf;
    let at = this.len;
    for (let i = 0; i < s.length; i++) buf[at++] = s.charCodeAt(i);
    this.len = at;
  }

  /** Any text, as UTF-8. */
  text(s: string): void {
    this.room(s.length * 3);
    this.len += textEncoder.encodeInto(s, this.buf.subarray(this.len)).written;
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/** `"name":` of each field, as bytes. */
const FIELD_NAMES = new Map<JsonField, string>();

function writeName(w: JsonBytes, f: JsonField): void {
  let name = FIELD_NAMES.get(f);
  if (name === undefined) {
    name = `"${f.name}":`;
    FIELD_NAMES.set(f, name);
  }
  w.ascii(name);
}

function writeValue(w: JsonBytes, f: JsonField, v: Out): void {
  switch (typeof v) {
    case "bigint":
      w.byte(QUOTE);
      w.ascii(v.toString());
      w.byte(QUOTE);
      return;
    case "number":
      if (f.kind === "enum") {
        const name = JSON_ENUMS[f.type!].values.find(([, n]) => n === v)?.[0];
        if (name !== undefined) {
          w.text(`"${name}"`);
          return;
        }
      }
      w.ascii(String(v));
      return;
    case "boolean":
      w.ascii(v ? "true" : "false");
      return;
    case "string":
      w.text(goString(v));
      return;
  }
  if (v instanceof Uint8Array) {
    w.byte(QUOTE);
    w.ascii(encodeBase64(v));
    w.byte(QUOTE);
  } else writeObject(w, v);
}

/** Where a message's JSON stands: whether a field is written, and the repeated field whose list is open. */
interface Written {
  any: boolean;
  open: JsonField | undefined;
}

function closeList(w: JsonBytes, at: Written): void {
  if (at.open === undefined) return;
  w.byte(0x5d); // ]
  at.open = undefined;
}

/**
 * Writes the fields of `m` in table order, going on from `at`: a list `at` left open takes this message's
 * elements of the same field; the last list written is left open.
 */
function writeFields(w: JsonBytes, m: OutMessage, at: Written): void {
  const table = JSON_MESSAGES[m.type];
  for (let i = 0; i < table.length; i++) {
    const v = m.values[i];
    if (v === undefined) continue;
    const f = table[i];
    if (f.repeated) {
      const list = v as Out[];
      if (list.length === 0) continue;
      let k = 0;
      if (f !== at.open) {
        closeList(w, at);
        if (at.any) w.byte(COMMA);
        writeName(w, f);
        w.byte(0x5b); // [
        writeValue(w, f, list[0]);
        k = 1;
        at.open = f;
      }
      for (; k < list.length; k++) {
        w.byte(COMMA);
        writeValue(w, f, list[k]);
      }
    } else {
      if (f.kind !== "message" && f.oneof === undefined && isDefaultOut(v as Out)) continue;
      closeList(w, at);
      if (at.any) w.byte(COMMA);
      writeName(w, f);
      writeValue(w, f, v as Out);
    }
    at.any = true;
  }
}

function writeObject(w: JsonBytes, m: OutMessage): void {
  w.byte(0x7b); // {
  const at: Written = { any: false, open: undefined };
  writeFields(w, m, at);
  closeList(w, at);
  w.byte(0x7d); // }
}

/** The JSON etcd's gateway writes for protobuf bytes of message `type`, as UTF-8, between `before` and `after`. */
export function protoToJsonBytes(type: string, bytes: Uint8Array, before = "", after = ""): Uint8Array {
  if (JSON_MESSAGES[type] === undefined) throw new Error(`no JSON mapping for ${type}`);
  const w = new JsonBytes(bytes.length);
  w.text(before);
  writeObject(w, readMessage(new Reader(bytes), type));
  w.text(after);
  return w.bytes();
}

/** The JSON etcd's gateway writes for protobuf bytes of message `type`. */
export function protoToJson(type: string, bytes: Uint8Array): string {
  return new TextDecoder().decode(protoToJsonBytes(type, bytes));
}

/**
 * The first and last positions in `type`'s field table of the top-level fields on the wire in `bytes`
 * (unknown fields left out; undefined when there is none); values are skipped, not read.
 */
function fieldSpan(type: string, bytes: Uint8Array): [number, number] | undefined {
  const byNumber = positionsByNumber(type);
  const r = new Reader(bytes);
  let first = Infinity;
  let last = -1;
  while (r.pos < r.end) {
    const tag = r.tag();
    const i = byNumber.get(tag >>> 3);
    r.skipType(tag & 7);
    if (i === undefined) continue;
    first = Math.min(first, i);
    last = Math.max(last, i);
  }
  return last < 0 ? undefined : [first, last];
}

/**
 * The JSON of a message handed over in parts (protobuf's concatenation: each part encodes some of its
 * fields, and a repeated field's elements may run on over several parts, as the range pager hands a long
 * range over), as UTF-8, one piece per part: together the same bytes as {@link protoToJsonBytes} of the
 * parts joined, but converted a part at a time, so a caller can let other work run between two pieces and
 * never holds the whole text.
 *
 * That needs the parts in the field table's order: no part holds a field that comes before one of an
 * earlier part, and only a repeated field runs on from one part into the next. Otherwise (or for a type
 * without a mapping) the answer is undefined, and the caller converts the parts joined.
 */
export function partsToJson(type: string, parts: readonly Uint8Array[]): Iterable<Uint8Array> | undefined {
  const table = JSON_MESSAGES[type];
  if (table === undefined) return undefined;
  let last = -1;
  for (const part of parts) {
    const span = fieldSpan(type, part);
    if (span === undefined) continue;
    const [first, end] = span;
    if (first < last || (first === last && !table[first].repeated)) return undefined;
    last = end;
  }
  return jsonPieces(type, parts);
}

function* jsonPieces(type: string, parts: readonly Uint8Array[]): Generator<Uint8Array> {
  const at: Written = { any: false, open: undefined };
  for (let i = 0; i < parts.length; i++) {
    const w = new JsonBytes(parts[i].length);
    if (i === 0) w.byte(0x7b); // {
    writeFields(w, readMessage(new Reader(parts[i]), type), at);
    if (i === parts.length - 1) {
      closeList(w, at);
      w.byte(0x7d); // }
    }
    yield w.bytes();
  }
  if (parts.length === 0) yield textEncoder.encode("{}");
}
