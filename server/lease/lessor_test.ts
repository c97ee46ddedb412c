import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/assert.ts";
import type { Clock } from "../clock.ts";
import { GrpcError } from "../transport/status.ts";
import { Applier } from "../member/apply.ts";
import {
  applyLeaseCheckpoint,
  applyLeaseGrant,
  applyLeaseRevoke,
  Lessor,
  type LessorOptions,
  minLeaseTtlSeconds,
  newLeaseId,
  NotPrimaryError,
} from "./lessor.ts";
import type { LeaseCheckpoint } from "../pb/rpc.ts";
import { keyString, LeaseStore, MAX_LEASE_TTL } from "../../storage/lease.ts";
import { MvccStore } from "../../storage/mvcc/store.ts";

/** A clock that moves only when told to, firing due timers in time order. */
class FakeClock implements Clock {
  #now = 1_000_000;
  #nextId = 1;
  readonly #timers = new Map<number, { at: number; fn: () => void; every: number }>();

  now(): number {
    return this.#now;
  }
  setInterval(fn: () => void, ms: number): number {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + ms, fn, every: ms });
    return id;
  }
  clearInterval(id: number): void {
    this.#timers.delete(id);
  }
  setTimeout(fn: () => void, ms: number): number {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + ms, fn, every: 0 });
    return id;
  }
  clearTimeout(id: number): void {
    this.#timers.delete(id);
  }
  get timers(): number {
    return this.#timers.size;
  }
  /** Moves time forward by `ms`, running every timer that falls due on the way. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void; every: number }] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      }
      if (!next) break;
      const [id, t] = next;
      this.#now = t.at;
      if (t.every > 0) t.at += t.every;
      else this.#timers.delete(id);
      t.fn();
    }
    this.#now = end;
  }
}

interface Setup {
  clock: FakeClock;
  store: LeaseStore;
  lessor: Lessor;
  /** Revoke requests as [id, clock time]. */
  revoked: [bigint, number][];
}

/**
 * A lessor over a fresh store. With `applyRevokes`, each revoke request is "applied" at once (removed
 * from the store and reported back), as a quick Raft round would.
 */
function setup(options: Partial<LessorOptions> = {}, applyRevokes = false): Setup {
  const clock = new FakeClock();
  const store = new LeaseStore();
  const revoked: [bigint, number][] = [];
  const lessor: Lessor = new Lessor({
    clock,
    store,
    revoke: (id) => {
      revoked.push([id, clock.now()]);
      if (applyRevokes) {
        store.revoke(id);
        lessor.onRevoked(id);
      }
    },
    ...options,
  });
  return { clock, store, lessor, revoked };
}

function grant(s: Setup, id: bigint, ttl: number): void {
  applyLeaseGrant(s.store, { ID: id, TTL: ttl }, 2);
  s.lessor.onGranted(id);
}

const ids = (revoked: [bigint, number][]): bigint[] => revoked.map(([id]) => id);
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

Deno.test("minimum TTL: one and a half election timeouts, rounded up to whole seconds", () => {
  assertEquals(minLeaseTtlSeconds(1000, 100), 2);
  assertEquals(minLeaseTtlSeconds(5000, 500), 8);
  assertEquals(minLeaseTtlSeconds(1000, 300), 2); // 3 whole ticks -> 4 * 300 ms
  assertEquals(minLeaseTtlSeconds(2000, 1000), 3);
});

Deno.test("newLeaseId: positive non-zero int64 from the random source", () => {
  let seed = 7;
  const random = (): number => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
  const seen = new Set<bigint>();
  for (let i = 0; i < 200; i++) {
    const id = newLeaseId(random);
    assert(id > 0n && id < 1n << 63n, `id ${id} out of range`);
    seen.add(id);
  }
  assertEquals(seen.size, 200);
  assertEquals(newLeaseId(() => 0.999999999999), (0x7fffffffn << 32n) | 0xffffffffn);
  const draws = [0, 0, 0, 0.5];
  assertEquals(newLeaseId(() => draws.shift()!), 0x80000000n);
  assertThrows(() => newLeaseId(() => 0), Error, "only zeros");
});

