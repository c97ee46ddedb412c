/**
 * Emits server/pb/rpc.ts from a resolved {@linkcode Schema}: an interface per message, a const object per
 * enum, and for each message a writer on server/pb/wire.ts's {@linkcode Writer} and a reader on its
 * `Reader`, in the shapes the hand-tuned codec used (one shared writer, tag switches, proto3 defaults
 * omitted on encode and filled in on decode, sizes precomputed for sized messages, back-patched lengths
 * for the others). The text is close to `deno fmt` output; main.ts formats it.
 *
 * @module
 */
import { type FieldModel, GenConfigError, type MessageModel, type Schema } from "./schema.ts";

/** Where the generated file says it came from. */
export interface EmitSource {
  /** The .proto files, as named in the header. */
  files: readonly string[];
  /** Where they come from, as the header says it. */
  from: string;
  /** The command that regenerates the file. */
  command: string;
}

const WIDTH = 110;

/** Local names the generated functions use; a field with one of these names would shadow it. */
const RESERVED = new Set(["b", "i", "m", "n", "r", "w", "tag", "mark", "outer", "len", "EMPTY", "W"]);

const JS_KEYWORDS = new Set(
  ("break case catch class const continue debugger default delete do else enum export extends false " +
    "finally " +
    "for function if import in instanceof new null return super switch this throw true try typeof var void " +
    "while with yield let static implements interface package private protected public await").split(" "),
);

const MODULE_DOC = `/**
 * The etcd v3 API messages the server speaks (etcdserverpb, mvccpb) and their protobuf codec, generated
 * from etcd's .proto files by server/pb/gen (the list of messages and the options are in
 * server/pb/gen/config.ts).
 *
 * Every gRPC request is decoded and every reply encoded here, so the codec is on the hot path: no
 * reflection, no schema loaded at run time, one shared writer, sizes computed up front for messages
 * nested in bulk (KeyValue, Event). server/pb/codec_bench.ts compares it with protobufjs on the
 * hot-path messages. 64-bit IDs are exact \`bigint\`s and revisions plain \`number\`s (protobufjs hands out
 * \`Long\` objects or lossy numbers); decode errors use Go's wording, and bounds checks refuse malformed
 * input.
 *
 * Conventions:
 * - Field names are the camelCase of the proto names (\`range_end\` -> \`rangeEnd\`, \`ID\` stays \`ID\`,
 *   \`remaining_TTL\` -> \`remainingTTL\`).
 * - \`decodeX\` returns every scalar and repeated field, with proto3 defaults for absent ones. Message
 *   fields that etcd always sets (\`header\`, \`Event.kv\`) are always present too; other message fields and
 *   oneof members are optional properties, present only when they were on the wire.
 * - \`encodeX\` omits fields holding their default (0, 0n, false, empty bytes/string/array), as protobuf
 *   does, and tolerates absent properties as defaults.
 * - Byte fields of decoded messages are views into the input buffer (no copy): copy them before
 *   keeping them beyond the life of that buffer, or before it is reused.
 * - Member, cluster and lease IDs are \`bigint\`; revisions, versions, counts, terms, indexes, TTLs, watch
 *   IDs and sizes are \`number\` (decoding throws {@linkcode ProtobufDecodeError} if one exceeds 2^53).
 * - Enums are plain numbers (a decoded value may be outside the known set); the const objects below
 *   name the known values.
 *
 * @module
 */`;

/** `PutRequest` -> `PUT_REQUEST`, `HashKVResponse` -> `HASH_KV_RESPONSE`, `peerURLs` -> `PEER_URLS`. */
export function constName(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z])([A-Z][a-z]{2})/g, "$1_$2")
    .toUpperCase();
}

function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/**
 * Joins the lines of a .proto comment into paragraphs (a line starting a list item or following a blank
 * line starts a new one) and wraps them to `width`.
 */
