// README's recipe in an Angular component, with no wasm configuration anywhere: start the
// tracker once, watch the chat client. The client here is a small Node-style emitter that
// connects at once (the e2e test reads `window.result`); `?collector=` says where beacons go.
import { Component, OnDestroy, OnInit, signal } from "@angular/core";
import { startTracker, type SoftStats, type SoftWatch } from "mau-beacon";

type Listener = (...args: any[]) => void;

/** A stand-in for the Conversations `Client`: an emitter that connects as `identity`. */
class ChatClient {
  connectionState = "connecting";
  private listeners = new Map<string, Set<Listener>>();
  constructor(readonly user: { identity: string }) {}
  on(event: string, listener: Listener): this {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event)!.add(listener);
    return this;
  }
  off(event: string, listener: Listener): this {
    this.listeners.get(event)?.delete(listener);
    return this;
  }
  connect(): void {
    this.connectionState = "connected";
    this.listeners.get("connectionStateChanged")?.forEach((l) => l("connected"));
  }
}

declare global {
  interface Window {
    result?: { ready: boolean; stats: SoftStats | undefined };
  }
}

const params = new URLSearchParams(location.search);
const tracker = startTracker({ collectorUrl: params.get("collector") ?? "/beacons", dedupe: "none" });

@Component({
  selector: "app-root",
  template: `<h1>Chat</h1><p id="state">{{ state() }}</p>`,
})
export class AppComponent implements OnInit, OnDestroy {
  readonly state = signal("connecting");
  private watch?: SoftWatch;

  ngOnInit(): void {
    const client = new ChatClient({ identity: params.get("identity") ?? "angular-user" });
    this.watch = tracker.watch(client);
    tracker.ready.then(async (ready) => {
      client.connect();
      this.state.set(client.connectionState);
      window.result = { ready, stats: await tracker.flush() };
    });
  }

  ngOnDestroy(): void {
    this.watch?.stop();
  }
}
