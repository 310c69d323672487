// The shipped declarations under the supported TypeScript range (4.7, 5.x, 6.x): strict, no
// skipLibCheck, an ordinary lib (["dom", "es2017"]), as an app (here tests/e2e/ts-app/)
// compiles against the installed tarball: consumer.ts (the API), emitter.ts (Node-style
// emitters as clients), and not-a-client.ts, which must fail.
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
  "6.x": path.join(root, "node_modules/typescript-6/bin/tsc"),
};
let tmp, appDir;

before(() => {
  appDir = fs.mkdtempSync(path.join(os.tmpdir(), "mau-ts-app-"));
  ({ dir: tmp } = installPacked(appDir));
  for (const f of fs.readdirSync(path.join(root, "tests/e2e/ts-app"))) {
    fs.copyFileSync(path.join(root, "tests/e2e/ts-app", f), path.join(appDir, f));
  }
  // What a React app has installed beside mau-beacon: React's types.
  for (const dep of ["@types/react", "csstype"]) {
    fs.mkdirSync(path.dirname(path.join(appDir, "node_modules", dep)), { recursive: true });
    fs.symlinkSync(path.join(root, "node_modules", dep), path.join(appDir, "node_modules", dep));
  }
});

after(() => {
  fs.rmSync(appDir, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Runs `tsc` over `files`; returns the compiler's version, its status and output. */
function compile(version, moduleResolution, files, target = "es5") {
  const tsconfig = {
    compilerOptions: {
      strict: true, noEmit: true, skipLibCheck: false, lib: ["dom", "es2017"], target,
      module: "esnext", moduleResolution, isolatedModules: true, types: [],
      ...(files.some((f) => f.endsWith(".tsx")) ? { jsx: "react-jsx" } : {}),
    },
    files,
  };
  const project = path.join(appDir, `tsconfig.${version}.${moduleResolution}.${files.length}.json`);
  fs.writeFileSync(project, JSON.stringify(tsconfig));
  const run = spawnSync(process.execPath, [COMPILERS[version], "-p", project], { cwd: appDir, encoding: "utf8" });
  const installed = execFileSync(process.execPath, [COMPILERS[version], "--version"], { encoding: "utf8" }).trim();
  return { installed, status: run.status, output: `${installed}, moduleResolution ${moduleResolution}:\n${run.stdout}${run.stderr}` };
}

/** The consumers that must compile, then the one that must not, with the errors expected. */
function tsc(version, moduleResolution, target) {
  const ok = compile(version, moduleResolution, ["consumer.ts", "emitter.ts", "node_modules/mau-beacon/dist/mau-beacon.global.d.ts"], target);
  assert.equal(ok.status, 0, ok.output);
  const react = compile(version, moduleResolution, ["react-consumer.tsx"], target);
  assert.equal(react.status, 0, react.output);
  const bad = compile(version, moduleResolution, ["not-a-client.ts"], target);
  assert.equal(bad.status, 2, bad.output);
  const errors = bad.output.split("\n").filter((l) => l.startsWith("not-a-client.ts("));
  assert.equal(errors.length, 2, bad.output);
  assert.match(errors[0], /^not-a-client\.ts\(5,15\): error TS2345: Argument of type '\{ connectionState: string; \}' is not assignable to parameter of type 'ConversationsClientLike'/);
  assert.match(errors[1], /^not-a-client\.ts\(6,15\): error TS2345: Argument of type '\{ on: \(event: string\) => undefined; \}' is not assignable to parameter of type 'ConversationsClientLike'/);
  return ok.installed;
}

test("TypeScript 4.7 (oldest supported): strict, skipLibCheck false, lib dom + es2017, target es5", () => {
  assert.match(tsc("4.7", "node"), /^Version 4\.7\./);
});

test("TypeScript 5.x: the same, with node and bundler resolution", () => {
  assert.match(tsc("5.x", "node"), /^Version 5\./);
  tsc("5.x", "bundler");
});

// TypeScript 6 deprecates target es5 and moduleResolution node (node10): an app on 6 uses
// neither without `ignoreDeprecations`, so neither is checked here.
test("TypeScript 6.x (newest): the same, with bundler resolution and target es2017", () => {
  assert.match(tsc("6.x", "bundler", "es2017"), /^Version 6\./);
});

test("no `any` in the hand-written declarations", () => {
  for (const f of ["js/index.d.ts", "js/react.d.ts", "dist/mau-beacon.global.d.ts"]) {
    const text = fs.readFileSync(path.join(appDir, "node_modules/mau-beacon", f), "utf8");
    assert.doesNotMatch(text.replace(/\/\/.*|\/\*[\s\S]*?\*\//g, ""), /\bany\b/, f);
  }
});
