import { assert, assertEquals, assertRejects } from "../tests/assert.ts";
import { BootstrapError } from "./static.ts";
import {
  type DnsResolver,
  needsPeerTls,
  resolverFor,
  srvClientEndpoints,
  srvInitialCluster,
  srvService,
  urlStringsDiffer,
} from "./srv.ts";

/** A zone in memory: SRV lists by query name, addresses by host; a missing name is NotFound. */
function fakeResolver(
  srv: Record<string, [string, number, number?, number?][]>,
  hosts: Record<string, string[]>,
): DnsResolver & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    srv(name: string) {
      asked.push(name);
      const list = srv[name];
      if (!list) return Promise.reject(new Deno.errors.NotFound(`no records found for ${name}`));
      return Promise.resolve(
        list.map(([target, port, priority = 0, weight = 0]) => ({ target, port, priority, weight })),
      );
    },
    addresses(host: string) {
      if (/^[\d.]+$/.test(host) || host.includes(":")) return Promise.resolve([host]);
      const list = hosts[host];
      if (!list) return Promise.reject(new Deno.errors.NotFound(`no records found for ${host}`));
      return Promise.resolve(list);
    },
  };
}

const HOSTS = {
  "infra0.example.com": ["127.0.1.1"],
  "infra1.example.com": ["127.0.1.2"],
  "infra2.example.com": ["127.0.1.3"],
};
const SSL = "_etcd-server-ssl._tcp.example.com";
const PLAIN = "_etcd-server._tcp.example.com";
const three = (): [string, number][] => [
  ["infra0.example.com.", 2380],
  ["infra1.example.com.", 2380],
  ["infra2.example.com.", 2380],
];

function opts(resolver: DnsResolver, advertise: string[], name = "infra1", serviceSuffix = "") {
  return {
    name,
    domain: "example.com",
    serviceSuffix,
    advertisePeerUrls: advertise.map((u) => new URL(u)),
    resolver,
  };
}

Deno.test("srvService names the four services", () => {
  assertEquals(srvService("etcd-server", "https"), "etcd-server-ssl");
  assertEquals(srvService("etcd-server", "http"), "etcd-server");
  assertEquals(srvService("etcd-server", "https", "prod"), "etcd-server-ssl-prod");
  assertEquals(srvService("etcd-client", "http", "prod"), "etcd-client-prod");
});

