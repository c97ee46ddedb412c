/**
 * Tests of `/v2/keys` request parsing. Error bodies marked "etcd:" are what etcd 3.4.23 answered to the
 * same request with curl (`-d` sends application/x-www-form-urlencoded).
 */
import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { V2Error } from "../../storage/v2store/errors.ts";
import { V2Store } from "../../storage/v2store/store.ts";
import { applyKeysRequest, isProposed, parseKeysRequest, V2RequestRejected } from "./request.ts";

const NOW = Date.UTC(2026, 11, 4, 20, 27, 50, 0);
const FORM = new Map([["Content-Type", "application/x-www-form-urlencoded"]]);
const NONE = new Map<string, string>();
const enc = (s: string) => new TextEncoder().encode(s);

function parse(method: string, target: string, body = "", headers = body ? FORM : NONE) {
  return parseKeysRequest(method, target, headers, enc(body), NOW);
}

function fails(method: string, target: string, body = "", headers = body ? FORM : NONE): string {
  return assertThrows(() => parse(method, target, body, headers), V2Error).body();
}

function rejected(method: string, target: string): V2RequestRejected {
  return assertThrows(() => parse(method, target), V2RequestRejected);
}

Deno.test("parseKeysRequest: reads", async (t) => {
  await t.step("plain, recursive, sorted", () => {
    assertEquals(parse("GET", "/v2/keys"), {
      kind: "get",
      key: "/",
      noValueOnSuccess: false,
      recursive: false,
      sorted: false,
      quorum: false,
      head: false,
    });
    const r = parse("GET", "/v2/keys/a/?recursive=T&sorted=1");
    assertEquals([r.key, r.kind === "get" && r.recursive, r.kind === "get" && r.sorted], ["/a", true, true]);
    assertEquals(parse("GET", "/v2/keys/sp%20ace+plus").key, "/sp ace+plus");
  });
  await t.step("wait, stream, waitIndex; quorum drops the wait; HEAD", () => {
    assertEquals(
      (parse("GET", "/v2/keys/k?wait=true&waitIndex=40&stream=true&recursive=true") as { wait?: unknown })
        .wait,
      { sinceIndex: 40, stream: true, recursive: true },
    );
    assertEquals((parse("GET", "/v2/keys/k?wait=true&waitIndex=0") as { wait?: unknown }).wait, {
      stream: false,
      recursive: false,
    });
    const q = parse("GET", "/v2/keys/k?wait=true&quorum=true");
    assertEquals([q.kind === "get" && q.quorum, "wait" in q, isProposed(q)], [true, false, true]);
    const h = parse("HEAD", "/v2/keys/k?quorum=true");
    assertEquals([h.kind === "get" && h.head, h.kind === "get" && h.quorum, isProposed(h)], [
      true,
      false,
      false,
    ]);
  });
  await t.step("bad booleans and indexes", () => {
    // etcd: GET /v2/keys/?recursive=foo
    assertEquals(
      fails("GET", "/v2/keys/?recursive=foo"),
      `{"errorCode":209,"message":"Invalid field","cause":"invalid value for \\"recursive\\"","index":0}\n`,
    );
    for (const f of ["sorted", "wait", "dir", "quorum", "stream", "noValueOnSuccess"]) {
      assertEquals(JSON.parse(fails("GET", `/v2/keys/k?${f}=yes`)).cause, `invalid value for "${f}"`);
    }
    assertEquals(JSON.parse(fails("PUT", "/v2/keys/k6", "value=1&recursive=")).errorCode, 209);
    // etcd: GET /v2/keys/t3?waitIndex=-1&wait=true
    assertEquals(
      fails("GET", "/v2/keys/t3?waitIndex=-1&wait=true"),
      `{"errorCode":203,"message":"The given index in POST form is not a number","cause":"invalid value for \\"waitIndex\\"","index":0}\n`,
    );
    assertEquals(
      JSON.parse(fails("PUT", "/v2/keys/k6", "value=1&prevIndex=")).cause,
      `invalid value for "prevIndex"`,
    );
    // etcd checks prevIndex before the booleans
    assertEquals(JSON.parse(fails("GET", "/v2/keys/k?recursive=x&prevIndex=x")).errorCode, 203);
  });
  await t.step("wait only with GET", () => {
    // etcd: PUT /v2/keys/many?wait=true -d value=1
    assertEquals(
      fails("PUT", "/v2/keys/many?wait=true", "value=1"),
      `{"errorCode":209,"message":"Invalid field","cause":"\\"wait\\" can only be used with GET requests","index":0}\n`,
    );
    assertEquals(JSON.parse(fails("HEAD", "/v2/keys/k?wait=true")).errorCode, 209);
  });
});

