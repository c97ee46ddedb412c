/**
 * Script-driven tests of several Raft nodes: each file under raft/testdata/ is a list of commands, each
 * followed by `----` and the output it must produce, then an empty line. The harness drives RawNodes the
 * way a driver does (persist, send, apply, advance) over a network it controls, and prints what happens.
 *
 * Commands:
 *   add-nodes <n> [prevote] [checkquorum] [join]  new nodes; they bootstrap with every node so far as a
 *                                                 voter, or with `join` start empty and learn from the log
 *   campaign <id>                 the node starts an election
 *   tick <id|all> [n]             n ticks (default 1); what they produce waits for `stabilize`
 *   propose <id> <data>           a proposal
 *   conf-change <id> <v|l|r><n>   a membership change: make n a voter, a learner, or remove it
 *   conf-change-v2 <id> <auto|implicit|explicit> <ops...>
 *                                 a ConfChangeV2 with that transition; no ops leaves a joint config
 *   read-index <id> <ctx>         a linearizable read request
 *   transfer-leader <id> <to>     asks leader <id> to hand over to <to>
 *   isolate <id> / heal           drop every message to and from <id> / stop dropping
 *   compact <id> <index>          snapshot the node's state machine at <index> and compact its log there
 *   stabilize                     handle Ready and deliver messages until nothing moves; prints messages
 *                                 (`x` marks a dropped one), state changes, applied entries, read states
 *   state                         one line per node: role, term, vote, commit, applied, last index, config
 *   log <id>                      the node's entries
 *   progress <id>                 the leader's view of each peer
 *
 * Run with REWRITE=1 to write the actual output into the files (then review the diff line by line).
 */
import { assertEquals } from "../tests/assert.ts";
import { decodeConfChange, decodeConfChangeV2 } from "./conf_change.ts";
import { ErrProposalDropped, ErrStepPeerNotFound, RawNode } from "./node.ts";
import { MemoryStorage } from "./storage.ts";
import {
  ConfChangeTransition,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type NodeId,
  StateType,
} from "./types.ts";
import { emptyConfState } from "./util.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const TESTDATA = new URL("./testdata/", import.meta.url);

/** One node of the harness and its state machine: the applied entries' data, in order. */
class Node {
  readonly storage = new MemoryStorage();
  readonly raw: RawNode;
  applied: string[] = [];
  confState: ConfState = emptyConfState();

  constructor(readonly id: NodeId, opts: { preVote: boolean; checkQuorum: boolean }) {
    let seed = Number(id) * 7919;
    this.raw = new RawNode({
      id,
      electionTick: 10,
      heartbeatTick: 1,
      storage: this.storage,
      preVote: opts.preVote,
      checkQuorum: opts.checkQuorum,
      maxInflightMsgs: 4,
      // a fixed sequence per node: runs replay exactly
      random: () => {
        seed = (seed * 48271) % 2147483647;
        return seed / 2147483647;
      },
    });
  }
}

const ROLE: Record<StateType, string> = {
  [StateType.Follower]: "Follower",
  [StateType.Candidate]: "Candidate",
  [StateType.Leader]: "Leader",
  [StateType.PreCandidate]: "PreCandidate",
};

const CC_OPS: Record<string, ConfChangeType> = {
  v: ConfChangeType.AddNode,
  l: ConfChangeType.AddLearnerNode,
  r: ConfChangeType.RemoveNode,
};

function fmtEntry(e: Entry): string {
  let s = `${e.term}/${e.index}`;
  if (e.type === EntryType.ConfChange) {
    const cc = decodeConfChange(e.data);
    s += ` ${ConfChangeType[cc.type]}(${cc.nodeId})`;
  } else if (e.type === EntryType.ConfChangeV2) {
    const cc = decodeConfChangeV2(e.data);
    const ops = cc.changes.map((c) => `${ConfChangeType[c.type]}(${c.nodeId})`);
    s += ` V2 ${ConfChangeTransition[cc.transition]}[${ops.join(" ")}]`;
  } else if (e.data.length > 0) {
    s += ` "${dec.decode(e.data)}"`;
  }
  return s;
}