Deno.test("srvInitialCluster", async (t) => {
  await t.step(
    "https records: this member by address, the others numbered, names without the dot",
    async () => {
      const r = fakeResolver({ [SSL]: three() }, HOSTS);
      const cluster = await srvInitialCluster(opts(r, ["https://127.0.1.2:2380"]));
      assertEquals(
        cluster,
        new Map([
          ["0", ["https://infra0.example.com:2380"]],
          ["infra1", ["https://infra1.example.com:2380"]],
          ["1", ["https://infra2.example.com:2380"]],
        ]),
      );
      assertEquals(r.asked, [SSL, PLAIN]);
      assert(needsPeerTls(cluster));
    },
  );

  await t.step("an advertised host name is resolved too", async () => {
    const r = fakeResolver({ [SSL]: three() }, HOSTS);
    const cluster = await srvInitialCluster(opts(r, ["https://infra1.example.com:2380"]));
    assertEquals(cluster.get("infra1"), ["https://infra1.example.com:2380"]);
  });

  await t.step("http-only records are accepted (etcd 3.4 refuses them)", async () => {
    const r = fakeResolver({ [PLAIN]: three() }, HOSTS);
    const cluster = await srvInitialCluster(opts(r, ["http://127.0.1.1:2380"], "infra0"));
    assertEquals([...cluster.keys()], ["infra0", "0", "1"]);
    assertEquals(cluster.get("1"), ["http://infra2.example.com:2380"]);
    assertEquals(needsPeerTls(cluster), false);
  });

  await t.step("both lists combine, https first, placeholders numbered across both", async () => {
    const r = fakeResolver({
      [SSL]: [["infra0.example.com.", 2380], ["infra1.example.com.", 2380]],
      [PLAIN]: [["infra2.example.com.", 2380]],
    }, HOSTS);
    const cluster = await srvInitialCluster(opts(r, ["https://127.0.1.2:2380"]));
    assertEquals(
      cluster,
      new Map([
        ["0", ["https://infra0.example.com:2380"]],
        ["infra1", ["https://infra1.example.com:2380"]],
        ["1", ["http://infra2.example.com:2380"]],
      ]),
    );
  });

  await t.step("records are taken by priority, then weight, then name", async () => {
    const r = fakeResolver({
      [PLAIN]: [["infra2.example.com.", 2380, 10, 0], ["infra1.example.com.", 2380, 0, 5], [
        "infra0.example.com.",
        2380,
        0,
        50,
      ]],
    }, HOSTS);
    const cluster = await srvInitialCluster(opts(r, ["http://127.0.1.3:2380"], "infra2"));
    assertEquals([...cluster.entries()], [
      ["0", ["http://infra0.example.com:2380"]],
      ["1", ["http://infra1.example.com:2380"]],
      ["infra2", ["http://infra2.example.com:2380"]],
    ]);
  });

  await t.step("the port must match as well as the address", async () => {
    const r = fakeResolver({ [PLAIN]: three() }, HOSTS);
    await assertRejects(
      () => srvInitialCluster(opts(r, ["http://127.0.1.2:2381"])),
      BootstrapError,
      'cannot find local etcd member "infra1" in SRV records',
    );
  });

  await t.step("--discovery-srv-name selects the suffixed services", async () => {
    const r = fakeResolver({ "_etcd-server-ssl-prod._tcp.example.com": three() }, HOSTS);
    const cluster = await srvInitialCluster(opts(r, ["https://127.0.1.2:2380"], "infra1", "prod"));
    assertEquals(cluster.size, 3);
    assertEquals(r.asked, ["_etcd-server-ssl-prod._tcp.example.com", "_etcd-server-prod._tcp.example.com"]);
  });

  await t.step("no records at all: both lookups named, in etcd's words", async () => {
    const r = fakeResolver({}, HOSTS);
    const err = await assertRejects(
      () => srvInitialCluster(opts(r, ["https://127.0.1.2:2380"])),
      BootstrapError,
    );
    assertEquals(
      err.message,
      `error querying DNS SRV records for _etcd-server-ssl lookup ${SSL}: no such host; ` +
        `error querying DNS SRV records for _etcd-server lookup ${PLAIN}: no such host`,
    );
    assertEquals((err as BootstrapError).code, "BOOTSTRAP");
  });

  await t.step("an empty answer counts as no records", async () => {
    const r = fakeResolver({ [SSL]: [] }, HOSTS);
    await assertRejects(
      () => srvInitialCluster(opts(r, ["https://127.0.1.2:2380"])),
      BootstrapError,
      `error querying DNS SRV records for _etcd-server-ssl lookup ${SSL}: no such host`,
    );
  });

  await t.step("a lookup failure other than NotFound keeps its own message", async () => {
    const r: DnsResolver = {
      srv: () => Promise.reject(new Error("request timed out")),
      addresses: () => Promise.resolve(["127.0.1.2"]),
    };
    await assertRejects(
      () => srvInitialCluster(opts(r, ["https://127.0.1.2:2380"])),
      BootstrapError,
      `lookup ${SSL}: request timed out`,
    );
  });

  // records, this member's advertised URLs (and name, if not infra1), and etcd's words for the refusal
  const refusals: [string, Record<string, [string, number][]>, string[], string | undefined, string][] = [
    [
      "this member missing from the records",
      { [SSL]: three() },
      ["https://127.0.1.9:2380"],
      "infra9",
      'cannot find local etcd member "infra9" in SRV records',
    ],
    [
      "an https record for an http advertise URL: etcd's scheme mismatch",
      { [SSL]: three() },
      ["http://127.0.1.2:2380"],
      undefined,
      "bootstrap at https://infra1.example.com:2380 from DNS for etcd-server-ssl has scheme mismatch " +
      "with expected peer http://127.0.1.2:2380",
    ],
    [
      "an http record for an https advertise URL: the same, for etcd-server",
      { [PLAIN]: three() },
      ["https://infra1.example.com:2380"],
      undefined,
      "bootstrap at http://infra1.example.com:2380 from DNS for etcd-server has scheme mismatch " +
      "with expected peer https://infra1.example.com:2380",
    ],
    [
      "a target that does not resolve is named",
      { [SSL]: [...three(), ["infra3.example.com.", 2380]] },
      ["https://127.0.1.2:2380"],
      undefined,
      "error querying DNS SRV records for _etcd-server-ssl lookup infra3.example.com: no such host",
    ],
    [
      "an advertised host that does not resolve is named",
      { [SSL]: three() },
      ["https://nowhere.example.com:2380"],
      undefined,
      "lookup nowhere.example.com: no such host (--initial-advertise-peer-urls https://nowhere.example.com:2380)",
    ],
  ];
  for (const [what, records, advertise, name, message] of refusals) {
    await t.step(what, async () => {
      const r = fakeResolver(records, HOSTS);
      await assertRejects(() => srvInitialCluster(opts(r, advertise, name)), BootstrapError, message);
    });
  }

  await t.step(
    "two records reaching this member: both are its URLs, then etcd's advertise check",
    async () => {
      const r = fakeResolver({ [SSL]: [...three(), ["alias1.example.com.", 2380]] }, {
        ...HOSTS,
        "alias1.example.com": ["127.0.1.2"],
      });
      const err = await assertRejects(
        () => srvInitialCluster(opts(r, ["https://127.0.1.2:2380"])),
        BootstrapError,
      );
      assertEquals(
        err.message,
        "--initial-cluster has infra1=https://alias1.example.com:2380,infra1=https://infra1.example.com:2380 " +
          "but missing from --initial-advertise-peer-urls=https://127.0.1.2:2380 " +
          '(len(["https://127.0.1.2:2380"]) != len(["https://alias1.example.com:2380" ' +
          '"https://infra1.example.com:2380"]))',
      );
    },
  );

  await t.step("two records reaching this member are fine when it advertises both", async () => {
    const r = fakeResolver({
      [PLAIN]: [["infra1.example.com.", 2380], ["infra1.example.com.", 2390], ["infra0.example.com.", 2380]],
    }, HOSTS);
    const cluster = await srvInitialCluster(
      opts(r, ["http://127.0.1.2:2390", "http://infra1.example.com:2380"]),
    );
    assertEquals(cluster.get("infra1"), ["http://infra1.example.com:2380", "http://infra1.example.com:2390"]);
    assertEquals(cluster.get("0"), ["http://infra0.example.com:2380"]);
  });

  await t.step("an advertised URL without a record: etcd's advertise check", async () => {
    const r = fakeResolver({ [PLAIN]: three() }, HOSTS);
    await assertRejects(
      () => srvInitialCluster(opts(r, ["http://127.0.1.2:2380", "http://127.0.1.2:2390"])),
      BootstrapError,
      "--initial-cluster has infra1=http://infra1.example.com:2380 but missing from " +
        "--initial-advertise-peer-urls=http://127.0.1.2:2380,http://127.0.1.2:2390",
    );
  });

  await t.step("a record listed twice: etcd's duplicate url", async () => {
    const r = fakeResolver({ [PLAIN]: [...three(), ["infra2.example.com.", 2380, 5]] }, HOSTS);
    await assertRejects(
      () => srvInitialCluster(opts(r, ["http://127.0.1.2:2380"])),
      BootstrapError,
      "initial cluster 0=http://infra0.example.com:2380,1=http://infra2.example.com:2380," +
        "2=http://infra2.example.com:2380,infra1=http://infra1.example.com:2380 has duplicate url",
    );
  });

  await t.step("IPv6 targets are bracketed", async () => {
    const r = fakeResolver({ [PLAIN]: [["v6.example.com.", 2380]] }, { "v6.example.com": ["::1"] });
    const cluster = await srvInitialCluster(opts(r, ["http://[::1]:2380"], "a"));
    assertEquals(cluster, new Map([["a", ["http://v6.example.com:2380"]]]));
  });
});

