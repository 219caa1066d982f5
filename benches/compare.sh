#!/usr/bin/env bash
# Load comparison: Portico against the framework floor (a bare Pingora proxy), nginx and
# haproxy, all in front of the same fixed upstream on loopback. Writes benches/RESULTS.md.
#
#   benches/compare.sh                       # everything, defaults below
#   ROUNDS=5 DURATION=10 benches/compare.sh
#   SCENARIOS="plain routes1000" PROXIES="bare portico" SKIP_BUILD=1 benches/compare.sh
#   PORTICO_BASE=/path/to/older/portico PROXIES="base portico" SCENARIOS="plain edge" benches/compare.sh
#                                            # a change beside the build before it, interleaved
#
# Scenarios: plain, routes1000, idle10k, latency, and every other benches/scenarios/NAME.yaml (a
# Portico config template with `# bench-...` header lines; see benches/scenarios/plain.yaml).
# latency is plain with one connection and one request at a time: the table under the results
# gives the p50 and p99 each proxy adds over direct. h2 (benches/scenarios/h2.yaml) drives
# HTTP/2 with h2load (CONNS connections, H2_STREAMS streams each) instead of wrk.
# Proxies: direct (wrk straight to the upstream: the limit), bare (benches/bare_pingora.rs),
# nginx, haproxy, portico, and base (another Portico binary, PORTICO_BASE, on the same configs:
# the commit before a change, for a before/after in one run). Scenario cache_hit adds
# portico_proxy (its config without the cache) and gives nginx a proxy_cache.
#
# Method: every proxy runs one worker (nginx worker_processes 1, haproxy nbthread 1, Pingora
# threads 1, change with PINGORA_THREADS), pinned to core 0; wrk and the upstream share core 1.
# Each round runs every proxy once, in turn (A B C A B C ...), with the same wrk settings. CPU
# per request is the proxy's utime+stime over the run (from /proc/PID/stat, which sums all of
# the process's threads, master and workers summed for nginx) divided by completed requests.
# The table shows medians over the rounds.
#
# Environment: ROUNDS (3), DURATION seconds (5), WRK_THREADS (1), CONNS (32), WARMUP seconds
# (1, unrecorded, before each proxy's first round), IDLE_CONNS (10000), PINGORA_THREADS (1),
# SCENARIOS, PROXIES, SKIP_BUILD=1, KEEP_TMP=1 (keep configs and logs), OUT (RESULTS.md path),
# H2_STREAMS (10, concurrent streams per h2load connection), PROXY_CORE and IDLE_POLL (below).
#
# Needs root only to install packages (wrk nginx-light haproxy curl python3 openssl
# nghttp2-client) when they
# are missing; every server runs from its own config, pid file and ports in a temp dir, bound
# to 127.0.0.1, never as the system service.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WRK_THREADS=${WRK_THREADS:-1}
CONNS=${CONNS:-32}
WARMUP=${WARMUP:-1}
IDLE_CONNS=${IDLE_CONNS:-10000}
PINGORA_THREADS=${PINGORA_THREADS:-1}
H2_STREAMS=${H2_STREAMS:-10}
ALL_PROXIES="direct bare nginx haproxy portico"
PROXIES=${PROXIES:-$ALL_PROXIES}
OUT=${OUT:-$ROOT/benches/RESULTS.md}
SCENARIO_DIR=$ROOT/benches/scenarios

