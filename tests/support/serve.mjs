// A static file server for browser tests: `serveStatic({ "/": dir, "/pkg": otherDir })`;
// `headers` go on every response (e.g. a Content-Security-Policy). With `spa`, a path that
// matches no file answers the `/` mount's index.html with 200, as single-page-app hosts do
// (nginx `try_files $uri /index.html`); `requests` lists each path and its answer.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".css": "text/css",
  ".map": "application/json",
};

export function serveStatic(mounts, { host = "127.0.0.1", headers = {}, spa = false } = {}) {
  const entries = Object.entries(mounts).sort((a, b) => b[0].length - a[0].length);
  const requests = [];
  const server = http.createServer((req, res) => {
    const pathname = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const served = (answer) => requests.push({ path: pathname, answer });
    for (const [prefix, dir] of entries) {
      if (!pathname.startsWith(prefix)) continue;
      let file = path.join(dir, pathname.slice(prefix.length));
      if (!file.startsWith(path.resolve(dir))) break;
      if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, "index.html");
      if (!fs.existsSync(file)) continue;
      served(path.relative(dir, file));
      res.writeHead(200, { ...headers, "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" });
      return fs.createReadStream(file).pipe(res);
    }
    if (spa && mounts["/"]) {
      served("index.html (SPA fallback)");
      res.writeHead(200, { ...headers, "content-type": TYPES[".html"] });
      return fs.createReadStream(path.join(mounts["/"], "index.html")).pipe(res);
    }
    served(404);
    res.writeHead(404).end("not found");
  });
  return new Promise((resolve) =>
    server.listen(0, host, () => resolve({ url: `http://${host}:${server.address().port}`, requests, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }) })),
  );
}
