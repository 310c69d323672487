// The script-tag build: one file, the wasm inlined, one global `MauBeacon`.
// `MauBeacon.startTracker(config)` works at once and never throws; `MauBeacon.ready`
// resolves once the wasm is compiled (rejects if it cannot be), for the classes.
//
// The wasm is inlined deflated, then base64 (scripts/build.sh, js/inline.js): a third
// smaller than base64 of the raw wasm once the file is served gzipped (docs/size.md).
// Without a DecompressionStream, `ready` rejects and `startTracker` says why once, like any
// wasm that cannot load.
import { loadWith } from "./load.js";

export { MauTracker, LazyClient, Watch, Trigger, version, startTracker, load } from "./index.js";
// Imported last, so the base64 ends the file: gzip -9 packs it ~1 KB smaller there.
import { unpack } from "./inline.js";

export const ready = loadWith(Promise.resolve().then(unpack), "inline").then((status) => {
  if (!status.ok) throw status.error;
});
// Handled here, so a page that never looks at `ready` gets no unhandled rejection.
ready.catch(() => {});
