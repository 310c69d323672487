// The REAL @twilio/conversations client (3.0.1 and 2.7.0), in headless Chromium,
// against our fake Twilsock server on loopback. These tests pin down how the
// client really behaves (event orders, requests, reconnects, token updates,
// shutdown), which is what mau-beacon builds on.
//
//   node --test tests/e2e/real-client.test.mjs
//
// Needs Chromium (/usr/bin/chromium or CHROMIUM_PATH). Set TWILIO_E2E_LONG=1 to
// also run the slow case that waits for the client's 30 s init timeout.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { start, closedPort } from '../twilio/fake-twilsock.mjs';
import { makeToken } from '../twilio/jwt.mjs';
import { launchBrowser, openClientPage, chromiumPath } from '../twilio/browser.mjs';

const VERSIONS = ['3.0.1', '2.7.0'];
const LONG = process.env.TWILIO_E2E_LONG === '1';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const names = (evs) => evs.map((e) => (e.name === 'connectionStateChanged' ? e.arg : e.name));
const skip = chromiumPath() ? false : 'no Chromium on this machine';

let browser;
before(async () => { if (!skip) browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

// The two versions run side by side; the cases inside one version run in order.
describe('real Conversations client against the fake Twilsock server', { concurrency: 2, skip }, () => {
  for (const version of VERSIONS) {
    describe(`@twilio/conversations ${version}`, { concurrency: 1 }, () => {
      // A fresh server (own port = own origin, so no sessionStorage carries over)
      // and a fresh browser context per test, both closed when the test ends.
      async function setup(t, serverOpts = {}) {
        const srv = await start(serverOpts);
        let p;
        t.after(async () => { await p?.close(); await srv.close(); });
        p = await openClientPage(browser, srv, version);
        return { srv, p };
      }

      it('ok: connecting -> connected -> initialized; identity empty until initialized', async (t) => {
        const { srv, p } = await setup(t, { mode: 'ok' });
        const token = makeToken({ identity: 'alice' });
        await p.createClient(token);
        await p.waitForEvent('initialized');
        await sleep(100);
        const evs = await p.events();
        assert.deepEqual(names(evs), ['connecting', 'connected', 'stateChanged', 'initialized']);
        assert.deepEqual(evs[2].arg, 'initialized');
        const connected = evs.find((e) => e.arg === 'connected');
        assert.equal(connected.identity, '', 'identity is empty at connected');
        assert.equal(evs.find((e) => e.arg === 'connecting').identity, '');
        assert.equal(evs.find((e) => e.name === 'initialized').identity, 'alice');
        assert.equal(await p.identity(), 'alice');
        // What the client sent: one socket, one init with our token, then the
        // Configuration fetch over the socket.
        assert.equal(srv.stats.socketsOpened, 1);
        assert.equal(srv.stats.initRequests, 1);
        assert.equal(srv.stats.tokens[0].token, token);
        assert.equal(srv.stats.continuationTokens[0], null);
        assert.equal(srv.stats.configurationRequests, 1);
        const first = srv.stats.requests[0];
        assert.equal(first.method, 'GET');
        assert.equal(first.host, 'aim.us1.twilio.com');
        assert.equal(first.path, '/Client/v2/Configuration');
        const paths = srv.stats.requests.map((r) => `${r.method} ${r.path.replace(/MP[0-9a-f]+/, 'MP…').replace(/IS[0-9]+/, 'IS…')}`);
        assert.ok(paths.includes('GET /Client/v2/Services/IS…/Users/Me/Conversations'), paths.join(', '));
        assert.ok(paths.includes('GET /v3/Maps/MP…'), paths.join(', '));
        assert.ok(srv.stats.requests.every((r) => r.status === 200), JSON.stringify(srv.stats.requests));
        assert.ok(!p.logs.some((l) => l.startsWith('pageerror')), p.logs.join('\n'));
      });

      it('init-only: connected, never initialized', async (t) => {
        const { srv, p } = await setup(t, { mode: 'init-only' });
        await p.createClient(makeToken({ identity: 'alice' }));
        await p.waitForEvent('connectionStateChanged', { arg: 'connected' });
        await sleep(2500);
        const evs = await p.events();
        assert.deepEqual(names(evs), ['connecting', 'connected']);
        assert.equal(await p.identity(), '');
        assert.equal(srv.stats.configurationRequests, 0, 'Configuration was never answered');
        assert.ok(srv.stats.requests.some((r) => r.path === '/Client/v2/Configuration' && r.status === 'unanswered'));
        // shutdown() waits for initialisation to settle: it is still pending here.
        await p.page.evaluate(() => {
          window.__sd = 'pending';
          window.__clients[0].shutdown().then(() => { window.__sd = 'done'; }, () => { window.__sd = 'rejected'; });
        });
        await sleep(1500);
        assert.equal(await p.page.evaluate(() => window.__sd), 'pending');
      });

      it('drop: connected -> connecting -> connected on the same Client, no disconnected', async (t) => {
        const { srv, p } = await setup(t, { mode: 'ok' });
        const token = makeToken({ identity: 'alice' });
        await p.createClient(token);
        await p.waitForEvent('initialized');
        assert.equal(srv.dropAll(), 1);
        await p.waitForEvent('connectionStateChanged', { arg: 'connected', count: 2 });
        await sleep(200);
        const evs = await p.events();
        assert.deepEqual(names(evs), ['connecting', 'connected', 'stateChanged', 'initialized', 'connecting', 'connected']);
        assert.equal(await p.page.evaluate(() => window.__clients.length), 1);
        assert.equal(await p.identity(), 'alice');
        assert.equal(srv.stats.socketsOpened, 2);
        assert.equal(srv.stats.initRequests, 2);
        // The reconnect re-sends the same token, plus the continuation token of the first session,
        // and does not fetch the Configuration again.
        assert.equal(srv.stats.tokens[1].token, token);
        assert.equal(srv.stats.continuationTokens[0], null);
        assert.match(srv.stats.continuationTokens[1], /^CT/);
        assert.equal(srv.stats.configurationRequests, 1);
        // Reconnect delay follows retryPolicy.min (200 ms here).
        const drop = evs[4].t;
        const back = evs[5].t;
        assert.ok(back - drop >= 150 && back - drop < 1500, `reconnected after ${back - drop} ms`);
      });

      it('deny: denied, never connected; init 401/20101 is terminal', async (t) => {
        const { srv, p } = await setup(t, { mode: 'deny' });
        await p.createClient(makeToken({ identity: 'alice' }));
        await p.waitForEvent('connectionStateChanged', { arg: 'denied' });
        await sleep(1200);
        const evs = await p.events();
        assert.deepEqual(names(evs), ['connecting', 'denied', 'stateChanged', 'initFailed', 'connectionError', 'stateChanged', 'initFailed']);
        assert.ok(!names(evs).includes('connected'));
        const err = evs.find((e) => e.name === 'connectionError').arg;
        assert.equal(err.terminal, true);
        assert.equal(err.httpStatusCode, 401);
        assert.equal(err.errorCode, 20101);
        assert.equal(evs[3].arg.error.message, 'Twilsock has disconnected.');
        assert.equal(srv.stats.socketsOpened, 1, 'no retry after a denial');
        assert.equal(srv.stats.initRequests, 1);
        // shutdown() of a denied client returns at once.
        const ms = await p.call(async (c) => { const t0 = performance.now(); await c.shutdown(); return performance.now() - t0; });
        assert.ok(ms < 1000, `shutdown took ${ms} ms`);
      });

      it('deny, then updateToken(valid): connects and initializes, but the promise rejects', async (t) => {
        const { srv, p } = await setup(t, { mode: 'deny' });
        await p.createClient(makeToken({ identity: 'alice' }));
        await p.waitForEvent('connectionStateChanged', { arg: 'denied' });
        await sleep(200);
        // Still denied by the server: the promise rejects with the transport error.
        const r1 = await p.call(async (c, tok) => { try { await c.updateToken(tok); return 'ok'; } catch (e) { return `err ${e.message}`; } }, makeToken({ identity: 'alice' }));
        assert.equal(r1, 'err Transport failure: UNAUTHORIZED');
        assert.equal(srv.stats.socketsOpened, 2);
        // Accepted now: the client connects and finishes initialising, yet updateToken()
        // rejects (it touches the media client, which only exists after initialisation).
        srv.setMode('ok');
        const n0 = (await p.events()).length;
        const token = makeToken({ identity: 'alice' });
        const r2 = await p.call(async (c, tok) => { try { await c.updateToken(tok); return 'ok'; } catch (e) { return `err ${e.message}`; } }, token);
        assert.equal(r2, "err Cannot read properties of undefined (reading 'updateToken')");
        await p.waitForEvent('initialized');
        assert.deepEqual(names((await p.events()).slice(n0)), ['connecting', 'connected', 'stateChanged', 'initialized']);
        assert.equal(await p.identity(), 'alice');
        assert.equal(srv.stats.tokens.at(-1).token, token);
        assert.equal(srv.stats.tokens.at(-1).kind, 'init');
      });

      it('expired token at init: denied + tokenExpired (401/20104)', async (t) => {
        const { srv, p } = await setup(t, { mode: 'ok' });
        await p.createClient(makeToken({ identity: 'alice', ttl: -60 }));
        await p.waitForEvent('connectionStateChanged', { arg: 'denied' });
        await sleep(300);
        const evs = await p.events();
        assert.ok(names(evs).includes('tokenExpired'), names(evs).join(','));
        assert.ok(!names(evs).includes('connected'));
        assert.equal(evs.find((e) => e.name === 'connectionError').arg.errorCode, 20104);
      });

      it('unreachable port: connecting then retrying, never connected; shutdown is immediate', async (t) => {
        const { srv, p } = await setup(t, { mode: 'ok' });
        const port = await closedPort();
        await p.createClient(makeToken({ identity: 'alice' }), {}, { uri: `ws://127.0.0.1:${port}/v3/wsconnect` });
        await sleep(2000);
        const evs = await p.events();
        const states = evs.filter((e) => e.name === 'connectionStateChanged').map((e) => e.arg);
        assert.deepEqual(states, ['connecting', 'retrying']);
        assert.equal(await p.connectionState(), 'retrying');
        const errors = evs.filter((e) => e.name === 'connectionError');
        assert.ok(errors.length >= 3, `retried ${errors.length} times`);
        assert.ok(errors.every((e) => e.arg.terminal === false));
        // initFailed (non-terminal) comes once, right after the first socket error.
        assert.equal(evs.filter((e) => e.name === 'initFailed').length, 1);
        assert.deepEqual(names(evs).slice(0, 5), ['connecting', 'connectionError', 'stateChanged', 'initFailed', 'retrying']);
        // shutdown(): initialisation already "failed", so it does not wait.
        const ms = await p.call(async (c) => { const t0 = performance.now(); await c.shutdown(); return performance.now() - t0; });
        assert.ok(ms < 1000, `shutdown took ${ms} ms`);
        await p.waitForEvent('connectionStateChanged', { arg: 'disconnected' });
        const nDisc = (await p.events()).length;
        const after = names(await p.events()).slice(names(evs).length);
        assert.deepEqual(after.filter((n) => n !== 'connectionError'), ['disconnecting', 'disconnected', 'stateChanged', 'initFailed']);
        // ...and it really stops: no further attempts after "disconnected".
        await sleep(1300);
        const late = (await p.events()).slice(nDisc).filter((e) => e.name !== 'stateChanged' && e.name !== 'initFailed');
        assert.deepEqual(late.map((e) => e.name), []);
        assert.equal(await p.connectionState(), 'disconnected');
      });

      it('close 410: tokenExpired + disconnected, no reconnect; updateToken(new) connects again', async (t) => {
        const { srv, p } = await setup(t, { mode: 'ok' });
        const token1 = makeToken({ identity: 'alice' });
        await p.createClient(token1);
        await p.waitForEvent('initialized');
        const n0 = (await p.events()).length;
        assert.equal(srv.expireAll(), 1);
        await p.waitForEvent('connectionStateChanged', { arg: 'disconnected', timeout: 6000 });
        await sleep(800);
        let evs = (await p.events()).slice(n0);
        assert.deepEqual(names(evs), ['disconnecting', 'tokenExpired', 'disconnected']);
        // The client waits out its 3 s disconnect timer before "disconnected".
        const gap = evs[2].t - evs[0].t;
        // (bounds leave room for a loaded machine; an immediate "disconnected" would be ~0 ms)
        assert.ok(gap >= 2000 && gap < 6000, `disconnected ${gap} ms after disconnecting`);
        assert.equal(srv.stats.socketsOpened, 1, 'no reconnect after 410');
        // updateToken with a fresh token: a new socket and a new init carrying it.
        const token2 = makeToken({ identity: 'alice' });
        const res = await p.call(async (c, tok) => { try { await c.updateToken(tok); return 'ok'; } catch (e) { return `err ${e.message}`; } }, token2);
        assert.equal(res, 'ok');
        await p.waitForEvent('connectionStateChanged', { arg: 'connected', count: 2 });
        evs = (await p.events()).slice(n0);
        assert.deepEqual(names(evs), ['disconnecting', 'tokenExpired', 'disconnected', 'connecting', 'connected']);
        assert.equal(srv.stats.socketsOpened, 2);
        assert.deepEqual(srv.stats.tokens.map((t) => t.kind), ['init', 'init']);
        assert.equal(srv.stats.tokens[1].token, token2);
        assert.equal(srv.stats.updateTokenRequests, 0);
        // While connected, updateToken goes over the open socket as an `update` frame.
        const token3 = makeToken({ identity: 'alice' });
        assert.equal(await p.call(async (c, tok) => { await c.updateToken(tok); return c.connectionState; }, token3), 'connected');
        assert.equal(srv.stats.updateTokenRequests, 1);
        assert.equal(srv.stats.tokens[2].kind, 'update');
        assert.equal(srv.stats.tokens[2].token, token3);
        assert.equal(srv.stats.socketsOpened, 2);
      });

      it('close 410: updateToken called inside tokenExpired never completes; same token again is a no-op', async (t) => {
        const { srv, p } = await setup(t, { mode: 'ok' });
        await p.createClient(makeToken({ identity: 'alice' }));
        await p.waitForEvent('initialized');
        const token2 = makeToken({ identity: 'alice' });
        await p.call((c, tok) => {
          window.__upd = 'pending';
          c.on('tokenExpired', () => {
            c.updateToken(tok).then(() => { window.__upd = 'resolved'; }, (e) => { window.__upd = `rejected ${e.message}`; });
          });
        }, token2);
        srv.expireAll();
        await p.waitForEvent('connectionStateChanged', { arg: 'disconnected', timeout: 6000 });
        await sleep(700);
        // The update arrived while the client was "disconnecting": it is dropped, no reconnect.
        assert.equal(await p.page.evaluate(() => window.__upd), 'pending');
        assert.equal(await p.connectionState(), 'disconnected');
        assert.equal(srv.stats.socketsOpened, 1);
        // Trying again with the SAME token resolves at once but does not reconnect either.
        await p.call(async (c, tok) => { await c.updateToken(tok); }, token2);
        await sleep(500);
        assert.equal(await p.connectionState(), 'disconnected');
        assert.equal(srv.stats.socketsOpened, 1);
        // Only a different token gets it going again (and settles the first promise too).
        const token3 = makeToken({ identity: 'alice' });
        await p.call(async (c, tok) => { await c.updateToken(tok); }, token3);
        await p.waitForEvent('connectionStateChanged', { arg: 'connected', count: 2 });
        assert.equal(await p.page.evaluate(() => window.__upd), 'resolved');
        assert.equal(srv.stats.socketsOpened, 2);
        assert.equal(srv.stats.tokens.at(-1).token, token3);
      });

      it('server pushes: token_about_to_expire; close 401 / 308 offload / 500', async (t) => {
        // Four clients side by side, one per server frame.
        const cases = {
          about: (srv) => srv.tokenAboutToExpireAll(),
          close401: (srv) => srv.closeAll(401, 'UNAUTHORIZED', 'Invalid Access Token', 20101),
          offload308: (srv) => srv.closeAll(308, 'OFFLOAD', 'Offload', undefined, { backoff_policy: { reconnect_min_ms: 300 } }),
          close500: (srv) => srv.closeAll(500, 'Internal Server Error'),
        };
        const got = {};
        await Promise.all(Object.entries(cases).map(async ([kind, act]) => {
          const { srv, p } = await setup(t, { mode: 'ok' });
          await p.createClient(makeToken({ identity: 'alice' }));
          await p.waitForEvent('initialized');
          const n0 = (await p.events()).length;
          act(srv);
          // Waits for the state each case ends in, not a fixed time, so a loaded machine
          // can't cut a 3 s timer short; then a little longer, to see nothing else follows.
          if (kind === 'offload308' || kind === 'close500') {
            await p.waitForEvent('connectionStateChanged', { arg: 'connected', count: 2, timeout: 10000 });
          } else if (kind === 'close401') {
            await p.waitForEvent('connectionStateChanged', { arg: 'disconnected', timeout: 10000 });
          }
          await sleep(kind === 'close401' ? 1000 : 300);
          const evs = (await p.events()).slice(n0);
          got[kind] = { names: names(evs), evs, sockets: srv.stats.socketsOpened, state: await p.connectionState() };
        }));
        // tokenAboutToExpire comes only from this push; the connection is untouched.
        assert.deepEqual(got.about.names, ['tokenAboutToExpire']);
        assert.equal(got.about.state, 'connected');
        // 401 close: like 410 but without tokenExpired; stays disconnected.
        assert.deepEqual(got.close401.names, ['disconnecting', 'disconnected']);
        assert.equal(got.close401.sockets, 1);
        // 308 offload and other codes: reconnect, but only after the 3 s disconnect timer.
        for (const k of ['offload308', 'close500']) {
          assert.deepEqual(got[k].names, ['disconnecting', 'connecting', 'connected'], k);
          assert.equal(got[k].sockets, 2, k);
          // ~3 s, far above the 200 ms retry policy; the lower bound leaves room for a page
          // that records "disconnecting" late on a loaded machine.
          const wait = got[k].evs[1].t - got[k].evs[0].t;
          assert.ok(wait >= 2000 && wait < 6000, `${k}: reconnect after ${wait} ms`);
        }
      });

      it('opaque token (no grants.identity): identity arrives at initialized from the Configuration', async (t) => {
        const { srv, p } = await setup(t, { mode: 'ok', identityForOpaque: 'opaque-42' });
        const token = makeToken({ identity: null });
        assert.equal(JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).grants.identity, undefined);
        await p.createClient(token);
        await p.waitForEvent('initialized');
        const evs = await p.events();
        assert.deepEqual(names(evs), ['connecting', 'connected', 'stateChanged', 'initialized']);
        assert.equal(evs[1].identity, '');
        assert.equal(evs[3].identity, 'opaque-42');
        assert.equal(await p.identity(), 'opaque-42');
        assert.equal(srv.stats.tokens[0].identity, null);
      });

      it('hang (init never answered): shutdown() waits for the init timeout', async (t) => {
        const { srv, p } = await setup(t, { mode: 'hang' });
        await p.createClient(makeToken({ identity: 'alice' }));
        await srv.waitFor((s) => s.initRequests === 1, 3000, 'init');
        await p.page.evaluate(() => {
          window.__sd = 'pending';
          const t0 = performance.now();
          window.__clients[0].shutdown().then(() => { window.__sd = Math.round(performance.now() - t0); }, () => { window.__sd = 'rejected'; });
        });
        await sleep(1500);
        assert.equal(await p.page.evaluate(() => window.__sd), 'pending');
        assert.deepEqual(await p.states(), ['connecting']);
      });

      it('hang, long: the init request times out after 30 s (TWILIO_E2E_LONG=1)', { skip: !LONG && 'set TWILIO_E2E_LONG=1', timeout: 40000 }, async (t) => {
        const { srv, p } = await setup(t, { mode: 'hang' });
        await p.createClient(makeToken({ identity: 'alice' }));
        await p.waitForEvent('connectionError', { timeout: 34000 });
        const evs = await p.events();
        const err = evs.find((e) => e.name === 'connectionError');
        assert.ok(err.t >= 29500 && err.t < 33000, `init timeout after ${err.t} ms`);
        assert.equal(err.arg.terminal, true);
        assert.match(err.arg.message, /request timeout/);
      });
    });
  }
});
