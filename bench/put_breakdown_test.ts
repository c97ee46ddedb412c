import { assert, assertEquals } from "../tests/assert.ts";
import {
  breakdown,
  classify,
  type Event,
  markdownTable,
  mergeThreads,
  parseTrace,
  socketPorts,
  STEPS_1,
  STEPS_3,
} from "./put_breakdown.ts";
import { quantile } from "./stats.ts";

/** Asserts `actual` is within 1 ns (in ms) of `expected`. */
function assertAlmostEquals(actual: number, expected: number, what: string): void {
  assert(Math.abs(actual - expected) < 1e-6, `${what}: ${actual}, expected ${expected}`);
}

/** One member (client port 24790, peer port 24800): its event-loop thread. */
const MAIN_THREAD = `
1000.000000 read(20<TCP:[127.0.0.1:24790->127.0.0.1:51000]>, "\\0\\0\\26\\1\\4\\0\\0\\0\\1\\203"..., 65536) = 300 <0.000010>
1000.000020 read(20<TCP:[127.0.0.1:24790->127.0.0.1:51000]>, 0xc0006aa000, 65536) = -1 EAGAIN (Resource temporarily unavailable) <0.000003>
1000.000100 write(21</d/m0/member/wal/0000000000000000-0000000000000000.wal>, "\\10\\0\\0\\0\\5\\0"..., 400) = 400 <0.000020>
1000.000120 write(9<pipe:[4242]>, "\\1", 1) = 1 <0.000002>
1000.000200 read(33<TCP:[127.0.0.1:24790->127.0.0.1:51500]>, "\\0\\0\\10\\6\\0\\0\\0\\0\\0"..., 65536) = 300 <0.000004>
--- SIGURG {si_signo=SIGURG, si_code=SI_TKILL, si_pid=7, si_uid=0} ---
1000.000400 sendto(20<TCP:[127.0.0.1:24790->127.0.0.1:51000]>, "\\0\\0\\2\\1\\4"..., 65, MSG_NOSIGNAL, NULL, 0) = 65 <0.000010>
1000.000500 pwrite64(40</d/m0/member/snap/db>, "\\0"..., 4096, 8192) = 4096 <0.000030>
1000.001000 recvfrom(20<TCP:[127.0.0.1:24790->127.0.0.1:51000]>, "\\0\\0\\26\\1\\4"..., 65536, 0, NULL, NULL) = 314 <0.000010>
1000.001100 writev(21</d/m0/member/wal/0000000000000000-0000000000000000.wal>, [{iov_base="\\10\\0", iov_len=200}, {iov_base="\\0", iov_len=200}], 2) = 400 <0.000050>
1000.001300 write(20<TCP:[127.0.0.1:24790->127.0.0.1:51000]>, "\\0\\0\\4\\10\\0"..., 13) = 13 <0.000010>
1000.001700 write(20<TCP:[127.0.0.1:24790->127.0.0.1:51000]>, "\\0\\0\\2\\1\\4"..., 65) = 65 <0.000020>
1000.002500 read(20<TCP:[127.0.0.1:24790->127.0.0.1:51000]>, "\\0\\0\\26\\1\\4"..., 65536) = 314 <0.000010>
+++ killed by SIGKILL +++
`;

/** The same member's thread-pool thread, which runs fdatasync; the first one split by another thread. */
const POOL_THREAD = `
1000.000150 fdatasync(22</d/m0/member/wal/0000000000000000-0000000000000000.wal> <unfinished ...>
1000.000350 <... fdatasync resumed>) = 0 <0.000200>
1000.001200 fdatasync(22</d/m0/member/wal/0000000000000000-0000000000000000.wal>) = 0 <0.000300>
1000.002600 fdatasync(22</d/m0/member/wal/0000000000000000-0000000000000000.wal>) = ? <unavailable>
`;

