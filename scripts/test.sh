#!/usr/bin/env bash
# The whole test suite: installs what is missing, then
#   0. gates: rustfmt and clippy (-D warnings) on native and wasm32,
#   1. native unit tests of the pure logic and the collector (cargo test; the collector's
#      against both SQLite and a throwaway PostgreSQL cluster from scripts/pg.sh),
#   2. the SDK in headless Chromium against a real HTTP receiver (wasm-pack test),
#   3. end-to-end tests in Chromium: npm package, script tag, real Conversations client,
#      collector and demo (node --test),
#   4. the fault suite: 200+ page sessions of the real client under injected faults, one
#      line of figures (tests/fault/run.mjs; SEED=n replays a plan).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
say() { printf '\033[1m[test]\033[0m %s\n' "$*"; }

say "format and lints (rustfmt, clippy native and wasm32)"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo clippy -p mau-beacon --target wasm32-unknown-unknown --all-targets --quiet -- -D warnings

say "native tests (cargo test), the collector's against SQLite and a throwaway PostgreSQL"
pg_dir=$(mktemp -d)
trap 'bash scripts/pg.sh stop "$pg_dir" immediate 2>/dev/null || true; rm -rf "$pg_dir"' EXIT
MAU_TEST_PG_URL=$(bash scripts/pg.sh start "$pg_dir")
export MAU_TEST_PG_URL
cargo test --workspace --quiet
bash scripts/pg.sh stop "$pg_dir"
rm -rf "$pg_dir"
trap - EXIT
unset MAU_TEST_PG_URL

say "building the npm package"
bash scripts/build.sh

say "size budget (scripts/size.sh --check)"
bash scripts/size.sh --check

# Reuses the npm build above; builds the static collector and its image (scripts/release.sh).
say "release files, container image and systemd unit (tests/release/run.mjs)"
node tests/release/run.mjs

say "SDK in headless Chromium (wasm-pack test)"
receiver_port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
node tests/support/receiver.mjs "$receiver_port" >/dev/null &
receiver_pid=$!
trap 'kill $receiver_pid 2>/dev/null || true' EXIT
(cd crate && MAU_TEST_RECEIVER="http://127.0.0.1:$receiver_port" wasm-pack test --headless --chrome -- --test web)
kill $receiver_pid 2>/dev/null || true

say "end-to-end tests in Chromium (node --test)"
node --test --test-concurrency=1 tests/twilio/ tests/e2e/

say "fault suite (tests/fault/run.mjs)"
node tests/fault/run.mjs
