// The demo's stand-in for Twilio: the fake Twilsock server (the real
// @twilio/conversations client in the page connects to it), a token endpoint like the one
// an app's backend has, and controls the page uses to drop the network, deny or expire.
//   node js-demo/twilio-side.mjs   prints {"twilsockUrl", "controlUrl"} as JSON
import { start } from "../tests/twilio/fake-twilsock.mjs";
import { makeToken } from "../tests/twilio/jwt.mjs";

const cors = { "access-control-allow-origin": "*", "access-control-allow-methods": "GET, POST", "cache-control": "no-store" };
const send = (res, status, body) => {
  res.writeHead(status, { ...cors, "content-type": "application/json" });
  res.end(JSON.stringify(body));
};

/** Starts the stand-in; resolves to the fake Twilsock server, with its demo URLs. */
export async function startTwilioSide() {
  let srv;
  const routes = [
    {
      method: "GET",
      path: /^\/demo\/token/,
      handler(req, res) {
        const identity = new URL(req.url, "http://x").searchParams.get("identity") ?? "";
        if (!identity.trim()) return send(res, 400, { error: "identity is required" });
        send(res, 200, { token: makeToken({ identity, ttl: 3600 }) });
      },
    },
    {
      method: "POST",
      path: /^\/demo\/control\/(drop|deny|allow|expire)$/,
      handler(req, res) {
        const action = req.url.split("/").pop();
        if (action === "drop") srv.dropAll();
        if (action === "deny") srv.setMode("deny");
        if (action === "allow") srv.setMode("ok");
        if (action === "expire") srv.expireAll();
        send(res, 200, { ok: true, action, sockets: srv.stats.socketsOpen });
      },
    },
    { method: "OPTIONS", path: /^\/demo\//, handler: (req, res) => { res.writeHead(204, cors); res.end(); } },
  ];

  srv = await start({ mode: "ok", httpRoutes: routes });
  srv.demo = { twilsockUrl: srv.wsUrl, controlUrl: `${srv.httpUrl}/demo` };
  return srv;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const srv = await startTwilioSide();
  console.log(JSON.stringify(srv.demo));
  for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => srv.close().then(() => process.exit(0)));
}
