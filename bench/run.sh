#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
#
# Benchmark driver: ImmiDB's real stack (nginx + immidb-fcgi pool) against a
# do-nothing libfcgi responder (immidb-bench-baseline) behind the very same
# nginx configuration, so that the numbers show what ImmiDB itself costs.
#
#   bench/run.sh [BUILD_DIR]            (default: build)
#
# Environment:
#   BENCH_SECONDS      length of each measured wrk run (default 10)
#   BENCH_ROUNDS       measured rounds; each round runs every endpoint once,
#                      the baseline first (default 2: baseline, health,
#                      baseline, health)
#   BENCH_WARMUP       seconds of unmeasured load per endpoint first (default 2)
#   BENCH_THREADS      wrk threads (default 2)
#   BENCH_CONNECTIONS  wrk connections (default 32)
#   BENCH_KEEP=1       keep the temporary folder (configs, logs, raw wrk output)
#
# Everything runs in a fresh temporary folder with its own data, socket and
# nginx on a free loopback port, and is torn down on exit. The script reports;
# it is not a test: a missed target still exits 0. It exits 1 only if the
# stack cannot be set up or measured.
#
# To benchmark another endpoint, add a bench_endpoint line to bench_round
# below; extra arguments go to wrk (e.g. -H 'Cookie: ...' or -s script.lua).

set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_ARG=${1:-$ROOT/build}
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-2}
WARMUP=${BENCH_WARMUP:-2}
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-32}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

for v in SECONDS_PER_RUN ROUNDS WARMUP THREADS CONNECTIONS; do
    [[ ${!v} =~ ^[1-9][0-9]{0,4}$ ]] || die "$v must be a positive integer (got '${!v}')"
done
[ -d "$BUILD_ARG" ] || die "no build folder $BUILD_ARG (run 'make build' first)"
BUILD=$(cd "$BUILD_ARG" && pwd)
for b in immidb-fcgi immidb-admin immidb-bench-baseline; do
    [ -x "$BUILD/$b" ] || die "$BUILD/$b is missing (run 'make build' first)"
done
for t in nginx wrk curl python3; do
    command -v "$t" >/dev/null || die "'$t' is not installed (see conf/debian-packages)"
done

DIR=$(mktemp -d "${TMPDIR:-/tmp}/immidb-bench.XXXXXX")
# nginx's workers (nobody when we are root) must reach the sockets in here;
# 0711 lets them through without letting them list anything.
chmod 0711 "$DIR"

FCGI_PID='' BASELINE_PID='' NGINX_PID='' WRK_PID=''

# Stop one process we started: SIGTERM, up to 10 s, then SIGKILL.
stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "pid $pid did not stop on SIGTERM; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$WRK_PID"
    stop_pid "$NGINX_PID"
    stop_pid "$FCGI_PID"
    stop_pid "$BASELINE_PID"
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        say "kept $DIR"
    else
        rm -rf "$DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Print the end of a log after a failure, to say why.
show_log() {
    local f=$1
    [ -s "$f" ] || return 0
    say "--- last lines of $f:"
    tail -n 20 "$f" >&2
}

PORT=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()')
BASE_URL="http://127.0.0.1:$PORT"

if [ "$(id -u)" -eq 0 ]; then
    NGINX_USER="nobody nogroup"
    LISTEN_GROUP="listen_group = nogroup"
else
    NGINX_USER=
    LISTEN_GROUP=
fi

# ---- ImmiDB: configuration, data, one org, the FastCGI pool ----------------

CONF=$DIR/immidb.conf
cat >"$CONF" <<EOF
# Written by bench/run.sh
data_dir = $DIR/data
master_key_file = $DIR/data/master.key
listen = unix:$DIR/fcgi.sock
listen_mode = 0660
$LISTEN_GROUP
workers = 2
log_origin = bench.localhost
public_url = $BASE_URL
EOF
chmod 0600 "$CONF"

"$BUILD/immidb-admin" --config "$CONF" init >"$DIR/admin.log" 2>&1 ||
    { show_log "$DIR/admin.log"; die "immidb-admin init failed"; }
"$BUILD/immidb-admin" --config "$CONF" org create --slug bench --name "Bench Org" \
    >>"$DIR/admin.log" 2>&1 ||
    { show_log "$DIR/admin.log"; die "immidb-admin org create failed"; }

"$BUILD/immidb-fcgi" --config "$CONF" >"$DIR/fcgi.log" 2>&1 &
FCGI_PID=$!

"$BUILD/immidb-bench-baseline" "$DIR/baseline.sock" 2 >"$DIR/baseline.log" 2>&1 &
BASELINE_PID=$!

# ---- nginx, generated from nginx.conf.example ------------------------------

"$ROOT/conf/nginx-dev.sh" --example "$ROOT/nginx.conf.example" --out "$DIR/nginx.conf" \
    --port "$PORT" --socket "$DIR/fcgi.sock" --web "$ROOT/web" --prefix "$DIR/nginx" \
    ${NGINX_USER:+--user "$NGINX_USER"} --baseline-socket "$DIR/baseline.sock" --check ||
    die "could not generate the nginx configuration"

