// A Vite app as a user writes it: the real Conversations client, watched by mau-beacon.
// The test passes the Twilsock URL, the collector and the token in the query string and
// reads the outcome from `window.result`.
import init, { MauTracker } from "mau-beacon";
import { Client } from "@twilio/conversations";

const params = new URLSearchParams(location.search);
const token = params.get("token");

await init(); // fetches the .wasm Vite emitted next to the bundle

const events = [];
let onDelivered;
const delivered = new Promise((resolve) => (onDelivered = resolve));
const tracker = new MauTracker({
  collectorUrl: params.get("collector"),
  onEvent: (e) => {
    events.push(e.type);
    if (e.type === "delivered") onDelivered();
  },
});

const client = new Client(token, {
  Twilsock: { uri: params.get("twilsock") },
  retryPolicy: { min: 200, max: 1000, randomness: 0 },
});
const states = [];
client.on("connectionStateChanged", (state) => states.push(state));
tracker.watch(client, { token });

await delivered;
window.result = { states, connectionState: client.connectionState, events, stats: tracker.stats() };
