/**
 * The Lease service end to end: `etcdctl lease grant/revoke/keep-alive/timetolive/list` and
 * `put --lease` with their exact output lines and errors, the minimum TTL etcd derives from the election
 * timeout, expiry of a lease whose keep-alives stop (through etcdctl and through the `etcd3` npm client),
 * and a `kill -9` restart: leases and their keys survive, and a watch resumed from the last revision it
 * saw plus one misses nothing.
 *
 * Each case runs against every implementation of {@link implementations}, so the real etcd proves the
 * expected lines and timings are etcd's. Every wait is bounded.
 *
 * @module
 */
import { Etcd3 } from "etcd3";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  Ctl,
  ctlOk,
  etcdctl,
  HAVE_ETCDCTL,
  holdsThroughout,
  implementations,
  Member,
  sleep,
  waitUntil,
} from "./helpers.ts";
import { connect, created, currentRevision, report, type Seen, seenOf } from "./client_util.ts";

/** The last non-empty line (etcdctl's own error line comes after the client library's log lines). */
function lastLine(text: string): string {
  return text.split("\n").filter((l) => l !== "").at(-1) ?? "";
}

/** `etcdctl lease grant ttl`; checks the line and returns the lease ID as etcdctl prints it (hex). */
async function grant(endpoint: string, ttl: number, shownTtl = ttl): Promise<string> {
  const out = await ctlOk(endpoint, ["lease", "grant", String(ttl)]);
  const m = /^lease ([0-9a-f]{16}) granted with TTL\((\d+)s\)\n$/.exec(out);
  assert(m, `lease grant printed ${JSON.stringify(out)}`);
  assertEquals(Number(m[2]), shownTtl, out);
  return m[1];
}

/**
 * `etcdctl lease timetolive`: the granted TTL, the remaining seconds and, with `--keys`, the attached
 * keys (sorted: etcd lists them in no particular order).
 */
async function timeToLive(
  endpoint: string,
  id: string,
  keys = false,
): Promise<{ granted: number; remaining: number; keys?: string[] }> {
  const out = await ctlOk(endpoint, ["lease", "timetolive", id, ...(keys ? ["--keys"] : [])]);
  const m =
    /^lease ([0-9a-f]{16}) granted with TTL\((\d+)s\), remaining\((\d+)s\)(?:, attached keys\(\[(.*)\]\))?\n$/
      .exec(out);
  assert(
    m && m[1] === id && (m[4] !== undefined) === keys,
    `lease timetolive printed ${JSON.stringify(out)}`,
  );
  return {
    granted: Number(m[2]),
    remaining: Number(m[3]),
    ...(keys ? { keys: m[4].split(" ").filter((k) => k !== "").sort() } : {}),
  };
}

/** A key's lease as `get -w json` shows it (a 64-bit number: read from the text, not through JSON). */
async function leaseOfKey(endpoint: string, key: string): Promise<string | undefined> {
  const m = /"lease":(\d+)/.exec(await ctlOk(endpoint, ["get", key, "-w", "json"]));
  return m ? BigInt(m[1]).toString(16).padStart(16, "0") : undefined;
}

/**
 * Polls `get key` every 100 ms until the key is gone; returns the milliseconds from `since` to then, or
 * undefined if it is still there `limitMs` after `since`.
 */
async function goneAfter(
  endpoint: string,
  key: string,
  since: number,
  limitMs: number,
): Promise<number | undefined> {
  while (Date.now() - since < limitMs) {
    if ((await ctlOk(endpoint, ["get", key])) === "") return Date.now() - since;
    await sleep(100);
  }
  return undefined;
}

/** The hex form etcdctl prints of a lease ID the etcd3 client gives as a decimal string. */
const hexId = (id: string) => BigInt(id).toString(16).padStart(16, "0");

/** One event as a watcher saw it: revision, type, key, value. */

