// The fault suite: everything at once, one number at the end.
//
// Hundreds of page sessions in headless Chromium run the real @twilio/conversations client
// (3.0.1 and 2.7.0) against the fake Twilsock, watched by mau-beacon's script-tag build, whose
// beacons go through a fault-injecting proxy (proxy.mjs) to a real mau-collector that is
// killed (-9) and restarted on the same database while they run. Pages are closed and
// reloaded mid-send, the browser goes offline and back, several tabs share one identity,
// page clocks are 3 h off either way or about to cross into a new month, and some tokens are
// denied. The truth is what the fake Twilsock let connect, not what the SDK says.
//
//   SEED=42 node tests/fault/run.mjs
//
// Prints one line (`sessions S, identities connected K, exported K, lost 0, duplicates 0,
// faults injected F`) and exits non-zero on any identity lost, exported without having
// connected, or any connect beacon stored more than once per device month.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { unsafeUniformIntDistribution, xoroshiro128plus } from "pure-rand";

import { buildCollector, ROOT, startCollector } from "../support/collector.mjs";
import { shiftedClock } from "../support/pages.mjs";
import { launchBrowser } from "../twilio/browser.mjs";
import { CLIENT_BUILDS, start } from "../twilio/fake-twilsock.mjs";
import { makeToken, tokenIdentity } from "../twilio/jwt.mjs";
import { startProxy } from "./proxy.mjs";

const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31));
const MIN_SESSIONS = Number(process.env.FAULT_SESSIONS ?? 200);
/** Identities in flight at once (each its own browser profile, with its tabs). */
const WORKERS = Number(process.env.FAULT_WORKERS ?? 8);
const trace = (m) => process.env.FAULT_TRACE && console.error(`${((Date.now() - started) / 1000).toFixed(1)} s ${m}`);
/** The whole run is bounded; past this it fails. */
const DEADLINE_MS = 9 * 60_000;
const HOUR = 3_600_000;
/** The SDK's month marks hold only this far inside a month (CLOCK_SLACK_MS in its outbox). */
const SLACK_MS = 6 * HOUR;
console.error(`fault suite: SEED=${SEED}`);

/** A seeded generator of floats in [0, 1), so a failing run can be replayed. */
function seeded(seed) {
  const g = xoroshiro128plus(seed);
  return () => unsafeUniformIntDistribution(0, 2 ** 30 - 1, g) / 2 ** 30;
}
// The plan is fixed by the seed; the faults' and pauses' draws are seeded too, though
// their interleaving follows the timing of the run.
const rng = seeded(SEED);
const faultRng = seeded(SEED ^ 0x5eed);
const chaosRng = seeded(SEED ^ 0xc4a05);
const pick = (xs) => xs[Math.floor(rng() * xs.length)];
const chance = (p) => rng() < p;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const monthOf = (ms) => new Date(ms).toISOString().slice(0, 7);