Deno.test("applyLeaseGrant: raises to the minimum TTL and refuses what etcd refuses", () => {
  const store = new LeaseStore();
  const lease = applyLeaseGrant(store, { ID: 5n, TTL: 1 }, 2);
  assertEquals([lease.id, lease.ttl], [5n, 2]);
  assertEquals(applyLeaseGrant(store, { ID: -7n, TTL: -3 }, 2).ttl, 2);
  assertEquals(applyLeaseGrant(store, { ID: 6n, TTL: 100 }, 2).ttl, 100);
  assertEquals(applyLeaseGrant(store, { ID: 8n, TTL: MAX_LEASE_TTL }, 2).ttl, MAX_LEASE_TTL);
  const fails = (ID: bigint, TTL: number): GrpcError =>
    assertThrows(() => applyLeaseGrant(store, { ID, TTL }, 2), GrpcError) as GrpcError;
  assertEquals(fails(5n, 10).message, "etcdserver: lease already exists");
  assertEquals(fails(0n, 10).message, "etcdserver: requested lease not found");
  assertEquals(fails(9n, MAX_LEASE_TTL + 1).message, "etcdserver: too large lease TTL");
  assertEquals(fails(5n, MAX_LEASE_TTL + 1).message, "etcdserver: too large lease TTL"); // TTL is checked first
  assertEquals(store.lookup(5n)?.ttl, 2);
  assertEquals(store.leases.size, 4);
});

Deno.test("applyLeaseRevoke: deletes the attached keys in one revision; unknown lease is an error", () => {
  const mvcc = new MvccStore();
  const store = new LeaseStore();
  const applier = new Applier(mvcc, store);
  applyLeaseGrant(store, { ID: 1n, TTL: 10 }, 2);
  const put = (key: string, lease: bigint) =>
    applier.put({
      key: text(key),
      value: text("v"),
      lease,
      prevKv: false,
      ignoreValue: false,
      ignoreLease: false,
    });
  put("b", 1n);
  put("a", 1n);
  put("c", 0n);
  assertEquals(store.keys(1n), ["a", "b"]);
  const before = mvcc.currentRevision;
  const { response: revision, events } = applyLeaseRevoke(applier, 1n);
  assertEquals(revision, before + 1);
  assertEquals(events.length, 2);
  assertEquals(store.lookup(1n), undefined);
  assertEquals(mvcc.range(text("a"), text("z"), {}).kvs.map((kv) => keyString(kv.key)), ["c"]);
  const err = assertThrows(() => applyLeaseRevoke(applier, 1n), GrpcError) as GrpcError;
  assertEquals([err.status, err.message], [5, "etcdserver: requested lease not found"]);
  assertEquals(mvcc.currentRevision, before + 1);
});

Deno.test("applyLeaseCheckpoint: saves remaining TTLs, skips unknown leases", () => {
  const store = new LeaseStore();
  applyLeaseGrant(store, { ID: 1n, TTL: 100 }, 2);
  applyLeaseCheckpoint(store, { checkpoints: [{ ID: 1n, remainingTTL: 40 }, { ID: 9n, remainingTTL: 3 }] });
  assertEquals(store.lookup(1n)?.remainingTtl, 40);
  assertEquals(store.lookup(9n), undefined);
});

Deno.test("a lessor that is not primary keeps no deadlines and refuses renewals", async () => {
  const s = setup();
  grant(s, 1n, 2);
  s.clock.advance(60_000);
  s.lessor.tick();
  assertEquals(s.revoked, []);
  assertEquals(s.clock.timers, 0);
  assert(!s.lessor.isPrimary);
  await assertRejects(() => s.lessor.renew(1n), NotPrimaryError);
  assertThrows(() => s.lessor.remainingTtl(1n), NotPrimaryError);
});

Deno.test("primary: a lease expires after its TTL and is handed to revoke once", () => {
  const s = setup({ revokeRetryMs: 7000 });
  s.lessor.promote(0);
  grant(s, 1n, 5);
  assertEquals(s.lessor.remainingTtl(1n), 5);
  s.clock.advance(4999);
  assertEquals(s.revoked, []);
  s.clock.advance(501); // the check at the deadline
  assertEquals(s.revoked, [[1n, 1_005_000]]);
  s.clock.advance(6000);
  assertEquals(s.revoked.length, 1, "asked again before the retry delay");
  s.clock.advance(500);
  assertEquals(ids(s.revoked), [1n, 1n], "asked again after the retry delay");
  s.store.revoke(1n);
  s.lessor.onRevoked(1n);
  s.clock.advance(30_000);
  assertEquals(s.revoked.length, 2);
});

Deno.test("renew pushes the deadline out by the TTL; unknown leases are not found", async () => {
  const s = setup();
  s.lessor.promote(0);
  grant(s, 1n, 10);
  s.clock.advance(8000);
  assertEquals(s.lessor.remainingTtl(1n), 2);
  assertEquals(await s.lessor.renew(1n), 10);
  assertEquals(s.lessor.remainingTtl(1n), 10);
  s.clock.advance(9900);
  assertEquals(s.revoked, []);
  s.clock.advance(500);
  assertEquals(ids(s.revoked), [1n]);
  const err = await assertRejects(() => s.lessor.renew(2n), GrpcError);
  assertEquals(err.message, "etcdserver: requested lease not found");
  assertThrows(() => s.lessor.remainingTtl(2n), GrpcError, "requested lease not found");
});

