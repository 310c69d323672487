// The script-tag build: one file, the wasm inlined, one global `MauBeacon`.
// `MauBeacon.ready` resolves once the wasm is compiled; the classes work after it.
import init from "../pkg/web/mau_beacon.js";
import wasm from "../pkg/web/mau_beacon_bg.wasm";

export { MauTracker, LazyClient, Watch, Trigger, version } from "../pkg/web/mau_beacon.js";
export const ready = init({ module_or_path: wasm }).then(() => undefined);
