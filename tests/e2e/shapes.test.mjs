// What `stats()`, `onEvent` and `onError` hand an app, checked against the shipped
// declarations: values collected from the real SDK in Chromium (every event type, every
// stats field that can appear) are written into a TypeScript file typed with `MauStats`,
// `BeaconEvent` and `MauBeaconError`, and strict tsc must accept it. An undeclared field, a
// missing one or a value outside its declared type fails the check.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { ROOT as root } from "../support/collector.mjs";
import { startReceiver } from "../support/receiver.mjs";
import { serveStatic } from "../support/serve.mjs";
import { launchBrowser } from "../twilio/browser.mjs";

let dir, server, receiver, browser;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mau-shapes-"));
  fs.writeFileSync(path.join(dir, "index.html"), "<!doctype html><title>shapes</title>");
  server = await serveStatic({ "/pkg": path.join(root, "pkg/web"), "/": dir });
  receiver = await startReceiver();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
  await receiver?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("stats(), onEvent and onError values match MauStats, BeaconEvent and MauBeaconError", async () => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/index.html`);
  const got = await page.evaluate(async (collector) => {
    const m = await import("/pkg/mau_beacon.js");
    await m.default();
    localStorage.clear();
    class Client {
      constructor(identity) { this.l = {}; this.connectionState = "connecting"; this.user = { identity }; }
      on(e, f) { (this.l[e] ??= []).push(f); }
      off(e, f) { this.l[e] = (this.l[e] || []).filter((x) => x !== f); }
      connect() { this.connectionState = "connected"; for (const f of [...(this.l.connectionStateChanged || [])]) f("connected"); }
    }
    const events = [], errors = [], stats = [], waiting = [];
    // Resolves on the event itself, no polling.
    const seen = (type) => events.some((e) => e.type === type) ? Promise.resolve() : new Promise((resolve) => waiting.push({ type, resolve }));
    const onEvent = (e) => { events.push(e); for (const w of waiting) if (w.type === e.type) w.resolve(); };
    const make = (url, extra = {}) => new m.MauTracker({
      collectorUrl: url, retry: { baseMs: 20, maxMs: 40 }, identityTimeoutMs: 0,
      onEvent, onError: (e) => errors.push({ name: e.name, code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}) }), ...extra,
    });
    // queued, delivered, deduped
    const ok = make(`${collector}/b/ok`);
    const a = new Client("ana");
    ok.watch(a, { identity: "ana" });
    a.connect(); a.connect();
    stats.push(await ok.flush());
    // retry (503 then 204), with lastError
    const flaky = make(`${collector}/b/flaky?fail=1&status=503`);
    const b = new Client("bo");
    flaky.watch(b, { identity: "bo" });
    b.connect();
    await seen("retry");
    stats.push(flaky.stats());
    // dropped (400), no_identity, and an unreadable token through onError
    const bad = make(`${collector}/b/bad?status=400`);
    const c = new Client("cy");
    bad.watch(c, { identity: "cy" });
    c.connect();
    const d = new Client("");
    bad.watch(d, { token: "not-a-jwt" });
    d.connect();
    await seen("no_identity");
    stats.push(await bad.flush());
    // storage unavailable: memory, with storageError
    const setItem = Storage.prototype.setItem;
    Storage.prototype.setItem = () => { throw new DOMException("quota", "QuotaExceededError"); };
    const mem = make(`${collector}/b/mem`);
    const e = new Client("ed");
    mem.watch(e, { identity: "ed" });
    e.connect();
    // A month's first connect is counted under the tabs' lock, a task later: flush waits.
    stats.push(await mem.flush());
    Storage.prototype.setItem = setItem;
    let thrown;
    try { make(42); } catch (err) { thrown = { name: err.name, code: err.code, message: err.message, field: err.field }; }
    errors.push(thrown);
    return { stats, events, errors };
  }, receiver.url);
  await page.close();
  const types = new Set(got.events.map((e) => e.type));
  for (const t of ["queued", "deduped", "delivered", "retry", "dropped", "no_identity"]) assert.ok(types.has(t), `no ${t} event in ${JSON.stringify(got.events)}`);
  assert.ok(got.stats.some((s) => s.storage === "memory" && s.storageError), JSON.stringify(got.stats));
  assert.ok(got.stats.some((s) => s.lastError), JSON.stringify(got.stats));
  assert.deepEqual(got.errors.map((e) => e.code).sort(), ["invalid_config", "token_unreadable"]);

  fs.copyFileSync(path.join(root, "pkg/web/mau_beacon.d.ts"), path.join(dir, "mau_beacon.d.ts"));
  fs.writeFileSync(path.join(dir, "check.ts"), [
    `import type { BeaconEvent, MauBeaconError, MauStats } from "./mau_beacon";`,
    `export const stats: MauStats[] = ${JSON.stringify(got.stats)};`,
    `export const events: BeaconEvent[] = ${JSON.stringify(got.events)};`,
    `export const errors: Pick<MauBeaconError, "name" | "code" | "message" | "field">[] = ${JSON.stringify(got.errors)};`,
  ].join("\n"));
  const tsconfig = { compilerOptions: { strict: true, noEmit: true, exactOptionalPropertyTypes: true, target: "es2020", module: "esnext", moduleResolution: "bundler", lib: ["es2020", "dom"], types: [] }, files: ["check.ts"] };
  fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify(tsconfig));
  const run = spawnSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", dir], { encoding: "utf8" });
  assert.equal(run.status, 0, `${run.stdout}${run.stderr}\n${fs.readFileSync(path.join(dir, "check.ts"), "utf8")}`);
});
