/**
 * Authentication and authorization end to end, with real processes, the real etcdctl, raw gRPC calls and
 * the etcd3 npm client, against etcd-ts and the real etcd alike:
 *
 * - etcdctl's user, role and permission commands (a single key, a prefix, a range), `auth enable` and
 *   `auth disable`, what a user may and may not read, write, watch and put in a transaction, the root
 *   rules, and which maintenance and cluster calls need root;
 * - tokens: a simple token stops working after `--auth-token-ttl`, JWT tokens (RS256 and ES256 keys made
 *   by openssl) work on every member of their cluster and on no other;
 * - the common name of a client certificate as the user (`--client-cert-auth`), `--user` taking
 *   precedence;
 * - durability: users and permissions survive `kill -9`, and reach a follower that catches up by a
 *   snapshot;
 * - the etcd3 client's user and role calls, and a client with `auth: { username, password }`;
 * - bad input: wrong passwords in a loop (never logged), empty, duplicate and missing names, grants and
 *   revocations that do not apply, Authenticate while auth is off, a token of another cluster.
 *
 * Where etcd 3.4 (the etcd installed here) and newer etcd answer differently on purpose, both answers are
 * accepted and the difference is named where it is checked.
 *
 * Loopback addresses 127.0.1.100-129 are this file's: 100-114 for etcd-ts, 115-129 for etcd.
 */
import { join } from "node:path";
import { Etcd3, EtcdAuthenticationFailedError, EtcdPermissionDeniedError, Range } from "etcd3";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { Cluster, ctlError, type EndpointStatus } from "./cluster.ts";
import { connect, within } from "./client_util.ts";
import { Ctl, freePort, HAVE_ETCDCTL, type Impl, implementations, Member, waitUntil } from "./helpers.ts";
import { openssl, Pki } from "./pki.ts";
import {
  authenticate,
  authenticateReply,
  bytesField,
  ctlAs,
  failsAs,
  getWithToken,
  message,
  OK,
  okAs,
  putWithToken,
  raftIndexOf,
  unary,
  UNAUTHENTICATED,
} from "./auth_e2e_util.ts";

/** This file's loopback addresses, 15 for each implementation. */
function hostsOf(impl: Impl): string[] {
  const first = impl === "etcd-ts" ? 100 : 115;
  return Array.from({ length: 15 }, (_, i) => `127.0.1.${first + i}`);
}

const ROOT_PW = "Root-Pw-4471";
const ROOT = `root:${ROOT_PW}`;

const DENIED = "etcdserver: permission denied";
const AUTH_FAILED = "etcdserver: authentication failed, invalid user ID or password";
const USER_EMPTY = "etcdserver: user name is empty";
const INVALID_TOKEN = "etcdserver: invalid auth token";
const INVALID_MGMT = "etcdserver: invalid auth management";
/**
 * Defragment, Snapshot and HashKV refused to a user who is not root: etcd 3.4 and 3.5 return the auth
 * store's error as it is (gRPC code Unknown, `auth: permission denied`); etcd 3.6 and later map it to the
 * PermissionDenied status every other call answers.
 */
const MAINTENANCE_DENIED = [
  "rpc error: code = Unknown desc = auth: permission denied",
  DENIED,
];

function assertIncludes(text: string, part: string): void {
  assert(text.includes(part), `expected ${JSON.stringify(part)} in:\n${text}`);
}

/** A transaction for `etcdctl txn` on stdin: compares, then success ops, then failure ops. */
function txn(compares: string[], success: string[], failure: string[]): string {
  return [...compares, "", ...success, "", ...failure, "", ""].join("\n");
}

/** Creates root (with the root role, as `auth enable` needs) through `endpoint`. */
async function addRoot(ep: string, ctlArgs: string[] = []): Promise<void> {
  assertEquals(await okAs(ep, undefined, [...ctlArgs, "user", "add", ROOT]), "User root created\n");
  await okAs(ep, undefined, [...ctlArgs, "role", "add", "root"]);
  await okAs(ep, undefined, [...ctlArgs, "user", "grant-role", "root", "root"]);
}

/** Adds user `name` with `password` and role `role` holding `perms` (each etcdctl grant-permission args). */
async function addUserWithRole(
  ep: string,
  name: string,
  password: string,
  role: string,
  perms: string[][],
  asUser?: string,
  ctlArgs: string[] = [],
): Promise<void> {
  await okAs(ep, asUser, [...ctlArgs, "role", "add", role]);
  for (const p of perms) await okAs(ep, asUser, [...ctlArgs, "role", "grant-permission", role, ...p]);
  await okAs(ep, asUser, [...ctlArgs, "user", "add", `${name}:${password}`]);
  await okAs(ep, asUser, [...ctlArgs, "user", "grant-role", name, role]);
}

