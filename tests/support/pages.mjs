// Pages for the SDK's multi-page tests: a static server with the script-tag build and the
// client test double (tests/wasm/double.js), a beacon receiver and Chromium; and a page
// clock that runs ahead or behind (an init script), movable while the page lives.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { ROOT } from "./collector.mjs";
import { startReceiver } from "./receiver.mjs";
import { serveStatic } from "./serve.mjs";
import { launchBrowser } from "../twilio/browser.mjs";

/** Starts what the pages need; `close()` stops it all. */
export async function startPages() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mau-pages-"));
  fs.writeFileSync(path.join(tmp, "index.html"), "<!doctype html><title>page</title>");
  const server = await serveStatic({ "/": tmp, "/mau": path.join(ROOT, "dist"), "/double": path.join(ROOT, "tests/wasm") });
  const receiver = await startReceiver();
  const browser = await launchBrowser();
  return {
    server,
    receiver,
    browser,
    async close() {
      await browser.close();
      await receiver.close();
      await server.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** A page of `context` with mau-beacon loaded and `window.FakeClient` defined. */
export async function openDoublePage(context, server) {
  const page = await context.newPage();
  await page.goto(`${server.url}/`);
  await page.addScriptTag({ url: "/mau/mau-beacon.global.js" });
  await page.addScriptTag({ type: "module", content: 'import { FakeClient } from "/double/double.js"; window.FakeClient = FakeClient;' });
  await page.waitForFunction(() => window.FakeClient);
  return page;
}

/**
 * An init script (`context.addInitScript(shiftedClock, offsetMs)`): `Date` runs `offsetMs`
 * ahead, timers untouched; `window.setClockOffset(ms)` moves it later.
 */
export function shiftedClock(offsetMs) {
  const RealDate = Date;
  let shift = offsetMs;
  function ShiftedDate(...a) {
    if (!new.target) return new RealDate(RealDate.now() + shift).toString();
    return a.length ? new RealDate(...a) : new RealDate(RealDate.now() + shift);
  }
  ShiftedDate.prototype = RealDate.prototype;
  ShiftedDate.now = () => RealDate.now() + shift;
  ShiftedDate.parse = RealDate.parse;
  ShiftedDate.UTC = RealDate.UTC;
  globalThis.Date = ShiftedDate;
  window.setClockOffset = (ms) => { shift = ms; };
}
