#!/usr/bin/env bash
# The collector's ingest benchmark, by hand (not part of the test command): SQLite and a
# throwaway PostgreSQL (scripts/pg.sh), 1/16/64 keep-alive clients, each beside /healthz
# on the same server. Prints the disk's own fsync rate first, then a Markdown table.
# Knobs: BENCH_SECONDS, BENCH_RUNS, BENCH_CLIENTS, BENCH_DB (see the example's header).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bin=$(bash scripts/pg.sh bin)
pg_dir=$(mktemp -d)
trap 'bash scripts/pg.sh stop "$pg_dir" immediate 2>/dev/null || true; rm -rf "$pg_dir"' EXIT
echo "this disk, one 8 kB write + sync, serial (pg_test_fsync):"
"$bin/pg_test_fsync" -s 2 -f "$pg_dir/fsync.probe" | grep -A6 "one 8kB write" | grep -E "fdatasync|fsync " || true
rm -f "$pg_dir/fsync.probe"
BENCH_PG_URL=$(bash scripts/pg.sh start "$pg_dir")
export BENCH_PG_URL
cargo run --release -q -p mau-collector --example ingest_bench
