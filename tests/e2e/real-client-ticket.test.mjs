// Signed tickets end to end: the REAL @twilio/conversations client in headless Chromium
// (fake Twilsock on loopback, as in real-client-beacon.test.mjs), mau-beacon's script-tag
// build, and the real mau-collector run with --require-ticket. Tickets are minted by the
// Node snippet (collector/snippets/ticket.mjs), as a backend would.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { mintTicket } from "../../collector/snippets/ticket.mjs";
import { buildCollector, ROOT, startCollector, utcMonth } from "../support/collector.mjs";
import { launchBrowser } from "../twilio/browser.mjs";
import { CLIENT_BUILDS, start } from "../twilio/fake-twilsock.mjs";
import { makeToken } from "../twilio/jwt.mjs";

const SECRET = "e2e-ticket-secret";
let srv, collector, browser;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mau-ticket-e2e-"));

before(async () => {
  buildCollector();
  collector = await startCollector({
    db: path.join(tmp, "c.db"),
    env: { MAU_COLLECTOR_TICKET_SECRET: SECRET, MAU_COLLECTOR_REQUIRE_TICKET: "true" },
  });
  srv = await start({ mode: "ok", staticDirs: { "/mau": path.join(ROOT, "dist") } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await srv?.close();
  await collector?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const unique = (name) => `${name}-${Math.random().toString(36).slice(2, 8)}@example.com`;
const stored = async (identity) =>
  (await collector.read(`/v1/months/${utcMonth()}/identities?format=json`)).some((r) => r.identity === identity);

async function openPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.exposeFunction("mintToken", (identity) => makeToken({ identity }));
  // The backend's mint, reached asynchronously as a fetch to it would be.
  await page.exposeFunction("mintTicket", (identity, secret) => mintTicket(secret ?? SECRET, identity));
  await page.goto(`${srv.httpUrl}/blank.html`);
  await page.addScriptTag({ url: CLIENT_BUILDS["3.0.1"] });
  await page.addScriptTag({ url: "/mau/mau-beacon.global.js" });
  await page.evaluate(async (collectorUrl) => {
    await MauBeacon.ready;
    window.errors = [];
    window.clientOptions = { retryPolicy: { min: 200, max: 1000, randomness: 0 } };
    window.tracker = new MauBeacon.MauTracker({
      collectorUrl,
      retry: { baseMs: 200, maxMs: 1000 },
      onError: (e) => window.errors.push(e.message),
    });
  }, `${collector.url}/v1/beacons`);
  return { page, context, pageErrors };
}

/** A real client for `identity` watched with `ticket` (evaluated in the page); the stats
 * once the beacon was tried. */
async function watchWith(page, identity, ticketSource) {
  return page.evaluate(async ([identity, wsUrl, ticketSource]) => {
    const token = await window.mintToken(identity);
    const c = new Twilio.Conversations.Client(token, { ...window.clientOptions, Twilsock: { uri: wsUrl } });
    // eslint-disable-next-line no-new-func
    const ticket = new Function("identity", `return ${ticketSource}`)(identity);
    window.tracker.watch(c, { token, ticket });
    await new Promise((resolve) => c.on("connectionStateChanged", (s) => s === "connected" && resolve()));
    // Give an async ticket function time to settle before flushing.
    await new Promise((r) => setTimeout(r, 200));
    const stats = await window.tracker.flush();
    await c.shutdown();
    return stats;
  }, [identity, srv.wsUrl, ticketSource]);
}

test("a valid ticket (async function) is stored; forged and other-identity ones are refused", async () => {
  const { page, context, pageErrors } = await openPage();
  const good = unique("ticket-ok");
  let stats = await watchWith(page, good, "() => window.mintTicket(identity)");
  assert.equal(stats.delivered, 1, JSON.stringify(stats));
  assert.ok(await stored(good));

  const forged = unique("ticket-forged");
  stats = await watchWith(page, forged, "() => window.mintTicket(identity, 'guessed-secret')");
  assert.equal(stats.drop_reasons?.http_401 ?? stats.dropReasons?.http_401, 1, JSON.stringify(stats));
  assert.equal(await stored(forged), false);

  const other = unique("ticket-other");
  const someoneElses = mintTicket(SECRET, good);
  stats = await watchWith(page, other, JSON.stringify(someoneElses));
  assert.equal(stats.dropped, 2, JSON.stringify(stats));
  assert.equal(await stored(other), false);
  assert.deepEqual(pageErrors, []);
  await context.close();
});

test("LazyClient: getToken returning { token, ticket } carries the ticket", async () => {
  const { page, context } = await openPage();
  const identity = unique("ticket-lazy");
  const stats = await page.evaluate(async ([identity, wsUrl]) => {
    const lazy = new MauBeacon.LazyClient({
      createClient: (t) => new Twilio.Conversations.Client(t, { ...window.clientOptions, Twilsock: { uri: wsUrl } }),
      getToken: async () => ({ token: await window.mintToken(identity), ticket: await window.mintTicket(identity) }),
      tracker: window.tracker,
      onError: (e) => window.errors.push(e.message),
    });
    const c = await lazy.get();
    if (c.connectionState !== "connected") {
      await new Promise((resolve) => c.on("connectionStateChanged", (s) => s === "connected" && resolve()));
    }
    const stats = await window.tracker.flush();
    await lazy.shutdown();
    return stats;
  }, [identity, srv.wsUrl]);
  assert.equal(stats.delivered, 1, JSON.stringify(stats));
  assert.ok(await stored(identity));
  await context.close();
});

test("a ticket of the wrong type throws MauBeaconError invalid_config naming the field", async () => {
  const { page, context } = await openPage();
  const errors = await page.evaluate(() => {
    const client = { on() {}, off() {}, connectionState: "connecting" };
    const caught = [];
    for (const make of [
      () => window.tracker.watch(client, { identity: "a", ticket: 42 }),
      () => new MauBeacon.LazyClient({ createClient: () => client, getToken: () => "t", ticket: {} }),
    ]) {
      try {
        make();
        caught.push(null);
      } catch (e) {
        caught.push({ name: e.name, code: e.code, field: e.field, message: e.message });
      }
    }
    return caught;
  });
  for (const e of errors) {
    assert.ok(e, "did not throw");
    assert.equal(e.code, "invalid_config");
    assert.match(e.message, /ticket/);
  }
  await context.close();
});