for (const impl of implementations()) {
  Deno.test({
    name: `[${impl}] etcdctl lease: grant, put --lease, timetolive, list, keep-alive, revoke, errors, expiry`,
    ignore: !HAVE_ETCDCTL,
    fn: async (t) => {
      // election timeout 2 s with 100 ms heartbeats: etcd's minimum TTL is ceil(1.5 × 2 s) = 3 s
      const m = await Member.start({
        impl,
        args: ["--election-timeout", "2000", "--heartbeat-interval", "100"],
      });
      const ep = m.endpoint;
      try {
        let a = "", b = "", j = "";
        await t.step("grant: TTLs, the minimum from the election timeout, the maximum, json", async () => {
          a = await grant(ep, 60);
          for (const ttl of [0, 1, 2]) {
            const low = await grant(ep, ttl, 3);
            assertEquals(await ctlOk(ep, ["lease", "revoke", low]), `lease ${low} revoked\n`);
          }
          const max = await grant(ep, 9_000_000_000);
          assertEquals(await ctlOk(ep, ["lease", "revoke", max]), `lease ${max} revoked\n`);
          const tooLarge = await etcdctl(ep, ["lease", "grant", "9000000001"]);
          assertEquals(tooLarge.code, 1);
          assertEquals(
            lastLine(tooLarge.stderr),
            "Error: failed to grant lease (etcdserver: too large lease TTL)",
          );
          const json = await ctlOk(ep, ["lease", "grant", "40", "-w", "json"]);
          assertMatch(json, /"TTL":40,"Error":""\}\n$/);
          const id = /"ID":(\d+)/.exec(json);
          assert(id, json);
          j = BigInt(id[1]).toString(16).padStart(16, "0");
          assertEquals((await timeToLive(ep, j)).granted, 40);
        });

        await t.step("put --lease, timetolive with and without --keys, json", async () => {
          b = await grant(ep, 100);
          assertEquals(await ctlOk(ep, ["put", `--lease=${b}`, "k1", "v1"]), "OK\n");
          assertEquals(await ctlOk(ep, ["put", `--lease=${b}`, "k2", "v2"]), "OK\n");
          assertEquals(await leaseOfKey(ep, "k1"), b);
          const plain = await timeToLive(ep, b);
          assertEquals(plain.granted, 100);
          assert(plain.remaining >= 95 && plain.remaining <= 100, `remaining ${plain.remaining}`);
          assertEquals((await timeToLive(ep, b, true)).keys, ["k1", "k2"]);
          const json = JSON.parse(await ctlOk(ep, ["lease", "timetolive", b, "--keys", "-w", "json"]));
          assertEquals([json["granted-ttl"], json.keys.sort()], [100, [btoa("k1"), btoa("k2")]]);
          assert(json.ttl >= 95 && json.ttl <= 100, `ttl ${json.ttl}`);
        });

        await t.step("put --ignore-lease keeps the key's lease, a plain put detaches it", async () => {
          const c = await grant(ep, 100);
          await ctlOk(ep, ["put", `--lease=${c}`, "ig1", "a"]);
          await ctlOk(ep, ["put", `--lease=${c}`, "ig2", "a"]);
          assertEquals(await ctlOk(ep, ["put", "ig1", "b", "--ignore-lease"]), "OK\n");
          assertEquals(await ctlOk(ep, ["put", "ig2", "c"]), "OK\n");
          assertEquals((await timeToLive(ep, c, true)).keys, ["ig1"]);
          assertEquals([await leaseOfKey(ep, "ig1"), await leaseOfKey(ep, "ig2")], [c, undefined]);
          const missing = await etcdctl(ep, ["put", "nokey", "x", "--ignore-lease"]);
          assertEquals([missing.code, lastLine(missing.stderr)], [1, "Error: etcdserver: key not found"]);
          const both = await etcdctl(ep, ["put", "ig1", "z", "--ignore-lease", `--lease=${c}`]);
          assertEquals([both.code, lastLine(both.stderr)], [1, "Error: etcdserver: lease is provided"]);
          assertEquals(await ctlOk(ep, ["lease", "revoke", c]), `lease ${c} revoked\n`);
          assertEquals(await ctlOk(ep, ["get", "--prefix", "ig", "--keys-only"]), "ig2\n\n");
        });

        await t.step("list: every lease, soonest expiry first", async () => {
          const d = await grant(ep, 30);
          assertEquals(await ctlOk(ep, ["lease", "list"]), `found 4 leases\n${d}\n${j}\n${a}\n${b}\n`);
          assertEquals(await ctlOk(ep, ["lease", "revoke", d]), `lease ${d} revoked\n`);
        });

        await t.step(
          "keep-alive --once, and a streaming keep-alive that ends when the lease is revoked",
          async () => {
            assertEquals(
              await ctlOk(ep, ["lease", "keep-alive", "--once", a]),
              `lease ${a} keepalived with TTL(60)\n`,
            );
            const k = await grant(ep, 3);
            const streaming = new Ctl(ep, ["lease", "keep-alive", k]);
            try {
              // keep-alives go out every TTL/3 = 1 s: revoked once two were answered
              const answered = () => streaming.lines().filter((l) => l.includes("keepalived")).length;
              await waitUntil(() => answered() >= 2, 6000, () => streaming.describe());
              assertEquals(await ctlOk(ep, ["lease", "revoke", k]), `lease ${k} revoked\n`);
              const r = await streaming.waitExit(5000);
              assertEquals(r.code, 0, r.stderr);
              const out = r.stdout.split("\n").filter((l) => l !== "");
              assertEquals(out.at(-1), `lease ${k} expired or revoked.`);
              const alive = out.slice(0, -1);
              assert(alive.length >= 2, `only ${alive.length} keep-alives in ${r.stdout}`);
              assertEquals(alive, alive.map(() => `lease ${k} keepalived with TTL(3)`));
            } finally {
              await streaming.stop();
            }
          },
        );

        await t.step("revoke deletes every attached key in one revision", async () => {
          const before = await currentRevision(ep);
          assertEquals(await ctlOk(ep, ["lease", "revoke", b]), `lease ${b} revoked\n`);
          assertEquals(await currentRevision(ep), before + 1);
          assertEquals(await ctlOk(ep, ["get", "k", "--prefix"]), "");
        });

        await t.step("errors in etcd's words for a lease that is gone or never was", async () => {
          const revoke = await etcdctl(ep, ["lease", "revoke", b]);
          assertEquals(
            [revoke.code, revoke.stdout, lastLine(revoke.stderr)],
            [1, "", "Error: failed to revoke lease (etcdserver: requested lease not found)"],
          );
          assertEquals(await ctlOk(ep, ["lease", "timetolive", b]), `lease ${b} already expired\n`);
          assertEquals(
            await ctlOk(ep, ["lease", "timetolive", "1234abcd", "--keys"]),
            "lease 000000001234abcd already expired\n",
          );
          const once = await etcdctl(ep, ["lease", "keep-alive", "--once", b]);
          assertEquals(
            [once.code, once.stdout, lastLine(once.stderr)],
            [2, "", "Error: etcdserver: requested lease not found"],
          );
          const put = await etcdctl(ep, ["put", `--lease=${b}`, "k3", "v"]);
          assertEquals(
            [put.code, put.stdout, lastLine(put.stderr)],
            [1, "", "Error: etcdserver: requested lease not found"],
          );
          assertEquals(await ctlOk(ep, ["get", "k3"]), "");
        });

        await t.step("a lease nobody keeps alive expires with its keys", async () => {
          const granted = Date.now();
          const e = await grant(ep, 3);
          await ctlOk(ep, ["put", `--lease=${e}`, "exp1", "v"]);
          const gone = await goneAfter(ep, "exp1", granted, 6000);
          // no earlier than the TTL after the grant, and soon after it (polled through etcdctl)
          assert(gone && gone >= 3000 && gone <= 4500, `a TTL 3 lease's key went ${gone} ms after the grant`);
          assertEquals(await ctlOk(ep, ["lease", "timetolive", e]), `lease ${e} already expired\n`);
          report(impl, "etcdctl lease expiry", { ttlS: 3, goneAfterGrantMs: gone });
        });
      } finally {
        await m.destroy();
      }
    },
  });

  Deno.test({
    name: `[${impl}] etcd3 client: a lease-bound key disappears within TTL + 1 s after keep-alives stop`,
    ignore: !HAVE_ETCDCTL,
    // the etcd3 client (grpc-js) keeps timers of its own past close()
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const m = await Member.start({ impl });
      const client = connect(m.endpoint);
      try {
        const ttl = 2;
        const deletes: Seen[] = [];
        const deletedAt: number[] = [];
        const watcher = await created(client.watch().prefix("exp/"));
        watcher.on("delete", (kv) => {
          deletes.push(seenOf({ type: "Delete", kv }));
          deletedAt.push(Date.now());
        });
        const lease = client.lease(ttl);
        let lastKeepAlive = 0;
        let keepAlives = 0;
        lease.on("keepaliveSucceeded", () => {
          lastKeepAlive = Date.now();
          keepAlives++;
        });
        const id = await lease.grant();
        await lease.put("exp/a").value("1");
        await lease.put("exp/b").value("2");

        // kept alive, the keys outlive the TTL: watched through TTL + 1 s, not checked once at its end
        await holdsThroughout(async () => {
          assertEquals(deletes, [], "keys deleted while their lease was kept alive");
          assertEquals(await client.getAll().prefix("exp/").strings(), { "exp/a": "1", "exp/b": "2" });
        }, ttl * 1000 + 1000);
        assert(keepAlives >= 2, `${keepAlives} keep-alives in ${ttl + 1} s`);

        lease.release(); // stops the keep-alives, revokes nothing
        const stopped = Date.now();
        await waitUntil(() => deletes.length >= 2, ttl * 1000 + 3000, () => `${deletes.length} deletes`);
        const afterStop = deletedAt[1] - stopped;
        const afterLastKeepAlive = deletedAt[1] - lastKeepAlive;
        assert(afterStop <= ttl * 1000 + 1000, `the keys went ${afterStop} ms after keep-alives stopped`);
        assert(
          afterLastKeepAlive >= ttl * 1000 - 250,
          `the keys went ${afterLastKeepAlive} ms after the last keep-alive`,
        );
        assertEquals(deletes[0][0], deletes[1][0], "both keys go in one revision");
        assertEquals(deletes.map((d) => d[2]).sort(), ["exp/a", "exp/b"]);
        assertEquals(
          await ctlOk(m.endpoint, ["lease", "timetolive", hexId(id)]),
          `lease ${hexId(id)} already expired\n`,
        );
        report(impl, "etcd3 lease expiry", {
          ttlS: ttl,
          afterStopMs: afterStop,
          afterLastKeepAliveMs: afterLastKeepAlive,
        });
        await watcher.cancel();
      } finally {
        client.close();
        await m.destroy();
      }
    },
  });

  Deno.test({
    name: `[${impl}] kill -9 and restart: leases and their keys survive, a resumed watch misses nothing`,
    ignore: !HAVE_ETCDCTL,
    // the etcd3 client (grpc-js) keeps timers of its own past close()
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async (t) => {
      const m = await Member.start({ impl });
      let again: Member | undefined;
      const ops = (from: number, to: number) =>
        Array.from({ length: to - from }, (_, k) => {
          const i = from + k;
          return i % 3 === 2
            ? { type: "Delete", key: `w/${i - 1}`, value: "" }
            : { type: "Put", key: `w/${i}`, value: `v${i}` };
        });
      const write = async (client: Etcd3, list: { type: string; key: string; value: string }[]) => {
        for (const op of list) {
          if (op.type === "Put") await client.put(op.key).value(op.value);
          else await client.delete().key(op.key);
        }
      };
      try {
        const long = await grant(m.endpoint, 60);
        await ctlOk(m.endpoint, ["put", `--lease=${long}`, "l/a", "1"]);
        await ctlOk(m.endpoint, ["put", `--lease=${long}`, "l/b", "2"]);

        // A watcher sees the first 30 writes, then goes away; 15 more writes happen without it.
        let lastSeen = 0;
        const first = connect(m.endpoint);
        try {
          const seen: Seen[] = [];
          const w = await created(first.watch().prefix("w/"));
          w.on("data", (res) => seen.push(...res.events.map(seenOf)));
          await write(first, ops(0, 30));
          await waitUntil(() => seen.length >= 30, 10_000, () => `${seen.length} events`);
          assertEquals(seen.map((e) => [e[1], e[2], e[3]]), ops(0, 30).map((o) => [o.type, o.key, o.value]));
          lastSeen = seen[29][0];
          await w.cancel();
          await write(first, ops(30, 45));
        } finally {
          first.close();
        }
        const short = await grant(m.endpoint, 3);
        await ctlOk(m.endpoint, ["put", `--lease=${short}`, "l/s", "3"]);
        const revBeforeKill = await currentRevision(m.endpoint);

        await m.stop("SIGKILL");
        again = await m.restart();
        const restarted = Date.now();
        const ep = again.endpoint;

        await t.step("leases and their keys survive", async () => {
          assertEquals(await ctlOk(ep, ["get", "l/s", "--print-value-only"]), "3\n");
          assertEquals(await ctlOk(ep, ["lease", "list"]), `found 2 leases\n${short}\n${long}\n`);
          const l = await timeToLive(ep, long, true);
          assertEquals([l.granted, l.keys], [60, ["l/a", "l/b"]]);
          assert(l.remaining >= 50 && l.remaining <= 61, `remaining ${l.remaining}`);
          const s = await timeToLive(ep, short, true);
          assertEquals([s.granted, s.keys], [3, ["l/s"]]);
          report(impl, "remaining TTLs right after restart", { longS: l.remaining, shortS: s.remaining });
          assertEquals(
            await ctlOk(ep, ["lease", "keep-alive", "--once", long]),
            `lease ${long} keepalived with TTL(60)\n`,
          );
          assertEquals(await currentRevision(ep), revBeforeKill);
        });

        await t.step("a watch resumed from the last seen revision + 1 misses nothing", async () => {
          const client = connect(ep);
          try {
            const seen: Seen[] = [];
            const w = await created(client.watch().prefix("w/").startRevision(String(lastSeen + 1)));
            w.on("data", (res) => seen.push(...res.events.map(seenOf)));
            await write(client, ops(45, 60));
            await client.put("w/end").value("end");
            const want = [...ops(30, 60), { type: "Put", key: "w/end", value: "end" }];
            await waitUntil(() => seen.length >= want.length, 10_000, () => `${seen.length} events`);
            assertEquals(seen.map((e) => [e[1], e[2], e[3]]), want.map((o) => [o.type, o.key, o.value]));
            assertEquals(seen[0][0], lastSeen + 1);
            assert(seen.every((e, i) => i === 0 || e[0] > seen[i - 1][0]), "revisions ascend");
            await w.cancel();
          } finally {
            client.close();
          }
        });

        await t.step("the short lease still expires after the restart, the long one does not", async () => {
          const gone = await goneAfter(ep, "l/s", restarted, 8000);
          // Becoming leader, etcd gives every lease its full TTL again plus one election timeout (1 s),
          // not what was left of it before the kill.
          assert(
            gone && gone >= 2500 && gone <= 3000 + 1000 + 1500,
            `the TTL 3 lease's key went ${gone} ms after restart`,
          );
          assertEquals(await ctlOk(ep, ["lease", "timetolive", short]), `lease ${short} already expired\n`);
          assertEquals(await ctlOk(ep, ["get", "--prefix", "l/", "--keys-only"]), "l/a\n\nl/b\n\n");
          report(impl, "lease expiry after kill -9 and restart", { ttlS: 3, goneAfterRestartMs: gone });
        });
      } finally {
        if (again) await again.destroy();
        else await m.destroy();
      }
    },
  });
}
