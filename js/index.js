// The package's entry: everything wasm-bindgen generates (`init`, `MauTracker`,
// `LazyClient`, …) plus a way in that cannot take the app down. `startTracker` returns at
// once and queues until the wasm is ready; if the wasm cannot load (a Content-Security-Policy
// without 'wasm-unsafe-eval', no WebAssembly, neither the .wasm nor the inlined copy
// reachable) it says why once and every method is a no-op. Nothing here throws into the app.
import glueInit, { MauTracker as GlueTracker } from "../pkg/web/mau_beacon.js";
import { failure, loadWith } from "./load.js";

export * from "../pkg/web/mau_beacon.js";

let warned = false;
// The trackers not yet disposed on this page: a second one for the same collector is a
// leak (a remount, a hot reload) that would double the page's work, so it is said once.
const live = new Set();
let warnedTwice = false;

/** wasm-bindgen's `MauTracker`, counted while alive. */
export class MauTracker extends GlueTracker {
  constructor(config) {
    super(config);
    const url = this.collectorUrl;
    if (!warnedTwice && [...live].some((t) => t.collectorUrl === url)) {
      warnedTwice = true;
      console.warn(`mau-beacon: a second MauTracker for ${url}; dispose() the first.`);
    }
    live.add(this);
  }
  dispose() {
    live.delete(this);
    super.dispose();
  }
  free() {
    live.delete(this);
    super.free();
  }
}

/** Loads the wasm once per page (the first call's `input` wins); never rejects. Without
 * `input`, or given a URL, a wasm URL that does not answer with a WebAssembly module falls
 * back to the copy inlined in a chunk of its own (`wasmSource: "inline"`). */
export function load(input) {
  return loadWith(input);
}

/** wasm-bindgen's `init`, through `load` (so with the same fallback); rejects with the
 * `MauBeaconError` when the wasm cannot load. */
export default function init(input) {
  if (input && Object.getPrototypeOf(input) === Object.prototype) input = input.module_or_path;
  return load(input).then((status) => {
    if (!status.ok) throw status.error;
    return glueInit();
  });
}

/** `onError` if the app gave one, else one console warning per page. */
function report(config, error) {
  const onError = config && config.onError;
  if (typeof onError === "function") {
    try {
      onError(error);
    } catch (_) {
      // The app's own handler must not break ours.
    }
  } else if (!warned) {
    warned = true;
    console.warn(error.message);
  }
}

/** Without `onError`, a collector that cannot be reached (CORS, most often) still gets
 * its one console warning; the tracker's other reports need an `onError` to be heard. */
function withNetworkWarning(config) {
  if (!config || typeof config !== "object" || config.onError !== undefined) return config;
  return { ...config, onError: (e) => e.code === "network" && report(config, e) };
}

/** A tracker usable at once, whatever happens to the wasm: calls made before it is ready
 * wait for it; if it cannot load, or the config is wrong, `onError` (else one console
 * warning) says why and every method is a no-op. */
export function startTracker(config) {
  let tracker;
  let disposed = false;
  let settled = false;
  let wasmSource;
  const queue = [];
  const whenReady = (job) => (settled ? job() : queue.push(job));
  // Which wasm ran, on the stats: `"url"`, `"inline"` (the fallback) or `"input"` (load's).
  const withSource = (stats) => stats && Object.assign(stats, { wasmSource });
  const ready = load().then((status) => {
    wasmSource = status.wasmSource;
    let error = status.ok ? undefined : status.error;
    if (!error && !disposed) {
      try {
        tracker = new MauTracker(withNetworkWarning(config));
      } catch (e) {
        error = failure("invalid_config", e instanceof Error ? e.message : String(e), e);
      }
    }
    if (error) report(config, error);
    settled = true;
    queue.splice(0).forEach((job) => job());
    return !error && !disposed;
  });
  return {
    ready,
    get tracker() {
      return tracker;
    },
    watch(client, options) {
      let watch;
      let stopped = false;
      whenReady(() => {
        if (!tracker || stopped) return;
        try {
          watch = tracker.watch(client, options);
        } catch (e) {
          report(config, e instanceof Error ? e : new Error(String(e)));
        }
      });
      return {
        stop() {
          stopped = true;
          if (watch) watch.stop();
        },
        get stopped() {
          return stopped;
        },
      };
    },
    flush: () => ready.then(() => (tracker ? tracker.flush().then(withSource) : undefined)),
    dispose() {
      disposed = true;
      const t = tracker;
      tracker = undefined;
      // Already freed by the app (`.tracker.free()`), or borrowed by the call under way.
      try {
        if (t) t.dispose();
      } catch {
        /* nothing left to free */
      }
    },
    stats: () => (tracker ? withSource(tracker.stats()) : undefined),
    // A non-string (e.g. `user?.identity` before sign-in) would throw in the glue.
    isCountedThisMonth: (identity) => (tracker && typeof identity === "string" ? tracker.isCountedThisMonth(identity) : false),
  };
}
