/**
 * The watch guarantees etcd states, checked on what watchers received (see load_worker.ts): each
 * watcher's stream is ordered, unique, atomic (the events of one revision in one response) and reliable
 * (no revision missing between the first and the final one when every revision writes a watched key);
 * every previous value is the key's value before; all watchers saw the same events; and replaying the
 * events gives the key space a linearizable read returns.
 *
 * @module
 */
import type { SeenEvent } from "./load_worker.ts";

/** The guarantees a watcher's stream broke, one line each (empty: none). */
export function checkWatchStream(
  responses: SeenEvent[][],
  firstRevision: number,
  finalRevision: number,
): string[] {
  const problems: string[] = [];
  let last = 0;
  const seenRevisions = new Set<number>();
  const seenKeys = new Set<string>();
  const current = new Map<string, { value: string; modRevision: number }>();
  responses.forEach((events, r) => {
    let inResponse = 0;
    for (const e of events) {
      if (e.modRevision < inResponse) {
        problems.push(`response ${r}: revision ${e.modRevision} after ${inResponse}`);
      }
      if (e.modRevision !== inResponse && seenRevisions.has(e.modRevision)) {
        problems.push(`revision ${e.modRevision} is split across responses (not atomic) or repeated`);
      }
      if (inResponse === 0 && e.modRevision <= last) {
        problems.push(`response ${r} starts at revision ${e.modRevision}, not after ${last} (not ordered)`);
      }
      const id = `${e.modRevision}/${e.key}`;
      if (seenKeys.has(id)) problems.push(`event ${id} delivered twice (not unique)`);
      seenKeys.add(id);
      const before = current.get(e.key);
      if (before === undefined && e.prev !== undefined) {
        problems.push(`event ${id} has a previous value but the key did not exist`);
      } else if (
        before !== undefined && (e.prev?.value !== before.value || e.prev?.modRevision !== before.modRevision)
      ) {
        problems.push(`event ${id}: previous ${JSON.stringify(e.prev)}, expected ${JSON.stringify(before)}`);
      }
      if (e.type === "PUT") current.set(e.key, { value: e.value, modRevision: e.modRevision });
      else current.delete(e.key);
      inResponse = e.modRevision;
    }
    for (const e of events) seenRevisions.add(e.modRevision);
    if (inResponse > 0) last = inResponse;
  });
  for (let rev = firstRevision; rev <= finalRevision; rev++) {
    if (!seenRevisions.has(rev)) {
      problems.push(`revision ${rev} never arrived (not reliable)`);
      if (problems.length > 20) break;
    }
  }
  return problems;
}

/** The key space the events build (key → value). */
export function replay(responses: SeenEvent[][]): Map<string, string> {
  const state = new Map<string, string>();
  for (const events of responses) {
    for (const e of events) {
      if (e.type === "PUT") state.set(e.key, e.value);
      else state.delete(e.key);
    }
  }
  return state;
}

/** The events of a stream, flattened, as comparable text. */
export function eventLine(responses: SeenEvent[][]): string[] {
  return responses.flat().map((e) => `${e.modRevision} ${e.type} ${e.key}=${e.value}`);
}
