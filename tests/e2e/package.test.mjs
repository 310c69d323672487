// The npm package as users get it: `npm pack`, installed into a fresh ES-module app,
// type-checked with tsc, and run in headless Chromium; and the script-tag build from a
// plain HTML page. Beacons land at a real HTTP receiver on loopback.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { launchBrowser } from "../twilio/browser.mjs";
import { startReceiver } from "../support/receiver.mjs";
import { installPacked } from "../support/pack.mjs";
import { serveStatic } from "../support/serve.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const appSrc = path.join(root, "tests/e2e/app");
let appDir, tmp, tarball, server, receiver, browser;

before(async () => {
  appDir = path.join(root, "target", `package-app-${process.pid}`);
  const packed = installPacked(appDir, { pkg: { name: "fresh-app", private: true, type: "module" } });
  tmp = packed.dir;
  tarball = { files: packed.files };
  for (const f of fs.readdirSync(appSrc)) fs.copyFileSync(path.join(appSrc, f), path.join(appDir, f));
  const fixtures = fs.readFileSync(path.join(appSrc, "fixtures-src.js"), "utf8");
  fs.writeFileSync(path.join(appDir, "fixtures.js"), `${fixtures}\nexport { makeClient };\n`);
  fs.writeFileSync(path.join(appDir, "fixtures-global.js"), fixtures);
  server = await serveStatic({ "/": appDir });
  receiver = await startReceiver();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
  await receiver?.close();
  if (appDir) fs.rmSync(appDir, { recursive: true, force: true });
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test("npm pack ships the ES module, the wasm, the types and the script-tag build", () => {
  for (const f of ["js/index.js", "js/index.d.ts", "js/load.js", "js/inline.js", "js/inert.cjs", "pkg/web/mau_beacon.js", "pkg/web/mau_beacon_bg.wasm", "pkg/web/mau_beacon_inline.js", "pkg/web/mau_beacon.d.ts", "dist/mau-beacon.global.js", "dist/mau-beacon.global.d.ts", "js/react.js", "js/react.d.ts", "dist/react.cjs", "react/package.json", "package.json"]) {
    assert.ok(tarball.files.includes(f), `${f} in ${tarball.files.join(", ")}`);
  }
  assert.ok(!tarball.files.some((f) => f.startsWith("crate/") || f.startsWith("tests/")), "no sources in the package");
});

test("public types: strict tsc passes, no `any` in the API surface", () => {
  const tsconfig = {
    compilerOptions: {
      strict: true, noEmit: true, target: "es2022", module: "esnext", moduleResolution: "bundler",
      lib: ["es2022", "dom"], skipLibCheck: true,
      paths: { "@twilio/conversations": [path.join(root, "node_modules/@twilio/conversations")] },
    },
    files: ["check.ts"],
  };
  fs.writeFileSync(path.join(appDir, "tsconfig.json"), JSON.stringify(tsconfig));
  // typescript/bin, not .bin: the typescript-4.7 alias (tests/e2e/types.test.mjs) links its own `tsc` there too.
  execFileSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", appDir], { cwd: appDir, stdio: "pipe" });
  const dts = fs.readFileSync(path.join(appDir, "node_modules/mau-beacon/pkg/web/mau_beacon.d.ts"), "utf8");
  const publicPart = dts.split("export type InitInput")[0];
  assert.doesNotMatch(publicPart, /\bany\b/, "no `any` in the public declarations");
});

async function runPage(file, bucket) {
  const page = await (await browser.newContext()).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const collector = `${receiver.url}/b/${bucket}`;
  await page.goto(`${server.url}/${file}?collector=${encodeURIComponent(collector)}`);
  await page.waitForFunction(() => window.result, null, { timeout: 10_000 });
  const result = await page.evaluate(() => window.result);
  await page.context().close();
  assert.deepEqual(errors, []);
  return { result, attempts: receiver.buckets.get(bucket)?.attempts ?? [] };
}

test("installed into a fresh ES-module app, it beacons a connect", async () => {
  const { result, attempts } = await runPage("index.html", "esm");
  // One version: the package's, the SDK's own and the one each beacon carries.
  const version = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).version;
  assert.equal(result.version, version);
  assert.equal(result.clients, 1);
  assert.equal(result.stats.delivered, 1);
  assert.equal(attempts.length, 1);
  assert.equal(attempts[0].body.identity, "esm-user");
  assert.equal(attempts[0].body.sdk.version, version);
});

test("the script-tag build works from a plain HTML page", async () => {
  const { result, attempts } = await runPage("script-tag.html", "script");
  assert.equal(result.stats.delivered, 1);
  assert.equal(result.listeners, 0, "stop() removed every listener");
  assert.equal(attempts.length, 1);
  assert.equal(attempts[0].body.identity, "script-user");
  assert.equal(attempts[0].contentType, "text/plain;charset=UTF-8", "no preflight: a safelisted content type");
});

test("startTracker: usable before the wasm is ready, a wrong config reported naming the field", async () => {
  const { result, attempts } = await runPage("fail-soft.html", "soft");
  assert.equal(result.statsBeforeReady, null, "no stats before the wasm is ready");
  assert.equal(result.ready, true);
  assert.equal(result.stats.delivered, 1, "the watch queued before ready counted the connected client");
  assert.equal(attempts.length, 1);
  assert.equal(attempts[0].body.identity, "soft-user");
  assert.equal(result.listeners, 0, "stop() removed every listener");
  assert.equal(result.otherListeners, 0, "a watch stopped before ready never attached");
  assert.equal(result.badReady, false);
  assert.equal(result.badWatchStopped, true);
  assert.deepEqual(result.errors.map((e) => e.code), ["invalid_config"]);
  assert.match(result.errors[0].message, /`collectorUrl` must be an http\(s\) URL/);
  assert.match(result.thrown, /`collectorUrl` must be an http\(s\) URL/, "new MauTracker still throws");
});

/** Opens `file` in a browser without WebAssembly; its result, page errors and warnings. */
async function runWithoutWasm(file, query, bucket, missing = "WebAssembly") {
  const context = await browser.newContext();
  await context.addInitScript((name) => delete globalThis[name], missing);
  const page = await context.newPage();
  const errors = [];
  const warnings = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "warning" && warnings.push(m.text()));
  await page.goto(`${server.url}/${file}?${query}collector=${encodeURIComponent(`${receiver.url}/b/${bucket}`)}`);
  await page.waitForFunction(() => window.result, null, { timeout: 10_000 });
  const result = await page.evaluate(() => window.result);
  await context.close();
  assert.equal(receiver.buckets.get(bucket), undefined, "nothing sent");
  return { result, errors, warnings };
}

