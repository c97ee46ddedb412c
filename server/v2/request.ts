/**
 * From an HTTP request on `/v2/keys` to a typed v2 request, as etcd 3.4's keys handler decides it
 * (`parseKeyRequest`, then the v2 server's choice of store call), and from a write request to the store
 * call that applies it.
 *
 * Pure: no clock (the caller passes `nowMs`, from which a `ttl` becomes an absolute `expireAt`), no
 * I/O. A {@link V2KeysRequest} is plain JSON, so it can be proposed through Raft as is.
 *
 * Failures:
 * - {@link V2Error} where etcd answers with a v2 JSON error (bad form 210, ttl 202, index 203, bool
 *   209, empty prevValue 201, refresh 211/212), index 0 as etcd writes them;
 * - {@link V2RequestRejected} where Go's HTTP server or etcd's mux answers before the keys handler: a
 *   malformed path escape (400, body `400 Bad Request`), a path that is not clean (301 to the cleaned
 *   path, as Go's ServeMux), a path outside `/v2/keys` (404), a method other than HEAD, GET, PUT, POST
 *   or DELETE (405, `Allow: HEAD,GET,PUT,POST,DELETE`, body `Method Not Allowed`).
 *
 * Form values follow Go's `Request.ParseForm`: for POST and PUT with an
 * `application/x-www-form-urlencoded` body, body values come before query values, and the first value
 * of a name wins. Not reproduced: multipart bodies (etcd reads some fields from them late, through
 * FormValue), and uint64 values above 2^53 keep only a double's precision.
 *
 * @module
 */
import { requestError, V2ErrorCode } from "../../storage/v2store/errors.ts";
export { V2Error } from "../../storage/v2store/errors.ts";
import { cleanKey, goPathClean } from "../../storage/v2store/path.ts";
import type { V2Event, V2Store } from "../../storage/v2store/store.ts";

/** Fields common to every request. */
interface V2RequestBase {
  /** The user key, cleaned (`/` is the root). */
  key: string;
  /** etcd's `noValueOnSuccess`: answer set/create/update/CAS with only the action. Not for the store. */
  noValueOnSuccess: boolean;
}

/** GET or HEAD. `quorum` (GET only) means: go through Raft and apply like a write. */
export interface V2GetRequest extends V2RequestBase {
  kind: "get";
  recursive: boolean;
  sorted: boolean;
  /** A GET with quorum=true: etcd proposes it and answers from the apply (and then ignores `wait`). */
  quorum: boolean;
  /** HEAD: answer headers only. */
  head: boolean;
  /** A watch (GET with wait=true and no quorum). `sinceIndex` is waitIndex, absent when 0 or not given. */
  wait?: { sinceIndex?: number; stream: boolean; recursive: boolean };
}

/** PUT without prevExist/prevValue/prevIndex. */
export interface V2SetRequest extends V2RequestBase {
  kind: "set";
  dir: boolean;
  value: string;
  expireAt?: number;
  refresh: boolean;
}

/** PUT with prevExist=false, or POST (`unique`: an in-order key under `key`). */
export interface V2CreateRequest extends V2RequestBase {
  kind: "create";
  dir: boolean;
  value: string;
  expireAt?: number;
  unique: boolean;
}

/** PUT with prevExist=true and neither prevValue nor prevIndex. */
export interface V2UpdateRequest extends V2RequestBase {
  kind: "update";
  value: string;
  expireAt?: number;
  refresh: boolean;
}

/** PUT with prevValue and/or prevIndex (and not prevExist=false). */
export interface V2CasRequest extends V2RequestBase {
  kind: "cas";
  prevValue?: string;
  prevIndex?: number;
  value: string;
  expireAt?: number;
  refresh: boolean;
}

/** DELETE without prevValue/prevIndex. */
export interface V2DeleteRequest extends V2RequestBase {
  kind: "delete";
  dir: boolean;
  recursive: boolean;
}

