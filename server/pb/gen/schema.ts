/**
 * The parsed .proto files resolved against the generator's configuration: the messages to generate
 * (those listed and everything they contain), with TypeScript names, the wire kind of each field and
 * the options that apply to it. The emitter and the codec's tests both work from this model.
 *
 * @module
 */
import type { GenConfig } from "./config.ts";
import { type EnumDecl, type FieldDecl, isScalar, type MessageDecl, type ProtoFile } from "./proto_parser.ts";

/** A configuration that does not fit the schema (unknown message, unsupported type, clashing names). */
export class GenConfigError extends Error {
  /** Stable error code of this class. */
  readonly code = "PROTO_GEN_CONFIG";

  /** @param message what does not fit. */
  constructor(message: string) {
    super(message);
    this.name = "GenConfigError";
  }
}

/** The scalar wire kinds the codec supports (`enum` values travel as int32). */
export type ScalarKind =
  | "int32"
  | "uint32"
  | "sint32"
  | "fixed32"
  | "int64"
  | "uint64"
  | "sint64"
  | "fixed64"
  | "bool"
  | "string"
  | "bytes"
  | "enum";

const SUPPORTED = new Set<string>([
  "int32",
  "uint32",
  "sint32",
  "fixed32",
  "int64",
  "uint64",
  "sint64",
  "fixed64",
  "bool",
  "string",
  "bytes",
]);

const LONG = new Set<string>(["int64", "uint64", "sint64", "fixed64"]);

/** An enum to emit as a const object. */
export interface EnumModel {
  fullName: string;
  /** TypeScript name (the enum's own name). */
  name: string;
  /** Values with UPPER_SNAKE names (`NotEqual` becomes `NOT_EQUAL`). */
  values: { name: string; protoName: string; number: number }[];
  comment: string;
}

/** A field of a generated message. */
export interface FieldModel {
  protoName: string;
  /** TypeScript property name: the camelCase of the proto name (`range_end` -> `rangeEnd`). */
  name: string;
  number: number;
  /** A scalar kind, or `message`. */
  kind: ScalarKind | "message";
  /** For 64-bit kinds: exact `bigint` rather than `number`. */
  bigint: boolean;
  repeated: boolean;
  /** Repeated varint fields are written packed (proto3's default) unless `[packed = false]`. */
  packed: boolean;
  /** proto3 `optional` or a member of a regular oneof: an optional property, written when set. */
  explicitPresence: boolean;
  /** The oneof this field is a member of (regular or selected). */
  oneof?: string;
  /** For message fields: decoded as an all-default message when absent (see GenConfig.alwaysPresent). */
  alwaysPresent: boolean;
  /** The message type of a `message` field (its full name). */
  message?: string;
  /** The enum type of an `enum` field (its full name). */
  enumType?: string;
  comment: string;
}

/** A oneof whose member on the wire is chosen by an enum field (GenConfig.selectedOneofs). */
export interface SelectedOneof {
  oneof: string;
  /** TypeScript name of the selecting enum field. */
  by: string;
  /** The enum's TypeScript name. */
  enumName: string;
  /** Enum value name (as emitted) -> member field's TypeScript name, in enum order. */
  cases: [string, string][];
}

/** A message to generate. */
export interface MessageModel {
  fullName: string;
  /** TypeScript name: the message's own name. */
  name: string;
  /** Listed in GenConfig.messages: it gets exported encodeX/decodeX. */
  exported: boolean;
  /** Its size is computed before writing it nested (GenConfig.sized). */
  sized: boolean;
  /** Fields in field-number order. */
  fields: FieldModel[];
  /** Regular oneofs (each an exclusive group of optional properties), in declaration order. */
  oneofs: string[];
  selected?: SelectedOneof;
  comment: string;
}

/** Everything the emitter needs. */
export interface Schema {
  /** Messages in emission order: each after the messages it contains (cycles aside). */
  messages: MessageModel[];
  enums: EnumModel[];
}

