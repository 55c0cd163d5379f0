#!/bin/sh
# SPDX-License-Identifier: ISC
#
# Generate the development / test nginx configuration from nginx.conf.example,
# so that the production example is the file the tests and `make run` exercise.
#
#   conf/nginx-dev.sh --example FILE --out FILE --port N --socket PATH \
#                     --web DIR --prefix DIR [--user USER] \
#                     [--baseline-socket PATH] [--check]
#
# What changes against the example:
#   - every line ending in "# prod-only" is dropped (TLS, the port-80 redirect,
#     the TLS catch-all server, HSTS, "user www-data;", the IPv6 listen);
#   - "listen 443 ssl http2;"  -> "listen 127.0.0.1:PORT;" (plain HTTP, loopback);
#   - /run/immidb/fcgi.sock    -> SOCKET;  /usr/share/immidb/web -> WEB;
#     /var/log/nginx/          -> PREFIX/logs/;  /run/nginx.pid -> PREFIX/nginx.pid;
#   - worker_processes 2; temporary paths under PREFIX/tmp/;
#   - "user USER;" when --user is given (needed when nginx runs as root, e.g.
#     --user "nobody nogroup": the workers must not run as root);
#   - the sysadmin location also allows 127.0.0.1 and ::1;
#   - with --baseline-socket, "location = /baseline/health" passes to that
#     socket with the settings of /api/, copied from it (bench/run.sh
#     compares ImmiDB against it).
# The file never says "daemon off;": callers pass -g 'daemon off;' if they want it.
# PREFIX/logs and PREFIX/tmp are created (PREFIX/tmp owned by USER when run as
# root with --user). --check runs "nginx -t" on the result.
#
# Exit status: 0 ok, 1 failure, 2 usage error.

set -eu

prog=conf/nginx-dev.sh

usage() {
    echo "usage: $prog --example FILE --out FILE --port N --socket PATH --web DIR --prefix DIR [--user USER] [--baseline-socket PATH] [--check]" >&2
    exit 2
}

die() {
    echo "$prog: $*" >&2
    exit 1
}

bad_arg() {
    echo "$prog: $*" >&2
    exit 2
}

need_arg() {
    [ "$#" -ge 2 ] || { echo "$prog: $1 needs a value" >&2; usage; }
}

example='' out='' port='' socket='' web='' prefix='' user='' baseline='' check=0
while [ "$#" -gt 0 ]; do
    case $1 in
    --example) need_arg "$@"; example=$2; shift 2 ;;
    --out) need_arg "$@"; out=$2; shift 2 ;;
    --port) need_arg "$@"; port=$2; shift 2 ;;
    --socket) need_arg "$@"; socket=$2; shift 2 ;;
    --web) need_arg "$@"; web=$2; shift 2 ;;
    --prefix) need_arg "$@"; prefix=$2; shift 2 ;;
    --user) need_arg "$@"; user=$2; shift 2 ;;
    --baseline-socket) need_arg "$@"; baseline=$2; shift 2 ;;
    --check) check=1; shift ;;
    -h | --help) usage ;;
    *) echo "$prog: unknown argument: $1" >&2; usage ;;
    esac
done

for v in example out port socket web prefix; do
    eval "val=\$$v"
    [ -n "$val" ] || { echo "$prog: --$v is required" >&2; usage; }
done

case $port in
'' | *[!0-9]*) echo "$prog: --port must be a number" >&2; usage ;;
esac
# Leading zeros would be read as octal by some shells' arithmetic.
case $port in 0*) echo "$prog: --port must be 1..65535" >&2; usage ;; esac
if [ "${#port}" -gt 5 ] || [ "$port" -gt 65535 ]; then
    echo "$prog: --port must be 1..65535" >&2
    usage
fi

[ -r "$example" ] || die "cannot read $example"

# Absolute paths, free of anything nginx would read as syntax (or a variable).
abspath() {
    case $1 in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$(pwd)" "$1" ;;
    esac
}
# Only plain characters: nothing nginx reads as syntax or a variable, and no
# ":" (libfcgi and nginx's "unix:" URLs would read it as a port separator).
check_path() {
    case $2 in
    *[!A-Za-z0-9/._@+,-]*) bad_arg "$1 may only contain A-Z a-z 0-9 / . _ @ + , -: $2" ;;
    esac
}
socket=$(abspath "$socket")
web=$(abspath "$web")
prefix=$(abspath "$prefix")
prefix=${prefix%/}
[ -n "$prefix" ] || bad_arg "--prefix must not be /"
check_path --socket "$socket"
check_path --web "$web"
check_path --prefix "$prefix"
if [ -n "$baseline" ]; then
    baseline=$(abspath "$baseline")
    check_path --baseline-socket "$baseline"
fi
if [ -n "$user" ]; then
    printf '%s\n' "$user" | grep -Eqx '[A-Za-z0-9_][A-Za-z0-9_.-]*( [A-Za-z0-9_][A-Za-z0-9_.-]*)?' ||
        bad_arg "--user must be 'USER' or 'USER GROUP'"
fi

mkdir -p "$prefix/logs" "$prefix/tmp" || die "cannot create $prefix/logs and $prefix/tmp"
if [ -n "$user" ] && [ "$(id -u)" -eq 0 ]; then
    # The workers write request bodies and buffered answers there.
    chown -R "$(printf '%s' "$user" | tr ' ' ':')" "$prefix/tmp" ||
        die "cannot chown $prefix/tmp to $user"
fi

tmp_out="$out.tmp.$$"
trap 'rm -f "$tmp_out"' EXIT

