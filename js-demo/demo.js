// The live demo: the real @twilio/conversations client, created lazily by mau-beacon's
// LazyClient, watched by a MauTracker that beacons to the collector, whose list of this
// month's identities is shown live. `api` is the ES module or the script-tag global.
const $ = (sel) => document.querySelector(sel);
const h = (tag, attrs = {}, ...kids) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) k.startsWith("on") ? el.addEventListener(k.slice(2), v) : el.setAttribute(k, v);
  el.append(...kids);
  return el;
};
const time = () => new Date().toISOString().slice(11, 23);
const month = () => new Date().toISOString().slice(0, 7);

/** `context` names the entry point (the page) in every beacon, so the collector's report
 * splits the MAUs by where their client was made. */
export async function runDemo(api, { flavour, other, context }) {
  const config = await (await fetch("config.json", { cache: "no-store" })).json();
  const params = new URLSearchParams(location.search);
  let identity = params.get("identity") ?? localStorage.getItem("demo:identity") ?? "alice@example.com";

  $("#app").replaceChildren(
    h("header", {},
      h("h1", {}, "mau-beacon ", h("span", { class: "muted" }, "live demo")),
      h("p", { class: "muted" }, `SDK ${api.version()} · ${flavour} build · context ${context} · `, h("a", { href: other[0] }, `try the ${other[1]}`))),
    h("main", {},
      h("section", { class: "card chat" },
        h("h2", {}, "Your app"),
        h("div", { class: "row signin" },
          h("label", { for: "identity" }, "User"),
          h("input", { id: "identity", value: identity, size: 18 }),
          h("button", { id: "signin" }, "Switch user")),
        h("div", { id: "widget", class: "widget" },
          h("button", { id: "open", class: "primary" }, "Open chat"),
          h("p", { id: "lazy-state", class: "muted" }, "")),
        h("div", { class: "state" }, "Connection: ", h("span", { id: "conn", class: "pill" }, "no client")),
        h("h3", {}, "Simulate the network and Twilio"),
        h("div", { class: "row" },
          h("button", { id: "drop" }, "Drop network"),
          h("button", { id: "deny" }, "Deny next connect"),
          h("button", { id: "reconnect" }, "Reconnect"),
          h("button", { id: "expire" }, "Expire token")),
        h("ol", { id: "client-log", class: "log" })),
      h("section", { class: "card" },
        h("h2", {}, "Beacons from this browser"),
        h("div", { id: "stats", class: "stats" }),
        h("p", { class: "muted small" }, "Reconnects count as connects but send no new beacon: one per identity per UTC month per browser. Both demo pages share this browser's storage."),
        h("ol", { id: "beacon-log", class: "log" })),
      h("section", { class: "card" },
        h("h2", {}, "Collector: unique identities, ", h("span", { id: "month" }, month()), " (UTC)"),
        h("div", { id: "summary", class: "stats" }),
        h("div", { class: "scroll" }, h("table", { id: "identities" })),
        h("p", { class: "muted small" }, "connects = beacons received for the identity (one per browser per month), not connection events."),
        h("p", { class: "muted" }, "Set this list beside Twilio's billed MAU count: ",
          h("code", {}, `mau-collector report --month ${month()} --billed N`)))),
  );
  $("#identity").value = identity;

  const log = (list, text, kind = "") => {
    $(list).prepend(h("li", { class: kind }, h("time", {}, time()), " ", text));
    while ($(list).children.length > 60) $(list).lastChild.remove();
  };

  const names = new Map(); // eventId -> identity, for the log
  const tracker = new api.MauTracker({
    collectorUrl: config.collectorUrl,
    retry: { baseMs: 500, maxMs: 4000 },
    onEvent: (e) => {
      if (e.identity && e.eventId) names.set(e.eventId, e.identity);
      const what = { queued: "queued (stored before sending)", deduped: "not sent: already counted this month", delivered: `delivered (HTTP ${e.status})`, retry: `will retry (${e.status ? "HTTP " + e.status : e.error})`, dropped: `dropped (${e.error})`, no_identity: "no identity: not sent" }[e.type];
      log("#beacon-log", `${e.identity ?? names.get(e.eventId) ?? "an earlier page's beacon"}: ${what}`, e.type);
      showStats();
    },
    onError: (err) => log("#beacon-log", `${err.message} (${err.code})`, "dropped"),
  });

  let lazy, trigger;
  const getToken = async () => {
    const r = await fetch(`${config.controlUrl}/token?identity=${encodeURIComponent(identity)}`);
    if (!r.ok) throw new Error(`token endpoint answered ${r.status}`);
    return (await r.json()).token; // handed to Twilio only; mau-beacon reads grants.identity
  };
  const createClient = (token) => {
    const client = new Twilio.Conversations.Client(token, {
      Twilsock: { uri: config.twilsockUrl },
      retryPolicy: { min: 500, max: 4000, randomness: 0.2 },
    });
    window.demoClient = client;
    client.on("connectionStateChanged", (s) => {
      log("#client-log", `connectionStateChanged: ${s}`, s);
      if (client !== window.demoClient) return; // a replaced client winding down
      $("#conn").textContent = s;
      $("#conn").className = `pill ${s}`;
      showLazy();
    });
    for (const ev of ["initialized", "initFailed", "tokenAboutToExpire", "tokenExpired"]) client.on(ev, () => log("#client-log", ev, ev));
    return client;
  };
  const showLazy = () => {
    const state = lazy.state;
    $("#lazy-state").textContent = state === "idle"
      ? "No Client yet: this visitor costs nothing. Click to open chat."
      : `Client ${state} · clients created: ${lazy.clientsCreated}`;
    $("#open").disabled = state !== "idle";
    $("#open").textContent = state === "idle" ? "Open chat" : "Chat is open";
  };
  const arm = () => {
    lazy = new api.LazyClient({ createClient, getToken, tracker, identity, context, eagerIfCounted: false,
      onError: (err) => log("#client-log", `LazyClient: ${err.message}`, "denied") });
    trigger = lazy.connectOn($("#open"));
    window.demoLazy = lazy;
    showLazy();
  };
  arm();

  $("#open").addEventListener("click", () => setTimeout(showLazy, 50));
  $("#signin").addEventListener("click", async () => {
    identity = $("#identity").value.trim() || identity;
    localStorage.setItem("demo:identity", identity);
    trigger.stop();
    window.demoClient = null;
    await lazy.shutdown();
    $("#conn").textContent = "no client";
    $("#conn").className = "pill";
    log("#client-log", `signed in as ${identity}; chat not opened yet`);
    arm();
  });
  const control = (action) => async () => {
    const r = await fetch(`${config.controlUrl}/control/${action}`, { method: "POST" });
    await r.json();
    log("#client-log", `server: ${action} (${r.status})`, "server");
  };
  for (const action of ["drop", "deny", "expire"]) $(`#${action}`).addEventListener("click", control(action));
  // Let Twilio accept again, then ask for the client: a denied or failed one is shut down
  // and replaced, a healthy one is returned as it is (no new Client, no new MAU).
  $("#reconnect").addEventListener("click", async () => {
    await control("allow")();
    trigger.stop();
    lazy.get().catch((err) => log("#client-log", err.message, "denied")).finally(showLazy);
  });

  function showStats() {
    const s = tracker.stats();
    $("#stats").replaceChildren(...[
      ["connects seen", s.connectsSeen], ["beacons queued", s.queued], ["delivered", s.delivered],
      ["pending", s.pending], ["deduped", s.deduped], ["retries", s.retries], ["dropped", s.dropped],
    ].map(([k, v]) => h("div", {}, h("b", {}, String(v)), h("span", {}, k))), h("div", {}, h("b", {}, s.storage), h("span", {}, "storage")));
  }
  showStats();

  const headers = { authorization: `Bearer ${config.adminToken}` };
  const base = config.collectorUrl.replace(/\/v1\/beacons$/, "");
  async function showCollector() {
    try {
      const [sum, ids] = await Promise.all([
        fetch(`${base}/v1/months/${month()}/summary`, { headers }).then((r) => r.json()),
        fetch(`${base}/v1/months/${month()}/identities?format=json`, { headers }).then((r) => r.json()),
      ]);
      $("#summary").replaceChildren(
        h("div", {}, h("b", {}, String(sum.unique_identities ?? ids.length)), h("span", {}, "unique identities")),
        h("div", {}, h("b", {}, String(sum.connects ?? "")), h("span", {}, "connect beacons")));
      $("#identities").replaceChildren(
        h("tr", {}, h("th", {}, "identity"), h("th", {}, "first seen"), h("th", {}, "last seen"), h("th", {}, "connects")),
        ...ids.map((r) => h("tr", {}, h("td", {}, r.identity), h("td", {}, r.first_seen.slice(11, 19)), h("td", {}, r.last_seen.slice(11, 19)), h("td", {}, String(r.connects)))));
      $("#summary").classList.remove("down");
    } catch {
      $("#summary").replaceChildren(h("div", {}, h("b", {}, "—"), h("span", {}, "collector unreachable")));
      $("#summary").classList.add("down");
    }
  }
  showCollector();
  setInterval(() => { showCollector(); showStats(); }, 1500);
  window.demoTracker = tracker;
}
