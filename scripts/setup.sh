#!/usr/bin/env bash
# Installs what building and testing mau-beacon needs, only what is missing; safe to rerun.
# Rust wasm target, wasm-bindgen-cli 0.2.130 (must equal the crate's pinned wasm-bindgen),
# wasm-pack, Debian's Chromium + chromedriver, Debian's PostgreSQL, and the npm dev dependencies.
# For the release files: the musl target, Debian's musl-tools, podman, systemd and file.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
# The collector's static release binary (scripts/release.sh).
if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
  say "adding the x86_64-unknown-linux-musl target"
  rustup target add x86_64-unknown-linux-musl
fi
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen 0.2.130" ]; then
  say "installing wasm-bindgen-cli 0.2.130"
  cargo install wasm-bindgen-cli --version 0.2.130 --force
fi
if ! command -v wasm-pack >/dev/null; then
  say "installing wasm-pack"
  cargo install wasm-pack --locked
fi
# Debian packages, one apt-get update for all that is missing.
apt_missing=()
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  apt_missing+=(chromium chromium-driver)
fi
# PostgreSQL server binaries for the collector's throwaway test cluster (scripts/pg.sh).
# No service is used, so the package is told not to create (and start) its own cluster.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  apt_missing+=(postgresql)
fi
# The TLS test cluster's certificates (scripts/pg.sh start DIR tls).
command -v openssl >/dev/null || apt_missing+=(openssl)
# The release files and their test (scripts/release.sh, tests/release/): musl's gcc for the
# C inside the collector (SQLite, ring), podman for the image, systemd-analyze for the unit.
command -v musl-gcc >/dev/null || apt_missing+=(musl-tools)
command -v podman >/dev/null || apt_missing+=(podman)
command -v systemd-analyze >/dev/null || apt_missing+=(systemd)
command -v file >/dev/null || apt_missing+=(file)
# promtool (Debian's prometheus package) parses the collector's /metrics in its test.
command -v promtool >/dev/null || apt_missing+=(prometheus)
if [ ${#apt_missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${apt_missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  if [[ " ${apt_missing[*]} " == *" postgresql "* ]]; then
    $sudo_cmd mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" | $sudo_cmd tee /etc/postgresql-common/createcluster.d/mau-beacon.conf >/dev/null
  fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.setup-lock 2>/dev/null)" != "$lock_sum" ]; then
  say "installing npm dev dependencies"
  npm ci --no-audit --no-fund
  echo "$lock_sum" > node_modules/.setup-lock
fi
say "ready"
