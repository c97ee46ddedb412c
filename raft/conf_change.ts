/**
 * Membership changes: the wire form of `ConfChange` and `ConfChangeV2` as log entries carry them, and
 * the `Changer` that turns changes into a new tracker configuration plus progress map, validating it.
 *
 * The wire form is etcd's own: the protobuf messages raftpb.ConfChange and raftpb.ConfChangeV2 of
 * etcd-io/raft's raft.proto (proto2), in entries of type ConfChange and ConfChangeV2. The encoder writes
 * the bytes etcd v3.5 and v3.6 write (their gogoproto code always writes the scalar fields, zeros
 * included, in field order; the context only when it is not empty), so a WAL written by either side
 * reads on the other:
 *
 *     ConfChange        1: id uint64   2: type enum   3: node_id uint64   4: context bytes
 *     ConfChangeSingle  1: type enum   2: node_id uint64
 *     ConfChangeV2      1: transition enum   2: changes, repeated ConfChangeSingle   3: context bytes
 *
 * The decoder follows protobuf's rules: fields in any order, the last of a repeated scalar wins, unknown
 * fields are skipped. Anything else (a truncated varint or length, a field of the wrong wire type, an
 * enum value Raft does not know) throws {@linkcode ErrInvalidConfChange} naming the offset.
 *
 * @module
 */
import { cloneTrackerConfig, Progress, type TrackerConfig } from "./progress.ts";
import {
  type ConfChange,
  type ConfChangeSingle,
  ConfChangeTransition,
  ConfChangeType,
  type ConfChangeV2,
  type ConfState,
  type NodeId,
} from "./types.ts";

/** A conf change that cannot be decoded or applied. */
export class ErrInvalidConfChange extends Error {
  readonly code = "INVALID_CONF_CHANGE";
  constructor(message: string) {
    super(message);
    this.name = "ErrInvalidConfChange";
  }
}

// ---- protobuf wire primitives (only what these three messages need) ------------------------------

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;
const MAX_UINT64 = (1n << 64n) - 1n;

/** Appends protobuf fields to a growing byte list. */
class PbWriter {
  private readonly out: number[] = [];

  varint(v: bigint | number): void {
    let x = BigInt.asUintN(64, BigInt(v)); // negative int32 values travel sign-extended to 64 bits
    while (x >= 0x80n) {
      this.out.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.out.push(Number(x));
  }

  varintField(field: number, v: bigint | number): void {
    this.varint((field << 3) | WIRE_VARINT);
    this.varint(v);
  }

  bytesField(field: number, b: Uint8Array | number[]): void {
    this.varint((field << 3) | WIRE_BYTES);
    this.varint(b.length);
    for (let i = 0; i < b.length; i++) this.out.push(b[i]);
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

/** Reads protobuf fields from `buf`; every failure names `what` and the offset. */
class PbReader {
  pos = 0;
  constructor(private readonly buf: Uint8Array, private readonly what: string) {}

  done(): boolean {
    return this.pos >= this.buf.length;
  }

  fail(message: string, at = this.pos): never {
    throw new ErrInvalidConfChange(`malformed ${this.what}: ${message} at byte ${at} of ${this.buf.length}`);
  }

  varint(): bigint {
    const start = this.pos;
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.buf.length) this.fail("truncated varint", start);
      const b = this.buf[this.pos++];
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) {
        if (v > MAX_UINT64) this.fail("varint overflows 64 bits", start);
        return v;
      }
    }
    return this.fail("varint longer than 10 bytes", start);
  }

  /** A field key: field number and wire type. */
  key(): { field: number; wire: number; at: number } {
    const at = this.pos;
    const k = this.varint();
    const field = Number(k >> 3n);
    const wire = Number(k & 7n);
    if (field === 0 || k >> 3n > 0x1fffffffn) this.fail(`invalid field number ${k >> 3n}`, at);
    return { field, wire, at };
  }

  bytes(): Uint8Array {
    const at = this.pos;
    const n = this.varint();
    if (n > BigInt(this.buf.length - this.pos)) this.fail(`length ${n} runs past the end`, at);
    const out = this.buf.slice(this.pos, this.pos + Number(n));
    this.pos += Number(n);
    return out;
  }

