/**
 * Bootstrap from DNS SRV records (`--discovery-srv DOMAIN`, `--discovery-srv-name SUFFIX`).
 *
 * The operator publishes one SRV record per founding member under `_etcd-server-ssl<-suffix>._tcp.DOMAIN`
 * (members speak https to each other) and/or `_etcd-server<-suffix>._tcp.DOMAIN` (http). Every member
 * reads both lists and recognises its own record by address: the record's target and port, resolved,
 * equal one of its own `--initial-advertise-peer-urls`, resolved. That record takes the member's
 * `--name`; the other records get etcd's placeholder names "0", "1", ... (the real names replace them
 * once the members publish themselves). Peer URLs are written with the record's target name, without
 * the trailing dot of DNS, so that every member derives the same member IDs from the same records.
 *
 * How this differs from etcd 3.4, on purpose:
 * - etcd 3.4 only ever uses the `_etcd-server-ssl` list (its code that meant to add the http list adds
 *   it only when that lookup failed), so a domain with only http records cannot bootstrap. etcd-ts uses
 *   both lists, as later etcd releases do, and numbers the placeholder names across both lists so that
 *   two different members never share a placeholder (later etcd releases restart the count per list).
 * - etcd skips a record whose target does not resolve and goes on with the others, which gives this
 *   member a smaller cluster than its peers (they then disagree on the cluster ID); etcd-ts refuses to
 *   start and names the target.
 * - A scheme mismatch on this member's record is reported as such, even when other records were usable
 *   (etcd then only says that the member is missing from the records).
 * - Go sorts records by priority and shuffles them by weight; etcd-ts sorts by priority, then weight
 *   (heaviest first), then target and port, so the placeholder names are reproducible. They never
 *   enter a member ID, so this changes nothing that members must agree on.
 *
 * After building the cluster, the checks etcd applies to any bootstrap (its `VerifyBootstrap`) run as
 * well, in etcd's words: this member's URLs in the records must be its advertised peer URLs (equal as
 * written, or after resolving both, like etcd's `URLStringsEqual`) and no URL may appear twice.
 *
 * Resolution goes through a {@link DnsResolver}: production uses {@link systemResolver}, which reads the
 * hosts file and then asks the name servers of the system's resolver configuration (/etc/resolv.conf),
 * as Go's resolver does for etcd; tests inject their own.
 *
 * @module
 */
import { BootstrapError } from "./static.ts";

/** One SRV record; `target` as DNS returns it (normally with a trailing dot). */
export interface SrvRecord {
  target: string;
  port: number;
  priority: number;
  weight: number;
}

/** Name resolution used by discovery; production uses {@link systemResolver}. */
export interface DnsResolver {
  /** The SRV records of `name`; rejects (e.g. with `Deno.errors.NotFound`) when there are none. */
  srv(name: string): Promise<SrvRecord[]>;
  /** The A and AAAA addresses of `host`; an IP literal resolves to itself; rejects when there are none. */
  addresses(host: string): Promise<string[]>;
}

/** A name server to ask instead of the system's. */
export interface NameServer {
  ipAddr: string;
  port: number;
}

/**
 * A resolver over `Deno.resolveDns`. Without `nameServer` it is the system resolver: names in the hosts
 * file (`hostsFile`, /etc/hosts) answer first, as with Go's resolver and getaddrinfo, then the name
 * servers of /etc/resolv.conf. With `nameServer`, only that server is asked.
 */
export function resolverFor(nameServer?: NameServer, hostsFile = "/etc/hosts"): DnsResolver {
  const options = nameServer ? { nameServer } : undefined;
  return {
    async srv(name: string): Promise<SrvRecord[]> {
      const records = await Deno.resolveDns(name, "SRV", options);
      return records.map((r) => ({ target: r.target, port: r.port, priority: r.priority, weight: r.weight }));
    },
    async addresses(host: string): Promise<string[]> {
      const literal = ipLiteral(host);
      if (literal !== undefined) return [literal];
      if (!nameServer) {
        const fromFile = await hostsFileAddresses(host, hostsFile);
        if (fromFile.length > 0) return fromFile;
      }
      const [v4, v6] = await Promise.allSettled([
        Deno.resolveDns(host, "A", options),
        Deno.resolveDns(host, "AAAA", options),
      ]);
      const found = [
        ...(v4.status === "fulfilled" ? v4.value : []),
        ...(v6.status === "fulfilled" ? v6.value : []),
      ];
      if (found.length > 0) return found;
      throw v4.status === "rejected" ? v4.reason : new Deno.errors.NotFound(`no addresses for ${host}`);
    },
  };
}

