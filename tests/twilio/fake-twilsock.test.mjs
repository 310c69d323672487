// Unit tests of the fake Twilsock server itself, with a plain `ws` client (no browser).
//   node --test tests/twilio/fake-twilsock.test.mjs

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { start, closedPort, encodeFrame, decodeFrame, CLIENT_BUILDS } from './fake-twilsock.mjs';
import { makeToken, decodeToken, tokenIdentity } from './jwt.mjs';

/** A minimal Twilsock client: send frames, await replies by id. */
async function connect(srv) {
  const ws = new WebSocket(srv.wsUrl);
  const inbox = [];
  const waiters = [];
  ws.on('message', (data) => {
    const f = decodeFrame(data);
    inbox.push(f);
    for (const w of [...waiters]) if (w.pred(f)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(f); }
  });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  let n = 0;
  const c = {
    ws,
    inbox,
    next(pred, timeout = 2000) {
      const hit = inbox.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        waiters.push(w);
        setTimeout(() => { const i = waiters.indexOf(w); if (i >= 0) { waiters.splice(i, 1); reject(new Error('no frame')); } }, timeout).unref();
      });
    },
    request(header, payload, timeout = 2000) {
      const id = `TMtest${++n}`;
      ws.send(encodeFrame({ ...header, id }, payload));
      return c.next((f) => f.header?.method === 'reply' && f.header.id === id, timeout);
    },
    init(token, timeout = 2000) {
      return c.request({ method: 'init', token, continuation_token: null, metadata: {}, registrations: [{ product: 'ip_messaging', type: 'ers', notification_protocol_version: 0, message_types: [] }], capabilities: ['client_update', 'offline_storage', 'telemetry.v1'] }, undefined, timeout);
    },
    get(host, p, params = {}, timeout = 2000) {
      return c.request({ method: 'message', active_grant: 'ip_messaging', payload_type: 'application/json', http_request: { host, path: p, method: 'GET', params, headers: {} } }, undefined, timeout);
    },
    closed: new Promise((resolve) => ws.once('close', (code) => resolve(code))),
  };
  return c;
}

