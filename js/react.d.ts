// Types for mau-beacon/react (js/react.js; dist/react.cjs for `require` and servers).
import type { ReactElement, ReactNode } from "react";
import type { ConversationsClientLike, LazyClientConfig, LazyClientState, MauTrackerConfig, WatchOptions } from "../pkg/web/mau_beacon.js";
import type { SoftStats, SoftTracker } from "./index.js";

/** `startTracker`'s config, and the children that use it. */
export type MauBeaconProviderProps = MauTrackerConfig & { children?: ReactNode };

/** Starts the page's tracker for `collectorUrl`, or reuses it: one per page, kept across
 * hot reloads, route changes and a second provider. */
export function MauBeaconProvider(props: MauBeaconProviderProps): ReactElement;

/** The page's tracker, `undefined` outside a `MauBeaconProvider`. */
export function useMauTracker(): SoftTracker | undefined;

/** `useMauWatch`'s options: `WatchOptions`, and the `context` the beacon carries. */
export type MauWatchOptions = WatchOptions & { context?: string };

/** Watches `client` while the component is mounted; `null` while there is none yet. */
export function useMauWatch(client: ConversationsClientLike | null | undefined, options?: MauWatchOptions): void;

/** `useLazyClient`'s config: `LazyClientConfig` (its `tracker` defaults to the provider's). */
export type UseLazyClientConfig = Omit<LazyClientConfig, "tracker"> & { tracker?: LazyClientConfig["tracker"] | SoftTracker; context?: string };

/** What `useLazyClient` returns. */
export interface LazyClientHandle<C extends ConversationsClientLike = ConversationsClientLike> {
  /** The client once created, else `null`. */
  client: C | null;
  state: LazyClientState;
  /** Put on the element whose first click, focus or key press connects. */
  ref: (element: Element | null) => void;
  /** Creates the client now (once); rejects when unmounted. */
  get(): Promise<C>;
  shutdown(): Promise<void>;
}

/** A `LazyClient` for the component's lifetime: shut down on unmount. The config is read
 * when the component mounts. */
export function useLazyClient<C extends ConversationsClientLike = ConversationsClientLike>(
  config: Omit<UseLazyClientConfig, "createClient"> & { createClient: (token: string) => C },
): LazyClientHandle<C>;

/** The tracker's stats, re-rendering when they change; `undefined` until it is ready (and
 * when beacons are off on this page). */
export function useMauStats(): SoftStats | undefined;
