# The grpc_unary scenario of benches/compare.sh (sourced by it; uses its helpers): gRPC unary
# load through Portico beside the same load straight to the server, CPU per call.
#
# The upstream is grpcio's asyncio server (benches/grpc_echo.py, on the load core); the load is
# h2load (Debian nghttp2-client) posting one prepared gRPC frame per call, GRPC_STREAMS (10)
# calls in flight on each of GRPC_CONNS (8) connections, for DURATION seconds. h2load counts
# HTTP statuses only; a call that failed with a grpc-status would still count as a 2xx, so the
# scenario first checks one call through each proxy answers `grpc-status: 0`. p50/p99 are not
# recorded (h2load reports mean and spread only).

GRPC_PY=${GRPC_PY:-/usr/bin/python3}
GRPC_CONNS=${GRPC_CONNS:-8}
GRPC_STREAMS=${GRPC_STREAMS:-10}

# grpc_call URL: one call with curl; true when it answered grpc-status 0.
grpc_call() {
    curl -s --max-time 2 --http2-prior-knowledge -X POST -H 'content-type: application/grpc' -H 'te: trailers' \
        --data-binary "@$TMP/grpc-frame.bin" -o /dev/null -D - "$1" 2>/dev/null | tr -d '\r' | grep -q '^grpc-status: 0$'
}

measure_h2load() { # scenario proxy round url
    local out=$TMP/h2load-$1-$2-$3.txt t0 t1 requests rps errors cpu rss
    t0=$(cpu_ticks "${P_PIDS[@]}")
    "${PIN_LOAD[@]}" h2load -D "$DURATION" -c "$GRPC_CONNS" -m "$GRPC_STREAMS" -t 1 -d "$TMP/grpc-frame.bin" \
        -H 'content-type: application/grpc' -H 'te: trailers' "$4" >"$out" 2>&1 || true
    t1=$(cpu_ticks "${P_PIDS[@]}")
    rss=$(rss_kib "${P_PIDS[@]}")
    requests=$(awk '/^requests:/ { print $8; exit }' "$out")
    rps=$(awk '/^finished in/ { gsub(/,/, ""); print $4; exit }' "$out")
    errors=$(awk '/^requests:/ { print $10 + $12; exit }' "$out")
    if [[ -z $requests || $requests == 0 ]]; then
        log "h2load failed against $2 ($4):"
        tail -n 5 "$out" >&2
        record "$1" "$2" "$3" failed "" "" "" "" "$rss" 0 0 "" "h2load failed"
        return
    fi
    cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.2f", d * 1000000 / hz / n }')
    record "$1" "$2" "$3" ok "$rps" "" "" "$cpu" "$rss" "$requests" "${errors:-0}" "" "h2load, $GRPC_CONNS x $GRPC_STREAMS streams"
    log "$(printf '%-10s %-8s round %s: %9s calls/s  %6s us/call  %6s KiB' "$1" "$2" "$3" "$rps" "$cpu" "$rss")"
}

run_grpc_unary() { # TEMPLATE
    local template=$1 proxy round dir port listen
    local -A urls=() pidsets=() masters=()
    if ! command -v h2load >/dev/null || ! "$GRPC_PY" -c 'import grpc' 2>/dev/null; then
        for proxy in $PROXIES; do
            record grpc_unary "$proxy" 0 skip "" "" "" "" "" "" "" "" "needs h2load (nghttp2-client) and grpcio for $GRPC_PY"
        done
        return
    fi
    # Msg {text: "hello"} in one gRPC frame.
    printf '\x00\x00\x00\x00\x07\x0a\x05hello' >"$TMP/grpc-frame.bin"
    port=$(free_port)
    start grpc-upstream "${PIN_LOAD[@]}" "$GRPC_PY" "$ROOT/benches/grpc_echo.py" "$port"
    local up_pid=$STARTED_PID
    for _ in $(seq 1 100); do
        if grpc_call "http://127.0.0.1:$port/portico.test.Echo/Unary"; then break; fi
        sleep 0.1
    done
    log "scenario grpc_unary: /portico.test.Echo/Unary over h2c"
    local order=()
    for proxy in $PROXIES; do
        case $proxy in
        direct)
            urls[$proxy]="http://127.0.0.1:$port"
            pidsets[$proxy]=$up_pid
            ;;
        portico | base)
            local bin=$PORTICO
            if [[ $proxy == base ]]; then bin=${PORTICO_BASE:?PORTICO_BASE names the other Portico binary}; fi
            dir=$TMP/grpc_unary-$proxy
            mkdir -p "$dir"
            listen=127.0.0.1:$(free_port)
            portico_conf "$template" "$dir" "$listen" "$dir/portico.yaml"
            sed -i "s|@GRPC_UPSTREAM@|127.0.0.1:$port|g" "$dir/portico.yaml"
            start "grpc_unary-$proxy" env RUST_LOG=warn "${PIN_PROXY[@]}" "$bin" -c "$dir/portico.yaml"
            masters[$proxy]=$STARTED_PID
            urls[$proxy]="http://$listen"
            pidsets[$proxy]=$STARTED_PID
            ;;
        *)
            record grpc_unary "$proxy" 0 skip "" "" "" "" "" "" "" "" "-"
            continue
            ;;
        esac
        local ok=0
        for _ in $(seq 1 100); do
            if grpc_call "${urls[$proxy]}/portico.test.Echo/Unary"; then ok=1 && break; fi
            sleep 0.1
        done
        if ((!ok)); then
            log "$proxy (grpc_unary) did not answer a gRPC call"
            record grpc_unary "$proxy" 0 skip "" "" "" "" "" "" "" "" "FAILED: no gRPC answer"
            continue
        fi
        order+=("$proxy")
    done
    for round in $(seq 1 "$ROUNDS"); do
        for proxy in "${order[@]}"; do
            read -r -a P_PIDS <<<"${pidsets[$proxy]}"
            if ((round == 1 && WARMUP > 0)); then
                h2load -D "$WARMUP" -c "$GRPC_CONNS" -m "$GRPC_STREAMS" -t 1 -d "$TMP/grpc-frame.bin" \
                    -H 'content-type: application/grpc' -H 'te: trailers' \
                    "${urls[$proxy]}/portico.test.Echo/Unary" >/dev/null 2>&1 || true
            fi
            measure_h2load grpc_unary "$proxy" "$round" "${urls[$proxy]}/portico.test.Echo/Unary"
        done
    done
    for proxy in "${!masters[@]}"; do
        stop_pids "${masters[$proxy]}"
        forget_pids "${masters[$proxy]}"
    done
    stop_pids "$up_pid"
    forget_pids "$up_pid"
}
