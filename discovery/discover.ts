/**
 * Where a new member's initial cluster comes from: `--initial-cluster` as given, an etcd discovery
 * service (`--discovery`, v2 protocol), the v3 registry of another cluster (`--discovery-token` with
 * `--discovery-endpoints`) or DNS SRV records (`--discovery-srv`). Every way ends in the same shape: the
 * founding members' names and peer URLs, and the token their IDs are derived with.
 *
 * @module
 */
import type { Logger } from "../server/logger.ts";
import { joinClusterV2 } from "./etcd_v2.ts";
import { joinClusterV3, type V3DiscoveryOptions } from "./etcd_v3.ts";
import { type DnsResolver, needsPeerTls, srvInitialCluster, srvService, systemResolver } from "./srv.ts";
import { memberId } from "./ids.ts";
import { BootstrapError } from "./static.ts";

/** The settings that decide how a new member finds its cluster (a subset of the server's Config). */
export interface DiscoverySettings {
  name: string;
  /** `--initial-advertise-peer-urls`, as etcd writes URLs. */
  advertisePeerUrls: string[];
  /** `--initial-cluster`: name -> peer URLs; empty when discovery decides. */
  initialCluster: Map<string, string[]>;
  initialClusterToken: string;
  /** `--discovery` and `--discovery-proxy`. */
  discovery: string;
  discoveryProxy: string;
  /** v3 discovery (`--discovery-token` with `--discovery-endpoints`); absent or no endpoints: not used. */
  v3?: V3DiscoveryOptions;
  /** `--discovery-srv` and `--discovery-srv-name`. */
  discoverySrv?: string;
  discoverySrvName?: string;
  /** Whether peers can speak TLS: certificate files or `--peer-auto-tls` (https SRV records need it). */
  peerTls?: boolean;
}

/** What discovery uses from the outside world; production leaves them out. */
export interface DiscoveryDeps {
  /** HTTP for the v2 discovery protocol (default: `fetch`). */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** Waits between retries (default: a timer). */
  sleep?: (ms: number) => Promise<void>;
  /** Stops a member that waits for the others. */
  signal?: AbortSignal;
  /** Name resolution for DNS discovery (default: the system's resolver configuration). */
  resolver?: DnsResolver;
}

/** The founding members and the token their IDs come from. */
export interface InitialCluster {
  cluster: Map<string, string[]>;
  token: string;
}

/** The initial cluster of a member bootstrapping a new cluster (its data directory has no WAL). */
export async function discoverInitialCluster(
  s: DiscoverySettings,
  logger: Logger,
  deps: DiscoveryDeps = {},
): Promise<InitialCluster> {
  if (s.discovery !== "") {
    // etcd derives the IDs with the discovery URL as the cluster token, so that clusters bootstrapped
    // through different tokens never share member IDs
    const token = s.discovery;
    const config = s.advertisePeerUrls.map((u) => `${s.name}=${u}`).sort().join(",");
    const text = await joinClusterV2(s.discovery, s.discoveryProxy, {
      id: memberId(s.advertisePeerUrls, token),
      config,
    }, { logger, ...deps });
    return { cluster: parseClusterString(text), token };
  }
  if (s.v3 !== undefined && s.v3.endpoints.length > 0) {
    // the IDs are derived with the registry token, as etcd 3.6 does
    const token = s.v3.token;
    const cluster = await joinClusterV3(s.v3, {
      id: memberId(s.advertisePeerUrls, token),
      name: s.name,
      peerUrls: s.advertisePeerUrls,
    }, { logger, sleep: deps.sleep, signal: deps.signal });
    return { cluster, token };
  }
  if (s.discoverySrv) {
    const cluster = await srvInitialCluster({
      name: s.name,
      domain: s.discoverySrv,
      serviceSuffix: s.discoverySrvName ?? "",
      advertisePeerUrls: s.advertisePeerUrls.map((u) => new URL(u)),
      resolver: deps.resolver ?? systemResolver,
    });
    if (needsPeerTls(cluster) && !s.peerTls) {
      const service = srvService("etcd-server", "https", s.discoverySrvName);
      throw new BootstrapError(
        `the SRV records _${service}._tcp.${s.discoverySrv} list https peers, but this member has no peer ` +
          "certificate: set --peer-cert-file and --peer-key-file, or --peer-auto-tls",
      );
    }
    logger.info("got bootstrap from DNS for etcd-server", {
      domain: s.discoverySrv,
      cluster: [...cluster].flatMap(([n, urls]) => urls.map((u) => `${n}=${u}`)).join(","),
    });
    return { cluster, token: s.initialClusterToken };
  }
  return { cluster: s.initialCluster, token: s.initialClusterToken };
}

/**
 * `name=url,name=url` (etcd's URLsMap string) as name -> URLs in the order given; a URL listed twice is
 * refused in etcd's words.
 */
export function parseClusterString(text: string): Map<string, string[]> {
  const cluster = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const pair of text.split(",")) {
    const eq = pair.indexOf("=");
    const name = pair.slice(0, eq);
    const url = pair.slice(eq + 1);
    if (seen.has(url)) throw new BootstrapError(`discovery cluster ${text} has duplicate url`);
    seen.add(url);
    const urls = cluster.get(name) ?? [];
    urls.push(url);
    cluster.set(name, urls);
  }
  return cluster;
}
