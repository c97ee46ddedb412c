/**
 * etcd discovery (`--discovery URL`): the protocol of etcd 3.4 and of the public discovery service.
 *
 * The discovery URL names a directory in a v2 key store, either directly
 * (`http://host:2379/v2/keys/_etcd/registry/<token>`) or through a discovery server that forwards to one
 * (`https://discovery.etcd.io/<token>`). The operator has written the cluster size to `_config/size`
 * below it. Each founding member:
 *
 * 1. reads the size and the registrations, and gives up at once if the cluster is already full;
 * 2. registers itself: key `<member id in hex>`, value `name=peerURL,...`, created only if absent;
 * 3. watches the directory (long-poll GETs with `waitIndex`) until `size` members have registered;
 * 4. takes the first `size` registrations, by creation index, as the initial cluster.
 *
 * A member that registered and then died before its data directory held a WAL finds its own entry on
 * restart; when the entry is the one it would write, it goes on (etcd 3.4 stops there with "found
 * duplicate id"). Failures to reach the service are retried with exponential back-off, then reported.
 *
 * @module
 */
import type { Logger } from "../server/logger.ts";
import { DiscoveryError } from "./errors.ts";

/** How long one request to the discovery service may take (the v2 client's default). */
const REQUEST_TIMEOUT_MS = 5000;
/** The back-off doubles up to 2^this seconds, as etcd's. */
const MAX_EXPONENT = 8;

/** What joining needs besides the URL. */
export interface V2DiscoveryDeps {
  logger: Logger;
  /** HTTP; default: `fetch`, through `--discovery-proxy` when one is given. */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** Waits between retries; default: a timer. */
  sleep?: (ms: number) => Promise<void>;
  /** Retries of an unreachable service before giving up (default 8: about 8.5 minutes, as 2+4+...+256 s). */
  maxRetries?: number;
  /** Stops waiting (a member shut down while it waits for the others). */
  signal?: AbortSignal;
}

/** What this member registers. */
export interface V2DiscoverySelf {
  id: bigint;
  /** `name=peerURL` pairs, sorted, joined with commas (etcd's URLsMap string). */
  config: string;
}

/** A node of a v2 keys response, as far as discovery reads it. */
interface KeyNode {
  key: string;
  value?: string;
  dir?: boolean;
  nodes?: KeyNode[];
  createdIndex: number;
  modifiedIndex: number;
}

interface KeyResponse {
  action: string;
  node: KeyNode;
  /** X-Etcd-Index. */
  index: number;
}

/** A v2 error answer: the service was reached and said no. */
class KeysError extends Error {
  constructor(readonly errorCode: number, message: string) {
    super(message);
  }
}

/** The service could not be reached, or answered with a server error: worth retrying. */
class Unreachable extends Error {}

/** etcd's v2 error codes discovery reacts to. */
const KEY_NOT_FOUND = 100;
const NODE_EXIST = 105;

/**
 * Registers this member with the discovery service at `url` and waits for the cluster to fill. Returns
 * the initial cluster as etcd writes it: `name=peerURL` pairs joined with commas, in registration order.
 */
export async function joinClusterV2(
  url: string,
  proxy: string,
  self: V2DiscoverySelf,
  deps: V2DiscoveryDeps,
): Promise<string> {
  const d = new V2Discovery(url, proxy, self, deps);
  try {
    return await d.join();
  } finally {
    d.close();
  }
}

class V2Discovery {
  readonly #endpoint: string;
  /** The directory's path on the service, e.g. `/v2/keys/_etcd/registry/<token>` or `/<token>`. */
  readonly #cluster: string;
  readonly #selfKey: string;
  readonly #self: V2DiscoverySelf;
  readonly #logger: Logger;
  readonly #fetch: (input: string, init: RequestInit) => Promise<Response>;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #maxRetries: number;
  readonly #signal: AbortSignal | undefined;
  readonly #client: Deno.HttpClient | undefined;
  #retries = 0;

