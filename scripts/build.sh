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
# `[Symbol.dispose]` in the declarations needs TypeScript 5.2 and lib esnext.disposable; the
# JS keeps it, the types drop it so older TypeScript and ordinary `lib`s check (README).
sed -i '/\[Symbol\.dispose\]()/d' pkg/web/mau_beacon.d.ts
# The script tag inlines the wasm deflated (raw DEFLATE, level 9) and then base64: gzip
# cannot squeeze base64 of the raw wasm well, base64 of deflated bytes it takes back to
# about their own size (docs/size.md); js/global.js inflates it.
mkdir -p pkg/packed
node -e 'const z=require("zlib"),fs=require("fs");fs.writeFileSync(process.argv[2],z.deflateRawSync(fs.readFileSync(process.argv[1]),{level:9}))' \
  pkg/web/mau_beacon_bg.wasm pkg/packed/mau_beacon_bg.wasm.deflate
esbuild js/global.js --bundle --format=iife --global-name=MauBeacon --minify \
  --loader:.deflate=base64 --log-level=error --outfile=dist/mau-beacon.global.js
cp js/global.d.ts dist/mau-beacon.global.d.ts
echo "built pkg/web and dist/"
