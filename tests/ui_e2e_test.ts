/**
 * The dashboard (/ui) in a real headless chromium, against a three-member cluster: members and leader, the
 * key browser, the live watch view and the chart; with auth on: the login, a read-only user without write
 * controls, a writer putting a key through the page; an unstarted learner and the NOSPACE alarm; with
 * `--enable-ui=false`, 404. Against the real etcd (which has no dashboard) the
 * same page is served by a small server of its own whose API calls go to the cluster, proving that the page
 * speaks etcd's gateway as etcd does. A screenshot of each run is written to a temporary directory.
 */
import http2 from "node:http2";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { assert, assertEquals } from "./assert.ts";
import { Cluster } from "./cluster.ts";
import { ctlOk, etcdctl, freePorts, HAVE_ETCDCTL, type Impl, implementations, waitUntil } from "./helpers.ts";
import { HAVE_CHROMIUM, launchBrowser, serveDashboard } from "./ui_e2e_util.ts";

const WHY = !HAVE_CHROMIUM
  ? " (skipped: /usr/bin/chromium missing)"
  : !HAVE_ETCDCTL
  ? " (skipped: etcdctl missing)"
  : "";

/**
 * Loopback addresses per server: the three-member cluster, the auth test's member, the dashboard server of
 * the real etcd's runs, the alarm test's member and the (never started) learner it adds.
 */
const HOSTS: Record<Impl, { cluster: string[]; auth: string; page: string; alarm: string; learner: string }> =
  {
    "etcd-ts": {
      cluster: ["127.0.2.51", "127.0.2.52", "127.0.2.53"],
      auth: "127.0.2.58",
      page: "127.0.2.62",
      alarm: "127.0.2.63",
      learner: "127.0.2.65",
    },
    etcd: {
      cluster: ["127.0.2.54", "127.0.2.55", "127.0.2.56"],
      auth: "127.0.2.59",
      page: "127.0.2.57",
      alarm: "127.0.2.64",
      learner: "127.0.2.66",
    },
  };

/** Where the page of `impl`'s cluster is: the member's own /ui, or a dashboard server pointed at it. */
function dashboardFor(impl: Impl, c: Cluster): { url: string; close(): Promise<void> } {
  if (impl === "etcd-ts") return { url: `${c.members[0].clientUrl}/ui/`, close: () => Promise.resolve() };
  const host = HOSTS[impl].page;
  return serveDashboard(host, freePorts(host, 1)[0], c.members[0].clientUrl);
}

/** The texts of the cells of a table's body, row by row. */
async function rows(page: Page, table: string): Promise<string[][]> {
  return await page.$$eval(
    `#${table} tbody tr`,
    (trs) =>
      trs.map((tr) =>
        Array.from(
          (tr as unknown as { cells: ArrayLike<{ textContent: string | null }> }).cells,
          (td) => td.textContent ?? "",
        )
      ),
  );
}

/** Fails the test on any script error or CSP violation the page reports. */
function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/Failed to load resource/.test(msg.text())) errors.push(msg.text());
  });
  return errors;
}