  /** An enum (int32 on the wire) that must be one of `known`. */
  enumValue(name: string, known: Record<number, string>): number {
    const at = this.pos;
    const v = Number(BigInt.asIntN(32, this.varint()));
    if (!(v in known)) this.fail(`unknown ${name} ${v}`, at);
    return v;
  }

  /** Requires wire type `want` for a known field. */
  expect(k: { field: number; wire: number; at: number }, want: number): void {
    if (k.wire !== want) this.fail(`field ${k.field} has wire type ${k.wire}, want ${want}`, k.at);
  }

  /** Skips a field this decoder does not know. */
  skip(k: { field: number; wire: number; at: number }): void {
    switch (k.wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.advance(8, k.at);
        return;
      case WIRE_BYTES:
        this.bytes();
        return;
      case WIRE_FIXED32:
        this.advance(4, k.at);
        return;
      default:
        this.fail(`field ${k.field} has unsupported wire type ${k.wire}`, k.at);
    }
  }

  private advance(n: number, at: number): void {
    if (this.pos + n > this.buf.length) this.fail("truncated fixed-size field", at);
    this.pos += n;
  }
}

function checkNodeId(id: NodeId): void {
  if (id < 0n || id > MAX_UINT64) throw new ErrInvalidConfChange(`node ID ${id} is not a uint64`);
}

function checkType(t: ConfChangeType): void {
  if (!(t in ConfChangeType)) throw new ErrInvalidConfChange(`unknown conf change type ${t}`);
}

// ---- ConfChange (entries of type ConfChange) -------------------------------------------------------

/** Encodes a conf change as etcd's raftpb.ConfChange, for an entry of type ConfChange. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  checkType(cc.type);
  checkNodeId(cc.nodeId);
  const id = cc.id ?? 0n;
  if (id < 0n || id > MAX_UINT64) throw new ErrInvalidConfChange(`conf change ID ${id} is not a uint64`);
  const w = new PbWriter();
  w.varintField(1, id);
  w.varintField(2, cc.type);
  w.varintField(3, cc.nodeId);
  if (cc.context.length > 0) w.bytesField(4, cc.context);
  return w.finish();
}

/**
 * Decodes a raftpb.ConfChange (the data of an entry of type ConfChange). `id` is set only when it is
 * not zero; `context` is a copy, not a view of `data`.
 */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const r = new PbReader(data, "ConfChange");
  let id = 0n;
  let type = ConfChangeType.AddNode;
  let nodeId = 0n;
  let context: Uint8Array = new Uint8Array(0);
  while (!r.done()) {
    const k = r.key();
    switch (k.field) {
      case 1:
        r.expect(k, WIRE_VARINT);
        id = r.varint();
        break;
      case 2:
        r.expect(k, WIRE_VARINT);
        type = r.enumValue("conf change type", ConfChangeType);
        break;
      case 3:
        r.expect(k, WIRE_VARINT);
        nodeId = r.varint();
        break;
      case 4:
        r.expect(k, WIRE_BYTES);
        context = r.bytes();
        break;
      default:
        r.skip(k);
    }
  }
  const cc: ConfChange = { type, nodeId, context };
  if (id !== 0n) cc.id = id;
  return cc;
}

// ---- ConfChangeV2 (entries of type ConfChangeV2) ---------------------------------------------------

/** Encodes etcd's raftpb.ConfChangeV2, for an entry of type ConfChangeV2. */
export function encodeConfChangeV2(cc: ConfChangeV2): Uint8Array {
  if (!(cc.transition in ConfChangeTransition)) {
    throw new ErrInvalidConfChange(`unknown conf change transition ${cc.transition}`);
  }
  const w = new PbWriter();
  w.varintField(1, cc.transition);
  for (const ch of cc.changes) {
    checkType(ch.type);
    checkNodeId(ch.nodeId);
    const single = new PbWriter();
    single.varintField(1, ch.type);
    single.varintField(2, ch.nodeId);
    w.bytesField(2, single.finish());
  }
  if (cc.context.length > 0) w.bytesField(3, cc.context);
  return w.finish();
}