Deno.test("parseKeysRequest: writes", async (t) => {
  await t.step("the store call etcd's v2 server chooses", () => {
    const kind = (m: string, target: string, body = "") => {
      const r = parse(m, target, body);
      const { key: _k, noValueOnSuccess: _n, ...rest } = r;
      return rest;
    };
    assertEquals(kind("PUT", "/v2/keys/k", "value=1"), {
      kind: "set",
      dir: false,
      value: "1",
      refresh: false,
    });
    assertEquals(kind("PUT", "/v2/keys/k?prevExist=false", "value=1"), {
      kind: "create",
      dir: false,
      value: "1",
      unique: false,
    });
    // prevExist=false wins over prevValue
    assertEquals(kind("PUT", "/v2/keys/k?prevExist=false&prevValue=a", "value=1").kind, "create");
    assertEquals(kind("PUT", "/v2/keys/k?prevExist=true", "value=1"), {
      kind: "update",
      value: "1",
      refresh: false,
    });
    assertEquals(kind("PUT", "/v2/keys/k?prevExist=true&prevIndex=3", "value=1"), {
      kind: "cas",
      prevIndex: 3,
      value: "1",
      refresh: false,
    });
    assertEquals(kind("PUT", "/v2/keys/k?prevValue=a&prevIndex=0", "value=1"), {
      kind: "cas",
      prevValue: "a",
      value: "1",
      refresh: false,
    });
    assertEquals(kind("PUT", "/v2/keys/k?prevIndex=0", "value=1").kind, "set");
    assertEquals(kind("POST", "/v2/keys/q", "value=j1&ttl=10"), {
      kind: "create",
      dir: false,
      value: "j1",
      expireAt: NOW + 10_000,
      unique: true,
    });
    assertEquals(kind("PUT", "/v2/keys/d?dir=true", "value=xyz"), {
      kind: "set",
      dir: true,
      value: "xyz",
      refresh: false,
    });
    assertEquals(kind("DELETE", "/v2/keys/k?prevValue=3"), { kind: "cad", prevValue: "3" });
    assertEquals(kind("DELETE", "/v2/keys/k?prevIndex=7&recursive=true"), { kind: "cad", prevIndex: 7 });
    assertEquals(kind("DELETE", "/v2/keys/k?recursive=true"), {
      kind: "delete",
      dir: false,
      recursive: true,
    });
    assertEquals(parse("PUT", "/v2/keys/k", "value=1&noValueOnSuccess=true").noValueOnSuccess, true);
  });
  await t.step("ttl", () => {
    const at = (body: string) => (parse("PUT", "/v2/keys/k", body) as { expireAt?: number }).expireAt;
    assertEquals(at("value=1&ttl=100"), NOW + 100_000);
    assertEquals(at("value=1&ttl=0"), NOW); // etcd: expires at the next sweep
    assertEquals(at("value=1&ttl="), undefined);
    assertEquals(at("value=1"), undefined);
    // etcd: PUT /v2/keys/t3 -d value=1 -d ttl=abc (also -1, +5, 2^64)
    for (const bad of ["abc", "-1", "+5", "18446744073709551616", "1.5"]) {
      assertEquals(
        fails("PUT", "/v2/keys/t3", `value=1&ttl=${encodeURIComponent(bad)}`),
        `{"errorCode":202,"message":"The given TTL in POST form is not a number","cause":"invalid value for \\"ttl\\"","index":0}\n`,
      );
    }
  });
  await t.step("refresh", () => {
    assertEquals(
      fails("PUT", "/v2/keys/t1", "ttl=200&refresh=true&value=x"),
      `{"errorCode":211,"message":"Value provided on refresh","cause":"A value was provided on a refresh","index":0}\n`,
    );
    assertEquals(
      fails("PUT", "/v2/keys/t1", "refresh=true"),
      `{"errorCode":212,"message":"A TTL must be provided on refresh","cause":"No TTL value set","index":0}\n`,
    );
    assertEquals(JSON.parse(fails("PUT", "/v2/keys/t1", "refresh=maybe")).cause, "invalid value for refresh");
    assertEquals(parse("PUT", "/v2/keys/t1", "ttl=5&refresh=true&value="), {
      kind: "set",
      key: "/t1",
      noValueOnSuccess: false,
      dir: false,
      value: "",
      expireAt: NOW + 5000,
      refresh: true,
    });
    assertEquals(
      (parse("PUT", "/v2/keys/t1", "refresh=false&value=5") as { refresh: boolean }).refresh,
      false,
    );
  });
  await t.step("prevValue and prevExist", () => {
    assertEquals(
      fails("PUT", "/v2/keys/k5?prevValue=", "value=3"),
      `{"errorCode":201,"message":"PrevValue is Required in POST form","cause":"\\"prevValue\\" cannot be empty","index":0}\n`,
    );
    assertEquals(
      fails("PUT", "/v2/keys/k5?prevExist=maybe", "value=3"),
      `{"errorCode":209,"message":"Invalid field","cause":"invalid value for prevExist","index":0}\n`,
    );
  });
});