for (const impl of implementations()) {
  Deno.test({
    name: `ui e2e (${impl}): three members and the leader, keys, a live watch and the chart${WHY}`,
    ignore: WHY !== "",
    async fn(t) {
      const c = await Cluster.start({ impl, hosts: HOSTS[impl].cluster });
      const dashboard = dashboardFor(impl, c);
      const browser = await launchBrowser();
      try {
        const eps = c.endpoints();
        await ctlOk(eps, ["put", "ui/greeting", "hello"]);
        const lease = (await ctlOk(eps, ["lease", "grant", "600"])).match(/lease ([0-9a-f]+) granted/)![1];
        await ctlOk(eps, ["put", "ui/leased", "held", `--lease=${lease}`]);
        const leader = await c.waitLeader();
        const page = await browser.context.newPage();
        const errors = collectErrors(page);
        await page.goto(dashboard.url);

        await t.step("members, their roles and the leader", async () => {
          // members: three, all healthy, one leader (the one etcdctl names)
          await waitUntil(
            async () => {
              const r = await rows(page, "members");
              return r.length === 3 && r.every((cells) => cells[3] === "healthy") &&
                r.filter((cells) => cells[2] === "leader").length === 1;
            },
            15_000,
            () => "three healthy members with one leader",
          );
          const members = await rows(page, "members");
          const shownLeader = members.find((cells) => cells[2] === "leader")!;
          assertEquals(shownLeader[0], c.members[leader.index].name);
          assertEquals(shownLeader[1], leader.id.toString(16));
          assertEquals(members.filter((cells) => cells[2] === "follower").length, 2);
          for (const cells of members) assert(Number(cells[4]) >= 2 && Number(cells[5]) > 0, cells.join(" "));
        });

        await t.step("the key browser", async () => {
          // the key browser shows the key etcdctl wrote, with its value and revisions
          await page.fill("#prefix", "ui/");
          await page.click("#browse");
          await waitUntil(
            async () => (await rows(page, "keys")).some((r) => r[0] === "ui/greeting" && r[1] === "hello"),
            10_000,
            () => "ui/greeting in the key browser",
          );
          const kv = (await rows(page, "keys")).find((r) => r[0] === "ui/greeting")!;
          assertEquals(kv[2], "1");
          assertEquals(kv[3], kv[4]);
          assertEquals(kv[5], "—");
          const leased = (await rows(page, "keys")).find((r) => r[0] === "ui/leased")!;
          assertEquals([leased[1], leased[5]], ["held", lease]);
          // auth is off: read-only, no write controls
          assert(await page.isHidden("#put-form"));
          assertEquals(await page.locator("button.delete").count(), 0);
        });

        await t.step("a live watch", async () => {
          // a put made now shows up live in the watch view
          await page.fill("#watch-prefix", "ui/");
          await page.click("#watch-start");
          await page.waitForSelector('#watch-status[data-state="watching"]', { timeout: 10_000 });
          await ctlOk(eps, ["put", "ui/live", "now"]);
          await waitUntil(
            async () =>
              (await rows(page, "events")).some((r) =>
                r[1] === "PUT" && r[2] === "ui/live" && r[3] === "now"
              ),
            10_000,
            () => "ui/live in the watch view",
          );
          await ctlOk(eps, ["del", "ui/live"]);
          await waitUntil(
            async () => (await rows(page, "events")).some((r) => r[1] === "DELETE" && r[2] === "ui/live"),
            10_000,
            () => "the delete of ui/live in the watch view",
          );
        });

        await t.step("the chart of /metrics", async () => {
          // the chart: writes and reads between scrapes of /metrics (bounded: at most 40 rounds, 30 s)
          const until = Date.now() + 30_000;
          let chart = "";
          for (let i = 0; i < 40 && Date.now() < until; i++) {
            await ctlOk(c.endpoints([0]), ["put", `ui/load/${i}`, "x"]);
            await ctlOk(c.endpoints([0]), ["get", "ui/greeting"]);
            chart = await page.textContent("#chart-status") ?? "";
            const samples = Number(await page.getAttribute("#chart-status", "data-samples") ?? 0);
            if (samples >= 3 && /writes [1-9]|writes 0\.[0-9]*[1-9]/.test(chart)) break;
            await new Promise((r) => setTimeout(r, 300));
          }
          assert(/writes ([1-9]|0\.[0-9]*[1-9])/.test(chart), `no writes on the chart: ${chart}`);
          assert(/reads ([1-9]|0\.[0-9]*[1-9])/.test(chart), `no reads on the chart: ${chart}`);
          assert(/WAL fsync mean [0-9.]+ ms/.test(chart), `no fsync latency on the chart: ${chart}`);
          assertEquals(await page.locator("#chart-ops canvas").count(), 1);
          assertEquals(await page.locator("#chart-fsync canvas").count(), 1);
          assertEquals(await page.textContent("#alarms"), "No active alarms.");
        });

        await screenshot(page, `dashboard-${impl}.png`);

        await t.step("a member that is gone is unhealthy", async () => {
          // a member that stops answering is shown unhealthy (not the one serving the page, nor the leader)
          const gone = [1, 2].find((i) => i !== leader.index)!;
          await c.members[gone].kill();
          await waitUntil(
            async () => {
              const r = await rows(page, "members");
              return r.find((cells) => cells[0] === c.members[gone].name)?.[3].startsWith("unhealthy") ===
                  true &&
                r.filter((cells) => cells[3] === "healthy").length === 2;
            },
            15_000,
            () => `${c.members[gone].name} shown unhealthy`,
          );
        });

        assertEquals(errors, []);
      } catch (err) {
        for (const page of browser.context.pages()) {
          await screenshot(page, `dashboard-${impl}-failed.png`).catch(() => {});
        }
        console.error(c.logs().slice(-4000));
        throw err;
      } finally {
        await browser.close();
        await dashboard.close();
        await c.destroy();
      }
    },
  });

  Deno.test({
    name: `ui e2e (${impl}): with auth on, a login; a reader gets no write controls, a writer puts${WHY}`,
    ignore: WHY !== "",
    async fn() {
      const c = await Cluster.start({ impl, hosts: [HOSTS[impl].auth] });
      const dashboard = dashboardFor(impl, c);
      const browser = await launchBrowser();
      try {
        const eps = c.endpoints();
        for (
          const args of [
            ["user", "add", "root:rootpw"],
            ["role", "add", "reader"],
            ["role", "grant-permission", "reader", "read", "app/", "--prefix=true"],
            ["user", "add", "alice:alicepw"],
            ["user", "grant-role", "alice", "reader"],
            ["role", "add", "writer"],
            ["role", "grant-permission", "writer", "readwrite", "app/", "--prefix=true"],
            ["role", "grant-permission", "writer", "read", "cfg/", "--prefix=true"],
            ["user", "add", "bob:bobpw"],
            ["user", "grant-role", "bob", "writer"],
            ["put", "app/one", "1"],
            ["put", "cfg/x", "2"],
            ["auth", "enable"],
          ]
        ) await ctlOk(eps, args);
        const revBefore = (await ctlOk(eps, ["--user", "root:rootpw", "get", "app/one", "-w", "json"]))
          .match(/"revision":(\d+)/)![1];

        const page = await browser.context.newPage();
        const errors = collectErrors(page);
        await page.goto(dashboard.url);
        await page.waitForSelector("#login-form", { state: "visible", timeout: 10_000 });
        assert(await page.isHidden("#main"));

        // a wrong password is refused with etcd's words
        await page.fill("#login-user", "alice");
        await page.fill("#login-password", "wrong");
        await page.click("#login-submit");
        await page.waitForSelector("#login-error", { state: "visible" });
        assert((await page.textContent("#login-error"))!.includes("authentication failed"));

        // the reader browses, and sees no put form and no delete buttons
        await signIn(page, "alice", "alicepw");
        await browseFor(page, "app/", "app/one");
        assert(await page.isHidden("#put-form"));
        assertEquals(await page.locator("button.delete").count(), 0);
        const aliceNote = await page.textContent("#readonly-note") ?? "";
        assert(aliceNote.includes("Read-only: alice may not write"), aliceNote);
        // probing write permission wrote nothing
        const revAfter = (await ctlOk(eps, ["--user", "root:rootpw", "get", "app/one", "-w", "json"]))
          .match(/"revision":(\d+)/)![1];
        assertEquals(revAfter, revBefore);

        // the writer gets the put form and delete buttons, and puts a key that etcdctl reads
        await page.click("#signout");
        await signIn(page, "bob", "bobpw");
        await browseFor(page, "app/", "app/one");
        await page.waitForSelector("#put-form", { state: "visible" });
        assertEquals(await page.locator("button.delete").count(), 1);
        await page.fill("#put-key", "app/from-ui");
        await page.fill("#put-value", "written by bob");
        await page.click("#put");
        await waitUntil(
          async () => (await rows(page, "keys")).some((r) => r[0] === "app/from-ui"),
          10_000,
          () => "app/from-ui in the key browser",
        );
        const got = await ctlOk(eps, ["--user", "root:rootpw", "get", "app/from-ui", "--print-value-only"]);
        assertEquals(got.trim(), "written by bob");
        // where the writer may only read: read-only there
        await browseFor(page, "cfg/", "cfg/x");
        let note = "";
        await waitUntil(
          async () =>
            (note = await page.textContent("#readonly-note") ?? "").includes(
              'Read-only: bob may not write under "cfg/"',
            ),
          10_000,
          () => `read-only note for all keys: ${note}`,
        );
        assert(await page.isHidden("#put-form"));
        assertEquals(await page.locator("button.delete").count(), 0);
        const errorsWithoutAuthRefusals = errors.filter((e) => !/status of 40[01]/.test(e));
        assertEquals(errorsWithoutAuthRefusals, []);
      } catch (err) {
        console.error(c.logs().slice(-4000));
        throw err;
      } finally {
        await browser.close();
        await dashboard.close();
        await c.destroy();
      }
    },
  });
}

