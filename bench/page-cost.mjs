// Page cost in headless Chromium: loading the module, the time from a confirmed connect to
// the beacon's request, main-thread time per connect and the JS heap, each beside the same
// page without mau-beacon. Every run is a fresh browser context (cold caches, empty storage).
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launchBrowser } from "../tests/twilio/browser.mjs";
import { CLIENT_BUILDS, start } from "../tests/twilio/fake-twilsock.mjs";
import { makeToken } from "../tests/twilio/jwt.mjs";
import { median, printTable, quantile } from "./table.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const SETTLE_MS = 200; // after a connect: long enough for the beacon's round trip on loopback
const REAL_CLIENT = "3.0.1";

const srv = await start({
  mode: "ok",
  logLevel: "silent",
  staticDirs: { "/js": path.join(ROOT, "js"), "/pkg": path.join(ROOT, "pkg"), "/bench": path.join(ROOT, "bench") },
  // The page without mau-beacon imports a module that does nothing, so both pay one request.
  pages: { "/empty.js": "export default function init() { return Promise.resolve({}); }\n" },
  httpRoutes: [{ method: "POST", path: "/collect", handler: (_req, res) => { res.writeHead(204); res.end(); } }],
});
const browser = await launchBrowser();

/** Main-thread task time and script time so far (CDP Performance metrics), in ms. */
async function mainThread(cdp) {
  const { metrics } = await cdp.send("Performance.getMetrics");
  const get = (n) => (metrics.find((m) => m.name === n)?.value ?? 0) * 1000;
  return { task: get("TaskDuration"), script: get("ScriptDuration") };
}

/** JS heap in use after a full garbage collection, in bytes. */
async function heap(cdp) {
  await cdp.send("HeapProfiler.collectGarbage");
  return (await cdp.send("Runtime.getHeapUsage")).usedSize;
}