  constructor(url: string, proxy: string, self: V2DiscoverySelf, deps: V2DiscoveryDeps) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new DiscoveryError("discovery: invalid URL", "INVALID_URL");
    }
    this.#endpoint = u.origin;
    this.#cluster = u.pathname.replace(/\/+$/, "");
    this.#selfKey = `${this.#cluster}/${self.id.toString(16)}`;
    this.#self = self;
    this.#logger = deps.logger;
    this.#sleep = deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#maxRetries = deps.maxRetries ?? MAX_EXPONENT;
    this.#signal = deps.signal;
    if (deps.fetch) {
      this.#fetch = deps.fetch;
    } else {
      if (proxy !== "") {
        const proxyUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`;
        this.#logger.info("running proxy with discovery", { "proxy-url": proxyUrl });
        this.#client = Deno.createHttpClient({ proxy: { url: proxyUrl } });
      }
      const client = this.#client;
      this.#fetch = (input, init) => fetch(input, client ? { ...init, client } : init);
    }
  }

  close(): void {
    this.#client?.close();
  }

  async join(): Promise<string> {
    // fast path: a full cluster is refused before registering
    await this.#checkCluster();
    await this.#createSelf();
    const { nodes, size, index } = await this.#checkCluster();
    const all = await this.#waitNodes(nodes, size, index);
    return nodesToCluster(all, size);
  }

  async #createSelf(): Promise<void> {
    let created: KeyResponse;
    try {
      created = await this.#once(() =>
        this.#request("PUT", this.#selfKey, { prevExist: "false" }, { value: this.#self.config })
      );
    } catch (err) {
      if (!(err instanceof KeysError) || err.errorCode !== NODE_EXIST) throw err;
      // registered before: go on only with the registration this member would make now
      const existing = await this.#once(() => this.#request("GET", this.#selfKey, {}));
      if (existing.node.value !== this.#self.config) {
        throw new DiscoveryError("discovery: found duplicate id", "DUPLICATE_ID");
      }
      this.#logger.info("found own registration on discovery service", {
        "member-id": this.#self.id.toString(16),
      });
      return;
    }
    // make sure the registration is visible on the server this member talks to
    await this.#once(() =>
      this.#request("GET", this.#selfKey, { wait: "true", waitIndex: String(created.node.createdIndex) }, {
        timeout: false,
      })
    );
  }

  /** The size and the registrations, sorted by creation; fails when this member is not among the first. */
  async #checkCluster(): Promise<{ nodes: KeyNode[]; size: number; index: number }> {
    for (;;) {
      try {
        return await this.#checkClusterOnce();
      } catch (err) {
        if (!(err instanceof Unreachable)) throw err;
        this.#logger.warn("failed to get from discovery server", {
          "discovery-url": this.#endpoint + this.#cluster,
          error: err.message,
        });
        await this.#backOff("cluster status check");
      }
    }
  }

  async #checkClusterOnce(): Promise<{ nodes: KeyNode[]; size: number; index: number }> {
    let sizeText: string | undefined;
    try {
      sizeText = (await this.#request("GET", `${this.#cluster}/_config/size`, {})).node.value;
    } catch (err) {
      if (err instanceof KeysError && err.errorCode === KEY_NOT_FOUND) {
        throw new DiscoveryError("discovery: size key not found", "SIZE_NOT_FOUND");
      }
      throw err;
    }
    const size = /^\d+$/.test(sizeText ?? "") ? Number(sizeText) : NaN;
    if (!Number.isSafeInteger(size)) throw new DiscoveryError("discovery: size key is bad", "BAD_SIZE");
    const listing = await this.#request("GET", this.#cluster, {});
    const nodes = (listing.node.nodes ?? [])
      .filter((n) => baseName(n.key) !== "_config")
      .sort((a, b) => a.createdIndex - b.createdIndex);
    const selfName = baseName(this.#selfKey);
    for (let i = 0; i < nodes.length; i++) {
      if (baseName(nodes[i].key) === selfName) break;
      if (i >= size - 1) throw new DiscoveryError("discovery: cluster is full", "FULL_CLUSTER");
    }
    return { nodes, size, index: listing.index };
  }

  /** Watches the directory from `index` on until `size` members have registered. */
  async #waitNodes(nodes: KeyNode[], size: number, index: number): Promise<KeyNode[]> {
    const all = nodes.slice(0, size);
    const selfName = baseName(this.#selfKey);
    for (const n of all) {
      if (baseName(n.key) === selfName) {
        this.#logger.info("found self from discovery server", { self: n.value });
      } else {
        this.#logger.info("found peer from discovery server", { peer: n.value });
      }
    }
    let after = index;
    while (all.length < size) {
      this.#logger.info("found peers from discovery server; waiting for more", {
        "discovery-url": this.#endpoint + this.#cluster,
        "found-peers": all.length,
        "needed-peers": size - all.length,
      });
      let event: KeyResponse;
      try {
        event = await this.#request(
          "GET",
          this.#cluster,
          { wait: "true", recursive: "true", waitIndex: String(after + 1) },
          { timeout: false },
        );
      } catch (err) {
        if (!(err instanceof Unreachable)) throw err;
        await this.#backOff("waiting for other nodes");
        const again = await this.#checkCluster();
        return this.#waitNodes(again.nodes, again.size, again.index);
      }
      after = Math.max(after + 1, event.node.modifiedIndex);
      if (baseName(event.node.key) === "_config" || event.node.key.includes("/_config/")) continue;
      if (event.action === "delete" || event.action === "expire" || event.action === "compareAndDelete") {
        continue;
      }
      if (all.some((n) => n.key === event.node.key)) continue;
      this.#logger.info("found peer from discovery server", { peer: event.node.value });
      all.push(event.node);
    }
    this.#logger.info("found all peers from discovery server", {
      "discovery-url": this.#endpoint + this.#cluster,
      peers: all.map((n) => n.value).join(","),
    });
    return all;
  }

  /** Runs `op`, retrying with back-off while the service cannot be reached. */
  async #once<T>(op: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await op();
      } catch (err) {
        if (!(err instanceof Unreachable)) throw err;
        await this.#backOff("registration");
      }
    }
  }

  async #backOff(step: string): Promise<void> {
    if (this.#retries >= this.#maxRetries) {
      throw new DiscoveryError(
        `discovery: too many retries: the discovery service at ${this.#endpoint} could not be reached ` +
          `(${this.#retries} retries)`,
        "TOO_MANY_RETRIES",
      );
    }
    this.#retries++;
    const seconds = 2 ** Math.min(this.#retries, MAX_EXPONENT);
    this.#logger.info("retry connecting to discovery service", {
      url: this.#endpoint + this.#cluster,
      reason: step,
      backoff: `${seconds}s`,
    });
    await this.#sleep(seconds * 1000);
    this.#signal?.throwIfAborted();
  }

  /** One request to the v2 keys API of the service; the answer decoded, or a classified failure. */
  async #request(
    method: "GET" | "PUT",
    path: string,
    query: Record<string, string>,
    opts: { value?: string; timeout?: boolean } = {},
  ): Promise<KeyResponse> {
    const q = new URLSearchParams(
      method === "GET" && query.wait === undefined
        ? { quorum: "false", recursive: "false", sorted: "false", ...query }
        : query,
    );
    const url = `${this.#endpoint}${path}?${q}`;
    const signals: AbortSignal[] = [];
    if (this.#signal) signals.push(this.#signal);
    if (opts.timeout !== false) signals.push(AbortSignal.timeout(REQUEST_TIMEOUT_MS));
    const init: RequestInit = { method, signal: signals.length > 0 ? AbortSignal.any(signals) : undefined };
    if (opts.value !== undefined) {
      init.body = new URLSearchParams({ value: opts.value }).toString();
      init.headers = { "content-type": "application/x-www-form-urlencoded" };
    }
    let res: Response;
    let text: string;
    try {
      res = await this.#fetch(url, init);
      text = await res.text();
    } catch (err) {
      this.#signal?.throwIfAborted();
      throw new Unreachable(err instanceof Error ? err.message : String(err));
    }
    if (res.status >= 500) throw new Unreachable(`${res.status} ${res.statusText}: ${text.trim()}`);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text);
    } catch {
      throw new DiscoveryError("discovery: bad discovery endpoint", "BAD_ENDPOINT");
    }
    if (typeof body.errorCode === "number") {
      throw new KeysError(body.errorCode, String(body.message ?? ""));
    }
    if (typeof body.node !== "object" || body.node === null) {
      throw new DiscoveryError("discovery: bad discovery endpoint", "BAD_ENDPOINT");
    }
    return {
      action: String(body.action ?? ""),
      node: body.node as KeyNode,
      index: Number(res.headers.get("x-etcd-index") ?? 0),
    };
  }
}

function baseName(key: string): string {
  return key.slice(key.lastIndexOf("/") + 1);
}

/** The registrations' values as one `name=url,...` string; every name once, `size` names in all. */
function nodesToCluster(nodes: KeyNode[], size: number): string {
  const text = nodes.map((n) => n.value ?? "").join(",");
  const names = new Set<string>();
  for (const pair of text.split(",")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new DiscoveryError("discovery: invalid URL", "INVALID_URL");
    try {
      new URL(pair.slice(eq + 1));
    } catch {
      throw new DiscoveryError("discovery: invalid URL", "INVALID_URL");
    }
    names.add(pair.slice(0, eq));
  }
  if (names.size !== size) throw new DiscoveryError("discovery: found duplicate name", "DUPLICATE_NAME");
  return text;
}
