#!/usr/bin/env bash
# Size benchmark: prints what a page downloads for mau-beacon (gzip -9), as shipped and
# minified the way a user's bundler would. Run after scripts/build.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
gz() { gzip -9c "$1" | wc -c; }
kb() { awk -v b="$1" 'BEGIN { printf "%.1f KB", b / 1000 }'; }
wasm=pkg/web/mau_beacon_bg.wasm
glue=pkg/web/mau_beacon.js
min=$(mktemp --suffix=.js)
esbuild "$glue" --minify --format=esm --log-level=error --outfile="$min"
printf '%-34s %10s %10s\n' "file" "raw" "gzip -9"
printf '%-34s %10s %10s\n' "$wasm" "$(kb "$(stat -c%s $wasm)")" "$(kb "$(gz $wasm)")"
printf '%-34s %10s %10s\n' "$glue (as shipped)" "$(kb "$(stat -c%s $glue)")" "$(kb "$(gz $glue)")"
printf '%-34s %10s %10s\n' "$glue (minified)" "$(kb "$(stat -c%s "$min")")" "$(kb "$(gz "$min")")"
printf '%-34s %10s %10s\n' "dist/mau-beacon.global.js" "$(kb "$(stat -c%s dist/mau-beacon.global.js)")" "$(kb "$(gz dist/mau-beacon.global.js)")"
printf 'ES module total (wasm + minified glue), gzip: %s\n' "$(kb $(( $(gz $wasm) + $(gz "$min") )))"
# The package entry (js/index.js: startTracker, load) bundled with the glue, as an app gets it.
entry=$(mktemp --suffix=.js)
esbuild js/index.js --bundle --minify --format=esm --log-level=error --outfile="$entry"
printf '%-34s %10s %10s\n' "js/index.js + glue (minified)" "$(kb "$(stat -c%s "$entry")")" "$(kb "$(gz "$entry")")"
printf 'ES module total (wasm + minified entry and glue), gzip: %s\n' "$(kb $(( $(gz $wasm) + $(gz "$entry") )))"
rm -f "$min" "$entry"
