import { assert, assertEquals } from "../tests/assert.ts";
import {
  BUSY_SKIP,
  BusyPoller,
  CONTENTION_PERIOD_MS,
  HISTORY,
  HITS_NEEDED,
  startBusyPoll,
  threadCoreWaitMs,
} from "./busy_poll.ts";

/** A poller on a hand-driven clock; `turns` holds the steps it asked to run next. */
function fixture(windowMs = 0.5) {
  const host = {
    t: 1_000,
    wait: 0 as number | undefined,
    turns: [] as (() => void)[],
    now: () => host.t,
    turn: (step: () => void) => host.turns.push(step),
    coreWaitMs: () => host.wait,
  };
  const poller = new BusyPoller(windowMs, host);
  /** Runs the queued turns once each, as one pass of the event loop. */
  const runTurns = (): number => {
    const due = host.turns.splice(0);
    for (const step of due) step();
    return due.length;
  };
  /**
   * One request-answer exchange: the request `gapMs` after the previous answer (the event loop turning
   * meanwhile), answered at once. Afterwards `poller.polling` tells whether the answer opened a window.
   */
  const exchange = (gapMs: number): void => {
    host.t += gapMs;
    runTurns();
    poller.received(1);
    runTurns();
    poller.answered(1);
  };
  /** A first answer, then a full history of requests that followed closely: a window is open after it. */
  const prime = (): void => {
    poller.answered(1);
    for (let i = 0; i < HISTORY; i++) exchange(0.1);
  };
  return { host, poller, runTurns, exchange, prime };
}

Deno.test("busy poll: polls only once enough answers were followed closely by a request", () => {
  const { host, poller, runTurns, exchange } = fixture();
  poller.answered(1);
  for (let i = 0; i < HISTORY - 1; i++) exchange(0.2);
  assertEquals(poller.stats.hits, HISTORY - 1);
  assert(!poller.polling, "no polling before the history is full");
  assertEquals(host.turns.length, 0);
  exchange(0.2);
  assert(poller.polling, "a full history of hits opens a window");
  assertEquals(poller.stats.windows, 1);
  // the event loop keeps turning until the window ends, then sleeps
  host.t += 0.1;
  assertEquals(runTurns(), 1);
  host.t += 0.3;
  assertEquals(runTurns(), 1);
  assert(poller.polling);
  host.t += 0.2;
  assertEquals(runTurns(), 1);
  assert(!poller.polling, "the window ended");
  assertEquals(runTurns(), 0);
  assertEquals(poller.stats.turns, 2);
});

Deno.test("busy poll: a request ends the window, and its answer opens the next", () => {
  const { host, poller, runTurns, prime } = fixture();
  prime();
  assert(poller.polling);
  host.t += 0.05;
  assertEquals(runTurns(), 1);
  poller.received(1);
  assertEquals(runTurns(), 1);
  assert(!poller.polling, "bytes from a client stop the polling");
  poller.answered(1);
  assert(poller.polling);
  assertEquals(poller.stats.windows, 2);
});

Deno.test("busy poll: answers not followed by a request within the window turn it off", async (t) => {
  await t.step("a client that pauses longer than the window", () => {
    const { poller, exchange, prime } = fixture();
    prime();
    assert(poller.polling);
    // each slow request is a miss; polling goes on while HITS_NEEDED of the last HISTORY were hits
    for (let i = 0; i < HISTORY - HITS_NEEDED; i++) {
      exchange(5);
      assert(poller.polling, `miss ${i + 1} still polls`);
    }
    exchange(5);
    assert(!poller.polling, "one miss too many");
    assertEquals(poller.stats.misses, HISTORY - HITS_NEEDED + 1);
    // requests that follow closely again bring it back once the misses have left the history
    for (let i = 0; i < HITS_NEEDED - 1; i++) {
      exchange(0.1);
      assert(!poller.polling, `hit ${i + 1} after the misses does not poll yet`);
    }
    exchange(0.1);
    assert(poller.polling, "back");
  });
  await t.step("answers that no request follows (a watch stream): each late answer is a miss", () => {
    const { host, poller, runTurns, prime } = fixture();
    prime();
    for (let i = 0; i <= HISTORY - HITS_NEEDED; i++) {
      assert(poller.polling, `late answer ${i}`);
      host.t += 2;
      runTurns();
      assert(!poller.polling, "the window ended");
      poller.answered(1);
    }
    assertEquals(poller.stats.misses, HISTORY - HITS_NEEDED + 1);
    assert(!poller.polling, "too many misses");
  });
  await t.step("several answers before one request count once, from the first", () => {
    const { host, poller } = fixture();
    poller.answered(1);
    host.t += 0.1;
    poller.answered(1);
    host.t += 0.45;
    poller.received(1);
    // 0.55 ms after the first answer: a miss, although 0.45 after the second
    assertEquals(poller.stats, { windows: 0, turns: 0, hits: 0, misses: 1 });
  });
});

