// Runs the real mau-collector binary for browser tests.
import { spawn, execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.join(path.resolve(ROOT, process.env.CARGO_TARGET_DIR ?? "target"), "debug/mau-collector");

/** Builds the collector (debug) once; cheap when it is up to date. */
export function buildCollector() {
  execFileSync("cargo", ["build", "--quiet", "-p", "mau-collector"], { cwd: ROOT, stdio: "inherit" });
  return BIN;
}

/**
 * Starts `mau-collector serve`; resolves once it listens.
 * @returns {{url: string, port: number, adminToken: string, stop: (signal?: string) => Promise<void>}}
 */
export function startCollector({ db, listen = "127.0.0.1:0", adminToken = "test-admin-token", staticDir, allowOrigin = "*", env = {} }) {
  const args = ["--db", db, "serve", "--listen", listen, "--allow-origin", allowOrigin];
  if (staticDir) args.push("--static-dir", staticDir);
  const child = spawn(BIN, args, {
    env: { ...process.env, MAU_COLLECTOR_ADMIN_TOKEN: adminToken, MAU_COLLECTOR_LOG: "warn", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const m = out.match(/listening on (http:\/\/[\d.]+:(\d+))/);
      if (!m) return;
      resolve({
        url: m[1],
        port: Number(m[2]),
        adminToken,
        async stop(signal = "SIGKILL") {
          child.kill(signal);
          await exited;
        },
        /** GET a read endpoint with the admin token, parsed as JSON. */
        async read(p) {
          const r = await fetch(m[1] + p, { headers: { authorization: `Bearer ${adminToken}` } });
          if (!r.ok) throw new Error(`${p}: HTTP ${r.status}`);
          return r.json();
        },
      });
    });
    child.on("exit", (code) => reject(new Error(`mau-collector exited (${code}) before listening: ${out}`)));
  });
}

/** The current UTC month, as the collector buckets it. */
export const utcMonth = () => new Date().toISOString().slice(0, 7);