nginx -p "$DIR/nginx" -c "$DIR/nginx.conf" -e "$DIR/nginx/logs/error.log" \
    -g 'daemon off;' >"$DIR/nginx.out" 2>&1 &
NGINX_PID=$!

# Wait until URL answers 200, for up to 20 s; stop early if a server died.
wait_200() {
    local url=$1 code i
    for ((i = 0; i < 100; i++)); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
        [ "$code" = 200 ] && return 0
        local p
        for p in "$NGINX_PID" "$FCGI_PID" "$BASELINE_PID"; do
            kill -0 "$p" 2>/dev/null || { say "a server exited early (pid $p)"; return 1; }
        done
        sleep 0.2
    done
    say "$url still answers ${code:-nothing} after 20 s"
    return 1
}
for url in "$BASE_URL/api/v1/health" "$BASE_URL/baseline/health"; do
    wait_200 "$url" || {
        show_log "$DIR/fcgi.log"
        show_log "$DIR/baseline.log"
        show_log "$DIR/nginx.out"
        show_log "$DIR/nginx/logs/error.log"
        die "the stack did not come up"
    }
done
say "health answers: $(curl -s --max-time 2 "$BASE_URL/api/v1/health")"

# ---- an authenticated session ---------------------------------------------
# One admin, logged in once; its cookie drives GET .../session. A wrk script
# logs the same user in over and over for the login figures.

BENCH_EMAIL=bench@bench.test
BENCH_PASSWORD='bench password 1234'
printf '%s\n' "$BENCH_PASSWORD" | "$BUILD/immidb-admin" --config "$CONF" user add --org bench \
    --email "$BENCH_EMAIL" --name "Bench Admin" --role admin --password-stdin >>"$DIR/admin.log" 2>&1 ||
    { show_log "$DIR/admin.log"; die "immidb-admin user add failed"; }
LOGIN_BODY="{\"email\":\"$BENCH_EMAIL\",\"password\":\"$BENCH_PASSWORD\"}"
SESSION_URL="$BASE_URL/api/v1/orgs/bench/session"
TOKEN=$(curl -s -i --max-time 5 -X POST -H 'Content-Type: application/json' -d "$LOGIN_BODY" "$SESSION_URL" |
    tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: immidb_session=\([^;]*\);.*/\1/p')
[ -n "$TOKEN" ] || die "could not log in"
COOKIE="Cookie: immidb_session=$TOKEN"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$COOKIE" "$SESSION_URL")" = 200 ] || die "the session does not answer 200"
cat >"$DIR/login.lua" <<LUA
wrk.method = "POST"
wrk.body = '$LOGIN_BODY'
wrk.headers["Content-Type"] = "application/json"
LUA

# ---- measuring -------------------------------------------------------------

RESULTS=$DIR/results
: >"$RESULTS"
RUN=0
WARMING=0

# Convert a wrk duration (e.g. 812.00us, 1.25ms, 2.01s, 1.00m) to ms.
to_ms() {
    awk -v t="$1" 'BEGIN {
        if (!match(t, /[a-z]+$/)) { print "nan"; exit }
        v = substr(t, 1, RSTART - 1); u = substr(t, RSTART)
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : \
            (u == "m") ? 60000 : (u == "h") ? 3600000 : -1
        if (f < 0) print "nan"; else printf "%.3f\n", v * f
    }'
}