/** DELETE with prevValue and/or prevIndex. */
export interface V2CadRequest extends V2RequestBase {
  kind: "cad";
  prevValue?: string;
  prevIndex?: number;
}

/** A parsed `/v2/keys` request; plain JSON. */
export type V2KeysRequest =
  | V2GetRequest
  | V2SetRequest
  | V2CreateRequest
  | V2UpdateRequest
  | V2CasRequest
  | V2DeleteRequest
  | V2CadRequest;

/** The requests that go through Raft: every write, and GET with quorum=true. */
export type V2ProposedRequest = Exclude<V2KeysRequest, V2GetRequest> | (V2GetRequest & { quorum: true });

/** A request Go's HTTP server or etcd's router answers before the keys handler (no v2 JSON body). */
export class V2RequestRejected extends Error {
  readonly code = "V2_REJECTED";
  constructor(
    /** 301, 400, 404 or 405. */
    readonly status: number,
    /** The plain body Go writes (for a 301, see `location`). */
    readonly body: string,
    /** For 301: the Location (cleaned path and the original query). */
    readonly location?: string,
    /** For 405: the Allow header. */
    readonly allow?: string,
  ) {
    super(`${status} ${body}`);
    this.name = "V2RequestRejected";
  }
}

const KEYS_PREFIX = "/v2/keys";
const ALLOWED = "HEAD,GET,PUT,POST,DELETE";
const MAX_FORM = 10 << 20;

/** Whether a parsed request must be proposed through Raft (writes, and quorum GETs). */
export function isProposed(req: V2KeysRequest): req is V2ProposedRequest {
  return req.kind !== "get" || req.quorum;
}

/**
 * Parses a `/v2/keys` request as etcd 3.4 does. `pathWithQuery` is the request target as sent
 * (`/v2/keys/a?recursive=true`), `headers` is read case-insensitively (Content-Type), `body` is the raw
 * body, `nowMs` turns a `ttl` into `expireAt = nowMs + ttl * 1000` (ttl=0 gives now: the key expires at
 * the next sweep, as in etcd; an empty ttl means none).
 */
