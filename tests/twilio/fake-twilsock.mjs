// A fake Twilsock server for driving the REAL `@twilio/conversations` client offline.
//
// The real client talks to Twilio over one WebSocket ("Twilsock", protocol V3.0).
// Point it here with `new Client(token, { Twilsock: { uri: server.wsUrl } })`.
// The same port also serves static files over plain HTTP (test pages, the two
// client builds, and any directories the caller adds), so a page loaded from
// `server.httpUrl` is same-origin and a secure context (127.0.0.1), which the
// 3.x client needs for `crypto.randomUUID()`.
//
//   import { start, CLIENT_BUILDS } from '../twilio/fake-twilsock.mjs';
//   const srv = await start({ mode: 'ok', identityForOpaque: 'opaque-user',
//                             staticDirs: { '/pkg': '/abs/path/to/pkg' } });
//   // page: <script src="/conversations/3.0.1/twilio-conversations.min.js">
//   srv.setMode('deny'); srv.dropAll(); srv.expireAll();
//   srv.stats.initRequests; srv.stats.tokens; await srv.close();
//
// Wire format (both directions, binary WebSocket frames; the client sets
// binaryType = "arraybuffer" and cannot parse text frames):
//   "TWILSOCK V3.0 <headerByteLength>\r\n<headerJSON>\r\n<payload>"
// with header.payload_size = byte length of <payload>.
//
// What the client sends and what we answer (read from the client source):
//   init      {id, token, continuation_token, metadata, registrations, tweaks, capabilities}
//             -> reply 200 {continuation_token, continuation_token_status, capabilities,
//                offline_storage, init_registrations, debug_info}   (mode ok / init-only)
//             -> reply 401 errorCode 20101 (mode deny), 20104 (expired token)
//   update    {id, token}  (client.updateToken while connected) -> reply 200 or 401
//   message   {id, active_grant, payload_type, http_request:{host,path,method,params,headers}}
//             + body payload: an HTTP request tunnelled over the socket
//             -> reply {status:{200}, http_status:{code,status}, http_headers} + JSON body
//   reply     acknowledgement of a frame we sent (notification, close) -> ignored
//   close     graceful client shutdown -> ignored (the client closes the socket)
//   telemetry.v1, put_notification_ctx, delete_notification_ctx -> reply 200
//   anything else -> reply 200, logged at debug level; never throws.
// Server-initiated:
//   close status 410 (token expired)  -> expireAll()
//   close status 401 / 308 (offload) / other codes -> closeAll(code)
//   client_update token_about_to_expire -> tokenAboutToExpireAll()
//   notification (message_type) -> notifyAll(type, payload)

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID, createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { EventEmitter } from 'node:events';
import { WebSocketServer } from 'ws';
import { decodeToken, tokenIdentity, TEST_API_KEY_SECRET, TEST_ACCOUNT_SID, TEST_CHAT_SERVICE_SID } from './jwt.mjs';

const require = createRequire(import.meta.url);

function pkgDir(name) {
  return path.dirname(require.resolve(`${name}/package.json`));
}

/** Directories of the two real client builds, keyed by version. */
export const CLIENT_BUILD_DIRS = {
  '3.0.1': path.join(pkgDir('@twilio/conversations'), 'builds'),
  '2.7.0': path.join(pkgDir('twilio-conversations-2'), 'builds'),
};

/** URL paths (on httpUrl) of the self-contained browser builds; each defines `Twilio.Conversations.Client`. */
export const CLIENT_BUILDS = {
  '3.0.1': '/conversations/3.0.1/twilio-conversations.min.js',
  '2.7.0': '/conversations/2.7.0/twilio-conversations.min.js',
};

export const MODES = ['ok', 'init-only', 'deny', 'deny-expired', 'hang'];

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.d.ts': 'text/plain; charset=utf-8',
};

const BLANK_HTML = '<!doctype html><html><head><meta charset="utf-8"><title>fake twilsock</title></head><body></body></html>';

// ---------------------------------------------------------------- framing