# bench_endpoint NAME URL [extra wrk arguments...]
# One measured wrk run; appends "NAME rps p50_ms p99_ms errors" to $RESULTS.
# errors = non-2xx/3xx answers + socket errors (a fast error page is no win).
bench_endpoint() {
    local name=$1 url=$2
    shift 2
    local out="$DIR/wrk-$name-$RUN.txt" line rps p50 p99 errs
    RUN=$((RUN + 1))
    # In the background, so that a SIGTERM/SIGINT to this script is handled
    # at once (bash runs traps only between foreground commands).
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency "$@" "$url" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || { cat "$out" >&2; die "wrk failed for $name"; }
    WRK_PID=''
    line=$(awk '
        /^Requests\/sec:/ { rps = $2 }
        /^[ \t]*50(\.0+)?%/ { p50 = $2 }
        /^[ \t]*99(\.0+)?%/ { p99 = $2 }
        /Non-2xx or 3xx responses:/ { errs += $NF }
        /Socket errors:/ { for (i = 1; i <= NF; i++) { v = $i; sub(/,$/, "", v); if (v ~ /^[0-9]+$/) errs += v } }
        END { if (rps == "" || p50 == "" || p99 == "") exit 1; print rps, p50, p99, errs + 0 }
    ' "$out") || { cat "$out" >&2; die "could not read wrk output for $name"; }
    read -r rps p50 p99 errs <<<"$line"
    p50=$(to_ms "$p50")
    p99=$(to_ms "$p99")
    local note=
    [ "$errs" -eq 0 ] || note="  ($errs errors)"
    if [ "$WARMING" = 1 ]; then
        say "$(printf 'warm-up %-10s %10.1f req/s%s' "$name" "$rps" "$note")"
        return 0
    fi
    printf '%s %s %s %s %s\n' "$name" "$rps" "$p50" "$p99" "$errs" >>"$RESULTS"
    say "$(printf '%-10s %10.1f req/s  p50 %7.3f ms  p99 %7.3f ms%s' "$name" "$rps" "$p50" "$p99" "$note")"
}

# One round: every endpoint once, the baseline first. New endpoints go here
# (their ratios are computed against "baseline").
bench_round() {
    bench_endpoint baseline "$BASE_URL/baseline/health"
    bench_endpoint health "$BASE_URL/api/v1/health"
    bench_endpoint session "$SESSION_URL" -H "$COOKIE"
}

# Logins in a burst, one at a time (fewer than the workers), while 32
# connections read the session: logins/s, and the p99 of the other requests.
login_burst() {
    local out="$DIR/wrk-logins.txt"
    wrk -t1 -c1 -d"${SECONDS_PER_RUN}s" -s "$DIR/login.lua" "$SESSION_URL" >"$out" 2>&1 &
    local lpid=$!
    bench_endpoint session_during_logins "$SESSION_URL" -H "$COOKIE"
    wait "$lpid" || { cat "$out" >&2; die "wrk failed for the logins"; }
    LOGINS_PER_S=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    LOGIN_ERRORS=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    say "logins: ${LOGINS_PER_S:-?} per second, one at a time (${LOGIN_ERRORS:-0} non-2xx)"
}

say "warming up (${WARMUP}s per endpoint, not counted)"
SAVED_SECONDS=$SECONDS_PER_RUN
SECONDS_PER_RUN=$WARMUP WARMING=1
bench_round
SECONDS_PER_RUN=$SAVED_SECONDS WARMING=0

say "measuring: $ROUNDS rounds of wrk -t$THREADS -c$CONNECTIONS -d${SECONDS_PER_RUN}s --latency, alternating endpoints"
for ((r = 1; r <= ROUNDS; r++)); do
    bench_round
done

login_burst

# ---- report ----------------------------------------------------------------
#
# Each endpoint is reported by its best run: highest req/s, lowest p50 and
# lowest p99, each over its rounds. Baseline and ImmiDB run alternately under
# the same conditions, and the best of several runs is the figure least
# disturbed by whatever else the machine did (wrk itself shares the CPUs),
# so the ratios compare the two stacks rather than the noise. The raw runs
# are printed above.

echo
printf 'machine: %s CPUs; wrk -t%s -c%s -d%ss --latency; best of %s rounds\n' \
    "$(nproc)" "$THREADS" "$CONNECTIONS" "$SECONDS_PER_RUN" "$ROUNDS"
awk '
    !($1 in rps) { order[++n] = $1; rps[$1] = $2; p50[$1] = $3; p99[$1] = $4; errs[$1] = $5; next }
    {
        if ($2 + 0 > rps[$1] + 0) rps[$1] = $2
        if ($3 + 0 < p50[$1] + 0) p50[$1] = $3
        if ($4 + 0 < p99[$1] + 0) p99[$1] = $4
        errs[$1] += $5
    }
    END {
        printf "%-10s %10s %8s %8s %9s %9s\n", "name", "req/s", "p50_ms", "p99_ms", "ratio_rps", "ratio_p99"
        brps = rps["baseline"]; bp99 = p99["baseline"]
        for (i = 1; i <= n; i++) {
            k = order[i]
            rr = (brps > 0) ? sprintf("%.3f", rps[k] / brps) : "-"
            rp = (bp99 > 0) ? sprintf("%.3f", p99[k] / bp99) : "-"
            printf "%-10s %10.1f %8.3f %8.3f %9s %9s%s\n", k, rps[k], p50[k], p99[k], rr, rp, \
                (errs[k] > 0) ? "   (" errs[k] " errors)" : ""
        }
        print ""
        ok = (errs["health"] == 0)
        v = (ok && rps["health"] >= 0.9 * brps) ? "PASS" : "MISS"
        printf "target health rps >= 0.9 x baseline: %s\n", v
        v = (ok && p99["health"] <= 2 * bp99) ? "PASS" : "MISS"
        printf "target health p99 <= 2 x baseline p99: %s\n", v
        if (!ok) print "(health answered errors, so its figures do not count)"
        okS = (errs["session"] == 0)
        v = (okS && rps["session"] >= 0.8 * rps["health"]) ? "PASS" : "MISS"
        printf "target session rps >= 0.8 x health (%.3f): %s\n", (rps["health"] > 0) ? rps["session"] / rps["health"] : 0, v
        v = (errs["session_during_logins"] == 0 && p99["session_during_logins"] <= 50) ? "PASS" : "MISS"
        printf "target p99 of session reads during a login burst <= 50 ms (%.3f ms): %s\n", p99["session_during_logins"], v
    }
' "$RESULTS"
printf 'logins/s (one at a time, Argon2id opslimit=2 memlimit=64 MiB, libsodium INTERACTIVE): %s\n' "${LOGINS_PER_S:-?}"
