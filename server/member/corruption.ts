/**
 * etcd's corruption checks: members compare the hashes of their key spaces (HashKV) and refuse to go on
 * when two that should agree do not, as etcd 3.4 does.
 *
 * - Initial check (`--experimental-initial-corrupt-check`): before the member serves clients it asks
 *   every other member for its HashKV at its own current revision. A peer with the same compact revision
 *   but another hash fails the start with `<id> found data inconsistency with peers`; a peer that cannot
 *   be reached, is behind (future revision) or has compacted past that revision is logged and skipped.
 * - Periodic check (`--experimental-corrupt-check-time`): every interval, the leader hashes its own key
 *   space, asks the followers for their hashes at that revision, waits until it has applied everything
 *   committed (a linearizable read barrier), hashes again, and raises the CORRUPT alarm through Raft when
 *   its own two hashes differ at the same revision, when a follower is ahead of it (revision or compact
 *   revision), or when a follower with its compact revision has another hash. As in etcd 3.4.23 the alarm
 *   names member 0 ({@link CORRUPT_ALARM_MEMBER}), since it is not clear whose data is bad; the log line
 *   names the member that disagreed. While it is active, the cluster refuses writes (see `alarms.ts`).
 *
 * Members get each other's hashes over the peer port, as etcd 3.4 does: `GET /members/hashkv` with the
 * JSON body `{"revision":N}`, answered with `{"header":{"revision":R},"hash":H,"compact_revision":C}`
 * (etcd's field names, zero fields left out), or 400 with the error (`mvcc: required revision has been
 * compacted`, `... is a future revision`). The request is dialed by the peer transport, so `https://` peer
 * URLs use the member's peer TLS credentials.
 *
 * The checks themselves ({@link checkInitialHashKV}, {@link CorruptionMonitor}) see the member only
 * through {@link CorruptionCheckDeps}, so tests drive them with fakes; {@link CorruptionChecks} wires
 * them to a running {@link EtcdServer}.
 *
 * @module
 */
import { StateType } from "../../raft/types.ts";
import type { Clock } from "../clock.ts";
import type { Config } from "../config/mod.ts";
import { Errors } from "../errors.ts";
import { goDuration, hexId, type Logger } from "../logger.ts";
import type { PeerHttpHandler, PeerTransport } from "../peer/transport.ts";
import {
  AlarmAction,
  type AlarmRequest,
  AlarmType,
  encodeAlarmRequest,
  type HashKVResponse,
} from "../pb/rpc.ts";
import type { EtcdServer } from "./server.ts";

/** The peer port path of HashKV (etcd 3.4's `PeerHashKVPath`). */
export const PEER_HASHKV_PATH = "/members/hashkv";

/**
 * The member the periodic check raises the CORRUPT alarm for: 0, whichever member disagreed, as etcd
 * 3.4.23 does ("it isn't clear which member's data is corrupted"; etcd 3.5 names the member instead).
 */
export const CORRUPT_ALARM_MEMBER = 0n;

/** A member's HashKV answer. */
export interface KvHash {
  /** The hash of the key space up to the revision asked for. */
  hash: number;
  /** The member's current revision (the answer's header revision). */
  revision: number;
  /** The member's compact revision (-1 before the first compaction). */
  compactRevision: number;
}

/** Another member, as the checks need it. */
export interface CheckedPeer {
  id: bigint;
  peerUrls: string[];
}

/** What the checks need from the member; {@link CorruptionChecks} gives a running server's. */
export interface CorruptionCheckDeps {
  memberId: bigint;
  logger: Logger;
  clock: Clock;
  /** etcd's request timeout: the limit of each hash request to a peer. */
  requestTimeoutMs: number;
  /** This member's HashKV at its current revision. */
  localHash(): KvHash;
  /** The other members of the cluster (learners included). */
  peers(): CheckedPeer[];
  /**
   * Asks the member at `url` (a peer URL) for its HashKV at `revision`. Rejects with
   * `Errors.compacted()` or `Errors.futureRev()` when the peer says so, with another error otherwise.
   */
  fetchPeerHash(url: string, revision: number, timeoutMs: number): Promise<KvHash>;
  /** Whether this member leads now. */
  isLeader(): boolean;
  /** Resolves once this member has applied everything committed before the call. */
  waitApplied(): Promise<void>;
  /** Proposes the CORRUPT alarm for `memberId` through Raft; resolves once applied. */
  raiseCorruptAlarm(memberId: bigint): Promise<void>;
}

