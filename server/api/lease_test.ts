/**
 * The Lease service over a real HTTP/2 listener, with grpc-js (raw bytes, our codecs) and the etcd3
 * client. The backend is the lease core without Raft: the apply functions and a primary lessor on a
 * clock the tests set, so answers are what a single leader would give.
 */
// A real gRPC client for tests only: the version deno.lock already holds (through etcd3).
// deno-lint-ignore no-import-prefix
import * as grpc from "npm:@grpc/grpc-js@1.14.7";
import { Etcd3, EtcdLeaseInvalidError } from "etcd3";
import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import type { Clock } from "../clock.ts";
import { Errors } from "../errors.ts";
import {
  applyLeaseGrant,
  applyLeaseRevoke,
  type LeaseTimeToLive,
  Lessor,
  newLeaseId,
} from "../lease/lessor.ts";
import { keyString, LeaseStore, MAX_LEASE_TTL } from "../../storage/lease.ts";
import {
  decodeLeaseGrantResponse,
  decodeLeaseKeepAliveResponse,
  decodeLeaseLeasesResponse,
  decodeLeaseRevokeResponse,
  decodeLeaseTimeToLiveResponse,
  encodeLeaseGrantRequest,
  encodeLeaseKeepAliveRequest,
  encodeLeaseRevokeRequest,
  encodeLeaseTimeToLiveRequest,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  type LeaseKeepAliveResponse,
  type LeaseRevokeRequest,
  type LeaseRevokeResponse,
  type ResponseHeader,
} from "../pb/rpc.ts";
import type { GrpcError } from "../transport/status.ts";
import { GrpcRouter } from "../transport/grpc.ts";
import { serveNodeHttp2 } from "../transport/node_http2.ts";
import { type LeaseBackend, registerLease } from "./lease.ts";

const MIN_TTL = 2;

/** Time that moves only when a test sets it; the lessor's check timer never fires. */
class ManualClock implements Clock {
  time = 1_000_000;
  now(): number {
    return this.time;
  }
  setInterval(): number {
    return 1;
  }
  clearInterval(): void {}
  setTimeout(): number {
    return 1;
  }
  clearTimeout(): void {}
}

/** A single leader's lease handling, minus Raft: what EtcdServer does once an entry is applied. */
class MemoryLeaseBackend implements LeaseBackend {
  readonly clock = new ManualClock();
  readonly store = new LeaseStore();
  readonly lessor = new Lessor({ clock: this.clock, store: this.store, revoke: () => {} });
  revision = 1;
  /** Runs before each renew (to slow one down, or fail it). */
  beforeRenew: (id: bigint, signal: AbortSignal) => Promise<void> = () => Promise.resolve();
  #seed = 42;

  constructor() {
    this.lessor.promote(0);
  }

  #random = (): number => {
    this.#seed = (this.#seed * 16807) % 2147483647;
    return this.#seed / 2147483647;
  };

  header(revision: number): ResponseHeader {
    return { clusterId: 0xc1n, memberId: 0xa1n, revision, raftTerm: 3 };
  }

  leaseGrant(r: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    const req = { TTL: r.TTL, ID: r.ID === 0n ? newLeaseId(this.#random) : r.ID };
    const lease = applyLeaseGrant(this.store, req, MIN_TTL);
    this.lessor.onGranted(lease.id);
    return Promise.resolve({ header: this.header(this.revision), ID: lease.id, TTL: lease.ttl, error: "" });
  }

  leaseRevoke(r: LeaseRevokeRequest): Promise<LeaseRevokeResponse> {
    const { response } = applyLeaseRevoke({
      leases: this.store,
      revokeLease: (id) => {
        if (this.store.revoke(id).length > 0) this.revision++;
        return { response: this.revision, events: [] };
      },
    }, r.ID);
    this.lessor.onRevoked(r.ID);
    return Promise.resolve({ header: this.header(response) });
  }

  async leaseRenew(id: bigint, signal: AbortSignal): Promise<number> {
    await this.beforeRenew(id, signal);
    return this.lessor.renew(id, signal);
  }

  leaseTimeToLive(id: bigint, keys: boolean): Promise<LeaseTimeToLive> {
    return Promise.resolve(this.lessor.timeToLive(id, keys));
  }

  leaseLeases(): bigint[] {
    return this.lessor.leases();
  }

  currentHeader(): ResponseHeader {
    return this.header(this.revision);
  }
}

const id = (b: Buffer): Buffer => b;

/** `p`, or a failure after `ms`: a broken service must fail the test, not hang it. */
async function within<T>(p: Promise<T>, what: string, ms = 3000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface Unary {
  value?: Uint8Array;
  error?: grpc.ServiceError;
}

function unary(client: grpc.Client, method: string, body: Uint8Array): Promise<Unary> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      `/etcdserverpb.Lease/${method}`,
      id,
      id,
      Buffer.from(body),
      (error: grpc.ServiceError | null, value?: Buffer) => resolve(error ? { error } : { value }),
    );
  });
}

