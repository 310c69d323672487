// MAU cost: a simulated month of page views through the real LazyClient in headless
// Chromium, with a createClient that counts, under four ways of creating the client.
// What Twilio bills is the identities whose client connected at least once this month.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launchBrowser } from "../tests/twilio/browser.mjs";
import { start } from "../tests/twilio/fake-twilsock.mjs";
import { makeToken } from "../tests/twilio/jwt.mjs";
import { printTable } from "./table.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const env = (name, dflt) => (process.env[name] === undefined ? dflt : Number(process.env[name]));
const SEED = env("BENCH_SEED", 9);
const VIEWS = env("BENCH_VIEWS", 10_000);
const IDENTITIES = env("BENCH_IDENTITIES", 2_000);
const OPEN_RATE = env("BENCH_OPEN_RATE", 0.15);
// Twilio's list price for Conversations (twilio.com/conversations/pricing): USD 0.05 per
// monthly active user, the first 200 MAU of a month free. Parameters, as prices change.
const PRICE = env("BENCH_PRICE_PER_MAU_USD", 0.05);
const FREE = env("BENCH_FREE_MAU", 200);
const STRATEGIES = ["eager", "connectOn", "connectWhenVisible", "eagerIfCounted"];

/** mulberry32: a small seeded PRNG, so every run simulates the same month. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The month: each page view is made by an identity drawn uniformly at random, and opens
// the chat with probability OPEN_RATE, independently of the identity's other views.
const rand = rng(SEED);
const views = Array.from({ length: VIEWS }, () => [Math.floor(rand() * IDENTITIES), rand() < OPEN_RATE]);
const identities = Array.from({ length: IDENTITIES }, (_, i) => `user-${String(i).padStart(4, "0")}@example.com`);
const tokens = identities.map((identity) => makeToken({ identity, ttl: 24 * 3600 }));

// What the schedule says each strategy must bill, to check the simulation against.
const visitors = new Set(views.map(([w]) => w)).size;
const openers = new Set(views.filter(([, o]) => o).map(([w]) => w)).size;
const expected = { eager: visitors, connectOn: openers, connectWhenVisible: openers, eagerIfCounted: openers };
// eagerIfCounted makes a client on every view of an identity after its first chat.
const opened = new Set();
let expectedEagerIfCountedClients = 0;
for (const [w, o] of views) {
  if (opened.has(w) || o) expectedEagerIfCountedClients += 1;
  if (o) opened.add(w);
}
const expectedClients = { eager: VIEWS, connectOn: views.filter(([, o]) => o).length, connectWhenVisible: views.filter(([, o]) => o).length, eagerIfCounted: expectedEagerIfCountedClients };

const beaconed = new Set();
const srv = await start({
  mode: "ok",
  logLevel: "silent",
  staticDirs: { "/js": path.join(ROOT, "js"), "/pkg": path.join(ROOT, "pkg"), "/bench": path.join(ROOT, "bench") },
  pages: {
    "/mau.html": `<!doctype html><meta charset="utf-8"><title>a page of the app</title>
<button id="chat-button">Chat</button>
<div style="height: 3000px">content</div>
<div id="chat-widget" style="height: 200px">chat widget</div>`,
  },
  httpRoutes: [{
    method: "POST",
    path: /^\/collect\/\w+$/,
    handler: (req, res, body) => {
      const strategy = new URL(req.url, "http://x").pathname.split("/")[2];
      try { beaconed.add(`${strategy}\n${JSON.parse(body.toString()).identity}`); } catch {}
      res.writeHead(204);
      res.end();
    },
  }],
});
const browser = await launchBrowser();
const results = {};
// The four months run side by side, each in its own browser context (one browser profile
// swapped per identity, see bench/mau-page.js); they share nothing but the collector.
await Promise.all(STRATEGIES.map(async (strategy) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(`${srv.httpUrl}/mau.html`);
  const t0 = Date.now();
  const r = await page.evaluate(async ([strategy, views, identities, tokens]) => {
    const { simulate } = await import("/bench/mau-page.js");
    return simulate(strategy, views, identities, tokens);
  }, [strategy, views, identities, tokens]);
  results[strategy] = { ...r, seconds: (Date.now() - t0) / 1000, pageErrors };
  await context.close();
}));
await browser.close();
await srv.close();

const beacons = (s) => [...beaconed].filter((k) => k.startsWith(`${s}\n`)).length;
const bill = (mau) => Math.max(0, mau - FREE) * PRICE;
const eager = results.eager.mau;
printTable(
  `MAU COST: a simulated month, ${VIEWS} page views, ${IDENTITIES} identities, ${OPEN_RATE * 100} % of views open chat (seed ${SEED})`,
  ["strategy", "MAUs billed", "vs eager", "bill USD", "saved USD", "clients made", "beacons (identities)", "expected MAUs", "sim s"],
  STRATEGIES.map((s) => {
    const r = results[s];
    return [s, r.mau, `${((100 * r.mau) / eager).toFixed(1)} %`, bill(r.mau).toFixed(2), (bill(eager) - bill(r.mau)).toFixed(2), r.clients,
      beacons(s), expected[s], r.seconds.toFixed(0)];
  }),
  [
    `Price: USD ${PRICE} per MAU, first ${FREE} MAU free (Twilio's Conversations list price, twilio.com/conversations/pricing;`,
    "  BENCH_PRICE_PER_MAU_USD / BENCH_FREE_MAU to change). Per MAU without the free tier: eager " +
      `USD ${(eager * PRICE).toFixed(2)}; ` + STRATEGIES.slice(1).map((s) => `${s} USD ${(results[s].mau * PRICE).toFixed(2)}`).join("; ") + ".",
    "MAUs billed: identities whose client (made by the counting createClient) emitted \"connected\" at least once.",
    "Expected MAUs: from the schedule alone (eager: identities with a view; the others: identities with a view that opens chat).",
    `Clients made: createClient calls; expected ${STRATEGIES.map((s) => `${s} ${expectedClients[s]}`).join(", ")}.`,
    "Beacons: distinct identities whose beacon reached the loopback collector under that strategy.",
    "eagerIfCounted arms connectOn and also connects at load when the tracker says the identity is counted this month.",
    ...STRATEGIES.filter((s) => results[s].errorCount || results[s].pageErrors.length)
      .map((s) => `${s}: ${results[s].errorCount} onError reports (${results[s].errors.join(" | ")}), page errors: ${results[s].pageErrors.join(" | ")}`),
  ],
);