Deno.test("urlStringsDiffer is etcd's URLStringsEqual", async (t) => {
  const r = fakeResolver({}, HOSTS);
  await t.step("equal as written, in any order", async () => {
    assertEquals(
      await urlStringsDiffer(["http://a:1", "http://b:2"], ["http://b:2", "http://a:1"], r),
      undefined,
    );
  });
  await t.step("equal once resolved", async () => {
    assertEquals(
      await urlStringsDiffer(["http://127.0.1.1:2380"], ["http://infra0.example.com:2380"], r),
      undefined,
    );
  });
  await t.step("different lengths", async () => {
    assertEquals(await urlStringsDiffer(["http://a:1"], [], r), 'len(["http://a:1"]) != len([])');
  });
  await t.step("different addresses", async () => {
    assertEquals(
      await urlStringsDiffer(["http://127.0.1.2:2380"], ["http://infra0.example.com:2380"], r),
      'resolved urls: "http://127.0.1.2:2380" != "http://127.0.1.1:2380"',
    );
  });
  await t.step("a name that does not resolve", async () => {
    assertEquals(
      await urlStringsDiffer(["http://127.0.1.2:2380"], ["http://nowhere.example.com:2380"], r),
      'failed to resolve "http://nowhere.example.com:2380" (lookup nowhere.example.com: no such host)',
    );
  });
});

