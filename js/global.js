// The script-tag build: one file, the wasm inlined, one global `MauBeacon`.
// `MauBeacon.startTracker(config)` works at once and never throws; `MauBeacon.ready`
// resolves once the wasm is compiled (rejects if it cannot be), for the classes.
import { load } from "./index.js";
import wasm from "../pkg/web/mau_beacon_bg.wasm";

export { MauTracker, LazyClient, Watch, Trigger, version, startTracker, load } from "./index.js";

export const ready = load(wasm).then((status) => {
  if (!status.ok) throw status.error;
});
// Handled here, so a page that never looks at `ready` gets no unhandled rejection.
ready.catch(() => {});