/** The system's resolver: the hosts file, then the name servers of /etc/resolv.conf. */
export const systemResolver: DnsResolver = resolverFor();

/** The SRV service name for `base` ("etcd-server", "etcd-client"), e.g. `etcd-server-ssl-SUFFIX`. */
export function srvService(base: string, scheme: "http" | "https", suffix = ""): string {
  const service = scheme === "https" ? `${base}-ssl` : base;
  return suffix === "" ? service : `${service}-${suffix}`;
}

/** What {@link srvInitialCluster} needs. */
export interface SrvClusterOptions {
  /** This member's `--name`. */
  name: string;
  /** `--discovery-srv`. */
  domain: string;
  /** `--discovery-srv-name` ("" for none). */
  serviceSuffix: string;
  /** `--initial-advertise-peer-urls`. */
  advertisePeerUrls: URL[];
  resolver: DnsResolver;
}

/**
 * The initial cluster from SRV records: name -> peer URLs as etcd writes them (sorted per member, one URL
 * per record), this member under `name`. Throws {@link BootstrapError} when the records cannot describe
 * a cluster this member belongs to.
 */
export async function srvInitialCluster(opts: SrvClusterOptions): Promise<Map<string, string[]>> {
  const { name, domain, resolver } = opts;
  // address and port -> this member's advertised URL; a later URL wins, as in etcd's map
  const mine = new Map<string, URL>();
  for (const u of opts.advertisePeerUrls) {
    const host = bare(u.hostname);
    let addrs: string[];
    try {
      addrs = await resolver.addresses(host);
    } catch (err) {
      throw new BootstrapError(
        `lookup ${host}: ${reason(err)} (--initial-advertise-peer-urls ${formatUrl(u)})`,
      );
    }
    for (const a of addrs) mine.set(endpointKey(a, portOf(u)), u);
  }

  const cluster = new Map<string, string[]>();
  const lookupErrors: string[] = [];
  let placeholder = 0;
  for (const scheme of ["https", "http"] as const) {
    const service = srvService("etcd-server", scheme, opts.serviceSuffix);
    const query = `_${service}._tcp.${domain}`;
    let records: SrvRecord[];
    try {
      records = await resolver.srv(query);
      if (records.length === 0) throw new Deno.errors.NotFound(query);
    } catch (err) {
      lookupErrors.push(`error querying DNS SRV records for _${service} lookup ${query}: ${reason(err)}`);
      continue;
    }
    for (const r of sortRecords(records)) {
      const target = r.target.endsWith(".") ? r.target.slice(0, -1) : r.target;
      let addrs: string[];
      try {
        addrs = await resolver.addresses(target);
      } catch (err) {
        throw new BootstrapError(
          `error querying DNS SRV records for _${service} lookup ${target}: ${reason(err)} ` +
            `(target of ${query} port ${r.port})`,
        );
      }
      let self: URL | undefined;
      for (const a of addrs) {
        self = mine.get(endpointKey(a, r.port));
        if (self) break;
      }
      const url = `${scheme}://${joinHostPort(target, r.port)}`;
      if (self && self.protocol !== `${scheme}:`) {
        throw new BootstrapError(
          `bootstrap at ${url} from DNS for ${service} has scheme mismatch with expected peer ${
            formatUrl(self)
          }`,
        );
      }
      const member = self ? name : String(placeholder++);
      const urls = cluster.get(member) ?? [];
      urls.push(url);
      cluster.set(member, urls);
    }
  }
  if (cluster.size === 0) throw new BootstrapError(lookupErrors.join("; "));
  for (const urls of cluster.values()) urls.sort();
  const own = cluster.get(name);
  if (!own) throw new BootstrapError(`cannot find local etcd member ${JSON.stringify(name)} in SRV records`);
  await verifyAdvertised(name, own, opts.advertisePeerUrls.map(formatUrl), resolver);
  const seen = new Set<string>();
  for (const urls of cluster.values()) {
    for (const u of urls) {
      if (seen.has(u)) {
        throw new BootstrapError(`initial cluster ${clusterString(cluster)} has duplicate url`);
      }
      seen.add(u);
    }
  }
  return cluster;
}

