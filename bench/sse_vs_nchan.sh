#!/bin/bash
# Fan-out throughput, Tidewatch's SSE server next to nginx + nchan (Debian packages),
# same client program, same machine, same run. Prints figures; never pass/fail.
#
#   bench/sse_vs_nchan.sh [BUILD_DIR] [CLIENTS] [EVENTS]
#
# Installs nginx and libnginx-mod-nchan with apt-get when missing, starts nginx on a
# free loopback port with its own configuration in a temporary folder (the system
# nginx service is not touched), and stops it at the end.
set -euo pipefail

BUILD=${1:-build-sse-rel}
CLIENTS=${2:-100}
EVENTS=${3:-20000}
BENCH="$BUILD/bench/bench_sse"
[ -x "$BENCH" ] || { echo "build $BENCH first: cmake --build $BUILD --target bench_sse" >&2; exit 1; }

# Every client is a socket on each side; keep well inside the descriptor limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((CLIENTS * 2 + 200)) ]; then
    echo "ulimit -n is $(ulimit -n); $CLIENTS clients need at least $((CLIENTS * 2 + 200))" >&2
    exit 1
fi

MODULE=/usr/lib/nginx/modules/ngx_nchan_module.so
if ! command -v nginx > /dev/null || [ ! -f "$MODULE" ]; then
    echo "installing nginx and libnginx-mod-nchan …"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d keeps the package from starting the system service.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq nginx-light libnginx-mod-nchan > /dev/null || apt-get install -y -qq nginx libnginx-mod-nchan > /dev/null
    rm -f /usr/sbin/policy-rc.d
fi

DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$DIR/logs"
cat > "$DIR/nginx.conf" << EOF
load_module $MODULE;
# One worker: the same single thread of fan-out as Tidewatch's HTTP thread.
worker_processes 1;
worker_rlimit_nofile 65536;
pid $DIR/nginx.pid;
error_log $DIR/logs/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path $DIR/body;
    server {
        listen 127.0.0.1:$PORT;
        location = /pub {
            nchan_publisher;
            nchan_channel_id \$arg_ch;
            nchan_message_buffer_length $((EVENTS + 10));
            nchan_message_timeout 10m;
        }
        location = /sub {
            nchan_subscriber eventsource;
            nchan_channel_id \$arg_ch;
        }
        location = /sub-oldest {
            nchan_subscriber eventsource;
            nchan_channel_id \$arg_ch;
            nchan_subscriber_first_message oldest;
        }
    }
}
EOF
nginx -p "$DIR" -c "$DIR/nginx.conf"
trap 'nginx -p "$DIR" -c "$DIR/nginx.conf" -s stop 2> /dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/pub?ch=probe" && break; sleep 0.1; done

echo "== Tidewatch: $CLIENTS clients, $EVENTS events committed as fast as the engine takes them"
"$BENCH" fanout --clients "$CLIENTS" --events "$EVENTS"

NGINX_VERSION=$(nginx -v 2>&1 | sed 's/.*nginx\///')
echo "== nginx $NGINX_VERSION + nchan: $CLIENTS clients, $EVENTS messages published over HTTP (8 in flight)"
"$BENCH" subscribe --no-ready --url "http://127.0.0.1:$PORT/sub?ch=live" --clients "$CLIENTS" --events "$EVENTS" \
    --publish "http://127.0.0.1:$PORT/pub?ch=live"

# Pure fan-out, without either side's input path: everything is stored first, then the
# clients drain it from the oldest message.
echo "== Tidewatch, drain: $EVENTS events in the journal, $CLIENTS clients from Last-Event-ID 0"
"$BENCH" fanout --replay --clients "$CLIENTS" --events "$EVENTS"
# The same without the shared replay cache: each client reads and renders on its own.
echo "== Tidewatch, drain without the replay cache"
"$BENCH" fanout --replay --replay-cache-bytes 0 --clients "$CLIENTS" --events "$EVENTS"
echo "== nginx $NGINX_VERSION + nchan, drain: $EVENTS messages buffered, $CLIENTS clients from the oldest"
"$BENCH" subscribe --no-ready --url "http://127.0.0.1:$PORT/sub" --clients 0 --events "$EVENTS" \
    --publish "http://127.0.0.1:$PORT/pub?ch=drain" > /dev/null
"$BENCH" subscribe --no-ready --url "http://127.0.0.1:$PORT/sub-oldest?ch=drain" --clients "$CLIENTS" --events "$EVENTS"
NGINX_PID=$(cat "$DIR/nginx.pid")
echo "nginx master RSS: $(grep VmRSS /proc/$NGINX_PID/status | awk '{print $2}') KiB; worker RSS: $(for p in $(pgrep -P "$NGINX_PID"); do grep VmRSS /proc/$p/status | awk '{print $2}'; done | paste -sd+ | bc) KiB"
