#!/usr/bin/env bash
# Measures a build that would need no CSP 'wasm-unsafe-eval': the SDK's wasm turned into JS
# by binaryen's wasm2js. wasm2js takes one table only, so this builds without the
# reference-types feature (wasm-bindgen then keeps JS values in a JS-side slab). Prints
# gzip sizes beside the shipped wasm; ships nothing. Run after scripts/build.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
target="${CARGO_TARGET_DIR:-target}/wasm2js"
RUSTFLAGS="-C target-feature=-reference-types,-multivalue --remap-path-prefix=$HOME/.cargo/registry/src=crates --remap-path-prefix=$PWD=mau-beacon" \
  cargo build -p mau-beacon --target wasm32-unknown-unknown --release --quiet --target-dir "$target"
wasm-bindgen --target web --out-dir "$out" "$target"/wasm32-unknown-unknown/release/mau_beacon.wasm
wasm-opt -Oz --strip-debug --strip-producers --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals "$out"/mau_beacon_bg.wasm -o "$out"/mau_beacon_bg.wasm
wasm2js -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
  "$out"/mau_beacon_bg.wasm -o "$out"/wasm2js.js
esbuild "$out"/wasm2js.js --minify --format=esm --log-level=error --outfile="$out"/wasm2js.min.js
gz() { gzip -9c "$1" | wc -c; }
kb() { awk -v b="$1" 'BEGIN { printf "%.1f KB", b / 1000 }'; }
printf '%-44s %10s %10s\n' "file" "raw" "gzip -9"
printf '%-44s %10s %10s\n' "shipped wasm (pkg/web/mau_beacon_bg.wasm)" "$(kb "$(stat -c%s pkg/web/mau_beacon_bg.wasm)")" "$(kb "$(gz pkg/web/mau_beacon_bg.wasm)")"
printf '%-44s %10s %10s\n' "wasm without reference-types" "$(kb "$(stat -c%s "$out"/mau_beacon_bg.wasm)")" "$(kb "$(gz "$out"/mau_beacon_bg.wasm)")"
printf '%-44s %10s %10s\n' "wasm2js of it, minified" "$(kb "$(stat -c%s "$out"/wasm2js.min.js)")" "$(kb "$(gz "$out"/wasm2js.min.js)")"
