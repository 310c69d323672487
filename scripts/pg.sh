#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks: loopback only, a free port,
# the socket and data inside DIR, fsync left on (durability is what the tests check).
#   pg.sh start DIR        initdb on first use, start, print the admin URL on stdout
#   pg.sh stop DIR [MODE]  stop (MODE: fast by default, or immediate to simulate a crash)
#   pg.sh url DIR          print the admin URL again
# DIR must exist (e.g. from mktemp -d) and is kept until the caller removes it.
# initdb refuses to run as root, so as root the cluster runs as the `postgres` user.
set -euo pipefail
cmd=${1:?usage: pg.sh start|stop|url DIR}
dir=$(cd "${2:?usage: pg.sh start|stop|url DIR}" && pwd)
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$bin" ] || bin=$(dirname "$(command -v pg_ctl)")
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
url() { echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/postgres"; }

case "$cmd" in
  start)
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      [ "$(id -u)" -ne 0 ] || chown postgres "$dir"
      as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
      # A free loopback port, kept for restarts so clients' URLs stay valid.
      node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})' >"$dir/port"
    fi
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
      "-p $(cat "$dir/port") -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" \
      >/dev/null || { tail -20 "$dir/server.log" >&2; exit 1; }
    url
    ;;
  stop)
    as_owner "$bin/pg_ctl" -D "$dir/data" -w -t 60 stop -m "${3:-fast}" >/dev/null
    ;;
  url) url ;;
  *) echo "usage: pg.sh start|stop|url DIR" >&2; exit 2 ;;
esac
