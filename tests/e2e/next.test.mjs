// README's Next.js (App Router) recipe in a real Next 16 app (tests/apps/next, TypeScript,
// its own package.json and lock, installed here when missing) with mau-beacon from the
// packed tarball: built once with Turbopack and once with webpack, each served by
// `next start`, plus `next dev` (StrictMode, as App Router runs it). One Chromium, the real
// Conversations client against the fake Twilio server on loopback, the real collector
// behind next.config.ts's same-site rewrite. Prints the gzip size of what mau-beacon adds
// to a page.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import zlib from "node:zlib";

import { ROOT as root, buildCollector, startCollector, utcMonth } from "../support/collector.mjs";
import { installAppDeps, packInto, unpackInto } from "../support/pack.mjs";
import { start as startTwilsock } from "../twilio/fake-twilsock.mjs";
import { launchBrowser } from "../twilio/browser.mjs";
import { makeToken } from "../twilio/jwt.mjs";

const dir = path.join(root, "tests/apps/next");
const NEXT = path.join(dir, "node_modules/next/dist/bin/next");
const BUILDS = { turbopack: ["build"], webpack: ["build", "--webpack"] };
const servers = {};
let tmp, collector, srv, browser, env;

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** `next start`/`next dev` on a free port, in its own process group; resolves once it answers. */
async function serve(name, args, distDir) {
  const port = await freePort();
  const t = Date.now();
  const child = spawn(process.execPath, [NEXT, ...args, "-H", "127.0.0.1", "-p", String(port)], {
    cwd: dir, env: { ...env, NEXT_DIST_DIR: distDir }, detached: true, stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout.on("data", (c) => (log += c));
  child.stderr.on("data", (c) => (log += c));
  const url = `http://127.0.0.1:${port}`;
  servers[name] = { url, child, log: () => log };
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited: ${log}`);
    if (Date.now() - t > 120_000) throw new Error(`${name} not up in 120 s: ${log}`);
    if (await fetch(`${url}/lazy`).then((r) => r.ok, () => false)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  console.log(`${name} up: ${Date.now() - t} ms`);
  return servers[name];
}

before(async () => {
  if (!fs.existsSync(path.join(root, "pkg/web/mau_beacon.js"))) {
    execFileSync("bash", ["scripts/build.sh"], { cwd: root, stdio: "inherit" });
  }
  buildCollector();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mau-next-"));
  installAppDeps(dir);
  unpackInto(dir, packInto(tmp));
  // Same-site collector: the rewrite is fixed at build time, so the collector comes first.
  collector = await startCollector({ db: path.join(tmp, "collector.sqlite") });
  srv = await startTwilsock({ mode: "ok" });
  const twilsock = new URL(srv.wsUrl);
  env = {
    ...process.env, NEXT_TELEMETRY_DISABLED: "1", MAU_COLLECTOR: collector.url,
    MAU_TEST_CONNECT_SRC: `ws://${twilsock.host} http://${twilsock.host}`,
  };
  // From scratch: webpack's cache takes a package in node_modules as unchanged while its
  // version is, so it would keep serving the previous tarball's files.
  for (const name of [...Object.keys(BUILDS), "dev"]) fs.rmSync(path.join(dir, `.next-${name}`), { recursive: true, force: true });
  for (const [name, args] of Object.entries(BUILDS)) {
    const t = Date.now();
    execFileSync(process.execPath, [NEXT, ...args], { cwd: dir, env: { ...env, NEXT_DIST_DIR: `.next-${name}` }, stdio: "pipe" });
    console.log(`next ${name} build: ${Date.now() - t} ms`);
    await serve(name, ["start"], `.next-${name}`);
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const s of Object.values(servers)) {
    try {
      process.kill(-s.child.pid, "SIGTERM");
    } catch {}
  }
  await srv?.close();
  await collector?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const rows = async (identity) =>
  (await collector.read(`/v1/months/${utcMonth()}/identities?format=json`)).filter((r) => r.identity === identity);

/** Exactly one stored beacon for `identity`: one row, one connect. */
async function oneBeacon(identity) {
  const found = await rows(identity);
  assert.equal(found.length, 1, "one identity row");
  assert.equal(found[0].connects, 1, "one connect stored");
}

const until = (page, selector, text, timeout = 20_000) =>
  page.waitForFunction(([s, t]) => document.querySelector(s)?.textContent === t, [selector, text], { timeout, polling: 50 });

/** Opens `route` on `server`; the page, its console, errors and the scripts/wasm it fetched. */
async function open(server, route) {
  const identity = `next-${randomBytes(4).toString("hex")}`;
  const context = await browser.newContext();
  const page = await context.newPage();
  const logs = [];
  const errors = [];
  const fetched = [];
  page.on("console", (m) => logs.push({ type: m.type(), text: m.text() }));
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("response", (r) => {
    const u = new URL(r.url());
    if (u.pathname.endsWith(".js") || u.pathname.endsWith(".wasm")) fetched.push(r);
  });
  const q = new URLSearchParams({ twilsock: srv.wsUrl, token: makeToken({ identity }) });
  const response = await page.goto(`${server.url}${route}?${q}`);
  const fail = (e) => new Error(`${e.message}\npage errors: ${errors.join("; ")}\nconsole: ${logs.map((m) => `${m.type}: ${m.text}`).join("\n")}`);
  return { identity, context, page, logs, errors, fetched, response, fail };
}

/** Opens `route`; resolves once its client connected and its beacon was delivered. */
async function openDelivered(server, route, timeout) {
  const app = await open(server, route);
  try {
    await until(app.page, "#state", "connected", timeout);
    await until(app.page, "#delivered", "1");
  } catch (e) {
    throw app.fail(e);
  }
  return app;
}

// Every warning and error in the console, Chromium's own included (a 404, a CSP refusal).
const problems = (app) => app.logs.filter((m) => m.type === "warning" || m.type === "error");

// Strings only mau-beacon's code has: the wasm-bindgen glue, the package entry, the hooks.
const MARKERS = ["__wbg_ptr", "wasm_unavailable", "mau-beacon.react.trackers"];

/** gzip bytes of the fetched files that carry mau-beacon: its .wasm and the whole chunks
 * holding its code (an upper bound where a chunk holds other modules too). */
async function mauBytes(fetched) {
  let total = 0;
  const files = [];
  for (const r of fetched) {
    const body = await r.body().catch(() => undefined);
    if (!body) continue;
    const isWasm = new URL(r.url()).pathname.endsWith(".wasm");
    if (!isWasm && !MARKERS.some((m) => body.includes(m))) continue;
    const gz = zlib.gzipSync(body, { level: 9 }).length;
    total += gz;
    files.push(`${path.basename(new URL(r.url()).pathname)} ${gz}`);
  }
  return { total, files };
}

for (const name of Object.keys(BUILDS)) {
  describe(`Next.js 16 App Router, ${name} build, next start`, () => {
    test("renders, one client, one socket, one beacon through the same-site rewrite", async () => {
      const opened = srv.stats.socketsOpened;
      const app = await openDelivered(servers[name], "/");
      const size = await mauBytes(app.fetched);
      await app.context.close();
      assert.deepEqual(app.errors, []);
      assert.deepEqual(problems(app), []);
      assert.equal(srv.stats.socketsOpened - opened, 1, "one socket");
      await oneBeacon(app.identity);
      console.log(`${name}: mau-beacon on the page, gzip: ${size.total} bytes (${size.files.join(", ")})`);
    });

    test("the lazy route: no socket before the click, then one; route changes keep one tracker", async () => {
      const app = await open(servers[name], "/lazy");
      try {
        await app.page.waitForFunction(() => window.tracker, null, { timeout: 20_000 });
        assert.equal(await app.page.evaluate(() => window.tracker.ready), true);
        const opened = srv.stats.socketsOpened;
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(srv.stats.socketsOpened, opened, "no socket before the click");
        await app.page.evaluate(() => (window.firstTracker = window.tracker));
        // Away and back by client-side navigation: the layout's provider stays, the page remounts.
        await app.page.click("#to-home");
        await until(app.page, "#state", "connected");
        await app.page.click("#to-lazy");
        await until(app.page, "#lazy", "idle");
        await app.page.click("#open");
        await until(app.page, "#state", "connected");
        assert.equal(await app.page.evaluate(() => window.tracker === window.firstTracker), true, "one tracker");
        assert.equal(srv.stats.socketsOpened - opened, 2, "the home page's client, then the click's");
      } catch (e) {
        throw app.fail(e);
      }
      await app.context.close();
      assert.deepEqual(app.errors, []);
      assert.deepEqual(problems(app), []);
    });

    test("under README's Content-Security-Policy (nonce from proxy.ts, 'strict-dynamic', 'wasm-unsafe-eval')", async () => {
      const app = await openDelivered(servers[name], "/csp");
      const csp = app.response.headers()["content-security-policy"];
      const stats = await app.page.evaluate(() => window.tracker.stats());
      await app.context.close();
      assert.match(csp, /script-src 'self' 'nonce-[^']+' 'strict-dynamic' 'wasm-unsafe-eval'/);
      assert.deepEqual(app.errors, []);
      assert.deepEqual(problems(app), [], "no CSP violation, no warning");
      assert.equal(stats.wasmSource, "url");
      await oneBeacon(app.identity);
    });
  });
}

describe("Next.js 16 next dev (Turbopack, StrictMode)", () => {
  test("useLazyClient: one client, one socket, one beacon, no warning", async () => {
    const t = Date.now();
    const dev = await serve("dev", ["dev"], ".next-dev");
    const opened = srv.stats.socketsOpened;
    const inits = srv.stats.initRequests;
    const app = await openDelivered(dev, "/", 60_000);
    await new Promise((r) => setTimeout(r, 300));
    await app.context.close();
    console.log(`next dev, first page: ${Date.now() - t} ms`);
    assert.deepEqual(app.errors, []);
    assert.deepEqual(problems(app).filter((m) => !/Download the React DevTools|\[HMR\]|\[Fast Refresh\]/.test(m.text)), []);
    assert.equal(srv.stats.socketsOpened - opened, 1, "one socket under StrictMode");
    assert.equal(srv.stats.initRequests - inits, 1, "one client");
    await oneBeacon(app.identity);
  });

  test("useMauWatch on a client the app keeps: one watch after StrictMode's remount, no error", async () => {
    const app = await openDelivered(servers.dev, "/watch", 60_000);
    // The app's own listener and the one watch's.
    const listeners = await app.page.evaluate(() => window.client.listenerCount("connectionStateChanged"));
    const seen = await app.page.evaluate(() => document.querySelector("#seen").textContent);
    await app.context.close();
    assert.equal(seen, "1", "one connect seen: the remount kept the watch, it did not watch again");
    assert.deepEqual(app.errors, []);
    assert.deepEqual(problems(app).filter((m) => !/Download the React DevTools|\[HMR\]|\[Fast Refresh\]/.test(m.text)), []);
    assert.equal(listeners, 2);
    await oneBeacon(app.identity);
  });
});
