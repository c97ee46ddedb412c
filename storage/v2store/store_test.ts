/**
 * Tests of the v2 store against etcd 3.4.23's behaviour. Strings marked "etcd:" were produced by the real
 * etcd (`curl` on `/v2/keys`) for the same sequence of operations; our indexes start at 0 where that
 * etcd's started at 3, so its numbers are shifted by 3 where noted.
 */
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { V2Error } from "./errors.ts";
import { encodeV2Event, formatRfc3339Nano, goJsonString, v2EventStatus } from "./go_json.ts";
import { goPathClean } from "./path.ts";
import { type V2Event, V2Store, V2StoreImageError } from "./store.ts";

const T0 = Date.UTC(2026, 11, 4, 20, 27, 50, 0);
const P = { recursive: false, sorted: false };

function v2err(fn: () => unknown): V2Error {
  return assertThrows(fn, V2Error);
}

function body(ev: V2Event): string {
  return encodeV2Event(ev).trimEnd();
}

function put(s: V2Store, key: string, value: string, now = T0): V2Event {
  return s.set(key, { dir: false, value }, now);
}

/**
 * Resolves with what `p` resolved to, or "pending" if it has not after a few microtasks. (A watcher's
 * `next()` promise still takes the next event after "pending": keep and await it.)
 */
async function peek(p: Promise<V2Event | undefined>): Promise<V2Event | undefined | "pending"> {
  const tick = new Promise<"pending">((r) => queueMicrotask(() => queueMicrotask(() => r("pending"))));
  return await Promise.race([p, tick]);
}

Deno.test("v2 errors are etcd's bytes", async (t) => {
  await t.step("key not found", () => {
    const e = v2err(() => new V2Store().get("/nokey", P, T0));
    assertEquals(e.body(), `{"errorCode":100,"message":"Key not found","cause":"/nokey","index":0}\n`);
    assertEquals(e.status, 404);
    assertEquals(e.code, "V2");
    assertEquals(e.toJSON(), { errorCode: 100, message: "Key not found", cause: "/nokey", index: 0 });
  });
  await t.step("statuses and messages", () => {
    const cases: [number, number, string][] = [
      [101, 412, "Compare failed"],
      [102, 403, "Not a file"],
      [104, 400, "Not a directory"],
      [105, 412, "Key already exists"],
      [107, 400, "Root is read only"],
      [108, 403, "Directory not empty"],
      [200, 400, "Value is Required in POST form"],
      [201, 400, "PrevValue is Required in POST form"],
      [202, 400, "The given TTL in POST form is not a number"],
      [203, 400, "The given index in POST form is not a number"],
      [209, 400, "Invalid field"],
      [210, 400, "Invalid POST form"],
      [211, 400, "Value provided on refresh"],
      [212, 400, "A TTL must be provided on refresh"],
      [300, 500, "Raft Internal Error"],
      [301, 500, "During Leader Election"],
      [400, 400, "watcher is cleared due to etcd recovery"],
      [401, 400, "The event in requested index is outdated and cleared"],
    ];
    for (const [code, status, message] of cases) {
      const e = new V2Error(code, "x", 3);
      assertEquals([e.status, e.message], [status, message], String(code));
    }
  });
  await t.step("cause with quotes; empty cause left out", () => {
    // etcd: GET /v2/keys/?recursive=foo
    assertEquals(
      new V2Error(209, `invalid value for "recursive"`).body(),
      `{"errorCode":209,"message":"Invalid field","cause":"invalid value for \\"recursive\\"","index":0}\n`,
    );
    // etcd: DELETE /v2/keys/?prevValue=x
    const s = new V2Store();
    for (let i = 0; i < 1046; i++) s.create("/q", { dir: false, value: "", unique: true }, T0);
    const e = v2err(() => s.compareAndDelete("/", "x", undefined, T0));
    assertEquals(e.body(), `{"errorCode":102,"message":"Not a file","index":1046}\n`);
    assertEquals(e.toJSON(), { errorCode: 102, message: "Not a file", index: 1046 });
  });
});

