"use strict";
// What `require("mau-beacon")` and `mau-beacon/testing` give: the same API, inert, for
// test runners (Jest loads packages through `require`) and server rendering, where there
// is no page to beacon from. No wasm is loaded, nothing is sent or stored, config is not
// checked. LazyClient still creates its client through `createClient`, so chat code under
// test runs.
// A bundler that resolves `require("mau-beacon")` for a real page (esbuild, Browserify)
// lands here too: say so once, since no beacon leaves such a page. jsdom and happy-dom
// (test runners) stay quiet.
let warned = false;
const inBrowser = () =>
  typeof window === "object" && typeof navigator === "object" && !/jsdom|happydom/i.test(navigator.userAgent || "");
const warnInBrowser = () => {
  if (warned || !inBrowser()) return;
  warned = true;
  console.warn(
    'mau-beacon: the inert build (for tests and servers) was loaded in a browser page, because a bundler resolved require("mau-beacon"); ' +
      'no beacons are sent. Import it as an ES module: import { startTracker } from "mau-beacon".',
  );
};

const stats = () => ({
  pending: 0, delivered: 0, dropped: 0, dropReasons: {}, connectsSeen: 0,
  queued: 0, deduped: 0, retries: 0, storage: "memory",
});
class Watch {
  constructor() { this.stopped = false; }
  stop() { this.stopped = true; }
  free() {}
}
class Trigger extends Watch {
  get done() { return false; }
}
const stoppable = () => new Watch();

class MauTracker {
  constructor(config) {
    warnInBrowser();
    this.collectorUrl = (config && config.collectorUrl) || "";
  }
  watch() { return stoppable(); }
  flush() { return Promise.resolve(stats()); }
  stats() { return stats(); }
  isCountedThisMonth() { return false; }
  dispose() {}
  free() {}
}

class LazyClient {
  constructor(config) {
    this.config = config;
    this.client = undefined;
    this.clientsCreated = 0;
    this.state = "idle";
  }
  get() {
    if (this.state === "closed") return Promise.reject(new Error("mau-beacon: the LazyClient was shut down"));
    this.client = this.client || Promise.resolve(this.config.getToken()).then((token) => {
      this.clientsCreated += 1;
      this.state = "ready";
      const client = this.config.createClient(token);
      if (typeof this.config.onStateChange === "function") this.config.onStateChange("ready");
      return client;
    });
    return this.client;
  }
  connectOn() { return new Trigger(); }
  connectWhenVisible() { return new Trigger(); }
  replaceClient(client) { this.client = Promise.resolve(client); }
  shutdown() {
    this.state = "closed";
    if (typeof this.config.onStateChange === "function") this.config.onStateChange("closed");
    return Promise.resolve();
  }
  free() {}
}

const inert = Object.assign(new Error("mau-beacon: inert build (tests, server rendering): no beacons"), { code: "inert" });
const load = () => {
  warnInBrowser();
  return Promise.resolve({ ok: false, error: inert });
};
const init = () => {
  warnInBrowser();
  return Promise.resolve({});
};

function startTracker() {
  warnInBrowser();
  return {
    ready: Promise.resolve(false),
    tracker: undefined,
    watch: stoppable,
    flush: () => Promise.resolve(undefined),
    stats: () => undefined,
    isCountedThisMonth: () => false,
    dispose() {},
  };
}

function initSync() {}
const version = () => "inert";

// Plain `name,` entries only, so Node's ESM loader sees every name (`import { startTracker }
// from "mau-beacon"` under server rendering).
module.exports = {
  __esModule: true, default: init, init, initSync, load, startTracker, MauTracker, LazyClient, Watch, Trigger, version,
};
