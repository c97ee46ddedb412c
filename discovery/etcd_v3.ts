/**
 * v3 discovery (`--discovery-token TOKEN --discovery-endpoints URLS`, etcd 3.6): a new cluster is
 * bootstrapped through the key space of another, already running etcd cluster, reached with the v3
 * gRPC API.
 *
 * The registry of one token lives under `/_etcd/registry/<token>/`:
 *
 * - `_config/size`: the number of founding members, written by the operator beforehand
 *   (`etcdctl put /_etcd/registry/<token>/_config/size 3`);
 * - `members/<member id in hex>`: one key per member that registered, its value the member's
 *   `name=peerURL` pairs sorted and joined with commas (`infra0=http://10.0.0.1:2380`).
 *
 * Each founding member:
 *
 * 1. reads the size and the registrations, and gives up at once when `size` other members registered
 *    before it (`discovery: cluster is full`);
 * 2. registers itself, create-only: a transaction that writes its key only while the key's create
 *    revision is 0, and otherwise reads it back;
 * 3. reads the size and the registrations again, then watches `members/` from the revision after that
 *    read until `size` members have registered;
 * 4. takes the first `size` registrations, by create revision, as the initial cluster.
 *
 * Member IDs are derived with the discovery token as the cluster token (etcd's
 * `PeerURLsMapAndToken`), so the caller computes `memberId(peerUrls, token)`.
 *
 * Where this differs from etcd 3.6 on purpose:
 *
 * - etcd registers with a plain Put, which silently overwrites a key another member with the same ID
 *   wrote. Here the write is create-only: a member that finds its key already there goes on when the
 *   value is the one it would write (a restart after registering), and stops with
 *   `discovery: found duplicate id` when it is not.
 * - etcd merges two registrations that carry the same name into one member; here that is
 *   `discovery: found duplicate name`, as etcd's v2 discovery says.
 * - etcd retries an unreachable service practically forever (2^32 times, the back-off doubling from
 *   2 s up to 256 s); here the retries of one step end after `maxRetries` consecutive failures
 *   (default 8, about 8.5 minutes) with `discovery: too many retries: ...`.
 * - an authentication or permission failure ends discovery at once instead of being retried.
 *
 * What the `etcd3` client (npm, v1.1.2) cannot do, and how each flag is therefore handled:
 *
 * - `--discovery-insecure-skip-tls-verify`: etcd3 builds its TLS credentials itself and passes no
 *   verify options to grpc-js, so certificate verification cannot be turned off; the flag is refused
 *   (`UNSUPPORTED`) when a TLS endpoint is used, rather than silently verifying anyway.
 * - `--discovery-dial-timeout`: etcd3 accepts a `dialTimeout` option but never uses it, and grpc-js
 *   connects lazily. As in etcd 3.6 (whose client does not block on dialing either), the dial timeout
 *   bounds the authentication call made on the first connection; every other request is bounded by
 *   `--discovery-request-timeout`, connecting included.
 * - Endpoints mixing `http://` and `https://`: etcd3 uses one set of credentials for all hosts, so a
 *   mix is refused (`UNSUPPORTED`).
 * - A TLS endpoint given as an IP address (`https://10.0.0.1:2379`): grpc-js sends the host as TLS
 *   server name, which Deno's node:tls refuses for an IP, so the connection cannot be made; this ends
 *   discovery at once (`UNSUPPORTED`) instead of being retried. Name such an endpoint by a host name
 *   its certificate lists.
 * - `--discovery-keepalive-time` / `--discovery-keepalive-timeout` map to grpc-js's
 *   `grpc.keepalive_time_ms` / `grpc.keepalive_timeout_ms` channel options (pings only while a call is
 *   active, as etcd's client does).
 *
 * @module
 */
import type { Etcd3, IOptions } from "etcd3";
import { hexId, type LogFields, type Logger } from "../server/logger.ts";
import { DiscoveryError } from "./errors.ts";
import { BootstrapError } from "./static.ts";

export { DiscoveryError };

