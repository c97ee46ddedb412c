/**
 * IP address literals, read without `node:net` (a member without TLS never loads it): their bytes, and
 * whether a string is one, as `net.isIP` answers.
 *
 * @module
 */

/** The address's bytes: 4 for IPv4 and IPv4-mapped IPv6 (as Go encodes them), 16 for IPv6; else undefined. */
export function parseIp(s: string): Uint8Array | undefined {
  const v4 = parseIpv4(s);
  if (v4 !== undefined) return v4;
  if (!s.includes(":")) return undefined;
  let tail: number[] = [];
  let text = s;
  const lastColon = s.lastIndexOf(":");
  if (s.slice(lastColon + 1).includes(".")) { // an IPv4 tail: ::ffff:1.2.3.4
    const quad = parseIpv4(s.slice(lastColon + 1));
    if (quad === undefined) return undefined;
    tail = [(quad[0] << 8) | quad[1], (quad[2] << 8) | quad[3]];
    text = s.slice(0, lastColon + 1) + "0:0"; // two placeholder groups, replaced below
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    for (const g of part.split(":")) {
      if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  if (head === undefined || rest === undefined) return undefined;
  let all: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - rest.length;
    if (fill < 1) return undefined;
    all = [...head, ...new Array<number>(fill).fill(0), ...rest];
  } else {
    all = head;
  }
  if (all.length !== 8) return undefined;
  if (tail.length > 0) all.splice(6, 2, ...tail);
  const bytes = new Uint8Array(all.flatMap((g) => [g >> 8, g & 0xff]));
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? bytes.slice(12) : bytes;
}

/**
 * 4 for an IPv4 literal (dotted quad, no leading zeros), 6 for an IPv6 one (with an optional zone, as in
 * `fe80::1%eth0`), 0 for anything else: the answers of `node:net`'s `isIP`.
 */
export function ipVersion(s: string): 0 | 4 | 6 {
  if (parseIpv4(s) !== undefined) return 4;
  const zone = s.indexOf("%");
  const address = zone < 0 ? s : s.slice(0, zone);
  if (zone >= 0 && !/^%[0-9a-zA-Z.:-]+$/.test(s.slice(zone))) return 0;
  return address.includes(":") && parseIp(address) !== undefined ? 6 : 0;
}

function parseIpv4(s: string): Uint8Array | undefined {
  const parts = s.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) {
    return undefined;
  }
  return new Uint8Array(parts.map(Number));
}