# awk does the work with literal (not regex) replacement, so no path needs
# escaping. Values come in through the environment (awk -v would interpret
# backslashes).
IDB_PORT=$port IDB_SOCKET=$socket IDB_WEB=$web IDB_PREFIX=$prefix \
IDB_USER=$user IDB_BASELINE=$baseline IDB_EXAMPLE=$example \
awk '
function repl(s, from, to,    out, i) {
    out = ""
    while ((i = index(s, from)) > 0) {
        out = out substr(s, 1, i - 1) to
        s = substr(s, i + length(from))
    }
    return out s
}
function indent_of(s) {
    match(s, /^[ \t]*/)
    return substr(s, 1, RLENGTH)
}
BEGIN {
    port = ENVIRON["IDB_PORT"]; sock = ENVIRON["IDB_SOCKET"]
    web = ENVIRON["IDB_WEB"]; prefix = ENVIRON["IDB_PREFIX"]
    user = ENVIRON["IDB_USER"]; baseline = ENVIRON["IDB_BASELINE"]
    # First pass (reading the example once more): the directives of the
    # /api/ location itself (not of the location nested in it), except
    # fastcgi_pass, so that the baseline location runs with exactly the
    # settings of /api/.
    nparams = 0; depth = 0
    while ((getline line < ENVIRON["IDB_EXAMPLE"]) > 0) {
        if (line ~ /^[ \t]*#/ || line ~ /#[ \t]*prod-only[ \t]*$/)
            continue
        if (depth == 0) {
            if (line ~ /^[ \t]*location \/api\/ \{/)
                depth = 1
            continue
        }
        t = line
        opens = gsub(/\{/, "{", t)
        closes = gsub(/\}/, "}", t)
        if (depth == 1 && opens == 0 && closes == 0 && line ~ /[^ \t]/ &&
            line !~ /^[ \t]*fastcgi_pass[ \t]/)
            params[++nparams] = line
        depth += opens - closes
        if (depth == 0)
            break
    }
    close(ENVIRON["IDB_EXAMPLE"])
    if (nparams == 0) { print "no /api/ location in the example" > "/dev/stderr"; failed = 1; exit 1 }
    print "# Generated by conf/nginx-dev.sh from nginx.conf.example; do not edit."
    print "# Development / test configuration: plain HTTP on 127.0.0.1:" port "."
    if (user != "")
        print "user " user ";"
    seen_listen = seen_sock = seen_web = seen_deny = seen_http = seen_wp = 0
}
/#[ \t]*prod-only[ \t]*$/ { next }
# Comment lines pass as they are (they quote the production strings).
/^[ \t]*#/ { print; next }
{
    line = $0
    if (line ~ /^[ \t]*worker_processes[ \t]/) { line = indent_of(line) "worker_processes 2;"; seen_wp++ }
    if (index(line, "listen 443 ssl http2;")) { line = repl(line, "listen 443 ssl http2;", "listen 127.0.0.1:" port ";"); seen_listen++ }
    if (index(line, "/run/immidb/fcgi.sock")) { line = repl(line, "/run/immidb/fcgi.sock", sock); seen_sock++ }
    if (index(line, "/usr/share/immidb/web")) { line = repl(line, "/usr/share/immidb/web", web); seen_web++ }
    line = repl(line, "/var/log/nginx/", prefix "/logs/")
    line = repl(line, "/run/nginx.pid", prefix "/nginx.pid")
    if (line ~ /^[ \t]*deny all;/) {
        ind = indent_of(line)
        print ind "allow 127.0.0.1;"
        print ind "allow ::1;"
        seen_deny++
    }
    if (baseline != "" && line ~ /^[ \t]*location \/api\/ \{/) {
        ind = indent_of(line)
        print ind "# Benchmark baseline: a minimal libfcgi responder (bench/baseline.c)"
        print ind "# behind the same settings as /api/ (copied from it)."
        print ind "location = /baseline/health {"
        for (i = 1; i <= nparams; i++) {
            p = params[i]
            sub(/^[ \t]*/, "", p)
            print ind "    " p
        }
        print ind "    fastcgi_pass unix:" baseline ";"
        print ind "}"
        print ""
    }
    print line
    if (line ~ /^http[ \t]*\{/) {
        print "    client_body_temp_path " prefix "/tmp/client_body;"
        print "    fastcgi_temp_path " prefix "/tmp/fastcgi;"
        print "    proxy_temp_path " prefix "/tmp/proxy;"
        print "    uwsgi_temp_path " prefix "/tmp/uwsgi;"
        print "    scgi_temp_path " prefix "/tmp/scgi;"
        seen_http++
    }
}
END {
    if (failed) exit 1
    # The example and this script must stay in step: fail loudly if a
    # string this script replaces is no longer there.
    bad = ""
    if (seen_listen != 1) bad = bad " listen-443(" seen_listen ")"
    if (seen_sock < 1) bad = bad " socket(" seen_sock ")"
    if (seen_web != 1) bad = bad " web-root(" seen_web ")"
    if (seen_deny != 1) bad = bad " deny-all(" seen_deny ")"
    if (seen_http != 1) bad = bad " http-block(" seen_http ")"
    if (seen_wp != 1) bad = bad " worker_processes(" seen_wp ")"
    if (bad != "") { print "nginx.conf.example no longer matches this script:" bad > "/dev/stderr"; exit 1 }
}
' "$example" >"$tmp_out" || die "generating from $example failed"

if grep -nE 'prod-only|ssl_|listen[^;]*ssl|Strict-Transport-Security' "$tmp_out" |
    grep -v '^[0-9]*:[[:space:]]*#' >&2; then
    die "production-only settings left in the output (lines above)"
fi

mv "$tmp_out" "$out"
trap - EXIT

if [ "$check" -eq 1 ]; then
    nginx -t -q -p "$prefix" -c "$(abspath "$out")" -e "$prefix/logs/error.log" ||
        die "nginx -t rejected $out"
fi
