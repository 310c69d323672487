// mau-beacon against the REAL @twilio/conversations browser builds (3.0.1 and 2.7.0) in
// headless Chromium: the client's transport points at our fake Twilsock server on loopback
// (tests/twilio), tokens are HS256 JWTs signed with a test key, and beacons land at the real
// mau-collector. Only Twilio's side is simulated; the client and the collector are real.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { buildCollector, ROOT, startCollector, utcMonth } from "../support/collector.mjs";
import { launchBrowser } from "../twilio/browser.mjs";
import { CLIENT_BUILDS, closedPort, start } from "../twilio/fake-twilsock.mjs";
import { makeToken } from "../twilio/jwt.mjs";

const VERSIONS = ["3.0.1", "2.7.0"];
let srv, collector, browser;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mau-real-"));

before(async () => {
  buildCollector();
  collector = await startCollector({ db: path.join(tmp, "c.db") });
  srv = await start({ mode: "ok", staticDirs: { "/mau": path.join(ROOT, "dist") } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await srv?.close();
  await collector?.stop();
});

const unique = (name) => `${name}-${Math.random().toString(36).slice(2, 8)}@example.com`;

/** The collector's rows for `identity` this month. */
async function rows(identity) {
  return (await collector.read(`/v1/months/${utcMonth()}/identities?format=json`)).filter((r) => r.identity === identity);
}

/**
 * A page with the real client build, mau-beacon's script-tag build and a MauTracker
 * pointed at the collector. `window.log` records client events and beacon events in order.
 */
async function prepare(page, version) {
  await page.addScriptTag({ url: CLIENT_BUILDS[version] });
  await page.addScriptTag({ url: "/mau/mau-beacon.global.js" });
  await page.evaluate(async ([collectorUrl, wsUrl]) => {
    await MauBeacon.ready;
    window.log = [];
    window.errors = [];
    window.clients = [];
    window.clientOptions = { Twilsock: { uri: wsUrl }, retryPolicy: { min: 200, max: 1000, randomness: 0 } };
    window.record = (c) => {
      for (const name of ["connectionStateChanged", "initialized", "initFailed", "tokenExpired", "connectionError"]) {
        c.on(name, (arg) => window.log.push({ kind: "client", name, arg: typeof arg === "string" ? arg : null }));
      }
      window.clients.push(c);
      return c;
    };
    window.tracker = new MauBeacon.MauTracker({
      collectorUrl,
      retry: { baseMs: 200, maxMs: 1000 },
      onEvent: (e) => window.log.push({ kind: "beacon", name: e.type, identity: e.identity ?? null }),
      onError: (e) => window.errors.push(e.message),
    });
  }, [`${collector.url}/v1/beacons`, srv.wsUrl]);
}

async function openPage(version) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.exposeFunction("mintToken", (identity) => makeToken({ identity }));
  await page.goto(`${srv.httpUrl}/blank.html`);
  await prepare(page, version);
  return { page, context, pageErrors };
}

/** `new Client(token)` watched by the tracker; the index of the client. */
function createWatched(page, token, { uri } = {}) {
  return page.evaluate(([token, uri]) => {
    const opts = uri ? { ...window.clientOptions, Twilsock: { uri } } : window.clientOptions;
    const c = window.record(new Twilio.Conversations.Client(token, opts));
    window.watch = window.tracker.watch(c, { token });
    return window.clients.length - 1;
  }, [token, uri ?? null]);
}

/** `window.lazy`: a LazyClient making real clients with tokens for `identity`, connected. */
const startLazy = (page, identity) => page.evaluate(async (identity) => {
  window.lazy = new MauBeacon.LazyClient({
    createClient: (t) => window.record(new Twilio.Conversations.Client(t, window.clientOptions)),
    getToken: () => window.mintToken(identity),
    tracker: window.tracker,
    onError: (e) => window.errors.push(e.message),
  });
  await window.lazy.get();
}, identity);

const waitLog = (page, name, arg, count = 1, timeout = 10_000) =>
  page.waitForFunction(([name, arg, count]) => window.log.filter((e) => e.name === name && (arg === null || e.arg === arg)).length >= count,
    [name, arg, count], { timeout, polling: 20 });
const flush = (page) => page.evaluate(() => window.tracker.flush());
const logOf = (page) => page.evaluate(() => window.log);

for (const version of VERSIONS) {
  describe(`real @twilio/conversations ${version}`, () => {
    test("1. connect: exactly one beacon, identity from the token, before `initialized`", async () => {
      const { page, context, pageErrors } = await openPage(version);
      const identity = unique("s1");
      await createWatched(page, makeToken({ identity }));
      await waitLog(page, "initialized", null);
      const stats = await flush(page);
      assert.equal(stats.delivered, 1);
      const log = await logOf(page);
      const queued = log.findIndex((e) => e.name === "queued");
      assert.equal(log[queued].identity, identity);
      assert.ok(queued < log.findIndex((e) => e.name === "initialized"), "queued before initialized");
      assert.ok(queued > log.findIndex((e) => e.arg === "connected"), "and only after connected");
      const r = await rows(identity);
      assert.equal(r.length, 1);
      assert.equal(r[0].connects, 1);
      assert.deepEqual(pageErrors, []);
      await context.close();
    });

    test("2. init answered, configuration never: still one beacon (connected is confirmed)", async () => {
      srv.setMode("init-only");
      try {
        const { page, context } = await openPage(version);
        const identity = unique("s2");
        await createWatched(page, makeToken({ identity }));
        await waitLog(page, "connectionStateChanged", "connected");
        await flush(page);
        const log = await logOf(page);
        assert.ok(!log.some((e) => e.name === "initialized"));
        assert.equal((await rows(identity)).length, 1);
        await context.close();
      } finally {
        srv.setMode("ok");
      }
    });

    test("3. network loss and reconnect: connect counted twice, MAU beacon once", async () => {
      const { page, context } = await openPage(version);
      const identity = unique("s3");
      await createWatched(page, makeToken({ identity }));
      await waitLog(page, "connectionStateChanged", "connected");
      srv.dropAll();
      await waitLog(page, "connectionStateChanged", "connected", 2);
      const stats = await flush(page);
      assert.equal(stats.connectsSeen, 2);
      assert.equal(stats.deduped, 1);
      assert.equal(stats.queued, 1);
      const states = (await logOf(page)).filter((e) => e.name === "connectionStateChanged").map((e) => e.arg);
      assert.deepEqual(states, ["connecting", "connected", "connecting", "connected"]);
      const r = await rows(identity);
      assert.equal(r.length, 1);
      assert.equal(r[0].connects, 1);
      await context.close();
    });

    test("4. denied token and unreachable server: no beacon, no listener left", async () => {
      srv.setMode("deny");
      const { page, context } = await openPage(version);
      const denied = unique("s4-denied");
      try {
        await createWatched(page, makeToken({ identity: denied }));
        await waitLog(page, "connectionStateChanged", "denied");
        await waitLog(page, "initFailed", null);
      } finally {
        srv.setMode("ok");
      }
      const gone = unique("s4-unreachable");
      const port = await closedPort();
      const idx = await createWatched(page, makeToken({ identity: gone }), { uri: `ws://127.0.0.1:${port}/v3/wsconnect` });
      await waitLog(page, "connectionStateChanged", "retrying");
      await waitLog(page, "connectionError", null, 3);
      const stats = await flush(page);
      assert.equal(stats.connectsSeen, 0);
      assert.equal(stats.queued, 0);
      assert.equal((await rows(denied)).length + (await rows(gone)).length, 0);
      const listeners = await page.evaluate(async (i) => {
        const c = window.clients[i];
        const before = c.listenerCount("connectionStateChanged");
        window.watch.stop();
        const after = c.listenerCount("connectionStateChanged");
        const t0 = performance.now();
        await c.shutdown();
        return { before, after, shutdownMs: performance.now() - t0 };
      }, idx);
      assert.equal(listeners.before - listeners.after, 1, "stop() removed the tracker's listener");
      assert.equal(listeners.after, 1, "only the test's own recorder is left");
      await context.close();
    });

    test("5. token expiry (close 410) refreshed through LazyClient: updateToken, no extra Client, no throw", async () => {
      const { page, context, pageErrors } = await openPage(version);
      const identity = unique("s5");
      await startLazy(page, identity);
      await waitLog(page, "initialized", null); // tokens expire long after initialisation
      const initsBefore = srv.stats.tokens.filter((t) => t.identity === identity).length;
      srv.expireAll();
      await waitLog(page, "tokenExpired", null);
      // The real client stays `disconnecting` ~3 s, then reconnects once updateToken lands.
      await waitLog(page, "connectionStateChanged", "connected", 2, 15_000);
      const tokens = srv.stats.tokens.filter((t) => t.identity === identity);
      assert.ok(tokens.length > initsBefore, "a new init after the refresh");
      assert.notEqual(tokens.at(-1).token, tokens[0].token, "with a fresh token from getToken");
      const state = await page.evaluate(() => ({ created: window.lazy.clientsCreated, errors: window.errors, stats: window.tracker.stats() }));
      assert.equal(state.created, 1, "no extra Client");
      assert.deepEqual(state.errors, []);
      assert.deepEqual(pageErrors, []);
      await flush(page);
      assert.equal((await rows(identity))[0].connects, 1);
      await page.evaluate(() => window.lazy.shutdown());
      await context.close();
    });

    test("5b. token expired before `initialized`: reported, and the next get() makes a new Client", async () => {
      // Found with the real client: its updateToken first awaits initialisation, which a
      // client cut off by a 410 before `initialized` never finishes.
      const { page, context, pageErrors } = await openPage(version);
      const identity = unique("s5b");
      srv.setMode("init-only");
      try {
        await startLazy(page, identity);
        await waitLog(page, "connectionStateChanged", "connected");
        srv.expireAll();
        await page.waitForFunction(() => window.errors.length > 0, null, { timeout: 10_000 });
      } finally {
        srv.setMode("ok");
      }
      assert.match((await page.evaluate(() => window.errors))[0], /before the client initialised/);
      await page.evaluate(() => window.lazy.get());
      await waitLog(page, "initialized", null);
      const state = await page.evaluate(() => ({ created: window.lazy.clientsCreated, stats: window.tracker.stats() }));
      assert.equal(state.created, 2, "the stuck client was replaced");
      assert.equal(state.stats.connectsSeen, 2);
      assert.equal(state.stats.deduped, 1, "same identity, same month: no new MAU beacon");
      assert.deepEqual(pageErrors, []);
      await page.evaluate(() => window.lazy.shutdown());
      await context.close();
    });

    test("6. lazy connect: nothing before the trigger, one Client for three concurrent triggers; bounded shutdown", async () => {
      const { page, context } = await openPage(version);
      const identity = unique("s6");
      const socketsBefore = srv.stats.socketsOpened;
      await page.evaluate((identity) => {
        window.created = 0;
        window.tokensFetched = 0;
        document.body.innerHTML = '<button id="chat">Chat</button><div id="widget" style="height:40px">widget</div>';
        window.lazy = new MauBeacon.LazyClient({
          createClient: (t) => { window.created += 1; return window.record(new Twilio.Conversations.Client(t, window.clientOptions)); },
          getToken: () => { window.tokensFetched += 1; return window.mintToken(identity); },
          tracker: window.tracker,
        });
        window.lazy.connectOn(document.querySelector("#chat"));
      }, identity);
      await page.waitForTimeout(500);
      assert.deepEqual(await page.evaluate(() => [window.created, window.tokensFetched]), [0, 0]);
      assert.equal(srv.stats.socketsOpened, socketsBefore, "no socket before a trigger");
      await page.evaluate(() => {
        window.lazy.connectWhenVisible(document.querySelector("#widget")); // visible: fires on the next frame
        document.querySelector("#chat").click();
        window.lazy.get();
      });
      await waitLog(page, "connectionStateChanged", "connected");
      await page.waitForTimeout(300);
      assert.deepEqual(await page.evaluate(() => [window.created, window.tokensFetched, window.lazy.clientsCreated]), [1, 1, 1]);
      assert.equal(srv.stats.socketsOpened, socketsBefore + 1, "exactly one socket");
      await page.evaluate(() => window.lazy.shutdown());

      // A client whose init is never answered: the real shutdown() waits ~60 s for it.
      srv.setMode("hang");
      try {
        const ms = await page.evaluate(async (identity) => {
          const lazy = new MauBeacon.LazyClient({
            createClient: (t) => window.record(new Twilio.Conversations.Client(t, window.clientOptions)),
            getToken: () => window.mintToken(identity + "-hang"),
            shutdownTimeoutMs: 1500,
          });
          await lazy.get();
          await new Promise((r) => setTimeout(r, 300));
          const t0 = performance.now();
          await lazy.shutdown();
          return performance.now() - t0;
        }, identity);
        assert.ok(ms < 3_000, `shutdown took ${ms} ms`);
      } finally {
        srv.setMode("ok");
      }
      await context.close();
    });

    test("7. identity absent from the token: taken at `initialized` from the configuration", async () => {
      const identity = unique("s7-opaque");
      srv.setIdentityForOpaque(identity);
      const { page, context } = await openPage(version);
      await createWatched(page, makeToken({ identity: null }));
      await waitLog(page, "initialized", null);
      await flush(page);
      const log = await logOf(page);
      const queued = log.findIndex((e) => e.name === "queued");
      assert.equal(log[queued].identity, identity);
      assert.ok(queued > log.findIndex((e) => e.name === "initialized"), "after initialized");
      assert.equal((await rows(identity)).length, 1);
      await context.close();
    });

    test("8. the same page loaded twice in a month: no new MAU beacon the second time", async () => {
      const { page, context } = await openPage(version);
      const identity = unique("s8");
      await createWatched(page, makeToken({ identity }));
      await waitLog(page, "connectionStateChanged", "connected");
      assert.equal((await flush(page)).delivered, 1);
      await page.reload();
      await prepare(page, version);
      await createWatched(page, makeToken({ identity }));
      await waitLog(page, "connectionStateChanged", "connected");
      const stats = await flush(page);
      assert.equal(stats.connectsSeen, 1);
      assert.equal(stats.deduped, 1);
      assert.equal(stats.queued, 0);
      assert.equal((await rows(identity))[0].connects, 1);
      await context.close();
    });

    test("9. the app calls client.removeAllListeners(): ours is put back, the connect still beacons, onError says so once", async () => {
      const { page, context, pageErrors } = await openPage(version);
      const identity = unique("s9");
      const counts = await page.evaluate((token) => {
        const c = new Twilio.Conversations.Client(token, window.clientOptions);
        window.watch = window.tracker.watch(c, { token });
        const watched = c.listenerCount("connectionStateChanged");
        c.removeAllListeners(); // as an app tidying up does, before the connect completes
        const removed = c.listenerCount("connectionStateChanged");
        window.record(c);
        return { watched, removed };
      }, makeToken({ identity }));
      assert.ok(counts.watched >= 1);
      assert.equal(counts.removed, 0, "removeAllListeners took ours too");
      await waitLog(page, "connectionStateChanged", "connected");
      const stats = await flush(page);
      assert.equal(stats.delivered, 1);
      assert.equal((await rows(identity)).length, 1);
      const errors = await page.evaluate(() => window.errors);
      assert.equal(errors.length, 1, JSON.stringify(errors));
      assert.match(errors[0], /listeners were removed/);
      const left = await page.evaluate(() => {
        const c = window.clients[window.clients.length - 1];
        window.watch.stop();
        return c.listenerCount("connectionStateChanged") + c.listenerCount("removeListener");
      });
      assert.equal(left, 1, "after stop() only the test's recorder is left");
      assert.deepEqual(pageErrors, []);
      await context.close();
    });
  });
}
