// The npm package as users get it: `npm pack`, then installed into an app directory.
import { execFileSync } from "node:child_process";
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