/** Writes a full-page screenshot to a new temporary directory and prints where. */
async function screenshot(page: Page, name: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "etcd-ts-ui-shot-" });
  const shot = join(dir, name);
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${shot}`);
}

for (const impl of implementations()) {
  Deno.test({
    name: `ui e2e (${impl}): a learner not started yet, and the NOSPACE alarm${WHY}`,
    ignore: WHY !== "",
    async fn() {
      const quota = 2 * 1024 * 1024;
      const c = await Cluster.start({
        impl,
        hosts: [HOSTS[impl].alarm],
        extraArgs: ["--quota-backend-bytes", String(quota)],
      });
      const dashboard = dashboardFor(impl, c);
      const browser = await launchBrowser();
      try {
        const eps = c.endpoints();
        const learnerPeer = `http://${HOSTS[impl].learner}:${freePorts(HOSTS[impl].learner, 1)[0]}`;
        await ctlOk(eps, ["member", "add", "infra9", "--learner", `--peer-urls=${learnerPeer}`]);
        const page = await browser.context.newPage();
        const errors = collectErrors(page);
        await page.goto(dashboard.url);
        let members: string[][] = [];
        await waitUntil(
          async () => (members = await rows(page, "members")).length === 2 && members[1][2] === "learner",
          15_000,
          () => `a learner row: ${JSON.stringify(members)}`,
        );
        assertEquals(members[0].slice(2, 4), ["leader", "healthy"]);
        assertEquals(members[1][0], "(unstarted)");
        assert(members[1][3].startsWith("unhealthy"), members[1][3]);
        assertEquals(await page.textContent("#alarms"), "No active alarms.");

        // 100 KB values past a 2 MB quota (bounded: at most 60 puts)
        const value = "x".repeat(100_000);
        let refused = false;
        for (let i = 0; i < 60 && !refused; i++) {
          refused = (await etcdctl(eps, ["put", `fill/${i}`, value])).code !== 0;
        }
        assert(refused, "the quota never refused a put");
        const id = (await c.status())[0].memberId.toString(16);
        await waitUntil(
          async () => (await page.textContent("#alarms")) === `NOSPACE on member ${id}`,
          10_000,
          () => "the NOSPACE alarm on the page",
        );
        assertEquals(errors, []);
      } finally {
        await browser.close();
        await dashboard.close();
        await c.destroy();
      }
    },
  });
}

