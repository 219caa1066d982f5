#!/usr/bin/env bash
# The nginx column of issue 12: the raw-socket corpus of malformed and ambiguous requests
# (tests/it/hardening_corpus.rs, the same list tests/it/hardening.rs asserts on) sent byte for
# byte to Portico, bare nginx and (when installed) haproxy, each in front of the same echo
# origins with the same routes: `/api/admin` needs `x-api-key: k-123`, `/users` is rewritten to
# `/v1/users`, host `api.example.com` + `/h` goes to origin b, the rest to origin a. Prints the
# table of statuses side by side (paste it into benches/RESULTS.md).
#
#   benches/framing_corpus.sh                # builds portico and the example (debug), runs
#   SKIP_BUILD=1 KEEP_TMP=1 benches/framing_corpus.sh
#
# nginx and haproxy run with their defaults but for ports, temp paths and the routes: "bare" is
# what a user gets before tuning. Every server binds 127.0.0.1 from its own temp dir.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TMP=$(mktemp -d /tmp/portico-corpus.XXXXXX)
PIDS=()
log() { printf '[framing_corpus] %s\n' "$*" >&2; }

cleanup() {
    local rc=$? pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
start() { # NAME CMD...
    local name=$1
    shift
    "$@" >"$TMP/$name.log" 2>&1 &
    PIDS+=("$!")
}
wait_port() { # PORT
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    log "nothing listens on $1"
    return 1
}

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    cargo build --quiet --bin portico --example framing_corpus
fi
BIN=${CARGO_TARGET_DIR:-target}/debug

# Echo origins: the instance name and the path they were asked for, as JSON.
cat >"$TMP/origin.py" <<'PY'
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
name, port = sys.argv[1], int(sys.argv[2])
class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        n = int(self.headers.get("content-length") or 0)
        if n:
            self.rfile.read(n)
        body = json.dumps({"instance": name, "path": self.path.split("?")[0]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_HEAD = answer
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", port), Echo).serve_forever()
PY
A=$(free_port)
B=$(free_port)
start origin-a python3 "$TMP/origin.py" a "$A"
start origin-b python3 "$TMP/origin.py" b "$B"
wait_port "$A"
wait_port "$B"

# Portico: the routes of tests/it/hardening.rs's config.
PW=$(free_port)
PR=$(free_port)
cat >"$TMP/portico.yaml" <<EOF
server: {threads: 1, grace_period_s: 0, graceful_shutdown_timeout_s: 1, pid_file: $TMP/portico.pid,
         upgrade_sock: $TMP/portico.sock}
access_log: {path: off}
listeners:
  - {name: web, listen: "127.0.0.1:$PW"}
  - {name: raw, listen: "127.0.0.1:$PR", path_normalization: off}
upstreams:
  a: {targets: ["127.0.0.1:$A"]}
  b: {targets: ["127.0.0.1:$B"]}
consumers:
  - {name: mobile, api_keys: ["k-123"]}
routes:
  - {name: admin, match: {path: /api/admin}, upstream: a, filters: [{api_key: {header: x-api-key}}]}
  - {name: api, match: {path: /api}, upstream: a}
  - {name: hosted, match: {host: api.example.com, path: /h}, upstream: b}
  - {name: users, match: {path: /users}, upstream: a, rewrite: {strip_prefix: /users, add_prefix: /v1/users}}
  - {name: rest, match: {path: /}, upstream: a}
EOF
start portico "$BIN/portico" -c "$TMP/portico.yaml"
wait_port "$PW"
TARGETS=("portico=$PW,$PR")

if command -v nginx >/dev/null; then
    NX=$(free_port)
    mkdir -p "$TMP/nginx"
    cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
$(for t in client_body proxy fastcgi uwsgi scgi; do echo "    ${t}_temp_path $TMP/nginx/$t;"; done)
    server {
        listen 127.0.0.1:$NX;
        location /api/admin {
            if (\$http_x_api_key != "k-123") { return 401; }
            proxy_pass http://127.0.0.1:$A;
        }
        location /users/ { proxy_pass http://127.0.0.1:$A/v1/users/; }
        location / { proxy_pass http://127.0.0.1:$A; }
    }
    server {
        listen 127.0.0.1:$NX;
        server_name api.example.com;
        location /h { proxy_pass http://127.0.0.1:$B; }
        location / { proxy_pass http://127.0.0.1:$A; }
    }
}
EOF
    start nginx nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf"
    wait_port "$NX"
    TARGETS+=("nginx=$NX")
else
    log "nginx not installed: no nginx column"
fi

if command -v haproxy >/dev/null; then
    HX=$(free_port)
    cat >"$TMP/haproxy.cfg" <<EOF
global
    maxconn 256
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:$HX
    acl admin path_beg /api/admin
    acl keyed req.hdr(x-api-key) -m str k-123
    http-request deny deny_status 401 if admin !keyed
    acl users path_beg /users/
    http-request set-path /v1%[path] if users
    use_backend b if { hdr_dom(host) -i api.example.com } { path_beg /h }
    default_backend a
backend a
    server a 127.0.0.1:$A
backend b
    server b 127.0.0.1:$B
EOF
    start haproxy haproxy -db -f "$TMP/haproxy.cfg"
    wait_port "$HX"
    TARGETS+=("haproxy=$HX")
else
    log "haproxy not installed: no haproxy column"
fi

"$BIN/examples/framing_corpus" "${TARGETS[@]}"
