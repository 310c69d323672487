// A React app on the real Conversations client, on README's hooks (mau-beacon/react), under
// StrictMode. Written with createElement, so webpack needs no loader; Vite and webpack build
// this same source. `?lazy` takes the LazyClient path: nothing is created before a click.
// The test reads the outcome from the page and from `window.app`.
import { createElement as h, StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { Client } from "@twilio/conversations";
import { MauBeaconProvider, useLazyClient, useMauStats, useMauTracker, useMauWatch } from "mau-beacon/react";

const params = new URLSearchParams(location.search);
const token = params.get("token");
const clientOptions = { Twilsock: { uri: params.get("twilsock") }, retryPolicy: { min: 200, max: 1000, randomness: 0 } };
window.app = { states: [], renders: 0 };

/** The stats line: `useMauStats()` re-renders as beacons move. */
function Stats() {
  const stats = useMauStats();
  window.app.tracker = useMauTracker();
  return h("p", { id: "delivered" }, stats ? String(stats.delivered) : "-");
}

/** The app's own client, created on mount, watched with `useMauWatch`. */
function Chat() {
  const [client, setClient] = useState(null);
  const [state, setState] = useState("unknown");
  useEffect(() => {
    const c = new Client(token, clientOptions);
    c.on("connectionStateChanged", (s) => {
      window.app.states.push(s);
      setState(s);
    });
    setClient(c);
    return () => {
      c.shutdown();
    };
  }, []);
  useMauWatch(client, { token });
  return h("main", null, h("h1", null, "Chat"), h("p", { id: "state" }, state), h(Stats));
}

/** The client made on the first click (or key press) on the button, watched by the
 * provider's tracker. */
function LazyChat() {
  const chat = useLazyClient({ getToken: () => token, createClient: (t) => new Client(t, clientOptions) });
  const [state, setState] = useState("unknown");
  useEffect(() => {
    if (!chat.client) return undefined;
    const c = chat.client;
    setState(c.connectionState);
    const on = (s) => setState(s);
    c.on("connectionStateChanged", on);
    return () => c.off("connectionStateChanged", on);
  }, [chat.client]);
  return h("main", null, h("h1", null, "Chat"), h("button", { id: "open", ref: chat.ref }, "Open chat"), h("p", { id: "lazy" }, chat.state), h("p", { id: "state" }, state), h(Stats));
}

const collectorUrl = params.get("collector") ?? "/t/v1/beacons";
createRoot(document.getElementById("root")).render(
  h(StrictMode, null, h(MauBeaconProvider, { collectorUrl }, h(params.has("lazy") ? LazyChat : Chat))),
);
