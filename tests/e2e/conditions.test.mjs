// Which build each kind of consumer resolves from the installed tarball: the real ES module
// for bundlers building a page (webpack even through `require`), the inert build for Node
// (server rendering, test runners), and a warning when a bundler still hands the inert build
// to a real page (esbuild resolving `require`), since no beacon would leave it.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import * as esbuild from "esbuild";
import webpack from "webpack";

import { ROOT as root } from "../support/collector.mjs";
import { installPacked } from "../support/pack.mjs";
import { serveStatic } from "../support/serve.mjs";
import { launchBrowser } from "../twilio/browser.mjs";

// A CommonJS app entry, as TypeScript compiled to `module: commonjs` or older code writes it.
const ENTRY = `const { startTracker } = require("mau-beacon");
window.tracker = startTracker({ collectorUrl: "/v1/beacons" });
`;

let tmp, appDir;

before(() => {
  if (!fs.existsSync(path.join(root, "pkg/web/mau_beacon.js"))) {
    execFileSync("bash", ["scripts/build.sh"], { cwd: root, stdio: "inherit" });
  }
  appDir = path.join(root, "target", `conditions-app-${randomBytes(4).toString("hex")}`);
  ({ dir: tmp } = installPacked(appDir));
  fs.writeFileSync(path.join(appDir, "entry.cjs"), ENTRY);
});

after(() => {
  if (appDir) fs.rmSync(appDir, { recursive: true, force: true });
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const node = (args) => execFileSync(process.execPath, args, { cwd: appDir, encoding: "utf8" }).trim();

test("Node gets the inert build through import and require", () => {
  // Named imports, as server-rendered code writes them.
  const esm = 'import { version, startTracker, LazyClient, MauTracker, Watch, Trigger } from "mau-beacon"; console.log(version(), [startTracker, LazyClient, MauTracker, Watch, Trigger].map((f) => typeof f).join())';
  assert.equal(node(["--input-type=module", "-e", esm]), "inert function,function,function,function,function");
  assert.equal(node(["-e", 'console.log(require("mau-beacon").version())']), "inert");
});

test("mau-beacon/react in Node: the page entry's exports, through import and require, and it renders on a server", () => {
  const pageEntry = fs.readFileSync(path.join(appDir, "node_modules/mau-beacon/js/react.js"), "utf8");
  const names = [...pageEntry.matchAll(/^export function (\w+)/gm)].map((m) => m[1]).sort();
  assert.ok(names.length >= 5, names.join());
  // Server rendering: the provider renders its children, the hooks their first state.
  const ssr = `import * as m from "mau-beacon/react";
import { createElement as h } from "react";
import { renderToString } from "react-dom/server";
function Chat() {
  const stats = m.useMauStats();
  const chat = m.useLazyClient({ getToken: () => "t", createClient: () => ({ on() {}, off() {} }) });
  m.useMauWatch(null, { token: "t" });
  return h("p", null, String(stats) + " " + chat.state);
}
const html = renderToString(h(m.MauBeaconProvider, { collectorUrl: "/t/v1/beacons" }, h(Chat)));
console.log(JSON.stringify({ names: Object.keys(m).filter((k) => k !== "default").sort(), html }));`;
  const out = JSON.parse(node(["--input-type=module", "-e", ssr]));
  assert.deepEqual(out.names, names);
  assert.equal(out.html, "<p>undefined idle</p>");
  assert.equal(node(["-e", 'console.log(Object.keys(require("mau-beacon/react")).sort().join())']), names.join());
});

test("webpack building a page gets the real module even through require()", async () => {
  const stats = await promisify(webpack)({
    mode: "production",
    context: appDir,
    entry: "./entry.cjs",
    output: { path: path.join(appDir, "dist-webpack"), filename: "main.js" },
    performance: { hints: false },
  });
  assert.ok(!stats.hasErrors(), stats.toString("errors-only"));
  const assets = Object.keys(stats.compilation.assets);
  assert.equal(assets.filter((f) => f.endsWith(".wasm")).length, 1, assets.join(", "));
  assert.doesNotMatch(fs.readFileSync(path.join(appDir, "dist-webpack/main.js"), "utf8"), /inert build/);
});

test("a page bundled with the inert build says so once", async () => {
  const out = path.join(appDir, "dist-esbuild");
  await esbuild.build({ entryPoints: [path.join(appDir, "entry.cjs")], bundle: true, platform: "browser", outfile: path.join(out, "main.js"), logLevel: "silent" });
  fs.writeFileSync(path.join(out, "index.html"), '<!doctype html><link rel="icon" href="data:,"><script src="main.js"></script>');
  const server = await serveStatic({ "/": out });
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    const messages = [];
    const errors = [];
    page.on("console", (m) => messages.push({ type: m.type(), text: m.text() }));
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${server.url}/`);
    assert.equal(await page.evaluate(() => window.tracker.ready), false);
    await page.evaluate(() => window.tracker.watch({}, {}).stop());
    assert.deepEqual(errors, []);
    assert.equal(messages.length, 1, JSON.stringify(messages));
    assert.equal(messages[0].type, "warning");
    assert.match(messages[0].text, /inert build .* no beacons are sent/);
  } finally {
    await browser.close();
    await server.close();
  }
});