function decodeConfChangeSingle(data: Uint8Array): ConfChangeSingle {
  const r = new PbReader(data, "ConfChangeSingle");
  let type = ConfChangeType.AddNode;
  let nodeId = 0n;
  while (!r.done()) {
    const k = r.key();
    if (k.field === 1) {
      r.expect(k, WIRE_VARINT);
      type = r.enumValue("conf change type", ConfChangeType);
    } else if (k.field === 2) {
      r.expect(k, WIRE_VARINT);
      nodeId = r.varint();
    } else {
      r.skip(k);
    }
  }
  return { type, nodeId };
}

/**
 * Decodes a raftpb.ConfChangeV2 (the data of an entry of type ConfChangeV2). Empty data is the empty
 * change that leaves a joint configuration.
 */
export function decodeConfChangeV2(data: Uint8Array): ConfChangeV2 {
  const r = new PbReader(data, "ConfChangeV2");
  let transition = ConfChangeTransition.Auto;
  const changes: ConfChangeSingle[] = [];
  let context: Uint8Array = new Uint8Array(0);
  while (!r.done()) {
    const k = r.key();
    switch (k.field) {
      case 1:
        r.expect(k, WIRE_VARINT);
        transition = r.enumValue("conf change transition", ConfChangeTransition);
        break;
      case 2:
        r.expect(k, WIRE_BYTES);
        changes.push(decodeConfChangeSingle(r.bytes()));
        break;
      case 3:
        r.expect(k, WIRE_BYTES);
        context = r.bytes();
        break;
      default:
        r.skip(k);
    }
  }
  return { transition, changes, context };
}

/** The V2 form of a single change (what applying either form does is the same). */
export function confChangeToV2(cc: ConfChange): ConfChangeV2 {
  return {
    transition: ConfChangeTransition.Auto,
    changes: [{ type: cc.type, nodeId: cc.nodeId }],
    context: cc.context,
  };
}

/**
 * Whether a V2 change enters a joint configuration, and if so whether Raft leaves it by itself:
 * undefined for a change the simple protocol handles (one change, transition Auto).
 */
export function jointEntry(cc: ConfChangeV2): { autoLeave: boolean } | undefined {
  if (cc.transition === ConfChangeTransition.Auto && cc.changes.length <= 1) return undefined;
  return { autoLeave: cc.transition !== ConfChangeTransition.JointExplicit };
}

/** Whether a V2 change leaves a joint configuration: no changes and transition Auto. */
export function leavesJoint(cc: ConfChangeV2): boolean {
  return cc.transition === ConfChangeTransition.Auto && cc.changes.length === 0;
}

/** The result of a change: the configuration and progress map to switch to. */
export interface ChangeResult {
  config: TrackerConfig;
  progress: Map<NodeId, Progress>;
}

/**
 * Computes configuration changes against a snapshot of the tracker. `lastIndex` initializes the
 * progress of added peers.
 */
export class Changer {
  constructor(
    private readonly config: TrackerConfig,
    private readonly progress: ReadonlyMap<NodeId, Progress>,
    private readonly maxInflight: number,
    private readonly lastIndex: number,
  ) {}

  /** Applies single-step changes: at most one voter may be added or removed. */
  simple(ccs: ConfChangeSingle[]): ChangeResult {
    const { config, progress } = this.checkAndCopy();
    if (config.voters.outgoing.size > 0) {
      throw new ErrInvalidConfChange("can't apply simple config change in joint config");
    }
    this.apply(config, progress, ccs);
    const before = this.config.voters.incoming;
    const after = config.voters.incoming;
    let diff = 0;
    for (const id of before) if (!after.has(id)) diff++;
    for (const id of after) if (!before.has(id)) diff++;
    if (diff > 1) throw new ErrInvalidConfChange("more than one voter changed without entering joint config");
    checkInvariants(config, progress);
    return { config, progress };
  }