Deno.test("renewing an expired lease waits for its revoke, the step-down, or the caller to give up", async () => {
  const s = setup();
  s.lessor.promote(0);
  for (const id of [1n, 2n, 3n]) grant(s, id, 3);
  s.clock.advance(3000);
  let settled = false;
  const first = s.lessor.renew(1n).finally(() => settled = true);
  const abort = new AbortController();
  const second = s.lessor.renew(2n, abort.signal);
  const third = s.lessor.renew(3n);
  await Promise.resolve();
  assert(!settled, "an expired lease must not be renewed at once");
  s.store.revoke(1n);
  s.lessor.onRevoked(1n);
  assertEquals(
    (await assertRejects(() => first, GrpcError)).message,
    "etcdserver: requested lease not found",
  );
  abort.abort();
  assertEquals((await assertRejects(() => second, GrpcError)).message, "etcdserver: request canceled");
  s.lessor.demote();
  await assertRejects(() => third, NotPrimaryError);
});

Deno.test("promote gives every lease its TTL plus the extension; a checkpoint shortens it", () => {
  const s = setup({}, true);
  grant(s, 1n, 10);
  grant(s, 2n, 100);
  s.lessor.onGranted(1n); // ignored while not primary
  applyLeaseCheckpoint(s.store, { checkpoints: [{ ID: 2n, remainingTTL: 4 }] });
  s.clock.advance(50_000);
  s.lessor.promote(1000);
  assertEquals(s.lessor.remainingTtl(1n), 11);
  assertEquals(s.lessor.remainingTtl(2n), 5);
  s.clock.advance(4900);
  assertEquals(s.revoked, []);
  s.clock.advance(500);
  assertEquals(ids(s.revoked), [2n]);
  s.clock.advance(6000);
  assertEquals(ids(s.revoked), [2n, 1n]);
});

Deno.test("demote forgets deadlines and stops the check; a later promote starts over", () => {
  const s = setup();
  s.lessor.promote(0);
  grant(s, 1n, 5);
  assertEquals(s.clock.timers, 1);
  s.clock.advance(3000);
  s.lessor.demote();
  assertEquals(s.clock.timers, 0);
  s.clock.advance(20_000);
  s.lessor.tick();
  assertEquals(s.revoked, []);
  s.lessor.promote(2000);
  assertEquals(s.lessor.remainingTtl(1n), 7);
  s.clock.advance(7000);
  assertEquals(ids(s.revoked), [1n]);
  s.lessor.close();
  assertEquals(s.clock.timers, 0);
});

Deno.test("each check revokes at most the rate's share", () => {
  const s = setup({ revokeRate: 4 }); // 2 per 500 ms check
  s.lessor.promote(0);
  for (let id = 1n; id <= 5n; id++) grant(s, id, 2);
  s.clock.advance(2000);
  assertEquals(s.revoked.length, 2);
  s.clock.advance(500);
  assertEquals(s.revoked.length, 4);
  s.clock.advance(500);
  assertEquals(s.revoked.length, 5);
  assertEquals(new Set(ids(s.revoked)).size, 5);
});

Deno.test("promote spreads expiries that pile up, when there are as many leases as the revoke rate", () => {
  const perCheck = (leases: number): number[] => {
    const s = setup({ revokeRate: 8, checkIntervalMs: 1000 }, true); // target: 6 expiries a second
    for (let id = 1; id <= leases; id++) grant(s, BigInt(id), 5);
    s.lessor.promote(0);
    const counts: number[] = [];
    for (let i = 0; i < 10 && s.store.leases.size > 0; i++) {
      const before = s.revoked.length;
      s.clock.advance(i === 0 ? 5000 : 1000);
      counts.push(s.revoked.length - before);
    }
    s.lessor.close();
    return counts;
  };
  assertEquals(perCheck(20), [6, 0, 6, 6, 2]);
  assertEquals(perCheck(7), [7]); // below the rate: no spreading
});

Deno.test("leases are listed soonest expiry first on the primary, by ID elsewhere", () => {
  const s = setup();
  grant(s, 30n, 50);
  grant(s, 10n, 300);
  grant(s, 20n, 5);
  assertEquals(s.lessor.leases(), [10n, 20n, 30n]);
  s.lessor.promote(0);
  assertEquals(s.lessor.leases(), [20n, 30n, 10n]);
  s.lessor.close();
});

