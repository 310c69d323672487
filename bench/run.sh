#!/usr/bin/env bash
# Benchmarks: prints tables of what mau-beacon weighs (size), costs a page (headless
# Chromium) and saves a Twilio bill (a simulated month through the real LazyClient), and
# how far the collector's month-end forecast is off (a backtest over simulated months).
# Builds first (cheap when up to date); BENCH_NO_BUILD=1 measures the build as it is.
# Knobs: BENCH_RUNS (page-cost runs, default 30), BENCH_SEED, BENCH_VIEWS, BENCH_IDENTITIES,
# BENCH_OPEN_RATE, BENCH_PRICE_PER_MAU_USD, BENCH_FREE_MAU (see bench/mau-month.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh
[ "${BENCH_NO_BUILD:-}" = 1 ] || bash scripts/build.sh
# twiggy reads what takes the wasm's bytes; installed only when missing.
command -v twiggy >/dev/null || cargo install twiggy --version 0.8.0 --locked --quiet

echo "mau-beacon benchmarks, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
node bench/size.mjs
node bench/page-cost.mjs
# The simulation first proves its counting on a month small enough to count by hand.
node --test --test-reporter=dot bench/ >/dev/null || { echo "bench: the MAU simulation's self-check failed (node --test bench/)" >&2; exit 1; }
node bench/mau-month.mjs
# The month-end forecast against simulated months of five shapes (README: Forecast).
cargo run -q --release -p mau-collector --example forecast_backtest
