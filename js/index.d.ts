// Types for the package's entry (js/index.js): the generated API plus the fail-soft one.
import type { ConversationsClientLike, InitInput, InitOutput, MauBeaconError, MauStats, MauTracker, MauTrackerConfig, WatchOptions } from "../pkg/web/mau_beacon.js";

export * from "../pkg/web/mau_beacon.js";

/** Which wasm a page runs: `"url"`, the package's .wasm where the bundler put it;
 * `"inline"`, the copy inlined in a chunk of its own, fetched only when the .wasm's URL did
 * not answer with a WebAssembly module (a 404, a single-page-app server's index.html, a
 * blocked request); `"input"`, what the app gave `load()` (a `Response`, bytes, a
 * `WebAssembly.Module`). */
export type WasmSource = "url" | "inline" | "input";

/** `load()`'s outcome: it never rejects. */
export type LoadStatus = { ok: true; wasmSource: WasmSource } | { ok: false; error: MauBeaconError };

/** Loads the wasm once per page (the first call's `input` wins). Never rejects. Without
 * `input`, or with a URL, a URL that does not answer with wasm falls back to the inlined copy. */
export function load(input?: InitInput | Promise<InitInput>): Promise<LoadStatus>;

/** wasm-bindgen's initialisation, through `load()` (with its fallback); rejects with the
 * `MauBeaconError` when the wasm cannot load. */
export default function init(
  input?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>,
): Promise<InitOutput>;

/** `SoftTracker`'s stats: the tracker's, and which wasm the page runs. */
export type SoftStats = MauStats & { wasmSource: WasmSource };

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
  flush(): Promise<SoftStats | undefined>;
  /** `undefined` until ready, and when beacons are off. */
  stats(): SoftStats | undefined;
  isCountedThisMonth(identity: string): boolean;
  /** Stops its watches, timers and page hooks and frees the wasm side; every method is a
   * no-op after. Beacons not yet delivered stay stored for the next tracker. */
  dispose(): void;
}

/** Starts a tracker that cannot take the app down: no `await`, nothing thrown. */
export function startTracker(config: MauTrackerConfig): SoftTracker;