/** The settings of v3 discovery, one per `--discovery-*` flag (durations in milliseconds). */
export interface V3DiscoveryOptions {
  /** `--discovery-token`: names the registry, and is the cluster token member IDs are derived with. */
  token: string;
  /** `--discovery-endpoints`: `host:port`, `http://host:port` or `https://host:port`. */
  endpoints: string[];
  /** `--discovery-dial-timeout` (etcd: 2s). */
  dialTimeoutMs: number;
  /** `--discovery-request-timeout` (etcd: 5s). */
  requestTimeoutMs: number;
  /** `--discovery-keepalive-time` (etcd: 2s); 0 sends no keepalive pings. */
  keepaliveTimeMs: number;
  /** `--discovery-keepalive-timeout` (etcd: 6s). */
  keepaliveTimeoutMs: number;
  /** `--discovery-insecure-transport` (etcd: true): endpoints without a scheme use plain TCP. */
  insecureTransport: boolean;
  /** `--discovery-insecure-skip-tls-verify` (etcd: false); not supported, see the module doc. */
  insecureSkipTlsVerify: boolean;
  /** `--discovery-cert`: client certificate file. */
  certFile: string;
  /** `--discovery-key`: client key file. */
  keyFile: string;
  /** `--discovery-cacert`: CA bundle the service's certificate is verified with. */
  caFile: string;
  /** `--discovery-user`: taken as the user name as given (etcd splits no `user:password`). */
  user: string;
  /** `--discovery-password`; authentication happens only when both user and password are set. */
  password: string;
}

/** etcd's defaults for the v3 discovery flags other than the token and the endpoints. */
export const V3_DISCOVERY_DEFAULTS: Readonly<Omit<V3DiscoveryOptions, "token" | "endpoints">> = {
  dialTimeoutMs: 2000,
  requestTimeoutMs: 5000,
  keepaliveTimeMs: 2000,
  keepaliveTimeoutMs: 6000,
  insecureTransport: true,
  insecureSkipTlsVerify: false,
  certFile: "",
  keyFile: "",
  caFile: "",
  user: "",
  password: "",
};

/** The member that registers: its ID (from `memberId(peerUrls, token)`), name and advertised peer URLs. */
export interface V3DiscoverySelf {
  id: bigint;
  name: string;
  /** As etcd writes URLs: `http://10.0.0.1:2380`, no trailing slash. */
  peerUrls: string[];
}

/** What joining uses from the outside world. */
export interface V3DiscoveryDeps {
  logger: Logger;
  /** Stops a member that waits for the others (or for the service); the join rejects with its reason. */
  signal?: AbortSignal;
  /** Waits between retries; default: a timer that the signal cancels. */
  sleep?: (ms: number) => Promise<void>;
  /** Consecutive failures to reach the service before giving up (default 8). */
  maxRetries?: number;
}

/** Where etcd keeps discovery registries. */
const REGISTRY_PREFIX = "/_etcd/registry";
/** The back-off doubles from 2 s up to 2^this seconds, as etcd's. */
const MAX_EXPONENT = 8;
const DEFAULT_MAX_RETRIES = 8;

/** The registry keys of `token`, as etcd names them (`path.Join` cleaned). */
export function registryKeys(token: string): { size: string; membersPrefix: string } {
  const base = cleanPath(`${REGISTRY_PREFIX}/${token}`);
  return { size: `${base}/_config/size`, membersPrefix: `${base}/members/` };
}

/** The value a member registers: `name=url` pairs, sorted, joined with commas (etcd's URLsMap string). */
export function registrationValue(name: string, peerUrls: string[]): string {
  return peerUrls.map((u) => `${name}=${u}`).sort().join(",");
}

/**
 * Registers this member in the v3 discovery registry of `opts.token` and waits for the cluster to fill.
 * Returns the initial cluster: name -> peer URLs (as etcd writes them), names in registration order.
 *
 * Throws a {@link DiscoveryError} in etcd's words (`discovery: cluster is full`, `discovery: size key
 * not found`, `discovery: size key is bad`, `discovery: invalid peer URL`, `discovery: too many retries:
 * ...`), or the signal's reason when aborted.
 */
export async function joinClusterV3(
  opts: V3DiscoveryOptions,
  self: V3DiscoverySelf,
  deps: V3DiscoveryDeps,
): Promise<Map<string, string[]>> {
  if (opts.token === "" || opts.endpoints.length === 0 || opts.endpoints.some((e) => e.trim() === "")) {
    throw new DiscoveryError(
      "discovery: both --discovery-token and --discovery-endpoints must be set, without empty endpoints",
      "CONFIG",
    );
  }
  deps.signal?.throwIfAborted();
  const clientOptions = await buildClientOptions(opts);
  // loaded here, so that a member bootstrapping any other way never loads grpc-js
  const { Etcd3 } = await import("etcd3");
  const client = new Etcd3(clientOptions);
  const d = new V3Discovery(client, opts, self, deps);
  try {
    const cluster = await d.join();
    d.log("info", "discovery joined cluster successfully", { cluster: clusterString(cluster) });
    return cluster;
  } catch (err) {
    d.log("error", "discovery failed to join cluster", { error: err });
    throw err;
  } finally {
    client.close();
  }
}

