import { assert, assertEquals } from "../../tests/assert.ts";
import { LeaseStore } from "../../storage/lease.ts";
import { MvccStore } from "../../storage/mvcc/store.ts";
import { V2Store } from "../../storage/v2store/store.ts";
import { captureAppState, EMPTY_CONF_STATE, restoreAppState } from "./app_state.ts";
import { Membership } from "./membership.ts";

const te = new TextEncoder();

Deno.test("a captured image comes in small chunks, old revisions included, and restores whole", async () => {
  const dir = await Deno.makeTempDir();
  const mvcc = new MvccStore({ historyFile: `${dir}/history`, historyBufferBytes: 4096 });
  const restoredDir = await Deno.makeTempDir();
  try {
    // 2 MB of values, half of them superseded: those are read back from the history file
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 1000; i++) {
        const w = mvcc.write();
        w.put(
          te.encode(`key-${String(i).padStart(4, "0")}`),
          new Uint8Array(1000).fill(round * 7 + i % 200),
          0n,
        );
        w.end();
      }
    }
    const cap = captureAppState({
      confState: EMPTY_CONF_STATE,
      membership: new Membership(1n),
      leases: new LeaseStore(),
      mvcc,
      v2store: new V2Store(),
    });
    const parts: Uint8Array[] = [];
    try {
      for (const c of cap.data.chunks()) {
        // the writer holds the thread while a chunk is made: a chunk is kept small
        assert(c.length <= 64 * 1024, `a chunk of ${c.length} bytes`);
        parts.push(c.slice());
      }
    } finally {
      cap.release();
    }
    assert(parts.length > 30, `${parts.length} chunks`);
    const image = new Uint8Array(cap.data.size);
    let at = 0;
    for (const p of parts) {
      image.set(p, at);
      at += p.length;
    }
    assertEquals(at, cap.data.size);
    const restored = restoreAppState(image, { historyFile: `${restoredDir}/history` });
    try {
      const key = te.encode("key-0123");
      assertEquals(restored.mvcc.range(key, undefined).kvs[0].value[0], 7 + 123);
      assertEquals(restored.mvcc.range(key, undefined, { revision: 1000 }).kvs[0].value[0], 123);
      assertEquals(
        restored.mvcc.range(te.encode("key-"), te.encode("key."), { countOnly: true }).count,
        1000,
      );
    } finally {
      restored.mvcc.close();
    }
  } finally {
    mvcc.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(restoredDir, { recursive: true });
  }
});
