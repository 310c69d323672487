#!/usr/bin/env bash
# Makes the release files in release/:
#   mau-collector-<version>-x86_64-unknown-linux-musl.tar.gz  the collector, static and stripped
#     (cargo profile `dist`), with the READMEs, CHANGELOG.md, the licences and the systemd unit,
#     in one top folder of the same name;
#   mau-beacon-<version>.tgz  the npm package (`npm pack`), from the SDK scripts/build.sh built
#     (built here if missing or older than its sources);
#   SHA256SUMS  of both (`cd release && sha256sum -c SHA256SUMS`).
# --image also builds the container image mau-collector:<version> from deploy/Containerfile
# (podman, else buildah, else docker; nothing is pulled: FROM scratch).
# The version is the workspace's (Cargo.toml); package.json must agree. Needs what
# scripts/setup.sh installs (the musl target and musl-gcc).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
say() { printf '\033[1m[release]\033[0m %s\n' "$*"; }
die() { printf '[release] error: %s\n' "$*" >&2; exit 1; }

image=no
for arg in "$@"; do
  case "$arg" in
    --image) image=yes ;;
    *) die "unknown argument: $arg (usage: scripts/release.sh [--image])" ;;
  esac
done

target=x86_64-unknown-linux-musl
# One source of truth: the collector's version (the workspace's), its repository and
# licence, and where cargo puts binaries (CARGO_TARGET_DIR or the workspace's target/).
meta=$(cargo metadata --no-deps --format-version 1 --locked)
{ read -r version; read -r repository; read -r license; read -r target_dir; } < <(node -e '
  const m = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const p = m.packages.find((p) => p.name === "mau-collector");
  console.log([p.version, p.repository, p.license, m.target_directory].join("\n"));
' <<<"$meta")
npm_version=$(node -p 'require("./package.json").version')
[ "$npm_version" = "$version" ] || die "package.json has version $npm_version, the workspace $version"

name="mau-collector-$version-$target"
mkdir -p release
rm -f release/mau-collector-*.tar.gz release/mau-beacon-*.tgz release/SHA256SUMS

say "building the collector $version for $target (cargo profile dist)"
command -v musl-gcc >/dev/null || die "musl-gcc missing (Debian: musl-tools; scripts/setup.sh installs it)"
# SQLite (rusqlite's bundled) and ring are C: compile them with musl's gcc wrapper. Paths in
# panic messages are made relative so the binary names no build machine's folders (the
# last matching prefix wins: the target folder may lie inside the workspace).
build_start=$(date +%s)
CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-musl-gcc}" \
  CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="--remap-path-prefix=$HOME/.cargo/registry/src=crates --remap-path-prefix=$PWD=mau-beacon --remap-path-prefix=$target_dir=target" \
  cargo build -p mau-collector --bin mau-collector --profile dist --target "$target" --locked --quiet
say "collector built in $(( $(date +%s) - build_start )) s"
bin="$target_dir/$target/dist/mau-collector"
[ -x "$bin" ] || die "no binary at $bin"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
dir="$stage/$name"
mkdir -p "$dir/collector" "$dir/deploy"
install -m 755 "$bin" "$dir/mau-collector"
install -m 644 README.md LICENSE-MIT LICENSE-APACHE "$dir/"
[ ! -f CHANGELOG.md ] || install -m 644 CHANGELOG.md "$dir/"
install -m 644 collector/README.md "$dir/collector/"
install -m 644 deploy/mau-collector.service "$dir/deploy/"
# Same bytes for the same inputs: sorted names, root owner, the last commit's time.
mtime=$(git log -1 --format=%ct 2>/dev/null || date +%s)
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" -C "$stage" -cf - "$name" \
  | gzip -9n > "release/$name.tar.gz"

sdk_files=(pkg/web/mau_beacon.js pkg/web/mau_beacon_bg.wasm dist/mau-beacon.global.js)
stale=""
for f in "${sdk_files[@]}"; do
  if [ ! -f "$f" ]; then stale="$f missing"; break; fi
done
if [ -z "$stale" ]; then
  newer=$(find crate/src crate/Cargo.toml js Cargo.lock scripts/build.sh -type f -newer pkg/web/mau_beacon_bg.wasm | head -1)
  [ -z "$newer" ] || stale="$newer is newer than the build"
fi
if [ -n "$stale" ]; then
  say "building the SDK ($stale)"
  bash scripts/build.sh
else
  say "reusing the SDK build in pkg/ and dist/"
fi
say "packing the npm package"
tgz=$(npm pack --silent --pack-destination release)
[ "$tgz" = "mau-beacon-$version.tgz" ] || die "npm pack made $tgz, expected mau-beacon-$version.tgz"

(cd release && sha256sum "$name.tar.gz" "$tgz" > SHA256SUMS && sha256sum --quiet -c SHA256SUMS)
say "release/ holds:"
(cd release && for f in "$name.tar.gz" "$tgz" SHA256SUMS; do printf '  %s %s bytes\n' "$f" "$(stat -c %s "$f")"; done)
printf 'binary size: %s bytes\n' "$(stat -c %s "$bin")"

if [ "$image" = yes ]; then
  if command -v podman >/dev/null; then builder=(podman build)
  elif command -v buildah >/dev/null; then builder=(buildah bud)
  elif command -v docker >/dev/null; then builder=(docker build)
  else die "--image needs podman, buildah or docker"
  fi
  ctx="$stage/image"
  mkdir -p "$ctx/data"
  install -m 755 "$bin" "$ctx/mau-collector"
  say "building the image mau-collector:$version (${builder[*]})"
  previous=$("${builder[0]}" images -q "mau-collector:$version" 2>/dev/null || true)
  "${builder[@]}" --quiet -f deploy/Containerfile -t "mau-collector:$version" \
    --build-arg "VERSION=$version" --build-arg "SOURCE=$repository" --build-arg "LICENSES=$license" \
    "$ctx" >/dev/null
  # A rebuild leaves the previous image untagged: drop it.
  if [ -n "$previous" ] && [ "$previous" != "$("${builder[0]}" images -q "mau-collector:$version")" ]; then
    "${builder[0]}" rmi "$previous" >/dev/null 2>&1 || true
  fi
  say "image mau-collector:$version built"
fi