/** One registration read from the registry. */
interface Registration {
  key: string;
  value: string;
  createRevision: bigint;
}

/** What one look at the registry found. */
interface ClusterState {
  members: Registration[];
  size: number;
  /** The revision of the read; the wait watches from the next one. */
  revision: bigint;
}

/** The service could not be reached or did not answer in time: worth retrying. */
class Transient extends Error {}

class V3Discovery {
  readonly #client: Etcd3;
  readonly #opts: V3DiscoveryOptions;
  readonly #keys: { size: string; membersPrefix: string };
  readonly #selfKey: string;
  readonly #selfValue: string;
  readonly #logger: Logger;
  readonly #signal: AbortSignal | undefined;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #maxRetries: number;
  #retries = 0;

  constructor(client: Etcd3, opts: V3DiscoveryOptions, self: V3DiscoverySelf, deps: V3DiscoveryDeps) {
    this.#client = client;
    this.#opts = opts;
    this.#keys = registryKeys(opts.token);
    this.#selfKey = this.#keys.membersPrefix + hexId(self.id);
    this.#selfValue = registrationValue(self.name, self.peerUrls);
    this.#logger = deps.logger;
    this.#signal = deps.signal;
    this.#sleep = deps.sleep ?? ((ms) => abortableSleep(ms, deps.signal));
    this.#maxRetries = deps.maxRetries ?? DEFAULT_MAX_RETRIES;
  }

