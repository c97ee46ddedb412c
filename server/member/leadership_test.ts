import { assertEquals } from "../../tests/assert.ts";
import { FakeClock } from "../../tests/fake_clock.ts";
import { StateType } from "../../raft/types.ts";
import { createLogger } from "../logger.ts";
import { handOverLeadership } from "./leadership.ts";
import type { RaftDriver } from "./raft_driver.ts";

/**
 * A leader (id 1) whose followers stand as given (`up`: its peer stream is up); it reports which member it
 * was asked to hand over to.
 */
function leader(followers: [bigint, { match: number; recentActive: boolean; up: boolean }][]) {
  const asked: bigint[] = [];
  const lines: string[] = [];
  const progress = new Map([[1n, { match: 100, recentActive: true, up: true }], ...followers]);
  const driver = {
    state: StateType.Leader,
    lead: 1n,
    confState: { voters: [...progress.keys()] },
    node: {
      status: () => ({ progress }),
      transferLeader: (to: bigint) => {
        asked.push(to);
        driver.lead = to;
      },
    },
    kick: () => {},
  };
  const deps = {
    memberId: 1n,
    driver: driver as unknown as RaftDriver,
    clock: new FakeClock(),
    logger: createLogger({ level: "info", write: (l) => lines.push(l) }),
    pollMs: 10,
    activeSince: (id: bigint) => followers.find(([f]) => f === id)?.[1].up ? 0 : undefined,
  };
  return { deps, asked, lines };
}

type Followers = Parameters<typeof leader>[0];

/** Stops a leader with these followers: whom it asked to take over, and its log lines. */
async function stop(followers: Followers): Promise<{ asked: bigint[]; lines: string[] }> {
  const l = leader(followers);
  await handOverLeadership(l.deps, 1000);
  return { asked: l.asked, lines: l.lines };
}

const transferred = (lines: string[]) =>
  lines.filter((x) => x.includes("leadership transferred before stopping")).length;

Deno.test("a stopping leader hands over to the most up-to-date of the voters it reaches", async () => {
  const { asked, lines } = await stop([
    [2n, { match: 100, recentActive: true, up: false }],
    [3n, { match: 90, recentActive: true, up: true }],
  ]);
  assertEquals(asked, [3n]);
  assertEquals(transferred(lines), 1);
});

Deno.test("right after a quorum check, when no voter counts as active, it hands over to the most up-to-date", async () => {
  const { asked, lines } = await stop([
    [2n, { match: 80, recentActive: false, up: true }],
    [3n, { match: 95, recentActive: false, up: true }],
  ]);
  assertEquals(asked, [3n]);
  assertEquals(transferred(lines), 1);
});

Deno.test("a stopping leader that reaches no voter asks nobody and does not wait", async () => {
  const { asked, lines } = await stop([
    [2n, { match: 80, recentActive: true, up: false }],
    [3n, { match: 95, recentActive: true, up: false }],
  ]);
  assertEquals(asked, []);
  assertEquals(lines.length, 0);
});
