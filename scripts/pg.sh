#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks: loopback only, a free port,
# the socket and data inside DIR, fsync left on (durability is what the tests check).
#   pg.sh start DIR [tls]  initdb on first use, start, print the admin URL on stdout; with
#                          tls (on first use), also ssl=on with certificates made in DIR/tls:
#                          ca.crt (signed the server's), other-ca.crt (did not), and
#                          server.crt for the name localhost only
#   pg.sh stop DIR [MODE]  stop (MODE: fast by default, or immediate to simulate a crash)
#   pg.sh url DIR          print the admin URL again
#   pg.sh bin              print the folder of PostgreSQL's server binaries
# DIR must exist (e.g. from mktemp -d) and is kept until the caller removes it.
# initdb refuses to run as root, so as root the cluster runs as the `postgres` user.
set -euo pipefail
usage="usage: pg.sh start|stop|url DIR, or pg.sh bin"
cmd=${1:?$usage}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$bin" ] || bin=$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
case "$cmd" in
  bin) [ -x "$bin/initdb" ] || { echo "PostgreSQL is missing: run bash scripts/setup.sh first" >&2; exit 1; }; echo "$bin"; exit 0 ;;
esac
dir=$(cd "${2:?$usage}" && pwd)
as_owner() {
  # (from inside DIR, which the postgres user can enter, not the caller's folder)
  if [ "$(id -u)" -eq 0 ]; then (cd "$dir" && runuser -u postgres -- "$@"); else "$@"; fi
}
# Test certificates (P-256, valid 30 days) in DIR/tls, made by the cluster's owner (the
# server reads only a key file it owns).
make_certs() {
  set -e
  mkdir -m 700 "$1/tls" && cd "$1/tls"
  key="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
  openssl req -x509 $key -keyout ca.key -out ca.crt -days 30 -subj "/CN=mau test CA"
  openssl req -x509 $key -keyout other-ca.key -out other-ca.crt -days 30 -subj "/CN=mau other CA"
  openssl req -new $key -keyout server.key -out server.csr -subj "/CN=localhost"
  printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
    -extfile server.ext -out server.crt
  chmod 644 ca.crt other-ca.crt
  chmod 711 .
}
url() { echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/postgres"; }

case "$cmd" in
  start)
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      if [ "$(id -u)" -eq 0 ]; then
        # Debian's package makes this user; a machine without it gets one.
        id -u postgres >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /usr/sbin/nologin postgres
        chown postgres "$dir"
      fi
      as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
      # A free loopback port, kept for restarts so clients' URLs stay valid.
      free_port >"$dir/port"
      [ "${3:-}" != tls ] || as_owner bash -c "$(declare -f make_certs); make_certs '$dir'" >"$dir/certs.log" 2>&1 \
        || { cat "$dir/certs.log" >&2; exit 1; }
    fi
    ssl=""
    [ ! -f "$dir/tls/server.crt" ] || ssl="-c ssl=on -c ssl_cert_file=$dir/tls/server.crt -c ssl_key_file=$dir/tls/server.key"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
      "-p $(cat "$dir/port") -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 $ssl" \
      >/dev/null || { tail -20 "$dir/server.log" >&2; exit 1; }
    url
    ;;
  stop)
    as_owner "$bin/pg_ctl" -D "$dir/data" -w -t 60 stop -m "${3:-fast}" >/dev/null
    ;;
  url) url ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