  /**
   * Enters a joint configuration: the current voters become the outgoing half and the changes are
   * applied to the incoming half.
   */
  enterJoint(autoLeave: boolean, ccs: ConfChangeSingle[]): ChangeResult {
    const { config, progress } = this.checkAndCopy();
    if (config.voters.outgoing.size > 0) throw new ErrInvalidConfChange("config is already joint");
    if (config.voters.incoming.size === 0) {
      throw new ErrInvalidConfChange("can't make a zero-voter config joint");
    }
    config.voters.outgoing = new Set(config.voters.incoming);
    this.apply(config, progress, ccs);
    config.autoLeave = autoLeave;
    checkInvariants(config, progress);
    return { config, progress };
  }

  /** Leaves a joint configuration: learnersNext become learners, outgoing-only voters are dropped. */
  leaveJoint(): ChangeResult {
    const { config, progress } = this.checkAndCopy();
    if (config.voters.outgoing.size === 0) throw new ErrInvalidConfChange("can't leave a non-joint config");
    for (const id of config.learnersNext) {
      config.learners.add(id);
      const pr = progress.get(id);
      if (pr) pr.isLearner = true;
    }
    config.learnersNext = new Set();
    for (const id of config.voters.outgoing) {
      if (!config.voters.incoming.has(id) && !config.learners.has(id)) progress.delete(id);
    }
    config.voters.outgoing = new Set();
    config.autoLeave = false;
    checkInvariants(config, progress);
    return { config, progress };
  }

  private apply(config: TrackerConfig, progress: Map<NodeId, Progress>, ccs: ConfChangeSingle[]): void {
    for (const cc of ccs) {
      if (cc.nodeId === 0n) continue; // etcd uses a zero-ID change as a no-op
      switch (cc.type) {
        case ConfChangeType.AddNode:
          this.makeVoter(config, progress, cc.nodeId);
          break;
        case ConfChangeType.AddLearnerNode:
          this.makeLearner(config, progress, cc.nodeId);
          break;
        case ConfChangeType.RemoveNode:
          this.remove(config, progress, cc.nodeId);
          break;
        case ConfChangeType.UpdateNode:
          break;
        default:
          throw new ErrInvalidConfChange(`unexpected conf change type ${cc.type}`);
      }
    }
    if (config.voters.incoming.size === 0) throw new ErrInvalidConfChange("removed all voters");
  }

  private makeVoter(config: TrackerConfig, progress: Map<NodeId, Progress>, id: NodeId): void {
    const pr = progress.get(id);
    if (!pr) {
      this.initProgress(config, progress, id, false);
      return;
    }
    pr.isLearner = false;
    config.learners.delete(id);
    config.learnersNext.delete(id);
    config.voters.incoming.add(id);
  }

  private makeLearner(config: TrackerConfig, progress: Map<NodeId, Progress>, id: NodeId): void {
    const pr = progress.get(id);
    if (!pr) {
      this.initProgress(config, progress, id, true);
      return;
    }
    if (pr.isLearner) return;
    this.remove(config, progress, id);
    progress.set(id, pr); // keep the progress: the peer stays, only its role changes
    if (config.voters.outgoing.has(id)) {
      config.learnersNext.add(id); // still a voter of the outgoing half until the joint config ends
    } else {
      pr.isLearner = true;
      config.learners.add(id);
    }
  }

  private remove(config: TrackerConfig, progress: Map<NodeId, Progress>, id: NodeId): void {
    if (!progress.has(id)) return;
    config.voters.incoming.delete(id);
    config.learners.delete(id);
    config.learnersNext.delete(id);
    if (!config.voters.outgoing.has(id)) progress.delete(id);
  }

  private initProgress(
    config: TrackerConfig,
    progress: Map<NodeId, Progress>,
    id: NodeId,
    isLearner: boolean,
  ): void {
    if (isLearner) config.learners.add(id);
    else config.voters.incoming.add(id);
    const pr = new Progress(Math.max(this.lastIndex, 1), this.maxInflight, isLearner);
    // a new peer counts as active so that CheckQuorum does not step the leader down before it is heard
    pr.recentActive = true;
    progress.set(id, pr);
  }

