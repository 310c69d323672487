// The npm package as users get it: `npm pack`, then installed into an app directory.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { ROOT } from "./collector.mjs";

/** Copies `src` (if given) to `appDir`, writes its package.json and installs the packed
 * tarball there; returns the tarball's temp directory (`dir`, for the caller to remove) and
 * the files the tarball holds. */
export function installPacked(appDir, { src, pkg = { private: true } } = {}) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mau-pack-"));
  const [info] = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", tmp], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }));
  if (src) fs.cpSync(src, appDir, { recursive: true });
  fs.mkdirSync(appDir, { recursive: true });
  fs.writeFileSync(path.join(appDir, "package.json"), JSON.stringify({ name: path.basename(appDir), ...pkg }));
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--offline", path.join(tmp, info.filename)], { cwd: appDir, stdio: "pipe" });
  return { dir: tmp, files: info.files.map((f) => f.path) };
}

/** A real app's own dependencies (tests/apps/<name>, with its lock): `npm ci` unless its
 * node_modules matches the lock already, keyed by the lock's hash. */
export function installAppDeps(dir) {
  const sum = createHash("sha256").update(fs.readFileSync(path.join(dir, "package-lock.json"))).digest("hex");
  const mark = path.join(dir, "node_modules/.setup-lock");
  if (fs.existsSync(mark) && fs.readFileSync(mark, "utf8").trim() === sum) return;
  const t = Date.now();
  execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: dir, stdio: "pipe" });
  fs.writeFileSync(mark, sum);
  console.log(`${path.basename(dir)}: npm ci ${Date.now() - t} ms`);
}

/** Packs the package into `tmp`; returns the tarball's path. */
export function packInto(tmp) {
  const [info] = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", tmp], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }));
  return path.join(tmp, info.filename);
}

/** The tarball as npm would install it into `appDir` (the package has no dependencies). */
export function unpackInto(appDir, tarball) {
  const pkgDir = path.join(appDir, "node_modules/mau-beacon");
  fs.rmSync(pkgDir, { recursive: true, force: true });
  fs.mkdirSync(pkgDir);
  execFileSync("tar", ["-xzf", tarball, "-C", pkgDir, "--strip-components=1"]);
}