async function signIn(page: Page, user: string, password: string): Promise<void> {
  await page.waitForSelector("#login-form", { state: "visible" });
  await page.fill("#login-user", user);
  await page.fill("#login-password", password);
  await page.click("#login-submit");
  await page.waitForSelector("#main", { state: "visible", timeout: 10_000 });
  assert((await page.textContent("#session"))!.includes(`signed in as ${user}`));
}

async function browseFor(page: Page, prefix: string, key: string): Promise<void> {
  await page.fill("#prefix", prefix);
  await page.click("#browse");
  await waitUntil(
    async () => (await rows(page, "keys")).some((r) => r[0] === key),
    10_000,
    () => `${key} in the key browser`,
  );
}

Deno.test({
  name: `ui e2e (etcd-ts): --enable-ui=false makes /ui a 404, as any unknown path${
    HAVE_ETCDCTL ? "" : " (skipped: etcdctl missing)"
  }`,
  ignore: !HAVE_ETCDCTL || !implementations().includes("etcd-ts"),
  async fn() {
    const c = await Cluster.start({
      impl: "etcd-ts",
      hosts: ["127.0.2.61"],
      extraArgs: ["--enable-ui=false"],
    });
    try {
      for (const path of ["/ui", "/ui/", "/ui/app.js"]) {
        const res = await fetch(`${c.members[0].clientUrl}${path}`);
        assertEquals([res.status, await res.text()], [404, "404 page not found\n"], path);
      }
    } finally {
      await c.destroy();
    }
  },
});

Deno.test({
  name: `ui e2e (etcd-ts): by default the member serves the page and uPlot${
    HAVE_ETCDCTL ? "" : " (skipped: etcdctl missing)"
  }`,
  ignore: !HAVE_ETCDCTL || !implementations().includes("etcd-ts"),
  async fn() {
    const c = await Cluster.start({ impl: "etcd-ts", hosts: ["127.0.2.60"] });
    try {
      const page = await fetch(`${c.members[0].clientUrl}/ui`);
      assertEquals(page.status, 200);
      assertEquals(page.headers.get("content-type"), "text/html; charset=utf-8");
      const html = await page.text();
      const src = html.match(/\/ui\/uplot\.js\?v=[0-9a-f]+/)![0];
      const js = await fetch(`${c.members[0].clientUrl}${src}`);
      assertEquals(js.headers.get("content-type"), "text/javascript; charset=utf-8");
      assert((await js.text()).includes("uPlot"));
      // and over HTTP/2 (cleartext, prior knowledge), as a gRPC client's connection would ask
      const h2 = await h2Get(c.members[0].clientUrl, "/ui/");
      assertEquals(h2.status, 200);
      assertEquals(h2.contentType, "text/html; charset=utf-8");
      assertEquals(h2.body, html);
    } finally {
      await c.destroy();
    }
  },
});

/** A GET over cleartext HTTP/2. */
function h2Get(origin: string, path: string): Promise<{ status: number; contentType: string; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(origin);
    session.on("error", reject);
    const req = session.request({ ":method": "GET", ":path": path });
    let status = 0;
    let contentType = "";
    let body = "";
    req.setEncoding("utf8");
    req.on("response", (headers) => {
      status = Number(headers[":status"]);
      contentType = String(headers["content-type"]);
    });
    req.on("data", (chunk: string) => body += chunk);
    req.on("end", () => session.close(() => resolve({ status, contentType, body })));
    req.on("error", (err) => {
      session.close();
      reject(err);
    });
    req.end();
  });
}
