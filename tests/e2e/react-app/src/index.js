// A React app on the real Conversations client, watched through the recipe in ./mau.js.
// Written with createElement, so webpack needs no loader; Vite and webpack build this same
// source. The test reads the outcome from the page and from `window.app`.
import { createElement as h, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { Client } from "@twilio/conversations";

import { tracker, useMauBeacon } from "./mau.js";

const params = new URLSearchParams(location.search);
const token = params.get("token");
window.app = { tracker, states: [] };

function App() {
  const [client, setClient] = useState(null);
  const [state, setState] = useState("unknown");
  useEffect(() => {
    const c = new Client(token, {
      Twilsock: { uri: params.get("twilsock") },
      retryPolicy: { min: 200, max: 1000, randomness: 0 },
    });
    c.on("connectionStateChanged", (s) => {
      window.app.states.push(s);
      setState(s);
    });
    setClient(c);
    return () => {
      c.shutdown();
    };
  }, []);
  useMauBeacon(client, token);
  return h("main", null, h("h1", null, "Chat"), h("p", { id: "state" }, state));
}

createRoot(document.getElementById("root")).render(h(App));