/** The first instant of the next UTC month, from `ms`. */
function nextMonthStart(ms) {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/**
 * One identity's plan: a browser profile, its tabs, and what happens to each.
 * `clock`: how the page clock is set; `offsetMs` is computed when the profile opens.
 */
function planIdentity(n) {
  const denied = n % 11 === 10;
  const clock = pick(["true", "true", "ahead3h", "behind3h", "month_end"]);
  const tabs = pick([1, 1, 2, 3]);
  const concurrentTabs = chance(0.5);
  // Offline is the whole profile's: its tabs run one after another then.
  const kinds = concurrentTabs ? ["stay", "close_mid_send", "reload"] : ["stay", "close_mid_send", "reload", "offline"];
  const actions = Array.from({ length: tabs }, () => pick(kinds));
  return {
    identity: `${denied ? "denied" : "user"}-${n}-${SEED}@example.com`,
    denied,
    version: pick(["3.0.1", "2.7.0"]),
    clock: denied ? "true" : clock,
    // A month_end profile stays connected across the boundary: no reconnects there.
    actions: clock === "month_end" ? actions.map(() => "stay") : actions,
    concurrentTabs,
  };
}

const plans = [];
for (let n = 0, sessions = 0; sessions < MIN_SESSIONS; n++) {
  const p = planIdentity(n);
  plans.push(p);
  // A reload or a close mid-send is followed by a second session in the same profile.
  // Denied tabs end at the denial.
  sessions += p.actions.reduce((s, a) => s + (!p.denied && (a === "reload" || a === "close_mid_send") ? 2 : 1), 0);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mau-fault-"));
const db = path.join(tmp, "collector.db");
const started = Date.now();
let collector, srv, proxy, browser;
let sessions = 0;
let kills = 0;
const failures = [];

const pageNames = new WeakMap();
let pagesNamed = 0;
/** A short name for a page, for the log of its profile. */
function pageName(page) {
  if (!pageNames.has(page)) pageNames.set(page, `page${++pagesNamed}`);
  return pageNames.get(page);
}

/** Loads the client build and mau-beacon into `page`, then creates a watched client. */
async function runClient(page, plan, token) {
  await page.goto(`${srv.httpUrl}/blank.html`);
  await page.addScriptTag({ url: CLIENT_BUILDS[plan.version] });
  await page.addScriptTag({ url: "/mau/mau-beacon.global.js" });
  await page.evaluate(async ([collectorUrl, wsUrl, token]) => {
    await MauBeacon.ready;
    window.states = [];
    window.tracker = new MauBeacon.MauTracker({
      collectorUrl,
      retry: { baseMs: 200, maxMs: 1000 },
      onEvent: (e) => e.type !== "retry" && window.faultLog?.(`${e.type} ${e.eventId ?? ""}`),
    });
    const c = new Twilio.Conversations.Client(token, {
      Twilsock: { uri: wsUrl },
      retryPolicy: { min: 200, max: 1000, randomness: 0 },
    });
    c.on("connectionStateChanged", (s) => window.states.push(s));
    window.client = c;
    window.watch = window.tracker.watch(c, { token });
  }, [`${proxy.url}/v1/beacons`, srv.wsUrl, token]);
  sessions += 1;
  const end = plan.denied ? "denied" : "connected";
  await page.waitForFunction((s) => window.states.includes(s), end, { timeout: 30_000, polling: 50 });
  plan.log.push(`${Date.now() - started} ms ${pageName(page)} saw ${end}`);
}

/** One tab of a profile: a session, then its action (and the session that follows it). */
async function runTab(context, plan, action, token) {
  const page = await context.newPage();
  await runClient(page, plan, token);
  if (plan.denied) return page.close();
  switch (action) {
    case "close_mid_send":
      // The beacon is stored and its first attempt is on the wire: close now, come back later.
      plan.log.push(`${Date.now() - started} ms ${pageName(page)} closing`);
      await page.close();
      await sleep(200 + rng() * 800);
      return runTab(context, plan, "stay", token);
    case "reload":
      plan.log.push(`${Date.now() - started} ms ${pageName(page)} reloading`);
      await page.reload();
      await runClient(page, plan, token);
      break;
    case "offline":
      await context.setOffline(true);
      await sleep(500 + rng() * 1500);
      await context.setOffline(false);
      await page.waitForFunction(() => window.states.filter((s) => s === "connected").length >= 2, null, {
        timeout: 30_000,
        polling: 50,
      });
      break;
    default:
      break;
  }
  // A month_end profile stays connected until its page clock is past the boundary.
  const pageNow = await page.evaluate(() => Date.now());
  const toBoundary = plan.clock === "month_end" ? nextMonthStart(plan.startedAt + plan.offsetMs) - pageNow : 0;
  await sleep(toBoundary > 0 ? toBoundary + 2_500 : 100 + rng() * 700);
  return page.close();
}

/** Opens a page with only a tracker until this profile's stored beacons are all delivered. */
async function drain(context) {
  const page = await context.newPage();
  await page.goto(`${srv.httpUrl}/blank.html`);
  await page.addScriptTag({ url: "/mau/mau-beacon.global.js" });
  const pending = await page.evaluate(async (collectorUrl) => {
    await MauBeacon.ready;
    const tracker = new MauBeacon.MauTracker({ collectorUrl, retry: { baseMs: 200, maxMs: 1000 } });
    const until = Date.now() + 120_000;
    let stats = await tracker.flush();
    while (stats.pending > 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 300));
      stats = await tracker.flush();
    }
    return stats.pending;
  }, `${proxy.url}/v1/beacons`);
  await page.close();
  return pending;
}

