/**
 * A range of thousands of keys, as `etcdctl get --prefix` reads it, over cleartext and over TLS, while
 * other clients write: every key and value, `count` and `more` as etcd answers them, and all of it at
 * the one revision of the header. etcd-ts reads such a range page by page (server/member/range_pages.ts)
 * and hands the answer to the transport in parts; the real etcd runs the same checks.
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

interface JsonKv {
  key: string;
  value?: string;
  mod_revision: number;
}

/** `get --prefix k/` with `extra` flags, as JSON; writes `k/0000`.. meanwhile through `writer`. */
async function getAll(endpoint: string, ctlArgs: string[], extra: string[], writer: () => Promise<void>) {
  const [got] = await Promise.all([
    etcdctl(endpoint, [...ctlArgs, "get", "--prefix", "k/", "-w", "json", ...extra], { timeoutMs: 60_000 }),
    writer(),
  ]);
  assertEquals(got.code, 0, got.stderr);
  return JSON.parse(got.stdout) as {
    header: { revision: number };
    kvs: JsonKv[];
    count: number;
    more?: boolean;
  };
}

async function checkLongRange(endpoint: string, ctlArgs: string[], plainEndpoint: string): Promise<void> {
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
    const all = await getAll(endpoint, ctlArgs, [], writer);
    assertEquals(all.count, KEYS);
    assertEquals(all.more, undefined);
    assertEquals(all.kvs.length, KEYS);
    for (let i = 0; i < KEYS; i++) {
      const kv = all.kvs[i];
      assertEquals(atob(kv.key), keyOf(i));
      assert(
        kv.mod_revision <= all.header.revision,
        `${keyOf(i)} at ${kv.mod_revision} > ${all.header.revision}`,
      );
      const value = atob(kv.value ?? "");
      if (kv.mod_revision <= KEYS + 1) assertEquals(value, valueOf(i), keyOf(i));
      else assert(value.startsWith("changed "), `${keyOf(i)}: ${value.slice(0, 20)}`);
    }

    const limited = await getAll(endpoint, ctlArgs, ["--limit", "1000"], writer);
    assertEquals([limited.kvs.length, limited.more, limited.count], [1000, true, KEYS]);
    assertEquals(atob(limited.kvs[999].key), keyOf(999));

    const keysOnly = await getAll(endpoint, ctlArgs, ["--keys-only"], () => Promise.resolve());
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
        await checkLongRange(m.endpoint, [], m.endpoint);
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
      try {
        await checkLongRange(`https://${host}:${secure}`, ["--cacert", pki.ca], m.endpoint);
      } finally {
        await m.destroy();
        await pki.destroy();
      }
    },
  });
}
