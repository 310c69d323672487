// A minimal emitter standing in for the Conversations client in package tests (the real
// client is exercised in real-client tests).
function makeClient(identity) {
  const listeners = {};
  const client = {
    connectionState: "unknown",
    user: { identity: "" },
    on(e, f) { (listeners[e] ??= []).push(f); },
    off(e, f) { listeners[e] = (listeners[e] ?? []).filter((g) => g !== f); },
    emit(e, a) { for (const f of [...(listeners[e] ?? [])]) f(a); },
    total() { return Object.values(listeners).reduce((n, l) => n + l.length, 0); },
    connect() { client.connectionState = "connected"; client.emit("connectionStateChanged", "connected"); },
    initialize() { client.user.identity = identity; client.emit("initialized"); },
    shutdown() { return Promise.resolve(); },
  };
  return client;
}
