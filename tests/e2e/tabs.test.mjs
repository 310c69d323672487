// Tabs of one browser profile: two tabs whose clients connect the same identity in the same
// millisecond send exactly one beacon, with Web Locks and with the storage claim that stands
// in where a browser has none. Headless Chromium, the script-tag build, the client test
// double (tests/wasm/double.js), beacons to a real HTTP receiver on loopback.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { openDoublePage, startPages } from "../support/pages.mjs";

let pages, receiver, browser;
const ROUNDS = 3;

before(async () => {
  pages = await startPages();
  ({ receiver, browser } = pages);
});
after(async () => { await pages?.close(); });

/** A tab with a tracker watching a test-double client of `identity`. */
async function openTab(context, collectorUrl, identity) {
  const page = await openDoublePage(context, pages.server);
  await page.evaluate(async ([collectorUrl, identity]) => {
    await MauBeacon.ready;
    window.events = [];
    window.tracker = new MauBeacon.MauTracker({ collectorUrl, onEvent: (e) => window.events.push(e.type) });
    window.client = new FakeClient(identity);
    window.tracker.watch(window.client, { identity });
  }, [collectorUrl, identity]);
  return page;
}

/** The tab's client connects at the instant `at` (ms since the epoch): a timer to just
 * before it (background tabs' timers are coarse), then a spin to the millisecond. */
const connectAt = (page, at) => page.evaluate((at) => new Promise((resolve) => {
  setTimeout(() => {
    while (Date.now() < at);
    const t = Date.now();
    window.client.connect();
    resolve(t);
  }, at - Date.now() - 50);
}), at);

async function sameMillisecond(t, { webLocks }) {
  const context = await browser.newContext();
  if (!webLocks) {
    await context.addInitScript(() => Object.defineProperty(Navigator.prototype, "locks", { get: () => undefined }));
  }
  // Every round must send one beacon; only rounds whose connects landed within 1 ms of each
  // other count towards ROUNDS (a loaded machine may make a renderer a few ms late).
  const gaps = [];
  for (let round = 0; gaps.filter((g) => g <= 1).length < ROUNDS; round++) {
    assert.ok(round < 8 * ROUNDS, `only ${gaps.filter((g) => g <= 1).length} rounds within 1 ms: ${gaps}`);
    const bucket = `tabs-${webLocks}-${round}-${Date.now()}`;
    const identity = `${bucket}@example.com`;
    const url = `${receiver.url}/b/${bucket}`;
    const tabs = [await openTab(context, url, identity), await openTab(context, url, identity)];
    assert.equal(await tabs[0].evaluate(() => typeof navigator.locks), webLocks ? "object" : "undefined");
    const at = Date.now() + 400;
    const fired = await Promise.all(tabs.map((p) => connectAt(p, at)));
    gaps.push(Math.abs(fired[0] - fired[1]));
    const stats = await Promise.all(tabs.map((p) => p.evaluate(() => window.tracker.flush())));
    const got = (await (await fetch(url)).json()).attempts;
    const ids = new Set(got.map((a) => a.body.event_id));
    assert.equal(ids.size, 1, `round ${round}: ${ids.size} beacons for one identity from two tabs`);
    assert.deepEqual(stats.map((s) => s.queued).sort(), [0, 1], JSON.stringify(stats));
    assert.deepEqual(stats.map((s) => s.deduped).sort(), [0, 1]);
    for (const p of tabs) await p.close();
  }
  await context.close();
  t.diagnostic(`${gaps.length} rounds, one beacon each; connects apart by ${gaps.join(", ")} ms`);
}

test("two tabs connecting one identity in the same millisecond: one beacon (Web Locks)", (t) =>
  sameMillisecond(t, { webLocks: true }));

test("the same without Web Locks: the storage claim", (t) => sameMillisecond(t, { webLocks: false }));

test("a stored beacon is sent by one tab at a time", async () => {
  const context = await browser.newContext();
  const bucket = `send-${Date.now()}`;
  const identity = `${bucket}@example.com`;
  const url = `${receiver.url}/b/${bucket}`;
  // The collector unreachable: the first tab's beacon stays stored, and three more tabs
  // opened on the same profile all take it up.
  const unreachable = `${receiver.url}/**`;
  await context.route(unreachable, (route) => route.abort());
  const first = await openTab(context, url, identity);
  await first.evaluate(() => window.client.connect());
  await first.evaluate(() => window.tracker.flush());
  const tabs = [first, ...(await Promise.all([0, 1, 2].map(() => openTab(context, url, identity))))];
  const pending = await Promise.all(tabs.map((p) => p.evaluate(() => window.tracker.stats().pending)));
  assert.deepEqual(pending, [1, 1, 1, 1]);
  // Reachable again, and every tab flushes at once.
  await context.unroute(unreachable);
  await Promise.all(tabs.map((p) => p.evaluate(() => window.tracker.flush())));
  const attempts = (await (await fetch(url)).json()).attempts;
  assert.equal(new Set(attempts.map((a) => a.body.event_id)).size, 1);
  assert.equal(attempts.length, 1, `${attempts.length} tabs sent the same stored beacon`);
  const after = await Promise.all(tabs.map((p) => p.evaluate(() => window.tracker.stats().pending)));
  assert.deepEqual(after, [0, 0, 0, 0]);
  await context.close();
});
