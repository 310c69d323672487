// A simulated month through the real SDK and the real collector, on SQLite and on
// PostgreSQL: the savings table (which context and trigger made each MAU, how many of those
// did something Twilio's webhooks saw) must equal the simulation's ground truth.
//
// Headless Chromium runs the script-tag build with the Conversations client test double
// (tests/wasm/double.js). Identities get their client the ways an app makes them: eagerly
// (`watch()` of a client the app made, with or without a context) or lazily through
// `LazyClient` (a real mouse click, keyboard focus, a keydown, the widget scrolled into view,
// `get()`), each under a context. Some identities connect again later in the month from
// another context, on the same device (deduped: no beacon) or on a second one (a second
// beacon, whose context must not move the identity out of its first connect's row). A
// subset is also active through signed Conversations webhooks, and a few are seen only by
// webhooks (not in the table). The month is compressed into real time: the collector dates
// a beacon by when it arrives (corrected for the device clock), so "later" is later.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { buildCollector, ROOT, startCollector, utcMonth } from "../support/collector.mjs";
import { serveStatic } from "../support/serve.mjs";
import { launchBrowser } from "../twilio/browser.mjs";

const AUTH = "savings-twilio-auth-token";
const ADMIN = "savings-admin-token-0123";
/** The team's price per MAU, through the env twins of `--price-per-mau` / `--free-mau`. */
const PRICE = 0.05;
const PRICE_ENV = { MAU_COLLECTOR_PRICE_PER_MAU: String(PRICE), MAU_COLLECTOR_FREE_MAU: "0" };

/** Where and how a client is made: an eager one the app made, or a lazy one's trigger. */
const KINDS = [
  { context: "inbox", how: "app" },
  { context: null, how: "app" },
  { context: "support-widget", how: "click" },
  { context: "support-widget", how: "key" },
  { context: "search", how: "focus" },
  { context: "help/panel", how: "visible" },
  { context: "notifications", how: "explicit" },
];
/** What the beacon's `reason` is for each way. */
const REASON = { app: "app", click: "click", key: "key", focus: "focus", visible: "visible", explicit: "explicit" };
const IDENTITIES = 38;
const WEBHOOK_ONLY = 3;

/** The simulated month: for each identity its first connect, later connects and activity. */
function plan(run) {
  const people = [];
  for (let i = 0; i < IDENTITIES; i++) {
    const kind = KINDS[i % KINDS.length];
    people.push({
      identity: `sim-${run}-${String(i).padStart(2, "0")}@example.com`,
      first: kind,
      // About 40 % did something a webhook saw, unevenly across the rows.
      engaged: (i * 3 + 1) % 5 < 2,
      // Later in the month, from another context: the same device (deduped, no beacon),
      // or a second device (a second beacon).
      sameDeviceLater: i % 5 === 2 ? KINDS[(i + 3) % KINDS.length] : null,
      otherDeviceLater: i % 4 === 1 ? KINDS[(i + 2) % KINDS.length] : null,
    });
  }
  const webhookOnly = Array.from({ length: WEBHOOK_ONLY }, (_, i) => `sim-${run}-hook-${i}@example.com`);
  return { people, webhookOnly };
}

/** The ground truth: per (context, reason) of the first connect, subjects and engaged. */
function truth({ people }) {
  const rows = new Map();
  for (const p of people) {
    const key = rowKey(p.first.context, REASON[p.first.how]);
    const row = rows.get(key) ?? { subjects: 0, engaged: 0 };
    row.subjects += 1;
    row.engaged += p.engaged ? 1 : 0;
    rows.set(key, row);
  }
  return rows;
}

const rowKey = (context, reason) => `${context ?? "(none)"} | ${reason ?? "(none)"}`;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mau-savings-"));
let browser, pages, pgDir, pgUrl;

before(async () => {
  buildCollector();
  fs.writeFileSync(path.join(tmp, "index.html"), "<!doctype html><title>app</title><body style='margin:0'></body>");
  pages = await serveStatic({ "/": tmp, "/mau": path.join(ROOT, "dist"), "/double": path.join(ROOT, "tests/wasm") });
  browser = await launchBrowser();
  pgDir = fs.mkdtempSync(path.join(os.tmpdir(), "mau-savings-pg-"));
  pgUrl = execFileSync("bash", [path.join(ROOT, "scripts/pg.sh"), "start", pgDir], { encoding: "utf8" }).trim();
});

after(async () => {
  await browser?.close();
  await pages?.close();
  if (pgDir) execFileSync("bash", [path.join(ROOT, "scripts/pg.sh"), "stop", pgDir]);
  fs.rmSync(tmp, { recursive: true, force: true });
  if (pgDir) fs.rmSync(pgDir, { recursive: true, force: true });
});