/** Opens a fresh page; `withSdk` loads mau-beacon's ES module (timed) and starts a tracker. */
async function openPage(withSdk, realClient) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${srv.httpUrl}/blank.html`);
  if (realClient) await page.addScriptTag({ url: CLIENT_BUILDS[REAL_CLIENT] });
  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");
  const load = await page.evaluate(async (withSdk) => {
    window.__fake = await import("/bench/fake-client.js");
    const t0 = performance.now();
    const m = await import(withSdk ? "/js/index.js" : "/empty.js");
    const t1 = performance.now();
    const exports = await m.default();
    const t2 = performance.now();
    window.__delivered = 0;
    if (withSdk) {
      window.__tracker = new m.MauTracker({
        collectorUrl: "/collect",
        onEvent: (e) => { if (e.type === "delivered") window.__delivered += 1; },
      });
    }
    // The export names are minified (docs/size.md): the memory is found by its type.
    const memory = Object.values(exports ?? {}).find((v) => v instanceof WebAssembly.Memory);
    return { importMs: t1 - t0, initMs: t2 - t1, wasmMemory: memory?.buffer.byteLength ?? 0 };
  }, withSdk);
  return { context, page, cdp, load, errors };
}

/** A stand-in client for `identity` connects; main-thread time over that and what follows. */
async function standInConnect(p, identity) {
  await p.page.evaluate(async ([identity, token]) => {
    window.__client = new window.__fake.FakeClient(identity);
    window.__client.on("connectionStateChanged", (s) => { window.__appState = s; }); // the app's own listener
    if (window.__tracker) window.__tracker.watch(window.__client, { token });
    window.__delivered = 0;
    await new Promise((r) => setTimeout(r, 50)); // start-up work (the outbox's first flush) done
  }, [identity, makeToken({ identity })]);
  const before = await mainThread(p.cdp);
  const out = await p.page.evaluate(async (settle) => {
    const obs = [];
    new PerformanceObserver((l) => obs.push(...l.getEntries().filter((e) => e.name.endsWith("/collect")))).observe({ type: "resource" });
    const connectedAt = performance.now();
    window.__client.connect();
    await new Promise((r) => setTimeout(r, settle));
    return { delivered: window.__delivered, requestMs: obs.length ? obs[0].startTime - connectedAt : null };
  }, SETTLE_MS);
  const after = await mainThread(p.cdp);
  return { ...out, task: after.task - before.task, script: after.script - before.script };
}

/** The page's first connect (cold), the heap after it, then a second identity's (warm). */
async function standInRun(withSdk, i) {
  const p = await openPage(withSdk, false);
  const side = withSdk ? "with" : "without";
  const first = await standInConnect(p, `bench-${side}-${i}@example.com`);
  const h = await heap(p.cdp);
  const second = await standInConnect(p, `bench-${side}-${i}-second@example.com`);
  await p.context.close();
  if (p.errors.length) throw new Error(`page error: ${p.errors[0]}`);
  return { ...p.load, ...first, heap: h, second };
}

/** One connect of the real client to the fake Twilsock, up to `initialized` + SETTLE_MS. */
async function realRun(withSdk, i) {
  const p = await openPage(withSdk, true);
  const identity = `bench-real-${withSdk ? "with" : "without"}-${i}@example.com`;
  const before = await mainThread(p.cdp);
  const out = await p.page.evaluate(async ([token, uri, settle]) => {
    const obs = [];
    new PerformanceObserver((l) => obs.push(...l.getEntries().filter((e) => e.name.endsWith("/collect")))).observe({ type: "resource" });
    let connectedAt = null;
    const client = new Twilio.Conversations.Client(token, { Twilsock: { uri }, retryPolicy: { min: 200, max: 1000, randomness: 0 } });
    // Registered before the tracker's listener, so it runs first on the same event.
    client.on("connectionStateChanged", (s) => { if (s === "connected" && connectedAt === null) connectedAt = performance.now(); });
    if (window.__tracker) window.__tracker.watch(client, { token });
    await new Promise((resolve, reject) => {
      client.on("initialized", resolve);
      setTimeout(() => reject(new Error("the real client did not initialise in 10 s")), 10_000);
    });
    await new Promise((r) => setTimeout(r, settle));
    window.__realClient = client;
    return { delivered: window.__delivered, requestMs: obs.length && connectedAt !== null ? obs[0].startTime - connectedAt : null };
  }, [makeToken({ identity }), srv.wsUrl, SETTLE_MS]);
  const after = await mainThread(p.cdp);
  const h = await heap(p.cdp);
  await p.context.close();
  if (p.errors.length) throw new Error(`page error: ${p.errors[0]}`);
  return { ...out, task: after.task - before.task, script: after.script - before.script, heap: h };
}

const results = { standIn: { true: [], false: [] }, real: { true: [], false: [] } };
for (let i = 0; i < RUNS; i++) {
  for (const withSdk of [true, false]) { // interleaved, so drift hits both sides alike
    results.standIn[withSdk].push(await standInRun(withSdk, i));
    results.real[withSdk].push(await realRun(withSdk, i));
  }
}
await browser.close();
await srv.close();

const pick = (runs, k) => runs.map((r) => r[k]).filter((v) => v !== null && v !== undefined);
const fmt = (xs, unit = "ms", digits = 2) => (xs.length ? `${median(xs).toFixed(digits)} ${unit}` : "—");
const spread = (xs, digits = 2) => (xs.length ? `${quantile(xs, 0.1).toFixed(digits)}–${quantile(xs, 0.9).toFixed(digits)}` : "");
const diff = (a, b, unit = "ms", digits = 2) => (a.length && b.length ? `${(median(a) - median(b)).toFixed(digits)} ${unit}` : "—");
const kib = (runs) => pick(runs, "heap").map((b) => b / 1024);
const S = results.standIn, R = results.real;
const S2 = { true: S.true.map((r) => r.second), false: S.false.map((r) => r.second) };
const rows = [
  ["load: import the JS entry (fetch, parse, run)", fmt(pick(S.true, "importMs")), spread(pick(S.true, "importMs")), fmt(pick(S.false, "importMs")), diff(pick(S.true, "importMs"), pick(S.false, "importMs"))],
  ["load: init() = wasm fetch + compile + instantiate", fmt(pick(S.true, "initMs")), spread(pick(S.true, "initMs")), fmt(pick(S.false, "initMs")), diff(pick(S.true, "initMs"), pick(S.false, "initMs"))],
  ["load: both", fmt(S.true.map((r) => r.importMs + r.initMs)), spread(S.true.map((r) => r.importMs + r.initMs)), fmt(S.false.map((r) => r.importMs + r.initMs)), diff(S.true.map((r) => r.importMs + r.initMs), S.false.map((r) => r.importMs + r.initMs))],
  [`"connected" -> beacon request handed to the browser (real client ${REAL_CLIENT})`, fmt(pick(R.true, "requestMs")), spread(pick(R.true, "requestMs")), "no request", ""],
  ['"connected" -> beacon request handed to the browser (stand-in client)', fmt(pick(S.true, "requestMs")), spread(pick(S.true, "requestMs")), "no request", ""],
  [`main-thread task time, the page's first connect (stand-in client, ${SETTLE_MS} ms window)`, fmt(pick(S.true, "task")), spread(pick(S.true, "task")), fmt(pick(S.false, "task")), diff(pick(S.true, "task"), pick(S.false, "task"))],
  ["  of which script", fmt(pick(S.true, "script")), spread(pick(S.true, "script")), fmt(pick(S.false, "script")), diff(pick(S.true, "script"), pick(S.false, "script"))],
  ["main-thread task time, the page's second connect (another identity; stand-in)", fmt(pick(S2.true, "task")), spread(pick(S2.true, "task")), fmt(pick(S2.false, "task")), diff(pick(S2.true, "task"), pick(S2.false, "task"))],
  ["  of which script", fmt(pick(S2.true, "script")), spread(pick(S2.true, "script")), fmt(pick(S2.false, "script")), diff(pick(S2.true, "script"), pick(S2.false, "script"))],
  [`main-thread task time per connect (real client, new Client -> initialized + ${SETTLE_MS} ms)`, fmt(pick(R.true, "task")), spread(pick(R.true, "task")), fmt(pick(R.false, "task")), diff(pick(R.true, "task"), pick(R.false, "task"))],
  ["  of which script", fmt(pick(R.true, "script")), spread(pick(R.true, "script")), fmt(pick(R.false, "script")), diff(pick(R.true, "script"), pick(R.false, "script"))],
  ["JS heap after the first connect, after GC (stand-in client page)", fmt(kib(S.true), "KiB", 0), spread(kib(S.true), 0), fmt(kib(S.false), "KiB", 0), diff(kib(S.true), kib(S.false), "KiB", 0)],
  ["JS heap after the connect, after GC (real client page)", fmt(kib(R.true), "KiB", 0), spread(kib(R.true), 0), fmt(kib(R.false), "KiB", 0), diff(kib(R.true), kib(R.false), "KiB", 0)],
  ["wasm linear memory (outside the JS heap)", fmt(pick(S.true, "wasmMemory").map((b) => b / 1024), "KiB", 0), "", "—", ""],
];
const beacons = [...S.true, ...S2.true, ...R.true].filter((r) => r.delivered === 1).length;
printTable(
  `PAGE COST: headless Chromium, median of ${RUNS} runs each (fresh context per run)`,
  ["what", "with mau-beacon", "p10–p90", "without", "difference"],
  rows,
  [
    `Beacon delivered within the window in ${beacons} of ${3 * RUNS} connects with mau-beacon.`,
    "Load: performance.now() around `await import()` of js/index.js (without: an empty module) and around `await init()`.",
    "Connected -> request: startTime of the collector request's Resource Timing entry minus the time a",
    "  connectionStateChanged listener registered before the tracker's saw \"connected\".",
    "Main-thread time: CDP Performance.getMetrics TaskDuration / ScriptDuration, after minus before the window.",
    "Heap: CDP Runtime.getHeapUsage after HeapProfiler.collectGarbage, the tracker (and client) still alive.",
    `Real client: @twilio/conversations ${REAL_CLIENT} against the fake Twilsock on loopback; its own work dominates that`,
    "  page, so the stand-in client (bench/fake-client.js, an emitter with the real client's connect events) isolates mau-beacon's.",
  ],
);