Deno.test("parseTrace reads calls, joins unfinished ones, skips signals and exits", () => {
  const main = parseTrace(MAIN_THREAD, 100);
  assertEquals(main.length, 12);
  assertEquals(main[0], {
    tid: 100,
    start: 1000,
    dur: 0.00001,
    name: "read",
    fd: 20,
    desc: "TCP:[127.0.0.1:24790->127.0.0.1:51000]",
    ret: 300,
  });
  assertEquals(main[1].ret, -1);
  assertEquals(main[3].desc, "pipe:[4242]");
  assertEquals(main[8].name, "writev");
  assertEquals(main[8].ret, 400);
  const pool = parseTrace(POOL_THREAD, 101);
  assertEquals(pool.length, 2); // the call with no result is dropped
  assertEquals(pool[0].name, "fdatasync");
  assertEquals(pool[0].start, 1000.00015);
  assertEquals(pool[0].dur, 0.0002);
  assertEquals(pool[0].desc, "/d/m0/member/wal/0000000000000000-0000000000000000.wal");
  const merged = mergeThreads([main, pool]);
  assertEquals(merged.map((c) => c.tid).slice(0, 5), [100, 100, 100, 100, 101]);
});

Deno.test("socketPorts reads both ends of IPv4 and IPv6 sockets", () => {
  assertEquals(socketPorts("TCP:[127.0.0.1:24790->127.0.0.1:51000]"), { local: 24790, remote: 51000 });
  assertEquals(socketPorts("TCPv6:[[::1]:24790->[::1]:40000]"), { local: 24790, remote: 40000 });
  assertEquals(socketPorts("TCP:[18811]"), null);
  assertEquals(socketPorts("/d/m0/member/wal/0.wal"), null);
});

Deno.test("classify finds the load's connection and the WAL", () => {
  const calls = mergeThreads([parseTrace(MAIN_THREAD, 100), parseTrace(POOL_THREAD, 101)]);
  const ev = classify(calls, { client: 24790, peers: [24800] });
  const roles = (r: string) => ev.filter((e: Event) => e.role === r).length;
  assertEquals(roles("client-read"), 3); // not the EAGAIN, not the other connection on 24790
  assertEquals(roles("client-write"), 3);
  assertEquals(roles("wal-write"), 2); // not the pipe, not the db
  assertEquals(roles("wal-sync"), 2);
  assertEquals(ev.length, 10);
});

Deno.test("breakdown of one member: each put's steps from the merged threads", () => {
  const calls = mergeThreads([parseTrace(MAIN_THREAD, 100), parseTrace(POOL_THREAD, 101)]);
  const ev = classify(calls, { client: 24790, peers: [24800] });
  const b = breakdown([ev], 0, 999, 0, 26);
  assertEquals(b.unmatched, 0);
  assertEquals(b.puts.length, 2);
  assertEquals(b.callsPerPut, 13);
  const want = [
    [0.09, 0.05, 0.2, 0.06, 0.4, 0.6],
    // the 13-byte write before the sync ends is not the response; the one after it is
    [0.09, 0.1, 0.3, 0.22, 0.71, 0.79],
  ];
  for (let p = 0; p < 2; p++) {
    for (let s = 0; s < STEPS_1.length; s++) {
      assertAlmostEquals(b.puts[p][STEPS_1[s]], want[p][s], `put ${p} ${STEPS_1[s]}`);
    }
  }
  // puts that begin before `since` are left out
  assertEquals(breakdown([ev], 0, 1000.0005, 0).puts.length, 1);
});

/**
 * Three members: m1 leads (client 24792); m0 acknowledges first, m2 later. After the commit m1 sends two
 * more peer writes, one on the thread that replies.
 */
