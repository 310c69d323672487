// The UTC month turning under a connected client: the page clock is moved to just before
// the next month (or past it, as a machine waking from sleep would see), and the client that
// is still connected is reported for the new month with kind "still_connected". Headless
// Chromium, the script-tag build, the client test double, a real HTTP receiver on loopback.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { openDoublePage, shiftedClock, startPages } from "../support/pages.mjs";

let pages;
before(async () => { pages = await startPages(); });
after(async () => { await pages?.close(); });

const nextMonthStart = (ms) => {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
};
const monthOf = (ms) => new Date(ms).toISOString().slice(0, 7);

/** A page whose clock runs `offsetMs` ahead (changeable with `window.setClockOffset`),
 * with a tracker watching a test-double client of `identity`. */
async function openPage(t, offsetMs) {
  const bucket = `${t.name.replace(/\W+/g, "-").slice(0, 40)}-${Date.now()}`;
  const identity = `${bucket}@example.com`;
  const url = `${pages.receiver.url}/b/${bucket}`;
  const context = await pages.browser.newContext();
  await context.addInitScript(shiftedClock, offsetMs);
  const page = await openDoublePage(context, pages.server);
  await page.evaluate(async ([url, identity]) => {
    await MauBeacon.ready;
    window.tracker = new MauBeacon.MauTracker({ collectorUrl: url });
    window.client = new FakeClient(identity);
    window.tracker.watch(window.client, { identity, context: "inbox" });
    window.client.connect();
    await window.tracker.flush();
  }, [url, identity]);
  const beacons = async () => {
    await page.evaluate(() => window.tracker.flush());
    return (await (await fetch(url)).json()).attempts.map((a) => a.body);
  };
  return { page, context, beacons };
}

test("still connected when the month turns: one still_connected beacon for the new month", async (t) => {
  const now = Date.now();
  const boundary = nextMonthStart(now);
  // The page believes it is 5 s before the next UTC month (time enough to load and connect).
  const { page, context, beacons } = await openPage(t, boundary - 5000 - now);
  const pageNow = await page.evaluate(() => Date.now());
  assert.ok(pageNow < boundary, "connected before the boundary");
  await page.waitForFunction(() => window.tracker.stats().queued >= 2, null, { timeout: 15_000, polling: 100 });
  const got = await beacons();
  assert.deepEqual(got.map((b) => [b.kind, b.month]), [
    ["connected", monthOf(boundary - 1)],
    ["still_connected", monthOf(boundary)],
  ]);
  assert.notEqual(got[0].event_id, got[1].event_id);
  // The month's turn keeps where the client was made.
  assert.deepEqual(got.map((b) => [b.context, b.reason]), [["inbox", "app"], ["inbox", "app"]]);
  // One per month: nothing more comes.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await beacons()).length, 2);
  await context.close();
});

test("disconnected before the month turns: nothing for the new month", async (t) => {
  const now = Date.now();
  const boundary = nextMonthStart(now);
  const { page, context, beacons } = await openPage(t, boundary - 5000 - now);
  await page.evaluate(() => window.client.setState("disconnected"));
  assert.ok((await page.evaluate(() => Date.now())) < boundary, "disconnected before the boundary");
  await page.waitForFunction((b) => Date.now() > b + 500, boundary, { timeout: 10_000, polling: 100 });
  assert.deepEqual((await beacons()).map((b) => b.kind), ["connected"]);
  await context.close();
});

test("the clock jumped past the boundary (a machine waking up): seen on visibilitychange", async (t) => {
  const now = Date.now();
  const { page, context, beacons } = await openPage(t, 0);
  const boundary = nextMonthStart(now);
  // Days before the boundary the timer is far off; the clock now jumps 5 s past it.
  await page.evaluate((ms) => {
    window.setClockOffset(ms);
    document.dispatchEvent(new Event("visibilitychange"));
  }, boundary + 5000 - Date.now());
  assert.equal(await page.evaluate(() => document.visibilityState), "visible");
  await page.waitForFunction(() => window.tracker.stats().queued >= 2, null, { timeout: 5_000, polling: 100 });
  assert.deepEqual((await beacons()).map((b) => [b.kind, b.month]), [
    ["connected", monthOf(now)],
    ["still_connected", monthOf(boundary)],
  ]);
  await context.close();
});