export function parseKeysRequest(
  method: string,
  pathWithQuery: string,
  headers: Map<string, string>,
  body: Uint8Array,
  nowMs: number,
): V2KeysRequest {
  const q = pathWithQuery.indexOf("?");
  const rawPath = q < 0 ? pathWithQuery : pathWithQuery.slice(0, q);
  const rawQuery = q < 0 ? "" : pathWithQuery.slice(q + 1);

  // Go's server: the path must unescape
  const pathBytes = unescape(new TextEncoder().encode(rawPath), false);
  if (pathBytes instanceof Error) throw new V2RequestRejected(400, "400 Bad Request");
  const urlPath = decodeUtf8(pathBytes);
  // Go's ServeMux: redirect to the clean path
  const clean = muxCleanPath(urlPath);
  if (clean !== urlPath) {
    const location = escapePath(clean) + (q < 0 ? "" : "?" + rawQuery);
    throw new V2RequestRejected(301, "Moved Permanently", location);
  }
  if (urlPath !== KEYS_PREFIX && !urlPath.startsWith(KEYS_PREFIX + "/")) {
    throw new V2RequestRejected(404, "404 page not found\n");
  }
  if (!["HEAD", "GET", "PUT", "POST", "DELETE"].includes(method)) {
    throw new V2RequestRejected(405, "Method Not Allowed\n", undefined, ALLOWED);
  }

  const form = parseForm(method, rawQuery, headers, body);
  const key = cleanKey(urlPath.slice(KEYS_PREFIX.length));

  const prevIndex = getUint64(form, "prevIndex", V2ErrorCode.IndexNaN, `invalid value for "prevIndex"`);
  const waitIndex = getUint64(form, "waitIndex", V2ErrorCode.IndexNaN, `invalid value for "waitIndex"`);
  const recursive = getBool(form, "recursive", `invalid value for "recursive"`);
  const sorted = getBool(form, "sorted", `invalid value for "sorted"`);
  const wait = getBool(form, "wait", `invalid value for "wait"`);
  const dir = getBool(form, "dir", `invalid value for "dir"`);
  const quorum = getBool(form, "quorum", `invalid value for "quorum"`);
  const stream = getBool(form, "stream", `invalid value for "stream"`);
  if (wait && method !== "GET") {
    throw requestError(V2ErrorCode.InvalidField, `"wait" can only be used with GET requests`);
  }
  const prevValue = first(form, "prevValue") ?? "";
  if (form.has("prevValue") && prevValue === "") {
    throw requestError(V2ErrorCode.PrevValueRequired, `"prevValue" cannot be empty`);
  }
  const noValueOnSuccess = getBool(form, "noValueOnSuccess", `invalid value for "noValueOnSuccess"`);

  let ttl: bigint | undefined;
  if ((first(form, "ttl") ?? "") !== "") {
    ttl = parseUint64(first(form, "ttl")!);
    if (ttl === undefined) throw requestError(V2ErrorCode.TtlNaN, `invalid value for "ttl"`);
  }
  let prevExist: boolean | undefined;
  if (form.has("prevExist")) prevExist = getBool(form, "prevExist", "invalid value for prevExist");
  let refresh = false;
  if (form.has("refresh")) {
    refresh = getBool(form, "refresh", "invalid value for refresh");
    if (refresh) {
      if ((first(form, "value") ?? "") !== "") {
        throw requestError(V2ErrorCode.RefreshValue, "A value was provided on a refresh");
      }
      if (ttl === undefined) throw requestError(V2ErrorCode.RefreshTtlRequired, "No TTL value set");
    }
  }

  const value = first(form, "value") ?? "";
  const expireAt = ttl === undefined ? undefined : expirationMs(nowMs, ttl);
  const exp = expireAt === undefined ? {} : { expireAt };
  const prev = {
    ...(prevValue !== "" ? { prevValue } : {}),
    ...(prevIndex !== 0 ? { prevIndex } : {}),
  };
  const base = { key, noValueOnSuccess };

  switch (method) {
    case "GET":
    case "HEAD": {
      const req: V2GetRequest = {
        kind: "get",
        ...base,
        recursive,
        sorted,
        quorum: method === "GET" && quorum,
        head: method === "HEAD",
      };
      if (wait && !req.quorum) {
        req.wait = { ...(waitIndex !== 0 ? { sinceIndex: waitIndex } : {}), stream, recursive };
      }
      return req;
    }
    case "POST":
      return { kind: "create", ...base, dir, value, ...exp, unique: true };
    case "PUT":
      if (prevExist === true) {
        if (prevIndex === 0 && prevValue === "") return { kind: "update", ...base, value, ...exp, refresh };
        return { kind: "cas", ...base, ...prev, value, ...exp, refresh };
      }
      if (prevExist === false) return { kind: "create", ...base, dir, value, ...exp, unique: false };
      if (prevIndex > 0 || prevValue !== "") return { kind: "cas", ...base, ...prev, value, ...exp, refresh };
      return { kind: "set", ...base, dir, value, ...exp, refresh };
    default: // DELETE
      if (prevIndex > 0 || prevValue !== "") return { kind: "cad", ...base, ...prev };
      return { kind: "delete", ...base, dir, recursive };
  }
}

/**
 * Applies a proposed request to the store (the apply loop's one line). Throws the store's
 * {@link V2Error} when the operation fails.
 */