/** Runs one identity in its own profile. Returns the page clock offset it used. */
async function runIdentity(plan) {
  const now = Date.now();
  const offsetMs = {
    true: 0,
    ahead3h: 3 * HOUR,
    behind3h: -3 * HOUR,
    // The page believes it is 12 s before the next UTC month.
    month_end: nextMonthStart(now) - 12_000 - now,
  }[plan.clock];
  plan.offsetMs = offsetMs;
  plan.startedAt = now;
  // Valid for the page's clock too (clients schedule refreshes from `exp`).
  const token = makeToken({ identity: plan.identity, ttl: Math.ceil((Math.abs(offsetMs) + 2 * HOUR) / 1000) });
  const context = await browser.newContext();
  await context.addInitScript(shiftedClock, offsetMs);
  // What each page's SDK said, for the account of a failure (pages come and go).
  plan.log = [];
  await context.exposeBinding("faultLog", ({ page }, msg) => {
    plan.log.push(`${Date.now() - started} ms ${pageName(page)} ${msg}`);
  });
  try {
    const tabs = plan.actions.map((a) => () => runTab(context, plan, a, token));
    if (plan.concurrentTabs) await Promise.all(tabs.map((t) => t()));
    else for (const t of tabs) await t();
    const left = await drain(context);
    if (left > 0) failures.push(`${plan.identity}: ${left} beacons still pending after the drain`);
    trace(`${plan.identity} ${plan.clock} ${plan.actions} ${Date.now() - now} ms`);
  } catch (e) {
    failures.push(`${plan.identity}: ${e.message.split("\n")[0]}`);
  } finally {
    await context.close().catch(() => {});
  }
}

/** kill -9 the collector at seeded moments and restart it on the same database. */
async function chaos(done) {
  while (!done.value) {
    for (const until = Date.now() + 8_000 + chaosRng() * 12_000; Date.now() < until && !done.value;) await sleep(250);
    if (done.value) break;
    trace("kill -9");
    proxy.setUpstream(null);
    await collector.stop("SIGKILL");
    kills += 1;
    await sleep(500 + chaosRng() * 1500);
    collector = await startCollector({ db });
    proxy.setUpstream(collector.port);
  }
}