/** Encode one Twilsock frame as a Buffer. `payload` may be an object (JSON), a string or undefined. */
export function encodeFrame(header, payload) {
  let body = '';
  if (payload !== undefined && payload !== null) body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const bodyBuf = Buffer.from(body, 'utf8');
  const h = { ...header, payload_size: bodyBuf.length };
  if (bodyBuf.length > 0 && !h.payload_type) h.payload_type = 'application/json';
  const headerBuf = Buffer.from(JSON.stringify(h), 'utf8');
  return Buffer.concat([
    Buffer.from(`TWILSOCK V3.0 ${headerBuf.length}\r\n`, 'utf8'),
    headerBuf,
    Buffer.from('\r\n', 'utf8'),
    bodyBuf,
  ]);
}

/**
 * Decode one Twilsock frame. Returns { header, payload, raw } or { error } — never throws.
 * payload is parsed JSON when payload_type is absent or application/json, else a string.
 */
export function decodeFrame(data) {
  try {
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    const eol = buf.indexOf('\r\n');
    if (eol < 0) return { error: 'no magic line' };
    const magic = buf.subarray(0, eol).toString('utf8').split(' ');
    if (magic[0] !== 'TWILSOCK' || magic[1] !== 'V3.0') return { error: `bad magic ${magic.join(' ')}` };
    const hlen = Number(magic[2]);
    if (!Number.isFinite(hlen) || hlen < 0) return { error: 'bad header length' };
    const hstart = eol + 2;
    const header = JSON.parse(buf.subarray(hstart, hstart + hlen).toString('utf8'));
    const pstart = hstart + hlen + 2;
    const psize = Number(header.payload_size) || 0;
    let payload;
    if (psize > 0) {
      const text = buf.subarray(pstart, pstart + psize).toString('utf8');
      const type = header.payload_type;
      if (!type || String(type).startsWith('application/json')) {
        try { payload = JSON.parse(text); } catch { payload = text; }
      } else payload = text;
    }
    return { header, payload };
  } catch (e) {
    return { error: String(e && e.message || e) };
  }
}

// ---------------------------------------------------------------- helpers

function sidLike(prefix) {
  return prefix + randomUUID().replace(/-/g, '');
}

function httpStatusText(code) {
  return http.STATUS_CODES[code] || 'Unknown';
}

/** Answer of an HTTP-over-Twilsock request: { status, body, headers }. */
function httpAnswer(status, body, headers = {}) {
  return { status, body, headers };
}

function defaultConfiguration(identity, { host, serviceSid, myConversations, myUserInfo }) {
  const base = `https://${host}/Client/v2/Services/${serviceSid}`;
  return {
    options: {
      consumption_report_interval: 'PT5S',
      user_infos_to_subscribe: 100,
      reachability_enabled: false,
      http_cache_interval: 'PT5S',
      my_conversations_page_size: 50,
      media_attachments_count_limit: 10,
      media_attachment_size_limit_in_mb: 150,
      media_attachments_total_size_limit_in_mb: 150,
      email_histories_allowed_mime_types: [],
      email_bodies_allowed_mime_types: [],
    },
    // Names of the user's two Sync maps; the client opens both (see syncMaps in start()).
    sync_objects: { my_conversations: myConversations, my_user_info: myUserInfo },
    links: {
      my_conversations: `${base}/Users/Me/Conversations`,
      conversations: `${base}/Conversations`,
      users: `${base}/Users`,
      current_user: `${base}/Users/Me`,
      typing: `${base}/Conversations/%s/Typing`,
      media_service: `https://mcs.us1.twilio.com/v1/Services/${serviceSid}/Media`,
      media_set_service: `https://mcs.us1.twilio.com/v1/Services/${serviceSid}/MediaSet`,
      messages_receipts: `${base}/Conversations/%s/Messages/%s/Receipts`,
    },
    identity,
    url: `https://${host}/Client/v2/Configuration`,
  };
}

// ---------------------------------------------------------------- server