export function applyKeysRequest(store: V2Store, req: V2KeysRequest, nowMs: number): V2Event {
  switch (req.kind) {
    case "get":
      return store.get(req.key, { recursive: req.recursive, sorted: req.sorted }, nowMs);
    case "set":
      return store.set(req.key, {
        dir: req.dir,
        value: req.value,
        expireAt: req.expireAt,
        refresh: req.refresh,
      }, nowMs);
    case "create":
      return store.create(req.key, {
        dir: req.dir,
        value: req.value,
        expireAt: req.expireAt,
        unique: req.unique,
      }, nowMs);
    case "update":
      return store.update(req.key, { value: req.value, expireAt: req.expireAt, refresh: req.refresh }, nowMs);
    case "cas":
      return store.compareAndSwap(req.key, req.prevValue, req.prevIndex, {
        value: req.value,
        expireAt: req.expireAt,
        refresh: req.refresh,
      }, nowMs);
    case "delete":
      return store.delete(req.key, { dir: req.dir, recursive: req.recursive }, nowMs);
    case "cad":
      return store.compareAndDelete(req.key, req.prevValue, req.prevIndex, nowMs);
  }
}

// ---- Go's form parsing ----

type Form = Map<string, string[]>;

function first(form: Form, name: string): string | undefined {
  return form.get(name)?.[0];
}

function getBool(form: Form, name: string, cause: string): boolean {
  const v = first(form, name);
  if (v === undefined) return false;
  if (["1", "t", "T", "TRUE", "true", "True"].includes(v)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(v)) return false;
  throw requestError(V2ErrorCode.InvalidField, cause);
}

const MAX_UINT64 = (1n << 64n) - 1n;

function parseUint64(s: string): bigint | undefined {
  if (!/^[0-9]+$/.test(s)) return undefined;
  const v = BigInt(s);
  return v > MAX_UINT64 ? undefined : v;
}

function getUint64(form: Form, name: string, code: number, cause: string): number {
  const v = first(form, name);
  if (v === undefined) return 0;
  const n = parseUint64(v);
  if (n === undefined) throw requestError(code, cause);
  return Number(n);
}

/** etcd: Expiration = now + ttl seconds, in int64 nanoseconds with Go's wrap-around; 0 means none. */
function expirationMs(nowMs: number, ttl: bigint): number | undefined {
  const whole = Math.floor(nowMs);
  const nowNs = BigInt(whole) * 1_000_000n + BigInt(Math.round((nowMs - whole) * 1e6));
  const ns = BigInt.asIntN(64, nowNs + BigInt.asIntN(64, ttl * 1_000_000_000n));
  if (ns === 0n) return undefined;
  return ns % 1_000_000n === 0n ? Number(ns / 1_000_000n) : Number(ns) / 1e6;
}

/** Go's `Request.ParseForm` for the methods the keys handler takes. */
function parseForm(method: string, rawQuery: string, headers: Map<string, string>, body: Uint8Array): Form {
  const form: Form = new Map();
  let err: string | undefined;
  if (method === "POST" || method === "PUT") {
    err = parsePostForm(headers, body, form);
  }
  const qErr = parseQuery(new TextEncoder().encode(rawQuery), form);
  if (err === undefined) err = qErr;
  if (err !== undefined) throw requestError(V2ErrorCode.InvalidForm, err);
  return form;
}

function header(headers: Map<string, string>, name: string): string {
  for (const [k, v] of headers) if (k.toLowerCase() === name) return v;
  return "";
}

/** Parses an urlencoded body into `form`; returns Go's error text, if any. */
function parsePostForm(headers: Map<string, string>, body: Uint8Array, form: Form): string | undefined {
  let ct = header(headers, "content-type");
  if (ct === "") ct = "application/octet-stream";
  const mt = parseMediaType(ct);
  let err = mt.err;
  if (mt.type === "application/x-www-form-urlencoded") {
    if (body.length > MAX_FORM) return "http: POST too large";
    const e = parseQuery(body, form);
    if (err === undefined) err = e;
  }
  return err;
}

function isTokenChar(c: number): boolean {
  return c > 0x20 && c < 0x7f && !'()<>@,;:\\"/[]?='.includes(String.fromCharCode(c));
}

function consumeToken(s: string): [string, string] {
  let i = 0;
  while (i < s.length && isTokenChar(s.charCodeAt(i))) i++;
  return [s.slice(0, i), s.slice(i)];
}