Deno.test("busy poll: requests on other connections than the one answered count as misses", () => {
  const { host, poller, runTurns, prime } = fixture();
  prime();
  assert(poller.polling);
  // ten connections taking turns, each request soon after the previous answer
  for (let i = 0; i <= HISTORY - HITS_NEEDED; i++) {
    host.t += 0.1;
    runTurns();
    poller.received(2 + (i % 9));
    assert(!poller.polling, "another connection's bytes end the window too");
    runTurns();
    poller.answered(2 + (i % 9));
  }
  assertEquals(poller.stats.misses, HISTORY - HITS_NEEDED + 1);
  assert(!poller.polling, "several clients: no polling");
});

Deno.test("busy poll: bytes that arrive before a window's first turn skip the next windows", () => {
  const { host, poller, runTurns, prime } = fixture();
  prime();
  assert(poller.polling);
  // input before the loop could turn once: the loop is busy
  host.t += 0.01;
  poller.received(1);
  runTurns();
  for (let i = 0; i < BUSY_SKIP; i++) {
    poller.answered(1);
    assert(!poller.polling, `answer ${i + 1} after a busy window opens none`);
    host.t += 0.1;
    poller.received(1);
  }
  poller.answered(1);
  assert(poller.polling, "then windows open again");
  // input after at least one turn is an ordinary hit
  host.t += 0.1;
  runTurns();
  poller.received(1);
  runTurns();
  poller.answered(1);
  assert(poller.polling);
});

Deno.test("busy poll: no window while another stream is open on any client connection", () => {
  const { poller, exchange, prime } = fixture();
  prime();
  assert(poller.polling);
  poller.streams(1);
  exchange(0.1);
  assert(!poller.polling, "a call still open");
  poller.streams(2);
  poller.streams(-2);
  exchange(0.1);
  assert(!poller.polling, "one still open");
  poller.streams(-1);
  exchange(0.1);
  assert(poller.polling, "none open");
  assertEquals(poller.stats.misses, 0, "the outcomes were counted all along");
});

Deno.test("busy poll: no polling while the thread waits for a core", () => {
  const { host, poller, runTurns, exchange, prime } = fixture();
  prime();
  assert(poller.polling);
  const closeWindow = () => {
    host.t += 1;
    runTurns();
    assert(!poller.polling);
  };
  closeWindow();
  // a period in which the thread waited 6% of the time: contended
  host.t += CONTENTION_PERIOD_MS;
  host.wait! += 0.06 * CONTENTION_PERIOD_MS;
  exchange(0.1);
  assert(!poller.polling, "contended");
  // within the same period the verdict stands
  exchange(0.1);
  assert(!poller.polling);
  // the next period waited 4%: free again
  host.t += CONTENTION_PERIOD_MS;
  host.wait! += 0.04 * (CONTENTION_PERIOD_MS + 0.1);
  exchange(0.1);
  assert(poller.polling, "a core is free again");
  closeWindow();
  // an unreadable wait never stops it
  host.wait = undefined;
  host.t += CONTENTION_PERIOD_MS;
  exchange(0.1);
  assert(poller.polling);
});

Deno.test("busy poll: a window of 0 never polls nor counts", () => {
  const { host, poller, exchange } = fixture(0);
  poller.answered(1);
  for (let i = 0; i < 2 * HISTORY; i++) exchange(0.1);
  assertEquals(poller.stats, { windows: 0, turns: 0, hits: 0, misses: 0 });
  assertEquals(host.turns.length, 0);
});

Deno.test("busy poll: the thread's wait for a core comes from schedstat's second field", () => {
  assertEquals(threadCoreWaitMs({ readText: () => "215169173 13703967 833\n" }), 13.703967);
  assertEquals(threadCoreWaitMs({ readText: () => "" }), undefined);
  // no /proc
  assertEquals(threadCoreWaitMs({ readText: () => undefined }), undefined);
  if (Deno.build.os === "linux") {
    const ms = threadCoreWaitMs();
    assert(ms !== undefined && ms >= 0, `a number on Linux (got ${ms})`);
  }
});

Deno.test("busy poll: the process's poller turns the real event loop until its window ends", async () => {
  const poller = startBusyPoll(20);
  poller.answered(1);
  for (let i = 0; i < HISTORY; i++) {
    poller.received(1);
    poller.answered(1);
  }
  assert(poller.polling);
  const start = performance.now();
  while (poller.polling) await new Promise((r) => setTimeout(r, 5));
  assert(performance.now() - start >= 19, "polled for the whole window");
  assert(poller.stats.turns > 0);
});
