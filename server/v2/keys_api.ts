/**
 * The part of etcd 3.4's v2 HTTP API that etcd discovery needs, on the client port behind
 * `--enable-v2`: `/v2/keys/...` (GET with wait/waitIndex/recursive/sorted/quorum, PUT, POST, DELETE),
 * `/v2/members` (GET) and `/v2/machines`, with etcd's JSON bodies, error codes and headers.
 *
 * @module
 */
import type { HttpFallbackRequest, HttpFallbackResponse } from "../transport/grpc.ts";
import type { V2Event, V2Store } from "../../storage/v2store/store.ts";
import { V2Error } from "../../storage/v2store/errors.ts";
import { encodeV2Event, v2EventStatus } from "../../storage/v2store/go_json.ts";
import { parseKeysRequest, type V2GetRequest, type V2KeysRequest, V2RequestRejected } from "./request.ts";
import { hexId } from "../logger.ts";

/** A member as `/v2/members` lists it. */
export interface V2Member {
  id: bigint;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
}

/** What the v2 API reads and changes on its member. */
export interface V2Api {
  /** The member's copy of the store (replaced when a snapshot is installed). */
  readonly store: V2Store;
  /** Proposes a write and resolves with its event once applied on this member. */
  write(req: V2KeysRequest): Promise<V2Event>;
  /** Resolves once this member has applied everything committed before the call. */
  linearizableRead(): Promise<void>;
  clusterId: bigint;
  raftIndex(): number;
  raftTerm(): number;
  members(): V2Member[];
  now(): number;
}

const KEYS_PREFIX = "/v2/keys";

/** What etcd 3.4 adds to every v2 answer under its default `--cors` (any origin). */
const CORS: Record<string, string> = {
  "Access-Control-Allow-Headers": "accept, content-type, authorization",
  "Access-Control-Allow-Methods": "POST, GET, OPTIONS, PUT, DELETE",
  "Access-Control-Allow-Origin": "*",
};

/**
 * Answers the v2 API's paths; `undefined` for every other path, so the caller can go on with its
 * other handlers.
 */
export async function serveV2(
  api: V2Api,
  req: HttpFallbackRequest,
): Promise<HttpFallbackResponse | undefined> {
  const path = req.path.split("?")[0];
  if (path === KEYS_PREFIX || path.startsWith(KEYS_PREFIX + "/")) return await serveKeys(api, req);
  if (path === "/v2/members" || path === "/v2/members/") return serveMembers(api, req);
  if (path === "/v2/machines") return serveMachines(api, req);
  return undefined;
}

function headers(api: V2Api, etcdIndex: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...CORS,
    "Content-Type": "application/json",
    "X-Etcd-Cluster-Id": hexId(api.clusterId),
    "X-Etcd-Index": String(etcdIndex),
    "X-Raft-Index": String(api.raftIndex()),
    "X-Raft-Term": String(api.raftTerm()),
    ...extra,
  };
}

function errorResponse(api: V2Api, err: V2Error): HttpFallbackResponse {
  return {
    status: err.status,
    headers: {
      ...CORS,
      "Content-Type": "application/json",
      "X-Etcd-Cluster-Id": hexId(api.clusterId),
      "X-Etcd-Index": String(err.index),
    },
    body: err.body(),
  };
}

/** An event as etcd writes it (Go's JSON), its index in X-Etcd-Index. */
function eventResponse(
  api: V2Api,
  e: V2Event,
  etcdIndex: number,
  opts: { noValueOnSuccess?: boolean; head?: boolean } = {},
): HttpFallbackResponse {
  return {
    status: v2EventStatus(e),
    headers: headers(api, etcdIndex),
    body: opts.head ? "" : encodeV2Event(e, { noValueOnSuccess: opts.noValueOnSuccess }),
  };
}

/** What Go's HTTP server answers before etcd's handler runs: a redirect, 400, 404 or 405. */
function rejectedResponse(r: V2RequestRejected): HttpFallbackResponse {
  const h: Record<string, string> = { "Content-Type": "text/plain; charset=utf-8" };
  if (r.location !== undefined) h.Location = r.location;
  if (r.allow !== undefined) Object.assign(h, CORS, { Allow: r.allow });
  return { status: r.status, headers: h, body: r.body };
}