Deno.test("v2 JSON encoding is Go's", async (t) => {
  await t.step("strings", () => {
    // etcd: PUT value=<a&b>"\ é 𝄞 \x01 \x08 \x0c \t \n U+2028
    assertEquals(
      goJsonString('<a&b>"\\ é 𝄞\x01\x08\x0c\t\n\u2028'),
      String.raw`"\u003ca\u0026b\u003e\"\\ é 𝄞\u0001\u0008\u000c\t\n\u2028"`,
    );
    assertEquals(goJsonString("\ud800x"), String.raw`"\ufffdx"`);
  });
  await t.step("times", () => {
    assertEquals(formatRfc3339Nano(T0), "2026-12-04T20:27:50Z");
    assertEquals(formatRfc3339Nano(T0 + 120), "2026-12-04T20:27:50.12Z");
    assertEquals(formatRfc3339Nano(T0 + 1.5), "2026-12-04T20:27:50.0015Z");
  });
  await t.step("path.Clean", () => {
    assertEquals(goPathClean("/a//b/./c/../d/"), "/a/b/d");
    assertEquals(goPathClean("/../.."), "/");
    assertEquals(goPathClean(""), ".");
    assertEquals(goPathClean("a/../../b"), "../b");
  });
});

Deno.test("v2 store: keys, directories and errors", async (t) => {
  const s = new V2Store();
  await t.step("set creates parents with the same index", () => {
    const ev = put(s, "a/b/./c", "1");
    // etcd (index 4): {"action":"set","node":{"key":"/a/b/c","value":"1","modifiedIndex":4,"createdIndex":4}}
    assertEquals(
      body(ev),
      `{"action":"set","node":{"key":"/a/b/c","value":"1","modifiedIndex":1,"createdIndex":1}}`,
    );
    assertEquals(v2EventStatus(ev), 201);
    assertEquals(ev.etcdIndex, 1);
    assertEquals(s.index, 1);
  });
  await t.step("get one level and recursive", () => {
    assertEquals(
      body(s.get("/a", P, T0)),
      `{"action":"get","node":{"key":"/a","dir":true,"nodes":[{"key":"/a/b","dir":true,"modifiedIndex":1,"createdIndex":1}],"modifiedIndex":1,"createdIndex":1}}`,
    );
    assertEquals(
      body(s.get("/a", { recursive: true, sorted: false }, T0)),
      `{"action":"get","node":{"key":"/a","dir":true,"nodes":[{"key":"/a/b","dir":true,"nodes":[{"key":"/a/b/c","value":"1","modifiedIndex":1,"createdIndex":1}],"modifiedIndex":1,"createdIndex":1}],"modifiedIndex":1,"createdIndex":1}}`,
    );
    assertEquals(s.index, 1);
  });
  await t.step("104 Not a directory names the file in the way", () => {
    // etcd: {"errorCode":104,"message":"Not a directory","cause":"/a/b/c","index":4}
    assertEquals(v2err(() => s.get("/a/b/c/d", P, T0)).toJSON(), {
      errorCode: 104,
      message: "Not a directory",
      cause: "/a/b/c",
      index: 1,
    });
    assertEquals(v2err(() => put(s, "/a/b/c/d", "2")).toJSON().cause, "/a/b/c");
    assertEquals(
      v2err(() => s.create("/a/b/c/d/e", { dir: false, value: "", unique: false }, T0)).errorCode,
      104,
    );
  });
  await t.step("102 Not a file: set over a directory", () => {
    const e = v2err(() => put(s, "/a/b", "2"));
    assertEquals([e.errorCode, e.cause, e.status], [102, "/a/b", 403]);
    assertEquals(v2err(() => s.set("/a/b", { dir: true, value: "" }, T0)).errorCode, 102);
  });
  await t.step("set over a file gives prevNode", () => {
    const ev = put(s, "/a/b/c", "3");
    assertEquals(
      body(ev),
      `{"action":"set","node":{"key":"/a/b/c","value":"3","modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/a/b/c","value":"1","modifiedIndex":1,"createdIndex":1}}`,
    );
    assertEquals(v2EventStatus(ev), 200);
  });
  await t.step("compareAndSwap failures carry etcd's cause", () => {
    assertEquals(
      v2err(() => s.compareAndSwap("/a/b/c", "9", undefined, { value: "4" }, T0)).cause,
      "[9 != 3]",
    );
    assertEquals(v2err(() => s.compareAndSwap("/a/b/c", undefined, 9, { value: "4" }, T0)).cause, "[9 != 2]");
    const e = v2err(() => s.compareAndSwap("/a/b/c", "8", 9, { value: "4" }, T0));
    assertEquals(
      e.body(),
      `{"errorCode":101,"message":"Compare failed","cause":"[8 != 3] [9 != 2]","index":2}\n`,
    );
    assertEquals(e.status, 412);
    assertEquals(s.index, 2);
  });
  await t.step("compareAndSwap success", () => {
    assertEquals(
      body(s.compareAndSwap("/a/b/c", "3", 2, { value: "4" }, T0)),
      `{"action":"compareAndSwap","node":{"key":"/a/b/c","value":"4","modifiedIndex":3,"createdIndex":2},"prevNode":{"key":"/a/b/c","value":"3","modifiedIndex":2,"createdIndex":2}}`,
    );
  });
  await t.step("compare on a directory, delete of a directory", () => {
    assertEquals(v2err(() => s.compareAndSwap("/a/b", "3", undefined, { value: "4" }, T0)).errorCode, 102);
    assertEquals(v2err(() => s.compareAndDelete("/a/b", "3", undefined, T0)).errorCode, 102);
    assertEquals(v2err(() => s.delete("/a/b", { dir: false, recursive: false }, T0)).errorCode, 102);
    const e = v2err(() => s.delete("/a/b", { dir: true, recursive: false }, T0));
    assertEquals(e.body(), `{"errorCode":108,"message":"Directory not empty","cause":"/a/b","index":3}\n`);
    assertEquals(s.index, 3);
  });
  await t.step("the root is read-only", () => {
    for (
      const f of [
        () => put(s, "/", "1"),
        () => put(s, "", "1"),
        () => s.delete("/", { dir: true, recursive: true }, T0),
        () => s.update("/", {}, T0),
        () => s.compareAndSwap("/", "x", undefined, { value: "" }, T0),
        () => s.create("/..", { dir: true, value: "", unique: false }, T0),
      ]
    ) {
      assertEquals(
        v2err(f).body(),
        `{"errorCode":107,"message":"Root is read only","cause":"/","index":3}\n`,
      );
    }
  });
  await t.step("hidden keys are not listed but can be read", () => {
    put(s, "/_hid", "h");
    put(s, "/a/_hid", "h");
    s.set("/emptydir", { dir: true, value: "ignored" }, T0);
    assertEquals(
      body(s.get("/", { recursive: true, sorted: true }, T0)),
      `{"action":"get","node":{"dir":true,"nodes":[{"key":"/a","dir":true,"nodes":[{"key":"/a/b","dir":true,"nodes":[{"key":"/a/b/c","value":"4","modifiedIndex":3,"createdIndex":2}],"modifiedIndex":1,"createdIndex":1}],"modifiedIndex":1,"createdIndex":1},{"key":"/emptydir","dir":true,"modifiedIndex":6,"createdIndex":6}]}}`,
    );
    assertEquals(
      body(s.get("/_hid", P, T0)),
      `{"action":"get","node":{"key":"/_hid","value":"h","modifiedIndex":4,"createdIndex":4}}`,
    );
  });
  await t.step("an empty directory has no nodes", () => {
    // etcd: {"action":"get","node":{"key":"/emptydir","dir":true,"modifiedIndex":9,"createdIndex":9}}
    const ev = s.get("/emptydir", P, T0);
    assertEquals(ev.node, { key: "/emptydir", dir: true, modifiedIndex: 6, createdIndex: 6 });
    assertEquals(new V2Store().get("/", P, T0).node, {
      key: "/",
      dir: true,
      modifiedIndex: 0,
      createdIndex: 0,
    });
    assertEquals(body(new V2Store().get("/", P, T0)), `{"action":"get","node":{"dir":true}}`);
  });
  await t.step("sorted sorts by key at every level", () => {
    const s2 = new V2Store();
    for (const k of ["/d/z", "/d/b", "/d/m/2", "/d/m/1", "/d/a"]) put(s2, k, "");
    const keys = (n: { key: string; nodes?: unknown[] }): unknown =>
      n.nodes ? [n.key, (n.nodes as { key: string }[]).map((c) => keys(c))] : n.key;
    assertEquals(keys(s2.get("/d", { recursive: true, sorted: true }, T0).node), [
      "/d",
      ["/d/a", "/d/b", ["/d/m", ["/d/m/1", "/d/m/2"]], "/d/z"],
    ]);
    assertEquals(keys(s2.get("/d", { recursive: false, sorted: false }, T0).node), [
      "/d",
      ["/d/z", "/d/b", "/d/m", "/d/a"],
    ]);
  });
  await t.step("create: 105 when present, in-order keys under POST", () => {
    const s2 = new V2Store();
    s2.set("/d1", { dir: true, value: "xyz" }, T0);
    const e = v2err(() => s2.create("/d1", { dir: false, value: "x", unique: false }, T0));
    assertEquals(e.body(), `{"errorCode":105,"message":"Key already exists","cause":"/d1","index":1}\n`);
    const a = s2.create("/q", { dir: false, value: "j1", unique: true }, T0);
    assertEquals(
      body(a),
      `{"action":"create","node":{"key":"/q/00000000000000000002","value":"j1","modifiedIndex":2,"createdIndex":2}}`,
    );
    assertEquals(v2EventStatus(a), 201);
    assertEquals(
      s2.create("/", { dir: false, value: "r", unique: true }, T0).node.key,
      "/00000000000000000003",
    );
    assertEquals(s2.get("/q", P, T0).node.createdIndex, 2);
  });
  await t.step("update: files and directories", () => {
    const s2 = new V2Store();
    assertEquals(v2err(() => s2.update("/nokey", { value: "1" }, T0)).errorCode, 100);
    s2.create("/k5", { dir: false, value: "1", unique: false }, T0);
    const ev = s2.update("/k5", { value: "2", expireAt: T0 + 30_000 }, T0);
    assertEquals(
      body(ev),
      `{"action":"update","node":{"key":"/k5","value":"2","expiration":"2026-12-04T20:28:20Z","ttl":30,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k5","value":"1","modifiedIndex":1,"createdIndex":1}}`,
    );
    // an update without a TTL makes the key permanent again
    const ev2 = s2.update("/k5", { value: "3" }, T0 + 1000);
    assertEquals(ev2.node, { key: "/k5", value: "3", modifiedIndex: 3, createdIndex: 1 });
    assertEquals(ev2.prevNode?.ttl, 29);
    assertEquals(s2.hasTtlKeys(), false);
    s2.set("/d1", { dir: true, value: "" }, T0);
    assertEquals(v2err(() => s2.update("/d1", { value: "xyz" }, T0)).errorCode, 102);
    // etcd: the event says modifiedIndex 16 but the directory keeps 15 (its Write fails silently)
    assertEquals(
      body(s2.update("/d1", { expireAt: T0 + 50_000 }, T0)),
      `{"action":"update","node":{"key":"/d1","dir":true,"expiration":"2026-12-04T20:28:40Z","ttl":50,"modifiedIndex":5,"createdIndex":4},"prevNode":{"key":"/d1","dir":true,"modifiedIndex":4,"createdIndex":4}}`,
    );
    assertEquals(
      body(s2.delete("/d1", { dir: true, recursive: false }, T0)),
      `{"action":"delete","node":{"key":"/d1","dir":true,"modifiedIndex":6,"createdIndex":4},"prevNode":{"key":"/d1","dir":true,"expiration":"2026-12-04T20:28:40Z","ttl":50,"modifiedIndex":4,"createdIndex":4}}`,
    );
  });
  await t.step("delete and compareAndDelete events", () => {
    const s2 = new V2Store();
    s2.create("/q", { dir: false, value: "j1", unique: true }, T0);
    assertEquals(
      body(s2.delete("/q", { dir: false, recursive: true }, T0)),
      `{"action":"delete","node":{"key":"/q","dir":true,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/q","dir":true,"modifiedIndex":1,"createdIndex":1}}`,
    );
    put(s2, "/k", "3");
    assertEquals(v2err(() => s2.compareAndDelete("/k", undefined, 1, T0)).cause, "[1 != 3]");
    assertEquals(
      body(s2.compareAndDelete("/k", "3", undefined, T0)),
      `{"action":"compareAndDelete","node":{"key":"/k","modifiedIndex":4,"createdIndex":3},"prevNode":{"key":"/k","value":"3","modifiedIndex":3,"createdIndex":3}}`,
    );
    put(s2, "/e1", "b");
    assertEquals(
      body(s2.delete("/e1", { dir: false, recursive: false }, T0)),
      `{"action":"delete","node":{"key":"/e1","modifiedIndex":6,"createdIndex":5},"prevNode":{"key":"/e1","value":"b","modifiedIndex":5,"createdIndex":5}}`,
    );
    assertEquals(v2err(() => s2.delete("/nokey", { dir: false, recursive: false }, T0)).toJSON(), {
      errorCode: 100,
      message: "Key not found",
      cause: "/nokey",
      index: 6,
    });
    assertEquals(s2.index, 6);
  });
  await t.step("events are frozen", () => {
    const ev = put(new V2Store(), "/x", "1");
    assert(Object.isFrozen(ev) && Object.isFrozen(ev.node));
  });
});

