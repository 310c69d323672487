// Runs simulated months in headless Chromium (bench/mau-page.js does the page views).
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launchBrowser } from "../tests/twilio/browser.mjs";
import { start } from "../tests/twilio/fake-twilsock.mjs";
import { makeToken } from "../tests/twilio/jwt.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const STRATEGIES = ["eager", "connectOn", "connectWhenVisible", "eagerIfCounted"];

/**
 * Runs `views` ([identity index, opens chat]) once per strategy, the four side by side, each
 * in its own browser context. Returns per strategy the page's counts, the seconds it took
 * and `beacons`: distinct identities whose beacon reached the loopback collector.
 */
export async function runMonths(views, identities, strategies = STRATEGIES) {
  const tokens = identities.map((identity) => makeToken({ identity, ttl: 24 * 3600 }));
  const beaconed = new Map(strategies.map((s) => [s, new Set()]));
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
        try { beaconed.get(strategy)?.add(JSON.parse(body.toString()).identity); } catch {}
        res.writeHead(204);
        res.end();
      },
    }],
  });
  const browser = await launchBrowser();
  const results = {};
  try {
    await Promise.all(strategies.map(async (strategy) => {
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
      results[strategy] = { ...r, seconds: (Date.now() - t0) / 1000, pageErrors, beacons: beaconed.get(strategy).size };
      await context.close();
    }));
  } finally {
    await browser.close();
    await srv.close();
  }
  return results;
}