/** Go's `mime.ParseMediaType`, enough for its type and its errors. */
function parseMediaType(v: string): { type: string; err?: string } {
  const semi = v.indexOf(";");
  const base = (semi < 0 ? v : v.slice(0, semi)).toLowerCase().trim();
  const [typ, rest] = consumeToken(base);
  if (typ === "") return { type: "", err: "mime: no media type" };
  if (rest !== "") {
    if (!rest.startsWith("/")) return { type: "", err: "mime: expected slash after first token" };
    const [sub, after] = consumeToken(rest.slice(1));
    if (sub === "") return { type: "", err: "mime: expected token after slash" };
    if (after !== "") return { type: "", err: "mime: unexpected content after media subtype" };
  }
  if (semi < 0) return { type: base };
  const seen = new Set<string>();
  for (const raw of v.slice(semi + 1).split(";")) {
    const p = raw.trim();
    if (p === "") continue;
    const eq = p.indexOf("=");
    const name = eq < 0 ? "" : p.slice(0, eq).trim().toLowerCase();
    const [tok, tail] = consumeToken(name);
    if (tok === "" || tail !== "") return { type: base, err: "mime: invalid media parameter" };
    if (seen.has(name)) return { type: "", err: "mime: duplicate parameter name" };
    seen.add(name);
  }
  return { type: base };
}

/** Go's `url.ParseQuery` into `form` (appending); returns its error text, if any. */
function parseQuery(q: Uint8Array, form: Form): string | undefined {
  let err: string | undefined;
  let rest = q;
  while (rest.length > 0) {
    const amp = rest.indexOf(0x26); // '&'
    const part = amp < 0 ? rest : rest.subarray(0, amp);
    rest = amp < 0 ? rest.subarray(rest.length) : rest.subarray(amp + 1);
    if (part.includes(0x3b)) { // ';' (Go keeps the last such error)
      err = "invalid semicolon separator in query";
      continue;
    }
    if (part.length === 0) continue;
    const eq = part.indexOf(0x3d); // '='
    const k = unescape(eq < 0 ? part : part.subarray(0, eq), true);
    if (k instanceof Error) {
      err ??= k.message;
      continue;
    }
    const v = eq < 0 ? new Uint8Array() : unescape(part.subarray(eq + 1), true);
    if (v instanceof Error) {
      err ??= v.message;
      continue;
    }
    const name = decodeUtf8(k);
    const list = form.get(name);
    if (list) list.push(decodeUtf8(v));
    else form.set(name, [decodeUtf8(v)]);
  }
  return err;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** Go's `url.unescape`: `%XX` to a byte, and `+` to a space in query components. */
function unescape(s: Uint8Array, query: boolean): Uint8Array | Error {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === 0x25) {
      if (i + 2 >= s.length || hexVal(s[i + 1]) < 0 || hexVal(s[i + 2]) < 0) {
        const bad = new TextDecoder().decode(s.subarray(i, i + 3));
        return new Error(`invalid URL escape ${JSON.stringify(bad)}`);
      }
      out.push(hexVal(s[i + 1]) * 16 + hexVal(s[i + 2]));
      i += 2;
    } else if (c === 0x2b && query) out.push(0x20);
    else out.push(c);
  }
  return Uint8Array.from(out);
}

function decodeUtf8(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

/** Go's ServeMux `cleanPath`: path.Clean, keeping a trailing slash. */
function muxCleanPath(p: string): string {
  if (p === "") return "/";
  if (!p.startsWith("/")) p = "/" + p;
  let np = goPathClean(p);
  if (p.endsWith("/") && np !== "/") {
    if (p.length === np.length + 1 && p.startsWith(np)) return p;
    np += "/";
  }
  return np;
}

/** Go's `URL.EscapedPath` for a path without a raw form. */
function escapePath(p: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(p)) {
    const ch = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~$&+,/:;=@]/.test(ch)) out += ch;
    else out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}
