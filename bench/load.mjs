#!/usr/bin/env node
/**
 * etcd-ts's load generator: drives any etcd v3 endpoint over its gRPC API and prints what it did.
 *
 *     node bench/load.mjs --endpoints 127.0.0.1:2379 --workload put --clients 100 --conns 10 --duration-s 8
 *
 * Closed loop by default: each of `--clients` callers sends its next request when the previous one is
 * answered, over `--conns` HTTP/2 connections. With `--rate R` the load is open: requests start on a fixed
 * schedule of R per second whatever the answers do, and each latency counts from the moment its request
 * was due, so a stalled server shows in the tail instead of hiding it (no coordinated omission). An open
 * loop also reports the two parts of that latency: how late the generator itself sent each request
 * (`late_*`: its own event loop was busy when the request fell due) and the time from sending to the
 * answer (`from_send_*`).
 *
 * It runs under Node 20+ (see README.md for why) with no packages: gRPC over node:http2 (grpc_h2.mjs) and a
 * hand-written codec (etcd_pb.mjs). The last line of output is one JSON object
 * (`--json`) or `key=value` pairs.
 *
 * @module
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { CANCELLED, Connection } from "./grpc_h2.mjs";
import {
  decodeLeaseGrant,
  decodeWatch,
  encodeLeaseGrant,
  encodeLeaseRevoke,
  encodePut,
  encodeRange,
  encodeTxnPutIfModGreater,
  encodeWatchCreate,
  headerRevision,
} from "./etcd_pb.mjs";
import { Histogram } from "./histogram.mjs";

/** The workloads this generator knows, and what each request is. */
export const WORKLOADS = ["put", "range-lin", "range-ser", "txn", "mixed", "watch", "lease"];

const { values: opt } = parseArgs({
  options: {
    endpoints: { type: "string", default: "127.0.0.1:2379" },
    workload: { type: "string", default: "put" },
    clients: { type: "string", default: "1" },
    conns: { type: "string", default: "1" },
    total: { type: "string", default: "0" },
    rate: { type: "string", default: "0" },
    "duration-s": { type: "string", default: "10" },
    "key-size": { type: "string", default: "8" },
    "val-size": { type: "string", default: "256" },
    "key-space": { type: "string", default: "10000" },
    watchers: { type: "string", default: "100" },
    trace: { type: "string" },
    cacert: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
    json: { type: "boolean", default: false },
  },
});

const endpoints = opt.endpoints.split(",").filter((e) => e !== "");
const clients = Math.max(1, Number(opt.clients));
const conns = Math.max(1, Number(opt.conns));
const total = Number(opt.total);
const rate = Number(opt.rate);
const durationMs = Number(opt["duration-s"]) * 1000;
const keySize = Number(opt["key-size"]);
const keySpace = Math.max(1, Number(opt["key-space"]));
const value = Buffer.alloc(Number(opt["val-size"]), "x");
if (!WORKLOADS.includes(opt.workload)) {
  console.error(`unknown workload ${opt.workload}; one of ${WORKLOADS.join(", ")}`);
  process.exit(2);
}

const tls = { cacert: opt.cacert, cert: opt.cert, key: opt.key };
const channels = Array.from(
  { length: conns },
  (_, i) => new Connection(endpoints[i % endpoints.length], tls),
);

/** One unary call with pre-encoded bytes; resolves to the response bytes. */
function unary(conn, method, request) {
  return conn.unary(method, request);
}

/** A key of the key space, zero-padded to the key size. */
function keyOf(n) {
  return Buffer.from(String(n).padStart(keySize, "0"));
}
const randomKey = () => keyOf(Math.floor(Math.random() * keySpace));

const hist = new Histogram();
/** Open loop only: how late each request went out, and its time from going out to the answer. */
const lateHist = new Histogram();
const fromSendHist = new Histogram();
/** With `--trace`: one [start ms since the run began, latency ms, client] per answered request. */
const trace = opt.trace ? [] : null;
let ops = 0;
let errors = 0;
let firstRevision = 0n;
let lastRevision = 0n;
const errorKinds = new Map();

function noteError(err) {
  errors++;
  const kind = String(err?.details || err?.message || err).slice(0, 100);
  errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + 1);
}
function noteRevision(response) {
  const rev = headerRevision(response);
  if (firstRevision === 0n || rev < firstRevision) firstRevision = rev;
  if (rev > lastRevision) lastRevision = rev;
}

/** Runs `op` closed-loop from every client until the deadline or `--total`; returns seconds taken. */
async function closedLoop(op) {
  const start = performance.now();
  const deadline = start + durationMs;
  let issued = 0;
  const caller = async (c) => {
    const ch = channels[c % conns];
    while (performance.now() < deadline && (total === 0 || issued < total)) {
      issued++;
      const t0 = performance.now();
      try {
        noteRevision(await op(ch));
        const ms = performance.now() - t0;
        hist.recordMs(ms);
        trace?.push([t0 - start, ms, c]);
        ops++;
      } catch (err) {
        noteError(err);
        if (errors > 1000) return;
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, c) => caller(c)));
  return (performance.now() - start) / 1000;
}

/**
 * Starts `op` on a fixed schedule of `rate` per second until the deadline or `--total`, spread over the
 * connections; each latency counts from when its request was due. Returns seconds taken.
 */
