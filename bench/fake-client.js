// A stand-in for the Conversations `Client` where the real one would only add noise (no
// Twilio to connect to, or a timing that would drown mau-beacon's own). It behaves as the
// real client does on a successful connect (tests/twilio/README.md): a Node-style emitter
// (`on`/`off`, removals announced on `removeListener`), `connecting` then `connected`,
// then `initialized` with `user.identity` set; `updateToken` and `shutdown` resolve.
export class FakeClient {
  constructor(identity) {
    this.listeners = new Map();
    this.connectionState = "unknown";
    this.user = { identity: "" };
    this.identity = identity;
  }
  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, []);
    this.listeners.get(event).push(fn);
    return this;
  }
  addListener(event, fn) {
    return this.on(event, fn);
  }
  off(event, fn) {
    const list = this.listeners.get(event) ?? [];
    const i = list.indexOf(fn);
    if (i >= 0) {
      list.splice(i, 1);
      this.emit("removeListener", event, fn);
    }
    return this;
  }
  removeListener(event, fn) {
    return this.off(event, fn);
  }
  emit(event, ...args) {
    for (const fn of [...(this.listeners.get(event) ?? [])]) fn(...args);
    return true;
  }
  setState(state) {
    if (state === this.connectionState) return;
    this.connectionState = state;
    this.emit("connectionStateChanged", state);
  }
  /** What the real client does once its socket opens and Twilsock accepts the token. */
  connect() {
    this.setState("connecting");
    this.setState("connected");
    this.user.identity = this.identity;
    this.emit("stateChanged", "initialized");
    this.emit("initialized");
  }
  updateToken() {
    return Promise.resolve(this);
  }
  shutdown() {
    this.setState("disconnected");
    return Promise.resolve();
  }
}
