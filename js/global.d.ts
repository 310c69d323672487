// Types for the script-tag build: `<script src="mau-beacon.global.js">` defines `MauBeacon`.
import type * as Api from "../js/index.js";

declare global {
  const MauBeacon: {
    /** Resolves once the wasm is compiled; use the classes after it. Rejects (with a
     * `MauBeaconError`) if it cannot load; `startTracker` needs no such wait. */
    readonly ready: Promise<void>;
    /** A tracker usable at once that never throws into the page (see README). */
    readonly startTracker: typeof Api.startTracker;
    readonly load: typeof Api.load;
    readonly MauTracker: typeof Api.MauTracker;
    readonly LazyClient: typeof Api.LazyClient;
    readonly Watch: typeof Api.Watch;
    readonly Trigger: typeof Api.Trigger;
    readonly version: typeof Api.version;
  };
}
export {};