const ids = (xs: NodeId[]): string => `(${xs.join(" ")})`;

function fmtConf(cs: ConfState): string {
  let s = `voters=${ids(cs.voters)}`;
  if (cs.votersOutgoing.length > 0) s += `&&${ids(cs.votersOutgoing)}`;
  if (cs.learners.length > 0) s += ` learners=${ids(cs.learners)}`;
  if (cs.learnersNext.length > 0) s += ` learners_next=${ids(cs.learnersNext)}`;
  if (cs.autoLeave) s += " autoleave";
  return s;
}

function fmtMsg(m: Message): string {
  let s = `${m.from}->${m.to} ${MessageType[m.type]} term=${m.term}`;
  const ctx = m.context.length > 0 ? ` ctx="${dec.decode(m.context)}"` : "";
  switch (m.type) {
    case MessageType.App:
      s += ` prev=${m.logTerm}/${m.index} commit=${m.commit} [${m.entries.map(fmtEntry).join(", ")}]`;
      break;
    case MessageType.AppResp:
      s += ` index=${m.index}`;
      if (m.reject) s += ` rejected hint=${m.logTerm}/${m.rejectHint}`;
      break;
    case MessageType.Vote:
    case MessageType.PreVote:
      s += ` last=${m.logTerm}/${m.index}`;
      break;
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      s += m.reject ? " rejected" : " granted";
      break;
    case MessageType.Heartbeat:
      s += ` commit=${m.commit}${ctx}`;
      break;
    case MessageType.HeartbeatResp:
      s += ctx;
      break;
    case MessageType.Snap: {
      const md = m.snapshot!.metadata;
      s += ` snapshot=${md.term}/${md.index} ${fmtConf(md.confState)}`;
      break;
    }
    case MessageType.Prop:
      s += ` [${m.entries.map(fmtEntry).join(", ")}]`;
      break;
    case MessageType.ReadIndex:
    case MessageType.ReadIndexResp:
      s += ` index=${m.index} ctx="${dec.decode(m.entries[0].data)}"`;
      break;
  }
  return s;
}

/** The harness: nodes, a network with cuts, and the output of the current command. */
class Harness {
  readonly nodes = new Map<NodeId, Node>();
  readonly isolated = new Set<NodeId>();
  out: string[] = [];

  node(arg: string): Node {
    const n = this.nodes.get(BigInt(arg));
    if (!n) throw new Error(`no node ${arg}`);
    return n;
  }

