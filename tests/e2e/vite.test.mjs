// The package as most apps consume it: `npm pack`, installed next to the real
// `@twilio/conversations`, bundled by Vite, and run in headless Chromium. The real client
// connects to the fake Twilsock; the beacon lands at the real mau-collector.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { gzipSync } from "node:zlib";

import { build, transformWithEsbuild } from "vite";

import { ROOT as root, buildCollector, startCollector, utcMonth } from "../support/collector.mjs";
import { serveStatic } from "../support/serve.mjs";
import { start as startTwilsock } from "../twilio/fake-twilsock.mjs";
import { launchBrowser } from "../twilio/browser.mjs";
import { makeToken } from "../twilio/jwt.mjs";

const appSrc = path.join(root, "tests/e2e/vite-app");
const identity = `vite-user-${randomBytes(4).toString("hex")}`;
let tmp, workDir, output, server, srv, collector, browser;

before(async () => {
  if (!fs.existsSync(path.join(root, "pkg/web/mau_beacon.js"))) {
    execFileSync("bash", ["scripts/build.sh"], { cwd: root, stdio: "inherit" });
  }
  buildCollector();

  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mau-vite-"));
  const [info] = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", tmp], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }));

  // Under the repo, so resolution walks up to its node_modules for the Conversations client
  // and Vite; `mau-beacon` itself comes from the app's own node_modules, i.e. the tarball.
  workDir = path.join(root, "target", `vite-app-${randomBytes(4).toString("hex")}`);
  fs.cpSync(appSrc, workDir, { recursive: true });
  fs.writeFileSync(path.join(workDir, "package.json"), JSON.stringify({ name: "vite-app", private: true, type: "module" }));
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--offline", path.join(tmp, info.filename)], { cwd: workDir, stdio: "pipe" });

  const result = await build({ root: workDir, logLevel: "error" });
  output = (Array.isArray(result) ? result[0] : result).output;

  collector = await startCollector({ db: path.join(tmp, "collector.sqlite"), allowOrigin: "*" });
  srv = await startTwilsock({ mode: "ok" });
  server = await serveStatic({ "/": path.join(workDir, "dist") });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
  await srv?.close();
  await collector?.stop();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test("Vite resolves mau-beacon through its exports and emits the .wasm as an asset", async () => {
  const pkgDir = fs.realpathSync(path.join(workDir, "node_modules/mau-beacon"));
  assert.ok(pkgDir.startsWith(fs.realpathSync(workDir)), "mau-beacon is the installed tarball, not the repo");

  const wasm = output.filter((o) => o.type === "asset" && o.fileName.endsWith(".wasm"));
  assert.equal(wasm.length, 1, `one .wasm asset in ${output.map((o) => o.fileName).join(", ")}`);
  assert.ok(fs.existsSync(path.join(workDir, "dist", wasm[0].fileName)));
  const entry = output.find((o) => o.type === "chunk" && o.isEntry);
  assert.ok(entry.code.includes(path.basename(wasm[0].fileName)), "the bundle points at the emitted wasm");

  // What mau-beacon adds to the page: its wasm, and its JS glue minified as Vite would.
  const glueId = Object.keys(entry.modules).find((id) => id.startsWith(path.join(pkgDir, "pkg/web/")));
  assert.ok(glueId, "mau-beacon's module, from the installed tarball, is in the bundle");
  const conversations = path.join(root, "node_modules/@twilio/conversations/builds/browser.js");
  assert.ok(entry.modules[conversations], "the real Conversations client (its browser build) is in the bundle");
  const glue = (await transformWithEsbuild(entry.modules[glueId].code, "glue.js", { minify: true, format: "esm" })).code;
  const kb = (n) => `${(n / 1000).toFixed(1)} KB`;
  const sizes = (b) => `${kb(Buffer.byteLength(b))}, gzip ${kb(gzipSync(b, { level: 9 }).length)}`;
  console.log(
    `mau-beacon in a Vite bundle: wasm ${sizes(wasm[0].source)}; JS glue ≈ ${sizes(glue)}; ` +
      `whole app JS (with the Conversations client) ${sizes(entry.code)}`,
  );
});

test("the bundled app beacons the real client's connect to the collector, once", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  const logs = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
  const q = new URLSearchParams({ twilsock: srv.wsUrl, collector: `${collector.url}/v1/beacons`, token: makeToken({ identity }) });
  try {
    await page.goto(`${server.url}/?${q}`);
    await page.waitForFunction(() => window.result, null, { timeout: 15_000, polling: 50 });
  } catch (e) {
    throw new Error(`${e.message}\npage errors: ${errors.join("; ")}\nconsole: ${logs.join("\n")}`);
  }
  const result = await page.evaluate(() => window.result);
  await context.close();

  assert.deepEqual(errors, []);
  assert.equal(result.connectionState, "connected");
  assert.deepEqual(result.states.slice(0, 2), ["connecting", "connected"]);
  assert.equal(srv.stats.initRequests, 1);
  assert.deepEqual(result.events, ["queued", "delivered"]);
  assert.equal(result.stats.delivered, 1);
  assert.equal(result.stats.pending, 0);

  const rows = await collector.read(`/v1/months/${utcMonth()}/identities?format=json`);
  assert.equal(rows.length, 1, JSON.stringify(rows));
  assert.equal(rows[0].identity, identity);
  assert.equal(rows[0].connects, 1);
});
