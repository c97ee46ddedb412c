/**
 * Byte-exact JSON as etcd 3.4 (Go 1.19's encoding/json) writes v2 responses: `<`, `>`, `&`, U+2028 and
 * U+2029 escaped as `\u003c`...; control characters other than `\n`, `\r`, `\t` as `\u00XX` (so `\b` is
 * `\u0008`); `omitempty` on the node fields; times in RFC 3339 with up to nine fraction digits, trailing
 * zeros dropped.
 *
 * @module
 */
import type { V2Event, V2Node } from "./store.ts";

const HEX = "0123456789abcdef";

/** `s` as a JSON string literal, escaped exactly as Go's encoder with HTML escaping on. */
export function goJsonString(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | undefined;
    if (c < 0x20) {
      if (c === 0x0a) esc = "\\n";
      else if (c === 0x0d) esc = "\\r";
      else if (c === 0x09) esc = "\\t";
      else esc = "\\u00" + HEX[c >> 4] + HEX[c & 15];
    } else if (c === 0x22) esc = '\\"';
    else if (c === 0x5c) esc = "\\\\";
    else if (c === 0x3c) esc = "\\u003c";
    else if (c === 0x3e) esc = "\\u003e";
    else if (c === 0x26) esc = "\\u0026";
    else if (c === 0x2028) esc = "\\u2028";
    else if (c === 0x2029) esc = "\\u2029";
    else if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        i++; // a valid pair: written as is
        continue;
      }
      esc = "\\ufffd"; // invalid UTF-8 on Go's side
    }
    if (esc !== undefined) {
      out += s.slice(start, i) + esc;
      start = i + 1;
    }
  }
  return out + s.slice(start) + '"';
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/**
 * Milliseconds since the epoch as Go's RFC3339Nano in UTC (`2026-12-04T20:31:07.123Z`; fraction digits
 * trimmed, none when whole seconds). Sub-millisecond parts of `ms` are kept to the nanosecond.
 */
export function formatRfc3339Nano(ms: number): string {
  let whole = Math.floor(ms);
  let subNs = Math.round((ms - whole) * 1e6);
  if (subNs >= 1e6) {
    whole += 1;
    subNs -= 1e6;
  }
  const d = new Date(whole);
  const ns = d.getUTCMilliseconds() * 1e6 + subNs;
  let s = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}T` +
    `${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}`;
  if (ns !== 0) s += "." + pad(ns, 9).replace(/0+$/, "");
  return s + "Z";
}

/**
 * One node as etcd prints it: `key` (left out for the keyspace root "/", which etcd prints without
 * one), `value`, `dir`, `expiration`, `ttl` (left out when 0), `nodes` (left out when empty),
 * `modifiedIndex` and `createdIndex` (left out when 0).
 */
export function encodeV2Node(n: V2Node): string {
  const parts: string[] = [];
  if (n.key !== "" && n.key !== "/") parts.push(`"key":${goJsonString(n.key)}`);
  if (n.value !== undefined) parts.push(`"value":${goJsonString(n.value)}`);
  if (n.dir) parts.push(`"dir":true`);
  if (n.expiration !== undefined) parts.push(`"expiration":"${n.expiration}"`);
  if (n.ttl !== undefined && n.ttl !== 0) parts.push(`"ttl":${n.ttl}`);
  if (n.nodes !== undefined && n.nodes.length > 0) {
    parts.push(`"nodes":[${n.nodes.map(encodeV2Node).join(",")}]`);
  }
  if (n.modifiedIndex !== 0) parts.push(`"modifiedIndex":${n.modifiedIndex}`);
  if (n.createdIndex !== 0) parts.push(`"createdIndex":${n.createdIndex}`);
  return `{${parts.join(",")}}`;
}

/**
 * The response body etcd writes for an event (json.Encoder, so a trailing newline). With
 * `noValueOnSuccess`, set/create/update/compareAndSwap events lose `node` and `prevNode`, as etcd does.
 */
export function encodeV2Event(ev: V2Event, opts: { noValueOnSuccess?: boolean } = {}): string {
  const drop = opts.noValueOnSuccess === true &&
    (ev.action === "set" || ev.action === "compareAndSwap" || ev.action === "create" ||
      ev.action === "update");
  let s = `{"action":${goJsonString(ev.action)}`;
  if (!drop) {
    s += `,"node":${encodeV2Node(ev.node)}`;
    if (ev.prevNode !== undefined) s += `,"prevNode":${encodeV2Node(ev.prevNode)}`;
  }
  return s + "}\n";
}

/** 201 for an event that created its key (create, or set without a previous node), else 200. */
export function v2EventStatus(ev: V2Event): 200 | 201 {
  return ev.action === "create" || (ev.action === "set" && ev.prevNode === undefined) ? 201 : 200;
}
