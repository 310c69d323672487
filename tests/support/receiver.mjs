// A programmable beacon receiver for the SDK's browser tests: real HTTP on loopback.
//   POST /b/<bucket>[?fail=N&status=S&retryAfter=R]  the first N posts answer S (default
//        503, with Retry-After R if given), the rest 204; ?status=S alone answers S always.
//   GET  /b/<bucket>  -> {"attempts":[{"status":204,"body":{...}}...]}
// Every answer carries permissive CORS headers and exposes Retry-After.
import http from "node:http";

export function startReceiver({ port = 0, host = "127.0.0.1" } = {}) {
  const buckets = new Map();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    const cors = {
      "access-control-allow-origin": req.headers.origin || "*",
      "access-control-allow-credentials": "true",
      "access-control-expose-headers": "Retry-After",
      "access-control-allow-headers": "content-type",
      vary: "Origin",
    };
    const match = url.pathname.match(/^\/b\/([\w.-]+)$/);
    if (req.method === "OPTIONS") return res.writeHead(204, cors).end();
    if (!match) return res.writeHead(404, cors).end();
    const bucket = buckets.get(match[1]) ?? { attempts: [], posts: 0 };
    buckets.set(match[1], bucket);
    if (req.method === "GET") {
      res.writeHead(200, { ...cors, "content-type": "application/json" });
      return res.end(JSON.stringify({ attempts: bucket.attempts }));
    }
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      bucket.posts += 1;
      const fail = Number(url.searchParams.get("fail") ?? 0);
      const failing = url.searchParams.has("fail") ? bucket.posts <= fail : url.searchParams.has("status");
      const status = failing ? Number(url.searchParams.get("status") ?? 503) : 204;
      let parsed;
      try { parsed = JSON.parse(body); } catch { parsed = { unparsable: body }; }
      bucket.attempts.push({ status, body: parsed, contentType: req.headers["content-type"] ?? null });
      const headers = { ...cors };
      if (failing && url.searchParams.has("retryAfter")) headers["retry-after"] = url.searchParams.get("retryAfter");
      res.writeHead(status, headers).end();
    });
  });
  return new Promise((resolve) => {
    server.listen(port, host, () => {
      const { port } = server.address();
      resolve({ url: `http://${host}:${port}`, buckets, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

// `node tests/support/receiver.mjs PORT`: run it stand-alone (the wasm tests use it so).
if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await startReceiver({ port: Number(process.argv[2] ?? 8799) });
  console.log(`receiver listening on ${r.url}`);
}