log() { printf '\033[1m[compare]\033[0m %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# === install what is missing =====================================================================

need_pkgs=()
command -v wrk >/dev/null || need_pkgs+=(wrk)
command -v h2load >/dev/null || need_pkgs+=(nghttp2-client)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need_pkgs+=(nginx-light)
command -v haproxy >/dev/null || [[ -x /usr/sbin/haproxy ]] || need_pkgs+=(haproxy)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v redis-server >/dev/null || need_pkgs+=(redis-server)
command -v python3 >/dev/null || need_pkgs+=(python3)
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v taskset >/dev/null || need_pkgs+=(util-linux)
if ((${#need_pkgs[@]})); then
    log "installing ${need_pkgs[*]}"
    # Keep the packages' own services from starting on install (as in Debian containers): this
    # script never uses them.
    own_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
    if ((own_policy)); then rm -f /usr/sbin/policy-rc.d; fi
fi
export PATH=$PATH:/usr/sbin:/sbin
NGINX=$(command -v nginx)
HAPROXY=$(command -v haproxy)

# === build =======================================================================================

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building portico and bare_pingora (release)"
    cargo build --release --quiet
    cargo build --profile floor --quiet --example bare_pingora
fi
PORTICO=${PORTICO:-$TARGET_DIR/release/portico}   # or another build: PORTICO=target/floor/portico SKIP_BUILD=1
BARE=$TARGET_DIR/floor/examples/bare_pingora
for bin in "$PORTICO" "$BARE"; do
    case $bin in */portico) p=portico ;; *) p=bare ;; esac
    if [[ " $PROXIES " == *" $p "* && ! -x $bin ]]; then die "missing $bin (build it, or unset SKIP_BUILD)"; fi
done

# === processes and cleanup =======================================================================

TMP=$(mktemp -d /tmp/portico-compare.XXXXXX)
PIDS=()

stop_pids() {
    local pid
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        local alive=0
        for pid in "$@"; do
            if kill -0 "$pid" 2>/dev/null; then alive=1; fi
        done
        if ((!alive)); then break; fi
        sleep 0.2
    done
    for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}

cleanup() {
    local rc=$?
    if ((${#PIDS[@]})); then stop_pids "${PIDS[@]}"; fi
    if [[ ${KEEP_TMP:-0} == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Raise the descriptor limit for idle connections (children inherit it); containers often cap
# the hard limit, so idle10k opens at most what fits.
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if ((IDLE_CONNS + 1000 > NOFILE)); then
    log "ulimit -n is $NOFILE: idle10k opens $((NOFILE - 1000)) connections, not $IDLE_CONNS"
    IDLE_CONNS=$((NOFILE - 1000))
fi
# nginx allocates its connection table up front: big enough for idle10k only where needed.
NGINX_IDLE_CONNS=$((IDLE_CONNS + 2048))

NPROC=$(nproc)
# PROXY_CORE=1 puts the proxy on the load's core: for latency on a VM, where a wakeup across
# cores costs far more than the proxy's own work and would otherwise dominate the figure
# (IDLE_POLL=1, further down, is the other way to take that cost out).
PROXY_CORE=${PROXY_CORE:-0}
if ((NPROC >= 2)); then
    PIN_PROXY=(taskset -c "$PROXY_CORE")
    PIN_LOAD=(taskset -c 1)
    if ((PROXY_CORE == 1)); then
        PINNING="proxies, wrk and the upstream all on core 1 (PROXY_CORE=1)"
    else
        PINNING="proxies on core 0; wrk and the upstream on core 1"
    fi
else
    PIN_PROXY=()
    PIN_LOAD=()
    PINNING="none (1 core)"
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start NAME CMD...: runs CMD in the background, output to $TMP/NAME.log; sets STARTED_PID.
start() {
    local name=$1
    shift
    "$@" >"$TMP/$name.log" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

forget_pids() {
    local keep=() p q drop
    for p in "${PIDS[@]}"; do
        drop=0
        for q in "$@"; do
            if [[ $p == "$q" ]]; then drop=1; fi
        done
        if ((!drop)); then keep+=("$p"); fi
    done
    PIDS=("${keep[@]}")
}

# The pid and its children (nginx master + workers).
pid_tree() {
    local master=$1
    echo "$master"
    awk -v pp="$master" '{ sub(/^.*\) /, ""); if ($2 == pp) { n = split(FILENAME, a, "/"); print a[3] } }' \
        /proc/[0-9]*/stat 2>/dev/null || true
}

# Clock ticks of utime+stime, summed over pids (each pid's /proc/PID/stat covers all its threads).
cpu_ticks() {
    local total=0 pid line
    for pid in "$@"; do
        line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        line=${line##*) }
        read -r -a f <<<"$line"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

rss_kib() {
    local total=0 pid v
    for pid in "$@"; do
        v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)

# wait_ready URL PID [curl args]: until URL answers 200 with body `ok`, or fail.
wait_ready() {
    local url=$1 pid=$2 body
    shift 2
    for _ in $(seq 1 100); do
        if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        body=$(curl -sk --max-time 2 "$@" "$url" 2>/dev/null || true)
        if [[ $body == ok ]]; then return 0; fi
        sleep 0.1
    done
    return 1
}

# === the fixed upstream ==========================================================================

nginx_base() { # DIR WORKER_CONNECTIONS: the lines every nginx instance shares
    cat <<EOF
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile $NOFILE;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections $2; }
EOF
}

nginx_temp_paths() { # DIR
    for t in client_body proxy fastcgi uwsgi scgi; do echo "    ${t}_temp_path $1/$t;"; done
}

UP_DIR=$TMP/upstream
mkdir -p "$UP_DIR"
UP_PORT=$(free_port)
UPSTREAM=127.0.0.1:$UP_PORT
{
    nginx_base "$UP_DIR" "$NGINX_IDLE_CONNS"
    cat <<EOF
http {
    access_log off;
$(nginx_temp_paths "$UP_DIR")
    keepalive_requests 10000000;
    server {
        listen $UPSTREAM backlog=65535;
        location / { return 200 "ok"; }
    }
}
EOF
} >"$UP_DIR/nginx.conf"
start upstream "${PIN_LOAD[@]}" "$NGINX" -p "$UP_DIR" -c "$UP_DIR/nginx.conf" -e "$UP_DIR/error.log"
UP_PID=$STARTED_PID
wait_ready "http://$UPSTREAM/" "$UP_PID" || die "upstream nginx did not start: $(cat "$TMP/upstream.log" "$UP_DIR/error.log" 2>/dev/null)"
log "upstream nginx on $UPSTREAM"

# TLS material for `bench-scheme: https` scenarios.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$TMP/site.key" -out "$TMP/site.crt" 2>/dev/null
cat "$TMP/site.crt" "$TMP/site.key" >"$TMP/site.pem"

# === proxies =====================================================================================

# Scenario settings, read from the scenario file's `# bench-KEY: VALUE` lines.
meta() { # FILE KEY -> every value, one a line
    sed -n "s/^# bench-$2: //p" "$1"
}
meta1() { # FILE KEY -> the first value
    meta "$1" "$2" | awk 'NR == 1'
}

# Portico config for a scenario: the template with placeholders filled.
# A scenario whose template names @REDIS@ gets one redis-server for the whole run.
REDIS_URL=
ensure_redis() {
    if [[ -n $REDIS_URL ]]; then return; fi
    local port
    port=$(free_port)
    start redis redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no
    for _ in $(seq 1 100); do
        if redis-cli -p "$port" ping >/dev/null 2>&1; then break; fi
        sleep 0.05
    done
    REDIS_URL="redis://127.0.0.1:$port"
}

portico_conf() { # TEMPLATE DIR LISTEN OUT [nocache]
    if grep -q '@REDIS@' "$1"; then ensure_redis; fi
    local drop_cache=()
    if [[ ${5:-} == nocache ]]; then drop_cache=(-e '/^cache_store:/d' -e 's/, cache: {[^}]*}//'); fi
    sed -e "s|@LISTEN@|$3|g" -e "s|@UPSTREAM@|$UPSTREAM|g" -e "s|@DIR@|$2|g" -e "s|@REDIS@|$REDIS_URL|g" \
        -e "s|@THREADS@|$PINGORA_THREADS|g" "${drop_cache[@]}" "$1" >"$4"
}

# routes1000: plain.yaml's head with 1,000 routes, /svc0 ... /svc999.
routes1000_template() {
    sed '/^routes:/,$d' "$SCENARIO_DIR/plain.yaml"
    echo "routes:"
    for i in $(seq 0 999); do echo "  - {name: svc$i, match: {path: /svc$i}, upstream: up}"; done
}

nginx_conf() { # DIR LISTEN SCHEME ROUTES WORKER_CONNECTIONS [cache]
    local dir=$1 listen=$2 scheme=$3 routes=$4 ssl=""
    if [[ $scheme == https ]]; then ssl=" ssl"; fi
    if [[ $LOAD == h2load ]]; then ssl+=" http2"; fi
    nginx_base "$dir" "$5"
    # The worker writes the cache files inside this run's private (0700) temp dir.
    if [[ ${6:-} == cache ]]; then echo "user root;"; fi
    cat <<EOF
http {
    access_log off;
$(nginx_temp_paths "$dir")
    keepalive_requests 10000000;
$(if [[ ${6:-} == cache ]]; then echo "    proxy_cache_path $dir/cache levels=1:2 keys_zone=bench:10m max_size=64m inactive=1h use_temp_path=off;"; fi)
    upstream up { server $UPSTREAM; keepalive 64; keepalive_requests 10000000; }
    server {
        listen $listen$ssl backlog=65535;
EOF
    if [[ $scheme == https ]]; then
        echo "        ssl_certificate $TMP/site.crt;"
        echo "        ssl_certificate_key $TMP/site.key;"
    fi
    cat <<EOF
        proxy_http_version 1.1;
        proxy_set_header Connection "";
EOF
    if [[ ${6:-} == cache ]]; then
        # The hits of scenario cache_hit: stored for an hour on the first request, one fetch
        # per key, the status in a header as Portico sends it.
        cat <<EOF
        proxy_cache bench;
        proxy_cache_valid 200 1h;
        proxy_cache_lock on;
        add_header X-Cache-Status \$upstream_cache_status;
EOF
    fi
    if ((routes > 0)); then
        for i in $(seq 0 $((routes - 1))); do echo "        location /svc$i/ { proxy_pass http://up; }"; done
    else
        echo "        location / { proxy_pass http://up; }"
    fi
    echo "    }"
    echo "}"
}

haproxy_conf() { # DIR LISTEN SCHEME
    local ssl=""
    if [[ $3 == https ]]; then ssl=" ssl crt $TMP/site.pem"; fi
    if [[ $LOAD == h2load ]]; then ssl+=" proto h2"; fi
    cat <<EOF
global
    nbthread 1
    maxconn $((IDLE_CONNS + 1024))
    no strict-limits
    pidfile $1/haproxy.pid
defaults
    mode http
    maxconn $((IDLE_CONNS + 1024))
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    http-reuse always
frontend fe
    bind $2$ssl
    default_backend be
backend be
    server up $UPSTREAM
EOF
}

# start_proxy SCENARIO PROXY SCHEME TEMPLATE: starts it; sets P_URL_BASE and P_PIDS, or P_SKIP.
start_proxy() {
    local scenario=$1 proxy=$2 scheme=$3 template=$4
    local dir=$TMP/$scenario-$proxy port listen err
    mkdir -p "$dir"
    port=$(free_port)
    listen=127.0.0.1:$port
    P_SKIP=""
    P_MASTER=""
    P_URL_BASE="$scheme://$listen"
    case $proxy in
    direct)
        if [[ $scheme != http ]]; then
            P_SKIP="-"
            return
        fi
        P_URL_BASE="http://$UPSTREAM"
        P_MASTER=$UP_PID
        ;;
    bare)
        local tls=()
        if [[ $scheme == https ]]; then tls=(--cert "$TMP/site.crt" --key "$TMP/site.key"); fi
        start "$scenario-bare" "${PIN_PROXY[@]}" "$BARE" --listen "$listen" --upstream "$UPSTREAM" \
            --threads "$PINGORA_THREADS" --pid-file "$dir/bare.pid" --upgrade-sock "$dir/bare.sock" "${tls[@]}"
        P_MASTER=$STARTED_PID
        ;;
    nginx)
        local routes=0 conns=4096 cache=""
        if [[ $scenario == routes1000 ]]; then routes=1000; fi
        if [[ $scenario == idle10k ]]; then conns=$NGINX_IDLE_CONNS; fi
        if [[ $scenario == cache_hit ]]; then cache=cache; fi
        nginx_conf "$dir" "$listen" "$scheme" "$routes" "$conns" "$cache" >"$dir/nginx.conf"
        start "$scenario-nginx" "${PIN_PROXY[@]}" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
        P_MASTER=$STARTED_PID
        ;;
    haproxy)
        haproxy_conf "$dir" "$listen" "$scheme" >"$dir/haproxy.cfg"
        start "$scenario-haproxy" "${PIN_PROXY[@]}" "$HAPROXY" -db -f "$dir/haproxy.cfg"
        P_MASTER=$STARTED_PID
        ;;
    portico | base | portico_proxy)
        local bin=$PORTICO nocache=""
        if [[ $proxy == base ]]; then bin=${PORTICO_BASE:?PORTICO_BASE names the other Portico binary}; fi
        if [[ $proxy == portico_proxy ]]; then nocache=nocache; fi
        cp "$TMP/site.crt" "$TMP/site.key" "$dir/"
        portico_conf "$template" "$dir" "$listen" "$dir/portico.yaml" "$nocache"
        if ! err=$("$bin" -t -c "$dir/portico.yaml" 2>&1); then
            err=$(grep -v '^portico:' <<<"$err" | awk 'NR == 1' | sed "s|$dir/||g" | tr '|' '/' | cut -c1-140)
            P_SKIP="TODO: Portico rejects the config: $err"
            return
        fi
        start "$scenario-$proxy" env RUST_LOG=warn "${PIN_PROXY[@]}" "$bin" -c "$dir/portico.yaml"
        P_MASTER=$STARTED_PID
        ;;
    esac
    if ! wait_ready "$P_URL_BASE$READY_PATH" "$P_MASTER" "${CURL_HEADERS[@]}"; then
        P_SKIP="FAILED: did not answer 200 ok"
        log "$proxy ($scenario) did not answer 200 ok; its log:"
        tail -n 20 "$TMP/$scenario-$proxy.log" "$dir/error.log" 2>/dev/null >&2 || true
        if [[ $proxy != direct ]]; then
            stop_pids "$P_MASTER"
            forget_pids "$P_MASTER"
        fi
        return
    fi
    mapfile -t P_PIDS < <(pid_tree "$P_MASTER")
}

# === measurement =================================================================================

RAW=$TMP/raw.tsv
printf 'scenario\tproxy\tround\tstatus\trps\tp50_us\tp99_us\tcpu_us_req\trss_kib\trequests\terrors\tkib_per_conn\tnote\n' >"$RAW"

record() { # scenario proxy round status rps p50 p99 cpu rss requests errors kib_per_conn note
    local IFS=$'\t'
    echo "$*" >>"$RAW"
}

to_us() { # 1.23ms -> 1230
    awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "ms") n *= 1000; else if (u == "s") n *= 1000000; else if (u == "m") n *= 60000000;
        printf "%.1f", n }'
}

run_wrk() { # URL SECONDS OUTFILE
    local threads=$((WRK_THREADS < SCEN_CONNS ? WRK_THREADS : SCEN_CONNS))
    "${PIN_LOAD[@]}" wrk -t"$threads" -c"$SCEN_CONNS" -d"$2"s --latency "${WRK_HEADERS[@]}" "$1" >"$3" 2>&1 || true
}

# run_h2load URL SECONDS OUTFILE [LOGFILE]: HTTP/2 with prior knowledge; LOGFILE gets one line
# per request (start, status, microseconds), for the percentiles h2load does not print.
run_h2load() {
    local threads=$((WRK_THREADS < SCEN_CONNS ? WRK_THREADS : SCEN_CONNS)) log=()
    if [[ -n ${4:-} ]]; then log=(--log-file="$4"); fi
    "${PIN_LOAD[@]}" h2load -t"$threads" -c"$SCEN_CONNS" -m"$H2_STREAMS" -D"$2" "${log[@]}" "${WRK_HEADERS[@]}" \
        "$1" >"$3" 2>&1 || true
}

run_load() { # URL SECONDS OUTFILE: wrk, or h2load for an h2load scenario
    if [[ $LOAD == h2load ]]; then run_h2load "$@"; else run_wrk "$@"; fi
}

# Reads h2load's report OUTFILE and per-request LOGFILE into the variables measure() records.
parse_h2load() { # OUTFILE LOGFILE
    requests=$(awk '/^requests:/ { print $8; exit }' "$1")
    rps=$(awk '/^finished in/ { gsub(/,/, ""); print $4; exit }' "$1")
    errors=$(awk '/^requests:/ { e += $10 + $12 + $14 } /^status codes:/ { e += $7 + $9 } END { print e + 0 }' "$1")
    p50=""
    p99=""
    if [[ -s $2 ]]; then
        read -r p50 p99 < <(sort -n -k3,3 "$2" | awk '{ v[NR] = $3 } END {
            if (NR) printf "%.1f %.1f\n", v[int((NR - 1) * 0.50) + 1], v[int((NR - 1) * 0.99) + 1] }')
    fi
}

measure() { # scenario proxy round
    local out=$TMP/wrk-$1-$2-$3.txt t0 t1 requests rps p50 p99 errors cpu rss
    t0=$(cpu_ticks "${P_PIDS[@]}")
    if [[ $LOAD == h2load ]]; then
        run_h2load "$P_URL_BASE$REQ_PATH" "$DURATION" "$out" "$out.requests"
    else
        run_wrk "$P_URL_BASE$REQ_PATH" "$DURATION" "$out"
    fi
    t1=$(cpu_ticks "${P_PIDS[@]}")
    rss=$(rss_kib "${P_PIDS[@]}")
    if [[ $LOAD == h2load ]]; then
        parse_h2load "$out" "$out.requests"
        rm -f "$out.requests"
    else
        requests=$(awk '/requests in/ { print $1; exit }' "$out")
        rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
        p50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$out")")
        p99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$out")")
        errors=$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$out")
    fi
    if [[ -z $requests || $requests == 0 ]]; then
        log "wrk failed against $2 ($1):"
        cat "$out" >&2
        record "$1" "$2" "$3" failed "" "" "" "" "$rss" 0 0 "" "wrk failed"
        return
    fi
    cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.2f", d * 1000000 / hz / n }')
    record "$1" "$2" "$3" ok "$rps" "$p50" "$p99" "$cpu" "$rss" "$requests" "$errors" "" ""
    local flag=""
    if ((errors)); then flag="  ERRORS: $errors"; fi
    log "$(printf '%-10s %-8s round %s: %9s req/s  p50 %8s us  p99 %8s us  %6s us/req  %6s KiB%s' \
        "$1" "$2" "$3" "$rps" "$p50" "$p99" "$cpu" "$rss" "$flag")"
}

measure_idle() { # scenario proxy
    local before after out=$TMP/idle-$2.out host=${P_URL_BASE#*://} line ok failed
    run_wrk "$P_URL_BASE$REQ_PATH" "$WARMUP" /dev/null
    sleep 1
    before=$(rss_kib "${P_PIDS[@]}")
    python3 "$ROOT/benches/idle_conns.py" "${host%:*}" "${host##*:}" "$IDLE_CONNS" "$REQ_PATH" >"$out" 2>&1 &
    local idle_pid=$!
    PIDS+=("$idle_pid")
    for _ in $(seq 1 1200); do
        if grep -q '^ready' "$out" 2>/dev/null || ! kill -0 "$idle_pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    line=$(grep -m1 '^ready' "$out" || true)
    if [[ -z $line ]]; then
        log "idle_conns against $2 did not finish: $(tail -n 3 "$out")"
        stop_pids "$idle_pid"
        forget_pids "$idle_pid"
        record "$1" "$2" 1 failed "" "" "" "" "$before" 0 0 "" "idle connections not established"
        return
    fi
    read -r _ ok failed <<<"$line"
    sleep 1
    after=$(rss_kib "${P_PIDS[@]}")
    stop_pids "$idle_pid"
    forget_pids "$idle_pid"
    local per
    per=$(awk -v a="$after" -v b="$before" -v n="$ok" 'BEGIN { printf "%.2f", n ? (a - b) / n : 0 }')
    record "$1" "$2" 1 ok "" "" "" "" "$after" "$ok" "$failed" "$per" ""
    log "$(printf '%-10s %-8s %s idle connections (%s failed): RSS %s -> %s KiB, %s KiB/conn' \
        "$1" "$2" "$ok" "$failed" "$before" "$after" "$per")"
}

# IDLE_POLL=1 keeps every core from going idle: a busy loop at SCHED_IDLE priority on each, which
# any woken thread preempts at once. On a VM an idle vCPU halts, and waking it (a host-side
# reschedule) costs more than a proxy's own work; this is what `idle=poll` does for a latency-
# tuned host, and it applies to every proxy and to direct alike.
if [[ ${IDLE_POLL:-0} == 1 ]]; then
    for ((core = 0; core < NPROC; core++)); do
        start "idle-poll-$core" taskset -c "$core" chrt --idle 0 sh -c 'while :; do :; done'
    done
    PINNING+="; IDLE_POLL=1 (a SCHED_IDLE busy loop on every core)"
fi

# === scenarios ===================================================================================

# grpc_unary: gRPC calls driven by h2load, in benches/grpc_unary.sh.
source "$ROOT/benches/grpc_unary.sh"

if [[ -z ${SCENARIOS:-} ]]; then
    SCENARIOS="plain routes1000 idle10k latency"
    for f in "$SCENARIO_DIR"/*.yaml; do
        name=$(basename "$f" .yaml)
        if [[ $name != plain ]]; then SCENARIOS+=" $name"; fi
    done
fi

run_scenario() {
    local scenario=$1 template scheme proxies proxy round
    local -A masters=() bases=() pidsets=()
    SCEN_CONNS=$CONNS
    case $scenario in
    plain | idle10k) template=$SCENARIO_DIR/plain.yaml ;;
    latency)
        template=$SCENARIO_DIR/plain.yaml
        SCEN_CONNS=1
        ;;
    routes1000)
        template=$TMP/routes1000.yaml
        routes1000_template >"$template"
        ;;
    *) template=$SCENARIO_DIR/$scenario.yaml ;;
    esac
    if [[ ! -f $template ]]; then die "no scenario $scenario ($template)"; fi
    if [[ $scenario == grpc_unary ]]; then
        run_grpc_unary "$template"
        return
    fi

    REQ_PATH=$(meta1 "$template" path)
    REQ_PATH=${REQ_PATH:-/}
    # A scenario whose answer is not `ok` (aggregate3) names a path that is.
    READY_PATH=$(meta1 "$template" ready)
    READY_PATH=${READY_PATH:-$REQ_PATH}
    scheme=$(meta1 "$template" scheme)
    scheme=${scheme:-http}
    proxies=$(meta1 "$template" proxies)
    proxies=${proxies:-$ALL_PROXIES}
    case $scenario in
    routes1000)
        REQ_PATH=/svc998/users/42
        proxies="bare nginx portico" # bare ignores the path: the floor for the ratio
        ;;
    idle10k) proxies=$ALL_PROXIES ;;
    esac
    WRK_HEADERS=()
    CURL_HEADERS=()
    while IFS= read -r h; do
        if [[ -z $h ]]; then continue; fi
        WRK_HEADERS+=(-H "$h")
        CURL_HEADERS+=(-H "$h")
    done < <(meta "$template" header)
    LOAD=$(meta1 "$template" load)
    LOAD=${LOAD:-wrk}
    if [[ $LOAD == h2load ]]; then CURL_HEADERS+=(--http2-prior-knowledge); fi

    log "scenario $scenario: $REQ_PATH over $scheme"
    local order=() run_list=$PROXIES
    # portico_proxy (Portico without the scenario's cache) runs beside portico where a scenario
    # lists it.
    if [[ " $proxies " == *" portico_proxy "* && " $PROXIES " == *" portico "* && " $PROXIES " != *" portico_proxy "* ]]; then
        run_list+=" portico_proxy"
    fi
    for proxy in $run_list; do
        local as=$proxy
        if [[ $proxy == base ]]; then as=portico; fi
        if [[ " $proxies " != *" $as "* ]]; then
            record "$scenario" "$proxy" 0 skip "" "" "" "" "" "" "" "" "-"
            continue
        fi
        start_proxy "$scenario" "$proxy" "$scheme" "$template"
        if [[ -n $P_SKIP ]]; then
            record "$scenario" "$proxy" 0 skip "" "" "" "" "" "" "" "" "$P_SKIP"
            continue
        fi
        masters[$proxy]=$P_MASTER
        bases[$proxy]=$P_URL_BASE
        pidsets[$proxy]="${P_PIDS[*]}"
        order+=("$proxy")
    done

    if [[ $scenario == idle10k ]]; then
        for proxy in "${order[@]}"; do
            P_URL_BASE=${bases[$proxy]}
            read -r -a P_PIDS <<<"${pidsets[$proxy]}"
            measure_idle "$scenario" "$proxy"
        done
    else
        for round in $(seq 1 "$ROUNDS"); do
            for proxy in "${order[@]}"; do
                P_URL_BASE=${bases[$proxy]}
                read -r -a P_PIDS <<<"${pidsets[$proxy]}"
                if ((round == 1 && WARMUP > 0)); then run_load "$P_URL_BASE$REQ_PATH" "$WARMUP" /dev/null; fi
                measure "$scenario" "$proxy" "$round"
            done
        done
    fi

    for proxy in "${order[@]}"; do
        if [[ $proxy == direct ]]; then continue; fi
        stop_pids "${masters[$proxy]}"
        forget_pids "${masters[$proxy]}"
    done
}

STARTED_AT=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for scenario in $SCENARIOS; do
    run_scenario "$scenario"
done

# === report ======================================================================================

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git diff --quiet HEAD 2>/dev/null; then COMMIT+=" (with uncommitted changes)"; fi
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
export RAW OUT STARTED_AT LOAD_BEFORE LOAD_AFTER COMMIT CPU_MODEL NPROC PINNING ROUNDS DURATION WRK_THREADS CONNS WARMUP \
    IDLE_CONNS PINGORA_THREADS PROXIES
KERNEL=$(uname -r)
nginx_v=$("$NGINX" -v 2>&1 | sed 's/.*: //') || true
haproxy_v=$("$HAPROXY" -v 2>&1 | awk 'NR == 1 { print "haproxy " $3 }') || true
wrk_v=$(wrk -v 2>&1 | awk 'NR == 1 { print $1 " " $2 }') || true
rustc_v=$(rustc -V 2>/dev/null | awk '{ print $1 " " $2 }') || true
VERSIONS="$nginx_v, $haproxy_v, $wrk_v, $rustc_v"
export KERNEL VERSIONS

python3 - <<'PY'
import csv, os, statistics

env = os.environ
rows = list(csv.DictReader(open(env["RAW"]), delimiter="\t"))
order_s, order_p, by = [], [], {}
for r in rows:
    if r["scenario"] not in order_s:
        order_s.append(r["scenario"])
    if r["proxy"] not in order_p:
        order_p.append(r["proxy"])
    by.setdefault((r["scenario"], r["proxy"]), []).append(r)

def med(rs, key):
    vals = [float(r[key]) for r in rs if r["status"] == "ok" and r[key] != ""]
    return statistics.median(vals) if vals else None

def lat(us):
    if us is None:
        return "-"
    return f"{us:.0f} us" if us < 1000 else f"{us / 1000:.2f} ms"

def mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f} MiB"

names = {"direct": "direct (upstream)", "bare": "bare Pingora", "nginx": "nginx", "haproxy": "haproxy",
         "portico": "Portico", "base": "Portico (PORTICO_BASE)",
         "portico_proxy": "Portico, cache off (every request proxied)"}
lines = ["| scenario | proxy | req/s (median) | p50 | p99 | CPU us/req (median) | RSS | CPU vs nginx | CPU vs bare Pingora |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
for s in order_s:
    idle = s.startswith("idle")
    key = "kib_per_conn" if idle else "cpu_us_req"
    ref = {p: med(by.get((s, p), []), key) for p in ("nginx", "bare")}
    for p in order_p:
        rs = by.get((s, p), [])
        if not rs:
            continue
        ok = [r for r in rs if r["status"] == "ok"]
        if not ok:
            note = rs[0]["note"] or rs[0]["status"]
            lines.append(f"| {s} | {names.get(p, p)} | {note} | - | - | - | - | - | - |")
            continue
        errs = sum(int(r["errors"] or 0) for r in ok)
        flag = f" (!{errs} errors)" if errs else ""
        v = med(rs, key)
        ratio = lambda q: "-" if not ref[q] or v is None else f"{v / ref[q]:.2f}x"
        if idle:
            rss = f"{mib(med(rs, 'rss_kib'))}, +{v:.1f} KiB/conn{flag}"
            lines.append(f"| {s} ({ok[0]['requests']} conns) | {names.get(p, p)} | - | - | - | - | {rss} | "
                         f"{ratio('nginx')} (mem) | {ratio('bare')} (mem) |")
        else:
            rps = med(rs, "rps")
            lines.append(f"| {s} | {names.get(p, p)} | {rps:,.0f}{flag} | {lat(med(rs, 'p50_us'))} | "
                         f"{lat(med(rs, 'p99_us'))} | {v:.2f} | {mib(med(rs, 'rss_kib'))} | "
                         f"{ratio('nginx')} | {ratio('bare')} |")
table = "\n".join(lines)

# latency: what each proxy adds to one request at a time, over the upstream alone.
direct = by.get(("latency", "direct"), [])
d50, d99 = med(direct, "p50_us"), med(direct, "p99_us")
added = ""
if d50 is not None and any(s == "latency" for s in order_s):
    rows_l = ["| proxy | p50 | p99 | p50 added over direct | p99 added over direct |", "|---|---:|---:|---:|---:|"]
    for p in order_p:
        rs = by.get(("latency", p), [])
        p50, p99 = med(rs, "p50_us"), med(rs, "p99_us")
        if p == "direct" or p50 is None:
            continue
        rows_l.append(f"| {names.get(p, p)} | {lat(p50)} | {lat(p99)} | {p50 - d50:+.0f} us | {p99 - d99:+.0f} us |")
    added = ("\n\n### latency: one connection, one request at a time (medians over rounds; direct "
             f"{lat(d50)} p50, {lat(d99)} p99)\n\n" + "\n".join(rows_l))
# aggregate3 against three plain proxied requests (the issue's target: at most 1.3x).
for p in ("portico", "base"):
    agg, plain = med(by.get(("aggregate3", p), []), "cpu_us_req"), med(by.get(("plain", p), []), "cpu_us_req")
    if agg and plain:
        table += (f"\n\naggregate3 ({names.get(p, p)}): {agg:.2f} us CPU per client request of three parts = "
                  f"{agg / (3 * plain):.2f}x three plain proxied requests (3 x {plain:.2f} us)")

raw = ["| scenario | proxy | round | req/s | p50 us | p99 us | CPU us/req | RSS KiB | requests | errors |",
       "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
for r in rows:
    if r["status"] == "ok" and not r["scenario"].startswith("idle"):
        raw.append(f"| {r['scenario']} | {r['proxy']} | {r['round']} | {float(r['rps']):,.0f} | {r['p50_us']} | "
                   f"{r['p99_us']} | {r['cpu_us_req']} | {r['rss_kib']} | {r['requests']} | {r['errors']} |")

head = f"""# Load comparison

Generated by `benches/compare.sh`; do not edit above "Measured levers" (a rerun rewrites it).

- Date: {env['STARTED_AT']}
- Commit: {env['COMMIT']}
- CPU: {env['CPU_MODEL']}, {env['NPROC']} cores (kernel {env['KERNEL']}); pinning: {env['PINNING']}
- Load average (1/5/15 min) before the run: {env['LOAD_BEFORE']}; after: {env['LOAD_AFTER']} (anything
  above what this script runs is other work on the machine)
- Versions: {env['VERSIONS']}
- wrk: `wrk -t{env['WRK_THREADS']} -c{env['CONNS']} -d{env['DURATION']}s --latency`, {env['ROUNDS']} interleaved rounds
  (every proxy once per round, in turn), {env['WARMUP']}s unrecorded warm-up before each proxy's first round
- Workers: 1 (nginx `worker_processes 1`, haproxy `nbthread 1`); Pingora-based proxies {env['PINGORA_THREADS']} thread(s)
- Upstream: nginx, 1 worker, `return 200 "ok";` on loopback
- CPU us/req: the proxy's utime+stime (all threads; nginx master + worker) over a run divided by
  completed requests; for `direct` it is the upstream nginx's own cost. RSS: VmRSS after the run
  (for nginx, master + worker, so pages they share count twice; nginx also allocates its
  `worker_connections` table at start: 4096 here, {int(env['IDLE_CONNS']) + 2048} in idle10k and for the upstream).
- idle10k: {env['IDLE_CONNS']} keep-alive connections, one request each, then held open; RSS is
  while they are held, KiB/conn is the RSS increase divided by connections, and the ratio columns
  compare that memory per connection.
- A `-` row was not run for that scenario; a `TODO` row is a scenario whose config Portico does
  not accept yet.

## Results (medians)

{table}{added}

<details><summary>Every round</summary>

{chr(10).join(raw)}

</details>
"""

levers = ""
if os.path.exists(env["OUT"]):
    old = open(env["OUT"]).read()
    i = old.find("## Measured levers")
    if i >= 0:
        levers = "\n" + old[i:]
open(env["OUT"], "w").write(head + levers)
print(table)
PY
log "wrote $OUT"
