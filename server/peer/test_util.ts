/**
 * Helpers of the peer room's tests: members under test with everything their transport reported,
 * messages to send, raw requests, and polling.
 *
 * @module
 */
import { assert } from "../../tests/assert.ts";
import { type Message, MessageType } from "../../raft/types.ts";
import { encodeMessage } from "../pb/raftpb.ts";
import { ConnReader, FRAME_HEADER_BYTES, putFrameLength } from "./http.ts";
import { writeAll } from "../../storage/fs_util.ts";
import { dialPeer } from "./net.ts";
import { type PeerLogger, PeerTransport, type PeerTransportOptions } from "./transport.ts";

/** The cluster ID of every test member. */
export const CLUSTER = 0xc1a5n;

/** One log line a transport wrote. */
export interface LogEntry {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

/** A logger that appends to `out`. */
function testLogger(out: LogEntry[]): PeerLogger {
  return {
    debug: (msg, fields) => out.push({ level: "debug", msg, fields }),
    info: (msg, fields) => out.push({ level: "info", msg, fields }),
    warn: (msg, fields) => out.push({ level: "warn", msg, fields }),
    error: (msg, fields) => out.push({ level: "error", msg, fields }),
  };
}

/** A member under test: its transport plus everything the transport reported. */
export interface Node {
  id: bigint;
  port: number;
  url: string;
  t: PeerTransport;
  received: Message[];
  unreachable: bigint[];
  snapshotStatus: [bigint, boolean][];
  logs: LogEntry[];
}

/** A member listening on `p` (not started). */
export function makeNode(id: bigint, p: number, extra: Partial<PeerTransportOptions> = {}): Node {
  const n: Node = {
    id,
    port: p,
    url: `http://127.0.0.1:${p}`,
    t: undefined as unknown as PeerTransport,
    received: [],
    unreachable: [],
    snapshotStatus: [],
    logs: [],
  };
  n.t = new PeerTransport({
    memberId: id,
    clusterId: CLUSTER,
    listen: [new URL(n.url)],
    onMessage: (m) => n.received.push(m),
    onUnreachable: (x) => n.unreachable.push(x),
    onSnapshotStatus: (x, ok) => n.snapshotStatus.push([x, ok]),
    logger: testLogger(n.logs),
    ...extra,
  });
  return n;
}

/** A started member on a port the system picks. */
export async function startNode(id: bigint, extra: Partial<PeerTransportOptions> = {}): Promise<Node> {
  const n = makeNode(id, 0, extra);
  await n.t.start();
  n.port = n.t.boundPorts[0];
  n.url = `http://127.0.0.1:${n.port}`;
  return n;
}

/** Makes the started members know each other and waits until every stream is up. */
export async function link(nodes: Node[]): Promise<void> {
  for (const n of nodes) for (const o of nodes) if (o !== n) n.t.addPeer(o.id, [o.url]);
  await waitFor(() => nodes.every((n) => nodes.every((o) => o === n || n.t.activeSince(o.id) !== undefined)));
}

/** Stops every member. */
export async function stopAll(nodes: Node[]): Promise<void> {
  for (const n of nodes) await n.t.stop();
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` every few milliseconds; fails after `ms`. */
export async function waitFor(cond: () => boolean, ms = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(3);
  }
}

const enc = new TextEncoder();

/** A MsgApp-like message carrying one small entry whose data names its sender and sequence number. */
export function app(from: bigint, to: bigint, seq: number, payload = 64): Message {
  const data = new Uint8Array(payload);
  data.set(enc.encode(`${from}:${seq}:`));
  return {
    type: MessageType.App,
    to,
    from,
    term: 3,
    logTerm: 3,
    index: seq,
    entries: [{ term: 3, index: seq + 1, type: 0, data }],
    commit: seq,
    reject: false,
    rejectHint: 0,
    context: new Uint8Array(0),
  };
}

/** A heartbeat, optionally with a context to recognise it by. */
export function heartbeat(from: bigint, to: bigint, context = new Uint8Array(0)): Message {
  return {
    type: MessageType.Heartbeat,
    to,
    from,
    term: 3,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 7,
    reject: false,
    rejectHint: 0,
    context,
  };
}

/** A MsgSnap at index 1234 carrying `data` as its image. */
export function snapMessage(from: bigint, to: bigint, data: Uint8Array): Message {
  return {
    type: MessageType.Snap,
    to,
    from,
    term: 3,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: new Uint8Array(0),
    snapshot: {
      data,
      metadata: {
        index: 1234,
        term: 3,
        confState: { voters: [1n, 2n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
      },
    },
  };
}

/** The body of a snapshot upload: the MsgSnap without its image as one frame, then the image. */
export function snapshotBody(m: Message): Uint8Array {
  const image = m.snapshot?.data ?? new Uint8Array(0);
  const lead = encodeMessage(m.snapshot ? { ...m, snapshot: { ...m.snapshot, data: new Uint8Array(0) } } : m);
  const out = new Uint8Array(FRAME_HEADER_BYTES + lead.length + image.length);
  putFrameLength(out, 0, lead.length);
  out.set(lead, FRAME_HEADER_BYTES);
  out.set(image, FRAME_HEADER_BYTES + lead.length);
  return out;
}

/** Sends one raw HTTP request on a fresh connection and returns the status line and body. */
export async function rawRequest(
  p: number,
  head: Uint8Array,
  body?: Uint8Array,
): Promise<{ status: string; body: string }> {
  const ac = new AbortController();
  const conn = await dialPeer(new URL(`http://127.0.0.1:${p}`), ac.signal);
  try {
    await writeAll(conn, head);
    if (body) await writeAll(conn, body);
    const r = new ConnReader(conn);
    const h = await r.readHead(16384);
    assert(h !== null, "no answer");
    const len = Number(h.headers.get("content-length") ?? "0");
    return { status: h.b, body: new TextDecoder().decode(await r.readBody(len)) };
  } finally {
    conn.close();
  }
}