async function main() {
  buildCollector();
  trace("collector built");
  collector = await startCollector({ db });
  proxy = await startProxy({ rng: faultRng, maxStalls: 3 });
  proxy.setUpstream(collector.port);
  srv = await start({
    mode: (conn) => (String(tokenIdentity(conn.token)).startsWith("denied-") ? "deny" : "ok"),
    staticDirs: { "/mau": path.join(ROOT, "dist") },
  });
  browser = await launchBrowser();

  const done = { value: false };
  const chaosRun = chaos(done);
  const queue = [...plans];
  await Promise.all(Array.from({ length: WORKERS }, async () => {
    while (queue.length && Date.now() - started < DEADLINE_MS) await runIdentity(queue.shift());
  }));
  done.value = true;
  trace("sessions done");
  await chaosRun;
  trace("chaos stopped");
  if (queue.length) failures.push(`deadline: ${queue.length} identities not run`);

  // The truth: who the fake Twilsock let connect, and when by each page's clock; from it,
  // how many connect beacons the SDK's month rule allows (one per identity and device
  // month, plus one for each connect within the clock slack of a month's edge).
  const offsets = new Map(plans.map((p) => [p.identity, p.offsetMs ?? 0]));
  const truth = new Map();
  for (const a of [...srv.stats.accepted].sort((x, y) => x.at - y.at)) {
    const t = truth.get(a.identity) ?? { marks: new Map(), beacons: 0 };
    const at = a.at + offsets.get(a.identity);
    const mark = t.marks.get(monthOf(at));
    const covered = mark !== undefined && monthOf(mark - SLACK_MS) === monthOf(at + SLACK_MS);
    if (!covered) {
      t.beacons += 1;
      t.marks.set(monthOf(at), at);
    }
    truth.set(a.identity, t);
  }
  const exported = new Map();
  for (const { month } of await collector.read("/v1/months")) {
    for (const row of await collector.read(`/v1/months/${month}/identities?format=json`)) {
      if (exported.has(row.identity)) failures.push(`${row.identity}: exported in two months`);
      exported.set(row.identity, row);
    }
  }
  let lost = 0;
  let duplicates = 0;
  for (const [identity, { beacons }] of truth) {
    const row = exported.get(identity);
    if (!row) {
      lost += 1;
      failures.push(`${identity}: connected, not exported`);
    } else if (row.connects > beacons) {
      // Whatever the tabs and faults, no more connect beacons than the month rule allows.
      duplicates += row.connects - beacons;
      failures.push(`${identity}: ${row.connects} connect beacons where the month rule allows ${beacons}`);
      const plan = plans.find((p) => p.identity === identity);
      const accepts = srv.stats.accepted.filter((a) => a.identity === identity).map((a) => a.at - started);
      console.error(`${identity}: ${JSON.stringify({ ...plan, log: undefined })}\n  accepted at ${accepts} ms\n  ${plan.log.join("\n  ")}`);
    }
  }
  // A month_end profile connected before its page clock crossed into the next month, and
  // stayed: its client was still connected in a new month, reported as such.
  let stillConnected = 0;
  for (const p of plans.filter((p) => p.clock === "month_end" && truth.has(p.identity))) {
    const boundary = nextMonthStart(started + p.offsetMs);
    const accepts = srv.stats.accepted.filter((a) => a.identity === p.identity);
    if (!accepts.every((a) => a.at + p.offsetMs < boundary - 1000)) continue;
    stillConnected += 1;
    if (!exported.get(p.identity)?.sources.includes("sdk_still_connected")) {
      failures.push(`${p.identity}: connected across the month's end, no still_connected beacon`);
    }
  }
  for (const identity of exported.keys()) {
    if (!truth.has(identity)) failures.push(`${identity}: exported, never connected`);
  }
  if (plans.some((p) => p.denied && truth.has(p.identity))) failures.push("a denied identity was let connect");

  console.log(
    `sessions ${sessions}, identities connected ${truth.size}, exported ${exported.size}, lost ${lost}, ` +
      `duplicates ${duplicates}, faults injected ${proxy.faults + kills}`,
  );
  const secs = Math.round((Date.now() - started) / 1000);
  console.error(
    `fault suite: SEED=${SEED}, ${secs} s, ${stillConnected} clients still connected as a month began; ` +
      `faults ${JSON.stringify({ ...proxy.counts, kill9: kills })}`,
  );
  if (sessions < MIN_SESSIONS) failures.push(`only ${sessions} sessions ran`);
  for (const f of failures) console.error(`FAIL ${f}`);
  return failures.length === 0;
}

let ok = false;
try {
  ok = await main();
} catch (e) {
  console.error(e);
} finally {
  await browser?.close().catch(() => {});
  await proxy?.close();
  await srv?.close();
  await collector?.stop("SIGTERM").catch(() => {});
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