  run(cmd: string, args: string[]): void {
    switch (cmd) {
      case "add-nodes":
        return this.addNodes(Number(args[0]), new Set(args.slice(1)));
      case "campaign":
        return this.node(args[0]).raw.campaign();
      case "tick": {
        const targets = args[0] === "all" ? [...this.nodes.values()] : [this.node(args[0])];
        const n = Number(args[1] ?? 1);
        for (let i = 0; i < n; i++) for (const t of targets) t.raw.tick();
        return;
      }
      case "propose":
        return this.dropped(() => this.node(args[0]).raw.propose(enc.encode(args[1])));
      case "conf-change":
        return this.dropped(() =>
          this.node(args[0]).raw.proposeConfChange({
            type: CC_OPS[args[1][0]],
            nodeId: BigInt(args[1].slice(1)),
            context: new Uint8Array(),
          })
        );
      case "conf-change-v2": {
        const transitions: Record<string, ConfChangeTransition> = {
          auto: ConfChangeTransition.Auto,
          implicit: ConfChangeTransition.JointImplicit,
          explicit: ConfChangeTransition.JointExplicit,
        };
        const changes = args.slice(2).map((op) => ({ type: CC_OPS[op[0]], nodeId: BigInt(op.slice(1)) }));
        return this.dropped(() =>
          this.node(args[0]).raw.proposeConfChange({
            transition: transitions[args[1]],
            changes,
            context: new Uint8Array(),
          })
        );
      }
      case "read-index":
        return this.node(args[0]).raw.readIndex(enc.encode(args[1]));
      case "transfer-leader":
        return this.node(args[0]).raw.transferLeader(BigInt(args[1]));
      case "isolate":
        this.isolated.add(BigInt(args[0]));
        return;
      case "heal":
        this.isolated.clear();
        return;
      case "compact":
        return this.compact(this.node(args[0]), Number(args[1]));
      case "stabilize":
        return this.stabilize();
      case "state":
        for (const n of this.nodes.values()) this.out.push(this.state(n));
        return;
      case "log": {
        const log = this.node(args[0]).raw.raft.log;
        const es = log.allEntries();
        if (es.length === 0) this.out.push(`no entries; the log starts at ${log.firstIndex()}`);
        for (const e of es) this.out.push(fmtEntry(e));
        return;
      }
      case "progress": {
        const r = this.node(args[0]).raw.raft;
        if (r.state !== StateType.Leader) throw new Error(`${args[0]} is not the leader`);
        r.trk.visit((id, pr) => this.out.push(`${id}: ${pr}`));
        return;
      }
      default:
        throw new Error(`unknown command ${cmd}`);
    }
  }

  private dropped(f: () => void): void {
    try {
      f();
    } catch (err) {
      if (!(err instanceof ErrProposalDropped)) throw err;
      this.out.push("proposal dropped");
    }
  }

  private addNodes(n: number, flags: Set<string>): void {
    const first = this.nodes.size + 1;
    const created: Node[] = [];
    for (let i = 0; i < n; i++) {
      const node = new Node(BigInt(first + i), {
        preVote: flags.has("prevote"),
        checkQuorum: flags.has("checkquorum"),
      });
      this.nodes.set(node.id, node);
      created.push(node);
    }
    if (flags.has("join")) return;
    const peers = [...this.nodes.keys()].map((id) => ({ id, context: new Uint8Array() }));
    for (const node of created) node.raw.bootstrap(peers);
  }

  private compact(n: Node, index: number): void {
    const s = n.storage;
    s.createSnapshot(index, n.confState, enc.encode(JSON.stringify(n.applied)));
    s.compact(index);
    this.out.push(`${n.id} compacted to ${index}; log starts at ${s.firstIndex()}`);
  }

  private state(n: Node): string {
    const r = n.raw.raft;
    return `${n.id}: ${
      ROLE[r.state]
    } term=${r.term} vote=${r.vote} lead=${r.lead} commit=${r.log.committed} ` +
      `applied=${r.log.applied} last=${r.log.lastIndex()} ${fmtConf(r.trk.confState())}`;
  }

