#!/usr/bin/env bash
# Size benchmark: prints what a page downloads for mau-beacon (gzip -9 and brotli -11), as
# shipped and minified the way a user's bundler would. Run after scripts/build.sh.
# `--check` also fails when the build grew past the budget below (CI runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

# The budget, in bytes of gzip -9 (docs/size.md says where the figures come from). Raise it
# only with a line in docs/size.md saying what the bytes bought.
BUDGET_ES_MODULE=${BUDGET_ES_MODULE:-54378} # wasm + minified package entry and glue
BUDGET_SCRIPT_TAG=${BUDGET_SCRIPT_TAG:-55490} # dist/mau-beacon.global.js

gz() { gzip -9c "$1" | wc -c; }
br() { node -e 'const z=require("zlib");process.stdout.write(String(z.brotliCompressSync(require("fs").readFileSync(process.argv[1]),{params:{[z.constants.BROTLI_PARAM_QUALITY]:11}}).length))' "$1"; }
kb() { awk -v b="$1" 'BEGIN { printf "%.1f KB", b / 1000 }'; }
row() { printf '%-34s %10s %10s %10s\n' "$1" "$(kb "$(stat -c%s "$2")")" "$(kb "$(gz "$2")")" "$(kb "$(br "$2")")"; }
wasm=pkg/web/mau_beacon_bg.wasm
glue=pkg/web/mau_beacon.js
global=dist/mau-beacon.global.js
min=$(mktemp --suffix=.js)
split=$(mktemp -d)
trap 'rm -rf "$min" "$split"' EXIT
esbuild "$glue" --minify --format=esm --log-level=error --outfile="$min"
# The package entry (js/index.js: startTracker, load) bundled with the glue, as an app gets it,
# code-split as bundlers do: the inlined wasm (js/inline.js, fetched only when the .wasm's URL
# does not answer with wasm) must land in a chunk of its own, not in the entry.
esbuild js/index.js --bundle --minify --format=esm --splitting --entry-names=entry --chunk-names=chunk-[hash] \
  --log-level=error --outdir="$split"
entry=$split/entry.js
chunks=("$split"/chunk-*.js)
if [ "${#chunks[@]}" -ne 1 ] || ! grep -q 'deflate-raw' "${chunks[0]}" || grep -q 'deflate-raw' "$entry"; then
  echo "the inlined wasm is not one chunk of its own apart from the entry: $(ls "$split")" >&2
  exit 1
fi
fallback=${chunks[0]}
# mau-beacon/react on its own (React and the package entry left out: the app has them).
esbuild js/react.js --bundle --minify --format=esm --external:react --external:./index.js --log-level=error \
  --outfile="$split/react.js"
printf '%-34s %10s %10s %10s\n' "file" "raw" "gzip -9" "brotli"
row "$wasm" "$wasm"
row "$glue (as shipped)" "$glue"
row "$glue (minified)" "$min"
row "js/index.js + glue (minified)" "$entry"
row "fallback chunk (js/inline.js)" "$fallback"
row "$global" "$global"
row "js/react.js (minified)" "$split/react.js"
es_gz=$(( $(gz $wasm) + $(gz "$entry") ))
es_br=$(( $(br $wasm) + $(br "$entry") ))
printf 'ES module total (wasm + minified glue), gzip: %s\n' "$(kb $(( $(gz $wasm) + $(gz "$min") )))"
printf 'ES module total (wasm + minified entry and glue): gzip %s, brotli %s\n' "$(kb $es_gz)" "$(kb $es_br)"
# The fallback path: the entry, a failed .wasm request (not counted: a 404 or an index.html),
# then the chunk; the normal path never fetches the chunk.
printf 'Fallback path (minified entry and glue + inlined-wasm chunk): gzip %s, brotli %s\n' \
  "$(kb $(( $(gz "$entry") + $(gz "$fallback") )))" "$(kb $(( $(br "$entry") + $(br "$fallback") )))"

if [ "${1:-}" = "--check" ]; then
  global_gz=$(gz $global)
  failed=0
  if [ "$es_gz" -gt "$BUDGET_ES_MODULE" ]; then
    echo "size budget exceeded: ES module $es_gz B gzip > $BUDGET_ES_MODULE B" >&2
    failed=1
  fi
  if [ "$global_gz" -gt "$BUDGET_SCRIPT_TAG" ]; then
    echo "size budget exceeded: $global $global_gz B gzip > $BUDGET_SCRIPT_TAG B" >&2
    failed=1
  fi
  [ "$failed" -eq 0 ] && echo "size budget holds: ES module $es_gz/$BUDGET_ES_MODULE B, script tag $global_gz/$BUDGET_SCRIPT_TAG B (gzip -9)"
  exit "$failed"
fi