  log(level: "info" | "warn" | "error", msg: string, fields: LogFields = {}): void {
    this.#logger[level](msg, {
      "discovery-token": this.#opts.token,
      "discovery-endpoints": this.#opts.endpoints.join(","),
      ...fields,
    });
  }

  async join(): Promise<Map<string, string[]>> {
    // a full cluster is refused before registering
    await this.#checkCluster();
    await this.#registerSelf();
    const state = await this.#checkCluster();
    const members = await this.#waitPeers(state);
    return toCluster(members, state.size);
  }

  /** Reads the size and the registrations; fails when `size` others registered before this member. */
  async #checkCluster(): Promise<ClusterState> {
    const state = await this.#retrying("cluster status check", () => this.#readCluster());
    for (let i = 0; i < state.members.length; i++) {
      if (state.members[i].key === this.#selfKey) break;
      if (i >= state.size - 1) throw new DiscoveryError("discovery: cluster is full", "FULL_CLUSTER");
    }
    return state;
  }

  async #readCluster(): Promise<ClusterState> {
    let sizeText: string | undefined;
    try {
      const res = await this.#call(this.#client.get(this.#keys.size).options(this.#deadline()).exec());
      sizeText = res.kvs[0]?.value.toString();
    } catch (err) {
      if (err instanceof Transient) {
        this.log("warn", "failed to get cluster size from discovery service", {
          clusterSizeKey: this.#keys.size,
          error: err,
        });
      }
      throw err;
    }
    if (sizeText === undefined) throw new DiscoveryError("discovery: size key not found", "SIZE_NOT_FOUND");
    // strconv.ParseInt(s, 10, 0) and a positive value
    const size = /^[+-]?\d+$/.test(sizeText) ? Number(sizeText) : NaN;
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new DiscoveryError("discovery: size key is bad", "BAD_SIZE");
    }
    let res;
    try {
      res = await this.#call(
        this.#client.getAll().prefix(this.#keys.membersPrefix).options(this.#deadline()).exec(),
      );
    } catch (err) {
      if (err instanceof Transient) {
        this.log("warn", "failed to get cluster members from discovery service", {
          membersKeyPrefix: this.#keys.membersPrefix,
          error: err,
        });
      }
      throw err;
    }
    const members: Registration[] = [];
    for (const kv of res.kvs) {
      this.#add(members, kv.key.toString(), kv.value.toString(), BigInt(kv.create_revision));
    }
    return { members, size, revision: BigInt(res.header.revision) };
  }

  /**
   * Adds one registration (from a read or a watch event) in create-revision order; skips, with a
   * warning, what is no registration or was seen before.
   */
  #add(members: Registration[], rawKey: string, rawValue: string, createRevision: bigint): void {
    const key = rawKey.trim();
    const value = rawValue.trim();
    let problem: string | undefined;
    if (!key.startsWith(this.#keys.membersPrefix)) problem = "invalid peer registry key";
    else if (!value.includes("=")) problem = "invalid peer info returned from discovery service";
    else if (members.some((m) => m.key === key)) problem = "found duplicate peer from discovery service";
    if (problem !== undefined) {
      this.log("warn", problem, { memberKey: key, memberInfo: value });
      return;
    }
    this.log("info", "found peer from discovery service", { memberKey: key, memberInfo: value });
    members.push({ key, value, createRevision });
    members.sort((
      a,
      b,
    ) => (a.createRevision < b.createRevision ? -1 : a.createRevision > b.createRevision ? 1 : 0));
  }

  /** Writes this member's key unless it exists; an existing key must hold what this member would write. */
  async #registerSelf(): Promise<void> {
    const existing = await this.#retrying("register member itself", async () => {
      const res = await this.#call(
        this.#client.if(this.#selfKey, "Create", "==", 0)
          .then(this.#client.put(this.#selfKey).value(this.#selfValue))
          .else(this.#client.get(this.#selfKey))
          .options(this.#deadline())
          .commit(),
      );
      if (res.succeeded) return undefined;
      return res.responses[0]?.response_range?.kvs[0]?.value.toString() ?? "";
    });
    if (existing === undefined) {
      this.log("info", "register member itself successfully", {
        memberKey: this.#selfKey,
        memberInfo: this.#selfValue,
      });
      return;
    }
    // registered before (a restart, or a retried write whose answer was lost): go on only with the
    // registration this member would make now
    if (existing.trim() !== this.#selfValue) {
      this.log("warn", "member key already registered with other peer info", {
        memberKey: this.#selfKey,
        memberInfo: existing,
        expected: this.#selfValue,
      });
      throw new DiscoveryError("discovery: found duplicate id", "DUPLICATE_ID");
    }
    this.log("info", "found own registration on discovery service", {
      memberKey: this.#selfKey,
      memberInfo: existing,
    });
  }

  /** Watches the registrations from after `state.revision` until `state.size` members registered. */
  async #waitPeers(state: ClusterState): Promise<Registration[]> {
    let { members, revision } = state;
    const size = state.size;
    while (members.length < size) {
      this.log("info", "waiting for peers from discovery service", {
        clusterSize: size,
        "found-peers": members.length,
      });
      try {
        await this.#watchUntilFull(members, size, revision);
      } catch (err) {
        if (!(err instanceof Transient)) throw err;
        // the watch was cancelled by the service (a compacted revision, say): look again
        this.log("warn", "watching peers from discovery service failed", { error: err });
        await this.#backOff("waiting for peers", err);
        const again = await this.#checkCluster();
        ({ members, revision } = again);
      }
    }
    this.log("info", "found all needed peers from discovery service", {
      clusterSize: size,
      "found-peers": members.length,
    });
    return members;
  }

  /** One watch on the members' prefix, from `revision + 1`, until `members` holds `size` entries. */
  async #watchUntilFull(members: Registration[], size: number, revision: bigint): Promise<void> {
    const watcher = this.#client.watch()
      .prefix(this.#keys.membersPrefix)
      .startRevision(String(revision + 1n))
      .only("put")
      .watcher();
    let onAbort: (() => void) | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        watcher.on("put", (kv) => {
          this.#add(members, kv.key.toString(), kv.value.toString(), BigInt(kv.create_revision));
          if (members.length >= size) resolve();
        });
        // the client reconnects a broken stream by itself; an error is a watch the server cancelled
        watcher.on("error", (err) => reject(new Transient(err.message)));
        watcher.on("disconnected", (err) => {
          this.log("warn", "lost the watch on the discovery service; reconnecting", { error: err });
        });
        if (this.#signal) {
          onAbort = () => reject(this.#signal!.reason);
          if (this.#signal.aborted) onAbort();
          else this.#signal.addEventListener("abort", onAbort, { once: true });
        }
      });
    } finally {
      if (onAbort) this.#signal!.removeEventListener("abort", onAbort);
      // an unanswered cancel must not hold up closing the client
      await withTimeout(watcher.cancel(), this.#opts.requestTimeoutMs).catch(() => {});
    }
  }

  /** Runs `op`; while it fails with a {@link Transient} error, backs off and runs it again. */
  async #retrying<T>(step: string, op: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        const result = await op();
        this.#retries = 0;
        return result;
      } catch (err) {
        if (!(err instanceof Transient)) throw err;
        await this.#backOff(step, err);
      }
    }
  }

  async #backOff(step: string, cause: Error): Promise<void> {
    if (this.#retries >= this.#maxRetries) {
      throw new DiscoveryError(
        `discovery: too many retries: the discovery service at ${this.#opts.endpoints.join(",")} could not ` +
          `be reached (${this.#retries} retries; last error: ${cause.message})`,
        "TOO_MANY_RETRIES",
      );
    }
    this.#retries++;
    const seconds = 2 ** Math.min(this.#retries, MAX_EXPONENT);
    this.log("warn", "retry connecting to discovery service", { reason: step, backoff: `${seconds}s` });
    await this.#sleep(seconds * 1000);
    this.#signal?.throwIfAborted();
  }

  #deadline(): { deadline: number } {
    return { deadline: Date.now() + this.#opts.requestTimeoutMs };
  }

  /**
   * Awaits one request, rejecting early when the signal fires (the request itself ends by its deadline
   * or when the client closes). Failures are sorted: authentication and permission errors are final,
   * anything else is {@link Transient}.
   */
  async #call<T>(request: Promise<T>): Promise<T> {
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      if (!this.#signal) return;
      onAbort = () => reject(this.#signal!.reason);
      if (this.#signal.aborted) onAbort();
      else this.#signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return await Promise.race([request, aborted]);
    } catch (err) {
      this.#signal?.throwIfAborted();
      throw classify(err);
    } finally {
      if (onAbort) this.#signal!.removeEventListener("abort", onAbort);
      request.catch(() => {}); // a request outrun by the signal fails later, unobserved
    }
  }
}

