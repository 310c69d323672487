// The shipped declarations under the oldest and newest supported TypeScript: strict, no
// skipLibCheck, an ordinary lib (["dom", "es2017"]), target es5, as an app (here
// tests/e2e/ts-app/consumer.ts) compiles against the installed tarball.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { ROOT as root } from "../support/collector.mjs";
import { installPacked } from "../support/pack.mjs";

const COMPILERS = {
  "4.7": path.join(root, "node_modules/typescript-4.7/bin/tsc"),
  "5.x": path.join(root, "node_modules/typescript/bin/tsc"),
};
let tmp, appDir;

before(() => {
  appDir = fs.mkdtempSync(path.join(os.tmpdir(), "mau-ts-app-"));
  ({ dir: tmp } = installPacked(appDir));
  fs.copyFileSync(path.join(root, "tests/e2e/ts-app/consumer.ts"), path.join(appDir, "consumer.ts"));
});

after(() => {
  fs.rmSync(appDir, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
});

function tsc(version, moduleResolution) {
  const tsconfig = {
    compilerOptions: {
      strict: true, noEmit: true, skipLibCheck: false, lib: ["dom", "es2017"], target: "es5",
      module: "esnext", moduleResolution, isolatedModules: true, types: [],
    },
    files: ["consumer.ts", "node_modules/mau-beacon/dist/mau-beacon.global.d.ts"],
  };
  const project = path.join(appDir, `tsconfig.${version}.${moduleResolution}.json`);
  fs.writeFileSync(project, JSON.stringify(tsconfig));
  const run = spawnSync(process.execPath, [COMPILERS[version], "-p", project], { cwd: appDir, encoding: "utf8" });
  const installed = execFileSync(process.execPath, [COMPILERS[version], "--version"], { encoding: "utf8" }).trim();
  assert.equal(run.status, 0, `${installed}, moduleResolution ${moduleResolution}:\n${run.stdout}${run.stderr}`);
  return installed;
}

test("TypeScript 4.7 (oldest supported): strict, skipLibCheck false, lib dom + es2017, target es5", () => {
  assert.match(tsc("4.7", "node"), /^Version 4\.7\./);
});

test("TypeScript 5.x (newest): the same, with node and bundler resolution", () => {
  assert.match(tsc("5.x", "node"), /^Version 5\./);
  tsc("5.x", "bundler");
});

test("no `any` in the hand-written declarations", () => {
  for (const f of ["js/index.d.ts", "dist/mau-beacon.global.d.ts"]) {
    const text = fs.readFileSync(path.join(appDir, "node_modules/mau-beacon", f), "utf8");
    assert.doesNotMatch(text.replace(/\/\/.*|\/\*[\s\S]*?\*\//g, ""), /\bany\b/, f);
  }
});
