// A fault-injecting HTTP proxy on loopback, in front of the real collector. Each request
// draws a fate from the seeded `rng`: passed through, or one of the faults below. The
// upstream can be swapped (the collector restarted on another port) or be down, when
// every request is reset as a refused connection would be.
import http from "node:http";

/** The faults, each with its weight out of 100 (the rest pass through). */
export const FAULTS = {
  reset: 8, //            the connection dropped, no answer (a refused or reset connection)
  http500: 6,
  http503: 6,
  http429: 6, //          with Retry-After: 1
  stored_then_503: 6, //  passed to the collector (stored), the client told 503: it retries
  stall: 1, //            no answer past the SDK's 30 s timeout, then dropped
};

/** These beacon requests (by arrival) stall whatever the draw, so every run has stalls. */
const FORCED_STALLS = [10, 60];

/** Longest stall, just past the SDK's 30 s fetch timeout. */
const STALL_MS = 31_000;

/**
 * @param {{ rng: () => number, maxStalls: number }} opts
 */
export function startProxy({ rng, maxStalls }) {
  let upstream = null; // port of the collector, or null while it is down
  const counts = Object.fromEntries([...Object.keys(FAULTS), "collector_down", "passed"].map((k) => [k, 0]));
  const sockets = new Set();
  const timers = new Set();

  const cors = (req) => ({
    "access-control-allow-origin": req.headers.origin ?? "*",
    "access-control-allow-credentials": "true",
    "access-control-expose-headers": "Retry-After",
    vary: "Origin",
  });

  let posts = 0;
  function draw() {
    posts += 1;
    if (FORCED_STALLS.includes(posts) && counts.stall < maxStalls) return "stall";
    let x = rng() * 100;
    for (const [name, weight] of Object.entries(FAULTS)) {
      if (x < weight) return name === "stall" && counts.stall >= maxStalls ? "pass" : name;
      x -= weight;
    }
    return "pass";
  }

  /** Forwards to the collector; `answer(status, headers, body)` or null when it is down. */
  function forward(req, body, answer) {
    if (upstream === null) return answer(null);
    const out = http.request(
      { host: "127.0.0.1", port: upstream, method: req.method, path: req.url, headers: { ...req.headers, connection: "close" } },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => answer(res.statusCode, res.headers, Buffer.concat(chunks)));
        res.on("error", () => answer(null));
      },
    );
    out.on("error", () => answer(null));
    out.end(body);
  }

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const fate = req.method === "POST" ? draw() : "pass";
      const fail = (status, extra = {}) => {
        counts[fate] += 1;
        res.writeHead(status, { ...cors(req), "content-type": "application/json", ...extra });
        res.end(JSON.stringify({ ok: false, code: "injected_fault" }));
      };
      switch (fate) {
        case "reset":
          counts.reset += 1;
          return req.socket.destroy();
        case "http500":
          return fail(500);
        case "http503":
          return fail(503);
        case "http429":
          return fail(429, { "retry-after": "1" });
        case "stall": {
          counts.stall += 1;
          const t = setTimeout(() => { timers.delete(t); req.socket.destroy(); }, STALL_MS);
          timers.add(t);
          return undefined;
        }
        default:
          return forward(req, body, (status, headers, answer) => {
            if (status === null) {
              counts.collector_down += 1;
              return req.socket.destroy();
            }
            if (fate === "stored_then_503") return fail(503);
            counts.passed += 1;
            res.writeHead(status, headers);
            return res.end(answer);
          });
      }
    });
  });
  server.on("connection", (s) => { sockets.add(s); s.on("close", () => sockets.delete(s)); });

  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve({
      url: `http://127.0.0.1:${server.address().port}`,
      counts,
      /** Faults injected so far, the collector being down included. */
      get faults() {
        return Object.entries(counts).filter(([k]) => k !== "passed").reduce((n, [, v]) => n + v, 0);
      },
      setUpstream(port) { upstream = port; },
      close() {
        for (const t of timers) clearTimeout(t);
        for (const s of sockets) s.destroy();
        return new Promise((r) => server.close(r));
      },
    }));
  });
}