Deno.test("v2 store: TTLs", async (t) => {
  await t.step("ttl is the remaining seconds rounded up", () => {
    const s = new V2Store();
    const ev = s.set("/t1", { dir: false, value: "1", expireAt: T0 + 100_000 }, T0 + 30);
    assertEquals(ev.node.ttl, 100);
    assertEquals(ev.node.expiration, "2026-12-04T20:29:30Z");
    assertEquals(s.get("/t1", P, T0 + 1_000).node.ttl, 99);
    assertEquals(s.get("/t1", P, T0 + 99_999).node.ttl, 1);
    assertEquals(s.get("/t1", P, T0 + 100_000).node.ttl, undefined); // 0: omitted
    assertEquals(s.get("/t1", P, T0 + 101_500).node.ttl, -1); // not yet swept
    assertEquals(s.get("/t1", P, T0).node.expiration, "2026-12-04T20:29:30Z");
    assertEquals(put(s, "/p", "x").node.expiration, undefined);
    assert(s.hasTtlKeys());
    assertEquals(s.nextExpiry(), T0 + 100_000);
  });
  await t.step("refresh keeps the value, replaces the node and notifies nobody", async () => {
    const s = new V2Store();
    s.set("/t1", { dir: false, value: "1", expireAt: T0 + 100_000 }, T0);
    const w = s.watch("/t1", { recursive: false, stream: true });
    const ev = s.set("/t1", { dir: false, value: "", expireAt: T0 + 200_000, refresh: true }, T0);
    // etcd: the refreshing set keeps the value and gives the node a new createdIndex
    assertEquals(
      body(ev),
      `{"action":"set","node":{"key":"/t1","value":"1","expiration":"2026-12-04T20:31:10Z","ttl":200,"modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/t1","value":"1","expiration":"2026-12-04T20:29:30Z","ttl":100,"modifiedIndex":1,"createdIndex":1}}`,
    );
    s.update("/t1", { expireAt: T0 + 300_000, refresh: true }, T0);
    s.compareAndSwap("/t1", "1", undefined, { value: "", expireAt: T0 + 400_000, refresh: true }, T0);
    assertEquals(s.get("/t1", P, T0).node.value, "1");
    assertEquals(s.index, 4);
    assertEquals(await peek(w.next()), "pending");
    // history scans skip refreshes too
    assertEquals(
      await peek(s.watch("/t1", { recursive: false, stream: false, sinceIndex: 2 }).next()),
      "pending",
    );
    assertEquals(
      v2err(() => s.set("/nokey", { dir: false, value: "", expireAt: T0, refresh: true }, T0)).errorCode,
      100,
    );
    w.cancel();
    assertEquals(await w.next(), undefined);
  });
  await t.step("set replaces the TTL; an expireAt before 2000 is permanent", () => {
    const s = new V2Store();
    s.set("/a", { dir: false, value: "1", expireAt: T0 + 5_000 }, T0);
    s.set("/a", { dir: false, value: "2" }, T0);
    assertEquals(s.hasTtlKeys(), false);
    s.set("/b", { dir: false, value: "1", expireAt: 1000 }, T0);
    assertEquals(s.get("/b", P, T0).node.expiration, undefined);
    assertEquals(s.deleteExpired(T0 + 1e9), []);
  });
  await t.step("expire: events, prevNode, directories take their children", async () => {
    const s = new V2Store();
    s.set("/ex", { dir: false, value: "v", expireAt: T0 + 2_000 }, T0);
    s.set("/exd", { dir: true, value: "", expireAt: T0 + 2_000 }, T0);
    s.set("/exd/c", { dir: false, value: "z", expireAt: T0 + 2_000 }, T0);
    s.set("/later", { dir: false, value: "z", expireAt: T0 + 9_000 }, T0);
    const wc = s.watch("/exd/c", { recursive: false, stream: false });
    const wx = s.watch("/ex", { recursive: false, stream: true });
    assertEquals(s.deleteExpired(T0 + 1_999), []);
    const evs = s.deleteExpired(T0 + 2_300);
    assertEquals(evs.map(body), [
      `{"action":"expire","node":{"key":"/ex","modifiedIndex":5,"createdIndex":1},"prevNode":{"key":"/ex","value":"v","expiration":"2026-12-04T20:27:52Z","modifiedIndex":1,"createdIndex":1}}`,
      `{"action":"expire","node":{"key":"/exd","dir":true,"modifiedIndex":6,"createdIndex":2},"prevNode":{"key":"/exd","dir":true,"expiration":"2026-12-04T20:27:52Z","modifiedIndex":2,"createdIndex":2}}`,
    ]);
    assertEquals(s.index, 6);
    assertEquals(v2err(() => s.get("/exd/c", P, T0)).errorCode, 100);
    assertEquals((await wc.next())?.node.key, "/exd");
    // etcd: a stream watcher at an expired file hears the event twice
    assertEquals((await wx.next())?.action, "expire");
    assertEquals((await wx.next())?.node.modifiedIndex, 5);
    assertEquals(s.nextExpiry(), T0 + 9_000);
    wx.cancel();
  });
});

