#!/usr/bin/env bash
# Builds the npm package: pkg/web (ES module + .wasm + .d.ts) and dist/ (script tag).
# Needs what scripts/setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"

# Panic locations would otherwise carry this machine's paths into the shipped wasm.
RUSTFLAGS="--remap-path-prefix=$HOME/.cargo/registry/src=crates --remap-path-prefix=$PWD=mau-beacon" \
  cargo build -p mau-beacon --target wasm32-unknown-unknown --release --quiet
rm -rf pkg/web pkg/packed dist
wasm-bindgen --target web --out-dir pkg/web "${CARGO_TARGET_DIR:-target}"/wasm32-unknown-unknown/release/mau_beacon.wasm
# binaryen's own wasm-opt (npm); Debian's is too old for current rustc output.
wasm-opt -Oz --strip-debug --strip-producers --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  pkg/web/mau_beacon_bg.wasm -o pkg/web/mau_beacon_bg.wasm
# Import and export names of a few letters instead of wasm-bindgen's hashed ones; the glue
# follows binaryen's mapping (scripts/minify-names.mjs, docs/size.md).
names=$(mktemp)
wasm-opt --minify-imports-and-exports-and-modules --enable-reference-types --enable-multivalue \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
  pkg/web/mau_beacon_bg.wasm -o pkg/web/mau_beacon_bg.wasm >"$names"
node scripts/minify-names.mjs pkg/web "$names"
rm -f "$names"
# `[Symbol.dispose]` in the declarations needs TypeScript 5.2 and lib esnext.disposable; the
# JS keeps it, the types drop it so older TypeScript and ordinary `lib`s check (README).
sed -i '/\[Symbol\.dispose\]()/d' pkg/web/mau_beacon.d.ts
# The inlined copy (js/inline.js: the script tag's wasm, and the ES module's fallback chunk):
# the wasm deflated (raw DEFLATE, level 9), then base64. gzip cannot squeeze base64 of the
# raw wasm well, base64 of deflated bytes it takes back to about their own size
# (docs/size.md).
node -e 'const z=require("zlib"),fs=require("fs");const b64=z.deflateRawSync(fs.readFileSync(process.argv[1]),{level:9}).toString("base64");fs.writeFileSync(process.argv[2],"// The wasm, deflated and base64 (scripts/build.sh); js/inline.js inflates it.\nexport default \""+b64+"\";\n")' \
  pkg/web/mau_beacon_bg.wasm pkg/web/mau_beacon_inline.js
# The script tag carries js/inline.js (js/global.js imports it): the fallback's `import()`
# of it is left out (external, never run there) rather than bundled a second way.
node --input-type=module -e '
import { build } from "esbuild";
const fallback = { name: "fallback", setup: (b) => b.onResolve({ filter: /inline\.js$/ }, (a) => (a.kind === "dynamic-import" ? { path: a.path, external: true } : undefined)) };
await build({ entryPoints: ["js/global.js"], bundle: true, format: "iife", globalName: "MauBeacon", minify: true, logLevel: "error", outfile: "dist/mau-beacon.global.js", plugins: [fallback] });
'
cp js/global.d.ts dist/mau-beacon.global.d.ts
# mau-beacon/react for `require` and server rendering: js/react.js over the inert build
# (js/inert.cjs), so the same hooks render on a server and run in a test runner.
node --input-type=module -e '
import { build } from "esbuild";
const inert = { name: "inert", setup: (b) => b.onResolve({ filter: /^\.\/index\.js$/ }, () => ({ path: "../js/inert.cjs", external: true })) };
await build({ entryPoints: ["js/react.js"], bundle: true, format: "cjs", platform: "node", external: ["react"], logLevel: "error", outfile: "dist/react.cjs", plugins: [inert] });
'

echo "built pkg/web and dist/"
