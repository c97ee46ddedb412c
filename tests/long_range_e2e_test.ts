/**
 * A range of thousands of keys, as `etcdctl get --prefix` reads it and as the JSON gateway answers it,
 * over cleartext and over TLS, while other clients write: every key and value, `count` and `more` as etcd
 * answers them, and all of it at the one revision of the header; and the kvs chosen from such a range:
 * sorted by modification, value or version, filtered by revision. etcd-ts reads such a range page by page
 * (server/member/range_pages.ts), hands the answer to the transport in parts, and the gateway converts
 * it to JSON a part at a time; the real etcd runs the same checks.
 */
import { assert, assertEquals } from "./assert.ts";
import { connect } from "./client_util.ts";
import { etcdctl, freePorts, HAVE_ETCDCTL, implementations, Member } from "./helpers.ts";
import { Pki } from "./pki.ts";

const HOST = "127.0.2.110";
const TLS_HOST = "127.0.2.119";
const KEYS = 3000;
const keyOf = (i: number) => `k/${String(i).padStart(4, "0")}`;
const valueOf = (i: number) => `${i}:`.padEnd(1000 + (i % 50), "v");

/** A kv as etcdctl's JSON writes it (revisions as numbers) or the gateway's (as strings). */
interface JsonKv {
  key: string;
  value?: string;
  mod_revision: number | string;
  version: number | string;
}

interface RangeJson {
  header: { revision: number | string };
  kvs: JsonKv[];
  count: number | string;
  more?: boolean;
}

/** `get --prefix k/` with `extra` flags, as JSON; writes `k/0000`.. meanwhile through `writer`. */
async function getAll(endpoint: string, ctlArgs: string[], extra: string[], writer: () => Promise<void>) {
  const [got] = await Promise.all([
    etcdctl(endpoint, [...ctlArgs, "get", "--prefix", "k/", "-w", "json", ...extra], { timeoutMs: 60_000 }),
    writer(),
  ]);
  assertEquals(got.code, 0, got.stderr);
  return JSON.parse(got.stdout) as RangeJson;
}

/** The same range through the JSON gateway (`POST /v3/kv/range`), with `writer` writing meanwhile. */
async function gatewayAll(
  gateway: Gateway,
  writer: () => Promise<void>,
  more: object = {},
): Promise<RangeJson> {
  const read = async () => {
    const res = await fetch(`${gateway.url}/v3/kv/range`, {
      method: "POST",
      body: JSON.stringify({ key: btoa("k/"), range_end: btoa("k0"), ...more }),
      client: gateway.client,
    });
    const text = await res.text();
    assertEquals(res.status, 200, text.slice(0, 200));
    return JSON.parse(text) as RangeJson;
  };
  const [all] = await Promise.all([read(), writer()]);
  return all;
}

/** Where the gateway answers: the client URL, and the HTTP client that trusts its certificate. */
interface Gateway {
  url: string;
  client?: Deno.HttpClient;
}

/**
 * Every key of the range in order, none written after the header's revision: each with the value it was
 * first given, or one written while the range was read (before its revision).
 */
function checkWhole(all: RangeJson): void {
  assertEquals(Number(all.count), KEYS);
  assertEquals(all.more, undefined);
  assertEquals(all.kvs.length, KEYS);
  const revision = Number(all.header.revision);
  for (let i = 0; i < KEYS; i++) {
    const kv = all.kvs[i];
    const modRevision = Number(kv.mod_revision);
    assertEquals(atob(kv.key), keyOf(i));
    assert(modRevision <= revision, `${keyOf(i)} at ${modRevision} > ${revision}`);
    const value = atob(kv.value ?? "");
    if (modRevision <= KEYS + 1) assertEquals(value, valueOf(i), keyOf(i));
    else assert(value.startsWith("changed "), `${keyOf(i)}: ${value.slice(0, 20)}`);
  }
}