Deno.test("v2 store: watches", async (t) => {
  await t.step("the deck of watchers around a directory delete (as etcd printed it)", async () => {
    const s = new V2Store();
    put(s, "/w/x", "1");
    const w1 = s.watch("/w/x", { recursive: false, stream: true });
    const w2 = s.watch("/w", { recursive: true, stream: true });
    const w3 = s.watch("/w", { recursive: false, stream: true });
    const w4 = s.watch("/w/_h", { recursive: false, stream: true });
    const w5 = s.watch("/w/_h/y", { recursive: false, stream: true });
    const w6 = s.watch("/wx", { recursive: false, stream: true });
    assertEquals(w1.startIndex, 1);
    put(s, "/w/_h/y", "2");
    put(s, "/w/x", "3");
    s.delete("/w", { dir: true, recursive: true }, T0);
    const drain = async (w: { next(): Promise<V2Event | undefined>; cancel(): void }) => {
      const out: string[] = [];
      for (;;) {
        const e = await peek(w.next());
        if (e === "pending" || e === undefined) break;
        out.push(`${e.action} ${e.node.key} ${e.node.modifiedIndex}`);
      }
      w.cancel();
      return out;
    };
    assertEquals(await drain(w1), ["set /w/x 3", "delete /w 4"]);
    assertEquals(await drain(w2), ["set /w/x 3", "delete /w 4", "delete /w 4"]);
    assertEquals(await drain(w3), ["delete /w 4", "delete /w 4"]);
    assertEquals(await drain(w4), ["delete /w 4"]);
    assertEquals(await drain(w5), ["set /w/_h/y 2", "delete /w 4"]);
    assertEquals(await drain(w6), []);
    assertEquals(s.watcherCount(), 0);
  });
  await t.step("a recursive watcher of the root skips hidden keys", async () => {
    const s = new V2Store();
    const w = s.watch("/", { recursive: true, stream: false });
    put(s, "/_x/y", "1");
    put(s, "/a/_b", "1");
    const p = w.next();
    assertEquals(await peek(p), "pending");
    put(s, "/a/c", "1");
    assertEquals((await p)?.node.key, "/a/c");
    assertEquals(await w.next(), undefined); // non-stream: done
    assertEquals(s.watcherCount(), 0);
  });
  await t.step("a watcher at a hidden key hears it", async () => {
    const s = new V2Store();
    const w = s.watch("/_x", { recursive: false, stream: false });
    put(s, "/_x", "1");
    assertEquals((await w.next())?.etcdIndex, 1);
  });
  await t.step("waitIndex from history, and 401 past it", async () => {
    const s = new V2Store();
    put(s, "/foo", "0");
    for (let i = 1; i <= 1029; i++) put(s, "/many", String(i));
    assertEquals(s.index, 1030);
    // etcd: {"errorCode":401,...,"cause":"the requested history has been cleared [31/5]","index":1030}
    const e = v2err(() => s.watch("/foo", { recursive: false, stream: false, sinceIndex: 5 }));
    assertEquals(
      e.body(),
      `{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [31/5]","index":1030}\n`,
    );
    const w = s.watch("/many", { recursive: false, stream: false, sinceIndex: 40 });
    assertEquals(w.startIndex, 1030);
    const ev = await w.next();
    assertEquals(ev?.node, { key: "/many", value: "39", modifiedIndex: 40, createdIndex: 40 });
    assertEquals(ev?.prevNode?.modifiedIndex, 39);
    assertEquals(ev?.etcdIndex, 1030); // from history: the index at the watch
    const r = await s.watch("/", { recursive: true, stream: false, sinceIndex: 40 }).next();
    assertEquals(r?.node.modifiedIndex, 40);
    // a stream answered from history gets one event and then waits (etcd's stream stays silent)
    const st = s.watch("/many", { recursive: false, stream: true, sinceIndex: 1000 });
    assertEquals((await st.next())?.node.modifiedIndex, 1000);
    assertEquals(await peek(st.next()), "pending");
    st.cancel();
    // a future index waits for a live event
    const f = s.watch("/many", { recursive: false, stream: false, sinceIndex: 1032 });
    put(s, "/many", "x");
    const p = f.next();
    assertEquals(await peek(p), "pending");
    put(s, "/many", "y");
    assertEquals((await p)?.node.value, "y");
  });
  await t.step("deleting a directory reaches history watchers of keys below it", async () => {
    const s = new V2Store();
    put(s, "/d/k", "1");
    s.delete("/d", { dir: true, recursive: true }, T0);
    const ev = await s.watch("/d/k/deeper", { recursive: false, stream: false, sinceIndex: 2 }).next();
    assertEquals(ev?.action, "delete");
  });
  await t.step("a stream that falls 100 events behind is dropped", async () => {
    const s = new V2Store();
    const w = s.watch("/k", { recursive: false, stream: true });
    for (let i = 0; i < 101; i++) put(s, "/k", String(i));
    assertEquals(s.watcherCount(), 0);
    let n = 0;
    while ((await w.next()) !== undefined) n++;
    assertEquals(n, 100);
  });
  await t.step("cancel resolves a pending next", async () => {
    const s = new V2Store();
    const w = s.watch("/k", { recursive: false, stream: false });
    const p = w.next();
    w.cancel();
    assertEquals(await p, undefined);
    assertEquals(s.watcherCount(), 0);
  });
});

