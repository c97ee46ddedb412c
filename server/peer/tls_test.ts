/**
 * The peer transport over `https://` peer URLs: members with certificates from one CA talk with mutual
 * TLS (messages and a snapshot), a member whose certificate comes from another CA or carries a common
 * name that is not allowed is refused and the refusal is reported in one line, and members with
 * self-signed certificates (auto-TLS) talk without verifying each other.
 */
import { assert, assertEquals } from "../../tests/assert.ts";
import { makeCerts, type TestCerts } from "../transport/test_util.ts";
import { TlsCredentials, type TlsSideConfig, tlsSideConfig } from "../tls/credentials.ts";
import type { PeerTls } from "./net.ts";
import { PeerTransport } from "./transport.ts";
import { app, CLUSTER, type LogEntry, type Node, sleep, snapMessage, stopAll, waitFor } from "./test_util.ts";

interface TlsNode extends Node {
  refused: string[];
}

async function sideConfig(dir: string, cert: string, key: string, over: Partial<TlsSideConfig> = {}) {
  const certFile = `${dir}/${crypto.randomUUID()}.crt`;
  const keyFile = `${dir}/${crypto.randomUUID()}.key`;
  await Deno.writeTextFile(certFile, cert);
  await Deno.writeTextFile(keyFile, key);
  return tlsSideConfig({ certFile, keyFile, trustedCaFile: `${dir}/ca.crt`, clientCertAuth: true, ...over });
}

/** A started member on an https:// URL with the port the system picks. */
async function startTlsNode(id: bigint, config: TlsSideConfig): Promise<TlsNode> {
  const logs: LogEntry[] = [];
  const n: TlsNode = {
    id,
    port: 0,
    url: "",
    t: undefined as unknown as PeerTransport,
    received: [],
    unreachable: [],
    snapshotStatus: [],
    logs,
    refused: [],
  };
  const tls: PeerTls = {
    credentials: await TlsCredentials.load(config),
    checkPeerAddress: true,
    onRefused: (_remote, reason) => n.refused.push(reason),
  };
  n.t = new PeerTransport({
    memberId: id,
    clusterId: CLUSTER,
    listen: [new URL("https://127.0.0.1:0")],
    tls,
    onMessage: (m) => n.received.push(m),
    onUnreachable: (x) => n.unreachable.push(x),
    onSnapshotStatus: (x, ok) => n.snapshotStatus.push([x, ok]),
    logger: {
      debug: (msg, fields) => logs.push({ level: "debug", msg, fields }),
      info: (msg, fields) => logs.push({ level: "info", msg, fields }),
      warn: (msg, fields) => logs.push({ level: "warn", msg, fields }),
      error: (msg, fields) => logs.push({ level: "error", msg, fields }),
    },
  });
  await n.t.start();
  n.port = n.t.boundPorts[0];
  n.url = `https://127.0.0.1:${n.port}`;
  return n;
}

function introduce(nodes: Node[]): void {
  for (const n of nodes) for (const o of nodes) if (o !== n) n.t.addPeer(o.id, [o.url]);
}