async function checkLongRange(
  endpoint: string,
  ctlArgs: string[],
  plainEndpoint: string,
  gateway: Gateway,
): Promise<void> {
  const client = connect(plainEndpoint);
  try {
    for (let i = 0; i < KEYS; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) => client.put(keyOf(i + j)).value(valueOf(i + j)).exec()),
      );
    }
    // writes to keys of the range go on while it is read: none of them may show in its answer
    let n = 0;
    const writer = async () => {
      for (let i = 0; i < 60; i++) await client.put(keyOf((i * 47) % KEYS)).value(`changed ${n++}`).exec();
    };
    checkWhole(await getAll(endpoint, ctlArgs, [], writer));
    checkWhole(await gatewayAll(gateway, writer));

    const limited = await getAll(endpoint, ctlArgs, ["--limit", "1000"], writer);
    assertEquals([limited.kvs.length, limited.more, limited.count], [1000, true, KEYS]);
    assertEquals(atob(limited.kvs[999].key), keyOf(999));

    // by key descending: read from the end of the range, in pages when long
    const lastTen = await getAll(
      endpoint,
      ctlArgs,
      ["--order=DESCEND", "--sort-by=KEY", "--limit", "10"],
      writer,
    );
    assertEquals(
      lastTen.kvs.map((kv) => atob(kv.key)),
      Array.from({ length: 10 }, (_, i) => keyOf(KEYS - 1 - i)),
    );
    assertEquals([lastTen.more, Number(lastTen.count)], [true, KEYS]);
    const backwards = await getAll(endpoint, ctlArgs, ["--order=DESCEND"], writer);
    assertEquals(backwards.kvs.length, KEYS);
    for (let i = 0; i < KEYS; i++) assertEquals(atob(backwards.kvs[i].key), keyOf(KEYS - 1 - i));

    // the key modified last: every kv is looked at, the value of one read
    const newest = await getAll(
      endpoint,
      ctlArgs,
      ["--order=DESCEND", "--sort-by=MODIFY", "--limit", "1"],
      () => Promise.resolve(),
    );
    assertEquals(newest.kvs.map((kv) => atob(kv.value ?? "")), [`changed ${n - 1}`]);
    assertEquals([newest.more, Number(newest.count)], [true, KEYS]);

    // chosen from the whole range, which is read in pages first: by value, by version, by revision
    const none = () => Promise.resolve();
    const all = await getAll(endpoint, ctlArgs, [], none);
    const keys = (kvs: JsonKv[]) => kvs.map((kv) => atob(kv.key));
    const value = (kv: JsonKv) => atob(kv.value ?? "");
    const byValue = all.kvs.slice().sort((a, b) => value(a) < value(b) ? 1 : value(a) > value(b) ? -1 : 0);
    const topByValue = await getAll(
      endpoint,
      ctlArgs,
      ["--order=DESCEND", "--sort-by=VALUE", "--limit", "5"],
      none,
    );
    assertEquals(keys(topByValue.kvs), keys(byValue.slice(0, 5)));
    assertEquals(topByValue.kvs.map(value), byValue.slice(0, 5).map(value));
    assertEquals([topByValue.more, Number(topByValue.count)], [true, KEYS]);
    // etcdctl 3.4 has no flag for the revision filters; the gateway takes them
    const changed = await gatewayAll(gateway, none, { min_mod_revision: KEYS + 2 });
    assertEquals(keys(changed.kvs), keys(all.kvs.filter((kv) => Number(kv.mod_revision) >= KEYS + 2)));
    assert(changed.kvs.length > 0 && changed.kvs.every((kv) => value(kv).startsWith("changed ")));
    // etcd sorts unstably: keys of one version may come in any order
    const byVersion = await getAll(
      endpoint,
      ctlArgs,
      ["--order=DESCEND", "--sort-by=VERSION", "--keys-only"],
      none,
    );
    assertEquals(byVersion.kvs.length, KEYS);
    for (let i = 1; i < KEYS; i++) {
      assert(Number(byVersion.kvs[i - 1].version) >= Number(byVersion.kvs[i].version), `at ${i}`);
    }
    assertEquals(keys(byVersion.kvs).sort(), keys(all.kvs));
    assert(Number(byVersion.kvs[0].version) > 1, "the keys written again first");

    const keysOnly = await getAll(endpoint, ctlArgs, ["--keys-only"], none);
    assertEquals(keysOnly.kvs.length, KEYS);
    assert(keysOnly.kvs.every((kv) => kv.value === undefined), "keys only");
  } finally {
    client.close();
  }
}

for (const impl of implementations()) {
  Deno.test({
    name: `[${impl}] a range of 3,000 keys of 1 KB while others write`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      const m = await Member.start({ impl, host: HOST });
      try {
        await checkLongRange(m.endpoint, [], m.endpoint, { url: `http://${m.endpoint}` });
      } finally {
        await m.destroy();
      }
    },
  });

  Deno.test({
    name: `[${impl}] a range of 3,000 keys of 1 KB over TLS`,
    ignore: !HAVE_ETCDCTL,
    fn: async () => {
      const pki = await Pki.create();
      const host = TLS_HOST;
      const cert = await pki.member("infra0", host);
      const [secure, plain] = freePorts(host, 2);
      // the standard client URL (cleartext, on `plain`, which the start-up checks ask) and a TLS one
      const urls = `https://${host}:${secure},http://${host}:${plain}`;
      const m = await Member.start({
        impl,
        host,
        clientPort: plain,
        args: [
          "--listen-client-urls",
          urls,
          "--advertise-client-urls",
          urls,
          "--cert-file",
          cert.cert,
          "--key-file",
          cert.key,
        ],
      });
      const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(pki.ca)] });
      try {
        const url = `https://${host}:${secure}`;
        await checkLongRange(url, ["--cacert", pki.ca], m.endpoint, { url, client });
      } finally {
        client.close();
        await m.destroy();
        await pki.destroy();
      }
    },
  });
}
