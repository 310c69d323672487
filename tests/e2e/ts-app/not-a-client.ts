// Must not compile: objects without emitter methods are not clients.
import { startTracker } from "mau-beacon";

const tracker = startTracker({ collectorUrl: "/t/v1/beacons" });
tracker.watch({ connectionState: "connected" });
tracker.watch({ on: (event: string) => undefined });