Deno.test("timeToLive: remaining and granted TTL, keys in byte order", () => {
  const s = setup();
  s.lessor.promote(0);
  grant(s, 1n, 30);
  s.store.attach(1n, "b");
  s.store.attach(1n, "a\xff");
  s.store.attach(1n, "a");
  s.clock.advance(1500);
  const ttl = s.lessor.timeToLive(1n, true);
  assertEquals([ttl.TTL, ttl.grantedTTL], [28, 30]);
  assertEquals(ttl.keys.map((k) => [...k]), [[97], [97, 255], [98]]);
  assertEquals(s.lessor.timeToLive(1n, false).keys, []);
  s.lessor.close();
});

Deno.test("checkpointing: remaining TTLs are handed over each interval; a renew clears a saved one", async () => {
  const checkpoints: LeaseCheckpoint[][] = [];
  const s = setup({ checkpointIntervalMs: 2000, checkpoint: (cps) => checkpoints.push(cps) });
  const lessor = s.lessor;
  applyLeaseGrant(s.store, { ID: 1n, TTL: 10 }, 2);
  applyLeaseGrant(s.store, { ID: 2n, TTL: 2 }, 2); // not longer than the interval: never checkpointed
  lessor.promote(0);
  s.clock.advance(2000);
  assertEquals(checkpoints, [[{ ID: 1n, remainingTTL: 8 }]]);
  s.clock.advance(2000);
  assertEquals(checkpoints[1], [{ ID: 1n, remainingTTL: 6 }]);
  applyLeaseCheckpoint(s.store, { checkpoints: checkpoints[1] });
  assertEquals(await lessor.renew(1n), 10);
  assertEquals(checkpoints[2], [{ ID: 1n, remainingTTL: 0 }]);
  lessor.close();
});

Deno.test("recover takes a new lease set: a primary restarts its leases, waits on vanished leases fail", async () => {
  const s = setup();
  s.lessor.promote(0);
  grant(s, 1n, 2);
  s.clock.advance(2000);
  const waiting = s.lessor.renew(1n);
  const next = new LeaseStore();
  next.grant(5n, 4);
  s.lessor.recover(next);
  assertEquals(
    (await assertRejects(() => waiting, GrpcError)).message,
    "etcdserver: requested lease not found",
  );
  assertEquals(s.lessor.remainingTtl(5n), 4);
  assertEquals(s.lessor.leases(), [5n]);
  s.clock.advance(4500);
  assertEquals(ids(s.revoked), [1n, 5n]);
  s.lessor.close();
});

Deno.test("random grants, renewals, revokes and time: leases are revoked at their deadline, never before", async () => {
  let seed = 12345;
  const random = (): number => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
  const s = setup({}, true);
  s.lessor.promote(0);
  const expiry = new Map<bigint, number>();
  let nextId = 1n;
  for (let step = 0; step < 400; step++) {
    const r = random();
    const live = [...expiry.keys()];
    if (r < 0.4 || live.length === 0) {
      const id = nextId++;
      const ttl = 2 + Math.floor(random() * 8);
      grant(s, id, ttl);
      expiry.set(id, s.clock.now() + ttl * 1000);
    } else if (r < 0.6) {
      const id = live[Math.floor(random() * live.length)];
      if (expiry.get(id)! > s.clock.now()) {
        const ttl = await s.lessor.renew(id);
        expiry.set(id, s.clock.now() + ttl * 1000);
      }
    } else if (r < 0.7) {
      const id = live[Math.floor(random() * live.length)];
      applyLeaseRevoke({
        leases: s.store,
        revokeLease: (x) => ({ response: s.store.revoke(x).length, events: [] }),
      }, id);
      s.lessor.onRevoked(id);
      expiry.delete(id);
    } else {
      const from = s.revoked.length;
      s.clock.advance(Math.floor(random() * 1500));
      for (const [id, at] of s.revoked.slice(from)) {
        assert(expiry.get(id)! <= at, `lease ${id} revoked at ${at}, before its deadline ${expiry.get(id)}`);
        expiry.delete(id);
      }
      const lastCheck = s.clock.now() - ((s.clock.now() - 1_000_000) % 500);
      for (const [id, at] of expiry) {
        assert(at > lastCheck, `lease ${id} (deadline ${at}) outlived the check at ${lastCheck}`);
      }
    }
  }
  assert(s.revoked.length > 20, `only ${s.revoked.length} expiries exercised`);
  s.lessor.close();
});
