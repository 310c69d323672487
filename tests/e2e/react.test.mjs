// README's React recipe (mau-beacon/react's provider and hooks, under StrictMode) in two real
// apps built from the installed tarball, one with webpack 5 and one with Vite
// (tests/e2e/react-app). Each must render and run its chat whatever happens to mau-beacon's
// wasm: blocked (the inlined copy's chunk takes over; both blocked, one console warning), or
// refused by a Content-Security-Policy without 'wasm-unsafe-eval' (one console warning, no
// error thrown), and deliver a beacon of the real client's connect to the real collector
// when the wasm loads; the lazy path opens no socket before the click.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";

import { build as viteBuild } from "vite";
import webpack from "webpack";

import { ROOT as root, buildCollector, startCollector, utcMonth } from "../support/collector.mjs";
import { installPacked } from "../support/pack.mjs";
import { serveStatic } from "../support/serve.mjs";
import { start as startTwilsock } from "../twilio/fake-twilsock.mjs";
import { launchBrowser } from "../twilio/browser.mjs";
import { makeToken } from "../twilio/jwt.mjs";

const CSP = "script-src 'self'";
const builds = {};
let tmp, workDir, srv, collector, browser;

before(async () => {
  if (!fs.existsSync(path.join(root, "pkg/web/mau_beacon.js"))) {
    execFileSync("bash", ["scripts/build.sh"], { cwd: root, stdio: "inherit" });
  }
  buildCollector();
  // Under the repo, so React, the Conversations client and the bundlers resolve from its
  // node_modules; `mau-beacon` comes from the app's own node_modules, i.e. the tarball.
  workDir = path.join(root, "target", `react-app-${randomBytes(4).toString("hex")}`);
  ({ dir: tmp } = installPacked(workDir, { src: path.join(root, "tests/e2e/react-app"), pkg: { private: true, type: "module" } }));

  let t = Date.now();
  const config = (await import(path.join(workDir, "webpack.config.cjs"))).default;
  const stats = await promisify(webpack)(config);
  assert.ok(!stats.hasErrors(), stats.toString("errors-only"));
  const webpackDir = path.join(workDir, "dist");
  fs.writeFileSync(path.join(webpackDir, "index.html"), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><div id="root"></div><script src="main.js"></script>');
  const wasmAssets = Object.keys(stats.compilation.assets).filter((f) => f.endsWith(".wasm"));
  console.log(`webpack build: ${Date.now() - t} ms, wasm assets ${wasmAssets.join(", ")}`);
  t = Date.now();
  const viteDir = path.join(workDir, "dist-vite");
  await viteBuild({ root: workDir, logLevel: "error", build: { outDir: viteDir } });
  console.log(`vite build: ${Date.now() - t} ms`);

  // The inlined wasm's chunk: the one file that inflates.
  const inlineChunk = (dir) => fs.readdirSync(dir, { recursive: true }).map(String).find((f) => f.endsWith(".js") && fs.readFileSync(path.join(dir, f), "utf8").includes("deflate-raw"));
  builds.webpack = { dir: webpackDir, wasmAssets };
  builds.vite = { dir: viteDir, wasmAssets: fs.readdirSync(path.join(viteDir, "assets")).filter((f) => f.endsWith(".wasm")) };
  for (const b of Object.values(builds)) {
    b.inlineChunk = inlineChunk(b.dir);
    b.plain = await serveStatic({ "/": b.dir });
    b.csp = await serveStatic({ "/": b.dir }, { headers: { "content-security-policy": CSP } });
  }
  collector = await startCollector({ db: path.join(tmp, "collector.sqlite"), allowOrigin: "*" });
  srv = await startTwilsock({ mode: "ok" });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const b of Object.values(builds)) {
    await b.plain?.close();
    await b.csp?.close();
  }
  await srv?.close();
  await collector?.stop();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const rows = async (identity) =>
  (await collector.read(`/v1/months/${utcMonth()}/identities?format=json`)).filter((r) => r.identity === identity);

/** Opens the app; resolves once it rendered and the real client connected (`lazy`: once
 * it rendered, before anything is clicked). */
async function open(server, { blockWasm = false, blockChunk, lazy = false } = {}) {
  const identity = `react-${randomBytes(4).toString("hex")}`;
  const context = await browser.newContext();
  const page = await context.newPage();
  const console_ = [];
  const errors = [];
  page.on("console", (m) => console_.push({ type: m.type(), text: m.text() }));
  page.on("pageerror", (e) => errors.push(e.message));
  if (blockWasm) await page.route("**/*.wasm", (route) => route.abort("blockedbyclient"));
  if (blockChunk) await page.route(`**/${blockChunk}`, (route) => route.abort("blockedbyclient"));
  const q = new URLSearchParams({ twilsock: srv.wsUrl, collector: `${collector.url}/v1/beacons`, token: makeToken({ identity }) });
  if (lazy) q.set("lazy", "");
  await page.goto(`${server.url}/?${q}`);
  try {
    const want = lazy ? ["#lazy", "idle"] : ["#state", "connected"];
    await page.waitForFunction(([sel, text]) => document.querySelector(sel)?.textContent === text, want, { timeout: 15_000, polling: 50 });
  } catch (e) {
    throw new Error(`${e.message}\npage errors: ${errors.join("; ")}\nconsole: ${console_.map((m) => `${m.type}: ${m.text}`).join("\n")}`);
  }
  const heading = await page.textContent("h1");
  const ready = await page.evaluate(() => window.app.tracker.ready);
  return { identity, page, context, console_, errors, heading, ready };
}

for (const name of ["webpack", "vite"]) {
  describe(`React app built with ${name}`, () => {
    test("emits the .wasm as an asset", () => {
      assert.equal(builds[name].wasmAssets.length, 1, builds[name].wasmAssets.join(", "));
    });

    test("renders, and beacons the real client's connect to the collector", async () => {
      const app = await open(builds[name].plain);
      const stats = await app.page.evaluate(() => window.app.tracker.flush());
      await app.context.close();
      assert.deepEqual(app.errors, []);
      assert.equal(app.heading, "Chat");
      assert.equal(app.ready, true);
      assert.deepEqual(app.console_.filter((m) => m.type === "warning" || m.type === "error"), []);
      assert.equal(stats.delivered, 1);
      assert.equal(stats.wasmSource, "url");
      const got = await rows(app.identity);
      assert.equal(got.length, 1, JSON.stringify(got));
    });

    test("useLazyClient under StrictMode: no socket before the click, then one client, one socket, one beacon; useMauStats follows", async () => {
      const opened = srv.stats.socketsOpened;
      const app = await open(builds[name].plain, { lazy: true });
      await app.page.waitForFunction(() => document.querySelector("#delivered")?.textContent === "0", null, { timeout: 10_000 });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(srv.stats.socketsOpened, opened, "no socket before the click");
      await app.page.click("#open");
      await app.page.waitForFunction(() => document.querySelector("#state")?.textContent === "connected", null, { timeout: 15_000, polling: 50 });
      await app.page.waitForFunction(() => document.querySelector("#delivered")?.textContent === "1", null, { timeout: 10_000, polling: 50 });
      await app.context.close();
      assert.deepEqual(app.errors, []);
      assert.deepEqual(app.console_.filter((m) => m.type === "warning" || m.type === "error"), []);
      assert.equal(srv.stats.socketsOpened - opened, 1, "one socket");
      assert.equal((await rows(app.identity)).length, 1);
    });

    test("emits the inlined wasm as a chunk of its own, apart from the entry", () => {
      assert.ok(builds[name].inlineChunk, "a chunk that inflates the inlined wasm");
      assert.doesNotMatch(builds[name].inlineChunk, /^(main|index)\b/);
    });

    test("with the wasm request blocked: the inlined copy runs, the beacon arrives", async () => {
      const app = await open(builds[name].plain, { blockWasm: true });
      const stats = await app.page.evaluate(() => window.app.tracker.flush());
      await app.context.close();
      assert.deepEqual(app.errors, [], "nothing thrown into the page");
      assert.equal(app.ready, true);
      assert.equal(stats.wasmSource, "inline");
      assert.equal(stats.delivered, 1);
      assert.deepEqual(app.console_.filter((m) => m.type === "warning"), []);
      assert.equal((await rows(app.identity)).length, 1);
    });

    test("with the wasm request and the inlined copy's chunk blocked: renders, chat connects, one warning", async () => {
      const app = await open(builds[name].plain, { blockWasm: true, blockChunk: path.basename(builds[name].inlineChunk) });
      const stats = await app.page.evaluate(() => window.app.tracker.flush());
      await app.context.close();
      assert.deepEqual(app.errors, [], "nothing thrown into the page");
      assert.equal(app.heading, "Chat");
      assert.equal(app.ready, false);
      assert.equal(stats, undefined, "flush() is a no-op");
      const warnings = app.console_.filter((m) => m.type === "warning");
      assert.equal(warnings.length, 1, JSON.stringify(app.console_));
      assert.match(warnings[0].text, /^mau-beacon: its WebAssembly did not load \(\S+\.wasm answered nothing \(TypeError: Failed to fetch\); the inlined copy: /);
      assert.match(warnings[0].text, /Both blocked, or offline\.$/);
      assert.equal((await rows(app.identity)).length, 0);
    });

    test(`under Content-Security-Policy: ${CSP}: renders, chat connects, one warning`, async () => {
      const app = await open(builds[name].csp);
      await app.context.close();
      assert.deepEqual(app.errors, [], "nothing thrown into the page");
      assert.equal(app.heading, "Chat");
      assert.equal(app.ready, false);
      const warnings = app.console_.filter((m) => m.type === "warning");
      assert.equal(warnings.length, 1, JSON.stringify(app.console_));
      // The browser's own reason, not only our hint (a 404 would carry the hint too).
      assert.match(warnings[0].text, /did not load \(CompileError: .*violates the following Content Security policy directive/);
      assert.match(warnings[0].text, /The CSP needs script-src 'wasm-unsafe-eval'/);
      console.log(`${name} under "${CSP}": ${JSON.stringify(app.console_)}`);
      assert.equal((await rows(app.identity)).length, 0);
    });
  });
}