describe('jwt.mjs', () => {
  it('makes a real-shaped HS256 access token', () => {
    const t = makeToken({ identity: 'alice', ttl: 600 });
    const d = decodeToken(t);
    assert.equal(d.valid, true);
    assert.deepEqual(d.header, { typ: 'JWT', alg: 'HS256', cty: 'twilio-fpa;v=1' });
    assert.match(d.payload.iss, /^SK[0-9a-f]{32}$/);
    assert.match(d.payload.sub, /^AC[0-9a-f]{32}$/);
    assert.match(d.payload.grants.chat.service_sid, /^IS[0-9a-f]{32}$/);
    assert.equal(d.payload.exp - d.payload.iat, 600);
    assert.equal(d.payload.nbf, d.payload.iat);
    assert.ok(d.payload.jti.startsWith(d.payload.iss));
    assert.equal(tokenIdentity(t), 'alice');
  });
  it('opaque tokens have no grants.identity; tampering breaks the signature', () => {
    const t = makeToken({ identity: null });
    assert.equal(decodeToken(t).payload.grants.identity, undefined);
    assert.equal(tokenIdentity(t), null);
    const [h, , s] = t.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ grants: { identity: 'x' } })).toString('base64url')}.${s}`;
    assert.equal(decodeToken(forged).valid, false);
    assert.equal(decodeToken('not a jwt'), null);
    assert.equal(makeToken({ exp: 123 }).length > 0, true);
    assert.equal(decodeToken(makeToken({ exp: 123 })).payload.exp, 123);
  });
});

describe('fake-twilsock.mjs', () => {
  it('frames round-trip, and garbage never throws', () => {
    const f = decodeFrame(encodeFrame({ method: 'x', id: '1' }, { a: 'é' }));
    assert.equal(f.header.method, 'x');
    assert.equal(f.header.payload_size, Buffer.byteLength('{"a":"é"}'));
    assert.deepEqual(f.payload, { a: 'é' });
    assert.ok(decodeFrame(Buffer.from('hello')).error);
    assert.ok(decodeFrame(Buffer.from('TWILSOCK V3.0 5\r\n{"a"\r\n')).error);
    assert.ok(decodeFrame(Buffer.from('HTTP/1.1 200\r\n')).error);
  });

  it('ok: init 200 with continuation token, Configuration carries the token identity', async (t) => {
    const srv = await start();
    t.after(() => srv.close());
    const c = await connect(srv);
    const r = await c.init(makeToken({ identity: 'bob' }));
    assert.equal(r.header.status.code, 200);
    assert.match(r.header.continuation_token, /^CT/);
    assert.deepEqual(r.header.capabilities, ['client_update', 'offline_storage', 'telemetry.v1']);
    assert.ok(r.header.offline_storage.ip_messaging.storage_id);
    const conf = await c.get('aim.us1.twilio.com', '/Client/v2/Configuration');
    assert.equal(conf.header.status.code, 200);
    assert.equal(conf.header.http_status.code, 200);
    assert.equal(conf.payload.identity, 'bob');
    assert.ok(conf.payload.links.my_conversations);
    assert.ok(conf.payload.sync_objects.my_user_info);
    const map = await c.get('cds.us1.twilio.com', `/v3/Maps/${conf.payload.sync_objects.my_user_info}`, { Include: 'items' });
    assert.equal(map.header.http_status.code, 200);
    assert.deepEqual(map.payload.items.map((i) => i.key), ['friendlyName', 'attributes', 'reachability']);
    srv.addTunnelRoute({ host: 'example.com', path: /^\/later/, handler: async (req) => ({ status: 201, body: { path: req.path } }) });
    srv.addTunnelRoute({ path: '/throws', handler() { throw new Error('x'); } });
    const later = await c.get('example.com', '/later/1');
    assert.equal(later.header.http_status.code, 201);
    assert.deepEqual(later.payload, { path: '/later/1' });
    assert.equal((await c.get('example.com', '/throws')).header.http_status.code, 500);
    const missing = await c.get('example.com', '/nope');
    assert.equal(missing.header.status.code, 200);
    assert.equal(missing.header.http_status.code, 404);
    assert.equal(srv.stats.configurationRequests, 1);
    assert.deepEqual(srv.stats.tokens.map((x) => x.identity), ['bob']);
    c.ws.close();
  });

  it('opaque token: identity comes from identityForOpaque', async (t) => {
    const srv = await start({ identityForOpaque: 'op-1' });
    t.after(() => srv.close());
    const c = await connect(srv);
    await c.init(makeToken({ identity: null }));
    assert.equal((await c.get('aim.us1.twilio.com', '/Client/v2/Configuration')).payload.identity, 'op-1');
    c.ws.close();
  });

  it('deny / deny-expired / bad or expired tokens answer 401', async (t) => {
    const srv = await start({ mode: 'deny' });
    t.after(() => srv.close());
    let c = await connect(srv);
    let r = await c.init(makeToken());
    assert.equal(r.header.status.code, 401);
    assert.equal(r.header.status.errorCode, 20101);
    srv.setMode('deny-expired');
    r = await c.init(makeToken());
    assert.equal(r.header.status.errorCode, 20104);
    srv.setMode('ok');
    r = await c.init(makeToken({ ttl: -5 }));
    assert.equal(r.header.status.errorCode, 20104);
    r = await c.init('not-a-token');
    assert.equal(r.header.status.errorCode, 20101);
    r = await c.init(makeToken({ secret: 'other' }));
    assert.equal(r.header.status.errorCode, 20101);
    assert.throws(() => srv.setMode('nope'));
    c.ws.close();
    // a mode function decides per connection
    srv.setMode((conn) => (conn.id % 2 ? 'ok' : 'deny'));
    c = await connect(srv);
    r = await c.init(makeToken());
    assert.equal(r.header.status.code, srv.connections.at(-1).id % 2 ? 200 : 401);
    c.ws.close();
  });

  it('init-only answers init but never a message; hang answers nothing', async (t) => {
    const srv = await start({ mode: 'init-only' });
    t.after(() => srv.close());
    const c = await connect(srv);
    assert.equal((await c.init(makeToken())).header.status.code, 200);
    await assert.rejects(c.get('aim.us1.twilio.com', '/Client/v2/Configuration', {}, 300));
    assert.equal(srv.stats.requests[0].status, 'unanswered');
    srv.setMode('hang');
    await assert.rejects(c.init(makeToken(), 300));
    assert.equal(srv.stats.initRequests, 2);
    c.ws.close();
  });

  it('unknown methods, text frames and garbage are survived', async (t) => {
    const srv = await start();
    t.after(() => srv.close());
    const c = await connect(srv);
    c.ws.send('TWILSOCK V3.0 not a number\r\n');
    c.ws.send(Buffer.from([0, 1, 2, 3]));
    c.ws.send(encodeFrame({ method: 'reply', id: 'x' }));
    const r = await c.request({ method: 'ping' });
    assert.equal(r.header.status.code, 200);
    assert.equal((await c.request({ method: 'telemetry.v1', events: [] })).header.status.code, 200);
    assert.equal((await c.init(makeToken())).header.status.code, 200);
    assert.equal(srv.stats.unknownFrames, 3);
    assert.equal(srv.stats.acks, 1);
    c.ws.close();
  });

  it('update records the token; expireAll sends close 410 then closes', async (t) => {
    const srv = await start();
    t.after(() => srv.close());
    const c = await connect(srv);
    await c.init(makeToken({ identity: 'a' }));
    const t2 = makeToken({ identity: 'a' });
    assert.equal((await c.request({ method: 'update', token: t2 })).header.status.code, 200);
    assert.equal(srv.stats.updateTokenRequests, 1);
    assert.deepEqual(srv.stats.tokens.map((x) => x.kind), ['init', 'update']);
    assert.equal(srv.stats.tokens[1].token, t2);
    assert.equal(srv.expireAll(), 1);
    const close = await c.next((f) => f.header?.method === 'close');
    assert.equal(close.header.status.code, 410);
    assert.equal(await c.closed, 1000);
  });

  it('dropAll destroys sockets without a close frame', async (t) => {
    const srv = await start();
    t.after(() => srv.close());
    const c = await connect(srv);
    await c.init(makeToken());
    assert.equal(srv.stats.socketsOpen, 1);
    assert.equal(srv.dropAll(), 1);
    assert.equal(await c.closed, 1006);
    await srv.waitFor((s) => s.socketsOpen === 0, 2000, 'socket closed');
    assert.equal(srv.stats.socketsOpened, 1);
  });

  it('serves the client builds, extra static dirs, pages and HTTP routes; no path escape', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fts-'));
    fs.writeFileSync(path.join(dir, 'a.wasm'), Buffer.from([0, 97, 115, 109]));
    const got = [];
    const srv = await start({
      staticDirs: { '/pkg': dir },
      pages: { '/t.html': '<p>hi</p>' },
      httpRoutes: [{ method: 'POST', path: '/collect', handler(req, res, body) { got.push(body.toString()); res.writeHead(204); res.end(); } }],
    });
    t.after(async () => { await srv.close(); fs.rmSync(dir, { recursive: true, force: true }); });
    for (const v of Object.keys(CLIENT_BUILDS)) {
      const r = await fetch(srv.httpUrl + CLIENT_BUILDS[v]);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type'), /javascript/);
      assert.ok((await r.text()).length > 100000);
    }
    let r = await fetch(`${srv.httpUrl}/pkg/a.wasm`);
    assert.equal(r.headers.get('content-type'), 'application/wasm');
    assert.equal((await r.arrayBuffer()).byteLength, 4);
    r = await fetch(`${srv.httpUrl}/t.html`);
    assert.equal(await r.text(), '<p>hi</p>');
    r = await fetch(`${srv.httpUrl}/collect`, { method: 'POST', body: 'beacon' });
    assert.equal(r.status, 204);
    assert.deepEqual(got, ['beacon']);
    r = await fetch(`${srv.httpUrl}/pkg/%2e%2e/%2e%2e/etc/passwd`);
    assert.equal(r.status, 404);
    r = await fetch(`${srv.httpUrl}/nothing`);
    assert.equal(r.status, 404);
    r = await fetch(`${srv.httpUrl}/bad%E0%A4%A`);
    assert.equal(r.status, 400);
    srv.addHttpRoute({ path: '/boom', async handler() { throw new Error('boom'); } });
    r = await fetch(`${srv.httpUrl}/boom`);
    assert.equal(r.status, 500);
    srv.addPage('/late.html', 'late');
    assert.equal(await (await fetch(`${srv.httpUrl}/late.html`)).text(), 'late');
  });

  it('closedPort is a port nobody listens on', async () => {
    const port = await closedPort();
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v3/wsconnect`);
    await new Promise((resolve) => ws.once('error', resolve));
  });
});