function wrap(text: string, width: number): string[] {
  const paragraphs: string[] = [];
  let joinNext = false;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (joinNext && line && !/^([-*]|\d+\.)\s/.test(line)) paragraphs[paragraphs.length - 1] += ` ${line}`;
    else paragraphs.push(line);
    joinNext = line !== "";
  }
  const out: string[] = [];
  for (const raw of paragraphs) {
    const line = raw.replaceAll("*/", "*\\/").trimEnd();
    if (line.length <= width) {
      out.push(line);
      continue;
    }
    let cur = "";
    for (const word of line.split(/\s+/)) {
      if (cur && cur.length + 1 + word.length > width) {
        out.push(cur);
        cur = word;
      } else cur = cur ? `${cur} ${word}` : word;
    }
    if (cur) out.push(cur);
  }
  return out;
}

function jsdoc(indent: string, text: string): string {
  const lines = wrap(text.trim(), WIDTH - indent.length - 3);
  if (lines.length === 1 && lines[0].length <= WIDTH - indent.length - 7) {
    return `${indent}/** ${lines[0]} */\n`;
  }
  return `${indent}/**\n${
    lines.map((l) => (l ? `${indent} * ${l}` : `${indent} *`)).join("\n")
  }\n${indent} */\n`;
}

/** Emits the source of rpc.ts for `schema` (not yet passed through `deno fmt`). */
export function emitRpc(schema: Schema, source: EmitSource): string {
  return new Emitter(schema, source).emit();
}

const WIRE_VARINT = "WireType.VARINT";
const WIRE_LEN = "WireType.LENGTH_DELIMITED";

class Emitter {
  readonly #schema: Schema;
  readonly #source: EmitSource;
  readonly #byName = new Map<string, MessageModel>();
  readonly #imports = new Set<string>(["Reader", "Writer", "fieldMask", "WireType"]);
  /** Messages written as a nested field by a parent that is not sized. */
  readonly #writtenAsField = new Set<string>();
  /** Sized messages written by a sized parent. */
  readonly #writtenBySized = new Set<string>();
  readonly #readNested = new Set<string>();
  readonly #needEmpty = new Set<string>();
  #usesEmptyBytes = false;

  constructor(schema: Schema, source: EmitSource) {
    this.#schema = schema;
    this.#source = source;
    for (const m of schema.messages) this.#byName.set(m.fullName, m);
    for (const m of schema.messages) {
      for (const f of m.fields) {
        if (RESERVED.has(f.name) || JS_KEYWORDS.has(f.name)) {
          throw new GenConfigError(
            `${m.fullName}.${f.protoName}: the name ${f.name} clashes with generated code`,
          );
        }
        if (f.kind === "bytes") this.#usesEmptyBytes = true;
        if (f.kind !== "message") continue;
        const child = this.#msg(f);
        this.#readNested.add(child.fullName);
        if (f.alwaysPresent) this.#markEmpty(child);
        if (m.sized) this.#writtenBySized.add(child.fullName);
        else this.#writtenAsField.add(child.fullName);
      }
    }
  }

  #markEmpty(m: MessageModel): void {
    if (this.#needEmpty.has(m.fullName)) return;
    this.#needEmpty.add(m.fullName);
    for (const f of m.fields) if (f.kind === "message" && f.alwaysPresent) this.#markEmpty(this.#msg(f));
  }