/**
 * Whether the cluster's members speak https to each other (records under `_etcd-server-ssl`): then this
 * member needs peer certificates (`--peer-cert-file`/`--peer-key-file`) or `--peer-auto-tls`.
 */
export function needsPeerTls(cluster: Map<string, string[]>): boolean {
  for (const urls of cluster.values()) {
    if (urls.some((u) => u.startsWith("https://"))) return true;
  }
  return false;
}

/** What {@link srvClientEndpoints} needs. */
export interface SrvClientOptions {
  domain: string;
  /** `--discovery-srv-name` ("" or absent for none). */
  serviceSuffix?: string;
  resolver: DnsResolver;
}

/**
 * Client endpoints from `_etcd-client-ssl<-suffix>._tcp.DOMAIN` (https) and `_etcd-client<-suffix>._tcp`
 * (http), as `etcdctl --discovery-srv` finds them: https first, each list in priority order. Unlike
 * etcdctl the URLs carry the target without DNS's trailing dot (a certificate names the host without
 * it). Throws {@link BootstrapError} when neither list exists.
 */
export async function srvClientEndpoints(opts: SrvClientOptions): Promise<string[]> {
  const endpoints: string[] = [];
  const errors: string[] = [];
  for (const scheme of ["https", "http"] as const) {
    const query = `_${srvService("etcd-client", scheme, opts.serviceSuffix)}._tcp.${opts.domain}`;
    try {
      for (const r of sortRecords(await opts.resolver.srv(query))) {
        const target = r.target.endsWith(".") ? r.target.slice(0, -1) : r.target;
        endpoints.push(`${scheme}://${joinHostPort(target, r.port)}`);
      }
    } catch (err) {
      errors.push(`lookup ${query}: ${reason(err)}`);
    }
  }
  if (errors.length === 2) throw new BootstrapError(`dns lookup errors: ${errors[0]} and ${errors[1]}`);
  return endpoints;
}

/**
 * etcd's `URLStringsEqual`: whether two URL lists name the same endpoints, as written or, failing that,
 * with every host resolved to its first address (IPv4 first; "localhost" is left as written). Returns
 * `undefined` when equal, otherwise etcd's explanation (`len([...]) != len([...])`,
 * `resolved urls: "a" != "b"`, or the lookup failure).
 */
export async function urlStringsDiffer(
  a: string[],
  b: string[],
  resolver: DnsResolver,
): Promise<string | undefined> {
  if (a.length !== b.length) return `len(${goQuoteList(a)}) != len(${goQuoteList(b)})`;
  const sa = [...a].sort();
  const sb = [...b].sort();
  if (sa.every((u, i) => u === sb[i])) return undefined;
  let ra: string[];
  let rb: string[];
  try {
    ra = (await Promise.all(sa.map((u) => resolveUrl(u, resolver)))).sort();
    rb = (await Promise.all(sb.map((u) => resolveUrl(u, resolver)))).sort();
  } catch (err) {
    return (err as Error).message;
  }
  const i = ra.findIndex((u, k) => u !== rb[k]);
  return i < 0 ? undefined : `resolved urls: ${JSON.stringify(ra[i])} != ${JSON.stringify(rb[i])}`;
}

