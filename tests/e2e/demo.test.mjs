// The live demo end to end in headless Chromium: the real Conversations client (3.x) against
// the demo's stand-in for Twilio, mau-beacon (ES module and script tag), and the real
// mau-collector serving the page and storing the beacons.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { startTwilioSide } from "../../js-demo/twilio-side.mjs";
import { buildCollector, ROOT, startCollector, utcMonth } from "../support/collector.mjs";
import { serveStatic } from "../support/serve.mjs";
import { launchBrowser } from "../twilio/browser.mjs";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mau-demo-"));
let twilio, browser;

function site(name, config) {
  const dir = path.join(tmp, name);
  execFileSync("bash", [path.join(ROOT, "scripts/demo-site.sh"), dir], { cwd: ROOT });
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ ...twilio.demo, ...config }));
  return dir;
}

const freePort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

async function identities(collector) {
  return collector.read(`/v1/months/${utcMonth()}/identities?format=json`);
}

/** The beacons `tab` posts, as the collector receives them. */
function beaconsOf(tab) {
  const sent = [];
  tab.on("request", (r) => {
    if (r.method() === "POST" && new URL(r.url()).pathname === "/v1/beacons") sent.push(JSON.parse(r.postData()));
  });
  return sent;
}

const CONTEXTS = { "index.html": "demo/es-module", "script-tag.html": "demo/script-tag" };

async function waitFor(fn, what, ms = 15_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  buildCollector();
  twilio = await startTwilioSide();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await twilio?.close();
});

for (const page of ["index.html", "script-tag.html"]) {
  test(`${page}: click to connect, the month's export lists the identity exactly once; the beacon names the page and the click`, async () => {
    const admin = "demo-admin-token-0123";
    const dir = site(`site-${page}`, { collectorUrl: "/v1/beacons", adminToken: admin });
    const collector = await startCollector({ db: path.join(tmp, `${page}.db`), staticDir: dir, adminToken: admin });
    const ctx = await browser.newContext();
    try {
      const tab = await ctx.newPage();
      const sent = beaconsOf(tab);
      const errors = [];
      tab.on("pageerror", (e) => errors.push(e.message));
      const identity = `ada-${page}@example.com`;
      await tab.goto(`${collector.url}/${page}?identity=${encodeURIComponent(identity)}`);
      await tab.waitForSelector("#open");
      await tab.waitForTimeout(300);
      assert.equal(twilio.stats.tokens.filter((t) => t.identity === identity).length, 0, "no token, no client before the click");
      assert.match(await tab.textContent("#lazy-state"), /No Client yet/);
      await tab.click("#open");
      await tab.waitForFunction(() => document.querySelector("#conn").textContent === "connected");
      // Drop the network: the real client reconnects, the connect is counted, no new MAU.
      await tab.click("#drop");
      await tab.waitForFunction(() => document.querySelector("#stats").textContent.includes("2connects seen"), null, { timeout: 15_000 });
      const rows = await waitFor(async () => (await identities(collector)).filter((r) => r.identity === identity).length && identities(collector), "the identity at the collector");
      const mine = rows.filter((r) => r.identity === identity);
      assert.equal(mine.length, 1);
      assert.equal(mine[0].connects, 1, "one MAU beacon for two connects");
      const mineSent = sent.filter((b) => b.identity === identity);
      assert.equal(mineSent.length, 1, "one beacon sent");
      assert.equal(mineSent[0].context, CONTEXTS[page]);
      assert.equal(mineSent[0].reason, "click", "the button's click made the client");
      // The page shows the collector's list too.
      await tab.waitForFunction((id) => document.querySelector("#identities").textContent.includes(id), identity);
      assert.deepEqual(errors, []);
    } finally {
      await ctx.close();
      await collector.stop();
    }
  });
}

test("reload while the collector is down, start it again: the beacon arrives exactly once", async () => {
  const port = await freePort();
  const db = path.join(tmp, "outage.db");
  const collectorUrl = `http://127.0.0.1:${port}/v1/beacons`;
  const dir = site("site-outage", { collectorUrl, adminToken: "outage-admin-token-0123" });
  const pages = await serveStatic({ "/": dir });
  const identity = `zoe-${Date.now()}@example.com`;
  const ctx = await browser.newContext();
  try {
    const tab = await ctx.newPage();
    const sent = beaconsOf(tab);
    await tab.goto(`${pages.url}/index.html?identity=${encodeURIComponent(identity)}`);
    await tab.waitForSelector("#open");
    await tab.click("#open");
    await tab.waitForFunction(() => document.querySelector("#conn").textContent === "connected");
    await tab.waitForFunction(() => window.demoTracker.stats().retries >= 1, null, { timeout: 10_000 });
    assert.equal((await tab.evaluate(() => window.demoTracker.stats())).pending, 1);
    await tab.reload();
    await tab.waitForSelector("#open");
    await tab.waitForFunction(() => window.demoTracker?.stats().retries >= 1, null, { timeout: 10_000 });
    const stats = await tab.evaluate(() => window.demoTracker.stats());
    assert.equal(stats.pending, 1, "the reloaded page holds the beacon the first one stored");
    assert.equal(stats.connectsSeen, 0, "and made no new connect");

    const collector = await startCollector({ db, listen: `127.0.0.1:${port}`, adminToken: "outage-admin-token-0123" });
    try {
      await tab.waitForFunction(() => window.demoTracker.stats().delivered === 1, null, { timeout: 15_000 });
      await tab.waitForTimeout(1_000);
      const rows = (await identities(collector)).filter((r) => r.identity === identity);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].connects, 1, "exactly once");
      // What the first page stored went out from the reloaded one with its context and reason.
      const last = sent.filter((b) => b.identity === identity).at(-1);
      assert.ok(last.attempt >= 2, `attempt ${last.attempt}`);
      assert.deepEqual([last.context, last.reason], ["demo/es-module", "click"]);
      const summary = await collector.read(`/v1/months/${utcMonth()}/summary`);
      assert.equal(summary.unique_identities, 1);
      assert.equal(await tab.evaluate(() => Object.keys(localStorage).filter((k) => /^mau-beacon:v\d+:q:/.test(k)).length), 0);
    } finally {
      await collector.stop();
    }
  } finally {
    await ctx.close();
    await pages.close();
  }
});
