// An app's own Jest suite (jsdom environment) with mau-beacon imported: the packed tarball
// installed into a tiny app (tests/e2e/jest-app), real Jest run on it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";

import { ROOT as root } from "../support/collector.mjs";
import { installPacked } from "../support/pack.mjs";

let tmp;
// Under the repo, so Jest and jsdom resolve from its node_modules; mau-beacon is the tarball.
const appDir = path.join(root, "target", `jest-app-${randomBytes(4).toString("hex")}`);

after(() => {
  fs.rmSync(appDir, { recursive: true, force: true });
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test("Jest runs an app's test that imports mau-beacon", () => {
  ({ dir: tmp } = installPacked(appDir, { src: path.join(root, "tests/e2e/jest-app") }));
  const t = Date.now();
  const run = spawnSync(path.join(root, "node_modules/.bin/jest"), ["--ci", "--json", "--rootDir", appDir], { cwd: appDir, encoding: "utf8" });
  console.log(`jest: ${Date.now() - t} ms`);
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  const report = JSON.parse(run.stdout);
  assert.equal(report.numPassedTests, 2, run.stderr);
  assert.equal(report.numFailedTests, 0);
  assert.doesNotMatch(run.stderr, /console\.(warn|error)/, "no console noise from mau-beacon in the app's tests");
});
