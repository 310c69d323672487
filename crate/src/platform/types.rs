//! TypeScript declarations for the config objects and results the classes take and
//! give. wasm-bindgen writes the classes; these are the shapes around them.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS: &'static str = r#"
/** The stable `code` of every error mau-beacon throws, rejects with or hands `onError`
 * (`wasm_unavailable` comes from the package entry when WebAssembly cannot load). */
export type MauBeaconErrorCode =
  | "invalid_config" | "token_unreadable" | "unavailable" | "callback_failed"
  | "shut_down" | "listeners_removed" | "identity_too_long" | "busy" | "network" | "wasm_unavailable";

/** An `Error` named `"MauBeaconError"`; `message` says what went wrong in words. */
export interface MauBeaconError extends Error {
  name: "MauBeaconError";
  code: MauBeaconErrorCode;
  /** The config field at fault, for `invalid_config`. */
  field?: string;
}

/** What made a client, sent as the beacon's `reason`: `"click"`, `"focus"` (focus moved
 * inside the target, not by a click) or `"key"` (a `keydown`) from `LazyClient.connectOn`;
 * `"visible"` from `connectWhenVisible`; `"explicit"`, the app's own `LazyClient.get()` (or
 * `eagerIfCounted`); `"app"`, a client the app made itself and gave `watch()` or
 * `replaceClient`. */
export type MauReason = "click" | "visible" | "focus" | "key" | "explicit" | "app";

/** `LazyClient.state`. */
export type LazyClientState = "idle" | "connecting" | "ready" | "closed";

/** `new MauTracker(config)`. */
export interface MauTrackerConfig {
  /** Where beacons go: an http(s) URL, absolute or relative to the page. */
  collectorUrl: string;
  /** `"month"` (default): one beacon per identity per UTC month on this device.
   * `"none"`: one per confirmed connect. */
  dedupe?: "month" | "none";
  /** How long to wait for `initialized` when the identity is known only from it. Default 30000. */
  identityTimeoutMs?: number;
  /** Backoff between retries: starts at `baseMs` (default 1000), doubles, capped at `maxMs` (default 60000), ±25 % jitter. */
  retry?: { baseMs?: number; maxMs?: number };
  /** Errors inside event handlers land here; they never throw into the app. */
  onError?: (error: MauBeaconError) => void;
  /** Every step of every beacon, for logs and dashboards. */
  onEvent?: (event: BeaconEvent) => void;
}

/** `tracker.watch(client, options)`: where the identity comes from. */
export interface WatchOptions {
  /** The identity, when the app knows it. */
  identity?: string;
  /** The access token (or a function returning the current one): its `grants.identity`
   * is read. The token is never sent, stored or logged. */
  token?: string | (() => string | null | undefined);
  /** A signed ticket from your backend for a collector run with `--require-ticket`
   * (`v1.<exp>.<sig>`), or a function returning the current one (or a Promise of it),
   * called at each connect. Sent in the beacon and kept with it until delivered. */
  ticket?: string | (() => string | Promise<string>);
  /** The app's name for the place that made this client (`"support-widget"`, `"inbox"`):
   * 1–64 characters of `A-Z a-z 0-9 . _ : / -`. Sent with its beacons, so the collector's
   * report says which part of the app makes each MAU. */
  context?: string;
  /** What made the client; `LazyClient` sets it. Default `"app"`. */
  reason?: MauReason;
}

/** One step of a beacon's life. */
export interface BeaconEvent {
  type: "queued" | "deduped" | "delivered" | "retry" | "dropped" | "no_identity";
  identity?: string;
  eventId?: string;
  /** The HTTP status of the attempt, if it got one. */
  status?: number;
  /** Network error or drop reason. */
  error?: string;
}

/** `tracker.stats()`. */
export interface MauStats {
  pending: number;
  delivered: number;
  dropped: number;
  /** `dropped` by reason: `http_<status>`, `no_identity`, `corrupt_store`, `identity_too_long`. */
  dropReasons: Record<string, number>;
  /** Every confirmed `connected`, reconnects included. */
  connectsSeen: number;
  queued: number;
  /** Connects with no beacon because the identity was counted this month already. */
  deduped: number;
  retries: number;
  /** `"localStorage"`, or `"memory"` when storage is unavailable. */
  storage: "localStorage" | "memory";
  storageError?: string;
  lastError?: string;
}

/** `new LazyClient(config)`. */
/** What `getToken` may return instead of the bare token: the token and the signed ticket
 * your backend minted with it. */
export interface TokenWithTicket {
  token: string;
  ticket?: string;
}

export interface LazyClientConfig {
  /** Makes the client, e.g. `(token) => new Client(token)`. Called once per session. */
  createClient: (token: string) => ConversationsClientLike;
  /** Fetches an access token; called on first need and, unless `refreshToken` is false,
   * on `tokenAboutToExpire`/`tokenExpired`. */
  getToken: () => string | TokenWithTicket | Promise<string | TokenWithTicket>;
  /** Default true: refresh the token with `getToken` + `updateToken`. False: the app
   * refreshes it itself (hand a replacement client over with `replaceClient`). */
  refreshToken?: boolean;
  /** Watch the created client with this tracker. */
  tracker?: MauTracker;
  /** The user's identity, for `eagerIfCounted`. */
  identity?: string;
  /** Connect at once if `identity` is already counted this month (it costs nothing more). */
  eagerIfCounted?: boolean;
  /** Longest wait for `client.shutdown()`. Default 5000. */
  shutdownTimeoutMs?: number;
  /** The signed ticket for the tracker's watch (see `WatchOptions.ticket`); else the one
   * `getToken` returns beside the token, when it returns one. */
  ticket?: string | (() => string | Promise<string>);
  /** The app's name for the place this client serves (see `WatchOptions.context`); its
   * beacons carry it, and the trigger that made the client as their `reason`. */
  context?: string;
  /** Failures of triggers and token refresh land here. */
  onError?: (error: MauBeaconError) => void;
  /** Every change of `state`, as it happens (`shutdown()` reports `closed` at once). */
  onStateChange?: (state: LazyClientState) => void;
}
"#;
