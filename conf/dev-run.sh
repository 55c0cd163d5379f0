#!/bin/sh
# SPDX-License-Identifier: ISC
#
# `make run`: the development server on http://127.0.0.1:$IMMIDB_PORT/.
#   conf/dev-run.sh BUILD_DIR
# On a new data folder ($IMMIDB_DATA, default ./var) it runs `immidb-admin
# init`, creates the org "demo" and its admin admin@demo.test (the password
# is printed once). Then it starts immidb-fcgi and nginx (configuration
# generated from nginx.conf.example by conf/nginx-dev.sh) until Ctrl-C or
# SIGTERM, and stops both. The configuration it uses is written to
# $IMMIDB_DATA/immidb.conf, so `build/immidb-admin --data $IMMIDB_DATA ...`
# works against the running demo. Plain HTTP on loopback only.
set -eu

build=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
port=${IMMIDB_PORT:-8080}
data=${IMMIDB_DATA:-$top/var}
case $data in /*) ;; *) data=$(pwd)/$data ;; esac
case $port in ''|*[!0-9]*) echo "IMMIDB_PORT must be a number" >&2; exit 2 ;; esac

# The socket lives outside the data folder (which stays 0700), in a folder
# nginx's workers may traverse.
run=$(mktemp -d /tmp/immidb-run.XXXXXX)
chmod 0711 "$run"
user_opt=""
group=""
if [ "$(id -u)" -eq 0 ]; then
	user_opt="nobody nogroup" # nginx's workers must not run as root
	group=nogroup
fi

mkdir -p "$data"
conf=$data/immidb.conf
cat > "$conf.tmp" <<CONF
# Written by conf/dev-run.sh (make run); rewritten at each start.
data_dir = $data
listen = unix:$run/fcgi.sock
listen_mode = 0660
listen_group = $group
workers = 2
log_origin = dev.immidb.localhost
sysadmin_ip_allowlist = 127.0.0.1, ::1
public_url = http://127.0.0.1:$port
smtp_url = smtp://127.0.0.1:2525
CONF
chmod 0600 "$conf.tmp"
mv "$conf.tmp" "$conf"

admin() { "$build/immidb-admin" --config "$conf" "$@"; }

if [ ! -f "$data/registry.db" ]; then
	admin init
	admin org create --slug demo --name "Demo Immigration LLP" >/dev/null
	echo "== demo org 'demo' created; its admin (shown once):"
	echo "   email: admin@demo.test"
	admin user add --org demo --email admin@demo.test --name "Demo Admin" --role admin | sed -n 's/^password: /   password: /p'
	admin demo-data --org demo
fi

"$top/conf/nginx-dev.sh" --example "$top/nginx.conf.example" --out "$run/nginx.conf" --port "$port" \
	--socket "$run/fcgi.sock" --web "$top/web" --prefix "$run/nginx" ${user_opt:+--user "$user_opt"}

fcgi=""
ngx=""
stop() {
	trap - INT TERM EXIT
	[ -n "$ngx" ] && kill -QUIT "$ngx" 2>/dev/null || true
	[ -n "$fcgi" ] && kill -TERM "$fcgi" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$run"
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

"$build/immidb-fcgi" --config "$conf" &
fcgi=$!
nginx -p "$run/nginx" -c "$run/nginx.conf" -e "$run/nginx/logs/error.log" -g 'daemon off;' &
ngx=$!
echo "== ImmiDB on http://127.0.0.1:$port/ (data: $data) — Ctrl-C stops it"

# Until one of them ends, or make itself is gone (SIGTERM to make).
parent=$PPID
while kill -0 "$fcgi" 2>/dev/null && kill -0 "$ngx" 2>/dev/null && kill -0 "$parent" 2>/dev/null; do
	sleep 1
done
