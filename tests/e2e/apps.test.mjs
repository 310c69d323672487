// Apps as their frameworks build them by default, with no wasm configuration: Angular (the
// CLI's `application` builder, esbuild, which emits no .wasm) and Vue 3 + Vite 8, each from
// tests/apps/<name> with its own package.json and lock (installed here when missing, keyed
// by the lock's hash) and mau-beacon from the packed tarball. Each is built once and served
// in headless Chromium by a static server with a single-page-app fallback (unknown paths
// answer index.html with 200): the tracker becomes ready and one beacon arrives, through
// the .wasm where the build emitted it, else through the inlined copy's chunk. Then the same
// apps under their dev servers (`ng serve`, `vite`), unconfigured too.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { ROOT as root } from "../support/collector.mjs";
import { installAppDeps, packInto, unpackInto } from "../support/pack.mjs";
import { startReceiver } from "../support/receiver.mjs";
import { serveStatic } from "../support/serve.mjs";
import { launchBrowser } from "../twilio/browser.mjs";

const APPS = {
  angular: {
    build: ["node_modules/@angular/cli/bin/ng.js", "build", "--output-path"],
    serve: ["node_modules/@angular/cli/bin/ng.js", "serve", "--host", "127.0.0.1", "--port"],
    browserDir: "browser",
  },
  vue: {
    build: ["node_modules/vite/bin/vite.js", "build", "--emptyOutDir", "--outDir"],
    serve: ["node_modules/vite/bin/vite.js", "--host", "127.0.0.1", "--strictPort", "--port"],
    browserDir: "",
  },
};
const ENV = { ...process.env, NG_CLI_ANALYTICS: "false" };
const apps = {};
let tmp, receiver, browser;

