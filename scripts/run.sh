#!/usr/bin/env bash
# The live demo: installs what is missing, builds the SDK (ES module + script tag) and the
# collector, then serves js-demo/ from a real mau-collector, next to a stand-in for
# Twilio that the real @twilio/conversations client connects to. Ctrl-C stops it all.
#   MAU_DEMO_LISTEN=127.0.0.1:8787  where the collector (and the page) listen
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
say() { printf '\033[1m[demo]\033[0m %s\n' "$*"; }
listen="${MAU_DEMO_LISTEN:-127.0.0.1:8787}"

say "building the SDK and the collector"
bash scripts/build.sh
cargo build --release --quiet -p mau-collector

site=target/demo-site
bash scripts/demo-site.sh "$site"

say "starting the stand-in for Twilio"
fifo=$(mktemp -u) && mkfifo "$fifo"
node js-demo/twilio-side.mjs >"$fifo" &
twilio_pid=$!
trap 'kill $twilio_pid ${collector_pid:-} 2>/dev/null || true; rm -f "$fifo"' EXIT
read -r twilio_json <"$fifo"
admin_token=$(node -e 'console.log(require("crypto").randomBytes(16).toString("hex"))')
node -e '
  const t = JSON.parse(process.argv[1]);
  const c = { collectorUrl: "/v1/beacons", adminToken: process.argv[2], ...t };
  require("fs").writeFileSync(process.argv[3], JSON.stringify(c, null, 2));
' "$twilio_json" "$admin_token" "$site/config.json"

mkdir -p target/demo
say "starting mau-collector on http://$listen (data in target/demo/collector.db)"
MAU_COLLECTOR_ADMIN_TOKEN="$admin_token" ./target/release/mau-collector --db target/demo/collector.db \
  serve --listen "$listen" --static-dir "$site" --allow-origin '*' &
collector_pid=$!
healthy() { node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "http://$listen/healthz"; }
for _ in $(seq 50); do healthy && break; sleep 0.1; done
healthy || { echo "the collector did not start (is $listen in use? set MAU_DEMO_LISTEN)"; exit 1; }
cat <<MSG

  mau-beacon demo is running:
    ES-module build:  http://$listen/
    script-tag build: http://$listen/script-tag.html
    reconciliation dashboard: http://$listen/dashboard (sign in with the admin token)
    admin token for the read endpoints: $admin_token
      curl -H "Authorization: Bearer $admin_token" "http://$listen/v1/months/$(date -u +%Y-%m)/identities?format=csv"
      ./target/release/mau-collector --db target/demo/collector.db report --month $(date -u +%Y-%m)

  Ctrl-C to stop.
MSG
wait $collector_pid