/** `remaining_TTL` -> `remainingTTL`, `range_end` -> `rangeEnd`, `ID` stays. */
export function camelCase(name: string): string {
  return name.replace(/_([A-Za-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** `NotEqual` -> `NOT_EQUAL`, `Noput` -> `NOPUT`. */
export function upperSnake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

function matches(selector: string, msg: { name: string; fullName: string }, field: string): boolean {
  const dot = selector.lastIndexOf(".");
  const m = selector.slice(0, dot);
  const f = selector.slice(dot + 1);
  return f === field && (m === "*" || m === msg.name || m === msg.fullName);
}

/**
 * Resolves the files against `config`: finds the listed messages and everything they contain, resolves
 * type references by protobuf's scoping rules and applies the options.
 *
 * @throws {GenConfigError} for unknown names, unsupported types and selectors that match nothing.
 */
export function buildSchema(files: readonly ProtoFile[], config: GenConfig): Schema {
  const messages = new Map<string, MessageDecl>();
  const enums = new Map<string, EnumDecl>();
  const collect = (ms: MessageDecl[], es: EnumDecl[]): void => {
    for (const e of es) enums.set(e.fullName, e);
    for (const m of ms) {
      messages.set(m.fullName, m);
      collect(m.messages, m.enums);
    }
  };
  for (const f of files) collect(f.messages, f.enums);

  /** Protobuf scoping: look the name up from the innermost scope outwards. */
  const resolve = (scope: string, type: string, where: string): string => {
    if (type.startsWith(".")) {
      const full = type.slice(1);
      if (messages.has(full) || enums.has(full)) return full;
    } else {
      const parts = scope.split(".");
      for (let i = parts.length; i >= 0; i--) {
        const full = [...parts.slice(0, i), type].filter(Boolean).join(".");
        if (messages.has(full) || enums.has(full)) return full;
      }
    }
    throw new GenConfigError(`${where}: unknown type ${type}`);
  };

  const checkSelectors = (what: string, selectors: readonly string[]): void => {
    for (const sel of selectors) {
      if (!/^[*A-Za-z_][A-Za-z0-9_.]*\.[A-Za-z_][A-Za-z0-9_]*$/.test(sel)) {
        throw new GenConfigError(`${what}: malformed field selector ${JSON.stringify(sel)}`);
      }
      const found = [...messages.values()].some((m) => m.fields.some((f) => matches(sel, m, f.name)));
      if (!found) throw new GenConfigError(`${what}: ${sel} matches no field of the .proto files`);
    }
  };
  checkSelectors("bigint", config.bigint);
  checkSelectors("alwaysPresent", config.alwaysPresent);
  for (const s of config.sized) {
    if (!messages.has(s)) throw new GenConfigError(`sized: unknown message ${s}`);
  }

  const selectedByOneof = new Map<string, GenConfig["selectedOneofs"][number]>();
  for (const s of config.selectedOneofs) {
    const dot = s.oneof.lastIndexOf(".");
    const owner = [...messages.values()].find((m) =>
      matches(`${s.oneof.slice(0, dot)}.x`, m, "x") && m.oneofs.includes(s.oneof.slice(dot + 1))
    );
    if (!owner) throw new GenConfigError(`selectedOneofs: no oneof ${s.oneof}`);
    selectedByOneof.set(`${owner.fullName}.${s.oneof.slice(dot + 1)}`, s);
  }

  const order: MessageModel[] = [];
  const usedEnums = new Set<string>();
  const visited = new Set<string>();
  const listed = new Set(config.messages);
  const sized = new Set(config.sized);

  const fieldModel = (m: MessageDecl, f: FieldDecl): FieldModel => {
    const where = `${m.fullName}.${f.name}`;
    let kind: FieldModel["kind"];
    let message: string | undefined;
    let enumType: string | undefined;
    if (isScalar(f.type)) {
      if (!SUPPORTED.has(f.type)) throw new GenConfigError(`${where}: unsupported type ${f.type}`);
      kind = f.type as ScalarKind;
    } else {
      const full = resolve(m.fullName, f.type, where);
      if (messages.has(full)) {
        kind = "message";
        message = full;
      } else {
        kind = "enum";
        enumType = full;
        usedEnums.add(full);
      }
    }
    const bigint = config.bigint.some((s) => matches(s, m, f.name));
    if (bigint && !LONG.has(kind)) throw new GenConfigError(`bigint: ${where} is not a 64-bit field`);
    const alwaysPresent = config.alwaysPresent.some((s) => matches(s, m, f.name));
    if (alwaysPresent && (kind !== "message" || f.repeated || f.oneof)) {
      throw new GenConfigError(`alwaysPresent: ${where} is not a singular message field`);
    }
    const varint = kind !== "string" && kind !== "bytes" && kind !== "message";
    const model: FieldModel = {
      protoName: f.name,
      name: camelCase(f.name),
      number: f.number,
      kind,
      bigint,
      repeated: f.repeated,
      packed: f.repeated && varint && f.packed !== false,
      explicitPresence: f.optional ||
        (f.oneof !== undefined && !selectedByOneof.has(`${m.fullName}.${f.oneof}`)),
      alwaysPresent,
      comment: f.comment,
    };
    if (f.oneof !== undefined) model.oneof = f.oneof;
    if (message) model.message = message;
    if (enumType) model.enumType = enumType;
    return model;
  };

  const visit = (full: string, from: string): void => {
    if (visited.has(full)) return;
    const m = messages.get(full);
    if (!m) throw new GenConfigError(`${from}: unknown message ${full}`);
    visited.add(full);
    const fields = m.fields.map((f) => fieldModel(m, f)).sort((a, b) => a.number - b.number);
    for (const f of fields) if (f.message) visit(f.message, full);
    const model: MessageModel = {
      fullName: full,
      name: m.name,
      exported: listed.has(full),
      sized: sized.has(full),
      fields,
      oneofs: m.oneofs.filter((o) => !selectedByOneof.has(`${full}.${o}`)),
      comment: m.comment,
    };
    for (const o of m.oneofs) {
      const s = selectedByOneof.get(`${full}.${o}`);
      if (!s) continue;
      const by = fields.find((f) => f.protoName === s.by);
      if (!by || by.kind !== "enum" || by.repeated) {
        throw new GenConfigError(`selectedOneofs: ${full}.${s.by} is not a singular enum field`);
      }
      const e = enums.get(by.enumType!)!;
      const cases: [string, string][] = [];
      for (const [valueName, member] of Object.entries(s.cases)) {
        if (!e.values.some((v) => upperSnake(v.name) === valueName)) {
          throw new GenConfigError(`selectedOneofs: ${e.fullName} has no value ${valueName}`);
        }
        const f = fields.find((x) => x.protoName === member && x.oneof === o);
        if (!f) throw new GenConfigError(`selectedOneofs: ${member} is not a member of ${full}.${o}`);
        if (f.kind === "message") throw new GenConfigError(`selectedOneofs: ${member} must be a scalar`);
        cases.push([valueName, f.name]);
      }
      const members = fields.filter((f) => f.oneof === o).length;
      if (cases.length !== members) {
        throw new GenConfigError(`selectedOneofs: ${full}.${o} needs a case per member`);
      }
      model.selected = { oneof: o, by: by.name, enumName: e.name, cases };
    }
    order.push(model);
  };
  for (const name of config.messages) visit(name, "messages");

  const names = new Map<string, string>();
  const claim = (name: string, full: string): void => {
    const other = names.get(name);
    if (other) throw new GenConfigError(`${full} and ${other} would both be named ${name}`);
    names.set(name, full);
  };
  for (const m of order) claim(m.name, m.fullName);
  const enumModels: EnumModel[] = [];
  for (const e of enums.values()) {
    if (!usedEnums.has(e.fullName)) continue;
    claim(e.name, e.fullName);
    enumModels.push({
      fullName: e.fullName,
      name: e.name,
      values: e.values.map((v) => ({ name: upperSnake(v.name), protoName: v.name, number: v.number })),
      comment: e.comment,
    });
  }
  for (const m of order) {
    if (!m.sized) continue;
    for (const f of m.fields) {
      if (f.kind !== "message") continue;
      const child = order.find((x) => x.fullName === f.message)!;
      const grandchildren = child.fields.some((g) => g.kind === "message");
      if (!child.sized || f.repeated || grandchildren) {
        throw new GenConfigError(
          `sized: ${m.fullName}.${f.protoName} must be a singular sized message without message fields`,
        );
      }
    }
  }
  return { messages: order, enums: enumModels };
}