/** A fixed workload touching every operation. */
function workload(s: V2Store): void {
  put(s, "/a/b", "1");
  s.set("/ttl", { dir: false, value: "t", expireAt: T0 + 5_000 }, T0);
  s.set("/dir", { dir: true, value: "", expireAt: T0 + 7_000 }, T0);
  put(s, "/dir/x", "x");
  s.create("/q", { dir: false, value: "1", unique: true }, T0);
  s.update("/a/b", { value: "2", expireAt: T0 + 60_000 }, T0);
  s.compareAndSwap("/a/b", "2", undefined, { value: "3", expireAt: T0 + 60_000 }, T0);
  s.set("/ttl", { dir: false, value: "", expireAt: T0 + 6_000, refresh: true }, T0);
  put(s, "/_h", "h");
  put(s, "/c", "c");
  s.compareAndDelete("/c", "c", undefined, T0);
  s.deleteExpired(T0 + 6_500);
}

Deno.test("v2 store: snapshot image and determinism", async (t) => {
  await t.step("fromJSON(toJSON()) keeps index, TTLs, values and history", async () => {
    const s = new V2Store();
    workload(s);
    const img = JSON.parse(JSON.stringify(s.toJSON()));
    const r = V2Store.fromJSON(img);
    assertEquals(r.toJSON(), s.toJSON());
    assertEquals(r.index, s.index);
    assertEquals(
      r.get("/", { recursive: true, sorted: true }, T0),
      s.get("/", { recursive: true, sorted: true }, T0),
    );
    assertEquals(r.get("/a/b", P, T0 + 1_000).node.ttl, 59);
    assertEquals(r.get("/dir", P, T0).node.expiration, "2026-12-04T20:27:57Z");
    assert(r.hasTtlKeys());
    assertEquals(r.deleteExpired(T0 + 7_000), s.deleteExpired(T0 + 7_000));
    assertEquals(r.toJSON(), s.toJSON());
    // the history came along
    const a = await r.watch("/q", { recursive: true, stream: false, sinceIndex: 1 }).next();
    assertEquals(a?.node.key, "/q/00000000000000000005");
    assertThrows(() => V2Store.fromJSON({ version: 2 }), V2StoreImageError);
  });
  await t.step("restore keeps watchers", async () => {
    const s = new V2Store();
    workload(s);
    const r = new V2Store();
    const w = r.watch("/a/b", { recursive: false, stream: false, sinceIndex: 100 });
    r.restore(s.toJSON());
    for (let i = r.index; i < 100; i++) put(r, "/z", "z");
    put(r, "/a/b", "new");
    assertEquals((await w.next())?.node.value, "new");
  });
  await t.step("adopting a decoded store keeps watchers and takes its state whole", async () => {
    const s = new V2Store();
    workload(s);
    const r = new V2Store();
    const w = r.watch("/a/b", { recursive: false, stream: false, sinceIndex: 100 });
    r.adopt(V2Store.fromJSON(s.toJSON()));
    assertEquals(r.toJSON(), s.toJSON());
    for (let i = r.index; i < 100; i++) put(r, "/z", "z");
    put(r, "/a/b", "new");
    assertEquals((await w.next())?.node.value, "new");
  });
  await t.step("two stores fed the same operations are identical", () => {
    const a = new V2Store();
    const b = new V2Store();
    workload(a);
    workload(b);
    assertEquals(JSON.stringify(a.toJSON()), JSON.stringify(b.toJSON()));
    assertEquals(a.toJSON().history.length, a.index);
  });
  await t.step("history keeps the last 1000 events", () => {
    const s = new V2Store();
    for (let i = 0; i < 1005; i++) put(s, "/k", String(i));
    const h = V2Store.fromJSON(s.toJSON()).toJSON().history;
    assertEquals([h.length, h[0].event.node.modifiedIndex], [1000, 6]);
  });
});
