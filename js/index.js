// The package's entry: everything wasm-bindgen generates (`init`, `MauTracker`,
// `LazyClient`, …) plus a way in that cannot take the app down. `startTracker` returns at
// once and queues until the wasm is ready; if the wasm cannot load (blocked request, 404,
// a Content-Security-Policy without 'wasm-unsafe-eval', no WebAssembly) it says why once
// and every method is a no-op. Nothing here throws into the app.
import init, { MauTracker } from "../pkg/web/mau_beacon.js";

export * from "../pkg/web/mau_beacon.js";
export { default } from "../pkg/web/mau_beacon.js";

let loading;
let warned = false;

function failure(code, message, cause) {
  const error = new Error(message);
  error.name = "MauBeaconError";
  error.code = code;
  error.cause = cause;
  return error;
}

/** Loads the wasm once per page (the first call's `input` wins); never rejects. */
export function load(input) {
  loading = loading || Promise.resolve()
    .then(() => {
      if (typeof WebAssembly !== "object") throw new Error("this browser has no WebAssembly");
      return init(input === undefined ? undefined : { module_or_path: input });
    })
    .then(
      () => ({ ok: true }),
      (cause) => ({
        ok: false,
        error: failure(
          "wasm_unavailable",
          `mau-beacon: its WebAssembly did not load (${cause}); no beacons from this page, the app runs on. ` +
            `A Content-Security-Policy needs script-src 'wasm-unsafe-eval' (see README).`,
          cause,
        ),
      }),
    );
  return loading;
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

/** A tracker usable at once, whatever happens to the wasm: calls made before it is ready
 * wait for it; if it cannot load, or the config is wrong, `onError` (else one console
 * warning) says why and every method is a no-op. */
export function startTracker(config) {
  let tracker;
  let settled = false;
  const queue = [];
  const whenReady = (job) => (settled ? job() : queue.push(job));
  const ready = load().then((status) => {
    let error = status.ok ? undefined : status.error;
    if (!error) {
      try {
        tracker = new MauTracker(config);
      } catch (e) {
        error = failure("invalid_config", e instanceof Error ? e.message : String(e), e);
      }
    }
    if (error) report(config, error);
    settled = true;
    queue.splice(0).forEach((job) => job());
    return !error;
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
    flush: () => ready.then(() => (tracker ? tracker.flush() : undefined)),
    stats: () => (tracker ? tracker.stats() : undefined),
    // A non-string (e.g. `user?.identity` before sign-in) would throw in the glue.
    isCountedThisMonth: (identity) => (tracker && typeof identity === "string" ? tracker.isCountedThisMonth(identity) : false),
  };
}