async function serveKeys(api: V2Api, req: HttpFallbackRequest): Promise<HttpFallbackResponse> {
  let parsed: V2KeysRequest;
  try {
    parsed = parseKeysRequest(req.method, req.path, req.headers, req.body, api.now());
  } catch (err) {
    if (err instanceof V2Error) return errorResponse(api, err);
    if (err instanceof V2RequestRejected) return rejectedResponse(err);
    throw err;
  }
  try {
    if (parsed.kind !== "get") {
      const e = await api.write(parsed);
      return eventResponse(api, e, e.etcdIndex, { noValueOnSuccess: parsed.noValueOnSuccess });
    }
    // a quorum read sees everything committed before it; then it is served from this member's copy
    if (parsed.quorum) await api.linearizableRead();
    if (parsed.wait) return await waitFor(api, parsed, req.signal);
    const e = api.store.get(parsed.key, { recursive: parsed.recursive, sorted: parsed.sorted }, api.now());
    return eventResponse(api, e, e.etcdIndex, { head: parsed.head });
  } catch (err) {
    if (err instanceof V2Error) return errorResponse(api, err);
    throw err;
  }
}

/** A long poll: the first matching event at or after waitIndex (or from now on), then the answer. */
async function waitFor(
  api: V2Api,
  r: V2GetRequest,
  signal: AbortSignal | undefined,
): Promise<HttpFallbackResponse> {
  const w = r.wait!;
  // one event per request: a stream=true watch is answered with its first event
  const watcher = api.store.watch(r.key, { recursive: w.recursive, stream: false, sinceIndex: w.sinceIndex });
  // the signal lives as long as the client's connection, which may carry many waits: the listener goes
  // with this one
  let onGone: (() => void) | undefined;
  const gone = new Promise<undefined>((resolve) => {
    if (signal === undefined) return;
    if (signal.aborted) resolve(undefined);
    onGone = () => resolve(undefined);
    signal.addEventListener("abort", onGone, { once: true });
  });
  try {
    const event = await Promise.race([watcher.next(), gone]);
    if (event === undefined) {
      // the client left or the member shuts down: nobody reads this answer
      return { status: 200, headers: headers(api, watcher.startIndex), body: "" };
    }
    // a watch answers 200 whatever the event (etcd's handleKeyWatch)
    return { ...eventResponse(api, event, watcher.startIndex, { head: r.head }), status: 200 };
  } finally {
    if (onGone) signal!.removeEventListener("abort", onGone);
    watcher.cancel();
  }
}

function serveMembers(api: V2Api, req: HttpFallbackRequest): HttpFallbackResponse {
  if (req.method !== "GET" && req.method !== "HEAD") return notAllowed(["GET", "HEAD"]);
  const members = api.members().map((m) => ({
    id: hexId(m.id),
    name: m.name,
    peerURLs: m.peerUrls,
    clientURLs: m.clientUrls,
  }));
  return {
    status: 200,
    headers: { ...CORS, "Content-Type": "application/json", "X-Etcd-Cluster-Id": hexId(api.clusterId) },
    body: JSON.stringify({ members }) + "\n",
  };
}

function serveMachines(api: V2Api, req: HttpFallbackRequest): HttpFallbackResponse {
  if (req.method !== "GET" && req.method !== "HEAD") return notAllowed(["GET", "HEAD"]);
  const urls = api.members().flatMap((m) => m.clientUrls);
  return {
    status: 200,
    headers: { ...CORS, "Content-Type": "text/plain; charset=utf-8" },
    body: urls.join(", "),
  };
}

function notAllowed(methods: string[]): HttpFallbackResponse {
  return {
    status: 405,
    headers: { ...CORS, Allow: methods.join(","), "Content-Type": "text/plain; charset=utf-8" },
    body: "Method Not Allowed\n",
  };
}