/** The initial check found a peer with the same compact revision and another hash. */
export class DataInconsistencyError extends Error {
  /** Stable error code of this class. */
  readonly code = "DATA_INCONSISTENCY";

  /** @param memberId this member's ID. */
  constructor(readonly memberId: bigint) {
    super(`${hexId(memberId)} found data inconsistency with peers`);
    this.name = "DataInconsistencyError";
  }
}

/** One peer's outcome of {@link getPeerHashes}: its answer, or the last error of its URLs. */
interface PeerHash {
  peer: CheckedPeer;
  resp?: KvHash;
  err?: Error;
}

const COMPACTED = Errors.compacted().message;
const FUTURE_REV = Errors.futureRev().message;

/**
 * Asks every other member for its hash at `revision`, each peer's URLs in turn until one answers (a
 * failure is logged as etcd does); the peers are asked at the same time. In the order of `deps.peers()`.
 */
async function getPeerHashes(deps: CorruptionCheckDeps, revision: number): Promise<PeerHash[]> {
  const ask = async (peer: CheckedPeer): Promise<PeerHash> => {
    let last: Error | undefined;
    for (const url of peer.peerUrls) {
      try {
        return { peer, resp: await deps.fetchPeerHash(url, revision, deps.requestTimeoutMs) };
      } catch (err) {
        last = err instanceof Error ? err : new Error(String(err));
        deps.logger.warn("failed hash kv request", {
          "local-member-id": hexId(deps.memberId),
          "requested-revision": revision,
          "remote-peer-endpoint": url,
          error: last.message,
        });
      }
    }
    return { peer, err: last };
  };
  return await Promise.all(deps.peers().filter((p) => p.peerUrls.length > 0).map(ask));
}

/**
 * etcd's CheckInitialHashKV: compares this member's hash at its current revision with every peer's at
 * the same revision. Throws {@link DataInconsistencyError} when a peer with the same compact revision
 * has another hash; peers that cannot answer are logged and skipped.
 */
export async function checkInitialHashKV(deps: CorruptionCheckDeps): Promise<void> {
  const { logger } = deps;
  const id = hexId(deps.memberId);
  logger.info("starting initial corruption check", {
    "local-member-id": id,
    timeout: goDuration(deps.requestTimeoutMs),
  });
  let local: KvHash;
  try {
    local = deps.localHash();
  } catch (err) {
    throw new Error(`${id} failed to fetch hash (${err instanceof Error ? err.message : String(err)})`);
  }
  const localFields = {
    "local-member-id": id,
    "local-member-revision": local.revision,
    "local-member-compact-revision": local.compactRevision,
    "local-member-hash": local.hash,
  };
  let mismatch = 0;
  for (const { peer, resp, err } of await getPeerHashes(deps, local.revision)) {
    const peerFields = { "remote-peer-id": hexId(peer.id), "remote-peer-endpoints": peer.peerUrls };
    if (resp !== undefined) {
      if (resp.hash === local.hash) continue;
      const fields = {
        ...localFields,
        ...peerFields,
        "remote-peer-revision": resp.revision,
        "remote-peer-compact-revision": resp.compactRevision,
        "remote-peer-hash": resp.hash,
      };
      if (resp.compactRevision === local.compactRevision) {
        logger.warn("found different hash values from remote peer", fields);
        mismatch++;
      } else {
        logger.warn("found different compact revision values from remote peer", fields);
      }
    } else if (err?.message === FUTURE_REV) {
      logger.warn("cannot fetch hash from slow remote peer", {
        ...localFields,
        ...peerFields,
        error: err.message,
      });
    } else if (err?.message === COMPACTED) {
      logger.warn("cannot fetch hash from remote peer; local member is behind", {
        ...localFields,
        ...peerFields,
        error: err.message,
      });
    }
  }
  if (mismatch > 0) throw new DataInconsistencyError(deps.memberId);
  logger.info("initial corruption checking passed; no corruption", { "local-member-id": id });
}

/**
 * etcd's monitorKVHash: while this member leads, runs {@link CorruptionMonitor.check} every `intervalMs`
 * (measured from the end of the previous check, so checks never overlap).
 */
export class CorruptionMonitor {
  private timer: number | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;

  /**
   * @param deps the member.
   * @param intervalMs time between two checks (`--experimental-corrupt-check-time`), > 0.
   */
  constructor(private readonly deps: CorruptionCheckDeps, private readonly intervalMs: number) {}