/** etcd3's errors that no retry can cure. */
const FINAL_ERRORS = new Set([
  "EtcdAuthenticationFailedError",
  "EtcdPermissionDeniedError",
  "EtcdUserNotFoundError",
  "EtcdRoleNotGrantedError",
  "GRPCUnauthenticatedError",
]);

function classify(err: unknown): Error {
  if (err instanceof DiscoveryError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  if (FINAL_ERRORS.has(e.constructor.name)) {
    return new DiscoveryError(`discovery: ${e.message}`, "AUTH");
  }
  if (/servername' must not be an IP address/.test(e.message)) {
    // grpc-js sends the endpoint's host as TLS server name, and Deno's node:tls refuses an IP there
    return new DiscoveryError(
      "discovery: TLS to a discovery endpoint given as an IP address is not supported (grpc-js under " +
        "Deno cannot send an IP as TLS server name); name the endpoint by a host name its certificate " +
        `lists: ${e.message}`,
      "UNSUPPORTED",
    );
  }
  return new Transient(e.message);
}

/** The first `size` registrations as name -> URLs, checked as etcd checks an initial cluster. */
function toCluster(members: Registration[], size: number): Map<string, string[]> {
  const cluster = new Map<string, string[]>();
  const registrations = members.slice(0, size);
  const seenUrls = new Set<string>();
  for (const r of registrations) {
    const names = new Set<string>();
    for (const pair of r.value.split(",")) {
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq);
      const url = pair.slice(eq + 1).trim();
      if (eq < 0 || !validPeerUrl(url)) {
        throw new DiscoveryError("discovery: invalid peer URL", "INVALID_URL");
      }
      if (cluster.has(name) && !names.has(name)) {
        throw new DiscoveryError("discovery: found duplicate name", "DUPLICATE_NAME");
      }
      names.add(name);
      if (seenUrls.has(url)) {
        const text = registrations.map((m) => m.value).join(",");
        throw new BootstrapError(`discovery cluster ${text} has duplicate url`);
      }
      seenUrls.add(url);
      const urls = cluster.get(name) ?? [];
      urls.push(url);
      cluster.set(name, urls);
    }
  }
  // as etcd keeps a member's URLs: sorted
  for (const urls of cluster.values()) urls.sort();
  return cluster;
}