  #msg(f: FieldModel): MessageModel {
    return this.#byName.get(f.message!)!;
  }

  #enumName(f: FieldModel): string {
    return this.#schema.enums.find((e) => e.fullName === f.enumType)!.name;
  }

  emit(): string {
    const body: string[] = [];
    body.push(
      "/** The writer every encode function appends to; encoders never re-enter, so one is enough. */\n" +
        "const W = new Writer(4096);\n",
    );
    body.push(sectionRule("enums"));
    for (const e of this.#schema.enums) {
      const values = e.values.map((v) => `${v.name}: ${v.number}`).join(", ");
      body.push(
        jsdoc("", `${e.fullName}.`) +
          `export const ${e.name} = { ${values} } as const;\n` +
          `/** One of the values of {@linkcode ${e.name}}. */\n` +
          `export type ${e.name} = typeof ${e.name}[keyof typeof ${e.name}];\n`,
      );
    }
    for (const m of this.#schema.messages) body.push(this.#message(m));

    const wireImports = [...this.#imports].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
    const header = [
      `// Code generated by server/pb/gen from etcd's ${
        this.#source.files.join(", ")
      } (${this.#source.from}).`,
      "// DO NOT EDIT.",
      `// Regenerate with: ${this.#source.command}`,
      "",
      MODULE_DOC,
      `import { ${wireImports.join(", ")} } from "./wire.ts";`,
      "",
    ];
    if (this.#usesEmptyBytes || this.#schema.messages.some((m) => m.exported && m.fields.length === 0)) {
      header.push("const EMPTY: Uint8Array = new Uint8Array(0);", "");
    }
    return header.join("\n") + "\n" + body.join("\n");
  }

  // ---- per message ------------------------------------------------------------------------------

  #message(m: MessageModel): string {
    const out: string[] = [sectionRule(m.fullName)];
    out.push(this.#interface(m));
    if (m.fields.length) {
      const tags = m.fields.flatMap((f) => {
        const lines = [`const ${this.#tagName(m, f)} = (${f.number} << 3) | ${this.#wireType(f)};`];
        if (f.packed) {
          lines.push(`const ${this.#tagName(m, f)}_UNPACKED = (${f.number} << 3) | ${WIRE_VARINT};`);
        }
        return lines;
      });
      const small = m.fields.filter((f) => f.number < 32).map((f) => f.number);
      out.push(`${tags.join("\n")}\nconst ${constName(m.name)}_FIELDS = fieldMask(${small.join(", ")});\n`);
    }
    const empty = m.fields.length === 0;
    if (m.sized) out.push(...this.#sizedWriters(m));
    else if (!empty) out.push(this.#writer(m, []));
    out.push(this.#reader(m));
    if (this.#readNested.has(m.fullName)) {
      out.push(
        `function read${m.name}Nested(r: Reader): ${m.name} {\n` +
          `  const outer = r.enter();\n  const m = read${m.name}(r);\n  r.leave(outer);\n  return m;\n}\n`,
      );
    }
    if (this.#needEmpty.has(m.fullName)) out.push(this.#emptyFn(m));
    if (m.exported) out.push(this.#exports(m));
    return out.join("\n");
  }

  #interface(m: MessageModel): string {
    let doc = `${m.fullName}.`;
    if (m.selected) {
      const s = m.selected;
      const members = s.cases.map(([, name]) => `\`${name}\``).join(", ");
      doc += `\n\nOf the ${s.oneof} fields (${members}), the encoder writes the one \`${s.by}\` selects, ` +
        "even when it holds its default; the decoder fills whichever arrived and leaves the others at " +
        "their defaults.";
    } else if (m.oneofs.length && m.fields.every((f) => f.oneof !== undefined)) {
      doc += "\n\nExactly one member is expected (none decodes to `{}`).";
    }
    if (m.fields.length === 0) return `${jsdoc("", doc)}export type ${m.name} = Record<string, never>;\n`;
    const props = m.fields.map((f) => {
      const fdoc = f.kind === "enum" ? `Values: {@linkcode ${this.#enumName(f)}}.` : "";
      const optional = f.explicitPresence || (f.kind === "message" && !f.repeated && !f.alwaysPresent);
      return `${fdoc ? jsdoc("  ", fdoc) : ""}  ${f.name}${optional ? "?" : ""}: ${this.#tsType(f)};\n`;
    });
    return `${jsdoc("", doc)}export interface ${m.name} {\n${props.join("")}}\n`;
  }

  #tsType(f: FieldModel): string {
    let t: string;
    switch (f.kind) {
      case "message":
        t = this.#msg(f).name;
        break;
      case "bool":
        t = "boolean";
        break;
      case "string":
        t = "string";
        break;
      case "bytes":
        t = "Uint8Array";
        break;
      default:
        t = f.bigint ? "bigint" : "number";
    }
    return f.repeated ? `${t}[]` : t;
  }

  #tagName(m: MessageModel, f: FieldModel): string {
    return `TAG_${constName(m.name)}_${constName(f.protoName)}`;
  }

  #wireType(f: FieldModel): string {
    if (f.packed || f.kind === "message" || f.kind === "string" || f.kind === "bytes") return WIRE_LEN;
    if (f.kind === "fixed32") return "WireType.FIXED32";
    if (f.kind === "fixed64") return "WireType.FIXED64";
    return WIRE_VARINT;
  }

  #tagSize(f: FieldModel): number {
    return varintSize(f.number * 8);
  }

  #default(f: FieldModel): string {
    switch (f.kind) {
      case "bool":
        return "false";
      case "string":
        return '""';
      case "bytes":
        return "EMPTY";
      case "message":
        throw new GenConfigError("messages have no scalar default");
      default:
        return f.bigint ? "0n" : "0";
    }
  }

  #writeValue(f: FieldModel, v: string, knownTrue = false): string {
    switch (f.kind) {
      case "int32":
      case "enum":
        return `w.int32(${v});`;
      case "uint32":
        return `w.uint32(${v});`;
      case "sint32":
        return `w.sint32(${v});`;
      case "fixed32":
        return `w.fixed32(${v});`;
      case "int64":
      case "uint64":
      case "sint64":
      case "fixed64":
        return `w.${f.kind}${f.bigint ? "Big" : ""}(${v});`;
      case "bool":
        return `w.bool(${knownTrue ? "true" : v});`;
      case "string":
        return `w.string(${v});`;
      case "bytes":
        return `w.bytes(${v});`;
      default:
        throw new GenConfigError(`no scalar writer for ${f.kind}`);
    }
  }

  #readValue(f: FieldModel): string {
    switch (f.kind) {
      case "int32":
      case "enum":
        return "r.int32()";
      case "uint32":
      case "sint32":
      case "fixed32":
      case "bool":
      case "string":
      case "bytes":
        return `r.${f.kind}()`;
      case "int64":
      case "uint64":
      case "sint64":
      case "fixed64":
        return `r.${f.kind}${f.bigint ? "Big" : "Number"}()`;
      default:
        throw new GenConfigError(`no scalar reader for ${f.kind}`);
    }
  }

  /** The condition under which a singular field is written. */
  #present(f: FieldModel, v: string): string {
    if (f.explicitPresence) return `${v} !== undefined`;
    if (f.kind === "bytes") return `${v} && ${v}.length`;
    return v;
  }

  // ---- writers ----------------------------------------------------------------------------------

  /**
   * The statements writing field `f` of `m` (the message in local `m`). `sizes` are the parameters of
   * a sized writer holding its children's precomputed sizes.
   */
  #writeField(m: MessageModel, f: FieldModel, sizes: Map<string, string>): string[] {
    const tag = this.#tagName(m, f);
    const v = `m.${f.name}`;
    if (f.kind === "message") {
      const child = this.#msg(f);
      const one = (x: string): string[] => {
        if (child.fields.length === 0) return [`w.uint32(${tag});`, "w.uint32(0);"];
        if (m.sized) {
          return [`w.uint32(${tag});`, `w.uint32(${sizes.get(f.name)});`, `write${child.name}(w, ${x});`];
        }
        if (child.sized) return [`write${child.name}Field(w, ${tag}, ${x});`];
        return [
          `w.uint32(${tag});`,
          "const mark = w.beginLength();",
          `write${child.name}(w, ${x});`,
          "w.endLength(mark);",
        ];
      };
      if (f.repeated) {
        return [
          `const ${f.name} = ${v};`,
          `if (${f.name}) {`,
          `  for (let i = 0; i < ${f.name}.length; i++) {`,
          ...one(`${f.name}[i]`).map((s) => `    ${s}`),
          "  }",
          "}",
        ];
      }
      return [`if (${v}) {`, ...one(v).map((s) => `  ${s}`), "}"];
    }
    if (f.packed) {
      return [
        `const ${f.name} = ${v};`,
        `if (${f.name} && ${f.name}.length) {`,
        `  w.uint32(${tag});`,
        "  const mark = w.beginLength();",
        `  for (let i = 0; i < ${f.name}.length; i++) ${this.#writeValue(f, `${f.name}[i]`)}`,
        "  w.endLength(mark);",
        "}",
      ];
    }
    if (f.repeated) {
      return [
        `const ${f.name} = ${v};`,
        `if (${f.name}) {`,
        `  for (let i = 0; i < ${f.name}.length; i++) {`,
        `    w.uint32(${tag});`,
        `    ${this.#writeValue(f, `${f.name}[i]`)}`,
        "  }",
        "}",
      ];
    }
    return [
      `if (${this.#present(f, v)}) {`,
      `  w.uint32(${tag});`,
      `  ${this.#writeValue(f, v, !f.explicitPresence)}`,
      "}",
    ];
  }

  /** The switch writing a selected oneof: the member the enum field selects, default or not. */
  #writeSelected(m: MessageModel): string[] {
    const s = m.selected!;
    const lines = [`switch (m.${s.by} ?? 0) {`];
    for (const [value, name] of s.cases) {
      const f = m.fields.find((x) => x.name === name)!;
      if (f.kind === "bytes") this.#usesEmptyBytes = true;
      lines.push(
        `  case ${s.enumName}.${value}:`,
        `    w.uint32(${this.#tagName(m, f)});`,
        `    ${this.#writeValue(f, `m.${f.name} ?? ${this.#default(f)}`)}`,
        "    break;",
      );
    }
    lines.push("}");
    return lines;
  }

  #writer(m: MessageModel, extraParams: string[]): string {
    const sizes = new Map(extraParams.map((p) => [p, `${p}Size`]));
    const lines = this.#writeFields(m, sizes);
    const params = [`w: Writer`, `m: ${m.name}`, ...extraParams.map((p) => `${p}Size: number`)];
    return `function write${m.name}(${params.join(", ")}): void {\n${
      lines.map((l) => `  ${l}`).join("\n")
    }\n}\n`;
  }

  /**
   * The statements writing every field in field-number order; a oneof is written where its first member
   * is: a selected one as a switch, a regular one as an else-if chain (the first member set wins).
   */
  #writeFields(m: MessageModel, sizes: Map<string, string>): string[] {
    const lines: string[] = [];
    const done = new Set<string>();
    let selectedDone = false;
    for (const f of m.fields) {
      if (m.selected && f.oneof === m.selected.oneof) {
        if (!selectedDone) lines.push(...this.#writeSelected(m));
        selectedDone = true;
        continue;
      }
      if (f.oneof === undefined || !m.oneofs.includes(f.oneof)) {
        lines.push(...this.#writeField(m, f, sizes));
        continue;
      }
      if (done.has(f.oneof)) continue;
      done.add(f.oneof);
      const members = m.fields.filter((x) => x.oneof === f.oneof);
      members.forEach((x, i) => {
        const block = this.#writeField(m, x, sizes);
        // each block is `if (cond) {` ... `}`: chain them
        const first = block[0].replace(/^if /, i === 0 ? "if " : "} else if ");
        lines.push(first, ...block.slice(1, -1));
      });
      lines.push("}");
    }
    return lines;
  }

  #sizeTerm(f: FieldModel, v: string): string {
    const t = this.#tagSize(f);
    switch (f.kind) {
      case "int32":
      case "enum":
        return `${t} + (${v} < 0 ? 10 : varintSize32(${v}))`;
      case "uint32":
        this.#imports.add("varintSize32");
        return `${t} + varintSize32(${v})`;
      case "int64":
      case "uint64":
        if (f.bigint) {
          this.#imports.add("varintSizeBig");
          return `${t} + varintSizeBig(${v})`;
        }
        this.#imports.add("varintSizeInt64");
        return `${t} + varintSizeInt64(${v})`;
      case "fixed32":
        return `${t + 4}`;
      case "fixed64":
        return `${t + 8}`;
      case "bool":
        return `${t + 1}`;
      case "bytes":
        return `${t} + varintSize32(${v}.length) + ${v}.length`;
      default:
        throw new GenConfigError(`sized messages cannot hold ${f.kind} fields`);
    }
  }

  /** `n += ...` statements for the fields of sized message `m`. */
  #sizeLines(m: MessageModel, sizes: Map<string, string>): string[] {
    this.#imports.add("varintSize32");
    const lines: string[] = [];
    for (const f of m.fields) {
      const v = `m.${f.name}`;
      if (f.oneof !== undefined || f.packed) {
        throw new GenConfigError(`${m.fullName}: sized messages cannot hold oneofs or packed fields`);
      }
      if (f.kind === "message") {
        const s = sizes.get(f.name)!;
        lines.push(`if (${v}) n += ${this.#tagSize(f)} + varintSize32(${s}) + ${s};`);
      } else if (f.kind === "string") {
        this.#imports.add("utf8Length");
        const each = (x: string): string[] => [
          `{`,
          `  const len = utf8Length(${x});`,
          `  n += ${this.#tagSize(f)} + varintSize32(len) + len;`,
          `}`,
        ];
        if (f.repeated) {
          lines.push(
            `if (${v}) {`,
            `  for (const s of ${v}) {`,
            ...each("s").map((l) => `    ${l}`),
            "  }",
            "}",
          );
        } else lines.push(`if (${v}) {`, ...each(v).slice(1, -1).map((l) => `  ${l}`), "}");
      } else if (f.repeated) {
        lines.push(`if (${v}) for (const x of ${v}) n += ${this.#sizeTerm(f, "x")};`);
      } else {
        lines.push(`if (${this.#present(f, v)}) n += ${this.#sizeTerm(f, v)};`);
      }
    }
    return lines;
  }

  #sizedWriters(m: MessageModel): string[] {
    const children = m.fields.filter((f) => f.kind === "message");
    const out: string[] = [];
    const indent = (ls: string[]): string => ls.map((l) => `  ${l}`).join("\n");
    if (children.length === 0) {
      const needSize = this.#writtenAsField.has(m.fullName) || this.#writtenBySized.has(m.fullName);
      if (needSize) {
        out.push(
          `function size${m.name}(m: ${m.name}): number {\n  let n = 0;\n${
            indent(this.#sizeLines(m, new Map()))
          }\n` +
            "  return n;\n}\n",
        );
      }
      out.push(this.#writer(m, []));
      if (this.#writtenAsField.has(m.fullName)) {
        out.push(
          `function write${m.name}Field(w: Writer, tag: number, m: ${m.name}): void {\n` +
            `  w.uint32(tag);\n  w.uint32(size${m.name}(m));\n  write${m.name}(w, m);\n}\n`,
        );
      }
      return out;
    }
    const names = children.map((f) => f.name);
    const sizes = new Map(names.map((n) => [n, `${n}Size`]));
    out.push(this.#writer(m, names));
    if (this.#writtenAsField.has(m.fullName)) {
      const lines = [
        ...children.map((f) =>
          `const ${f.name}Size = m.${f.name} ? size${this.#msg(f).name}(m.${f.name}) : 0;`
        ),
        "let n = 0;",
        ...this.#sizeLines(m, sizes),
        "w.uint32(tag);",
        "w.uint32(n);",
        `write${m.name}(w, m, ${names.map((n) => `${n}Size`).join(", ")});`,
      ];
      out.push(
        `function write${m.name}Field(w: Writer, tag: number, m: ${m.name}): void {\n${indent(lines)}\n}\n`,
      );
    }
    return out;
  }

  // ---- readers ----------------------------------------------------------------------------------

  #reader(m: MessageModel): string {
    const U = constName(m.name);
    const onlyOneof = m.oneofs.length === 1 && m.fields.every((f) => f.oneof === m.oneofs[0]);
    const decl: string[] = [];
    if (onlyOneof) decl.push(`let m: ${m.name} = {};`);
    else {
      for (const f of m.fields) {
        if (f.repeated) decl.push(`const ${f.name}: ${this.#tsType(f)} = [];`);
        else if (f.kind === "message" || f.explicitPresence) {
          decl.push(`let ${f.name}: ${this.#tsType(f)} | undefined;`);
        } else decl.push(`let ${f.name} = ${this.#default(f)};`);
      }
    }
    const cases: string[] = [];
    for (const f of m.fields) {
      const tag = this.#tagName(m, f);
      let read: string;
      if (f.kind === "message") read = `read${this.#msg(f).name}Nested(r)`;
      else read = this.#readValue(f);
      if (f.packed) {
        cases.push(
          `case ${tag}: {`,
          "  const outer = r.enter();",
          `  while (r.pos < r.end) ${f.name}.push(${read});`,
          "  r.leave(outer);",
          "  break;",
          "}",
          `case ${tag}_UNPACKED:`,
          `  ${f.name}.push(${read});`,
          "  break;",
        );
        continue;
      }
      cases.push(`case ${tag}:`);
      if (onlyOneof) cases.push(`  m = { ${f.name}: ${read} };`);
      else if (f.repeated) cases.push(`  ${f.name}.push(${read});`);
      else {
        cases.push(`  ${f.name} = ${read};`);
        if (f.explicitPresence && f.oneof !== undefined) {
          for (const o of m.fields) {
            if (o !== f && o.oneof === f.oneof) cases.push(`  ${o.name} = undefined;`);
          }
        }
      }
      cases.push("  break;");
    }
    cases.push("default:");
    for (const f of m.fields) {
      if (f.number >= 32) {
        this.#imports.add("wrongWireType");
        cases.push(`  if (tag >>> 3 === ${this.#tagName(m, f)} >>> 3) throw wrongWireType(tag);`);
      }
    }
    cases.push(`  r.skipField(tag, ${m.fields.length ? `${U}_FIELDS` : "0"});`);
    const loop = m.fields.length === 0 ? ["while (r.pos < r.end) r.skipField(r.tag(), 0);"] : [
      "while (r.pos < r.end) {",
      "  const tag = r.tag();",
      "  switch (tag) {",
      ...cases.map((c) => `    ${c}`),
      "  }",
      "}",
    ];
    let ret: string[];
    if (m.fields.length === 0) ret = ["return {};"];
    else if (onlyOneof) ret = ["return m;"];
    else {
      const required = m.fields.filter((f) =>
        f.repeated || (!f.explicitPresence && (f.kind !== "message" || f.alwaysPresent))
      );
      const optional = m.fields.filter((f) => !required.includes(f));
      const props = required.map((f) =>
        f.kind === "message" && !f.repeated ? `${f.name}: ${f.name} ?? empty${this.#msg(f).name}()` : f.name
      );
      if (optional.length === 0) ret = [`return { ${props.join(", ")} };`];
      else {
        ret = [
          `const m: ${m.name} = { ${props.join(", ")} };`,
          ...optional.map((f) => `if (${f.name} !== undefined) m.${f.name} = ${f.name};`),
          "return m;",
        ];
      }
    }
    const lines = [...decl, ...loop, ...ret];
    return `function read${m.name}(r: Reader): ${m.name} {\n${lines.map((l) => `  ${l}`).join("\n")}\n}\n`;
  }

  #emptyFn(m: MessageModel): string {
    const props = m.fields
      .filter((f) => f.repeated || (!f.explicitPresence && (f.kind !== "message" || f.alwaysPresent)))
      .map((f) => {
        if (f.repeated) return `${f.name}: []`;
        if (f.kind === "message") return `${f.name}: empty${this.#msg(f).name}()`;
        return `${f.name}: ${this.#default(f)}`;
      });
    return `function empty${m.name}(): ${m.name} {\n  return { ${props.join(", ")} };\n}\n`;
  }

  #exports(m: MessageModel): string {
    let encode: string;
    if (m.fields.length === 0) encode = "  return EMPTY;";
    else if (m.sized && m.fields.some((f) => f.kind === "message")) {
      const sizes = m.fields.filter((f) => f.kind === "message").map((f) =>
        `m.${f.name} ? size${this.#msg(f).name}(m.${f.name}) : 0`
      );
      encode = `  W.reset();\n  write${m.name}(W, m, ${sizes.join(", ")});\n  return W.finish();`;
    } else encode = `  W.reset();\n  write${m.name}(W, m);\n  return W.finish();`;
    const param = m.fields.length === 0 ? "_m" : "m";
    return `/** Encodes an ${m.fullName}. */\n` +
      `export function encode${m.name}(${param}: ${m.name}): Uint8Array {\n${encode}\n}\n\n` +
      `/** Decodes an ${m.fullName}. */\n` +
      `export function decode${m.name}(b: Uint8Array): ${m.name} {\n` +
      `  return read${m.name}(new Reader(b));\n}\n`;
  }
}

function sectionRule(title: string): string {
  const head = `// ---- ${title} `;
  return `${head}${"-".repeat(Math.max(4, 101 - head.length))}\n`;
}
