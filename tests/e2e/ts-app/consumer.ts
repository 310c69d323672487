// What an app writes, checked with strict tsc, skipLibCheck false, lib ["dom", "es2017"],
// target es5 and no top-level await, against the installed package's declarations.
import init, {
  ConversationsClientLike, LazyClient, LoadStatus, MauBeaconError, MauReason, MauStats, MauTracker, SoftTracker, SoftWatch, load, startTracker,
} from "mau-beacon";

declare const client: ConversationsClientLike;

// The fail-soft form: no await, nothing thrown.
const tracker: SoftTracker = startTracker({
  collectorUrl: "/t/v1/beacons",
  onError: (e: MauBeaconError) => console.log(e.code, e.message),
});
const watch: SoftWatch = tracker.watch(client, { token: () => "token", context: "inbox" });
watch.stop();
const on: Promise<boolean> = tracker.ready;
tracker.flush().then((s: MauStats | undefined) => (s ? s.delivered : 0));
const counted: boolean = tracker.isCountedThisMonth("alice");
load().then((status: LoadStatus) => {
  if (!status.ok) console.log(status.error.code);
});

// The classic form, with init() awaited through a promise.
init().then(() => {
  const t = new MauTracker({ collectorUrl: "/t/v1/beacons", dedupe: "month" });
  t.watch(client, { identity: "alice" }).stop();
  const lazy = new LazyClient({ createClient: () => client, getToken: () => Promise.resolve("token"), tracker: t, refreshToken: false, context: "support-widget" });
  lazy.replaceClient(client, "new-token");
  lazy.get().then((c: ConversationsClientLike) => c.connectionState);
});

// Mistakes are caught.
// @ts-expect-error collectorUrl must be a string
startTracker({ collectorUrl: 1 });
// @ts-expect-error refreshToken is a boolean
new LazyClient({ createClient: () => client, getToken: () => "t", refreshToken: "app" });
// @ts-expect-error context is a string
new LazyClient({ createClient: () => client, getToken: () => "t", context: ["inbox"] });
const reason: MauReason = "visible";
// @ts-expect-error a reason the SDK never sends
const hover: MauReason = "hover";

// The script-tag global.
MauBeacon.startTracker({ collectorUrl: "/t" }).watch(client, { context: "help/panel" }).stop();
MauBeacon.ready.then(() => new MauBeacon.MauTracker({ collectorUrl: "/t" }));

export { on, counted, reason, hover };
