// The dashboard (GET /dashboard, embedded in mau-collector) in headless Chromium against the
// real collector: sign in with the admin token (sessionStorage, no cookies), the months
// view (subjects, billed, gap), the month's figures and chart, the billed count saved in
// the collector (kept across a reload), search, CSV download, sign-out; the savings table
// (idle cost first, sortable by its headings). Writes
// target/dashboard.png and target/dashboard-months.png.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { buildCollector, ROOT, startCollector, utcMonth } from "../support/collector.mjs";
import { startReceiver } from "../support/receiver.mjs";
import { launchBrowser } from "../twilio/browser.mjs";

const ADMIN = "dashboard-admin-token";
const INGEST = "dashboard-ingest-token";
const AUTH = "dashboard-twilio-auth-token";
const SCREENSHOT = path.join(ROOT, "target/dashboard.png");
const MONTHS_SHOT = path.join(ROOT, "target/dashboard-months.png");
/** A past month with only a billed count (set over HTTP): listed, its gap the whole count. */
const PAST = "2025-03";
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mau-dashboard-"));
let collector, browser, receiver;

/** Posts a Conversations webhook signed as Twilio signs it (HMAC-SHA1 over URL + sorted params). */
async function webhook(params) {
  const url = `${collector.url}/v1/twilio/conversations`;
  const data = Object.keys(params).sort().reduce((acc, k) => acc + k + params[k], url);
  const sig = crypto.createHmac("sha1", AUTH).update(data).digest("base64");
  const r = await fetch(url, { method: "POST", headers: { "x-twilio-signature": sig, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(params) });
  assert.equal(r.status, 200, await r.text());
}

async function seed() {
  const now = new Date().toISOString();
  const beacon = (identity, i) => ({
    v: 1, kind: "connected", identity, event_id: `dash-${i}`, month: utcMonth(), occurred_at: now, sent_at: now,
    attempt: 1, dedupe: "month", sdk: { name: "mau-beacon", version: "0.1.0" },
  });
  const ids = ["alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com", "erin@example.com"];
  // Where each client was made (erin's SDK sends no context): the savings table's rows.
  const made = [["inbox", "app"], ["support-widget", "click"], ["support-widget", "click"], ["support-widget", "visible"], [null, null]];
  const beacons = ids.map((id, i) => ({ ...beacon(id, i), ...(made[i][0] ? { context: made[i][0], reason: made[i][1] } : {}) }));
  let r = await fetch(`${collector.url}/v1/beacons`, { method: "POST", body: JSON.stringify(beacons) });
  assert.equal(r.status, 200, await r.text());
  const tokens = ["alice@example.com", "bob@example.com", "frank@example.com", "grace@example.com"].map((identity) => ({ identity, issued_at: now }));
  r = await fetch(`${collector.url}/v1/tokens`, { method: "POST", headers: { authorization: `Bearer ${INGEST}` }, body: JSON.stringify(tokens) });
  assert.equal(r.status, 200, await r.text());
  await webhook({ EventType: "onMessageAdded", Author: "+14155550100", Source: "API" });
  await webhook({ EventType: "onParticipantAdded", "MessagingBinding.Type": "WHATSAPP", "MessagingBinding.Address": "whatsapp:+14155550101" });
  await webhook({ EventType: "onMessageAdded", ClientIdentity: "alice@example.com", Author: "alice@example.com" });
  r = await fetch(`${collector.url}/v1/months/${PAST}/billed`, { method: "PUT", headers: { authorization: `Bearer ${ADMIN}` }, body: JSON.stringify({ count: 4 }) });
  assert.equal(r.status, 200, await r.text());
}

/** The months view's rows: [month, subjects, billed, gap]. */
const monthRows = (page) => page.$$eval("#months-rows tr", (rows) => rows.map((r) => [...r.cells].slice(0, 4).map((c) => c.textContent)));

before(async () => {
  buildCollector();
  // A budget (with somewhere to send its alerts) puts the budget line on the chart.
  receiver = await startReceiver();
  collector = await startCollector({
    db: path.join(tmp, "c.db"),
    adminToken: ADMIN,
    env: {
      MAU_COLLECTOR_INGEST_TOKEN: INGEST,
      TWILIO_AUTH_TOKEN: AUTH,
      MAU_COLLECTOR_BUDGET_MAU: "100",
      MAU_COLLECTOR_PRICE_PER_MAU: "0.05",
      MAU_COLLECTOR_FREE_MAU: "2",
      MAU_COLLECTOR_ALERT_URL: `${receiver.url}/b/alerts`,
    },
  });
  await seed();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await collector?.stop();
  await receiver?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("the dashboard: sign in, months, figures, chart, billed kept, search, CSV, sign out; no cookies", async () => {
  const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 1300 } });
  try {
    const page = await ctx.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    // The wrong token below makes an expected 401, the negative count a 400; any other
    // failed load is an error.
    page.on("console", (m) => m.type() === "error" && !/status of 40[01]/.test(m.text()) && errors.push(m.text()));
    const resp = await page.goto(`${collector.url}/dashboard`);
    assert.equal(resp.status(), 200);
    assert.match(resp.headers()["content-security-policy"], /script-src 'sha256-/);
    assert.equal(resp.headers()["set-cookie"], undefined);

    // A wrong token is refused and not kept.
    await page.fill("#token", "wrong");
    await page.click("#signin button");
    await page.waitForFunction(() => document.querySelector("#error").textContent.includes("admin token"));
    assert.equal(await page.isVisible("#signin"), true);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);

    await page.fill("#token", ADMIN);
    await page.click("#signin button");
    // First the months view: every month's subjects beside its billed count and the gap.
    await page.waitForSelector("#months-rows tr");
    assert.equal(await page.isVisible("#app"), false);
    assert.deepEqual(await monthRows(page), [
      [utcMonth(), "7", "–", "–"],
      [PAST, "0", "4", "+4 billed, not seen"],
    ]);
    // A month opens the month view, with nothing billed saved yet.
    await page.click(`#months-rows a[href="#${utcMonth()}"]`);
    await page.waitForSelector("#seen b");
    assert.equal(await page.isVisible("#months-view"), false);
    assert.equal(await page.inputValue("#billed-count"), "");
    assert.equal(await page.textContent("#billed b"), "–");
    // The billed field saves to the collector.
    await page.fill("#billed-count", "9");
    await page.click("#bill button[type=submit]");
    await page.waitForFunction(() => document.querySelector("#billed b")?.textContent === "9");
    const stored = (await collector.read("/v1/months")).find((m) => m.month === utcMonth());
    assert.deepEqual([stored.billed.count, stored.billed.from, stored.unexplained], [9, "typed", 2]);
    assert.match(await page.textContent("#billed-note"), /saved: typed, \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);
    const card = (id) => page.textContent(`#${id} b`);
    assert.equal(await card("seen"), "7");
    assert.equal(await card("unexplained"), "2");
    assert.equal(await card("kinds"), "5 / 2");
    assert.equal(await card("never-count"), "2");
    assert.deepEqual(await page.$$eval("#never li", (l) => l.map((e) => e.textContent)), ["frank@example.com", "grace@example.com"]);
    assert.equal((await page.$$eval("#notoken li", (l) => l.map((e) => e.textContent))).length, 3);
    // The chart: one line per source group and one for all sources, ending at the totals.
    const series = await page.$$eval("#chart path", (p) => p.map((e) => e.dataset.series).sort());
    assert.deepEqual(series, ["sdk_connect", "total", "webhook"]);
    assert.match(await page.textContent("#chart .legend"), /all sources: 7.*sdk_connect: 5.*webhook: 3.*billed: 9/);
    // Past today: the forecast with its band, and the budget line, from the report's
    // `forecast` and `budget`.
    const { forecast: f, budget } = await collector.read(`/v1/months/${utcMonth()}/report`);
    assert.deepEqual(budget, { mau: 100, usd: null });
    assert.ok(f.low <= f.projected_subjects && f.projected_subjects <= f.high && f.low >= 7, JSON.stringify(f));
    const drawn = await page.$$eval("#chart svg [data-series]:not(path)", (e) => e.map((x) => x.dataset.series).sort());
    assert.deepEqual(drawn, ["budget", "forecast", "forecast-band"]);
    assert.equal(
      await page.textContent("#forecast-legend"),
      `forecast: ${f.projected_subjects} (${f.low}–${f.high}), bill ${f.projected_cost.toFixed(2)}, ${f.method}`,
    );
    assert.equal(await page.textContent("#budget-legend"), "budget: 100 MAU");
    // The budget line sits where the axis puts 100, above the month's 7 so far.
    const [budgetY, forecastStartY] = await page.$eval("#chart svg", (s) => [
      Number(s.querySelector("[data-series=budget]").getAttribute("y1")),
      Number(s.querySelector("[data-series=forecast]").getAttribute("y1")),
    ]);
    assert.ok(budgetY < forecastStartY, `${budgetY} ${forecastStartY}`);

    assert.equal(await page.$$eval("#rows tr", (r) => r.length), 7);
    await page.fill("#search", "whatsapp");
    assert.equal(await page.$$eval("#rows tr", (r) => r.length), 1);
    assert.match(await page.textContent("#rows tr"), /whatsapp:\+14155550101\s*address\s*webhook:onParticipantAdded/);
    await page.fill("#search", "");

    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#csv")]);
    const csv = fs.readFileSync(await download.path(), "utf8");
    assert.equal(download.suggestedFilename(), `mau-${utcMonth()}.csv`);
    assert.equal(csv.split("\n")[0], "identity,subject_kind,sources,first_seen,last_seen,connects");
    assert.equal(csv.trim().split("\n").length, 8);
    assert.match(csv, /alice@example.com,identity,sdk_connect;webhook:onMessageAdded,/);

    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // The token survives a reload in this tab (sessionStorage), never as a cookie; the
    // month stays open and its billed count comes back from the collector.
    await page.reload();
    await page.waitForFunction(() => document.querySelector("#billed b")?.textContent === "9");
    assert.equal(await page.inputValue("#billed-count"), "9");
    assert.equal(await page.textContent("#unexplained b"), "2");
    assert.deepEqual(await ctx.cookies(), []);

    // Back to the months: the saved count and its gap.
    await page.click("#all-months");
    await page.waitForFunction(() => document.querySelector("#months-rows td:nth-child(3)")?.textContent === "9");
    assert.deepEqual(await monthRows(page), [
      [utcMonth(), "7", "9", "+2 billed, not seen"],
      [PAST, "0", "4", "+4 billed, not seen"],
    ]);
    await page.screenshot({ path: MONTHS_SHOT, fullPage: true });

    // A bad count is refused with the collector's message; an empty field forgets the count.
    await page.click(`#months-rows a[href="#${PAST}"]`);
    await page.waitForFunction(() => document.querySelector("#billed b")?.textContent === "4");
    assert.equal(await page.inputValue("#month"), PAST);
    // (dispatched, as the field's own check would stop a click: the collector must refuse it too)
    await page.$eval("#billed-count", (i) => { i.value = "-3"; });
    await page.$eval("#bill", (f) => f.dispatchEvent(new Event("submit", { cancelable: true })));
    await page.waitForFunction(() => document.querySelector("#error").textContent.includes("Could not save"));
    assert.match(await page.textContent("#error"), /whole number/);
    assert.equal((await collector.read("/v1/months")).find((m) => m.month === PAST).billed.count, 4);
    await page.fill("#billed-count", "");
    await page.click("#bill button[type=submit]");
    await page.waitForFunction(() => document.querySelector("#billed b")?.textContent === "–");
    assert.equal((await collector.read("/v1/months")).some((m) => m.month === PAST), false);
    await page.reload();
    await page.waitForSelector("#seen b");
    assert.equal(await page.inputValue("#billed-count"), "");
    await page.click("#signout");
    assert.equal(await page.isVisible("#signin"), true);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

/** The savings table's rows as shown: [context, reason, subjects, engaged, idle, idle cost]. */
const savingsRows = (page) => page.$$eval("#savings-rows tr", (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));

test("the savings table: idle cost first, sortable by clicking a heading, the month's saving", async () => {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 1300 } });
  try {
    const page = await ctx.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${collector.url}/dashboard#${utcMonth()}`);
    await page.fill("#token", ADMIN);
    await page.click("#signin button");
    await page.waitForSelector("#savings-rows tr");
    // alice (inbox) is engaged through a webhook; the others only connected.
    const widgetClick = ["support-widget", "click", "2", "0", "2", "0.10"];
    const widgetVisible = ["support-widget", "visible", "1", "0", "1", "0.05"];
    const none = ["(no context)", "–", "1", "0", "1", "0.05"];
    const inbox = ["inbox", "app", "1", "1", "0", "0.00"];
    const shown = await savingsRows(page);
    assert.deepEqual(shown[0], widgetClick, "largest idle cost first");
    assert.deepEqual(shown.at(-1), inbox);
    assert.deepEqual(new Set(shown.map(String)), new Set([widgetClick, widgetVisible, none, inbox].map(String)));
    assert.equal(await page.getAttribute("#savings-table th[data-key=idle_cost]", "aria-sort"), "descending");
    // 7 MAU, 2 free, 4 idle at 0.05: 0.25 billed, 0.05 without the idle ones.
    assert.match(await page.textContent("#savings-note"), /4 idle: the bill would be 0\.20 lower .*0\.05 per MAU, first 2 MAU free/);
    // Idle, largest first; again, smallest first.
    await page.click("#savings-table th[data-key=idle]");
    assert.deepEqual((await savingsRows(page))[0], widgetClick);
    await page.click("#savings-table th[data-key=idle]");
    assert.equal(await page.getAttribute("#savings-table th[data-key=idle]", "aria-sort"), "ascending");
    assert.deepEqual((await savingsRows(page))[0], inbox);
    // Context A to Z, no context last; then Z to A.
    await page.click("#savings-table th[data-key=context]");
    assert.deepEqual((await savingsRows(page)).map((r) => r[0]), ["inbox", "support-widget", "support-widget", "(no context)"]);
    await page.click("#savings-table th[data-key=context]");
    assert.deepEqual((await savingsRows(page)).map((r) => r[0]).slice(0, 3), ["support-widget", "support-widget", "inbox"]);
    // Engaged, most first.
    await page.click("#savings-table th[data-key=engaged]");
    assert.deepEqual((await savingsRows(page))[0], inbox);
    await page.locator("#savings").screenshot({ path: path.join(ROOT, "target/dashboard-savings.png") });
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});
