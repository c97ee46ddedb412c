import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/assert.ts";
import { FakeClock } from "../../tests/fake_clock.ts";
import {
  AuthTokenConfigError,
  JwtTokens,
  parseJwtOptions,
  simpleTokenPrefix,
  SimpleTokens,
} from "./tokens.ts";
import { applyAuthChange, type AuthChange } from "./apply.ts";
import { AuthStore } from "./store.ts";
import { Passwords } from "./passwords.ts";
import { GrpcError } from "../transport/status.ts";

/** The test clock at a time well after the epoch (JWT expiry is in whole seconds since it). */
function stillClock(): FakeClock {
  const clock = new FakeClock();
  clock.t = 1_000_000;
  return clock;
}

Deno.test("simple tokens: valid on every member that applied them, for the TTL after their last use", async () => {
  const clock = stillClock();
  let applied = 10;
  const tokens = new SimpleTokens(clock, 3000, () => applied);
  const prefix = simpleTokenPrefix();
  assertEquals(prefix.length, 16);
  assert(/^[a-zA-Z]+$/.test(prefix));
  tokens.assign(`${prefix}.7`, "alice");
  assertEquals(await tokens.info(`${prefix}.7`, 5), { username: "alice", revision: 5 });
  clock.t += 2000;
  assert(await tokens.info(`${prefix}.7`, 5), "a use renews the TTL");
  clock.t += 2999;
  assert(await tokens.info(`${prefix}.7`, 5));
  clock.t += 3000;
  assertEquals(await tokens.info(`${prefix}.7`, 5), undefined, "expired");
  for (const bad of ["", "abc", "a.b.c", "abc.x", "abc.-1"]) {
    assertEquals(await tokens.info(bad, 1), undefined);
  }
  // a token of an entry not applied here yet is waited for
  const ctl = new AbortController();
  const pending = tokens.info("Zz.12", 5, ctl.signal);
  applied = 12;
  tokens.assign("Zz.12", "bob");
  assertEquals(await pending, { username: "bob", revision: 5 });
  // ... as long as the call may wait
  const gone = tokens.info("Yy.13", 5, ctl.signal);
  ctl.abort();
  assertEquals(await gone, undefined);
  // a deleted user's tokens and, with auth disabled, all tokens end
  tokens.assign("Aa.14", "carol");
  tokens.assign("Bb.15", "dave");
  tokens.invalidateUser("carol");
  assertEquals(await tokens.info("Aa.14", 1), undefined);
  assert(await tokens.info("Bb.15", 1));
  tokens.clear();
  assertEquals(await tokens.info("Bb.15", 1), undefined);
  tokens.close();
});

Deno.test("jwt tokens: options as etcd reads them, signed and verified with the given keys", async (t) => {
  assertThrows(() => parseJwtOptions("jwt,pub-key=a,priv-key=b"), AuthTokenConfigError);
  assertThrows(() => parseJwtOptions("jwt,sign-method=XX256,priv-key=b"), AuthTokenConfigError);
  assertThrows(() => parseJwtOptions("jwt,sign-method=RS256"), AuthTokenConfigError);
  assertEquals(parseJwtOptions("jwt,pub-key=a,priv-key=b,sign-method=ES256,ttl=2m30s").ttlMs, 150_000);
  const dir = await Deno.makeTempDir();
  try {
    for (
      const [alg, genArgs] of [["RS256", ["rsa", { modulusLength: 2048 }]], ["ES256", ["ec", {
        namedCurve: "P-256",
      }]]] as const
    ) {
      await t.step(alg, async () => {
        const { generateKeyPairSync } = await import("node:crypto");
        // deno-lint-ignore no-explicit-any
        const { privateKey, publicKey } = (generateKeyPairSync as any)(genArgs[0], genArgs[1]) as {
          privateKey: import("node:crypto").KeyObject;
          publicKey: import("node:crypto").KeyObject;
        };
        const priv = `${dir}/${alg}.key`;
        const pub = `${dir}/${alg}.pub`;
        await Deno.writeTextFile(priv, privateKey.export({ type: "pkcs8", format: "pem" }) as string);
        await Deno.writeTextFile(pub, publicKey.export({ type: "spki", format: "pem" }) as string);
        const clock = stillClock();
        const signer = await JwtTokens.create(
          clock,
          parseJwtOptions(`jwt,pub-key=${pub},priv-key=${priv},sign-method=${alg},ttl=10s`),
        );
        const token = await signer.sign("alice", 7);
        assertEquals(await signer.info(token), { username: "alice", revision: 7 });
        // another member with only the public key verifies it
        const verifier = await JwtTokens.create(
          clock,
          parseJwtOptions(`jwt,pub-key=${pub},sign-method=${alg}`),
        );
        assertEquals(await verifier.info(token), { username: "alice", revision: 7 });
        await assertRejects(() => verifier.sign("alice", 7));
        assertEquals(await verifier.info(token.slice(0, -3) + "abc"), undefined, "bad signature");
        clock.t += 11_000;
        assertEquals(await signer.info(token), undefined, "expired");
        assertEquals(await verifier.info(await signer.sign("bob", 1)), { username: "bob", revision: 1 });
      });
    }
    await t.step("a missing key file is a start error", async () => {
      await assertRejects(
        () => JwtTokens.create(stillClock(), parseJwtOptions(`jwt,priv-key=${dir}/none,sign-method=RS256`)),
        AuthTokenConfigError,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("auth changes: applied with the admin rule and revision checks, tokens follow them", async () => {
  const store = new AuthStore();
  const clock = stillClock();
  const simple = new SimpleTokens(clock, 60_000, () => 100);
  // deno-lint-ignore no-explicit-any
  const change = (c: Record<string, any>, user = "root", revision = store.revision) =>
    applyAuthChange(store, { ...c, user, revision } as AuthChange, 50, simple);
  const passwords = new Passwords(4);
  const hash = await passwords.hash("pw");
  assert(await passwords.matches("pw", hash));
  assert(!(await passwords.matches("wrong", hash)));
  change({ op: "userAdd", name: "root", password: hash, noPassword: false }, "");
  change({ op: "userGrantRole", name: "root", role: "root" }, "");
  change({ op: "userAdd", name: "alice", password: hash, noPassword: false }, "");
  change({ op: "authEnable" }, "");
  const denied = (fn: () => unknown, message: string) =>
    assertEquals(assertThrows(fn, GrpcError).message, message);
  denied(() => change({ op: "roleAdd", name: "x" }, "alice"), "etcdserver: permission denied");
  denied(() => change({ op: "roleAdd", name: "x" }, ""), "etcdserver: user name is empty");
  denied(
    () => change({ op: "roleAdd", name: "x" }, "root", store.revision - 1),
    "etcdserver: revision of auth store is old",
  );
  const done = change({ op: "authenticate", name: "alice", tokenPrefix: "Abc" }, "alice");
  assertEquals(done, { token: "Abc.50", username: "alice", revision: store.revision });
  assert(await simple.info("Abc.50", store.revision));
  change({ op: "userChangePassword", name: "alice", password: hash });
  assertEquals(
    await simple.info("Abc.50", store.revision),
    undefined,
    "a new password ends the user's tokens",
  );
  denied(
    () => change({ op: "authenticate", name: "alice", tokenPrefix: "Old" }, "alice", store.revision - 1),
    "etcdserver: revision of auth store is old",
  );
  change({ op: "authDisable" });
  denied(
    () => change({ op: "authenticate", name: "alice" }, "alice"),
    "etcdserver: authentication is not enabled",
  );
  simple.close();
});
