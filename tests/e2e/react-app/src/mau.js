// README's React recipe, as an app writes it: one tracker per page, started without
// `await`; it cannot take the app down.
import { useEffect } from "react";
import { startTracker } from "mau-beacon";

export const tracker = startTracker({
  // The test passes the collector in the query string; an app writes its own URL here.
  collectorUrl: new URLSearchParams(location.search).get("collector") ?? "/t/v1/beacons",
});

/** Watches `client` for as long as it is the app's client. */
export function useMauBeacon(client, token) {
  useEffect(() => {
    if (!client) return undefined;
    const watch = tracker.watch(client, { token });
    return () => watch.stop();
  }, [client, token]);
}
