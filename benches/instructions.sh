#!/usr/bin/env bash
# Instructions per request under callgrind: a figure that does not move with the machine's load.
#
#   benches/instructions.sh                                    # plain and edge, target/floor/portico
#   BINS="base=/tmp/portico-old head=target/floor/portico" SCENARIOS="plain edge tracing_001" \
#       benches/instructions.sh
#
# compare.sh measures CPU time, which is what users pay, but on a shared 2-core machine its
# medians move by 10 % and more between runs. Valgrind's callgrind counts the instructions a
# process executes instead: the same binary on the same requests gives the same count whatever
# else runs, so a change of a few percent is visible and attributable (the dump names the
# functions). It does not see cache misses or syscall cost; use both.
#
# Method: each binary runs one scenario of benches/scenarios/ (the same templates compare.sh uses,
# with Pingora threads 1) under `valgrind --tool=callgrind`, in front of a fixed nginx upstream.
# A keep-alive client sends WARM requests, the counters are zeroed (callgrind_control -z), it
# sends N more, and the counters are dumped: instructions per request = Ir / N over exactly those
# requests (plus whatever the proxy's timers did meanwhile). Dumps stay in OUT_DIR for
# `callgrind_annotate`.
#
# Environment: BINS (label=path ..., default head=target/floor/portico), SCENARIOS (plain edge),
# N (2000), WARM (200), OUT_DIR (a temp dir, kept).

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BINS=${BINS:-head=$ROOT/target/floor/portico}
SCENARIOS=${SCENARIOS:-plain edge}
N=${N:-2000}
WARM=${WARM:-200}
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/portico-instructions.XXXXXX)}
export PATH=$PATH:/usr/sbin:/sbin

log() { printf '\033[1m[instructions]\033[0m %s\n' "$*" >&2; }
for tool in valgrind callgrind_control nginx python3; do
    command -v "$tool" >/dev/null || { log "needs $tool (apt-get install valgrind nginx-light python3)"; exit 1; }
done

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The fixed upstream: one nginx worker answering 200 "ok".
UP_DIR=$OUT_DIR/upstream
mkdir -p "$UP_DIR"
UP_PORT=$(free_port)
UPSTREAM=127.0.0.1:$UP_PORT
cat >"$UP_DIR/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1; pid $UP_DIR/nginx.pid; error_log $UP_DIR/error.log warn;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 10000000;
  client_body_temp_path $UP_DIR/cb; proxy_temp_path $UP_DIR/p; fastcgi_temp_path $UP_DIR/f;
  uwsgi_temp_path $UP_DIR/u; scgi_temp_path $UP_DIR/s;
  server { listen $UPSTREAM; location / { return 200 "ok"; } } }
EOF
nginx -p "$UP_DIR" -c "$UP_DIR/nginx.conf" &
PIDS+=($!)

# Sends COUNT keep-alive requests to HOST:PORT with the scenario's path and headers.
drive() { # PORT COUNT SCENARIO_FILE
    python3 - "$@" <<'EOF'
import http.client, sys, time
port, count, scenario = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
path, headers = "/", {}
for line in open(scenario):
    if line.startswith("# bench-path:"):
        path = line.split(":", 1)[1].strip()
    elif line.startswith("# bench-header:"):
        k, v = line.split(":", 1)[1].strip().split(":", 1)
        headers[k.strip()] = v.strip()
deadline = time.time() + 120
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("GET", path, headers=headers); r = c.getresponse(); r.read()
        if r.status == 200: break
    except OSError:
        pass
    if time.time() > deadline: sys.exit(f"proxy on {port} never answered 200")
    time.sleep(0.5)
for _ in range(count):
    c.request("GET", path, headers=headers); r = c.getresponse(); r.read()
    if r.status != 200: sys.exit(f"status {r.status}")
EOF
}

printf '| scenario | binary | instructions per request |\n|---|---|---|\n' >"$OUT_DIR/table.md"
for scenario in $SCENARIOS; do
    file=$ROOT/benches/scenarios/$scenario.yaml
    [[ -f $file ]] || { log "no scenario $file"; exit 1; }
    for pair in $BINS; do
        label=${pair%%=*} bin=${pair#*=}
        dir=$OUT_DIR/$scenario-$label
        mkdir -p "$dir"
        port=$(free_port)
        sed -e "s|@LISTEN@|127.0.0.1:$port|g" -e "s|@UPSTREAM@|$UPSTREAM|g" -e "s|@DIR@|$dir|g" \
            -e "s|@THREADS@|1|g" -e "s|@REDIS@|redis://127.0.0.1:6379|g" "$file" >"$dir/portico.yaml"
        valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" "$bin" -c "$dir/portico.yaml" \
            >"$dir/stdout.log" 2>"$dir/stderr.log" &
        pid=$!
        drive "$port" "$WARM" "$file"
        callgrind_control -z "$pid" >/dev/null 2>&1
        drive "$port" "$N" "$file"
        callgrind_control -d "$pid" >/dev/null 2>&1
        sleep 1
        kill "$pid"; wait "$pid" 2>/dev/null || true
        # The dump after zeroing is callgrind.out.1 (or with a thread suffix); sum its totals.
        ir=0
        for f in "$dir"/callgrind.out.*; do
            [[ -f $f ]] || continue
            t=$(awk '/^summary:/ {print $2}' "$f")
            ir=$((ir + ${t:-0}))
        done
        per=$((ir / N))
        log "$scenario $label: $per instructions per request"
        printf '| %s | %s | %s |\n' "$scenario" "$label" "$per" >>"$OUT_DIR/table.md"
    done
done
cat "$OUT_DIR/table.md"
log "dumps in $OUT_DIR (callgrind_annotate DIR/callgrind.out.1)"
