// The MAU simulation's page side: runs a month of page views through the real LazyClient
// (and MauTracker, which eagerIfCounted asks), with a createClient that counts.
//
// A page view: the identity's browser profile (its localStorage) is put in place, a new
// MauTracker and LazyClient are made as a page would at load, the strategy's trigger is
// armed; a view that opens chat clicks the chat button (connectOn) or scrolls the chat
// widget into view (connectWhenVisible); the view ends once any client made has connected
// and its beacon was delivered; the profile's localStorage is kept for the identity's next
// view, and everything the view made is shut down and freed (the page is left).
import init, { LazyClient, MauTracker } from "/js/index.js";
import { FakeClient } from "/bench/fake-client.js";

/** A macrotask turn without setTimeout's 4 ms clamp for nested timers. */
const turn = () => new Promise((resolve) => {
  const ch = new MessageChannel();
  ch.port1.onmessage = () => resolve();
  ch.port2.postMessage(0);
});
const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

/**
 * @param {"eager"|"connectOn"|"connectWhenVisible"|"eagerIfCounted"} strategy
 * @param {Array<[number, boolean]>} views identity index and "opens chat", in time order
 * @param {string[]} identities
 * @param {string[]} tokens the access token of each identity
 */
export async function simulate(strategy, views, identities, tokens) {
  await init();
  const button = document.getElementById("chat-button");
  const widget = document.getElementById("chat-widget");
  const profiles = new Map(); // identity index -> that browser's localStorage entries
  const created = new Map(); // identity -> clients created
  const connected = new Set(); // identities whose client reached "connected": what Twilio bills
  const errors = [];
  const onError = (e) => errors.push(`${e.code ?? ""} ${e.message}`);
  const byToken = new Map(tokens.map((t, i) => [t, identities[i]]));
  let waitingClient = null;

  // The counting factory: no network; the client connects a turn later, as a real one would.
  const createClient = (token) => {
    const identity = byToken.get(token);
    created.set(identity, (created.get(identity) ?? 0) + 1);
    const client = new FakeClient(identity);
    client.connected = turn().then(() => {
      client.connect();
      connected.add(identity);
    });
    waitingClient = client;
    return client;
  };

  for (const [who, opens] of views) {
    const identity = identities[who];
    localStorage.clear();
    for (const [k, v] of profiles.get(who) ?? []) localStorage.setItem(k, v);
    waitingClient = null;

    const tracker = new MauTracker({ collectorUrl: `/collect/${strategy}`, onError });
    const lazy = new LazyClient({
      createClient,
      getToken: () => tokens[who],
      tracker,
      identity,
      eagerIfCounted: strategy === "eagerIfCounted",
      onError,
    });
    let trigger = null;
    if (strategy === "eager") lazy.get().catch(onError);
    else if (strategy === "connectWhenVisible") trigger = lazy.connectWhenVisible(widget);
    else trigger = lazy.connectOn(button); // connectOn, and eagerIfCounted's first visit
    await turn();

    if (opens) {
      if (strategy === "connectWhenVisible") {
        widget.scrollIntoView();
        // IntersectionObserver reports at the next rendering steps.
        for (let i = 0; i < 60 && lazy.clientsCreated === 0; i++) await frame();
      } else {
        button.click();
      }
    }
    await turn();
    if (lazy.clientsCreated > 0) {
      await lazy.get(); // the client this view made (no second creation)
      await waitingClient?.connected;
      await turn();
      for (let i = 0; i < 20; i++) {
        const stats = await tracker.flush();
        if (stats.pending === 0) break;
      }
    }
    profiles.set(who, Object.entries(localStorage));

    trigger?.stop();
    await lazy.shutdown();
    trigger?.free();
    lazy.free();
    tracker.free();
    window.scrollTo(0, 0);
  }
  return {
    mau: connected.size,
    clients: [...created.values()].reduce((a, b) => a + b, 0),
    maxClientsPerIdentity: Math.max(0, ...created.values()),
    errors: errors.slice(0, 5),
    errorCount: errors.length,
  };
}