Deno.test("parseKeysRequest: forms as Go parses them", async (t) => {
  await t.step("body values come first", () => {
    assertEquals((parse("PUT", "/v2/keys/e1?value=q", "value=b") as { value: string }).value, "b");
    assertEquals((parse("PUT", "/v2/keys/e1?value=q", "value=b&value=c") as { value: string }).value, "b");
    const charset = new Map([["content-type", "Application/X-WWW-Form-Urlencoded; charset=utf-8"]]);
    assertEquals((parse("PUT", "/v2/keys/e1?value=q", "value=b", charset) as { value: string }).value, "b");
  });
  await t.step("bodies of other types, and of DELETE, are not read", () => {
    const text = new Map([["Content-Type", "text/plain"]]);
    assertEquals((parse("PUT", "/v2/keys/e1?value=q", "value=b", text) as { value: string }).value, "q");
    assertEquals((parse("PUT", "/v2/keys/e1?value=q", "value=b", NONE) as { value: string }).value, "q");
    assertEquals(parse("DELETE", "/v2/keys/e1", "prevValue=zzz").kind, "delete");
  });
  await t.step("form errors", () => {
    assertEquals(
      fails("GET", "/v2/keys/many?a=1;b=2"),
      `{"errorCode":210,"message":"Invalid POST form","cause":"invalid semicolon separator in query","index":0}\n`,
    );
    assertEquals(
      fails("GET", "/v2/keys/many?recursive=%zz&recursive=true"),
      `{"errorCode":210,"message":"Invalid POST form","cause":"invalid URL escape \\"%zz\\"","index":0}\n`,
    );
    assertEquals(JSON.parse(fails("PUT", "/v2/keys/e1", "value=%zz")).cause, `invalid URL escape "%zz"`);
    assertEquals(
      fails("PUT", "/v2/keys/e1", "value=b", new Map([["Content-Type", "bogus/"]])),
      `{"errorCode":210,"message":"Invalid POST form","cause":"mime: expected token after slash","index":0}\n`,
    );
  });
  await t.step("values decode + and UTF-8; invalid UTF-8 becomes U+FFFD", () => {
    assertEquals((parse("PUT", "/v2/keys/e", "value=a+b%C3%A9%FF") as { value: string }).value, "a bé\ufffd");
  });
});

Deno.test("parseKeysRequest: answered before the keys handler", async (t) => {
  await t.step("bad path escape: 400", () => {
    const e = rejected("GET", "/v2/keys/e%zz");
    assertEquals([e.status, e.body, e.code], [400, "400 Bad Request", "V2_REJECTED"]);
  });
  await t.step("unclean path: 301 to the clean one, query kept", () => {
    const e = rejected("GET", "/v2/keys//a/../b?x=1");
    assertEquals([e.status, e.location], [301, "/v2/keys/b?x=1"]);
    assertEquals(rejected("PUT", "/v2/keys/a/./b").location, "/v2/keys/a/b");
    // etcd: Location: /v2/keys/b, and /v2/keys/x/y%20z/
    assertEquals(rejected("GET", "/v2/keys/a%2F..%2Fb").location, "/v2/keys/b");
    assertEquals(rejected("GET", "/v2/keys/x%2Fy%20z//").location, "/v2/keys/x/y%20z/");
    assertEquals(parse("GET", "/v2/keys/a/").key, "/a");
  });
  await t.step("other paths and methods", () => {
    assertEquals(rejected("GET", "/v2/keysfoo").status, 404);
    const e = rejected("PATCH", "/v2/keys/k");
    assertEquals([e.status, e.body, e.allow], [405, "Method Not Allowed\n", "HEAD,GET,PUT,POST,DELETE"]);
  });
});

Deno.test("applyKeysRequest drives the store", async (t) => {
  await t.step("a JSON round trip of each request applies like etcd", () => {
    const s = new V2Store();
    const run = (m: string, target: string, body = "") => {
      const req = JSON.parse(JSON.stringify(parse(m, target, body)));
      return applyKeysRequest(s, req, NOW);
    };
    assertEquals(run("PUT", "/v2/keys/k5?prevExist=false", "value=1").action, "create");
    assertEquals(run("PUT", "/v2/keys/k5?prevExist=true", "value=2&ttl=30").node.ttl, 30);
    assertEquals(run("PUT", "/v2/keys/k5?prevValue=2", "value=3").action, "compareAndSwap");
    assertEquals(run("PUT", "/v2/keys/k5", "ttl=9&refresh=true").node.value, "3");
    assertEquals(run("POST", "/v2/keys/q", "value=j").node.key, "/q/00000000000000000005");
    assertEquals(run("GET", "/v2/keys/q?quorum=true").action, "get");
    assertEquals(run("DELETE", "/v2/keys/k5?prevIndex=4").action, "compareAndDelete");
    assertEquals(run("DELETE", "/v2/keys/q?recursive=true").action, "delete");
    assertEquals(run("PUT", "/v2/keys/t0", "value=1&ttl=0").node.expiration, "2026-12-04T20:27:50Z");
    assertEquals(s.deleteExpired(NOW).map((e) => e.action), ["expire"]);
    assertEquals(s.index, 9);
    const e = assertThrows(() => run("PUT", "/v2/keys/nokey?prevExist=true", "value=1"), V2Error);
    assertEquals(e.body(), `{"errorCode":100,"message":"Key not found","cause":"/nokey","index":9}\n`);
  });
});
