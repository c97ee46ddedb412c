import { assert, assertEquals } from "../../tests/assert.ts";
import { FakeClock } from "../../tests/fake_clock.ts";
import type { Logger } from "../logger.ts";
import { Publication, PUBLISH_RETRY_MS } from "./publication.ts";

const quiet: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return quiet;
  },
};

/** A publication of member 1 whose proposals `propose` answers. */
function publication(clock: FakeClock, propose: () => Promise<unknown>): Publication {
  return new Publication({
    memberId: 1n,
    clusterId: 2n,
    name: "m",
    advertiseClientUrls: [new URL("http://127.0.0.1:2379")],
    logger: quiet,
    clock,
    propose: <T>() => propose() as Promise<T>,
  });
}

Deno.test("publication: a proposal that fails is proposed again until one is applied", async () => {
  const clock = new FakeClock();
  let attempts = 0;
  const p = publication(clock, () => {
    attempts++;
    // the first two time out (forwarded to a leader before the stream to it was up, say)
    return (attempts <= 2 ? Promise.reject(new Error("etcdserver: request timed out")) : Promise.resolve());
  });
  let published = false;
  const ready = p.whenPublished().then(() => published = true);
  p.publish();
  await clock.advance(0);
  assertEquals(attempts, 1);
  assert(!published);
  await clock.advance(PUBLISH_RETRY_MS);
  assertEquals(attempts, 2);
  await clock.advance(PUBLISH_RETRY_MS);
  assertEquals(attempts, 3);
  await ready;
  assert(published);
  // published once: nothing more is proposed
  p.publish();
  await clock.advance(10 * PUBLISH_RETRY_MS);
  assertEquals(attempts, 3);
  assertEquals(clock.pending, 0);
});

Deno.test("publication: closing stops the retries", async () => {
  const clock = new FakeClock();
  let attempts = 0;
  const p = publication(clock, () => {
    attempts++;
    return Promise.reject(new Error("etcdserver: request timed out"));
  });
  const waiting = p.whenPublished().catch((err: Error) => err.message);
  p.publish();
  await clock.advance(0);
  p.close(new Error("etcdserver: server stopped"));
  await clock.advance(10 * PUBLISH_RETRY_MS);
  assertEquals(attempts, 1);
  assertEquals(clock.pending, 0);
  assertEquals(await waiting, "etcdserver: server stopped");
});