  /** Handles one Ready of `n` as a driver does; returns the messages to send. */
  private handleReady(n: Node): Message[] {
    const rd = n.raw.ready();
    if (rd.softState) {
      const { raftState, lead } = rd.softState;
      this.out.push(`${n.id} is ${ROLE[raftState]} at term ${n.raw.raft.term}, lead=${lead}`);
    }
    if (rd.snapshot) {
      n.storage.applySnapshot(rd.snapshot);
      n.applied = JSON.parse(dec.decode(rd.snapshot.data));
      n.confState = rd.snapshot.metadata.confState;
      const md = rd.snapshot.metadata;
      this.out.push(
        `${n.id} restores snapshot ${md.term}/${md.index} ${fmtConf(md.confState)} holding ${
          JSON.stringify(n.applied)
        }`,
      );
    }
    n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange || e.type === EntryType.ConfChangeV2) {
        const cc = e.type === EntryType.ConfChange ? decodeConfChange(e.data) : decodeConfChangeV2(e.data);
        n.confState = n.raw.applyConfChange(cc);
        this.out.push(`${n.id} applies ${fmtEntry(e)}: ${fmtConf(n.confState)}`);
      } else if (e.data.length > 0) {
        n.applied.push(dec.decode(e.data));
        this.out.push(`${n.id} applies ${fmtEntry(e)}`);
      }
    }
    for (const rs of rd.readStates) {
      this.out.push(`${n.id} may read "${dec.decode(rs.requestCtx)}" at ${rs.index}`);
    }
    n.raw.advance();
    return rd.messages;
  }

  private stabilize(): void {
    for (let round = 0; round < 100; round++) {
      let moved = false;
      const inbox: Message[] = [];
      for (const n of this.nodes.values()) {
        while (n.raw.hasReady()) {
          moved = true;
          inbox.push(...this.handleReady(n));
        }
      }
      for (const m of inbox) {
        if (this.isolated.has(m.from) || this.isolated.has(m.to)) {
          this.out.push(`x ${fmtMsg(m)}`);
          continue;
        }
        this.out.push(fmtMsg(m));
        try {
          this.nodes.get(m.to)?.raw.step(m);
        } catch (err) {
          // a driver drops what the node refuses (a response from a peer it does not know)
          if (!(err instanceof ErrStepPeerNotFound)) throw err;
          this.out.push(`  ${m.to} refuses it: ${err.message}`);
        }
      }
      if (!moved) return;
    }
    throw new Error("did not stabilize within 100 rounds");
  }
}

interface Case {
  line: number;
  command: string;
  expected: string;
}

/** Splits a script into commands and their expected output; comments start with `#`. */
function parse(text: string): { cases: Case[] } {
  const lines = text.split("\n");
  const cases: Case[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) {
      i++;
      continue;
    }
    if (lines[i + 1]?.trim() !== "----") throw new Error(`line ${i + 2}: expected ---- after "${line}"`);
    const start = i + 1;
    i += 2;
    const out: string[] = [];
    while (i < lines.length && lines[i] !== "") out.push(lines[i++]);
    cases.push({ line: start, command: line, expected: out.join("\n") });
  }
  return { cases };
}

/** Writes a script back with the actual outputs (REWRITE=1). */
function render(cases: Case[], actual: string[], original: string): string {
  // keep comments: rebuild by replacing each case's expected block in order
  const lines = original.split("\n");
  const result: string[] = [];
  let i = 0;
  let c = 0;
  while (i < lines.length) {
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#") || c >= cases.length) {
      result.push(lines[i++]);
      continue;
    }
    result.push(lines[i], lines[i + 1]);
    i += 2;
    while (i < lines.length && lines[i] !== "") i++;
    if (actual[c] !== "") result.push(...actual[c].split("\n"));
    c++;
  }
  return result.join("\n");
}

const files = [...Deno.readDirSync(TESTDATA)]
  .filter((e) => e.isFile && e.name.endsWith(".txt"))
  .map((e) => e.name)
  .sort();

for (const name of files) {
  Deno.test(`interaction: ${name}`, () => {
    const url = new URL(name, TESTDATA);
    const text = Deno.readTextFileSync(url);
    const { cases } = parse(text);
    const h = new Harness();
    const actual: string[] = [];
    for (const c of cases) {
      const [cmd, ...args] = c.command.split(/\s+/);
      h.out = [];
      try {
        h.run(cmd, args);
      } catch (err) {
        throw new Error(`${name}:${c.line}: ${c.command}: ${err}\n${h.out.join("\n")}`);
      }
      actual.push(h.out.join("\n"));
    }
    if (Deno.env.get("REWRITE") === "1") {
      Deno.writeTextFileSync(url, render(cases, actual, text));
      return;
    }
    cases.forEach((c, i) => assertEquals(actual[i], c.expected, `${name}:${c.line}: ${c.command}`));
  });
}
