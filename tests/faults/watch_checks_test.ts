import { assertEquals } from "../assert.ts";
import type { SeenEvent } from "./load_worker.ts";
import { checkWatchStream, eventLine, replay } from "./watch_checks.ts";

const put = (rev: number, key: string, value: string, prev?: [string, number]): SeenEvent => ({
  type: "PUT",
  key,
  value,
  modRevision: rev,
  ...(prev ? { prev: { value: prev[0], modRevision: prev[1] } } : {}),
});

Deno.test("watch checks: a good stream passes; each broken guarantee is named", () => {
  const good = [[put(2, "a", "1")], [put(3, "b", "1"), put(3, "c", "1")], [put(4, "a", "2", ["1", 2])]];
  assertEquals(checkWatchStream(good, 2, 4), []);
  assertEquals([...replay(good)], [["a", "2"], ["b", "1"], ["c", "1"]]);
  assertEquals(eventLine(good)[0], "2 PUT a=1");
  // a gap
  assertEquals(checkWatchStream([[put(2, "a", "1")], [put(4, "a", "2", ["1", 2])]], 2, 4), [
    "revision 3 never arrived (not reliable)",
  ]);
  // out of order
  assertEquals(checkWatchStream([[put(3, "b", "1")], [put(2, "a", "1")]], 2, 3), [
    "response 1 starts at revision 2, not after 3 (not ordered)",
  ]);
  // one revision split in two responses
  assertEquals(checkWatchStream([[put(2, "a", "1")], [put(2, "b", "1")]], 2, 2), [
    "revision 2 is split across responses (not atomic) or repeated",
    "response 1 starts at revision 2, not after 2 (not ordered)",
  ]);
  // a duplicate
  assertEquals(checkWatchStream([[put(2, "a", "1"), put(2, "a", "1")]], 2, 2), [
    "event 2/a delivered twice (not unique)",
    'event 2/a: previous undefined, expected {"value":"1","modRevision":2}',
  ]);
  // a wrong previous value
  assertEquals(checkWatchStream([[put(2, "a", "1")], [put(3, "a", "2", ["x", 2])]], 2, 3), [
    'event 3/a: previous {"value":"x","modRevision":2}, expected {"value":"1","modRevision":2}',
  ]);
});
