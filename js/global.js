// The script-tag build: one file, the wasm inlined, one global `MauBeacon`.
// `MauBeacon.startTracker(config)` works at once and never throws; `MauBeacon.ready`
// resolves once the wasm is compiled (rejects if it cannot be), for the classes.
//
// The wasm is inlined deflated, then base64 (scripts/build.sh): a third smaller than
// base64 of the raw wasm once the file is served gzipped (docs/size.md). The browser's
// DecompressionStream inflates it (Chrome 80, Firefox 113, Safari 16.4); without one,
// `ready` rejects and `startTracker` says why once, like any wasm that cannot load.
import { load } from "./index.js";
import packed from "../pkg/packed/mau_beacon_bg.wasm.deflate";

export { MauTracker, LazyClient, Watch, Trigger, version, startTracker, load } from "./index.js";

/** The wasm as a `Response`, so it compiles while it inflates. */
function unpack() {
  const bytes = Uint8Array.from(atob(packed), (c) => c.charCodeAt(0));
  const wasm = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Response(wasm, { headers: { "content-type": "application/wasm" } });
}

export const ready = load(Promise.resolve().then(unpack)).then((status) => {
  if (!status.ok) throw status.error;
});
// Handled here, so a page that never looks at `ready` gets no unhandled rejection.
ready.catch(() => {});