  private checkAndCopy(): ChangeResult {
    const config = cloneTrackerConfig(this.config);
    const progress = new Map<NodeId, Progress>();
    for (const [id, pr] of this.progress) {
      // copy the fields that membership changes touch; the rest is shared state of the same peer
      const copy = Object.assign(Object.create(Object.getPrototypeOf(pr)), pr) as Progress;
      progress.set(id, copy);
    }
    checkInvariants(config, progress);
    return { config, progress };
  }
}

function checkInvariants(config: TrackerConfig, progress: ReadonlyMap<NodeId, Progress>): void {
  const all = [config.voters.incoming, config.voters.outgoing, config.learners, config.learnersNext];
  for (const ids of all) {
    for (const id of ids) {
      if (!progress.has(id)) throw new ErrInvalidConfChange(`no progress for ${id}`);
    }
  }
  for (const id of config.learnersNext) {
    if (!config.voters.outgoing.has(id)) {
      throw new ErrInvalidConfChange(`${id} is in learnersNext but not outgoing`);
    }
    if (progress.get(id)?.isLearner) {
      throw new ErrInvalidConfChange(`${id} is in learnersNext but is a learner`);
    }
  }
  for (const id of config.learners) {
    if (config.voters.outgoing.has(id) || config.voters.incoming.has(id)) {
      throw new ErrInvalidConfChange(`${id} is both learner and voter`);
    }
    if (!progress.get(id)?.isLearner) throw new ErrInvalidConfChange(`${id} is a learner but not marked so`);
  }
  if (config.voters.outgoing.size === 0) {
    if (config.learnersNext.size > 0) {
      throw new ErrInvalidConfChange("learnersNext must be empty when not joint");
    }
    if (config.autoLeave) throw new ErrInvalidConfChange("autoLeave must be false when not joint");
  }
}

/**
 * Rebuilds a tracker configuration from a ConfState (as found in a snapshot), by replaying it as a
 * sequence of changes on an empty configuration.
 */
export function restoreConfig(
  cs: ConfState,
  maxInflight: number,
  lastIndex: number,
): ChangeResult {
  let config: TrackerConfig = {
    voters: { incoming: new Set(), outgoing: new Set() },
    learners: new Set(),
    learnersNext: new Set(),
    autoLeave: false,
  };
  let progress = new Map<NodeId, Progress>();
  const step = (f: (ch: Changer) => ChangeResult): void => {
    const r = f(new Changer(config, progress, maxInflight, lastIndex));
    config = r.config;
    progress = r.progress;
  };
  const add = (id: NodeId): ConfChangeSingle => ({ type: ConfChangeType.AddNode, nodeId: id });
  const learner = (id: NodeId): ConfChangeSingle => ({ type: ConfChangeType.AddLearnerNode, nodeId: id });
  if (cs.voters.length === 0 && cs.votersOutgoing.length === 0) {
    // an empty config (fresh node before bootstrap entries are applied); learners alone are kept
    for (const id of cs.learners) {
      config.learners.add(id);
      const pr = new Progress(Math.max(lastIndex, 1), maxInflight, true);
      pr.recentActive = true;
      progress.set(id, pr);
    }
    return { config, progress };
  }
  if (cs.votersOutgoing.length === 0) {
    for (const id of cs.voters) step((ch) => ch.simple([add(id)]));
    for (const id of cs.learners) step((ch) => ch.simple([learner(id)]));
    return { config, progress };
  }
  // joint: build the outgoing config first, then enter the joint state with the incoming one
  for (const id of cs.votersOutgoing) step((ch) => ch.simple([add(id)]));
  const ccs: ConfChangeSingle[] = [];
  for (const id of cs.votersOutgoing) {
    if (!cs.voters.includes(id)) {
      ccs.push({ type: ConfChangeType.RemoveNode, nodeId: id });
    }
  }
  for (const id of cs.voters) ccs.push(add(id));
  for (const id of cs.learners) ccs.push(learner(id));
  for (const id of cs.learnersNext) ccs.push(learner(id));
  step((ch) => ch.enterJoint(cs.autoLeave, ccs));
  return { config, progress };
}
