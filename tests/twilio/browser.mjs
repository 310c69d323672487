// Headless Chromium helpers for tests that run the real Conversations client in a page.
//
//   import { launchBrowser, openClientPage } from '../twilio/browser.mjs';
//   const browser = await launchBrowser();
//   const p = await openClientPage(browser, srv, '3.0.1');
//   await p.createClient(token);                 // new Client(token, {Twilsock:{uri}, retryPolicy})
//   await p.waitForEvent('initialized');
//   const evs = await p.events();                // [{t, name, arg, identity, state}]
//   await p.close();

import fs from 'node:fs';
import { chromium } from 'playwright-core';
import { CLIENT_BUILDS } from './fake-twilsock.mjs';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Path of a system Chromium, or null. CHROMIUM_PATH overrides. */
export function chromiumPath() {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean);
  return candidates.find((p) => fs.existsSync(p)) ?? null;
}

export async function launchBrowser() {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error('no Chromium found (set CHROMIUM_PATH)');
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS });
}

/** Events the recorder listens to on the Client. */
export const CLIENT_EVENTS = [
  'connectionStateChanged',
  'initialized',
  'initFailed',
  'stateChanged',
  'connectionError',
  'tokenAboutToExpire',
  'tokenExpired',
];

/**
 * Open a fresh browser context + page on the fake server's origin with the given
 * client build loaded (global Twilio.Conversations.Client). `version` null loads
 * no build (the page at `path` may load its own).
 * @returns page handle with helpers; `page` is the Playwright page.
 */
export async function openClientPage(browser, srv, version, { path = '/blank.html' } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto(srv.httpUrl + path);
  if (version) {
    if (!CLIENT_BUILDS[version]) throw new Error(`unknown client version ${version}`);
    await page.addScriptTag({ url: CLIENT_BUILDS[version] });
  }
  await page.evaluate((events) => {
    window.__t0 = performance.now();
    window.__events = [];
    window.__clients = [];
    window.__record = (client, idx) => {
      for (const name of events) {
        client.on(name, (arg) => {
          let a = arg;
          try { a = arg === undefined ? null : JSON.parse(JSON.stringify(arg)); } catch { a = String(arg); }
          window.__events.push({
            t: Math.round(performance.now() - window.__t0),
            client: idx,
            name,
            arg: a,
            identity: client.user ? client.user.identity : null,
            state: client.connectionState,
          });
        });
      }
    };
  }, CLIENT_EVENTS);

  const h = {
    page,
    context,
    logs,
    /** create a Client in the page; returns its index. options are merged over the defaults. */
    /** add a classic script (url relative to the server) */
    async loadScript(url) {
      await page.addScriptTag({ url });
    },
    async createClient(token, options = {}, { uri = srv.wsUrl } = {}) {
      return page.evaluate(([token, uri, options]) => {
        const opts = { Twilsock: { uri }, retryPolicy: { min: 200, max: 1000, randomness: 0 }, ...options };
        const c = new Twilio.Conversations.Client(token, opts);
        const idx = window.__clients.push(c) - 1;
        window.__record(c, idx);
        return idx;
      }, [token, uri, options]);
    },
    async events(client = 0) {
      const all = await page.evaluate(() => window.__events);
      return client === null ? all : all.filter((e) => e.client === client);
    },
    /** connectionStateChanged values, in order */
    async states(client = 0) {
      return (await h.events(client)).filter((e) => e.name === 'connectionStateChanged').map((e) => e.arg);
    },
    /** wait until an event matching name (and optional arg) has been recorded `count` times */
    async waitForEvent(name, { arg, count = 1, timeout = 5000, client = 0 } = {}) {
      await page.waitForFunction(
        ([name, arg, count, client]) => window.__events.filter((e) => e.client === client && e.name === name
          && (arg === undefined || JSON.stringify(e.arg) === JSON.stringify(arg))).length >= count,
        [name, arg === undefined ? undefined : arg, count, client],
        { timeout, polling: 20 },
      );
    },
    async identity(client = 0) {
      return page.evaluate((i) => window.__clients[i].user.identity, client);
    },
    async connectionState(client = 0) {
      return page.evaluate((i) => window.__clients[i].connectionState, client);
    },
    /** run fn(client, arg) in the page; fn must be self-contained */
    async call(fn, arg, client = 0) {
      return page.evaluate(([src, arg, i]) => {
        // eslint-disable-next-line no-new-func
        const f = new Function(`return (${src})`)();
        return f(window.__clients[i], arg);
      }, [fn.toString(), arg, client]);
    },
    async close() {
      await context.close().catch(() => {});
    },
  };
  return h;
}