before(async () => {
  if (!fs.existsSync(path.join(root, "pkg/web/mau_beacon.js"))) {
    execFileSync("bash", ["scripts/build.sh"], { cwd: root, stdio: "inherit" });
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mau-apps-"));
  const tarball = packInto(tmp);
  for (const [name, app] of Object.entries(APPS)) {
    const dir = path.join(root, "tests/apps", name);
    installAppDeps(dir);
    unpackInto(dir, tarball);
    const out = path.join(tmp, `${name}-dist`);
    const t = Date.now();
    execFileSync(process.execPath, [...app.build, out], { cwd: dir, stdio: "pipe", env: ENV });
    const dist = path.join(out, app.browserDir);
    const files = fs.readdirSync(dist, { recursive: true }).map(String);
    const inlineChunk = files.find((f) => f.endsWith(".js") && fs.readFileSync(path.join(dist, f), "utf8").includes("deflate-raw"));
    console.log(`${name} build: ${Date.now() - t} ms; files ${files.join(", ")}`);
    apps[name] = { dir, dist, files, inlineChunk, server: await serveStatic({ "/": dist }, { spa: true }) };
  }
  receiver = await startReceiver();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const app of Object.values(apps)) {
    await app.server.close();
    // The dev server and what it started (its own process group).
    if (app.dev) process.kill(-app.dev.pid, "SIGTERM");
  }
  await receiver?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Starts the app's dev server on a free port; resolves with its URL once it answers. */
async function startDev(name) {
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port: free } = s.address();
      s.close(() => resolve(free));
    });
  });
  const t = Date.now();
  const dev = spawn(process.execPath, [...APPS[name].serve, String(port)], { cwd: apps[name].dir, env: ENV, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  apps[name].dev = dev;
  let log = "";
  dev.stdout.on("data", (c) => (log += c));
  dev.stderr.on("data", (c) => (log += c));
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    if (dev.exitCode !== null) throw new Error(`${name} dev server exited: ${log}`);
    if (Date.now() - t > 120_000) throw new Error(`${name} dev server not up in 120 s: ${log}`);
    const up = await fetch(url).then((r) => r.ok, () => false);
    if (up) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  console.log(`${name} dev server up: ${Date.now() - t} ms`);
  return { url, requests: [] };
}

/** Opens the app; resolves with `window.result`, the console and what was requested. */
async function open(name, { route, server = apps[name].server } = {}) {
  const bucket = `${name}-${randomBytes(4).toString("hex")}`;
  const context = await browser.newContext();
  const page = await context.newPage();
  const logs = [];
  const errors = [];
  page.on("console", (m) => logs.push({ type: m.type(), text: m.text() }));
  page.on("pageerror", (e) => errors.push(e.message));
  const answers = [];
  page.on("response", (r) => answers.push(`${r.status()} ${r.headers()["content-type"]} ${new URL(r.url()).pathname}`));
  if (route) await page.route(route.match, route.handle);
  const from = server.requests.length;
  const q = new URLSearchParams({ collector: `${receiver.url}/b/${bucket}`, identity: bucket });
  await page.goto(`${server.url}/?${q}`);
  try {
    await page.waitForFunction(() => window.result, null, { timeout: 30_000, polling: 50 });
  } catch (e) {
    throw new Error(`${e.message}\npage errors: ${errors.join("; ")}\nconsole: ${logs.map((m) => `${m.type}: ${m.text}`).join("\n")}`);
  }
  const result = await page.evaluate(() => window.result);
  const state = await page.textContent("#state");
  await context.close();
  const attempts = (await (await fetch(`${receiver.url}/b/${bucket}`)).json()).attempts;
  return { result, state, logs, errors, attempts, identity: bucket, requests: server.requests.slice(from), answers };
}

// Chromium's own "Failed to load resource" lines (a 404, a blocked request) are not the app's.
const warnings = (app) => app.logs.filter((m) => m.type === "warning" || (m.type === "error" && !m.text.startsWith("Failed to load resource")));

describe("Angular, default application builder, behind an SPA-fallback server", () => {
  test("the build emits no .wasm but the inlined copy as a lazy chunk of its own", () => {
    const { files, inlineChunk, dist } = apps.angular;
    assert.deepEqual(files.filter((f) => f.endsWith(".wasm")), []);
    assert.ok(inlineChunk, files.join(", "));
    const index = fs.readFileSync(path.join(dist, "index.html"), "utf8");
    assert.ok(!index.includes(inlineChunk), "the chunk is not loaded by index.html");
  });

  test("the .wasm answered with index.html: the inlined copy runs, one beacon arrives", async () => {
    const app = await open("angular");
    assert.deepEqual(app.errors, []);
    assert.deepEqual(warnings(app), []);
    assert.equal(app.state, "connected");
    assert.equal(app.result.ready, true);
    assert.equal(app.result.stats.wasmSource, "inline");
    assert.equal(app.result.stats.delivered, 1);
    assert.equal(app.attempts.length, 1);
    assert.equal(app.attempts[0].body.identity, app.identity);
    const wasm = app.requests.filter((r) => r.path.endsWith(".wasm"));
    assert.deepEqual(wasm.map((r) => r.answer), ["index.html (SPA fallback)"], JSON.stringify(app.requests));
    assert.ok(app.requests.some((r) => r.answer === apps.angular.inlineChunk), JSON.stringify(app.requests));
  });

  test("neither the .wasm nor the chunk: the app runs on, one warning naming both causes", async () => {
    const chunk = apps.angular.inlineChunk;
    const app = await open("angular", { route: { match: `**/${chunk}`, handle: (r) => r.abort("blockedbyclient") } });
    assert.deepEqual(app.errors, [], "nothing thrown into the page");
    assert.equal(app.state, "connected");
    assert.equal(app.result.ready, false);
    assert.equal(app.result.stats, undefined);
    const w = warnings(app);
    assert.equal(w.length, 1, JSON.stringify(app.logs));
    assert.match(w[0].text, /^mau-beacon: its WebAssembly did not load \(\S+mau_beacon_bg\.wasm answered with HTML \(a single-page-app fallback\?\), not wasm; the inlined copy: TypeError: Failed to fetch dynamically imported module/);
    assert.doesNotMatch(w[0].text, /Content-Security-Policy/);
    assert.match(w[0].text, /The \.wasm URL answered a page/);
    assert.equal(app.attempts.length, 0);
  });
});

describe("Vue 3 + Vite 8, no config, behind an SPA-fallback server", () => {
  test("the build emits the .wasm, and the inlined copy as a chunk of its own", () => {
    const { files, inlineChunk, dist } = apps.vue;
    assert.equal(files.filter((f) => f.endsWith(".wasm")).length, 1, files.join(", "));
    assert.ok(inlineChunk, files.join(", "));
    assert.ok(!fs.readFileSync(path.join(dist, "index.html"), "utf8").includes(path.basename(inlineChunk)));
  });

  test("the .wasm arrives: one beacon, and the chunk is never fetched", async () => {
    const app = await open("vue");
    assert.deepEqual(app.errors, []);
    assert.deepEqual(warnings(app), []);
    assert.equal(app.state, "connected");
    assert.equal(app.result.stats.wasmSource, "url");
    assert.equal(app.result.stats.delivered, 1);
    assert.equal(app.attempts.length, 1);
    assert.ok(app.requests.some((r) => r.path.endsWith(".wasm") && r.answer.endsWith(".wasm")), JSON.stringify(app.requests));
    assert.ok(!app.requests.some((r) => r.answer === apps.vue.inlineChunk), JSON.stringify(app.requests));
  });

  test("the .wasm answered 404: the inlined copy runs, one beacon arrives", async () => {
    const app = await open("vue", { route: { match: "**/*.wasm", handle: (r) => r.fulfill({ status: 404, body: "not found" }) } });
    assert.deepEqual(app.errors, []);
    assert.deepEqual(warnings(app), []);
    assert.equal(app.result.stats.wasmSource, "inline");
    assert.equal(app.result.stats.delivered, 1);
    assert.equal(app.attempts.length, 1);
  });

  test("the .wasm request blocked and the chunk 404: one warning naming both", async () => {
    const chunk = path.basename(apps.vue.inlineChunk);
    const app = await open("vue", {
      route: { match: (u) => u.pathname.endsWith(".wasm") || u.pathname.endsWith(chunk), handle: (r) => (r.request().url().endsWith(".wasm") ? r.abort("blockedbyclient") : r.fulfill({ status: 404, body: "" })) },
    });
    assert.deepEqual(app.errors, []);
    assert.equal(app.result.ready, false);
    const w = warnings(app);
    assert.equal(w.length, 1, JSON.stringify(app.logs));
    assert.match(w[0].text, /did not load \(\S+\.wasm answered nothing \(TypeError: Failed to fetch\); the inlined copy: TypeError: Failed to fetch dynamically imported module/);
    assert.equal(app.attempts.length, 0);
  });
});

// Vite 8's dev server serves the .wasm of a pre-bundled dependency; Angular's (Vite 7 under
// `ng serve`) answers 404 for it, so its pages run the inlined copy.
describe("dev servers, unconfigured: ng serve and vite", () => {
  for (const [name, source] of [["angular", "inline"], ["vue", "url"]]) {
    test(`${name}: ready, one beacon, wasm from the ${source}`, async () => {
      const server = await startDev(name);
      const app = await open(name, { server });
      assert.deepEqual(app.errors, []);
      assert.deepEqual(warnings(app), []);
      assert.equal(app.result.ready, true);
      assert.equal(app.result.stats.delivered, 1);
      assert.equal(app.result.stats.wasmSource, source);
      assert.equal(app.attempts.length, 1);
      const wasm = app.answers.filter((a) => /\.wasm$|inline/.test(a));
      console.log(`${name} dev server: wasmSource ${app.result.stats.wasmSource}; ${wasm.join("; ")}`);
    });
  }
});
