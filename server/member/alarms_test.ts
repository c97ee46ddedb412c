import { assert, assertEquals } from "../../tests/assert.ts";
import { collectBytes } from "../../storage/byte_stream.ts";
import { LeaseStore } from "../../storage/lease.ts";
import { MvccStore } from "../../storage/mvcc/store.ts";
import { V2Store } from "../../storage/v2store/store.ts";
import { AlarmAction, AlarmType, type RequestOp, type TxnRequest } from "../pb/rpc.ts";
import { Status } from "../transport/status.ts";
import { alarmRefusal, AlarmStore, applyAlarm } from "./alarms.ts";
import {
  alarmsRestoredWith,
  captureAppState,
  decodeAppState,
  EMPTY_CONF_STATE,
  encodeAppState,
  restoreAppState,
} from "./app_state.ts";
import { Membership } from "./membership.ts";
import { ProposalKind } from "./proposal.ts";

const A = 0x7d8c57d90f9550abn;
const B = 0x1234n;

function txn(success: Partial<RequestOp>[], failure: Partial<RequestOp>[] = []): TxnRequest {
  return { compare: [], success: success as RequestOp[], failure: failure as RequestOp[] };
}

Deno.test("alarm store: activate, deactivate and list as etcd's alarm store does", () => {
  const s = new AlarmStore();
  assertEquals(applyAlarm(s, { action: AlarmAction.GET, memberID: 0n, alarm: AlarmType.NONE }).alarms, []);
  const first = applyAlarm(s, { action: AlarmAction.ACTIVATE, memberID: A, alarm: AlarmType.NOSPACE });
  assertEquals(first, { alarms: [{ memberID: A, alarm: AlarmType.NOSPACE }], changed: true });
  // raising it again answers with the active alarm and changes nothing
  const again = applyAlarm(s, { action: AlarmAction.ACTIVATE, memberID: A, alarm: AlarmType.NOSPACE });
  assertEquals(again, { alarms: [{ memberID: A, alarm: AlarmType.NOSPACE }], changed: false });
  applyAlarm(s, { action: AlarmAction.ACTIVATE, memberID: B, alarm: AlarmType.CORRUPT });
  // NONE is no alarm: activating it does nothing
  assertEquals(
    applyAlarm(s, { action: AlarmAction.ACTIVATE, memberID: B, alarm: AlarmType.NONE }).alarms,
    [],
  );
  assertEquals(s.get(), [{ memberID: B, alarm: AlarmType.CORRUPT }, {
    memberID: A,
    alarm: AlarmType.NOSPACE,
  }]);
  assertEquals(s.get(AlarmType.NOSPACE), [{ memberID: A, alarm: AlarmType.NOSPACE }]);
  assertEquals(s.statusErrors(), [
    "memberID:4660 alarm:CORRUPT ",
    "memberID:9046702341261447339 alarm:NOSPACE ",
  ]);
  // clearing an alarm that is not active answers with nothing
  assertEquals(applyAlarm(s, { action: AlarmAction.DEACTIVATE, memberID: B, alarm: AlarmType.NOSPACE }), {
    alarms: [],
    changed: false,
  });
  assertEquals(applyAlarm(s, { action: AlarmAction.DEACTIVATE, memberID: A, alarm: AlarmType.NOSPACE }), {
    alarms: [{ memberID: A, alarm: AlarmType.NOSPACE }],
    changed: true,
  });
  assert(!s.has(AlarmType.NOSPACE));
  assert(s.has(AlarmType.CORRUPT));
});

Deno.test("alarm refusals: NOSPACE caps writes, CORRUPT refuses everything through Raft", () => {
  const s = new AlarmStore();
  for (const k of [ProposalKind.Put, ProposalKind.Txn, ProposalKind.LeaseGrant]) {
    assertEquals(alarmRefusal(s, k, txn([{ requestPut: {} as never }])), undefined);
  }
  s.activate(A, AlarmType.NOSPACE);
  const noSpace = "etcdserver: mvcc: database space exceeded";
  assertEquals(alarmRefusal(s, ProposalKind.Put)?.message, noSpace);
  assertEquals(alarmRefusal(s, ProposalKind.Put)?.status, Status.RESOURCE_EXHAUSTED);
  assertEquals(alarmRefusal(s, ProposalKind.LeaseGrant)?.message, noSpace);
  assertEquals(alarmRefusal(s, ProposalKind.Txn, txn([], [{ requestPut: {} as never }]))?.message, noSpace);
  // reads, deletes, compaction, revokes and transactions without a put go on
  for (
    const k of [
      ProposalKind.DeleteRange,
      ProposalKind.Compaction,
      ProposalKind.LeaseRevoke,
      ProposalKind.Alarm,
    ]
  ) {
    assertEquals(alarmRefusal(s, k), undefined, ProposalKind[k]);
  }
  assertEquals(alarmRefusal(s, ProposalKind.Txn, txn([{ requestDeleteRange: {} as never }])), undefined);
  assertEquals(alarmRefusal(s, ProposalKind.Txn, txn([{ requestRange: {} as never }])), undefined);
  s.deactivate(A, AlarmType.NOSPACE);
  assertEquals(alarmRefusal(s, ProposalKind.Put), undefined);
  s.activate(B, AlarmType.CORRUPT);
  for (
    const k of [
      ProposalKind.Put,
      ProposalKind.DeleteRange,
      ProposalKind.Txn,
      ProposalKind.Compaction,
      ProposalKind.LeaseGrant,
      ProposalKind.LeaseRevoke,
    ]
  ) {
    const err = alarmRefusal(s, k, txn([]));
    assertEquals(err?.message, "etcdserver: corrupt cluster", ProposalKind[k]);
    assertEquals(err?.status, Status.DATA_LOSS);
  }
  // clearing alarms is never refused, or a cluster could not recover
  assertEquals(alarmRefusal(s, ProposalKind.Alarm), undefined);
});

function image(alarms?: AlarmStore): Uint8Array {
  const mvcc = new MvccStore();
  const cap = captureAppState({
    confState: EMPTY_CONF_STATE,
    membership: new Membership(1n),
    leases: new LeaseStore(),
    mvcc,
    v2store: new V2Store(),
    alarms,
  });
  try {
    return collectBytes(cap.data);
  } finally {
    cap.release();
  }
}

Deno.test("alarms are part of the snapshot image, and images without them restore with none", () => {
  const s = new AlarmStore();
  s.activate(A, AlarmType.NOSPACE);
  const restored = restoreAppState(image(s), {});
  assertEquals(restored.alarms?.get(), [{ memberID: A, alarm: AlarmType.NOSPACE }]);
  assertEquals(alarmsRestoredWith(restored.mvcc)?.get(), [{ memberID: A, alarm: AlarmType.NOSPACE }]);
  restored.mvcc.close();

  // an image with no alarm has no `alarms` field: older readers see the format they know
  const plain = image(new AlarmStore());
  assertEquals(decodeAppState(plain).meta.alarms, undefined);
  // an image written before alarms existed (no field) restores with none
  const { meta, mvcc } = decodeAppState(plain);
  const old = collectBytes(
    encodeAppState(meta, { size: mvcc.length, chunks: () => [mvcc][Symbol.iterator]() }),
  );
  const none = restoreAppState(old, {});
  assertEquals(none.alarms?.size, 0);
  none.mvcc.close();
});
