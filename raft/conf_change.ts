/**
 * Membership changes: the binary encoding of a `ConfChange` carried in log entries, and the `Changer`
 * that turns a change into a new tracker configuration plus progress map, validating it.
 *
 * Encoding (version 1): `[0x01][type u8][nodeId u64 big-endian][context bytes...]`.
 *
 * @module
 */
import { cloneTrackerConfig, Progress, type TrackerConfig } from "./progress.ts";
import { type ConfChange, ConfChangeType, type ConfState, type NodeId } from "./types.ts";

const VERSION = 1;
const HEADER = 10;

/** A conf change that cannot be decoded or applied. */
export class ErrInvalidConfChange extends Error {
  readonly code = "INVALID_CONF_CHANGE";
  constructor(message: string) {
    super(message);
    this.name = "ErrInvalidConfChange";
  }
}

/** Encodes a conf change for an entry of type ConfChange. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const out = new Uint8Array(HEADER + cc.context.length);
  const dv = new DataView(out.buffer);
  out[0] = VERSION;
  out[1] = cc.type;
  dv.setBigUint64(2, BigInt.asUintN(64, cc.nodeId));
  out.set(cc.context, HEADER);
  return out;
}

/** Decodes what `encodeConfChange` produced. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.length < HEADER || data[0] !== VERSION) {
    throw new ErrInvalidConfChange(`malformed conf change (${data.length} bytes)`);
  }
  const type = data[1];
  if (!(type in ConfChangeType)) throw new ErrInvalidConfChange(`unknown conf change type ${type}`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { type, nodeId: dv.getBigUint64(2), context: data.slice(HEADER) };
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
  simple(ccs: ConfChange[]): ChangeResult {
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
  enterJoint(autoLeave: boolean, ccs: ConfChange[]): ChangeResult {
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

  private apply(config: TrackerConfig, progress: Map<NodeId, Progress>, ccs: ConfChange[]): void {
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
  const add = (id: NodeId): ConfChange => ({
    type: ConfChangeType.AddNode,
    nodeId: id,
    context: new Uint8Array(),
  });
  const learner = (id: NodeId): ConfChange => ({
    type: ConfChangeType.AddLearnerNode,
    nodeId: id,
    context: new Uint8Array(),
  });
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
  const ccs: ConfChange[] = [];
  for (const id of cs.votersOutgoing) {
    if (!cs.voters.includes(id)) {
      ccs.push({ type: ConfChangeType.RemoveNode, nodeId: id, context: new Uint8Array() });
    }
  }
  for (const id of cs.voters) ccs.push(add(id));
  for (const id of cs.learners) ccs.push(learner(id));
  for (const id of cs.learnersNext) ccs.push(learner(id));
  step((ch) => ch.enterJoint(cs.autoLeave, ccs));
  return { config, progress };
}
