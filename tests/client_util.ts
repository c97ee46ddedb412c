/**
 * Helpers shared by the end-to-end tests that use the etcd3 npm client: a client whose calls time out,
 * bounded waits for its promises, and compact views of watch events. Polling and sleeping are in
 * `helpers.ts`.
 *
 * @module
 */
import { Etcd3, type IKeyValue, type WatchBuilder, type Watcher } from "etcd3";
import { ctlOk, type Impl } from "./helpers.ts";

/** An etcd3 client whose unary calls give up after 10 s, so a stuck server fails the test, not hangs it. */
export function connect(endpoint: string): Etcd3 {
  return new Etcd3({
    hosts: `http://${endpoint}`,
    dialTimeout: 5000,
    defaultCallOptions: (ctx) => ctx.isStream ? {} : { deadline: Date.now() + 10_000 },
  });
}

/** Creates `builder`'s watcher, waiting at most 10 s for the server to confirm it. */
export function created(builder: WatchBuilder): Promise<Watcher> {
  return within(builder.create(), 10_000, "the server to create a watch");
}

/** `p`, or a rejection naming `what` after `timeoutMs`. */
export async function within<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The revision in the header of a `get -w json` answer: the store's current revision. */
export async function currentRevision(endpoint: string): Promise<number> {
  const j = JSON.parse(await ctlOk(endpoint, ["get", "revision-probe", "-w", "json"]));
  return j.header.revision;
}

/** Prints one line of measurements, so a run's output records them. */
export function report(impl: Impl, what: string, facts: Record<string, unknown>): void {
  console.log(`[${impl}] ${what}: ${Object.entries(facts).map(([k, v]) => `${k}=${v}`).join(" ")}`);
}

/** A watch event as [mod revision, type, key, value]. */
export type Seen = [number, string, string, string];

export function seenOf(ev: { type: string; kv: IKeyValue }): Seen {
  return [Number(ev.kv.mod_revision), ev.type, ev.kv.key.toString(), ev.kv.value.toString()];
}