/** A peer URL etcd accepts: http(s) with `host:port` and no path, or unix(s). */
function validPeerUrl(text: string): boolean {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return false;
  }
  if (u.protocol === "unix:" || u.protocol === "unixs:") return true;
  if (u.protocol !== "http:" && u.protocol !== "https:") return false;
  // WHATWG URL drops a default port; etcd requires one to be written
  const authority = text.slice(u.protocol.length + 2).split(/[/?#]/)[0];
  if (!/:\d*$/.test(authority)) return false;
  return u.pathname === "/" && !text.slice(u.protocol.length + 2 + authority.length).startsWith("/");
}

function clusterString(cluster: Map<string, string[]>): string {
  const pairs: string[] = [];
  for (const [name, urls] of cluster) for (const u of urls) pairs.push(`${name}=${u}`);
  return pairs.join(",");
}

/** Go's `path.Clean` for absolute paths: no empty, `.` or `..` segments, no trailing slash. */
function cleanPath(p: string): string {
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return "/" + out.join("/");
}

/** The etcd3 client options for `opts`: hosts with their scheme, TLS material, auth, keepalive, deadlines. */
async function buildClientOptions(opts: V3DiscoveryOptions): Promise<IOptions> {
  const tlsFiles = opts.certFile !== "" || opts.keyFile !== "" || opts.caFile !== "";
  // etcd's client builds a TLS config when files are given, when transport security is wanted, or
  // when verification is to be skipped; endpoints without a scheme then use TLS
  const tlsConfigured = tlsFiles || !opts.insecureTransport || opts.insecureSkipTlsVerify;
  const hosts = opts.endpoints.map((e) => {
    const ep = e.trim();
    if (/^https?:\/\//.test(ep)) return ep;
    return `${tlsConfigured ? "https" : "http"}://${ep}`;
  });
  const secure = hosts.filter((h) => h.startsWith("https://")).length;
  if (secure > 0 && secure < hosts.length) {
    throw new DiscoveryError(
      "discovery: endpoints mixing plain and TLS transport are not supported (the etcd3 client uses one " +
        `transport for all endpoints): ${hosts.join(",")}`,
      "UNSUPPORTED",
    );
  }
  const options: IOptions = {
    hosts,
    // one attempt per request, on one host: the retries and their back-off are this module's
    faultHandling: { global: ONCE as never, host: () => ONCE as never },
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + opts.requestTimeoutMs }),
  };
  if (opts.keepaliveTimeMs > 0) {
    options.grpcOptions = {
      "grpc.keepalive_time_ms": opts.keepaliveTimeMs,
      "grpc.keepalive_timeout_ms": opts.keepaliveTimeoutMs,
    };
  }
  if (opts.user !== "" && opts.password !== "") {
    options.auth = {
      username: opts.user,
      password: opts.password,
      callOptions: () => ({ deadline: Date.now() + opts.dialTimeoutMs }),
    };
  }
  if (secure > 0) {
    if (opts.insecureSkipTlsVerify) {
      throw new DiscoveryError(
        "discovery: --discovery-insecure-skip-tls-verify is not supported: the etcd3 client cannot turn " +
          "off certificate verification",
        "UNSUPPORTED",
      );
    }
    if ((opts.certFile === "") !== (opts.keyFile === "")) {
      throw new DiscoveryError(
        `discovery: KeyFile and CertFile must both be present[key: ${opts.keyFile}, cert: ${opts.certFile}]`,
        "TLS",
      );
    }
    if (tlsFiles) {
      const { Buffer } = await import("node:buffer");
      const read = async (file: string): Promise<InstanceType<typeof Buffer> | undefined> => {
        if (file === "") return undefined;
        try {
          return Buffer.from(await Deno.readFile(file));
        } catch (err) {
          throw new DiscoveryError(`discovery: open ${file}: ${(err as Error).message}`, "TLS");
        }
      };
      options.credentials = {
        // absent: grpc-js verifies against the default roots
        rootCertificate: (await read(opts.caFile)) as InstanceType<typeof Buffer>,
        privateKey: await read(opts.keyFile),
        certChain: await read(opts.certFile),
      };
    }
  }
  return options;
}

/**
 * A cockatiel-shaped policy that runs a call once (etcd3 retries on other hosts by default). `async`,
 * so that a callback throwing synchronously becomes a rejection: etcd3 reports a failed watch stream by
 * running a throwing callback through the host policy and catching the returned promise.
 */
const ONCE = {
  async execute<T>(
    fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T,
    signal?: AbortSignal,
  ): Promise<T> {
    return await fn({ signal: signal ?? new AbortController().signal });
  },
};

function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** `p`, or a rejection after `ms` milliseconds; the timer never outlives the race. */
async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