const M1 = `
2000.000000 recvfrom(30<TCP:[127.0.0.1:24792->127.0.0.1:52000]>, "\\0\\0\\26"..., 65536, 0, NULL, NULL) = 314 <0.000010>
2000.000100 write(24</d/m1/member/wal/0.wal>, "\\10\\0"..., 400) = 400 <0.000020>
2000.000150 sendto(29<TCP:[127.0.0.1:34320->127.0.0.1:24800]>, "\\0\\0\\1F"..., 330, MSG_NOSIGNAL, NULL, 0) = 330 <0.000010>
2000.000170 sendto(27<TCP:[127.0.0.1:57808->127.0.0.1:24804]>, "\\0\\0\\1E"..., 329, MSG_NOSIGNAL, NULL, 0) = 329 <0.000010>
2000.000180 sendto(29<TCP:[127.0.0.1:34320->127.0.0.1:24800]>, "\\0\\0\\0\\34"..., 32, MSG_NOSIGNAL, NULL, 0) = 32 <0.000010>
2000.001000 recvfrom(28<TCP:[127.0.0.1:24802->127.0.0.1:33848]>, "\\0\\0\\0\\34"..., 16384, 0, NULL, NULL) = 32 <0.000010>
2000.001100 sendto(29<TCP:[127.0.0.1:34320->127.0.0.1:24800]>, "\\0\\0\\0!"..., 37, MSG_NOSIGNAL, NULL, 0) = 37 <0.000010>
2000.001300 sendto(30<TCP:[127.0.0.1:24792->127.0.0.1:52000]>, "\\0\\0\\2"..., 65, MSG_NOSIGNAL, NULL, 0) = 65 <0.000010>
2000.002000 recvfrom(30<TCP:[127.0.0.1:24792->127.0.0.1:52000]>, "\\0\\0\\26"..., 65536, 0, NULL, NULL) = 314 <0.000010>
`;
const M1_POOL = `
2000.000130 fdatasync(31</d/m1/member/wal/0.wal>) = 0 <0.000400>
2000.001200 sendto(27<TCP:[127.0.0.1:57808->127.0.0.1:24804]>, "\\0\\0\\0!"..., 37, MSG_NOSIGNAL, NULL, 0) = 37 <0.000010>
`;
const M0 = `
2000.000200 recvfrom(27<TCP:[127.0.0.1:24800->127.0.0.1:34320]>, "\\0\\0\\1F"..., 16384, 0, NULL, NULL) = 330 <0.000010>
2000.000300 write(21</d/m0/member/wal/0.wal>, "\\10\\0"..., 400) = 400 <0.000020>
2000.000350 fdatasync(21</d/m0/member/wal/0.wal>) = 0 <0.000500>
2000.000900 sendto(29<TCP:[127.0.0.1:33848->127.0.0.1:24802]>, "\\0\\0\\0\\34"..., 32, MSG_NOSIGNAL, NULL, 0) = 32 <0.000010>
`;
const M2 = `
2000.000250 read(28<TCP:[127.0.0.1:24804->127.0.0.1:57808]>, "141\\r\\n"..., 4096) = 351 <0.000010>
2000.000400 write(23</d/m2/member/wal/0.wal>, "\\10\\0"..., 400) = 400 <0.000020>
2000.000450 fdatasync(23</d/m2/member/wal/0.wal>) = 0 <0.000800>
2000.001300 write(31<TCP:[127.0.0.1:33876->127.0.0.1:24802]>, "\\0\\0\\0\\33"..., 32) = 32 <0.000010>
`;

Deno.test("breakdown of three members follows the first acknowledgement", () => {
  const peers = [24800, 24802, 24804];
  const members = [
    classify(parseTrace(M0, 300), { client: 24790, peers }),
    classify(mergeThreads([parseTrace(M1, 200), parseTrace(M1_POOL, 201)]), { client: 24792, peers }),
    classify(parseTrace(M2, 400), { client: 24794, peers }),
  ];
  const b = breakdown(members, 1, 1999, 0);
  assertEquals(b.unmatched, 0);
  assertEquals(b.puts.length, 1);
  const want = [0.14, 0.06, 0.09, 0.05, 0.5, 0.05, 0.11, 0.3, 1.3, 0.7, 0.09, 0.03, 0.4, -0.48, 1];
  for (let s = 0; s < STEPS_3.length; s++) assertAlmostEquals(b.puts[0][STEPS_3[s]], want[s], STEPS_3[s]);
});

Deno.test("quantile is nearest rank", () => {
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
  assertEquals(quantile(xs, 0.5), 50);
  assertEquals(quantile(xs, 0.99), 99);
  assertEquals(quantile([], 0.5), NaN);
});

Deno.test("markdownTable shows p50 and p99 of each step and the run's figures", () => {
  const puts = [1, 2, 3, 4].map((v) => ({ [STEPS_1[0]]: v }));
  const table = markdownTable(STEPS_1.slice(0, 1), {
    "etcd-ts": { breakdown: { puts, unmatched: 1, callsPerPut: 5 }, opsStrace: 500, opsPlain: 1000 },
  });
  const lines = table.split("\n");
  assertEquals(lines[0], "| step (ms) | etcd-ts p50 | etcd-ts p99 |");
  assertEquals(lines[2], `| ${STEPS_1[0]} | 2.000 | 4.000 |`);
  assertEquals(lines[3], "| puts measured (unmatched) | 4 (1) |  |");
  assertEquals(lines[lines.length - 1], "| ms strace adds per put (1/ops − 1/ops) | 1.000 |  |");
});