  /** Logs that checking is on and schedules the first check. */
  start(): void {
    if (this.stopped || this.timer !== undefined) return;
    this.deps.logger.info("enabled corruption checking", {
      "local-member-id": hexId(this.deps.memberId),
      interval: goDuration(this.intervalMs),
    });
    this.schedule();
  }

  /** Stops scheduling; a check in progress raises no alarm any more. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Resolves when no check is running (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  private schedule(): void {
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      this.running = this.tick().finally(() => {
        this.running = undefined;
        if (!this.stopped) this.schedule();
      });
    }, this.intervalMs);
  }

  private async tick(): Promise<void> {
    if (!this.deps.isLeader()) return;
    try {
      await this.check();
    } catch (err) {
      this.deps.logger.warn("failed to check hash KV", {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /**
   * etcd's checkHashKV, run by the leader: raises the CORRUPT alarm (once per check) when the leader's
   * hash changed at the same revision, when a follower is ahead of the leader, or when a follower with
   * the leader's compact revision has another hash. Throws when the leader cannot hash or cannot catch up
   * with what is committed.
   */
  async check(): Promise<void> {
    const { deps } = this;
    const { logger } = deps;
    const first = deps.localHash();
    const peers = await getPeerHashes(deps, first.revision);
    await deps.waitApplied();
    const second = deps.localHash();
    let mismatched: bigint | undefined;
    const mismatch = (id: bigint) => mismatched ??= id;
    if (
      second.hash !== first.hash && second.revision === first.revision &&
      second.compactRevision === first.compactRevision
    ) {
      logger.warn("found hash mismatch", {
        "revision-1": first.revision,
        "compact-revision-1": first.compactRevision,
        "hash-1": first.hash,
        "revision-2": second.revision,
        "compact-revision-2": second.compactRevision,
        "hash-2": second.hash,
      });
      mismatch(deps.memberId);
    }
    let checked = 0;
    for (const { peer, resp } of peers) {
      if (resp === undefined) continue;
      checked++;
      const follower = hexId(peer.id);
      // a follower's revisions cannot be ahead of the leader's once the leader applied all committed
      if (resp.revision > second.revision) {
        logger.warn("revision from follower must be less than or equal to leader's", {
          "leader-revision": second.revision,
          "follower-revision": resp.revision,
          "follower-peer-id": follower,
        });
        mismatch(peer.id);
      }
      if (resp.compactRevision > second.compactRevision) {
        logger.warn("compact revision from follower must be less than or equal to leader's", {
          "leader-compact-revision": second.compactRevision,
          "follower-compact-revision": resp.compactRevision,
          "follower-peer-id": follower,
        });
        mismatch(peer.id);
      }
      if (resp.compactRevision === first.compactRevision && resp.hash !== first.hash) {
        logger.warn("same compact revision then hashes must match", {
          "leader-compact-revision": second.compactRevision,
          "leader-hash": first.hash,
          "follower-compact-revision": resp.compactRevision,
          "follower-hash": resp.hash,
          "follower-peer-id": follower,
        });
        mismatch(peer.id);
      }
    }
    logger.info("finished peer corruption check", { "number-of-peers-checked": checked });
    if (mismatched === undefined || this.stopped) return;
    try {
      await deps.raiseCorruptAlarm(CORRUPT_ALARM_MEMBER);
    } catch (err) {
      logger.warn("failed to raise the CORRUPT alarm", {
        "mismatched-member-id": hexId(mismatched),
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
}

// ---- the peer port: serving and asking HashKV -------------------------------------------------

/** etcd's JSON of a HashKVResponse on the peer port (Go's field names; zero fields left out). */
interface HashKVJson {
  header?: { revision?: number };
  hash?: number;
  compact_revision?: number;
}

const TEXT = "text/plain; charset=utf-8";

/**
 * The peer port's `GET /members/hashkv`: the body `{"revision":N}` (0: current), answered with this
 * member's HashKV in etcd's JSON, or 400 with the error's words.
 */
export function hashKVHandler(hashKV: (revision: number) => HashKVResponse, logger: Logger): PeerHttpHandler {
  return (req) => {
    let revision: number;
    try {
      const j: unknown = JSON.parse(new TextDecoder().decode(req.body));
      const rev = typeof j === "object" && j !== null
        ? (j as { revision?: unknown }).revision ?? 0
        : undefined;
      if (typeof rev !== "number" || !Number.isSafeInteger(rev)) {
        throw new Error("revision is not an integer");
      }
      revision = rev;
    } catch (err) {
      logger.warn("failed to unmarshal request", { error: err instanceof Error ? err.message : String(err) });
      return { status: 400, body: "error unmarshalling request\n", contentType: TEXT };
    }
    let r: HashKVResponse;
    try {
      r = hashKV(revision);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      logger.warn("failed to get hashKV", { "requested-revision": revision, error: message });
      return { status: 400, body: `${message}\n`, contentType: TEXT };
    }
    const j: HashKVJson = { header: r.header.revision === 0 ? {} : { revision: r.header.revision } };
    if (r.hash !== 0) j.hash = r.hash;
    if (r.compactRevision !== 0) j.compact_revision = r.compactRevision;
    return { status: 200, body: JSON.stringify(j) };
  };
}

/** Asks the member at `url` for its HashKV at `revision` over the peer port (etcd's getPeerHashKVHTTP). */
export async function fetchPeerHashKV(
  transport: PeerTransport,
  url: string,
  revision: number,
  timeoutMs: number,
): Promise<KvHash> {
  const a = await transport.request(url, PEER_HASHKV_PATH, { body: JSON.stringify({ revision }), timeoutMs });
  if (a.status === 400) {
    if (a.body.includes(COMPACTED.replace("etcdserver: ", ""))) throw Errors.compacted();
    if (a.body.includes(FUTURE_REV.replace("etcdserver: ", ""))) throw Errors.futureRev();
  }
  if (a.status !== 200) throw new Error(`unknown error: ${a.body.trim()}`);
  const j = JSON.parse(a.body) as HashKVJson;
  return { hash: j.hash ?? 0, revision: j.header?.revision ?? 0, compactRevision: j.compact_revision ?? 0 };
}

// ---- wiring to a running member ---------------------------------------------------------------

/** The checks' view of a running member: its hashes, its peers over the peer port, its alarm proposal. */
export function serverCheckDeps(server: EtcdServer, logger: Logger): CorruptionCheckDeps {
  return {
    memberId: server.memberId,
    logger,
    clock: server.clock,
    requestTimeoutMs: server.requestTimeoutMs,
    localHash: () => {
      const r = server.hashKV(0);
      return { hash: r.hash, revision: r.header.revision, compactRevision: r.compactRevision };
    },
    peers: () => server.memberList().filter((m) => m.id !== server.memberId),
    fetchPeerHash: (url, revision, timeoutMs) => fetchPeerHashKV(server.peers, url, revision, timeoutMs),
    isLeader: () => server.driver.state === StateType.Leader,
    waitApplied: () => server.linearizableReadNotify(),
    raiseCorruptAlarm: async (memberId) => {
      const r: AlarmRequest = { action: AlarmAction.ACTIVATE, memberID: memberId, alarm: AlarmType.CORRUPT };
      await server.alarm(r, encodeAlarmRequest(r));
    },
  };
}

/**
 * A member's corruption checks, as `startEtcd` runs them: constructing it serves `/members/hashkv` on the
 * peer port (always, as etcd does, so that other members can check against this one);
 * {@link initialCheck} and {@link start} do what the flags ask.
 */
export class CorruptionChecks {
  private readonly deps: CorruptionCheckDeps;
  private monitor: CorruptionMonitor | undefined;

  /**
   * @param server the running member (its peer transport gets the handler).
   * @param config `experimentalInitialCorruptCheck` and `experimentalCorruptCheckTimeMs` are read.
   * @param logger where the checks log.
   */
  constructor(server: EtcdServer, private readonly config: Config, logger: Logger) {
    this.deps = serverCheckDeps(server, logger);
    server.peers.handle(PEER_HASHKV_PATH, hashKVHandler((rev) => server.hashKV(rev), logger));
  }

  /**
   * With `--experimental-initial-corrupt-check`, {@link checkInitialHashKV}: throws
   * {@link DataInconsistencyError} when a peer disagrees. Does nothing without it.
   */
  async initialCheck(): Promise<void> {
    if (this.config.experimentalInitialCorruptCheck) await checkInitialHashKV(this.deps);
  }

  /** With `--experimental-corrupt-check-time` above 0, starts the leader's periodic check. */
  start(): void {
    if (this.config.experimentalCorruptCheckTimeMs <= 0 || this.monitor !== undefined) return;
    this.monitor = new CorruptionMonitor(this.deps, this.config.experimentalCorruptCheckTimeMs);
    this.monitor.start();
  }

  /** Stops the periodic check. */
  stop(): void {
    this.monitor?.stop();
  }
}