Deno.test("srvClientEndpoints", async (t) => {
  await t.step("https list first, then http, without the trailing dot", async () => {
    const r = fakeResolver({
      "_etcd-client-ssl._tcp.example.com": [["infra0.example.com.", 2379]],
      "_etcd-client._tcp.example.com": [["infra1.example.com.", 2379], ["infra2.example.com.", 2379]],
    }, HOSTS);
    assertEquals(await srvClientEndpoints({ domain: "example.com", resolver: r }), [
      "https://infra0.example.com:2379",
      "http://infra1.example.com:2379",
      "http://infra2.example.com:2379",
    ]);
  });
  await t.step("with a service suffix", async () => {
    const r = fakeResolver({ "_etcd-client-prod._tcp.example.com": [["infra1.example.com.", 2379]] }, HOSTS);
    assertEquals(await srvClientEndpoints({ domain: "example.com", serviceSuffix: "prod", resolver: r }), [
      "http://infra1.example.com:2379",
    ]);
  });
  await t.step("neither list: etcd's dns lookup errors", async () => {
    await assertRejects(
      () => srvClientEndpoints({ domain: "example.com", resolver: fakeResolver({}, HOSTS) }),
      BootstrapError,
      "dns lookup errors: lookup _etcd-client-ssl._tcp.example.com: no such host and " +
        "lookup _etcd-client._tcp.example.com: no such host",
    );
  });
});

Deno.test("the system resolver reads the hosts file first and takes IP literals as they are", async () => {
  const dir = await Deno.makeTempDir({ prefix: "srv-hosts-" });
  try {
    const hosts = `${dir}/hosts`;
    await Deno.writeTextFile(
      hosts,
      "# comment\n127.0.1.7  Member7.example.test m7 # trailing\n::1 member7.example.test\n",
    );
    // an unreachable name server: any DNS query would fail, so these answers come from the file
    const r = resolverFor(undefined, hosts);
    assertEquals(await r.addresses("member7.example.test"), ["127.0.1.7", "::1"]);
    assertEquals(await r.addresses("m7"), ["127.0.1.7"]);
    assertEquals(await r.addresses("127.0.0.9"), ["127.0.0.9"]);
    assertEquals(await r.addresses("[0:0::1]"), ["::1"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