test("startTracker without WebAssembly: one console warning, every method a no-op", async () => {
  const { result, errors, warnings } = await runWithoutWasm("fail-soft.html", "nowasm&", "nowasm");
  assert.deepEqual(errors, []);
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0], /^mau-beacon: its WebAssembly did not load \(this browser has no WebAssembly\).* No WebAssembly here\.$/);
  assert.deepEqual(result, {
    ready: false, againReady: false, flushed: null, stats: null, counted: false, load: result.load,
  });
  assert.equal(result.load.ok, false);
});

test("the script-tag build's startTracker: beacons, and without WebAssembly or DecompressionStream warns once, nothing thrown", async () => {
  const { result, attempts } = await runPage("script-tag-soft.html", "script-soft");
  assert.deepEqual(result, { ready: true, stats: result.stats, listeners: 0 });
  assert.equal(result.stats.delivered, 1);
  assert.equal(attempts[0].body.identity, "script-soft-user");

  const off = await runWithoutWasm("script-tag-soft.html", "", "script-nowasm");
  assert.deepEqual(off.errors, [], "no error, and no unhandled rejection of MauBeacon.ready");
  assert.equal(off.warnings.length, 1, off.warnings.join("\n"));
  assert.deepEqual(off.result, { ready: false, stats: null, listeners: 0 });

  // The script tag inflates its wasm with DecompressionStream (Safari < 16.4, Firefox < 113
  // have none): the same soft failure.
  const old = await runWithoutWasm("script-tag-soft.html", "", "script-noinflate", "DecompressionStream");
  assert.deepEqual(old.errors, [], "no error, and no unhandled rejection of MauBeacon.ready");
  assert.equal(old.warnings.length, 1, old.warnings.join("\n"));
  assert.match(old.warnings[0], /^mau-beacon: its WebAssembly did not load \(ReferenceError: DecompressionStream/);
  assert.match(old.warnings[0], /No DecompressionStream here for the inlined copy/);
  assert.deepEqual(old.result, { ready: false, stats: null, listeners: 0 });
});

test("dispose(), a second tracker for one collector, and a collector refusing CORS (`network` once)", async () => {
  // Another origin (another port) that answers without CORS headers, as a collector
  // started without --allow-origin does for this page.
  const other = await serveStatic({ "/": appDir });
  const page = await (await browser.newContext()).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const q = new URLSearchParams({ collector: `${receiver.url}/b/dispose`, cors: `${other.url}/v1/beacons` });
  await page.goto(`${server.url}/dispose.html?${q}`);
  await page.waitForFunction(() => window.result, null, { timeout: 15_000 });
  const result = await page.evaluate(() => window.result);
  await page.context().close();
  await other.close();
  assert.deepEqual(errors, []);
  const { listenersBefore, ...disposed } = result.disposed;
  assert.ok(listenersBefore > 0, "the watch listened");
  assert.deepEqual(disposed, { listenersAfter: 0, delivered: 1, stats: null, flush: null });
  assert.equal(result.second, 1, JSON.stringify(result.warnings));
  assert.match(result.usedAfterDispose, /null pointer|destroyed|moved/i);
  assert.deepEqual(result.errors.map((e) => e.code), ["network"], "reported once, not once per attempt");
  assert.match(result.errors[0].message, /--allow-origin/);
  assert.equal(result.pending, 1, "the beacon stays queued");
  const network = result.warnings.filter((w) => w.includes("--allow-origin"));
  assert.equal(network.length, 1, JSON.stringify(result.warnings));
  assert.equal(result.warnings.length, 2, JSON.stringify(result.warnings));
});

test("every relative link in the packed README resolves inside the tarball", () => {
  const readme = fs.readFileSync(path.join(appDir, "node_modules/mau-beacon/README.md"), "utf8");
  // Inline links and reference definitions; anchors within the page and absolute URLs aside.
  const targets = [...readme.matchAll(/\]\(([^)\s]+)\)|^\[[^\]]+\]:\s*(\S+)/gm)].map((m) => m[1] ?? m[2]);
  assert.ok(targets.length > 10, `links found: ${targets.length}`);
  const relative = targets.filter((t) => !/^(#|[a-z][a-z0-9+.-]*:)/i.test(t)).map((t) => t.split("#")[0]);
  const missing = relative.filter((f) => !tarball.files.includes(path.posix.normalize(f)));
  assert.deepEqual(missing, [], `relative links to files the package does not ship (make them absolute or ship them)`);
  assert.ok(relative.includes("docs/wire-format.md"), "the shipped wire format is linked relatively");
});

test("the package description states the size size.sh measures", () => {
  const { description } = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
  assert.doesNotMatch(description, /tiny/);
  const kb = Number(/(\d+) KB gzip/.exec(description)?.[1]);
  const out = execFileSync("bash", ["scripts/size.sh"], { cwd: root, encoding: "utf8" });
  const measured = Number(/ES module total \(wasm \+ minified entry and glue\): gzip ([\d.]+) KB/.exec(out)[1]);
  assert.ok(Math.abs(measured - kb) <= 1, `description says ${kb} KB, size.sh measures ${measured} KB`);
});
