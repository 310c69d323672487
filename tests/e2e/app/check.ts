// Compiled with `tsc --noEmit --strict` against the installed package: the public API is
// typed, the real Conversations Client fits it, and wrong config is a type error.
import init, { MauTracker, LazyClient, type MauStats, type BeaconEvent } from "mau-beacon";
import { Client } from "@twilio/conversations";

await init();
const tracker = new MauTracker({
  collectorUrl: "https://collect.example.com/v1/beacons",
  dedupe: "month",
  onEvent: (e: BeaconEvent) => console.log(e.type, e.eventId),
  onError: (e: Error) => console.warn(e.message),
});
declare const token: string;
const client = new Client(token);
const watch = tracker.watch(client, { token });
tracker.watch(client, { token: () => token });
tracker.watch(client);
watch.stop();
const stats: MauStats = await tracker.flush();
const pending: number = stats.pending + tracker.stats().dropReasons["http_400"];
const counted: boolean = tracker.isCountedThisMonth("alice");

const lazy = new LazyClient({
  createClient: (t: string) => new Client(t),
  getToken: async () => token,
  tracker,
  identity: "alice",
  eagerIfCounted: true,
});
lazy.connectOn(document.body);
lazy.connectWhenVisible(document.body);
const c = (await lazy.get()) as Client;
await lazy.shutdown();
console.log(pending, counted, c.connectionState, lazy.state);

// @ts-expect-error dedupe takes "month" | "none"
new MauTracker({ collectorUrl: "x", dedupe: "day" });
// @ts-expect-error collectorUrl is required
new MauTracker({});
// @ts-expect-error a number is not an event target
lazy.connectOn(3);