function ok<T>(r: Unary, decode: (b: Uint8Array) => T): T {
  if (r.error) throw new Error(`unexpected error ${r.error.code} ${r.error.details}`);
  return decode(r.value!);
}

function failure(r: Unary): [number, string] {
  assert(r.error !== undefined, "expected an error");
  return [r.error.code, r.error.details];
}

/** An open keepalive stream: write IDs, read answers, see how it ended. */
class KeepAlive {
  readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  readonly answers: LeaseKeepAliveResponse[] = [];
  readonly status: Promise<grpc.StatusObject>;
  #waiters: (() => void)[] = [];

  constructor(client: grpc.Client) {
    this.call = client.makeBidiStreamRequest("/etcdserverpb.Lease/LeaseKeepAlive", id, id);
    this.call.on("data", (b: Buffer) => {
      this.answers.push(decodeLeaseKeepAliveResponse(b));
      for (const w of this.#waiters.splice(0)) w();
    });
    this.call.on("error", () => {});
    const status = new Promise<grpc.StatusObject>((resolve) => this.call.on("status", resolve));
    this.status = within(status, "stream status");
    this.status.catch(() => {});
  }

  send(...ids: bigint[]): void {
    for (const lease of ids) this.call.write(Buffer.from(encodeLeaseKeepAliveRequest({ ID: lease })));
  }

  /** Resolves once `n` answers arrived (fails after 3 s). */
  async answered(n: number): Promise<LeaseKeepAliveResponse[]> {
    const deadline = Date.now() + 3000;
    while (this.answers.length < n) {
      assert(Date.now() < deadline, `only ${this.answers.length} of ${n} keepalive answers`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.answers.slice(0, n);
  }
}

async function withService(
  fn: (client: grpc.Client, backend: MemoryLeaseBackend, port: number) => Promise<void>,
) {
  const backend = new MemoryLeaseBackend();
  const router = new GrpcRouter();
  registerLease(router, backend);
  const listener = await serveNodeHttp2(router, {
    hostname: "127.0.0.1",
    port: 0,
    maxReceiveMessageBytes: 1 << 20,
  });
  const client = new grpc.Client(`127.0.0.1:${listener.port}`, grpc.credentials.createInsecure());
  try {
    await fn(client, backend, listener.port);
  } finally {
    client.close();
    backend.lessor.close();
    await listener.close();
  }
}

const HEADER = { clusterId: 0xc1n, memberId: 0xa1n, raftTerm: 3 };

Deno.test("LeaseGrant, LeaseRevoke, LeaseLeases: answers and errors as etcd gives them", async () => {
  await withService(async (client, backend) => {
    const grant = (req: LeaseGrantRequest) => unary(client, "LeaseGrant", encodeLeaseGrantRequest(req));
    const chosen = ok(await grant({ TTL: 1, ID: 0n }), decodeLeaseGrantResponse);
    assert(chosen.ID > 0n, "the server picks a positive ID");
    assertEquals(chosen.TTL, MIN_TTL, "a TTL under the minimum is raised");
    assertEquals(chosen.header, { ...HEADER, revision: 1 });
    assertEquals(ok(await grant({ TTL: 60, ID: 77n }), decodeLeaseGrantResponse).TTL, 60);
    assertEquals(ok(await grant({ TTL: -3, ID: -5n }), decodeLeaseGrantResponse).ID, -5n);
    assertEquals(failure(await grant({ TTL: 60, ID: 77n })), [9, "etcdserver: lease already exists"]);
    assertEquals(failure(await grant({ TTL: MAX_LEASE_TTL + 1, ID: 0n })), [
      11,
      "etcdserver: too large lease TTL",
    ]);

    const leases = ok(await unary(client, "LeaseLeases", new Uint8Array(0)), decodeLeaseLeasesResponse);
    assertEquals(leases.header, { ...HEADER, revision: 1 });
    assertEquals(leases.leases.map((l) => l.ID), [-5n, chosen.ID, 77n]); // soonest expiry first

    backend.store.attach(77n, "k");
    const revoked = ok(
      await unary(client, "LeaseRevoke", encodeLeaseRevokeRequest({ ID: 77n })),
      decodeLeaseRevokeResponse,
    );
    assertEquals(revoked.header, { ...HEADER, revision: 2 });
    assertEquals(failure(await unary(client, "LeaseRevoke", encodeLeaseRevokeRequest({ ID: 77n }))), [
      5,
      "etcdserver: requested lease not found",
    ]);
    assertEquals(failure(await unary(client, "LeaseRevoke", encodeLeaseRevokeRequest({ ID: 0n })))[0], 5);
    assertEquals(
      ok(await unary(client, "LeaseLeases", new Uint8Array(0)), decodeLeaseLeasesResponse).leases.length,
      2,
    );
    const [code, message] = failure(await unary(client, "LeaseGrant", new Uint8Array([0x08])));
    assertEquals(code, 13);
    assert(message.startsWith("grpc: error unmarshalling request: "), message);
  });
});

Deno.test("LeaseTimeToLive: remaining and granted TTL with keys; an unknown lease is TTL -1, not an error", async () => {
  await withService(async (client, backend) => {
    await backend.leaseGrant({ TTL: 30, ID: 9n });
    backend.store.attach(9n, "b");
    backend.store.attach(9n, "a");
    backend.clock.time += 1500;
    const ttl = (ID: bigint, keys: boolean) =>
      unary(client, "LeaseTimeToLive", encodeLeaseTimeToLiveRequest({ ID, keys }));
    const found = ok(await ttl(9n, true), decodeLeaseTimeToLiveResponse);
    assertEquals([found.ID, found.TTL, found.grantedTTL], [9n, 28, 30]);
    assertEquals(found.keys.map(keyString), ["a", "b"]);
    assertEquals(found.header, { ...HEADER, revision: 1 });
    assertEquals(ok(await ttl(9n, false), decodeLeaseTimeToLiveResponse).keys, []);
    const missing = ok(await ttl(0x1234n, true), decodeLeaseTimeToLiveResponse);
    assertEquals(missing, {
      header: { ...HEADER, revision: 1 },
      ID: 0x1234n,
      TTL: -1,
      grantedTTL: 0,
      keys: [],
    });
  });
});

Deno.test("LeaseKeepAlive: one answer per request, in order, TTL 0 for unknown leases", async () => {
  await withService(async (client, backend) => {
    await backend.leaseGrant({ TTL: 10, ID: 1n });
    await backend.leaseGrant({ TTL: 20, ID: 2n });
    backend.clock.time += 4000;
    const ka = new KeepAlive(client);
    ka.send(0x999n, 1n, 0n, 2n);
    const answers = await ka.answered(4);
    assertEquals(answers.map((a) => [a.ID, a.TTL]), [[0x999n, 0], [1n, 10], [0n, 0], [2n, 20]]);
    assertEquals(answers[0].header, { ...HEADER, revision: 1 });
    assertEquals(backend.lessor.remainingTtl(1n), 10, "the keepalive renewed the lease");
    await backend.leaseRevoke({ ID: 1n });
    ka.send(1n);
    assertEquals((await ka.answered(5))[4].TTL, 0, "a revoked lease answers TTL 0");
    ka.call.end();
    assertEquals((await ka.status).code, 0);
  });
});

Deno.test("LeaseKeepAlive: a slow renew holds back later answers; the header is taken before the renew", async () => {
  await withService(async (client, backend) => {
    await backend.leaseGrant({ TTL: 10, ID: 1n });
    await backend.leaseGrant({ TTL: 20, ID: 2n });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => release = resolve);
    backend.beforeRenew = async (lease) => {
      if (lease !== 1n) return;
      await gate;
      backend.revision++;
    };
    const ka = new KeepAlive(client);
    ka.send(1n, 2n);
    ka.call.end(); // the stream must still answer both before it ends
    await new Promise((resolve) => setTimeout(resolve, 100));
    assertEquals(ka.answers.length, 0, "the second answer overtook the first");
    release();
    const answers = await ka.answered(2);
    assertEquals(answers.map((a) => [a.ID, a.TTL, a.header.revision]), [[1n, 10, 1], [2n, 20, 2]]);
    assertEquals((await ka.status).code, 0);
  });
});

Deno.test("LeaseKeepAlive: other errors end the stream; a malformed request fails it; cancel reaches the renew", async () => {
  await withService(async (client, backend) => {
    await backend.leaseGrant({ TTL: 10, ID: 1n });
    backend.beforeRenew = (lease) => lease === 6n ? Promise.reject(Errors.noLeader()) : Promise.resolve();
    const failing = new KeepAlive(client);
    failing.send(1n, 6n, 1n);
    const status = await failing.status;
    assertEquals([status.code, status.details], [14, "etcdserver: no leader"]);

    const malformed = new KeepAlive(client);
    malformed.call.write(Buffer.from([0x08]));
    const bad = await malformed.status;
    assertEquals(bad.code, 13);
    assert(bad.details.startsWith("grpc: failed to unmarshal the received message "), bad.details);

    let aborted!: () => void;
    const abortSeen = new Promise<void>((resolve) => aborted = resolve);
    backend.beforeRenew = (_lease, signal) =>
      new Promise((_resolve, reject) =>
        signal.addEventListener("abort", () => {
          aborted();
          reject(signal.reason);
        })
      );
    const cancelled = new KeepAlive(client);
    cancelled.send(1n);
    await new Promise((resolve) => setTimeout(resolve, 50));
    cancelled.call.cancel();
    await within(abortSeen, "abort of the pending renew");
    assertEquals((await cancelled.status).code, 1);
  });
});

Deno.test("the etcd3 client: grant, keepalive, time-to-live, revoke, lost lease", async () => {
  await withService(async (_client, backend, port) => {
    const etcd = new Etcd3({ hosts: `http://127.0.0.1:${port}` });
    try {
      const lease = etcd.lease(15, { autoKeepAlive: false });
      const leaseId = BigInt(await lease.grant());
      assertEquals(backend.store.lookup(leaseId)?.ttl, 15);
      backend.clock.time += 5000;
      const res = await lease.keepaliveOnce();
      assertEquals([res.TTL, res.ID], ["15", leaseId.toString()]);
      const ttl = await etcd.leaseClient.leaseTimeToLive({ ID: leaseId.toString(), keys: true });
      assertEquals([ttl.TTL, ttl.grantedTTL], ["15", "15"]);
      const list = await etcd.leaseClient.leaseLeases();
      assertEquals(list.leases.map((l) => l.ID), [leaseId.toString()]);
      await lease.revoke();
      assertEquals(backend.store.leases.size, 0);
      const gone = etcd.lease(5, { autoKeepAlive: false });
      await backend.leaseRevoke({ ID: BigInt(await gone.grant()) });
      await assertRejects(() => gone.keepaliveOnce(), EtcdLeaseInvalidError);
      const err = await assertRejects(() =>
        etcd.leaseClient.leaseRevoke({ ID: "12345" })
      ) as unknown as GrpcError;
      assert(String(err.message).includes("requested lease not found"), String(err.message));
    } finally {
      etcd.close();
    }
  });
});
