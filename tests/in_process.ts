/**
 * Members started in this process through `startEtcd` (the embedding API), for end-to-end tests that
 * need a member's own state (its log lines, its server object) beside what clients see: three members
 * on 127.0.0.1 with free peer ports, each logging into an array the test can read.
 *
 * @module
 */
import { type Config, defaultConfig, type Etcd, startEtcd } from "../mod.ts";
import { createLogger } from "../server/logger.ts";
import { encodePutRequest, type PutRequest } from "../server/pb/rpc.ts";
import { freePort } from "./helpers.ts";

/** One member: its configuration, the running server (undefined while stopped) and its log lines. */
export interface InProcessMember {
  name: string;
  config: Config;
  etcd: Etcd | undefined;
  log: Record<string, unknown>[];
}

/**
 * The configurations of a new three-member cluster under `dir` (client ports chosen by the system);
 * `tune` sets what the test needs (timeouts, snapshot count) on each.
 */
export function clusterMembers(dir: string, tune: (c: Config) => void): InProcessMember[] {
  const names = ["s0", "s1", "s2"];
  const peerUrls = names.map(() => new URL(`http://127.0.0.1:${freePort()}`));
  const initialCluster = new Map(names.map((n, i) => [n, [peerUrls[i]]]));
  return names.map((name, i) => {
    const config = defaultConfig();
    config.name = name;
    config.dataDir = `${dir}/${name}`;
    config.listenClientUrls = [new URL("http://127.0.0.1:0")];
    config.advertiseClientUrls = [new URL("http://127.0.0.1:0")];
    config.listenPeerUrls = [peerUrls[i]];
    config.initialAdvertisePeerUrls = [peerUrls[i]];
    config.initialCluster = initialCluster;
    tune(config);
    return { name, config, etcd: undefined, log: [] };
  });
}

/** Starts a member; its log lines (JSON) go on to `m.log`. */
export async function startMember(m: InProcessMember): Promise<Etcd> {
  const logger = createLogger({ level: "info", write: (line) => m.log.push(JSON.parse(line)) });
  m.etcd = await startEtcd(m.config, { logger });
  return m.etcd;
}

/** A put through the member's server, as the KV service would make it. */
export function put(etcd: Etcd, key: string, value: Uint8Array): Promise<unknown> {
  const r: PutRequest = {
    key: new TextEncoder().encode(key),
    value,
    lease: 0n,
    prevKv: false,
    ignoreValue: false,
    ignoreLease: false,
  };
  return etcd.server.put(r, encodePutRequest(r));
}
