"use client";
// mau-beacon for React: a provider that keeps one tracker per page, and hooks that watch a
// client, create one lazily, and read the stats. Safe under StrictMode's mount–unmount–
// mount and hot reload: the tracker lives on `globalThis`, not in a component, and every
// effect undoes what it did. Server rendering and `require` get the same API from
// dist/react.cjs, built from this file over the inert build.
import { createContext, createElement, useCallback, useContext, useEffect, useRef, useState, useSyncExternalStore } from "react";

import { LazyClient, load, startTracker } from "./index.js";

// One entry per collector URL for the whole page, shared by every copy of this module a
// hot reload makes: { tracker, props (the latest provider's), listeners }.
const PAGE_KEY = Symbol.for("mau-beacon.react.trackers");
const page = () => (globalThis[PAGE_KEY] = globalThis[PAGE_KEY] || new Map());

/** The page's tracker for `props.collectorUrl`, started on first use. Callbacks go to the
 * latest provider's props, so a re-render with new ones is heard. */
function pageTracker(props) {
  const trackers = page();
  let entry = trackers.get(props.collectorUrl);
  if (!entry) {
    const { children: _children, ...config } = props;
    entry = { props, listeners: new Set(), stats: undefined };
    const changed = () => {
      entry.stats = entry.tracker.stats();
      entry.listeners.forEach((listener) => listener());
    };
    entry.tracker = startTracker({
      ...config,
      // Only when given: without one, the tracker's own console warning stays.
      onError: config.onError && ((e) => entry.props.onError && entry.props.onError(e)),
      onEvent: (event) => {
        changed();
        if (entry.props.onEvent) entry.props.onEvent(event);
      },
    });
    entry.tracker.ready.then(changed);
    trackers.set(props.collectorUrl, entry);
  }
  entry.props = props;
  return entry;
}

const TrackerContext = createContext(undefined);

/** Starts (or reuses) the page's tracker; its props are `startTracker`'s config. */
export function MauBeaconProvider(props) {
  const entry = pageTracker(props);
  return createElement(TrackerContext.Provider, { value: entry }, props.children);
}

let warnedOutside = false;
function useEntry(hook) {
  const entry = useContext(TrackerContext);
  if (!entry && !warnedOutside) {
    warnedOutside = true;
    console.warn(`mau-beacon: ${hook} outside <MauBeaconProvider>: nothing is watched.`);
  }
  return entry;
}

/** The page's tracker (a `SoftTracker`), `undefined` outside a provider. */
export function useMauTracker() {
  const entry = useContext(TrackerContext);
  return entry && entry.tracker;
}

/** Watches `client` while the component is mounted (and it is the same client); `null`
 * while the app has none yet. */
export function useMauWatch(client, options) {
  const entry = useEntry("useMauWatch");
  const token = options && options.token;
  const identity = options && options.identity;
  const context = options && options.context;
  const ticket = options && options.ticket;
  useEffect(() => {
    if (!client || !entry) return undefined;
    const watchOptions = { token, identity, ticket };
    if (context !== undefined) watchOptions.context = context;
    const watch = entry.tracker.watch(client, watchOptions);
    return () => watch.stop();
  }, [entry, client, token, identity, context, ticket]);
}

const TRIGGERS = ["click", "focusin", "keydown"];

/** Where the wasm cannot load (or on a server): the client made on first need, as the app
 * would make it without mau-beacon, so chat still works; nothing is watched. */
function plainLazy(config) {
  let made;
  let state = "idle";
  const set = (next) => {
    state = next;
    config.onStateChange(next);
  };
  const lazy = {
    get() {
      if (state === "closed") return Promise.reject(new Error("mau-beacon: the LazyClient was shut down"));
      if (!made) {
        set("connecting");
        made = Promise.resolve(config.getToken()).then((t) => config.createClient(typeof t === "string" ? t : t.token));
        made.then(() => state === "connecting" && set("ready"), () => {
          made = undefined;
          if (state === "connecting") set("idle");
        });
      }
      return made;
    },
    connectOn(element) {
      const go = () => {
        stop();
        lazy.get().catch(() => {});
      };
      const stop = () => TRIGGERS.forEach((e) => element.removeEventListener(e, go));
      TRIGGERS.forEach((e) => element.addEventListener(e, go));
      return { stop };
    },
    shutdown() {
      const client = made;
      set("closed");
      return client ? client.then((c) => c.shutdown(), () => {}) : Promise.resolve();
    },
  };
  return lazy;
}

/** A `LazyClient` for the component's lifetime: created on mount, shut down on unmount
 * (StrictMode's first mount creates no client: nothing is created before a need). The
 * config is read at mount; give the component a `key` to start over with another. */
export function useLazyClient(config) {
  const entry = useContext(TrackerContext);
  const latest = useRef(config);
  latest.current = config;
  const [lazy, setLazy] = useState(undefined);
  const [client, setClient] = useState(null);
  const [state, setState] = useState("idle");
  const [element, setElement] = useState(null);
  useEffect(() => {
    let live = true;
    let made;
    const given = latest.current;
    const lazyConfig = {
      ...given,
      tracker: given.tracker || (entry && entry.tracker),
      onStateChange: (next) => {
        if (!live) return;
        setState(next);
        if (next === "ready") made.get().then((c) => live && setClient(c), () => {});
        if (given.onStateChange) given.onStateChange(next);
      },
    };
    // LazyClient is wasm: made once it loaded (StrictMode's first mount is gone by then).
    load().then(({ ok }) => {
      if (!live) return;
      made = ok ? new LazyClient(lazyConfig) : plainLazy(lazyConfig);
      setLazy(made);
    });
    return () => {
      live = false;
      setLazy(undefined);
      setClient(null);
      if (made) made.shutdown();
    };
  }, [entry]);
  // `ref`: the element whose first click, focus or key press connects.
  useEffect(() => {
    if (!lazy || !element) return undefined;
    const trigger = lazy.connectOn(element);
    return () => trigger.stop();
  }, [lazy, element]);
  const get = useCallback(() => (lazy ? lazy.get() : Promise.reject(new Error("mau-beacon: the LazyClient is not mounted"))), [lazy]);
  const shutdown = useCallback(() => (lazy ? lazy.shutdown() : Promise.resolve()), [lazy]);
  return { client, state, ref: setElement, get, shutdown };
}

const noStats = () => undefined;
const never = () => () => {};

/** The tracker's stats, re-rendering when they change; `undefined` until it is ready. */
export function useMauStats() {
  const entry = useContext(TrackerContext);
  const subscribe = useCallback(
    (listener) => {
      entry.listeners.add(listener);
      return () => entry.listeners.delete(listener);
    },
    [entry],
  );
  const snapshot = useCallback(() => entry.stats, [entry]);
  return useSyncExternalStore(entry ? subscribe : never, entry ? snapshot : noStats, noStats);
}
