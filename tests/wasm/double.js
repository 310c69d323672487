// A test double of the Conversations `Client`, as the real one behaves (tests/twilio/README.md):
// a Node-style EventEmitter (on/off/emit; a throwing listener throws into emit), state
// changes only on change but "connected" again after each reconnect, `user.identity` empty
// until `initialized`, `updateToken` throwing after a failed init, a `shutdown()` that can hang.
export class FakeClient {
  constructor(identity = "", version = "3.0.1") {
    this.listeners = new Map();
    this.connectionState = "unknown";
    this.user = { identity: "" };
    this.pendingIdentity = identity;
    this.version = version;
    this.shutdownCalls = 0;
    this.shutdownHangs = false;
    this.updateTokenCalls = [];
    this.initFailedFlag = false;
    this.droppedUpdates = 0;
    this.initializedFlag = false;
  }
  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, []);
    this.listeners.get(event).push(fn);
    return this;
  }
  /** As the `events` package the real client extends: a removal is announced on `removeListener`. */
  off(event, fn) {
    const list = this.listeners.get(event) ?? [];
    const i = list.indexOf(fn);
    if (i >= 0) {
      list.splice(i, 1);
      if (this.listenerCount("removeListener") > 0) this.emit("removeListener", event, fn);
    }
    return this;
  }
  /** As `events`' removeAllListeners(): each removal announced (LIFO per event, the
   * `removeListener` listeners last), then every list cleared. */
  removeAllListeners(only) {
    if (only !== undefined) {
      // One event's listeners only: the others, `removeListener` ones included, stay.
      const list = this.listeners.get(only) ?? [];
      for (let i = list.length - 1; i >= 0; i--) this.off(only, list[i]);
      return this;
    }
    for (const [event, list] of [...this.listeners]) {
      if (event === "removeListener") continue;
      for (let i = list.length - 1; i >= 0; i--) this.off(event, list[i]);
    }
    const own = this.listeners.get("removeListener") ?? [];
    for (let i = own.length - 1; i >= 0; i--) this.off("removeListener", own[i]);
    this.listeners = new Map();
    return this;
  }
  emit(event, ...args) {
    for (const fn of [...(this.listeners.get(event) ?? [])]) fn(...args);
    return true;
  }
  listenerCount(event) {
    return (this.listeners.get(event) ?? []).length;
  }
  totalListeners() {
    let n = 0;
    for (const l of this.listeners.values()) n += l.length;
    return n;
  }
  setState(state) {
    if (state === this.connectionState) return;
    this.connectionState = state;
    this.emit("connectionStateChanged", state);
  }
  /** connecting -> connected, as a real (re)connect. */
  connect() {
    this.setState("connecting");
    this.setState("connected");
  }
  initialize() {
    this.initializedFlag = true;
    this.user.identity = this.pendingIdentity;
    this.emit("stateChanged", "initialized");
    this.emit("initialized");
  }
  failInit() {
    this.initFailedFlag = true;
    this.emit("initFailed", { error: { message: "denied" } });
  }
  updateToken(token) {
    if (this.initFailedFlag) throw new TypeError("Cannot read properties of undefined (reading 'updateToken')");
    // The real client drops an update made while `disconnecting` after a 410: it never settles.
    if (this.connectionState === "disconnecting") {
      this.droppedUpdates += 1;
      return new Promise(() => {});
    }
    // It first awaits initialisation, which a client cut off before `initialized` never ends.
    if (!this.initializedFlag && this.connectionState === "disconnected") {
      this.droppedUpdates += 1;
      return new Promise(() => {});
    }
    this.updateTokenCalls.push(token);
    if (this.connectionState === "disconnected") this.connect();
    return Promise.resolve(this);
  }
  /** The server closes with 410: `disconnecting` + `tokenExpired` at once, `disconnected` later. */
  expire(disconnectAfterMs = 60) {
    this.setState("disconnecting");
    this.emit("tokenExpired");
    setTimeout(() => this.setState("disconnected"), disconnectAfterMs);
  }
  shutdown() {
    this.shutdownCalls += 1;
    return this.shutdownHangs ? new Promise(() => {}) : Promise.resolve();
  }
}

function b64url(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A real-shaped (unsigned for this purpose) Twilio access token. */
export function makeToken(identity) {
  const header = { alg: "HS256", typ: "JWT", cty: "twilio-fpa;v=1" };
  const now = Math.floor(Date.now() / 1000);
  const grants = identity === null ? { chat: { service_sid: "IS00" } } : { identity, chat: { service_sid: "IS00" } };
  const payload = { jti: "SK00-" + now, iss: "SK00", sub: "AC00", iat: now, exp: now + 3600, grants };
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.c2lnbmF0dXJl`;
}

/** createClient/getToken for LazyClient that count their calls. */
export function lazyHarness(identity) {
  const h = {
    clients: [],
    tokenCalls: 0,
    failTokens: 0,
    tokenDelayMs: 20,
    hangTokens: false,
    getToken: () => {
      h.tokenCalls += 1;
      if (h.hangTokens) return new Promise(() => {});
      const fail = h.failTokens > 0;
      if (fail) h.failTokens -= 1;
      return new Promise((resolve, reject) =>
        setTimeout(() => (fail ? reject(new Error("token service down")) : resolve(makeToken(identity))), h.tokenDelayMs));
    },
    createClient: (token) => {
      const c = new FakeClient(identity);
      c.token = token;
      h.clients.push(c);
      return c;
    },
  };
  return h;
}

export function clearStore() {
  for (const k of Object.keys(localStorage)) if (k.startsWith("mau-beacon:")) localStorage.removeItem(k);
}

export function storedKeys() {
  return Object.keys(localStorage).filter((k) => k.startsWith("mau-beacon:")).sort();
}

/** Makes every localStorage write fail, as a full quota or a locked-down browser does. */
export function breakStorage(broken) {
  if (broken) {
    Storage.prototype.__realSet ??= Storage.prototype.setItem;
    Storage.prototype.setItem = function () { throw new DOMException("quota", "QuotaExceededError"); };
  } else if (Storage.prototype.__realSet) {
    Storage.prototype.setItem = Storage.prototype.__realSet;
  }
}

export async function attempts(url) {
  const r = await fetch(url);
  return (await r.json()).attempts;
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Calls `fn` inside a try so the test sees whether a handler threw into the emitter. */
export function emitCatching(client, event, arg) {
  try { client.emit(event, arg); return null; } catch (e) { return String(e); }
}
