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
    entry = { props, listeners: new Set(), stats: undefined, watches: new Map() };
    const changed = () => {
      entry.stats = entry.tracker.stats();
      entry.listeners.forEach((listener) => listener());
    };
    entry.tracker = startTracker({
      ...config,
      // The latest provider's, even one added later. Without any, the console warnings
      // startTracker gives without `onError`: why the wasm or the config failed (reported
      // before `ready`), and an unreachable collector.
      onError: (e) => {
        if (entry.props.onError) entry.props.onError(e);
        else if (!entry.started || e.code === "network") console.warn(e.message);
      },
      onEvent: (event) => {
        changed();
        if (entry.props.onEvent) entry.props.onEvent(event);
      },
    });
    entry.tracker.ready.then(() => {
      entry.started = true;
      changed();
    });
    // A disposed tracker leaves the page: the next provider starts a new one.
    const dispose = entry.tracker.dispose;
    entry.tracker.dispose = () => {
      if (trackers.get(props.collectorUrl) === entry) trackers.delete(props.collectorUrl);
      entry.watches.forEach((w) => clearTimeout(w.stopping));
      entry.watches.clear();
      dispose();
    };
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
 * while the app has none yet. One watch per client for the page: components that watch the
 * same client share it, and it stops a moment after the last one unmounts, so StrictMode's
 * remount, a route change or a re-render keep it (a new watch on a connected client counts a
 * connect). The options are read when the watch starts: a refreshed token does not restart it. */
export function useMauWatch(client, options) {
  const entry = useEntry("useMauWatch");
  const latest = useRef(options);
  latest.current = options;
  useEffect(() => {
    if (!client || !entry) return undefined;
    let shared = entry.watches.get(client);
    if (shared) {
      clearTimeout(shared.stopping);
    } else {
      const { token, identity, ticket, context } = latest.current || {};
      const watchOptions = { token, identity, ticket };
      if (context !== undefined) watchOptions.context = context;
      shared = { watch: entry.tracker.watch(client, watchOptions), users: 0, stopping: undefined };
      entry.watches.set(client, shared);
    }
    shared.users += 1;
    const mine = shared;
    return () => {
      mine.users -= 1;
      if (mine.users > 0) return;
      mine.stopping = setTimeout(() => {
        if (mine.users > 0 || entry.watches.get(client) !== mine) return;
        entry.watches.delete(client);
        mine.watch.stop();
      }, 0);
    };
  }, [entry, client]);
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
  const token = () => Promise.resolve().then(() => config.getToken()).then((t) => (typeof t === "string" ? t : t.token));
  const lazy = {
    get() {
      if (state === "closed") return Promise.reject(new Error("mau-beacon: the LazyClient was shut down"));
      if (!made) {
        set("connecting");
        made = token().then((t) => Promise.resolve(config.createClient(t)));
        made.then(
          (c) => {
            if (state === "closed") {
              Promise.resolve().then(() => c.shutdown()).catch(() => {});
              return;
            }
            // The token refresh the wasm LazyClient does (refreshToken, on by default).
            if (config.refreshToken !== false && typeof c.on === "function") {
              c.on("tokenAboutToExpire", () => token().then((t) => c.updateToken(t)).catch((e) => config.onError && config.onError(e)));
            }
            if (state === "connecting") set("ready");
          },
          () => {
            made = undefined;
            if (state === "connecting") set("idle");
          },
        );
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
      return client ? client.then((c) => c.shutdown(), () => {}).catch(() => {}) : Promise.resolve();
    },
  };
  return lazy;
}

/** A `LazyClient` for the component's lifetime: created on mount, shut down on unmount
 * (StrictMode's first mount creates no client: nothing is created before a need). The
 * callbacks are the latest render's; the rest of the config is read at mount (give the
 * component a `key` to start over with another). `get()` and a press on `ref`'s element
 * before the wasm has loaded wait for it. */
export function useLazyClient(config) {
  const entry = useContext(TrackerContext);
  const latest = useRef(config);
  latest.current = config;
  const pending = useRef(undefined);
  const [lazy, setLazy] = useState(undefined);
  const [client, setClient] = useState(null);
  const [state, setState] = useState("idle");
  const [element, setElement] = useState(null);
  useEffect(() => {
    let live = true;
    let made;
    const given = latest.current;
    const call = (name) => (...args) => latest.current[name](...args);
    const lazyConfig = {
      ...given,
      getToken: call("getToken"),
      createClient: call("createClient"),
      onError: given.onError && ((e) => latest.current.onError && latest.current.onError(e)),
      tracker: given.tracker || (entry && entry.tracker),
      onStateChange: (next) => {
        if (!live) return;
        setState(next);
        if (next === "ready") made.get().then((c) => live && setClient(c), () => {});
        if (next === "closed") setClient(null);
        if (latest.current.onStateChange) latest.current.onStateChange(next);
      },
    };
    // LazyClient is wasm: made once it loaded (StrictMode's first mount is gone by then).
    pending.current = load().then(({ ok }) => {
      if (!live) return undefined;
      made = ok ? new LazyClient(lazyConfig) : plainLazy(lazyConfig);
      setLazy(made);
      return made;
    });
    return () => {
      live = false;
      pending.current = undefined;
      setLazy(undefined);
      setClient(null);
      if (made) Promise.resolve().then(() => made.shutdown()).catch(() => {});
    };
  }, [entry]);
  // `ref`: the element whose first click, focus or key press connects. A press before the
  // LazyClient exists is kept and connects once it does (reported as `explicit`).
  const [early, setEarly] = useState(false);
  useEffect(() => {
    if (!element) return undefined;
    if (lazy) {
      if (early) {
        setEarly(false);
        lazy.get().catch(() => {});
        return undefined;
      }
      const trigger = lazy.connectOn(element);
      return () => trigger.stop();
    }
    const press = () => setEarly(true);
    TRIGGERS.forEach((e) => element.addEventListener(e, press));
    return () => TRIGGERS.forEach((e) => element.removeEventListener(e, press));
  }, [lazy, element, early]);
  const get = useCallback(() => {
    if (lazy) return lazy.get();
    const waiting = pending.current;
    const gone = () => Promise.reject(new Error("mau-beacon: the LazyClient is not mounted"));
    return waiting ? waiting.then((made) => (made ? made.get() : gone())) : gone();
  }, [lazy]);
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
