#!/usr/bin/env bash
# Assembles the demo site into DIR (default target/demo-site): the js-demo pages, the built
# SDK (pkg/web, js/index.js with load.js and inline.js, dist) and the real Conversations
# browser build. config.json is the caller's.
set -euo pipefail
cd "$(dirname "$0")/.."
site="${1:-target/demo-site}"
rm -rf "$site" && mkdir -p "$site/pkg" "$site/js" "$site/conversations"
cp js-demo/index.html js-demo/script-tag.html js-demo/demo.js js-demo/demo.css "$site/"
cp -r pkg/web "$site/pkg/web" && cp -r dist "$site/dist" && cp js/index.js js/load.js js/inline.js "$site/js/"
cp node_modules/@twilio/conversations/builds/twilio-conversations.min.js "$site/conversations/"