/** A device: a fresh browser profile with the SDK, the client double and one tracker. */
async function device(collectorUrl) {
  const context = await browser.newContext({ viewport: { width: 800, height: 600 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // What the device sends, in order, as the collector receives it.
  const sent = [];
  page.on("request", (r) => {
    if (r.method() === "POST" && r.url() === collectorUrl) sent.push(...[JSON.parse(r.postData())].flat());
  });
  await page.goto(`${pages.url}/`);
  await page.addScriptTag({ url: "/mau/mau-beacon.global.js" });
  await page.addScriptTag({
    type: "module",
    content: 'import { FakeClient, makeToken } from "/double/double.js"; Object.assign(window, { FakeClient, makeToken });',
  });
  await page.waitForFunction(() => window.FakeClient);
  await page.evaluate(async (url) => {
    await MauBeacon.ready;
    window.sdkErrors = [];
    window.tracker = new MauBeacon.MauTracker({ collectorUrl: url, retry: { baseMs: 100, maxMs: 1000 }, onError: (e) => window.sdkErrors.push(e.message) });
  }, collectorUrl);
  return { context, page, errors, sent };
}

/** Makes `identity`'s client on `page` the way `kind` says, and waits until it connected. */
async function connect(page, identity, kind, n) {
  const id = `t${n}`;
  await page.evaluate(({ identity, kind, id }) => {
    if (kind.how === "app") {
      const client = new FakeClient(identity);
      const options = kind.context ? { identity, context: kind.context } : { identity };
      tracker.watch(client, options);
      client.connect();
      window.current = { state: "ready" };
      return;
    }
    const lazy = new MauBeacon.LazyClient({
      tracker,
      ...(kind.context ? { context: kind.context } : {}),
      getToken: () => makeToken(identity),
      createClient: () => {
        const c = new FakeClient(identity);
        setTimeout(() => c.connect(), 0);
        return c;
      },
      onError: (e) => window.sdkErrors.push(e.message),
    });
    window.current = lazy;
    const el = document.createElement(kind.how === "focus" ? "input" : kind.how === "visible" ? "div" : "button");
    el.id = id;
    el.textContent = "chat";
    // The visible one starts far below the fold; the others sit at the top, in view.
    el.style.cssText = kind.how === "visible"
      ? "position:absolute;top:4000px;left:0;width:40px;height:40px"
      : "position:fixed;top:10px;left:10px;width:80px;height:30px";
    document.body.append(el);
    if (kind.how === "visible") lazy.connectWhenVisible(el);
    else if (kind.how !== "explicit") lazy.connectOn(el);
  }, { identity, kind, id });
  switch (kind.how) {
    case "click": await page.click(`#${id}`); break; // real mouse: pointerdown, focusin, click
    case "focus": await page.focus(`#${id}`); break; // keyboard-like focus: focusin only
    case "key": await page.dispatchEvent(`#${id}`, "keydown", { key: "a" }); break;
    case "visible": await page.evaluate((id) => document.getElementById(id).scrollIntoView(), id); break;
    case "explicit": await page.evaluate(() => { window.current.get(); }); break;
  }
  await page.waitForFunction(() => window.current.state === "ready", null, { timeout: 5_000 });
  await page.evaluate((id) => { document.getElementById(id)?.remove(); window.scrollTo(0, 0); }, id);
}

/** Waits until the device's tracker delivered `n` beacons and holds none. */
async function delivered(page, n) {
  const end = Date.now() + 20_000;
  for (;;) {
    const s = await page.evaluate(() => tracker.flush());
    if (s.delivered === n && s.pending === 0) return;
    if (Date.now() > end) throw new Error(`delivered ${s.delivered} of ${n}, ${s.pending} pending: ${s.lastError ?? ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Posts a Conversations webhook signed as Twilio signs it (HMAC-SHA1 over URL + sorted params). */
async function webhook(collector, identity) {
  const url = `${collector.url}/v1/twilio/conversations`;
  const params = { EventType: "onMessageAdded", ClientIdentity: identity, Author: identity, ConversationSid: "CH00000000000000000000000000000000" };
  const data = Object.keys(params).sort().reduce((acc, k) => acc + k + params[k], url);
  const sig = crypto.createHmac("sha1", AUTH).update(data).digest("base64");
  const r = await fetch(url, { method: "POST", headers: { "x-twilio-signature": sig, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(params) });
  assert.equal(r.status, 200, await r.text());
}

for (const backend of ["sqlite", "postgres"]) {
  test(`a simulated month (${backend}): the savings table equals the simulation's ground truth`, async (t) => {
    const started = Date.now();
    const run = `${backend}-${Date.now().toString(36)}`;
    const sim = plan(run);
    for (const [key, row] of truth(sim)) assert.ok(row.engaged > 0 && row.engaged < row.subjects, `the plan has engaged and idle subjects in ${key}`);
    const db = backend === "sqlite" ? path.join(tmp, `${run}.db`) : pgUrl;
    const env = { TWILIO_AUTH_TOKEN: AUTH, ...PRICE_ENV };
    const collector = await startCollector({ db, adminToken: ADMIN, env });
    const devices = [];
    try {
      const collectorUrl = `${collector.url}/v1/beacons`;
      const a = await device(collectorUrl);
      const b = await device(collectorUrl);
      devices.push(a, b);
      // Activity before any connect, for half the engaged ones, and by webhook-only subjects.
      const engaged = sim.people.filter((p) => p.engaged);
      for (const p of engaged.slice(0, Math.ceil(engaged.length / 2))) await webhook(collector, p.identity);
      for (const id of sim.webhookOnly) await webhook(collector, id);

      // Early in the month: every identity's first connect, on device A.
      let n = 0;
      for (const p of sim.people) await connect(a.page, p.identity, p.first, n++);
      await delivered(a.page, sim.people.length);
      // Later: the same device from another context (no beacon: counted this month).
      const sameDevice = sim.people.filter((p) => p.sameDeviceLater);
      for (const p of sameDevice) await connect(a.page, p.identity, p.sameDeviceLater, n++);
      const statsA = await a.page.evaluate(() => tracker.stats());
      assert.equal(statsA.deduped, sameDevice.length, "a later connect on the same device sends nothing");
      // Later still: a second device, from another context (a second beacon).
      const otherDevice = sim.people.filter((p) => p.otherDeviceLater);
      for (const p of otherDevice) await connect(b.page, p.identity, p.otherDeviceLater, n++);
      await delivered(b.page, otherDevice.length);
      // The rest of the activity, after the connects.
      for (const p of engaged.slice(Math.ceil(engaged.length / 2))) await webhook(collector, p.identity);
      for (const d of devices) {
        assert.deepEqual(d.errors, [], "no page error");
        assert.deepEqual(await d.page.evaluate(() => window.sdkErrors), [], "nothing reported to onError");
      }

      // The SDK labelled every beacon: the first one of each identity, in the order the
      // collector got them, gives the ground truth's table.
      const first = new Map();
      for (const beacon of [...a.sent, ...b.sent]) if (!first.has(beacon.identity)) first.set(beacon.identity, beacon);
      const fromBeacons = new Map();
      for (const beacon of first.values()) {
        const p = sim.people.find((p) => p.identity === beacon.identity);
        const key = rowKey(beacon.context, beacon.reason);
        const row = fromBeacons.get(key) ?? { subjects: 0, engaged: 0 };
        row.subjects += 1;
        row.engaged += p.engaged ? 1 : 0;
        fromBeacons.set(key, row);
      }
      assert.deepEqual(fromBeacons, truth(sim), "the beacons' context and reason");
      assert.equal(b.sent.length, otherDevice.length);
      for (const beacon of b.sent) {
        const p = sim.people.find((p) => p.identity === beacon.identity);
        assert.deepEqual([beacon.context ?? null, beacon.reason], [p.otherDeviceLater.context, REASON[p.otherDeviceLater.how]], "the second device's own context");
      }

      // Whatever the collector's version, it took every beacon (context and reason are
      // additive) and counts each identity once, with its connects.
      const month = utcMonth();
      const listed = await collector.read(`/v1/months/${month}/identities?format=json`);
      for (const p of sim.people) {
        const row = listed.find((r) => r.identity === p.identity);
        assert.ok(row, `${p.identity} listed`);
        assert.equal(row.connects, p.otherDeviceLater ? 2 : 1, p.identity);
      }

      const report = await collector.read(`/v1/months/${month}/report`);
      assert.ok(report.savings, "the report has a savings table");
      const expected = truth(sim);
      const check = (savings, where) => {
        assert.equal(savings.price_per_mau, PRICE, `${where}: price_per_mau (collector started with MAU_COLLECTOR_PRICE_PER_MAU=${PRICE})`);
        assert.equal(savings.free_mau, 0, `${where}: free_mau`);
        const got = new Map(savings.by_context.map((r) => [rowKey(r.context, r.reason), r]));
        assert.deepEqual([...got.keys()].sort(), [...expected.keys()].sort(), `${where}: one row per (context, reason) of a first connect, none for webhook-only subjects`);
        for (const [key, want] of expected) {
          const row = got.get(key);
          assert.deepEqual(
            { subjects: row.subjects, engaged: row.engaged, idle: row.idle },
            { subjects: want.subjects, engaged: want.engaged, idle: want.subjects - want.engaged },
            `${where}: ${key}`,
          );
          assert.ok(Math.abs(row.idle_cost - (want.subjects - want.engaged) * PRICE) < 1e-9, `${where}: ${key} idle_cost ${row.idle_cost}`);
        }
      };
      check(report.savings, "GET /v1/months/{M}/report");
      const cli = execFileSync(buildCollector(), ["--db", db, "report", "--month", month, "--format", "json"], {
        encoding: "utf8",
        env: { ...process.env, ...env, MAU_COLLECTOR_LOG: "warn" },
      });
      check(JSON.parse(cli).savings, "mau-collector report --format json");
      t.diagnostic(`${sim.people.length} identities, ${otherDevice.length} on a second device, ${engaged.length} engaged, ${sim.webhookOnly.length} webhook-only; ${Date.now() - started} ms`);
    } finally {
      for (const d of devices) await d.context.close();
      await collector.stop();
    }
  });
}