/**
 * Start a fake Twilsock + static HTTP server on 127.0.0.1 (free port).
 *
 * @param {object} [opts]
 * @param {'ok'|'init-only'|'deny'|'deny-expired'|'hang'|((conn) => string)} [opts.mode='ok']
 *    how `init` is answered; a function gets the connection ({id, token, ...}) at init time.
 *    ok: init 200 + Configuration 200 (connected, then initialized)
 *    init-only: init 200, `message` requests never answered (connected, never initialized)
 *    deny: init 401 errorCode 20101 (denied)
 *    deny-expired: init 401 errorCode 20104 (denied + tokenExpired)
 *    hang: socket accepted, init never answered
 * @param {string} [opts.identityForOpaque='opaque-user'] identity the Configuration answer
 *    carries for tokens without grants.identity (the real server knows it from elsewhere)
 * @param {boolean} [opts.verifyTokens=true] in ok/init-only mode, answer init/update with
 *    401 20101 for a token that is not a JWT signed by the test key, 401 20104 if expired
 * @param {Record<string,string>} [opts.staticDirs] URL prefix -> absolute directory
 * @param {Record<string,string|Buffer>} [opts.pages] URL path -> content served as-is
 * @param {Array<{method?:string, path:string|RegExp, handler:Function}>} [opts.httpRoutes]
 *    plain-HTTP routes: handler(req, res, bodyBuffer) (e.g. a beacon collector)
 * @param {'silent'|'info'|'debug'} [opts.logLevel='silent'] console logging
 * @returns {Promise<FakeTwilsock>}
 */
