/**
 * The v2 API of a running member: its v2 store, its Raft position and its members.
 *
 * @module
 */
import type { EtcdServer } from "../member/server.ts";
import type { V2Api } from "./keys_api.ts";

/** The {@link V2Api} that serves `server`'s v2 store. */
export function v2ApiOf(server: EtcdServer): V2Api {
  return {
    get store() {
      return server.v2.store;
    },
    write: (req) => server.v2.write(req),
    linearizableRead: () => server.linearizableReadNotify(),
    clusterId: server.clusterId,
    raftIndex: () => server.driver.appliedIndex,
    raftTerm: () => server.driver.term,
    members: () =>
      server.memberList().filter((m) => !m.isLearner).map((m) => ({
        id: m.id,
        name: m.name,
        peerUrls: m.peerUrls,
        clientUrls: m.clientUrls,
      })),
    now: () => server.clock.now(),
  };
}
