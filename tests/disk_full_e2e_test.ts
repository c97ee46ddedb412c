/**
 * A member whose disk fills up: its data directory is a 150 MiB tmpfs mounted in a private mount
 * namespace of the member's own (`unshare -m`), with 50 MiB taken by a ballast file, so that the WAL's
 * second 64 MiB segment does not fit. The member must not linger half-alive: it refuses writes with
 * etcd's "database space exceeded", keeps serving serializable reads and says NOSPACE on /health; once the
 * ballast is removed it goes on by itself, and nothing acknowledged is lost.
 *
 * etcd 3.4 is not run here: it exits when its disk fills, which is what this test shows etcd-ts need not do.
 */
import { assert, assertEquals } from "./assert.ts";
import { freePorts, HAVE_ETCDCTL, sleep, waitUntil } from "./helpers.ts";
import { clientFor } from "./cluster.ts";

const HOST = "127.0.2.111";
const ROOT = new URL("..", import.meta.url).pathname;

function canMount(): boolean {
  if (Deno.uid() !== 0) return false;
  for (const tool of ["/usr/bin/unshare", "/usr/bin/nsenter", "/usr/bin/fallocate"]) {
    try {
      Deno.statSync(tool);
    } catch {
      return false;
    }
  }
  return true;
}

async function inMemberMounts(pid: number, script: string): Promise<void> {
  const out = await new Deno.Command("nsenter", { args: ["-t", String(pid), "-m", "sh", "-c", script] })
    .output();
  if (!out.success) throw new Error(`${script}: ${new TextDecoder().decode(out.stderr)}`);
}

Deno.test({
  name: "[etcd-ts] a full disk: writes refused, reads served, NOSPACE on /health, recovery by itself" +
    (canMount() ? "" : " (needs root, unshare, nsenter and fallocate: skipped)"),
  ignore: !HAVE_ETCDCTL || !canMount(),
  fn: async () => {
    const mountPoint = await Deno.makeTempDir({ prefix: "etcd-ts-diskfull-" });
    const [clientPort, peerPort] = freePorts(HOST, 2);
    const client = `http://${HOST}:${clientPort}`;
    const peer = `http://${HOST}:${peerPort}`;
    const serve = [
      Deno.execPath(),
      "run",
      "--allow-all",
      "--quiet",
      `${ROOT}main.ts`,
      "--name",
      "full",
      "--data-dir",
      `${mountPoint}/full.etcd`,
      "--listen-client-urls",
      client,
      "--advertise-client-urls",
      client,
      "--listen-peer-urls",
      peer,
      "--initial-advertise-peer-urls",
      peer,
      "--initial-cluster",
      `full=${peer}`,
    ].map((a) => `'${a}'`).join(" ");
    const child = new Deno.Command("unshare", {
      args: [
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        `mount -t tmpfs -o size=150m tmpfs '${mountPoint}' && fallocate -l 50m '${mountPoint}/ballast' && exec ${serve}`,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let log = "";
    const drained = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of child.stderr) log += dec.decode(chunk, { stream: true });
    })();
    const etcd = clientFor([`${HOST}:${clientPort}`]);
    try {
      await waitUntil(
        async () => {
          try {
            return (await fetch(`${client}/health`).then((r) => r.text())).includes("true");
          } catch {
            return false;
          }
        },
        20_000,
        () => log,
      );
      // fill the WAL's first segment until a write is refused
      const value = "v".repeat(200 * 1024);
      const acked: string[] = [];
      let refusal = "";
      for (let i = 0; i < 600 && refusal === ""; i++) {
        try {
          await etcd.put(`fill/${i}`).value(value).options({ deadline: Date.now() + 5000 });
          acked.push(`fill/${i}`);
        } catch (err) {
          refusal = String((err as Error).message);
        }
      }
      assert(refusal !== "", `600 writes of 200 KiB fitted:\n${log}`);
      // later writes are refused at once with etcd's words, not left to time out
      let refused = "";
      await waitUntil(
        async () => {
          try {
            await etcd.put("more").value("x").options({ deadline: Date.now() + 3000 });
            return false;
          } catch (err) {
            refused = String((err as Error).message);
            return refused.includes("database space exceeded");
          }
        },
        10_000,
        () => `last refusal: ${refused}\n${log}`,
      );
      // reads from the member's own state go on (a linearizable read waits behind the write: the Raft
      // loop waits for space), and the member says why it is unhealthy
      const first = await etcd.get(acked[0]).serializable(true).options({ deadline: Date.now() + 3000 });
      assertEquals(first?.length, value.length);
      const health = await (await fetch(`${client}/health`)).text();
      assertEquals(health.trim(), '{"health":"false"}');
      assertEquals(
        (await (await fetch(`${client}/health?exclude=NOSPACE&serializable=true`)).text()).trim(),
        '{"health":"true"}',
      );
      assert(log.includes("no space left on device; refusing writes until space is freed"), log);

      // space comes back: the member goes on by itself
      await inMemberMounts(child.pid, `rm '${mountPoint}/ballast'`);
      await waitUntil(
        async () => {
          try {
            await etcd.put("after").value("space").options({ deadline: Date.now() + 3000 });
            return true;
          } catch {
            return false;
          }
        },
        15_000,
        () => log,
      );
      assert(log.includes("disk space available again; the member serves writes"), log);
      assertEquals((await (await fetch(`${client}/health`)).text()).trim(), '{"health":"true"}');
      // nothing acknowledged was lost
      const keys = new Set(await etcd.getAll().prefix("fill/").keys());
      const lost = acked.filter((k) => !keys.has(k));
      assertEquals(lost, [], `${lost.length} of ${acked.length} acknowledged writes lost`);
    } finally {
      etcd.close();
      try {
        child.kill("SIGKILL");
      } catch {
        // gone
      }
      await child.status;
      await drained;
      await sleep(50);
      await Deno.remove(mountPoint, { recursive: true }).catch(() => {});
    }
  },
});