export async function start(opts = {}) {
  const events = new EventEmitter();
  events.setMaxListeners(100);
  const logLevel = opts.logLevel ?? process.env.FAKE_TWILSOCK_LOG ?? 'silent';
  const log = {
    debug: (...a) => { if (logLevel === 'debug') console.log('[fake-twilsock]', ...a); },
    info: (...a) => { if (logLevel === 'debug' || logLevel === 'info') console.log('[fake-twilsock]', ...a); },
  };

  let mode = opts.mode ?? 'ok';
  let identityForOpaque = opts.identityForOpaque ?? 'opaque-user';
  const verifyTokens = opts.verifyTokens ?? true;
  const staticDirs = { ...(opts.staticDirs ?? {}) };
  staticDirs['/conversations/3.0.1'] ??= CLIENT_BUILD_DIRS['3.0.1'];
  staticDirs['/conversations/2.7.0'] ??= CLIENT_BUILD_DIRS['2.7.0'];
  const pages = { '/': BLANK_HTML, '/blank.html': BLANK_HTML, '/favicon.ico': '', ...(opts.pages ?? {}) };
  const httpRoutes = [...(opts.httpRoutes ?? [])];
  /** HTTP-over-Twilsock routes, checked before the built-in ones. */
  const tunnelRoutes = [];

  const stats = {
    socketsOpened: 0,
    socketsOpen: 0,
    socketsClosedByClient: 0,
    initRequests: 0,
    updateTokenRequests: 0,
    configurationRequests: 0,
    messageRequests: 0,
    clientCloseFrames: 0,
    acks: 0,
    telemetryFrames: 0,
    unknownFrames: 0,
    /** every token received, in order: { kind: 'init'|'update', token, identity, socket } */
    tokens: [],
    /** continuation_token sent by the client in each init (null on a first connect) */
    continuationTokens: [],
    /** every frame method received, in order: { socket, method, path? } */
    frames: [],
    /** every HTTP-over-socket request: { socket, method, host, path, params, status } */
    requests: [],
    /** Sync subscription requests: { socket, action, objects } */
    syncSubscriptions: [],
    /** plain HTTP requests to the static server: { method, url, status } */
    http: [],
    /** every init answered 200 (the client was let connect): { identity, socket, at } */
    accepted: [],
  };

  const conns = new Set();
  let nextConnId = 1;

  function currentMode(conn) {
    return typeof mode === 'function' ? mode(conn) : mode;
  }

  function identityOf(conn) {
    return tokenIdentity(conn.token) ?? identityForOpaque;
  }

  function send(conn, header, payload) {
    if (conn.ws.readyState !== 1) return false;
    try {
      conn.ws.send(encodeFrame(header, payload), { binary: true });
      return true;
    } catch (e) {
      log.debug('send failed', e.message);
      return false;
    }
  }

  function reply(conn, id, status = { code: 200, status: 'OK' }, extra = {}, payload) {
    return send(conn, { method: 'reply', id, status, ...extra }, payload);
  }

  /** Token check as the real service does it: 401 20101 invalid, 401 20104 expired. */
  function tokenProblem(token) {
    if (!verifyTokens) return null;
    const d = decodeToken(token, TEST_API_KEY_SECRET);
    if (!d || !d.valid || d.header?.cty !== 'twilio-fpa;v=1') {
      return { code: 401, status: 'UNAUTHORIZED', description: 'Invalid Access Token', errorCode: 20101 };
    }
    const now = Math.floor(Date.now() / 1000);
    if (typeof d.payload.exp !== 'number' || d.payload.exp <= now) {
      return { code: 401, status: 'UNAUTHORIZED', description: 'Access Token expired or expiration date invalid', errorCode: 20104 };
    }
    return null;
  }

  function onInit(conn, h) {
    stats.initRequests++;
    conn.token = h.token;
    conn.inits++;
    stats.tokens.push({ kind: 'init', token: h.token, identity: tokenIdentity(h.token), socket: conn.id });
    stats.continuationTokens.push(h.continuation_token ?? null);
    conn.initHeader = h;
    const m = currentMode(conn);
    conn.mode = m;
    events.emit('init', conn, h);
    if (m === 'hang') return;
    if (m === 'deny') {
      reply(conn, h.id, { code: 401, status: 'UNAUTHORIZED', description: 'Invalid Access Token', errorCode: 20101 });
      return;
    }
    if (m === 'deny-expired') {
      reply(conn, h.id, { code: 401, status: 'UNAUTHORIZED', description: 'Access Token expired or expiration date invalid', errorCode: 20104 });
      return;
    }
    const problem = tokenProblem(h.token);
    if (problem) {
      reply(conn, h.id, problem);
      return;
    }
    // ok / init-only: accept.
    stats.accepted.push({ identity: identityOf(conn), socket: conn.id, at: Date.now() });
    const wanted = Array.isArray(h.capabilities) ? h.capabilities : [];
    const products = new Set((h.registrations || []).map((r) => r && r.product).filter(Boolean));
    products.add('ip_messaging');
    const offline = {};
    for (const p of products) offline[p] = { storage_id: sidLike('ST') };
    conn.continuationToken = `CT${randomUUID()}`;
    reply(conn, h.id, { code: 200, status: 'OK' }, {
      continuation_token: conn.continuationToken,
      continuation_token_status: h.continuation_token
        ? { reissued: false }
        : { reissued: true, reissue_reason: 'NO_TOKEN', reissue_message: 'Continuation token is not provided' },
      capabilities: wanted.filter((c) => ['client_update', 'offline_storage', 'telemetry.v1'].includes(c)),
      offline_storage: offline,
      init_registrations: h.registrations || [],
      debug_info: { instance_id: 'fake-twilsock', instance_region: 'local' },
    });
  }

  function onUpdate(conn, h) {
    stats.updateTokenRequests++;
    stats.tokens.push({ kind: 'update', token: h.token, identity: tokenIdentity(h.token), socket: conn.id });
    events.emit('update', conn, h);
    const m = currentMode(conn);
    if (m === 'hang') return;
    if (m === 'deny') {
      reply(conn, h.id, { code: 401, status: 'UNAUTHORIZED', description: 'Invalid Access Token', errorCode: 20101 });
      return;
    }
    const problem = tokenProblem(h.token);
    if (problem) {
      reply(conn, h.id, problem);
      return;
    }
    conn.token = h.token;
    reply(conn, h.id);
  }

  // ---- minimal Sync (cds) emulation: the client opens two maps per user, reads
  // two items of the user-info map and subscribes to both maps.
  const syncMaps = new Map(); // sid -> { sid, uniqueName, items: Map<key, data>, host }
  function userMaps(identity) {
    const h = createHash('sha1').update(String(identity)).digest('hex').slice(0, 32);
    const conv = `MP${h}`.slice(0, 34);
    const info = `MP${h.split('').reverse().join('')}`.slice(0, 34);
    if (!syncMaps.has(conv)) syncMaps.set(conv, { sid: conv, uniqueName: `${identity}.my_conversations`, items: new Map() });
    if (!syncMaps.has(info)) {
      syncMaps.set(info, {
        sid: info,
        uniqueName: `${identity}.user_info`,
        items: new Map([
          ['friendlyName', { value: null }],
          ['attributes', { value: '{}' }],
          ['reachability', { online: null, notifiable: null }],
        ]),
      });
    }
    return { myConversations: conv, myUserInfo: info };
  }
  const isoNow = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  function syncItem(host, map, key) {
    return {
      key,
      map_sid: map.sid,
      url: `https://${host}/v3/Maps/${map.sid}/Items/${encodeURIComponent(key)}`,
      revision: '0',
      last_event_id: 0,
      date_updated: isoNow(),
      date_expires: null,
      data: map.items.get(key),
    };
  }
  function syncMapDescriptor(host, map, includeItems) {
    const d = {
      sid: map.sid,
      unique_name: map.uniqueName,
      url: `https://${host}/v3/Maps/${map.sid}`,
      links: { items: `https://${host}/v3/Maps/${map.sid}/Items` },
      revision: '0',
      last_event_id: 0,
      date_updated: isoNow(),
      date_expires: null,
    };
    if (includeItems) d.items = [...map.items.keys()].map((k) => syncItem(host, map, k));
    return d;
  }
  function findSyncMap(idOrName) {
    if (syncMaps.has(idOrName)) return syncMaps.get(idOrName);
    for (const m of syncMaps.values()) if (m.uniqueName === idOrName) return m;
    return null;
  }
  const SYNC_NOT_FOUND = { status: 404, message: 'The requested resource was not found', code: 54007 };
  function syncAnswer(conn, req) {
    let m;
    if (req.method === 'GET' && (m = req.path.match(/^\/v3\/Maps\/([^/]+)$/))) {
      const map = findSyncMap(decodeURIComponent(m[1]));
      if (!map) return httpAnswer(404, SYNC_NOT_FOUND);
      return httpAnswer(200, syncMapDescriptor(req.host, map, req.params.Include === 'items'));
    }
    if (req.method === 'GET' && (m = req.path.match(/^\/v3\/Maps\/([^/]+)\/Items$/))) {
      const map = findSyncMap(decodeURIComponent(m[1]));
      if (!map) return httpAnswer(404, SYNC_NOT_FOUND);
      let keys = [...map.items.keys()];
      if (req.params.Key !== undefined) keys = keys.filter((k) => k === decodeURIComponent(req.params.Key));
      return httpAnswer(200, { items: keys.map((k) => syncItem(req.host, map, k)), meta: { previous_token: null, next_token: null } });
    }
    if (req.method === 'GET' && (m = req.path.match(/^\/v3\/Maps\/([^/]+)\/Items\/([^/]+)$/))) {
      const map = findSyncMap(decodeURIComponent(m[1]));
      const key = decodeURIComponent(m[2]);
      if (!map || !map.items.has(key)) return httpAnswer(404, { status: 404, message: 'Map Item not found', code: 54201 });
      return httpAnswer(200, syncItem(req.host, map, key));
    }
    if (req.method === 'POST' && req.path === '/v4/Subscriptions') {
      const body = typeof req.body === 'object' && req.body ? req.body : {};
      const action = body.action;
      const requests = Array.isArray(body.requests) ? body.requests : [];
      stats.syncSubscriptions.push({ socket: conn.id, action, objects: requests.map((r) => r.object_sid) });
      // The service confirms asynchronously with a twilio.sync.event notification.
      setTimeout(() => {
        if (!conns.has(conn) || requests.length === 0) return;
        send(conn, { method: 'notification', id: `TM${randomUUID().replace(/-/g, '')}`, message_type: 'twilio.sync.event' }, {
          event_type: action === 'cancel' ? 'subscription_canceled' : 'subscription_established',
          correlation_id: body.correlation_id,
          events: requests.map((r) => ({
            object_sid: r.object_sid,
            object_type: r.object_type,
            replay_status: 'completed',
            last_event_id: r.last_event_id ?? 0,
          })),
        });
      }, 10).unref();
      return httpAnswer(200, { estimated_delivery_in_ms: 5000, max_batch_size: 100, ttl_in_s: -1 });
    }
    return null;
  }

  function tunnelAnswer(conn, req) {
    for (const r of tunnelRoutes) {
      if (r.method && r.method !== req.method) continue;
      if (r.host && !(r.host instanceof RegExp ? r.host.test(req.host) : r.host === req.host)) continue;
      if (!(r.path instanceof RegExp ? r.path.test(req.path) : r.path === req.path)) continue;
      return r.handler(req, conn);
    }
    if (req.method === 'GET' && /\/Client\/v2\/Configuration$/.test(req.path)) {
      stats.configurationRequests++;
      const serviceSid = decodeToken(conn.token, false)?.payload?.grants?.chat?.service_sid ?? TEST_CHAT_SERVICE_SID;
      const identity = identityOf(conn);
      return httpAnswer(200, defaultConfiguration(identity, { host: req.host, serviceSid, ...userMaps(identity) }));
    }
    if (req.method === 'GET' && /\/Client\/v2\/Services\/[^/]+\/Users\/Me\/Conversations$/.test(req.path)) {
      return httpAnswer(200, { conversations: [], meta: { page_size: 50, previous_token: null, next_token: null } });
    }
    if (/^cds\./.test(req.host) || /^\/v[34]\/(Maps|Lists|Documents|Streams|Subscriptions|Insights)\b/.test(req.path)) {
      const a = syncAnswer(conn, req);
      if (a) return a;
    }
    return httpAnswer(404, { status: 404, message: 'The requested resource was not found', code: 20404 });
  }

  function onMessage(conn, h, payload) {
    stats.messageRequests++;
    const hr = h.http_request || {};
    const req = {
      method: String(hr.method || 'GET').toUpperCase(),
      host: hr.host || '',
      path: hr.path || '',
      params: hr.params || {},
      headers: hr.headers || {},
      grant: h.active_grant,
      body: payload,
    };
    const rec = { socket: conn.id, method: req.method, host: req.host, path: req.path, params: req.params, status: null };
    stats.requests.push(rec);
    events.emit('message', conn, req);
    if (conn.mode === 'init-only' || conn.mode === 'hang') {
      rec.status = 'unanswered';
      return;
    }
    const answer = (ans) => {
      if (ans === undefined || ans === null) { rec.status = 'unanswered'; return; }
      const code = Number(ans.status) || 200;
      rec.status = code;
      log.debug(`message ${req.method} ${req.host}${req.path} -> ${code}`);
      reply(conn, h.id, { code: 200, status: 'OK' }, {
        http_status: { code, status: httpStatusText(code) },
        http_headers: { 'Content-Type': 'application/json', ...(ans.headers || {}) },
        payload_type: 'application/json',
      }, ans.body ?? {});
    };
    const failed = (e) => {
      log.info('route handler threw', e);
      return httpAnswer(500, { status: 500, message: String(e && e.message || e) });
    };
    let ans;
    try {
      ans = tunnelAnswer(conn, req);
    } catch (e) {
      ans = failed(e);
    }
    // Route handlers may answer later (return a promise).
    if (ans && typeof ans.then === 'function') ans.then(answer, (e) => answer(failed(e)));
    else answer(ans);
  }

  function onFrame(conn, data) {
    const f = decodeFrame(data);
    if (f.error) {
      stats.unknownFrames++;
      log.debug('undecodable frame:', f.error);
      return;
    }
    const h = f.header || {};
    const method = h.method;
    const rec = { socket: conn.id, method };
    if (method === 'message') rec.path = h.http_request?.path;
    stats.frames.push(rec);
    events.emit('frame', conn, h, f.payload);
    switch (method) {
      case 'init': return onInit(conn, h);
      case 'update': return onUpdate(conn, h);
      case 'message': return onMessage(conn, h, f.payload);
      case 'reply': stats.acks++; return;
      case 'close': stats.clientCloseFrames++; events.emit('clientClose', conn); return;
      case 'telemetry.v1': stats.telemetryFrames++; if (h.id) reply(conn, h.id); return;
      case 'put_notification_ctx':
      case 'delete_notification_ctx':
        if (h.id) reply(conn, h.id);
        return;
      default:
        stats.unknownFrames++;
        log.debug('unknown method', method);
        if (h.id) reply(conn, h.id);
    }
  }

  // ---------------------------------------------------------- static HTTP

  function serveFile(res, file, method) {
    fs.stat(file, (err, st) => {
      if (err || !st.isFile()) { res.writeHead(404); res.end('not found'); return; }
      const ext = file.endsWith('.d.ts') ? '.d.ts' : path.extname(file);
      res.writeHead(200, {
        'Content-Type': MIME[ext] || 'application/octet-stream',
        'Content-Length': st.size,
        'Cache-Control': 'no-store',
      });
      if (method === 'HEAD') { res.end(); return; }
      fs.createReadStream(file).pipe(res);
    });
  }

  function onHttp(req, res) {
    let p;
    try {
      p = decodeURIComponent(new URL(req.url, 'http://127.0.0.1').pathname);
    } catch {
      res.writeHead(400);
      res.end('bad request');
      return;
    }
    const rec = { method: req.method, url: req.url, status: null };
    stats.http.push(rec);
    res.on('finish', () => { rec.status = res.statusCode; });
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('error', () => {});
    req.on('end', () => {
      try {
        for (const r of httpRoutes) {
          if (r.method && r.method !== req.method) continue;
          if (r.path instanceof RegExp ? r.path.test(p) : r.path === p) {
            Promise.resolve()
              .then(() => r.handler(req, res, Buffer.concat(chunks)))
              .catch((e) => {
                log.info('http route error', e);
                try { if (!res.headersSent) res.writeHead(500); res.end(); } catch {}
              });
            return;
          }
        }
        if (Object.prototype.hasOwnProperty.call(pages, p)) {
          const body = pages[p];
          const ext = path.extname(p) || '.html';
          res.writeHead(200, { 'Content-Type': MIME[ext] || 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : body);
          return;
        }
        const prefixes = Object.keys(staticDirs).sort((a, b) => b.length - a.length);
        for (const prefix of prefixes) {
          const pre = prefix.endsWith('/') ? prefix : prefix + '/';
          if (!p.startsWith(pre)) continue;
          const root = path.resolve(staticDirs[prefix]);
          const file = path.resolve(root, '.' + p.slice(pre.length - 1));
          if (file !== root && !file.startsWith(root + path.sep)) break;
          serveFile(res, file, req.method);
          return;
        }
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not found');
      } catch (e) {
        log.info('http handler error', e);
        try { res.writeHead(500); res.end(); } catch {}
      }
    });
  }

  // ---------------------------------------------------------- wiring

  const server = http.createServer(onHttp);
  const sockets = new Set(); // raw TCP sockets, to close everything fast
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  const wss = new WebSocketServer({ server });
  wss.on('error', (e) => log.debug('wss error', e.message));
  wss.on('connection', (ws, req) => {
    const conn = {
      id: nextConnId++,
      ws,
      path: req.url,
      token: null,
      mode: null,
      inits: 0,
      openedAt: Date.now(),
      closedAt: null,
      closeCode: null,
      continuationToken: null,
    };
    conns.add(conn);
    stats.socketsOpened++;
    stats.socketsOpen++;
    log.debug(`socket ${conn.id} opened ${req.url}`);
    events.emit('connection', conn);
    ws.on('message', (data) => {
      try { onFrame(conn, data); } catch (e) { log.info('frame handler error', e); }
    });
    ws.on('error', (e) => log.debug(`socket ${conn.id} error`, e.message));
    ws.on('close', (code) => {
      conns.delete(conn);
      stats.socketsOpen--;
      conn.closedAt = Date.now();
      conn.closeCode = code;
      if (!conn.serverClosed) stats.socketsClosedByClient++;
      log.debug(`socket ${conn.id} closed ${code}`);
      events.emit('socketClosed', conn, code);
    });
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const port = server.address().port;
  let closed = false;

  /** @typedef {ReturnType<typeof api>} FakeTwilsock */
  const api = {
    port,
    /** ws URL to pass as `Twilsock: { uri }` */
    wsUrl: `ws://127.0.0.1:${port}/v3/wsconnect`,
    /** origin of the static server, no trailing slash */
    httpUrl: `http://127.0.0.1:${port}`,
    stats,
    events,
    /** open connections (objects with id, token, mode, ws, ...) */
    get connections() { return [...conns]; },
    get mode() { return mode; },
    /** set the mode for inits from now on (string or (conn) => string) */
    setMode(m) {
      if (typeof m !== 'function' && !MODES.includes(m)) throw new Error(`unknown mode ${m}`);
      mode = m;
    },
    setIdentityForOpaque(id) { identityForOpaque = id; },
    /** serve another directory: addStaticDir('/pkg', '/abs/dir') */
    addStaticDir(prefix, dir) { staticDirs[prefix] = dir; },
    /** serve fixed content at a path */
    addPage(p, content) { pages[p] = content; },
    /** plain HTTP route: handler(req, res, bodyBuffer) */
    addHttpRoute(route) { httpRoutes.unshift(route); },
    /**
     * HTTP-over-Twilsock route, checked before the built-ins:
     * { method?, host?, path: string|RegExp, handler(req, conn) -> {status, body, headers?} | null (no answer) | Promise of those }
     * req = { method, host, path, params, headers, grant, body }
     */
    addTunnelRoute(route) { tunnelRoutes.unshift(route); },
    /** network loss: destroy every socket without a close frame (client sees code 1006) */
    dropAll() {
      let n = 0;
      for (const c of conns) { c.serverClosed = true; c.ws.terminate(); n++; }
      return n;
    },
    /** the real server's "token expired" close: close frame with status 410, then socket close */
    expireAll() {
      return api.closeAll(410, 'TOKEN_EXPIRED', 'Token expired', 20104);
    },
    /** send a server close frame with any status code (401, 308 offload, 410, 406, ...) */
    closeAll(code, status = httpStatusText(code), description = status, errorCode = undefined, body = undefined) {
      let n = 0;
      for (const c of conns) {
        const st = { code, status, description };
        if (errorCode !== undefined) st.errorCode = errorCode;
        send(c, { method: 'close', id: `TM${randomUUID().replace(/-/g, '')}`, status: st }, body);
        c.serverClosed = true;
        // The client closes its side on its own; close ours soon after, like the service does.
        const ws = c.ws;
        setTimeout(() => { try { ws.close(1000); } catch {} }, 200).unref();
        n++;
      }
      return n;
    },
    /** push a client_update token_about_to_expire (-> client tokenAboutToExpire) */
    tokenAboutToExpireAll() {
      for (const c of conns) send(c, { method: 'client_update', id: `TM${randomUUID().replace(/-/g, '')}`, client_update_type: 'token_about_to_expire' });
    },
    /** push a notification frame */
    notifyAll(messageType, payload) {
      for (const c of conns) send(c, { method: 'notification', id: `TM${randomUUID().replace(/-/g, '')}`, message_type: messageType }, payload);
    },
    /** resolve when pred(stats) is true; reject after timeoutMs */
    waitFor(pred, timeoutMs = 5000, what = 'condition') {
      return new Promise((resolve, reject) => {
        const t0 = Date.now();
        const tick = () => {
          let ok = false;
          try { ok = pred(stats, api); } catch {}
          if (ok) return resolve(stats);
          if (Date.now() - t0 > timeoutMs) return reject(new Error(`fake-twilsock: timed out waiting for ${what}`));
          setTimeout(tick, 20);
        };
        tick();
      });
    },
    /** stop everything; resolves when the port is closed */
    async close() {
      if (closed) return;
      closed = true;
      for (const c of conns) { try { c.ws.terminate(); } catch {} }
      wss.close();
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
      events.removeAllListeners();
    },
  };
  return api;
}

/** A port nobody listens on (bound then released), for "unreachable" cases. */
export async function closedPort() {
  const s = http.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

export { TEST_ACCOUNT_SID };
