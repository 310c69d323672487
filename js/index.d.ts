// Types for the package's entry (js/index.js): the generated API plus the fail-soft one.
import type { ConversationsClientLike, InitInput, MauBeaconError, MauStats, MauTracker, MauTrackerConfig, WatchOptions } from "../pkg/web/mau_beacon.js";

export * from "../pkg/web/mau_beacon.js";
export { default } from "../pkg/web/mau_beacon.js";

/** `load()`'s outcome: it never rejects. */
export type LoadStatus = { ok: true } | { ok: false; error: MauBeaconError };

/** Loads the wasm once per page (the first call's `input` wins). Never rejects. */
export function load(input?: InitInput | Promise<InitInput>): Promise<LoadStatus>;

/** `startTracker(…).watch()`: `stop()` works before the wasm is ready too. */
export interface SoftWatch {
  stop(): void;
  readonly stopped: boolean;
}

/** A tracker usable at once. Until the wasm is ready, `watch()` and `flush()` wait for it;
 * if it cannot load, or the config is wrong, every method is a no-op. */
export interface SoftTracker {
  /** `true` once the tracker runs; `false` when beacons are off on this page (and why
   * went to `onError`, else to one console warning). Never rejects. */
  readonly ready: Promise<boolean>;
  /** The underlying tracker once ready, else `undefined`. */
  readonly tracker: MauTracker | undefined;
  watch(client: ConversationsClientLike, options?: WatchOptions): SoftWatch;
  /** Resolves with the stats after a delivery pass; `undefined` when beacons are off. */
  flush(): Promise<MauStats | undefined>;
  /** `undefined` until ready, and when beacons are off. */
  stats(): MauStats | undefined;
  isCountedThisMonth(identity: string): boolean;
}

/** Starts a tracker that cannot take the app down: no `await`, nothing thrown. */
export function startTracker(config: MauTrackerConfig): SoftTracker;
