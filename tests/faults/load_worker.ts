/**
 * The client side of a fault test, run inside the lab's hub namespace (the test's own process cannot
 * reach the hosts' addresses): one client per endpoint writes and reads a few registers and writes keys
 * it never overwrites, recording every call for the linearizability checker, until `seconds` pass or a
 * stop file appears. One watcher per endpoint watches every key written (`lab/`) from revision 1 with
 * previous values, through every fault (the client resumes it where it stopped). At the end a last put
 * marks the final revision, and the worker waits until every watcher has seen it. Prints nothing;
 * writes the history, the acknowledged keys and the watch responses as JSON to `out`.
 *
 *     deno run -A tests/faults/load_worker.ts '{"endpoints":[...],"seconds":20,"out":"/tmp/h.json","stop":"/tmp/stop"}'
 *
 * @module
 */
import { Etcd3, type IOptions } from "etcd3";
import { clientFor } from "../cluster.ts";
import { History } from "../history.ts";

interface WorkerArgs {
  endpoints: string[];
  seconds: number;
  out: string;
  stop: string;
  registers?: number;
  /**
   * The longest a watcher waits before it tries again after its stream failed (default: the client
   * library's own backoff, which grows to 30 s). Runs whose members stay down for many seconds set it,
   * so that the watchers are back soon after the members.
   */
  watchBackoffMaxMs?: number;
}

/** A backoff for etcd3's `watchBackoff`: 100 ms, doubling each failure, at most `maxMs`. */
export interface CappedBackoff {
  readonly duration: number;
  next(): CappedBackoff;
}

/** See {@link CappedBackoff}. */
export function cappedBackoff(maxMs: number, ms = 100): CappedBackoff {
  const duration = Math.min(ms, maxMs);
  return { duration, next: () => cappedBackoff(maxMs, duration * 2) };
}

/**
 * A client on one endpoint like {@link clientFor}'s (no retry of a failed call), whose watchers try again
 * at least every `watchBackoffMaxMs` after their stream failed.
 */
export function workerClient(endpoint: string, watchBackoffMaxMs?: number): Etcd3 {
  if (watchBackoffMaxMs === undefined) return clientFor([endpoint]);
  const once = {
    async execute<T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal) {
      return await fn({ signal: signal ?? new AbortController().signal });
    },
  };
  type FaultHandling = NonNullable<IOptions["faultHandling"]>;
  return new Etcd3({
    hosts: [`http://${endpoint}`],
    dialTimeout: 1000,
    faultHandling: {
      global: once as unknown as FaultHandling["global"],
      watchBackoff: cappedBackoff(watchBackoffMaxMs) as unknown as FaultHandling["watchBackoff"],
    },
  });
}

/** One event as a watcher received it (bytes as text: the keys and values written are text). */
export interface SeenEvent {
  type: "PUT" | "DELETE";
  key: string;
  value: string;
  modRevision: number;
  prev?: { value: string; modRevision: number };
}

/** What the worker writes. */
export interface WorkerResult {
  ops: History["ops"];
  /** Keys written once each whose put was acknowledged, with their values. */
  acked: Record<string, string>;
  /** Per watcher (one per endpoint), the events of each response, in the order received. */
  watches: SeenEvent[][][];
  /** The revision of the last put, which every watcher saw. */
  finalRevision: number;
  /**
   * Per watcher, what its client saw of its stream, for a failure's message: `connected <header revision>`
   * when (re)created, `disconnected <reason>`, `data <header revision> <first>-<last event revision>`.
   */
  streamLog?: string[][];
}

const CALL_TIMEOUT_MS = 2000;
const deadline = () => ({ deadline: Date.now() + CALL_TIMEOUT_MS });

function stopped(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const args = JSON.parse(Deno.args[0]) as WorkerArgs;
  const registers = args.registers ?? 3;
  const history = new History();
  const acked: Record<string, string> = {};
  const end = Date.now() + args.seconds * 1000;
  const clients = args.endpoints.map((e) => workerClient(e, args.watchBackoffMaxMs));
  const watches: SeenEvent[][][] = clients.map(() => []);
  const lastSeen = clients.map(() => 0);
  const streamLog: string[][] = clients.map(() => []);
  const note = (w: number, line: string) => {
    const log = streamLog[w];
    log.push(`${Date.now() % 100_000} ${line}`);
    if (log.length > 400) log.splice(0, log.length - 400);
  };
  const watchers = await Promise.all(clients.map(async (client, w) => {
    const watcher = await client.watch().prefix("lab/").startRevision("1").withPreviousKV().create();
    watcher.on("connected", (res) => note(w, `connected ${res.header.revision}`));
    watcher.on("disconnected", (err) => note(w, `disconnected ${String(err?.message ?? err).slice(0, 80)}`));
    watcher.on("data", (res) => {
      const events: SeenEvent[] = (res.events ?? []).map((e) => ({
        type: e.type === "Delete" ? "DELETE" : "PUT",
        key: e.kv.key.toString(),
        value: e.kv.value.toString(),
        modRevision: Number(e.kv.mod_revision),
        ...(e.prev_kv
          ? { prev: { value: e.prev_kv.value.toString(), modRevision: Number(e.prev_kv.mod_revision) } }
          : {}),
      }));
      if (events.length > 0) {
        note(
          w,
          `data ${res.header.revision} ${events[0].modRevision}-${events[events.length - 1].modRevision}`,
        );
        watches[w].push(events);
        lastSeen[w] = events[events.length - 1].modRevision;
      }
    });
    return watcher;
  }));
  await Promise.all(clients.map(async (client, w) => {
    for (let i = 0; Date.now() < end && !stopped(args.stop); i++) {
      const done = await history.mixed(client, w, i, { prefix: "lab/", registers, deadline });
      if (done !== undefined) acked[done[0]] = done[1];
      // a failed call (a cut-off member) is not retried at full speed
      if (history.ops.at(-1)?.return === undefined) await new Promise((r) => setTimeout(r, 100));
    }
  }));
  // the last write marks the end; every watcher must reach it (resuming through the faults)
  let finalRevision = 0;
  for (let attempt = 0; attempt < 20 && finalRevision === 0; attempt++) {
    try {
      const r = await clients[attempt % clients.length].put("lab/final").value("end").options(deadline());
      finalRevision = Number(r.header.revision);
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const waitUntil = Date.now() + 15_000;
  while (lastSeen.some((r) => r < finalRevision) && Date.now() < waitUntil) {
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const w of watchers) await w.cancel();
  for (const c of clients) c.close();
  const result: WorkerResult = { ops: history.ops, acked, watches, finalRevision, streamLog };
  await Deno.writeTextFile(args.out, JSON.stringify(result));
  Deno.exit(0);
}