async function openLoop(op) {
  const start = performance.now();
  const deadline = start + durationMs;
  const interval = 1000 / rate;
  const pending = new Set();
  let issued = 0;
  while (total === 0 || issued < total) {
    const now = performance.now();
    if (now >= deadline) break;
    // every request whose time has come goes out now, late ones included
    while ((total === 0 || issued < total) && start + issued * interval <= now) {
      const due = start + issued * interval;
      const client = issued % conns;
      const ch = channels[client];
      issued++;
      const sent = performance.now();
      lateHist.recordMs(sent - due);
      const p = op(ch).then((res) => {
        noteRevision(res);
        const end = performance.now();
        const ms = end - due;
        hist.recordMs(ms);
        fromSendHist.recordMs(end - sent);
        trace?.push([due - start, ms, client]);
        ops++;
      }, noteError).finally(() => pending.delete(p));
      pending.add(p);
    }
    if (errors > 1000 || pending.size > 100_000) break;
    const wait = start + issued * interval - performance.now();
    await new Promise((r) => setTimeout(r, Math.max(0, Math.min(wait, 5))));
  }
  await Promise.all(pending);
  return (performance.now() - start) / 1000;
}

const run = (op) => rate > 0 ? openLoop(op) : closedLoop(op);

/** Puts every key of the key space once, 200 at a time, so reads find something. */
async function prefill() {
  const ch = channels[0];
  let inflight = [];
  for (let i = 0; i < keySpace; i++) {
    inflight.push(unary(ch, "/etcdserverpb.KV/Put", encodePut({ key: keyOf(i), value })));
    if (inflight.length >= 200) {
      await Promise.all(inflight);
      inflight = [];
    }
  }
  await Promise.all(inflight);
}

const put = (ch) => unary(ch, "/etcdserverpb.KV/Put", encodePut({ key: randomKey(), value }));
const range = (serializable) => (ch) =>
  unary(ch, "/etcdserverpb.KV/Range", encodeRange({ key: randomKey(), serializable }));

/**
 * W watchers on one prefix while the clients put under it: an op is one event delivered to one watcher,
 * its latency from the put's start (carried in the value) to the delivery. Events still missing a few
 * seconds after the last put count as errors.
 */
async function watchWorkload() {
  const watchers = Math.max(1, Number(opt.watchers));
  const prefix = Buffer.from("wbench/");
  const end = Buffer.from("wbench0");
  const streams = [];
  let delivered = 0;
  const deliveries = new Histogram();
  await Promise.all(Array.from({ length: watchers }, (_, i) =>
    new Promise((resolve, reject) => {
      const s = channels[i % conns].stream("/etcdserverpb.Watch/Watch", (res) => {
        const w = decodeWatch(res);
        if (w.created) return resolve();
        if (w.canceled) return reject(new Error(`watch canceled: ${w.reason}`));
        const now = performance.now();
        for (const v of w.values) {
          deliveries.recordMs(now - Number(Buffer.from(v).toString()));
          delivered++;
        }
      }, (err) => {
        if (err.code !== CANCELLED) {
          noteError(err);
          reject(err);
        }
      });
      streams.push(s);
      s.write(encodeWatchCreate(prefix, end));
    })));
  const seconds = await run((ch) => {
    const key = Buffer.concat([prefix, randomKey()]);
    return unary(
      ch,
      "/etcdserverpb.KV/Put",
      encodePut({ key, value: Buffer.from(String(performance.now())) }),
    );
  });
  const want = ops * watchers;
  for (let i = 0; i < 50 && delivered < want; i++) await new Promise((r) => setTimeout(r, 100));
  for (const s of streams) s.cancel();
  if (delivered < want) noteError(new Error(`missing events: ${want - delivered}`));
  hist.counts = deliveries.counts;
  hist.count = deliveries.count;
  hist.max = deliveries.max;
  ops = delivered;
  return seconds;
}

const workloads = {
  put: () => run(put),
  "range-lin": async () => {
    await prefill();
    return run(range(false));
  },
  "range-ser": async () => {
    await prefill();
    return run(range(true));
  },
  txn: () =>
    run((ch) => unary(ch, "/etcdserverpb.KV/Txn", encodeTxnPutIfModGreater(randomKey(), value, -1n))),
  mixed: async () => {
    await prefill();
    return run((ch) => Math.random() < 0.9 ? range(false)(ch) : put(ch));
  },
  watch: watchWorkload,
  lease: () =>
    run(async (ch) => {
      const grant = decodeLeaseGrant(
        await unary(ch, "/etcdserverpb.Lease/LeaseGrant", encodeLeaseGrant(30n)),
      );
      if (grant.error) throw new Error(grant.error);
      return unary(ch, "/etcdserverpb.Lease/LeaseRevoke", encodeLeaseRevoke(grant.id));
    }),
};

/** `summary` with `prefix` before each key (`p99_ms` → `late_p99_ms`). */
function prefixed(prefix, summary) {
  return Object.fromEntries(Object.entries(summary).map(([k, v]) => [prefix + k, v]));
}

let seconds = 0;
try {
  seconds = await workloads[opt.workload]();
} catch (err) {
  noteError(err);
}
for (const ch of channels) ch.close();
if (trace) {
  writeFileSync(opt.trace, JSON.stringify(trace.map(([t, ms, c]) => [+t.toFixed(3), +ms.toFixed(3), c])));
}
const result = {
  workload: opt.workload,
  clients,
  conns,
  rate,
  seconds: Math.round(seconds * 100) / 100,
  ops,
  ops_per_s: seconds > 0 ? Math.round(ops / seconds) : 0,
  ...hist.summary(),
  ...(rate > 0 ? prefixed("late_", lateHist.summary()) : {}),
  ...(rate > 0 ? prefixed("from_send_", fromSendHist.summary()) : {}),
  errors,
  first_revision: Number(firstRevision),
  last_revision: Number(lastRevision),
  ...(errorKinds.size ? { error_kinds: Object.fromEntries(errorKinds) } : {}),
};
if (opt.json) console.log(JSON.stringify(result));
else {
  console.log(
    Object.entries(result).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" "),
  );
}
process.exit(0);
