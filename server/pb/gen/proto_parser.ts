/**
 * A parser for the subset of proto3 that etcd's API files use: `syntax`, `package`, `import`, `option`,
 * messages (nested messages and enums, `repeated` and `optional` fields, `oneof`, `reserved`), enums and
 * services (whose rpcs are read and whose options are skipped). Anything else (`map<>`, `extend`,
 * groups, proto2) is refused with a {@linkcode ProtoParseError} naming the file, line and column, so the
 * generator never silently misreads a schema.
 *
 * Comments directly above a declaration are kept as its documentation.
 *
 * @module
 */

/** A .proto file that does not parse; the message starts with `file:line:column`. */
export class ProtoParseError extends Error {
  /** Stable error code of this class. */
  readonly code = "PROTO_PARSE";

  /** @param message what is wrong and where. */
  constructor(message: string) {
    super(message);
    this.name = "ProtoParseError";
  }
}

/** A field of a message, as written in the file. */
export interface FieldDecl {
  name: string;
  number: number;
  /** The type as written: a scalar name (`int64`) or a message/enum reference (`mvccpb.KeyValue`). */
  type: string;
  repeated: boolean;
  /** `optional` (proto3 explicit presence). */
  optional: boolean;
  /** The oneof this field belongs to, if any. */
  oneof?: string;
  /** `[packed = false]` or `[packed = true]` when given. */
  packed?: boolean;
  comment: string;
  line: number;
}

/** A value of an enum. */
export interface EnumValueDecl {
  name: string;
  number: number;
  comment: string;
}

/** An enum, top-level or nested in a message. */
export interface EnumDecl {
  name: string;
  /** Fully qualified name without a leading dot: `etcdserverpb.RangeRequest.SortOrder`. */
  fullName: string;
  values: EnumValueDecl[];
  comment: string;
}

/** A message with its nested declarations. */
export interface MessageDecl {
  name: string;
  /** Fully qualified name without a leading dot: `mvccpb.KeyValue`. */
  fullName: string;
  fields: FieldDecl[];
  /** Names of the oneofs, in declaration order. */
  oneofs: string[];
  messages: MessageDecl[];
  enums: EnumDecl[];
  comment: string;
}

/** One rpc of a service. */
export interface RpcDecl {
  name: string;
  input: string;
  output: string;
  clientStreaming: boolean;
  serverStreaming: boolean;
}

/** A service and its rpcs. */
export interface ServiceDecl {
  name: string;
  rpcs: RpcDecl[];
}

/** A parsed .proto file. */
export interface ProtoFile {
  /** The name given to the parser, used in error messages. */
  path: string;
  package: string;
  imports: string[];
  messages: MessageDecl[];
  enums: EnumDecl[];
  services: ServiceDecl[];
}

type TokenKind = "ident" | "number" | "string" | "punct" | "eof";

interface Token {
  kind: TokenKind;
  text: string;
  line: number;
  col: number;
  /** The comment lines directly above this token (none if a blank line or code came between). */
  comment: string;
}

const PUNCT = new Set(["{", "}", "(", ")", "[", "]", ";", "=", ",", "<", ">", ":", "-", "+"]);

function tokenize(path: string, src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  let pending: string[] = [];
  let pendingEndLine = -1;
  const fail = (msg: string): never => {
    throw new ProtoParseError(`${path}:${line}:${i - lineStart + 1}: ${msg}`);
  };
  while (i < src.length) {
    const c = src[i];
    if (c === "\n") {
      line++;
      lineStart = ++i;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r") {
      i++;
      continue;
    }
    if (c === "/" && src[i + 1] === "/") {
      const end = src.indexOf("\n", i);
      const text = src.slice(i + 2, end < 0 ? src.length : end).trim();
      const onOwnLine = src.slice(lineStart, i).trim() === "";
      if (onOwnLine) {
        if (pendingEndLine !== line - 1) pending = [];
        pending.push(text);
        pendingEndLine = line;
      }
      i = end < 0 ? src.length : end;
      continue;
    }
    if (c === "/" && src[i + 1] === "*") {
      const end = src.indexOf("*/", i + 2);
      if (end < 0) fail("unterminated /* comment");
      for (let j = i; j < end; j++) {
        if (src[j] === "\n") {
          line++;
          lineStart = j + 1;
        }
      }
      i = end + 2;
      continue;
    }
    const col = i - lineStart + 1;
    const comment = pendingEndLine === line - 1 ? pending.join("\n") : "";
    pending = [];
    pendingEndLine = -1;
    if (/[A-Za-z_.]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[A-Za-z0-9_.]/.test(src[j])) j++;
      tokens.push({ kind: "ident", text: src.slice(i, j), line, col, comment });
      i = j;
    } else if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[0-9A-Za-z_.]/.test(src[j])) j++;
      tokens.push({ kind: "number", text: src.slice(i, j), line, col, comment });
      i = j;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) {
        if (src[j] === "\n") fail("unterminated string");
        j += src[j] === "\\" ? 2 : 1;
      }
      if (j >= src.length) fail("unterminated string");
      tokens.push({ kind: "string", text: src.slice(i + 1, j), line, col, comment });
      i = j + 1;
    } else if (PUNCT.has(c)) {
      tokens.push({ kind: "punct", text: c, line, col, comment });
      i++;
    } else {
      fail(`unexpected character ${JSON.stringify(c)}`);
    }
  }
  tokens.push({ kind: "eof", text: "end of file", line, col: i - lineStart + 1, comment: "" });
  return tokens;
}