Deno.test("peer TLS", async (t) => {
  const certs: TestCerts = await makeCerts();
  const dir = certs.dir;
  try {
    await t.step("members of one CA exchange messages and a snapshot over mutual TLS", async () => {
      const a = await startTlsNode(1n, await sideConfig(dir, certs.memberCert, certs.memberKey));
      const b = await startTlsNode(2n, await sideConfig(dir, certs.memberCert, certs.memberKey));
      try {
        introduce([a, b]);
        await waitFor(() => a.t.activeSince(2n) !== undefined && b.t.activeSince(1n) !== undefined);
        for (let i = 0; i < 500; i++) a.t.send([app(1n, 2n, i)]);
        const image = new Uint8Array(3 << 20).map((_, i) => i * 7);
        b.t.send([snapMessage(2n, 1n, image)]);
        await waitFor(() => b.received.length === 500 && a.received.length === 1, 10_000, "messages");
        assertEquals(b.received.map((m) => m.index), Array.from({ length: 500 }, (_, i) => i));
        assertEquals(a.received[0].snapshot?.data, image);
        assertEquals([a.refused, b.refused], [[], []]);
      } finally {
        await stopAll([a, b]);
      }
    });

    await t.step("request() dials an https:// peer with the member's peer credentials", async () => {
      const a = await startTlsNode(1n, await sideConfig(dir, certs.memberCert, certs.memberKey));
      const b = await startTlsNode(2n, await sideConfig(dir, certs.memberCert, certs.memberKey));
      const s = await startTlsNode(
        3n,
        await sideConfig(dir, certs.strangerMemberCert, certs.strangerMemberKey),
      );
      try {
        b.t.handle("/members/hashkv", (req) => ({ status: 200, body: new TextDecoder().decode(req.body) }));
        const r = await a.t.request(b.url, "/members/hashkv", { body: '{"revision":7}', timeoutMs: 5000 });
        assertEquals([r.status, r.body], [200, '{"revision":7}']);
        // b requires client certificates of its CA: the stranger is refused, and told why
        const refused = await s.t.request(b.url, "/members/hashkv", { body: "{}", timeoutMs: 5000 });
        assertEquals(refused.status, 403);
        assert(/certificate signed by unknown authority/.test(refused.body), refused.body);
        assertEquals(b.refused.length, 1);
      } finally {
        await stopAll([a, b, s]);
      }
    });

    await t.step("a member with a certificate of another CA is refused, and both sides say why", async () => {
      const a = await startTlsNode(1n, await sideConfig(dir, certs.memberCert, certs.memberKey));
      // the stranger trusts our CA, so only its own certificate is wrong
      const s = await startTlsNode(
        3n,
        await sideConfig(dir, certs.strangerMemberCert, certs.strangerMemberKey),
      );
      try {
        introduce([a, s]);
        await waitFor(() => a.refused.length > 0, 5000, "a refusal");
        s.t.send([app(3n, 1n, 0)]);
        await sleep(300);
        assertEquals(a.received, [], "nothing from the stranger was delivered");
        assert(a.t.activeSince(3n) === undefined, "no stream from a to the stranger");
        assert(s.t.activeSince(1n) === undefined, "no stream from the stranger to a");
        assert(
          /certificate signed by unknown authority \(CN "stranger-member"\)/.test(a.refused[0]),
          a.refused[0],
        );
        // the stranger's side: its dial to a fails, with the reason kept for its logs
        await waitFor(() => s.t.lastError(1n) !== undefined, 5000, "the stranger's dial error");
        assert(
          /403.*certificate signed by unknown authority/.test(String(s.t.lastError(1n))),
          String(s.t.lastError(1n)),
        );
        // and a's dial to the stranger fails too: a does not trust the stranger's CA
        await waitFor(() => a.t.lastError(3n) !== undefined, 5000, "a's dial error");
        assert(
          /certificate|unknown ?issuer|UnknownIssuer/i.test(String(a.t.lastError(3n))),
          String(a.t.lastError(3n)),
        );
      } finally {
        await stopAll([a, s]);
      }
    });

    await t.step("a member whose common name is not allowed is refused", async () => {
      const a = await startTlsNode(
        1n,
        await sideConfig(dir, certs.memberCert, certs.memberKey, { allowedCn: ["infra9"] }),
      );
      const b = await startTlsNode(2n, await sideConfig(dir, certs.memberCert, certs.memberKey));
      try {
        introduce([a, b]);
        await waitFor(() => a.refused.length > 0, 5000, "a refusal");
        assert(/client certificate authentication failed: CommonName/.test(a.refused[0]), a.refused[0]);
        assert(b.t.activeSince(1n) === undefined, "b's stream to a is not up");
      } finally {
        await stopAll([a, b]);
      }
    });

    await t.step("self-signed members (auto-TLS) talk without verifying each other", async () => {
      const cfg = async (cert: string, key: string) =>
        await sideConfig(dir, cert, key, { selfSigned: true, clientCertAuth: false, trustedCaFile: "" });
      // certificates from two unrelated CAs: nothing is verified, traffic is still encrypted
      const a = await startTlsNode(1n, await cfg(certs.memberCert, certs.memberKey));
      const b = await startTlsNode(2n, await cfg(certs.strangerMemberCert, certs.strangerMemberKey));
      try {
        introduce([a, b]);
        await waitFor(() => a.t.activeSince(2n) !== undefined && b.t.activeSince(1n) !== undefined);
        for (let i = 0; i < 10; i++) a.t.send([app(1n, 2n, i)]);
        await waitFor(() => b.received.length === 10, 5000, "messages");
        assertEquals([a.refused, b.refused], [[], []]);
      } finally {
        await stopAll([a, b]);
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
