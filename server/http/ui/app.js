// The etcd-ts dashboard: a browser client of the member's JSON gateway (/v3/...) and /metrics.
// Plain script, no build step: served as it is by server/http/ui/mod.ts.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const enc = new TextEncoder();
  const dec = new TextDecoder();

  /** Where API calls go: the meta tag the server filled in, or the origin that served the page. */
  const API = (document.querySelector('meta[name="etcd-api"]')?.content || location.origin).replace(
    /\/$/,
    "",
  );
  const REFRESH_MS = 2000;
  const STATUS_TIMEOUT_MS = 1500;
  const KEY_LIMIT = 100;
  const CHART_POINTS = 150;
  const MAX_EVENTS = 200;
  const VALUE_SHOWN = 200;

  /** The signed-in user: `{ name, token }`, or undefined (auth off, or not signed in yet). */
  let session;
  /** Whether the cluster has auth enabled (learned from the first read). */
  let authEnabled = false;

  // ---- bytes, base64 and key ranges, as the gateway encodes them

  function bytesToB64(bytes) {
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return btoa(bin);
  }
  const b64 = (s) => bytesToB64(enc.encode(s));
  function unb64(s) {
    if (!s) return "";
    const bin = atob(s);
    return dec.decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  }
  /** The range of every key starting with `prefix` (all keys for ""), as etcdctl's --prefix makes it. */
  function prefixRange(prefix) {
    if (prefix === "") return { key: bytesToB64([0]), range_end: bytesToB64([0]) };
    const bytes = Array.from(enc.encode(prefix));
    while (bytes.length > 0 && bytes[bytes.length - 1] === 0xff) bytes.pop();
    if (bytes.length === 0) return { key: b64(prefix), range_end: bytesToB64([0]) };
    bytes[bytes.length - 1]++;
    return { key: b64(prefix), range_end: bytesToB64(bytes) };
  }
  /** A field of a gateway answer under its proto name or its JSON name (etcd's gateway mixes both). */
  const pick = (o, ...names) => {
    for (const n of names) if (o && o[n] !== undefined) return o[n];
    return undefined;
  };
  const num = (v) => (v === undefined || v === null || v === "" ? 0 : Number(v));

  /** A member or lease ID (a decimal uint64 string) in hex, as etcdctl prints it (leases in 16 digits). */
  function hexId(v, digits = 0) {
    try {
      return BigInt(String(v ?? "0")).toString(16).padStart(digits, "0");
    } catch {
      return String(v);
    }
  }

  function humanBytes(n) {
    const units = ["B", "kB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) {
      n /= 1000;
      i++;
    }
    return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
  }

  // ---- the gateway

  class ApiError extends Error {
    constructor(message, code) {
      super(message);
      this.code = code;
    }
  }

  /** POSTs `body` to the gateway at `base` (the API by default), with the session's token when there is one. */
  async function call(path, body, options = {}) {
    const base = options.base ?? API;
    const headers = {};
    const sameOrigin = base === API;
    // cross-origin calls stay "simple" (no preflight): no token, no JSON content type
    if (sameOrigin) headers["Content-Type"] = "application/json";
    if (sameOrigin && session) headers["Authorization"] = session.token;
    const res = await fetch(base + path, {
      method: "POST",
      headers,
      body: JSON.stringify(body ?? {}),
      signal: options.signal,
    });
    const text = await res.text();
    let json;
    try {
      json = text === "" ? {} : JSON.parse(text);
    } catch {
      throw new ApiError(`${res.status} ${text.trim()}`, -1);
    }
    if (!res.ok || json.error !== undefined) {
      const err = new ApiError(json.message ?? json.error ?? `HTTP ${res.status}`, json.code ?? -1);
      if (/invalid auth token|user name is empty/.test(err.message) && authEnabled && session) {
        signOut("The session expired; sign in again.");
      }
      throw err;
    }
    return json;
  }

  function withTimeout(ms, run) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), ms);
    return run(ctl.signal).finally(() => clearTimeout(timer));
  }

  function showError(message) {
    const el = $("error");
    el.textContent = message ?? "";
    el.hidden = !message;
  }

  // ---- sign in

  const needsLogin = (err) => /user name is empty|invalid auth token/.test(err.message);

  async function start() {
    $("endpoint").textContent = API;
    try {
      await call("/v3/kv/range", { key: b64("\0"), limit: 1, keys_only: true });
      authEnabled = false;
      enterDashboard();
    } catch (err) {
      if (needsLogin(err)) {
        authEnabled = true;
        showLogin();
      } else {
        showError(`Cannot reach ${API}: ${err.message}`);
        setTimeout(start, 3000);
      }
    }
  }

  function showLogin(message) {
    $("main").hidden = true;
    $("login").hidden = false;
    $("session").textContent = "";
    const el = $("login-error");
    el.textContent = message ?? "";
    el.hidden = !message;
  }

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = $("login-user").value;
    const password = $("login-password").value;
    try {
      const res = await call("/v3/auth/authenticate", { name, password });
      session = { name, token: res.token };
      $("login-password").value = "";
      $("login").hidden = true;
      enterDashboard();
    } catch (err) {
      showLogin(err.message);
    }
  });

  function signOut(message = "Signed out.") {
    session = undefined;
    stopWatch();
    // what the last user could read is not left in the page
    for (const id of ["keys", "events"]) $(id).tBodies[0].textContent = "";
    $("put-form").hidden = true;
    showLogin(message);
  }

  function renderSession() {
    const el = $("session");
    el.textContent = "";
    if (!authEnabled) {
      el.textContent = "auth disabled: read-only";
      return;
    }
    el.append(`signed in as ${session.name} `);
    const out = document.createElement("button");
    out.textContent = "Sign out";
    out.id = "signout";
    out.addEventListener("click", () => signOut());
    el.append(out);
  }

  let timers = [];
  function enterDashboard() {
    showError();
    $("main").hidden = false;
    renderSession();
    for (const t of timers) clearInterval(t);
    timers = [setInterval(refreshMembers, REFRESH_MS), setInterval(scrape, REFRESH_MS)];
    refreshMembers();
    scrape();
    browse();
  }

  // ---- members and alarms

  async function memberStatus(url) {
    try {
      return await withTimeout(
        STATUS_TIMEOUT_MS,
        (signal) => call("/v3/maintenance/status", {}, { base: url.replace(/\/$/, ""), signal }),
      );
    } catch (err) {
      return { failed: err.name === "AbortError" ? "no answer" : err.message };
    }
  }

  async function refreshMembers() {
    if ($("main").hidden) return;
    let list;
    try {
      list = await withTimeout(
        STATUS_TIMEOUT_MS * 2,
        (signal) => call("/v3/cluster/member/list", {}, { signal }),
      );
      showError();
    } catch (err) {
      showError(`member list: ${err.message}`);
      return;
    }
    // by name; members added but not started yet (no name) last
    const members = [...(list.members ?? [])].sort((a, b) =>
      Number(!a.name) - Number(!b.name) || (a.name ?? "").localeCompare(b.name ?? "") ||
      String(pick(a, "ID", "id")).localeCompare(String(pick(b, "ID", "id")))
    );
    const statuses = await Promise.all(members.map((m) => {
      const urls = pick(m, "clientURLs", "client_urls") ?? [];
      // the member serving the API answers for itself at the API's own address
      const url = String(pick(m, "ID", "id")) === String(pick(list.header, "member_id", "memberId"))
        ? API
        : urls[0];
      return url === undefined ? Promise.resolve({ failed: "not started" }) : memberStatus(url);
    }));
    const leader = statuses.map((s) => pick(s, "leader")).find((l) => l !== undefined && l !== "0");
    const body = $("members").tBodies[0];
    body.textContent = "";
    members.forEach((m, i) => {
      const s = statuses[i];
      const id = String(pick(m, "ID", "id"));
      const ok = s.failed === undefined && pick(s, "leader") !== undefined && pick(s, "leader") !== "0";
      const role = pick(m, "isLearner", "is_learner") ? "learner" : id === leader ? "leader" : "follower";
      const cells = [
        m.name || "(unstarted)",
        hexId(id),
        role,
        ok ? "healthy" : `unhealthy${s.failed ? ` (${s.failed})` : " (no leader)"}`,
        s.failed === undefined ? num(pick(s, "raftTerm", "raft_term")) : "—",
        s.failed === undefined ? num(pick(s, "raftIndex", "raft_index")) : "—",
        s.failed === undefined ? humanBytes(num(pick(s, "dbSize", "db_size"))) : "—",
        (pick(m, "clientURLs", "client_urls") ?? []).join(", "),
      ];
      const tr = body.insertRow();
      tr.dataset.role = role;
      tr.dataset.health = ok ? "healthy" : "unhealthy";
      cells.forEach((c, j) => {
        const td = tr.insertCell();
        td.textContent = String(c);
        if (j === 2) td.className = `role-${role}`;
        if (j === 3) td.className = ok ? "healthy" : "unhealthy";
      });
    });
    refreshAlarms();
  }

  async function refreshAlarms() {
    const el = $("alarms");
    try {
      const res = await call("/v3/maintenance/alarm", { action: "GET" });
      const alarms = res.alarms ?? [];
      el.className = alarms.length === 0 ? "muted" : "unhealthy";
      el.textContent = alarms.length === 0
        ? "No active alarms."
        : alarms.map((a) => `${a.alarm ?? "NONE"} on member ${hexId(pick(a, "memberID", "member_id"))}`).join(
          "; ",
        );
    } catch (err) {
      el.className = "muted";
      el.textContent = `Alarms unavailable: ${err.message}`;
    }
  }

  // ---- metrics and the chart

  const { parseMetrics, interval } = globalThis.etcdUiRates;

  const series = { t: [], writes: [], reads: [], mean: [], p99: [] };
  let lastScrape;
  let charts;

  async function scrape() {
    if ($("main").hidden) return;
    let cur;
    try {
      const res = await withTimeout(STATUS_TIMEOUT_MS, (signal) => fetch(`${API}/metrics`, { signal }));
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      cur = parseMetrics(await res.text(), performance.now());
    } catch (err) {
      $("chart-status").textContent = `/metrics unavailable: ${err.message}`;
      return;
    }
    const prev = lastScrape;
    lastScrape = cur;
    if (prev === undefined) return;
    const r = interval(prev, cur);
    if (r === null) return;
    series.t.push(Date.now() / 1000);
    series.writes.push(r.writesPerSecond);
    series.reads.push(r.readsPerSecond);
    series.mean.push(r.fsyncMeanMs);
    series.p99.push(r.fsyncP99Ms);
    for (const k of Object.keys(series)) if (series[k].length > CHART_POINTS) series[k].shift();
    const fmt = (v, unit) => (v === null ? "—" : `${v.toFixed(v < 10 ? 2 : 0)} ${unit}`);
    const status = $("chart-status");
    status.dataset.samples = String(series.t.length);
    status.textContent = `${series.t.length} samples; last ${r.seconds.toFixed(1)} s: writes ${
      fmt(r.writesPerSecond, "/s")
    }, reads ${fmt(r.readsPerSecond, "/s")}, WAL fsync mean ${fmt(r.fsyncMeanMs, "ms")}, p99 ${
      fmt(r.fsyncP99Ms, "ms")
    }`;
    drawCharts();
  }

  function drawCharts() {
    if (typeof uPlot === "undefined") return;
    const width = Math.max(320, Math.min(640, ($("chart-section").clientWidth - 48) / 2));
    if (charts === undefined) {
      const opts = (title, names, unit, colors) => ({
        title,
        width,
        height: 220,
        series: [{}, ...names.map((label, i) => ({ label, stroke: colors[i], width: 2, spanGaps: false }))],
        axes: [{}, { label: unit, size: 60 }],
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      });
      charts = {
        ops: new uPlot(opts("Requests", ["writes/s", "reads/s"], "per second", ["#2f6fdb", "#1e8e3e"]), [
          [],
          [],
          [],
        ], $("chart-ops")),
        fsync: new uPlot(opts("WAL fsync", ["mean ms", "p99 ms"], "ms", ["#8e44ad", "#c5221f"]), [
          [],
          [],
          [],
        ], $("chart-fsync")),
      };
    }
    charts.ops.setData([series.t, series.writes, series.reads]);
    charts.fsync.setData([series.t, series.mean, series.p99]);
  }

  // ---- the key browser

  /**
   * Whether the signed-in user may run `op` (a txn request op) without running it: a txn whose compare
   * never holds (a version below 0) carries `op` in its success branch; etcd checks the permissions of both
   * branches before it evaluates anything, so it is refused without permission and writes nothing with it.
   */
  async function mayWrite(op) {
    if (!authEnabled || !session) return false;
    const key = pick(op.request_put, "key") ?? pick(op.request_delete_range, "key");
    try {
      await call("/v3/kv/txn", {
        compare: [{ result: "LESS", target: "VERSION", key, version: "0" }],
        success: [op],
      });
      return true;
    } catch {
      return false;
    }
  }

  /** Counts browses, so that only the latest one started shows its keys. */
  let browses = 0;

  async function browse() {
    const generation = ++browses;
    const prefix = $("prefix").value;
    const range = prefixRange(prefix);
    const body = $("keys").tBodies[0];
    let res;
    try {
      res = await call("/v3/kv/range", { ...range, limit: KEY_LIMIT });
    } catch (err) {
      if (generation !== browses) return;
      $("keys-count").textContent = `error: ${err.message}`;
      $("put-form").hidden = true;
      $("readonly-note").textContent = "";
      body.textContent = "";
      return;
    }
    const kvs = res.kvs ?? [];
    // writing the whole prefix range allows every put and delete under it; else ask key by key
    const prefixWritable = await mayWrite({ request_delete_range: { ...range } });
    const writable = prefixWritable ? kvs.map(() => true) : await mapLimited(
      kvs,
      8,
      (kv) => (authEnabled && session ? mayWrite({ request_delete_range: { key: kv.key } }) : false),
    );
    if (generation !== browses) return;
    $("keys-count").textContent = `${kvs.length} of ${num(res.count)} keys at revision ${
      num(pick(res.header, "revision"))
    }`;
    body.textContent = "";
    kvs.forEach((kv, i) => {
      const tr = body.insertRow();
      const key = unb64(kv.key);
      const value = unb64(kv.value);
      const lease = pick(kv, "lease");
      const cells = [
        key,
        value.length > VALUE_SHOWN ? value.slice(0, VALUE_SHOWN) + "…" : value,
        num(kv.version),
        num(pick(kv, "create_revision", "createRevision")),
        num(pick(kv, "mod_revision", "modRevision")),
        lease && lease !== "0" ? hexId(lease, 16) : "—",
      ];
      cells.forEach((c, j) => {
        const td = tr.insertCell();
        td.textContent = String(c);
        if (j === 1) td.className = "value";
        if (j === 0) td.className = "key";
      });
      const actions = tr.insertCell();
      if (writable[i]) {
        const del = document.createElement("button");
        del.textContent = "Delete";
        del.className = "delete";
        del.addEventListener("click", async () => {
          try {
            await call("/v3/kv/deleterange", { key: kv.key });
            browse();
          } catch (err) {
            $("put-status").textContent = `delete failed: ${err.message}`;
          }
        });
        actions.append(del);
      }
    });
    $("put-form").hidden = !prefixWritable;
    if (prefixWritable && $("put-key").value === "") $("put-key").value = prefix;
    $("readonly-note").textContent = !authEnabled
      ? "Read-only: authentication is disabled, so the dashboard does not write."
      : prefixWritable
      ? ""
      : writable.some((w) => w)
      ? `${session.name} may delete only the keys with a button, and may not put under "${prefix}".`
      : `Read-only: ${session.name} may not write under "${prefix}".`;
  }

  async function mapLimited(items, limit, fn) {
    const out = new Array(items.length);
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    return out;
  }

  $("browse-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    browse();
  });

  $("put-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const status = $("put-status");
    try {
      const res = await call("/v3/kv/put", {
        key: b64($("put-key").value),
        value: b64($("put-value").value),
      });
      status.textContent = `put at revision ${num(pick(res.header, "revision"))}`;
      browse();
    } catch (err) {
      status.textContent = `put failed: ${err.message}`;
    }
  });

  // ---- the watch view

  let watching;

  function stopWatch() {
    if (watching) watching.abort();
    watching = undefined;
    $("watch-start").disabled = false;
    $("watch-stop").disabled = true;
  }

  function addEvent(ev) {
    const body = $("events").tBodies[0];
    const tr = body.insertRow(0);
    const kv = ev.kv ?? {};
    const value = unb64(kv.value);
    for (
      const c of [
        num(pick(kv, "mod_revision", "modRevision")),
        ev.type ?? "PUT",
        unb64(kv.key),
        value.length > VALUE_SHOWN ? value.slice(0, VALUE_SHOWN) + "…" : value,
      ]
    ) tr.insertCell().textContent = String(c);
    while (body.rows.length > MAX_EVENTS) body.deleteRow(body.rows.length - 1);
  }

  /** Watches `prefix` from `fromRev` (0: now), reading the gateway's newline-delimited stream; reconnects. */
  async function watch(prefix, fromRev, ctl) {
    const status = $("watch-status");
    let next = fromRev;
    while (!ctl.signal.aborted) {
      try {
        const headers = { "Content-Type": "application/json" };
        if (session) headers["Authorization"] = session.token;
        const create = { ...prefixRange(prefix) };
        if (next > 0) create.start_revision = String(next);
        const res = await fetch(`${API}/v3/watch`, {
          method: "POST",
          headers,
          body: JSON.stringify({ create_request: create }),
          signal: ctl.signal,
        });
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let nl;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line === "") continue;
            const msg = JSON.parse(line);
            if (msg.error) throw new Error(msg.error.message ?? JSON.stringify(msg.error));
            const r = msg.result ?? {};
            if (r.created) {
              status.textContent = `watching "${prefix}" (revision ${num(pick(r.header, "revision"))})`;
              status.dataset.state = "watching";
            }
            if (r.canceled) throw new Error(pick(r, "cancel_reason", "cancelReason") || "watch canceled");
            for (const ev of r.events ?? []) {
              addEvent(ev);
              next = num(pick(ev.kv, "mod_revision", "modRevision")) + 1;
            }
          }
        }
        throw new Error("stream ended");
      } catch (err) {
        if (ctl.signal.aborted) break;
        status.textContent = `watch interrupted (${err.message}); reconnecting…`;
        status.dataset.state = "retrying";
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    status.textContent = "stopped";
    status.dataset.state = "stopped";
  }

  $("watch-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    stopWatch();
    $("events").tBodies[0].textContent = "";
    const ctl = new AbortController();
    watching = ctl;
    $("watch-start").disabled = true;
    $("watch-stop").disabled = false;
    watch($("watch-prefix").value, 0, ctl);
  });
  $("watch-stop").addEventListener("click", stopWatch);

  start();
})();