for (const impl of implementations()) {
  const HOSTS = hostsOf(impl);

  Deno.test({
    name: `[${impl}] etcdctl: users, roles and permissions; auth enable, enforce, disable`,
    ignore: !HAVE_ETCDCTL,
    fn: async (t) => {
      const m = await Member.start({ impl, host: HOSTS[0] });
      const ep = m.endpoint;
      const ALICE = "alice:Alice-Pw-5182";
      const ALICE2 = "alice:Alice-Pw-2nd-771";
      const ctls: Ctl[] = [];
      const dir = await Deno.makeTempDir({ prefix: "etcd-auth-e2e-" });
      try {
        await t.step("auth enable without a root user is refused", async () => {
          await failsAs(ep, undefined, ["auth", "enable"], "etcdserver: root user does not exist");
          // and nothing changed: requests without a user still work
          assertEquals(await okAs(ep, undefined, ["put", "k1", "v1"]), "OK\n");
        });

        await t.step("users, roles and permissions are made and listed", async () => {
          assertEquals(await okAs(ep, undefined, ["user", "add", ROOT]), "User root created\n");
          assertEquals(await okAs(ep, undefined, ["role", "add", "r1"]), "Role r1 created\n");
          // a single key, a prefix, a range with its end
          assertEquals(
            await okAs(ep, undefined, ["role", "grant-permission", "r1", "read", "k1"]),
            "Role r1 updated\n",
          );
          assertEquals(
            await okAs(ep, undefined, ["role", "grant-permission", "r1", "write", "w/", "--prefix"]),
            "Role r1 updated\n",
          );
          assertEquals(
            await okAs(ep, undefined, ["role", "grant-permission", "r1", "readwrite", "a", "b"]),
            "Role r1 updated\n",
          );
          assertEquals(await okAs(ep, undefined, ["user", "add", ALICE]), "User alice created\n");
          assertEquals(
            await okAs(ep, undefined, ["user", "grant-role", "alice", "r1"]),
            "Role r1 is granted to user alice\n",
          );
          assertEquals(await okAs(ep, undefined, ["auth", "enable"]), "Authentication Enabled\n");

          assertEquals(await okAs(ep, ROOT, ["user", "list"]), "alice\nroot\n");
          assertEquals(await okAs(ep, ROOT, ["role", "list"]), "r1\nroot\n");
          assertEquals(await okAs(ep, ROOT, ["user", "get", "alice"]), "User: alice\nRoles: r1\n");
          // etcdctl's auth enable made the root role and granted it to root
          assertEquals(await okAs(ep, ROOT, ["user", "get", "root"]), "User: root\nRoles: root\n");
          // etcd 3.4 shows the root role's (empty) stored permissions; etcd 3.6 and later show the whole
          // key space, which is what the role grants
          const rootRole = await okAs(ep, ROOT, ["role", "get", "root"]);
          assert(
            [
              "Role root\nKV Read:\nKV Write:\n",
              "Role root\nKV Read:\n\t[, <open ended> (prefix )\nKV Write:\n\t[, <open ended> (prefix )\n",
            ].includes(rootRole),
            rootRole,
          );
          assertEquals(
            await okAs(ep, ROOT, ["role", "get", "r1"]),
            "Role r1\nKV Read:\n\t[a, b) (prefix a)\n\tk1\nKV Write:\n\t[a, b) (prefix a)\n\t[w/, w0) (prefix w/)\n",
          );
          assertEquals(
            await okAs(ep, ROOT, ["user", "get", "alice", "--detail"]),
            "User: alice\n\nRole r1\nKV Read:\n\t[a, b) (prefix a)\n\tk1\nKV Write:\n\t[a, b) (prefix a)\n" +
              "\t[w/, w0) (prefix w/)\n",
          );
        });

        await t.step("a user reads and writes what its role allows, and nothing else", async () => {
          assertEquals(await okAs(ep, ALICE, ["get", "k1", "--print-value-only"]), "v1\n");
          await failsAs(ep, ALICE, ["put", "k1", "x"], DENIED);
          await failsAs(ep, ALICE, ["get", "k2"], DENIED);
          await failsAs(ep, ALICE, ["get", "k1", "--prefix"], DENIED);
          assertEquals(await okAs(ep, ALICE, ["put", "w/x", "1"]), "OK\n");
          await failsAs(ep, ALICE, ["get", "w/x"], DENIED);
          assertEquals(await okAs(ep, ALICE, ["put", "a1", "2"]), "OK\n");
          assertEquals(await okAs(ep, ALICE, ["get", "a", "--prefix", "--keys-only"]), "a1\n\n");
          assertEquals(await okAs(ep, ALICE, ["get", "a", "b", "--print-value-only"]), "2\n");
          await failsAs(ep, ALICE, ["get", "a", "c"], DENIED);
          await failsAs(ep, ALICE, ["put", "b", "1"], DENIED);
          assertEquals(await okAs(ep, ALICE, ["del", "w/x"]), "1\n");
          await failsAs(ep, ALICE, ["del", "k1"], DENIED);
          // root may do anything; what alice was refused did not happen
          assertEquals(await okAs(ep, ROOT, ["get", "k1", "--print-value-only"]), "v1\n");
          assertEquals(await okAs(ep, ROOT, ["get", "b"]), "");
          assertEquals(await okAs(ep, ROOT, ["get", "w/x"]), "");
          // auth management is root's
          await failsAs(ep, ALICE, ["user", "list"], DENIED);
          // except a look at oneself and one's own roles
          assertEquals(await okAs(ep, ALICE, ["user", "get", "alice"]), "User: alice\nRoles: r1\n");
          assertMatch(await okAs(ep, ALICE, ["role", "get", "r1"]), /^Role r1\nKV Read:\n/);
          await failsAs(ep, ALICE, ["user", "get", "root"], DENIED);
          await failsAs(ep, ALICE, ["role", "get", "root"], DENIED);
          await failsAs(ep, ALICE, ["role", "list"], DENIED);
          await failsAs(ep, ALICE, ["user", "add", "mallory:x"], DENIED);
          await failsAs(ep, ALICE, ["auth", "disable"], DENIED);
        });

        await t.step("no user, a wrong password, an unknown user", async () => {
          await failsAs(ep, undefined, ["get", "k1"], USER_EMPTY);
          await failsAs(ep, undefined, ["put", "k1", "x"], USER_EMPTY);
          await failsAs(ep, "alice:wrong", ["get", "k1"], AUTH_FAILED);
          await failsAs(ep, "nobody:Alice-Pw-5182", ["get", "k1"], AUTH_FAILED);
          assertEquals(await okAs(ep, ROOT, ["get", "k1", "--print-value-only"]), "v1\n");
        });

        await t.step("watches: a forbidden range is refused, a permitted one delivers events", async () => {
          const refused = new Ctl(ep, ["--user", ALICE, "watch", "zz"]);
          ctls.push(refused);
          const r = await refused.waitExit(10_000);
          assert(r.code !== 0, refused.describe());
          // etcdctl prints the server's reason on stderr
          assertIncludes(
            r.stderr,
            "watch was canceled (rpc error: code = PermissionDenied desc = etcdserver: permission denied)",
          );
          assertEquals(ctlError(r), "watch is canceled by the server", refused.describe());
          const refusedKey = new Ctl(ep, ["--user", ALICE, "watch", "w/x"]); // write-only
          ctls.push(refusedKey);
          assertIncludes((await refusedKey.waitExit(10_000)).stderr, `desc = ${DENIED})`);

          const w = new Ctl(ep, ["--user", ALICE, "watch", "a", "--prefix"]);
          ctls.push(w);
          // a watch sees only writes after it was made: write until one shows
          for (let i = 0; i < 40 && w.lines().length === 0; i++) {
            await okAs(ep, ROOT, ["put", "a-watched", `hello-${i}`]);
            await waitUntil(() => w.lines().length > 0, 250, () => "").catch(() => {});
          }
          const lines = await w.waitLines(3, 5000);
          assertEquals(lines.slice(0, 2), ["PUT", "a-watched"], w.describe());
          assertMatch(lines[2], /^hello-\d+$/);
          // and keeps delivering
          await okAs(ep, ROOT, ["put", "a-last", "seen"]);
          await waitUntil(
            () => w.lines().includes("a-last"),
            5000,
            () => `the permitted watch did not print a-last: ${w.describe()}`,
          );
        });

        await t.step("txn: every compare and operation is checked, executed or not", async () => {
          await okAs(ep, ROOT, ["put", "zz", "hidden"]);
          assertEquals(
            await okAs(ep, ALICE, ["txn"], txn(['value("a1") = "2"'], ["put w/t 1"], ["put a1 3"])),
            "SUCCESS\n\nOK\n",
          );
          await failsAs(ep, ALICE, ["txn"], DENIED, txn(['value("zz") = "v"'], ["put w/t 2"], []));
          await failsAs(ep, ALICE, ["txn"], DENIED, txn(['value("a1") = "2"'], ["put zz 1"], []));
          // the failure branch is checked although the compare succeeds
          await failsAs(ep, ALICE, ["txn"], DENIED, txn(['value("a1") = "2"'], ["put w/t 3"], ["get zz"]));
          await failsAs(ep, ALICE, ["txn"], DENIED, txn([], ["get w/t"], []));
          assertEquals(await okAs(ep, ROOT, ["get", "zz", "--print-value-only"]), "hidden\n");
          assertEquals(await okAs(ep, ROOT, ["get", "w/t", "--print-value-only"]), "1\n");
        });

        await t.step("lease revoke needs write permission on every key attached", async () => {
          const granted = await okAs(ep, ROOT, ["lease", "grant", "600"]);
          const id = /^lease ([0-9a-f]+) granted with TTL\(600s\)$/.exec(granted.trim())?.[1];
          assert(id !== undefined, granted);
          assertEquals(await okAs(ep, ALICE, ["put", "a-leased", "x", `--lease=${id}`]), "OK\n");
          await failsAs(ep, ALICE, ["put", "zz-leased", "x", `--lease=${id}`], DENIED);
          assertEquals(await okAs(ep, ROOT, ["put", "zz-leased", "x", `--lease=${id}`]), "OK\n");
          await failsAs(ep, ALICE, ["lease", "revoke", id], `failed to revoke lease (${DENIED})`);
          assertEquals(await okAs(ep, ROOT, ["get", "zz-leased", "--print-value-only"]), "x\n");
          assertEquals(await okAs(ep, ROOT, ["lease", "revoke", id]), `lease ${id} revoked\n`);
          assertEquals(await okAs(ep, ROOT, ["get", "a-leased"]), "");
        });

        await t.step("user passwd: the old password is refused afterwards", async () => {
          assertEquals(
            await okAs(ep, ROOT, ["user", "passwd", "alice", "--interactive=false"], "Alice-Pw-2nd-771\n"),
            "Password updated\n",
          );
          await failsAs(ep, ALICE, ["get", "k1"], AUTH_FAILED);
          assertEquals(await okAs(ep, ALICE2, ["get", "k1", "--print-value-only"]), "v1\n");
        });

        await t.step("revoke-permission and revoke-role take effect", async () => {
          assertEquals(
            await okAs(ep, ROOT, ["role", "revoke-permission", "r1", "a", "b"]),
            "Permission of range [a, b) is revoked from role r1\n",
          );
          await failsAs(ep, ALICE2, ["get", "a1"], DENIED);
          await failsAs(ep, ALICE2, ["put", "a1", "4"], DENIED);
          assertEquals(
            await okAs(ep, ROOT, ["role", "revoke-permission", "r1", "w/", "--prefix"]),
            "Permission of range [w/, w0) is revoked from role r1\n",
          );
          await failsAs(ep, ALICE2, ["put", "w/y", "1"], DENIED);
          assertEquals(await okAs(ep, ROOT, ["role", "get", "r1"]), "Role r1\nKV Read:\n\tk1\nKV Write:\n");
          assertEquals(await okAs(ep, ALICE2, ["get", "k1", "--print-value-only"]), "v1\n");
          assertEquals(
            await okAs(ep, ROOT, ["user", "revoke-role", "alice", "r1"]),
            "Role r1 is revoked from user alice\n",
          );
          await failsAs(ep, ALICE2, ["get", "k1"], DENIED);
          assertEquals(await okAs(ep, ROOT, ["user", "get", "alice"]), "User: alice\nRoles:\n");
        });

        await t.step("root cannot be deleted nor lose the root role while auth is on", async () => {
          await failsAs(ep, ROOT, ["user", "delete", "root"], INVALID_MGMT);
          await failsAs(ep, ROOT, ["user", "revoke-role", "root", "root"], INVALID_MGMT);
          await failsAs(ep, ROOT, ["role", "delete", "root"], INVALID_MGMT);
          assertEquals(await okAs(ep, ROOT, ["user", "get", "root"]), "User: root\nRoles: root\n");
          // the root role makes any user an administrator, for as long as the user has it
          assertEquals(
            await okAs(ep, ROOT, ["user", "grant-role", "alice", "root"]),
            "Role root is granted to user alice\n",
          );
          assertEquals(await okAs(ep, ALICE2, ["user", "list"]), "alice\nroot\n");
          assertEquals(await okAs(ep, ALICE2, ["get", "zz", "--print-value-only"]), "hidden\n");
          await okAs(ep, ALICE2, ["user", "revoke-role", "alice", "root"]);
          await failsAs(ep, ALICE2, ["user", "list"], DENIED);
        });

        await t.step("maintenance and membership: what needs root", async () => {
          await okAs(ep, ROOT, ["user", "grant-role", "alice", "r1"]);
          // Status: any user may ask (etcd 3.4.23, and etcd 3.5.29+ and main since a 2026 change; between
          // those, some releases asked for root). Without a user: etcd 3.4.23 answers, newer etcd refuses.
          assertMatch(await okAs(ep, ALICE2, ["endpoint", "status"]), new RegExp(`^${ep}, [0-9a-f]+, `));
          const anonymous = await ctlAs(ep, undefined, ["endpoint", "status"]);
          assert(
            (anonymous.code === 0 && anonymous.stdout.startsWith(`${ep}, `)) ||
              (anonymous.code !== 0 &&
                anonymous.stderr.includes(`Failed to get the status of endpoint ${ep} (${USER_EMPTY})`)),
            `endpoint status without a user: ${anonymous.stdout}${anonymous.stderr}`,
          );

          const defrag = await ctlAs(ep, ALICE2, ["defrag"]);
          assert(defrag.code !== 0, defrag.stdout);
          const said = MAINTENANCE_DENIED.map((e) => `Failed to defragment etcd member[${ep}] (${e})`);
          assert(said.some((s) => defrag.stderr.includes(s)), `defrag as alice: ${defrag.stderr}`);
          assertEquals(await okAs(ep, ROOT, ["defrag"]), `Finished defragmenting etcd member[${ep}]\n`);

          const file = join(dir, "snap.db");
          const save = await ctlAs(ep, ALICE2, ["snapshot", "save", file]);
          assert(save.code !== 0 && MAINTENANCE_DENIED.includes(ctlError(save)), `${save.stderr}`);
          assert(!(await exists(file)), "a refused snapshot wrote no file");
          assertIncludes(await okAs(ep, ROOT, ["snapshot", "save", file]), `Snapshot saved at ${file}`);
          assert((await Deno.stat(file)).size > 0);

          const hash = await ctlAs(ep, ALICE2, ["endpoint", "hashkv"]);
          assert(hash.code !== 0 && MAINTENANCE_DENIED.includes(ctlError(hash)), hash.stderr);
          assertMatch(await okAs(ep, ROOT, ["endpoint", "hashkv"]), new RegExp(`^${ep}, \\d+\n$`));

          // a learner does not count for the quorum, so adding one to a one-member cluster is safe
          const peer = `http://${HOSTS[0]}:${freePort(HOSTS[0])}`;
          await failsAs(ep, ALICE2, ["member", "add", "extra", "--learner", `--peer-urls=${peer}`], DENIED);
          const added = await okAs(ep, ROOT, ["member", "add", "extra", "--learner", `--peer-urls=${peer}`]);
          // etcdctl prints IDs space-padded to 16 places (%16x)
          const id = /^Member +([0-9a-f]+) added to cluster +([0-9a-f]+)\n/.exec(added);
          assert(id !== null, added);
          await failsAs(ep, ALICE2, ["member", "remove", id[1]], DENIED);
          assertEquals(
            await okAs(ep, ROOT, ["member", "remove", id[1]]),
            `Member ${id[1].padStart(16)} removed from cluster ${id[2].padStart(16)}\n`,
          );
        });

        await t.step("auth disable (as root): everything is open again", async () => {
          assertEquals(await okAs(ep, ROOT, ["auth", "disable"]), "Authentication Disabled\n");
          assertEquals(await okAs(ep, undefined, ["put", "zz", "open"]), "OK\n");
          assertEquals(await okAs(ep, undefined, ["get", "zz", "--print-value-only"]), "open\n");
          assertEquals(await okAs(ep, undefined, ["user", "list"]), "alice\nroot\n");
          // etcdctl goes on without a token when the server says auth is off, whatever the password
          assertEquals(await okAs(ep, "alice:wrong", ["put", "k1", "again"]), "OK\n");
          await failsAs(ep, undefined, ["user", "delete", "nobody"], "etcdserver: user name not found");
          // root's rules are for while auth is on
          assertEquals(
            await okAs(ep, undefined, ["user", "revoke-role", "root", "root"]),
            "Role root is revoked from user root\n",
          );
        });
      } catch (err) {
        console.error(`--- ${impl} log ---\n${m.logs.join("")}`);
        throw err;
      } finally {
        await Promise.all(ctls.map((c) => c.stop()));
        await m.destroy();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });

  Deno.test({
    name: `[${impl}] tokens: a simple token expires after --auth-token-ttl; JWT works across members only`,
    ignore: !HAVE_ETCDCTL,
    fn: async (t) => {
      const dir = await Deno.makeTempDir({ prefix: "etcd-auth-jwt-" });
      const rsa = { priv: join(dir, "rsa.pem"), pub: join(dir, "rsa.pub") };
      const ec = { priv: join(dir, "ec.pem"), pub: join(dir, "ec.pub") };
      await openssl(dir, ["genrsa", "-out", rsa.priv, "2048"]);
      await openssl(dir, ["rsa", "-in", rsa.priv, "-pubout", "-out", rsa.pub]);
      await openssl(dir, ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", ec.priv]);
      await openssl(dir, ["ec", "-in", ec.priv, "-pubout", "-out", ec.pub]);
      const jwt = (k: { priv: string; pub: string }, method: string) =>
        `jwt,pub-key=${k.pub},priv-key=${k.priv},sign-method=${method}`;

      const simple = await Member.start({ impl, host: HOSTS[1], args: ["--auth-token-ttl", "3"] });
      // the JWT members start while the simple token's TTL runs out
      const startingA = Cluster.start({
        impl,
        hosts: HOSTS.slice(2, 5),
        token: "jwt-cluster-a",
        extraArgs: ["--auth-token", jwt(rsa, "RS256")],
      });
      const startingB = Member.start({ impl, host: HOSTS[5], args: ["--auth-token", jwt(ec, "ES256")] });
      // awaited below; a failure to start is reported there, not as an unhandled rejection meanwhile
      startingA.catch(() => {});
      startingB.catch(() => {});
      let a: Cluster | undefined;
      let b: Member | undefined;
      const BOB_PW = "Bob-Pw-3318";
      /** Root, and bob who may read `t/`, then auth on; `t/1` = `one`. */
      const setUp = async (ep: string) => {
        await addRoot(ep);
        await addUserWithRole(ep, "bob", BOB_PW, "reader", [["read", "t/", "--prefix"]]);
        await okAs(ep, undefined, ["put", "t/1", "one"]);
        await okAs(ep, undefined, ["auth", "enable"]);
      };
      try {
        await t.step("simple token: valid within the TTL, refused after it", async () => {
          await setUp(simple.endpoint);
          const ep = simple.endpoint;
          // a use renews a simple token's TTL: `early` and `late` are used once each, `kept` every second
          const early = await authenticate(ep, "bob", BOB_PW);
          const late = await authenticate(ep, "bob", BOB_PW);
          const kept = await authenticate(ep, "bob", BOB_PW);
          const at = (token: { at: number }, ageMs: number) =>
            new Promise((r) => setTimeout(r, Math.max(0, token.at + ageMs - performance.now())));
          const keeping = (async () => {
            const seen: string[] = [];
            for (let i = 1; i <= 6; i++) {
              await at(kept, i * 1000);
              const r = await getWithToken(ep, "t/1", kept.token);
              seen.push(`${r.status} ${r.message}`);
            }
            return seen;
          })();
          await at(early, 1000);
          const sentAt = performance.now();
          const used = await getWithToken(ep, "t/1", early.token);
          assertEquals([used.status, used.values], [OK, ["one"]], used.message);
          assert(sentAt - early.at < 2000, "the early use was well within the TTL");
          await at(late, 5500);
          const expired = await getWithToken(ep, "t/1", late.token);
          assertEquals([expired.status, expired.message], [UNAUTHENTICATED, INVALID_TOKEN]);
          assertEquals(await keeping, Array(6).fill(`${OK} `), "a token in use every second stays valid");
          // a new token works
          const fresh = await authenticate(ep, "bob", BOB_PW);
          assertEquals((await getWithToken(ep, "t/1", fresh.token)).values, ["one"]);
          // a made-up token is refused the same way
          const bogus = await getWithToken(ep, "t/1", "not-a-token");
          assertEquals([bogus.status, bogus.message], [UNAUTHENTICATED, INVALID_TOKEN]);
        });

        await t.step(
          "simple token: a user's tokens end with a password change and with the user",
          async () => {
            const ep = simple.endpoint;
            const before = await authenticate(ep, "bob", BOB_PW);
            await okAs(ep, ROOT, ["user", "passwd", "bob", "--interactive=false"], "Bob-Pw-2nd-5\n");
            const r = await getWithToken(ep, "t/1", before.token);
            assertEquals([r.status, r.message], [UNAUTHENTICATED, INVALID_TOKEN]);
            const after = await authenticate(ep, "bob", "Bob-Pw-2nd-5");
            assertEquals((await getWithToken(ep, "t/1", after.token)).values, ["one"]);
            assertEquals(await okAs(ep, ROOT, ["user", "delete", "bob"]), "User bob deleted\n");
            const gone = await getWithToken(ep, "t/1", after.token);
            assertEquals([gone.status, gone.message], [UNAUTHENTICATED, INVALID_TOKEN]);
          },
        );

        const ca = a = await startingA;
        const mb = b = await startingB;

        await t.step("JWT: a token of one member works on the others, not on another cluster", async () => {
          await setUp(ca.members[0].endpoint);
          await setUp(mb.endpoint);
          const fromA = await authenticate(ca.members[0].endpoint, "bob", BOB_PW);
          const fromB = await authenticate(mb.endpoint, "bob", BOB_PW);
          assertEquals(fromA.token.split(".").length, 3, `a JWT has three parts: ${fromA.token}`);
          for (const m of ca.members) {
            // a linearizable read through the member: it has applied the users and auth enable
            assertEquals(await okAs(m.endpoint, ROOT, ["get", "t/1", "--print-value-only"]), "one\n");
            const r = await getWithToken(m.endpoint, "t/1", fromA.token);
            assertEquals([r.status, r.message, r.values], [OK, "", ["one"]], m.name);
            const denied = await getWithToken(m.endpoint, "other", fromA.token);
            assertEquals([denied.status, denied.message], [7, DENIED]);
          }
          const onB = await getWithToken(mb.endpoint, "t/1", fromB.token);
          assertEquals([onB.status, onB.values], [OK, ["one"]], onB.message);
          // same users and passwords, other signing keys
          for (const [ep, token] of [[mb.endpoint, fromA.token], [ca.members[1].endpoint, fromB.token]]) {
            const r = await getWithToken(ep, "t/1", token);
            assertEquals([r.status, r.message], [UNAUTHENTICATED, INVALID_TOKEN], ep);
          }
          // a token whose signature was tampered with
          const forged = fromA.token.slice(0, -4) + (fromA.token.endsWith("AAAA") ? "BBBB" : "AAAA");
          const r = await getWithToken(ca.members[2].endpoint, "t/1", forged);
          assertEquals([r.status, r.message], [UNAUTHENTICATED, INVALID_TOKEN]);
          // a JWT carries the auth revision it was made at: after any change to users, roles or
          // permissions it is refused (and etcdctl, the etcd3 client, ... authenticate again)
          await okAs(ca.members[0].endpoint, ROOT, ["role", "add", "another"]);
          for (const m of ca.members) {
            // a linearizable read through the member: it has applied the change once this answers
            assertEquals(await okAs(m.endpoint, ROOT, ["get", "t/1", "--print-value-only"]), "one\n");
            const old = await getWithToken(m.endpoint, "t/1", fromA.token);
            assertEquals([old.status, old.message], [3, "etcdserver: revision of auth store is old"], m.name);
          }
          const renewed = await authenticate(ca.members[1].endpoint, "bob", BOB_PW);
          assertEquals((await getWithToken(ca.members[2].endpoint, "t/1", renewed.token)).values, ["one"]);
        });
      } catch (err) {
        console.error(
          `--- ${impl} logs ---\n${simple.logs.join("")}\n${a?.logs() ?? ""}\n${b?.logs.join("") ?? ""}`,
        );
        throw err;
      } finally {
        await simple.destroy();
        const [ra, rb] = await Promise.allSettled([startingA, startingB]);
        if (ra.status === "fulfilled") await ra.value.destroy();
        if (rb.status === "fulfilled") await rb.value.destroy();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });

  Deno.test({
    name: `[${impl}] client certificates: the common name is the user unless --user says otherwise`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      const pki = await Pki.create();
      const host = HOSTS[6];
      const member = await pki.member("etcd-member", host);
      const admin = await pki.client("admin"); // not a user
      const alice = await pki.client("alice");
      const asCert = (
        c: { cert: string; key: string },
      ) => ["--cacert", pki.ca, "--cert", c.cert, "--key", c.key];
      const c = await Cluster.start({
        impl,
        hosts: [host],
        scheme: "https",
        memberArgs: () => [
          "--cert-file",
          member.cert,
          "--key-file",
          member.key,
          "--client-cert-auth",
          "--trusted-ca-file",
          pki.ca,
          "--peer-cert-file",
          member.cert,
          "--peer-key-file",
          member.key,
          "--peer-trusted-ca-file",
          pki.ca,
        ],
        ctlArgs: asCert(admin),
      }).catch(async (err) => {
        await pki.destroy();
        throw err;
      });
      const ep = c.members[0].endpoint;
      try {
        const ADM = asCert(admin);
        await addRoot(ep, ADM);
        await addUserWithRole(
          ep,
          "alice",
          "Alice-Pw-88",
          "ra",
          [["readwrite", "alice/", "--prefix"]],
          undefined,
          ADM,
        );
        await addUserWithRole(
          ep,
          "bob",
          "Bob-Pw-88",
          "rb",
          [["readwrite", "bob/", "--prefix"]],
          undefined,
          ADM,
        );
        await okAs(ep, undefined, [...ADM, "auth", "enable"]);

        const ALICE = asCert(alice);
        assertEquals(await okAs(ep, undefined, [...ALICE, "put", "alice/1", "a"]), "OK\n");
        assertEquals(await okAs(ep, undefined, [...ALICE, "get", "alice/1", "--print-value-only"]), "a\n");
        await failsAs(ep, undefined, [...ALICE, "put", "bob/1", "b"], DENIED);
        await failsAs(ep, undefined, [...ALICE, "get", "bob/1"], DENIED);
        await failsAs(ep, undefined, [...ALICE, "user", "list"], DENIED);
        // --user wins over the certificate
        assertEquals(await okAs(ep, "bob:Bob-Pw-88", [...ALICE, "put", "bob/1", "b"]), "OK\n");
        await failsAs(ep, "bob:Bob-Pw-88", [...ALICE, "get", "alice/1"], DENIED);
        await failsAs(ep, "bob:wrong", [...ALICE, "get", "alice/1"], AUTH_FAILED);
        // a certificate naming no user grants nothing; root's password still opens everything
        await failsAs(ep, undefined, [...ADM, "get", "alice/1"], DENIED);
        assertEquals(await okAs(ep, ROOT, [...ADM, "get", "bob/1", "--print-value-only"]), "b\n");
        assertEquals(await okAs(ep, ROOT, [...ADM, "user", "list"]), "alice\nbob\nroot\n");
      } catch (err) {
        console.error(`--- ${impl} log ---\n${c.logs()}`);
        throw err;
      } finally {
        await c.destroy();
        await pki.destroy();
      }
    },
  });

  Deno.test({
    name:
      `[${impl}] 3 members: auth survives kill -9, and reaches a follower by snapshot (--snapshot-count 20)`,
    ignore: !HAVE_ETCDCTL,
    // the etcd3 client (grpc-js) keeps timers of its own past close()
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async (t) => {
      const AS_ROOT = ["--user", ROOT];
      const c = await Cluster.start({
        impl,
        hosts: HOSTS.slice(7, 10),
        token: "auth-durability",
        extraArgs: ["--snapshot-count", "20"],
        // health and status checks as root, which work before and after auth is on
        ctlArgs: AS_ROOT,
      });
      const DAVE = "dave:Dave-Pw-6620";
      const ERIN = "erin:Erin-Pw-1209";
      try {
        const all = c.endpoints();
        await addRoot(all);
        await addUserWithRole(all, "dave", "Dave-Pw-6620", "rd", [["readwrite", "d/", "--prefix"]]);
        await okAs(all, undefined, ["auth", "enable"]);
        assertEquals(await okAs(all, DAVE, ["put", "d/1", "one"]), "OK\n");
        // a simple token is made where Authenticate is applied, so every member knows it (etcd waits until
        // the member has applied the token's entry before it looks the token up)
        const token = await authenticate(c.members[0].endpoint, "dave", "Dave-Pw-6620");
        for (const m of c.members) {
          const r = await getWithToken(m.endpoint, "d/1", token.token);
          assertEquals([r.status, r.message, r.values], [OK, "", ["one"]], m.name);
        }

        await t.step("kill -9 and restart: the member still enforces auth, with the same users", async () => {
          const m = c.members[1];
          await m.kill("SIGKILL");
          m.spawn();
          await m.waitReady();
          const ep = m.endpoint;
          assertEquals(await okAs(ep, ROOT, ["user", "list"]), "dave\nroot\n");
          assertEquals(
            await okAs(ep, ROOT, ["role", "get", "rd"]),
            "Role rd\nKV Read:\n\t[d/, d0) (prefix d/)\nKV Write:\n\t[d/, d0) (prefix d/)\n",
          );
          assertEquals(await okAs(ep, DAVE, ["get", "d/1", "--print-value-only"]), "one\n");
          await failsAs(ep, DAVE, ["put", "e/1", "x"], DENIED);
          await failsAs(ep, undefined, ["get", "d/1"], USER_EMPTY);
          await failsAs(ep, "dave:wrong", ["get", "d/1"], AUTH_FAILED);
        });

        await t.step(
          "a follower that was down learns new users and permissions from a snapshot",
          async () => {
            const lead = await c.waitLeader();
            const f = [0, 1, 2].find((i) => i !== lead.index)!;
            const follower = c.members[f];
            const rest = c.endpoints([0, 1, 2].filter((i) => i !== f));
            await follower.kill("SIGKILL");
            await addUserWithRole(
              rest,
              "erin",
              "Erin-Pw-1209",
              "re",
              [["readwrite", "e/", "--prefix"]],
              ROOT,
            );
            await okAs(rest, ROOT, ["role", "grant-permission", "rd", "read", "x"]);
            await okAs(rest, ROOT, ["put", "x", "ex"]);
            await okAs(rest, ROOT, ["user", "passwd", "dave", "--interactive=false"], "Dave-Pw-2nd-42\n");
            // etcd keeps 5000 entries for slow followers whatever --snapshot-count is; etcd-ts keeps
            // min(5000, --snapshot-count)
            const writes = impl === "etcd" ? 5200 : 300;
            await writeMany(rest.split(","), writes);
            const target = Math.max(...(await c.status()).map((s) => s.raftIndex));
            const mark = follower.mark();
            follower.spawn();
            await follower.waitReady();
            await waitApplied(c, f, target, 30_000);
            const logged = await follower.waitForLog(/received (and saved )?database snapshot/, mark, 5000);
            assert(
              logged !== undefined,
              `the follower logged no snapshot received:\n${follower.logSince(mark)}`,
            );

            const ep = follower.endpoint;
            assertEquals(await okAs(ep, ROOT, ["user", "list"]), "dave\nerin\nroot\n");
            assertEquals(await okAs(ep, ERIN, ["put", "e/1", "ee"]), "OK\n");
            assertEquals(
              await okAs(ep, ERIN, ["get", "e/1", "--print-value-only", "--consistency=s"]),
              "ee\n",
            );
            await failsAs(ep, ERIN, ["get", "d/1"], DENIED);
            await failsAs(ep, DAVE, ["get", "d/1"], AUTH_FAILED);
            const DAVE2 = "dave:Dave-Pw-2nd-42";
            assertEquals(
              await okAs(ep, DAVE2, ["get", "x", "--print-value-only", "--consistency=s"]),
              "ex\n",
            );
            await failsAs(ep, DAVE2, ["put", "x", "no"], DENIED);
            assertEquals(
              await okAs(ep, ROOT, ["role", "get", "rd"]),
              "Role rd\nKV Read:\n\t[d/, d0) (prefix d/)\n\tx\nKV Write:\n\t[d/, d0) (prefix d/)\n",
            );
            const counted = await okAs(ep, ROOT, [
              "get",
              "bulk/",
              "--prefix",
              "--limit=1",
              "-w",
              "json",
              "--consistency=s",
            ]);
            assertEquals(JSON.parse(counted).count, writes);
          },
        );
      } catch (err) {
        console.error(`--- logs of the ${impl} cluster ---\n${c.logs()}`);
        throw err;
      } finally {
        await c.destroy();
      }
    },
  });

  Deno.test({
    name: `[${impl}] etcd3 client: user and role calls, auth enable/disable, a client with a password`,
    ignore: !HAVE_ETCDCTL,
    // the etcd3 client (grpc-js) keeps timers of its own past close()
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const m = await Member.start({ impl, host: HOSTS[10] });
      const ep = m.endpoint;
      const anon = connect(ep);
      const clients: Etcd3[] = [anon];
      const as = (username: string, password: string) => {
        const c = new Etcd3({
          hosts: `http://${ep}`,
          dialTimeout: 5000,
          auth: { username, password },
          defaultCallOptions: (ctx) => ctx.isStream ? {} : { deadline: Date.now() + 10_000 },
        });
        clients.push(c);
        return c;
      };
      const names = (list: { name: string }[]) => list.map((x) => x.name).sort();
      try {
        await anon.user("root").create(ROOT_PW);
        await anon.role("root").create();
        await anon.user("root").addRole("root");
        const editor = await anon.role("editor").create();
        await editor.grant({ permission: "Readwrite", range: Range.prefix("ed/") });
        await editor.grant({ permission: "Read", key: "shared" });
        await editor.grant({ permission: "Write", range: new Range("drop/a", "drop/m") });
        const perms = (await editor.permissions()).map((p) =>
          [p.permission, p.range.start.toString(), p.range.end.toString()].join(" ")
        ).sort();
        assertEquals(perms, ["Read shared ", "Readwrite ed/ ed0", "Write drop/a drop/m"]);
        const eve = await anon.user("eve").create("Eve-Pw-901");
        await eve.addRole("editor");
        assertEquals(names(await eve.roles()), ["editor"]);
        assertEquals(names(await anon.getUsers()), ["eve", "root"]);
        assertEquals(names(await anon.getRoles()), ["editor", "root"]);

        await anon.auth.authEnable();
        const root = as("root", ROOT_PW);
        const asEve = as("eve", "Eve-Pw-901");
        await asEve.put("ed/1").value("x");
        assertEquals(await asEve.get("ed/1").string(), "x");
        assertEquals(await asEve.get("shared").string(), null);
        await asEve.put("drop/b").value("y");
        await assertDenied(asEve.put("shared").value("no").exec());
        await assertDenied(asEve.get("drop/b").string());
        await assertDenied(asEve.put("drop/z").value("no").exec());
        await assertDenied(asEve.getAll().prefix("e").strings());
        await assertDenied(anon.get("ed/1").string(), USER_EMPTY);
        assertEquals(await root.get("drop/b").string(), "y");

        await root.role("editor").revoke({ permission: "Read", key: "shared" });
        assertEquals((await root.role("editor").permissions()).length, 2);
        await assertDenied(asEve.get("shared").string());

        await root.user("eve").setPassword("Eve-Pw-902");
        await assertAuthFailed(as("eve", "Eve-Pw-901").get("ed/1").string());
        assertEquals(await as("eve", "Eve-Pw-902").get("ed/1").string(), "x");

        await root.user("eve").removeRole("editor");
        assertEquals(names(await root.user("eve").roles()), []);
        await assertDenied(as("eve", "Eve-Pw-902").get("ed/1").string());

        await root.user("eve").delete();
        assertEquals(names(await root.getUsers()), ["root"]);
        await root.role("editor").delete();
        assertEquals(names(await root.getRoles()), ["root"]);
        await assertAuthFailed(as("eve", "Eve-Pw-902").get("ed/1").string());

        await root.auth.authDisable();
        assertEquals(await anon.get("ed/1").string(), "x");
      } catch (err) {
        console.error(`--- ${impl} log ---\n${m.logs.join("")}`);
        throw err;
      } finally {
        for (const c of clients) c.close();
        await m.destroy();
      }
    },
  });

  Deno.test({
    name: `[${impl}] bad input: wrong passwords, empty and duplicate names, missing grants, foreign tokens`,
    ignore: !HAVE_ETCDCTL,
    fn: async (t) => {
      const a = await Member.start({ impl, host: HOSTS[11] });
      let b: Member | undefined;
      const CAROL_PW = "Carol-Pw-7732";
      try {
        b = await Member.start({ impl, host: HOSTS[12] });
        const ep = a.endpoint;

        await t.step("Authenticate while auth is off", async () => {
          const r = await authenticateReply(ep, "root", ROOT_PW);
          assertEquals([r.status, r.message], [9, "etcdserver: authentication is not enabled"]);
        });

        await t.step("empty, duplicate and missing names", async () => {
          // etcdctl refuses an empty name itself; the server is asked directly
          const empty = await unary(ep, "/etcdserverpb.Auth/UserAdd", message(bytesField(2, "pw")));
          assertEquals([empty.status, empty.message], [3, USER_EMPTY]);
          const r = await ctlAs(ep, undefined, ["user", "add", ":pw"]);
          assertEquals(ctlError(r), "empty user name is not allowed");

          await addRoot(ep);
          await addUserWithRole(ep, "carol", CAROL_PW, "rc", [["readwrite", "c/", "--prefix"]]);
          await okAs(ep, undefined, ["role", "add", "unused"]);
          const refusals: [string[], string][] = [
            [["user", "add", "carol:other"], "etcdserver: user name already exists"],
            [["user", "add", `root:${ROOT_PW}`], "etcdserver: user name already exists"],
            [["role", "add", "rc"], "etcdserver: role name already exists"],
            [["user", "grant-role", "carol", "nope"], "etcdserver: role name not found"],
            [["user", "grant-role", "nobody", "rc"], "etcdserver: user name not found"],
            [["role", "get", "nope"], "etcdserver: role name not found"],
            [["user", "revoke-role", "carol", "unused"], "etcdserver: role is not granted to the user"],
            [["role", "revoke-permission", "rc", "zzz"], "etcdserver: permission is not granted to the role"],
            // granted as a prefix, not as a key
            [["role", "revoke-permission", "rc", "c/"], "etcdserver: permission is not granted to the role"],
          ];
          for (const [args, message] of refusals) await failsAs(ep, undefined, args, message);
          // a range that ends before it starts: etcd 3.4.23 stores it; etcd 3.4.24+, 3.5.x (later patches) and
          // 3.6 refuse it
          const backwards = await ctlAs(ep, undefined, [
            "role",
            "grant-permission",
            "unused",
            "read",
            "z",
            "c",
          ]);
          assert(
            (backwards.code === 0 && backwards.stdout === "Role unused updated\n") ||
              (backwards.code !== 0 && ctlError(backwards) === INVALID_MGMT),
            `a backwards range: ${backwards.stdout}${backwards.stderr}`,
          );
          await okAs(ep, undefined, ["auth", "enable"]);
          await failsAs(ep, ROOT, ["user", "add", "carol:again"], "etcdserver: user name already exists");
          await failsAs(ep, ROOT, ["role", "add", "rc"], "etcdserver: role name already exists");
        });

        await t.step("wrong passwords in a loop: all refused, others served, nothing logged", async () => {
          const carol = await authenticate(ep, "carol", CAROL_PW);
          await okAs(ep, ROOT, ["put", "c/1", "one"]);
          const wrong = Array.from({ length: 20 }, (_, i) => `Wrong-Pw-${i}-zq81x`);
          let stop = false;
          let served = 0;
          const failures: string[] = [];
          const reader = (async () => {
            while (!stop) {
              const r = await getWithToken(ep, "c/1", carol.token).catch((e) => ({
                status: -1,
                message: `${e}`,
                values: [],
              }));
              if (r.status === OK && r.values[0] === "one") served++;
              else failures.push(`${r.status} ${r.message} ${r.values}`);
            }
          })();
          try {
            for (const pw of wrong) {
              const r = await authenticateReply(ep, "carol", pw);
              assertEquals([r.status, r.message], [3, AUTH_FAILED], pw);
            }
            const byCtl = await ctlAs(ep, `carol:${wrong[0]}`, ["get", "c/1"]);
            assertEquals(ctlError(byCtl), AUTH_FAILED);
          } finally {
            stop = true;
            await reader;
          }
          assertEquals(failures, [], "the other client's reads during the loop");
          assert(served > 0, "the other client was served during the loop");
          assertEquals(await okAs(ep, `carol:${CAROL_PW}`, ["get", "c/1", "--print-value-only"]), "one\n");
          const log = a.logs.join("");
          for (const pw of [...wrong, CAROL_PW, ROOT_PW]) {
            assert(!log.includes(pw), `the log holds the password ${pw}`);
          }
        });

        await t.step("a simple token of another cluster is refused", async () => {
          const foreign = await authenticate(ep, "carol", CAROL_PW);
          const other = b!.endpoint;
          await addRoot(other);
          await addUserWithRole(other, "carol", CAROL_PW, "rc", [["readwrite", "c/", "--prefix"]]);
          await okAs(other, undefined, ["auth", "enable"]);
          // at least as many entries in B's log as A's had when it made the token (etcd waits for a simple
          // token's entry to be applied before it looks the token up)
          const made = await raftIndexOf(ep, ROOT);
          const mine = await authenticate(other, "carol", CAROL_PW);
          let reached = await raftIndexOf(other, ROOT);
          for (let i = 0; reached <= made && i < 50; i++) {
            await Promise.all(
              Array.from({ length: 20 }, (_, j) => putWithToken(other, `c/${i}-${j}`, "b", mine.token)),
            );
            reached = await raftIndexOf(other, ROOT);
          }
          assert(reached > made, `cluster B reached index ${reached}, A made the token at ${made}`);
          await putWithToken(other, "c/1", "b", mine.token);
          assertEquals((await getWithToken(other, "c/1", mine.token)).values, ["b"]);
          const asked = performance.now();
          const r = await getWithToken(other, "c/1", foreign.token);
          assertEquals([r.status, r.message], [UNAUTHENTICATED, INVALID_TOKEN]);
          assert(performance.now() - asked < 4000, "refused at once, not after the call's deadline");
          // and the token still works where it was made
          assertEquals((await getWithToken(ep, "c/1", foreign.token)).values, ["one"]);
        });
      } catch (err) {
        console.error(`--- ${impl} logs ---\n${a.logs.join("")}\n${b?.logs.join("") ?? ""}`);
        throw err;
      } finally {
        await a.destroy();
        await b?.destroy();
      }
    },
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** `p` must reject with the etcd3 client's permission-denied error (or with the etcd error `msg`). */
async function assertDenied(p: Promise<unknown>, msg = DENIED): Promise<void> {
  const err = await within(p.then(() => undefined, (e: unknown) => e), 15_000, "a refused call");
  assert(err instanceof Error, `the call succeeded; expected ${msg}`);
  assert(err.message.endsWith(msg), `${err.name}: ${err.message}`);
  if (msg === DENIED) assert(err instanceof EtcdPermissionDeniedError, `${err.name}: ${err.message}`);
}

/** `p` must reject with the etcd3 client's authentication-failed error. */
async function assertAuthFailed(p: Promise<unknown>): Promise<void> {
  const err = await within(p.then(() => undefined, (e: unknown) => e), 15_000, "a refused call");
  assert(err instanceof EtcdAuthenticationFailedError, `expected ${AUTH_FAILED}, got ${err}`);
}

/** `count` puts of `bulk/N` as root through `endpoints`, 32 at a time. */
async function writeMany(endpoints: string[], count: number): Promise<void> {
  const client = new Etcd3({
    hosts: endpoints.map((e) => `http://${e}`),
    dialTimeout: 5000,
    auth: { username: "root", password: ROOT_PW },
    defaultCallOptions: (ctx) => ctx.isStream ? {} : { deadline: Date.now() + 10_000 },
  });
  try {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const n = next++;
        await client.put(`bulk/${n}`).value(`value-${n}`);
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
  } finally {
    client.close();
  }
}

/**
 * Waits until member `i` has applied entry `index`. (Each status check as root is an Authenticate in
 * etcd 3.4, itself an entry, so the members' latest indices move while they are polled.)
 */
async function waitApplied(c: Cluster, i: number, index: number, timeoutMs: number): Promise<void> {
  let last: EndpointStatus[] = [];
  await waitUntil(
    async () => {
      last = await c.status([i]);
      return last.length === 1 && last[0].raftAppliedIndex >= index;
    },
    timeoutMs,
    () =>
      `${c.members[i].name} did not apply entry ${index}: ${
        JSON.stringify(last.map((s) => s.raftAppliedIndex))
      }`,
    200,
  );
}
