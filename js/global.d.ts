// Types for the script-tag build: `<script src="mau-beacon.global.js">` defines `MauBeacon`.
import type * as Api from "../pkg/web/mau_beacon.js";

declare global {
  const MauBeacon: {
    /** Resolves once the wasm is compiled; use the classes after it. */
    readonly ready: Promise<void>;
    readonly MauTracker: typeof Api.MauTracker;
    readonly LazyClient: typeof Api.LazyClient;
    readonly Watch: typeof Api.Watch;
    readonly Trigger: typeof Api.Trigger;
    readonly version: typeof Api.version;
  };
}
export {};