/** etcd's `advertiseMatchesCluster` for this member's URLs found in the records. */
async function verifyAdvertised(
  name: string,
  fromRecords: string[],
  advertised: string[],
  resolver: DnsResolver,
): Promise<void> {
  const ap = [...advertised].sort();
  const detail = await urlStringsDiffer(ap, fromRecords, resolver);
  if (detail === undefined) return;
  const apSet = new Set(ap);
  const recSet = new Set(fromRecords);
  const mineString = ap.map((u) => `${name}=${u}`).join(",");
  const missing = fromRecords.filter((u) => !apSet.has(u));
  if (missing.length > 0) {
    throw new BootstrapError(
      `--initial-cluster has ${missing.map((u) => `${name}=${u}`).join(",")} but missing from ` +
        `--initial-advertise-peer-urls=${ap.join(",")} (${detail})`,
    );
  }
  const extra = ap.filter((u) => !recSet.has(u));
  if (extra.length > 0) {
    throw new BootstrapError(
      `--initial-advertise-peer-urls has ${extra.join(",")} but missing from --initial-cluster=${mineString}`,
    );
  }
  throw new BootstrapError(
    `failed to resolve ${ap.join(",")} to match --initial-cluster=${mineString} (${detail})`,
  );
}

/** `scheme://host:port` with the host replaced by its first address (IPv4 preferred). */
async function resolveUrl(u: string, resolver: DnsResolver): Promise<string> {
  const url = new URL(u);
  const host = bare(url.hostname);
  if (host === "localhost") return u;
  let addrs: string[];
  try {
    addrs = await resolver.addresses(host);
  } catch (err) {
    throw new Error(`failed to resolve ${JSON.stringify(u)} (lookup ${host}: ${reason(err)})`);
  }
  const first = addrs.find((a) => !a.includes(":")) ?? addrs[0];
  return `${url.protocol}//${joinHostPort(first, portOf(url))}`;
}

/** Records by priority, then weight (heaviest first), then target and port. */
function sortRecords(records: SrvRecord[]): SrvRecord[] {
  return [...records].sort((x, y) =>
    x.priority - y.priority || y.weight - x.weight ||
    (x.target < y.target ? -1 : x.target > y.target ? 1 : 0) || x.port - y.port
  );
}

/** etcd's `URLsMap.String()`: every `name=url`, sorted, comma-separated. */
function clusterString(cluster: Map<string, string[]>): string {
  const pairs: string[] = [];
  for (const [n, urls] of cluster) for (const u of urls) pairs.push(`${n}=${u}`);
  return pairs.sort().join(",");
}

/** Go's `%q` of a string slice: `["a" "b"]`. */
function goQuoteList(list: string[]): string {
  return `[${list.map((s) => JSON.stringify(s)).join(" ")}]`;
}

/** A URL as etcd writes it: no trailing slash. */
function formatUrl(u: URL): string {
  return `${u.protocol}//${u.host}${u.pathname === "/" ? "" : u.pathname}`;
}

function portOf(u: URL): number {
  if (u.port !== "") return Number(u.port);
  return u.protocol === "https:" ? 443 : 80;
}

function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function endpointKey(addr: string, port: number): string {
  return `${addr.toLowerCase()}|${port}`;
}

/** A host without IPv6 brackets. */
function bare(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/** The address itself when `host` is an IPv4 or IPv6 literal, in the form URLs use. */
function ipLiteral(host: string): string | undefined {
  const h = bare(host);
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(h)) return h;
  if (h.includes(":")) {
    try {
      return bare(new URL(`http://[${h}]/`).hostname);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Go's words for a failed lookup: "no such host" when the name has no records. */
function reason(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such host";
  return err instanceof Error ? err.message : String(err);
}

/** Addresses for `host` in a hosts file (`/etc/hosts` format); none when the file is missing. */
async function hostsFileAddresses(host: string, path: string): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return [];
  }
  const wanted = host.toLowerCase().replace(/\.$/, "");
  const found: string[] = [];
  for (const line of text.split("\n")) {
    const fields = line.replace(/#.*/, "").trim().split(/\s+/);
    if (fields.length < 2) continue;
    const addr = ipLiteral(fields[0]);
    if (addr === undefined) continue;
    if (fields.slice(1).some((n) => n.toLowerCase().replace(/\.$/, "") === wanted) && !found.includes(addr)) {
      found.push(addr);
    }
  }
  return found;
}