const SCALARS = new Set([
  "double",
  "float",
  "int32",
  "int64",
  "uint32",
  "uint64",
  "sint32",
  "sint64",
  "fixed32",
  "fixed64",
  "sfixed32",
  "sfixed64",
  "bool",
  "string",
  "bytes",
]);

/** Whether `type` names a protobuf scalar type rather than a message or enum. */
export function isScalar(type: string): boolean {
  return SCALARS.has(type);
}

const MAX_FIELD_NUMBER = 536870911;

class Parser {
  #pos = 0;
  readonly #tokens: Token[];
  readonly #path: string;

  constructor(path: string, src: string) {
    this.#path = path;
    this.#tokens = tokenize(path, src);
  }

  #peek(): Token {
    return this.#tokens[this.#pos];
  }

  #next(): Token {
    const t = this.#tokens[this.#pos];
    if (t.kind !== "eof") this.#pos++;
    return t;
  }

  #fail(t: Token, msg: string): never {
    throw new ProtoParseError(`${this.#path}:${t.line}:${t.col}: ${msg}`);
  }

  #describe(t: Token): string {
    return t.kind === "eof" ? "end of file" : JSON.stringify(t.text);
  }

  #expect(text: string, what = `"${text}"`): Token {
    const t = this.#next();
    if (t.text !== text || t.kind === "string" || t.kind === "eof") {
      this.#fail(t, `expected ${what}, found ${this.#describe(t)}`);
    }
    return t;
  }

  #ident(what: string): Token {
    const t = this.#next();
    if (t.kind !== "ident") this.#fail(t, `expected ${what}, found ${this.#describe(t)}`);
    return t;
  }

  #accept(text: string): boolean {
    const t = this.#peek();
    if (t.kind !== "string" && t.kind !== "eof" && t.text === text) {
      this.#pos++;
      return true;
    }
    return false;
  }

  #integer(what: string): number {
    const negative = this.#accept("-");
    const t = this.#next();
    if (t.kind !== "number" || !/^(0|[1-9][0-9]*|0[xX][0-9a-fA-F]+|0[0-7]+)$/.test(t.text)) {
      this.#fail(t, `expected ${what}, found ${this.#describe(t)}`);
    }
    const v = /^0[0-7]+$/.test(t.text) ? parseInt(t.text, 8) : Number(t.text);
    return negative ? -v : v;
  }

  /** Skips a constant or an aggregate `{ ... }` option value. */
  #skipValue(): void {
    const t = this.#next();
    if (t.text === "{" && t.kind === "punct") {
      this.#skipBlock(t);
      return;
    }
    if (t.text === "-" || t.text === "+") this.#next();
    else if (t.kind === "punct" || t.kind === "eof") {
      this.#fail(t, `expected a value, found ${this.#describe(t)}`);
    }
  }

  /** Skips to the `}` matching an already consumed `{`. */
  #skipBlock(open: Token): void {
    let depth = 1;
    while (depth > 0) {
      const t = this.#next();
      if (t.kind === "eof") this.#fail(open, "unclosed {");
      if (t.kind === "punct" && t.text === "{") depth++;
      if (t.kind === "punct" && t.text === "}") depth--;
    }
  }

  /** `option name = value;` after the keyword. */
  #skipOption(): void {
    if (this.#accept("(")) {
      this.#ident("an option name");
      this.#expect(")");
      if (this.#peek().kind === "ident" && this.#peek().text.startsWith(".")) this.#next();
    } else {
      this.#ident("an option name");
    }
    this.#expect("=");
    this.#skipValue();
    this.#expect(";");
  }

  /** Field options `[a = b, (c) = d]`; returns the `packed` option if given. */
  #fieldOptions(): boolean | undefined {
    let packed: boolean | undefined;
    if (!this.#accept("[")) return packed;
    for (;;) {
      let name: string;
      if (this.#accept("(")) {
        name = `(${this.#ident("an option name").text})`;
        this.#expect(")");
      } else {
        name = this.#ident("an option name").text;
      }
      this.#expect("=");
      const value = this.#peek();
      this.#skipValue();
      if (name === "packed") {
        if (value.text !== "true" && value.text !== "false") {
          this.#fail(value, "packed must be true or false");
        }
        packed = value.text === "true";
      }
      if (this.#accept("]")) return packed;
      this.#expect(",", '"," or "]"');
    }
  }

  parseFile(): ProtoFile {
    const file: ProtoFile = {
      path: this.#path,
      package: "",
      imports: [],
      messages: [],
      enums: [],
      services: [],
    };
    let sawSyntax = false;
    for (;;) {
      const t = this.#peek();
      if (t.kind === "eof") break;
      if (this.#accept(";")) continue;
      const kw = this.#ident("a declaration");
      switch (kw.text) {
        case "syntax": {
          if (sawSyntax || file.messages.length || file.enums.length) {
            this.#fail(kw, "syntax must come first");
          }
          this.#expect("=");
          const v = this.#next();
          if (v.kind !== "string") this.#fail(v, `expected a string, found ${this.#describe(v)}`);
          if (v.text !== "proto3") this.#fail(v, `only proto3 is supported, not ${JSON.stringify(v.text)}`);
          this.#expect(";");
          sawSyntax = true;
          break;
        }
        case "package":
          if (file.package) this.#fail(kw, "a second package declaration");
          file.package = this.#ident("a package name").text;
          this.#expect(";");
          break;
        case "import": {
          if (this.#peek().text === "public" || this.#peek().text === "weak") this.#next();
          const v = this.#next();
          if (v.kind !== "string") this.#fail(v, `expected an import path, found ${this.#describe(v)}`);
          file.imports.push(v.text);
          this.#expect(";");
          break;
        }
        case "option":
          this.#skipOption();
          break;
        case "message":
          file.messages.push(this.#message(kw, file.package));
          break;
        case "enum":
          file.enums.push(this.#enum(kw, file.package));
          break;
        case "service":
          file.services.push(this.#service());
          break;
        default:
          this.#fail(kw, `unsupported declaration ${JSON.stringify(kw.text)}`);
      }
    }
    if (!sawSyntax) this.#fail(this.#tokens[0], 'missing syntax = "proto3";');
    return file;
  }

  #qualify(scope: string, name: string): string {
    return scope ? `${scope}.${name}` : name;
  }

  #message(kw: Token, scope: string): MessageDecl {
    const name = this.#ident("a message name").text;
    const fullName = this.#qualify(scope, name);
    const m: MessageDecl = {
      name,
      fullName,
      fields: [],
      oneofs: [],
      messages: [],
      enums: [],
      comment: kw.comment,
    };
    this.#expect("{");
    while (!this.#accept("}")) {
      const t = this.#peek();
      if (t.kind === "eof") this.#fail(t, `message ${name} is not closed`);
      if (this.#accept(";")) continue;
      if (t.kind !== "ident") this.#fail(t, `expected a field or declaration, found ${this.#describe(t)}`);
      switch (t.text) {
        case "message":
          this.#next();
          m.messages.push(this.#message(t, fullName));
          break;
        case "enum":
          this.#next();
          m.enums.push(this.#enum(t, fullName));
          break;
        case "option":
          this.#next();
          this.#skipOption();
          break;
        case "reserved":
          this.#next();
          while (!this.#accept(";")) {
            if (this.#peek().kind === "eof") this.#fail(t, "reserved is not closed with ;");
            this.#next();
          }
          break;
        case "oneof": {
          this.#next();
          const oneof = this.#ident("a oneof name").text;
          m.oneofs.push(oneof);
          this.#expect("{");
          while (!this.#accept("}")) {
            if (this.#accept(";")) continue;
            if (this.#accept("option")) {
              this.#skipOption();
              continue;
            }
            const f = this.#field(this.#peek());
            if (f.repeated || f.optional) {
              this.#fail(t, `oneof ${oneof}: field ${f.name} cannot have a label`);
            }
            f.oneof = oneof;
            m.fields.push(f);
          }
          break;
        }
        case "map":
        case "extend":
        case "extensions":
        case "group":
        case "required":
          this.#fail(t, `unsupported in this subset: ${t.text}`);
          break;
        default:
          m.fields.push(this.#field(t));
      }
    }
    const seen = new Map<number, string>();
    const names = new Set<string>();
    for (const f of m.fields) {
      const other = seen.get(f.number);
      if (other) {
        throw new ProtoParseError(
          `${this.#path}:${f.line}: ${name}: fields ${other} and ${f.name} share number ${f.number}`,
        );
      }
      if (names.has(f.name)) {
        throw new ProtoParseError(`${this.#path}:${f.line}: ${name}: duplicate field ${f.name}`);
      }
      seen.set(f.number, f.name);
      names.add(f.name);
    }
    return m;
  }

  #field(first: Token): FieldDecl {
    let repeated = false;
    let optional = false;
    if (this.#accept("repeated")) repeated = true;
    else if (this.#accept("optional")) optional = true;
    const typeTok = this.#ident("a field type");
    if (typeTok.text === "map" || typeTok.text === "group") {
      this.#fail(typeTok, `unsupported in this subset: ${typeTok.text}`);
    }
    const nameTok = this.#ident("a field name");
    if (nameTok.text.includes(".")) this.#fail(nameTok, `invalid field name ${JSON.stringify(nameTok.text)}`);
    this.#expect("=", '"=" after the field name');
    const numTok = this.#peek();
    const number = this.#integer("a field number");
    if (number < 1 || number > MAX_FIELD_NUMBER || (number >= 19000 && number <= 19999)) {
      this.#fail(numTok, `invalid field number ${number}`);
    }
    const packed = this.#fieldOptions();
    this.#expect(";", '";" after the field');
    const f: FieldDecl = {
      name: nameTok.text,
      number,
      type: typeTok.text,
      repeated,
      optional,
      comment: first.comment,
      line: first.line,
    };
    if (packed !== undefined) f.packed = packed;
    return f;
  }

  #enum(kw: Token, scope: string): EnumDecl {
    const name = this.#ident("an enum name").text;
    const e: EnumDecl = { name, fullName: this.#qualify(scope, name), values: [], comment: kw.comment };
    this.#expect("{");
    while (!this.#accept("}")) {
      const t = this.#peek();
      if (t.kind === "eof") this.#fail(t, `enum ${name} is not closed`);
      if (this.#accept(";")) continue;
      if (this.#accept("option")) {
        this.#skipOption();
        continue;
      }
      if (this.#accept("reserved")) {
        while (!this.#accept(";")) this.#next();
        continue;
      }
      const v = this.#ident("an enum value name");
      this.#expect("=", '"=" after the enum value name');
      const number = this.#integer("an enum value");
      this.#fieldOptions();
      this.#expect(";", '";" after the enum value');
      e.values.push({ name: v.text, number, comment: v.comment });
    }
    if (e.values.length === 0) this.#fail(kw, `enum ${name} has no values`);
    if (e.values[0].number !== 0) this.#fail(kw, `enum ${name}: the first value must be 0 in proto3`);
    return e;
  }

  #service(): ServiceDecl {
    const name = this.#ident("a service name").text;
    const s: ServiceDecl = { name, rpcs: [] };
    this.#expect("{");
    while (!this.#accept("}")) {
      const t = this.#peek();
      if (t.kind === "eof") this.#fail(t, `service ${name} is not closed`);
      if (this.#accept(";")) continue;
      if (this.#accept("option")) {
        this.#skipOption();
        continue;
      }
      this.#expect("rpc", '"rpc"');
      const rpcName = this.#ident("an rpc name").text;
      this.#expect("(");
      const clientStreaming = this.#accept("stream");
      const input = this.#ident("a request type").text;
      this.#expect(")");
      this.#expect("returns", '"returns"');
      this.#expect("(");
      const serverStreaming = this.#accept("stream");
      const output = this.#ident("a response type").text;
      this.#expect(")");
      const open = this.#peek();
      if (this.#accept("{")) this.#skipBlock(open);
      else this.#expect(";", '";" or "{" after the rpc');
      s.rpcs.push({ name: rpcName, input, output, clientStreaming, serverStreaming });
    }
    return s;
  }
}

/**
 * Parses one .proto file. `path` only names the file in error messages.
 *
 * @throws {ProtoParseError} on anything outside the supported subset or malformed.
 */
export function parseProto(path: string, source: string): ProtoFile {
  return new Parser(path, source).parseFile();
}
