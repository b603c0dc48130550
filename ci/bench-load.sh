#!/usr/bin/env bash
# Benchmark of the load engine against wrk on a local nginx (loopback only).
# Prints: closed loop 50 conns — slocheck vs wrk rps and CPU µs/request and
# the ratios; open loop 1k/5k/20k rps — achieved/requested; peak RSS of a
# 10 s and a 60 s run. Figures, not assertions. Usage: ci/bench-load.sh [SECS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"

need() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
if ! need wrk || ! need nginx; then
  echo "installing wrk and nginx (apt-get)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y --no-install-recommends wrk nginx-light >&2 \
    || $SUDO apt-get install -y --no-install-recommends wrk nginx >&2
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

cargo build --release --example bench_load --bin slocheck >&2
BENCH=target/release/examples/bench_load
SLOCHECK=target/release/slocheck

TMP="$(mktemp -d)"
NGINX_PID=""
TARGET_PID=""
NGINX_TLS_PID=""
cleanup() {
  if [ -n "$NGINX_TLS_PID" ]; then kill "$NGINX_TLS_PID" 2>/dev/null || true; wait "$NGINX_TLS_PID" 2>/dev/null || true; fi
  if [ -n "$NGINX_PID" ]; then kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; fi
  if [ -n "$TARGET_PID" ]; then kill "$TARGET_PID" 2>/dev/null || true; wait "$TARGET_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mkdir -p "$TMP/www" "$TMP/logs"
printf 'ok\n' > "$TMP/www/index.html"
# nginx workers run as an unprivileged user: the page must be readable.
chmod 755 "$TMP" "$TMP/www" && chmod 644 "$TMP/www/index.html"
cat > "$TMP/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  client_body_temp_path $TMP/logs;
  proxy_temp_path $TMP/logs;
  fastcgi_temp_path $TMP/logs;
  uwsgi_temp_path $TMP/logs;
  scgi_temp_path $TMP/logs;
  server {
    listen 127.0.0.1:$PORT;
    location / { root $TMP/www; index index.html; }
  }
}
CONF
"$NGINX" -p "$TMP" -c "$TMP/nginx.conf" &
NGINX_PID=$!
for _ in $(seq 1 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
URL="http://127.0.0.1:$PORT"
echo "nginx pid $NGINX_PID on $URL; $(nproc) cores"

field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p"; }
# Guard against benchmarking error pages: every response must be a 2xx.
curl -fsS "$URL/" >/dev/null || { echo "nginx does not serve $URL/ with a 2xx" >&2; exit 1; }

# Closed loop, 50 connections, against URL: wrk vs slocheck, same target.
closed_vs_wrk() {
  local TIMEFORMAT="%U %S"   # `time`: user and system CPU seconds of wrk
  local label="$1" url="$2" tgoal="${3:-0.7}" cgoal="${4:-1.5}"
  local out="$TMP/wrk-$label.txt" cpu reqs wrk_rps wrk_us s_out s_rps s_us
  cpu="$( { time wrk -t"$(nproc)" -c50 -d"${SECS}s" "$url" > "$out"; } 2>&1 )"
  reqs="$(awk '/requests in/ {print $1}' "$out")"
  wrk_rps="$(awk '/Requests\/sec/ {print $2}' "$out")"
  if grep -q "Non-2xx" "$out"; then echo "wrk saw non-2xx responses from $url:" >&2; cat "$out" >&2; exit 1; fi
  wrk_us="$(echo "$cpu" | awk -v n="$reqs" '{printf "%.2f", ($1+$2)*1e6/n}')"
  s_out="$("$BENCH" "$url" closed 50 "$SECS")"
  s_rps="$(echo "$s_out" | field rps)"
  s_us="$(echo "$s_out" | field cpu_us_per_req)"
  echo
  echo "closed loop, 50 connections, ${SECS}s, $label ($url)"
  printf '  %-9s %10s rps  %6s us CPU/request\n' wrk "$wrk_rps" "$wrk_us" slocheck "$s_rps" "$s_us"
  awk -v a="$s_rps" -v b="$wrk_rps" -v c="$s_us" -v d="$wrk_us" -v tg="$tgoal" -v cg="$cgoal" \
    'BEGIN { printf "  throughput slocheck/wrk = %.2f (goal >= %s); CPU/request slocheck/wrk = %.2f (goal <= %s)\n", a/b, tg, c/d, cg }'
  echo "  slocheck: $s_out"
}

closed_vs_wrk "nginx static page" "$URL/"

echo
echo "open loop, ${SECS}s each (achieved = responses per second)"
for RATE in 1000 5000 20000; do
  OUT="$("$BENCH" "$URL" open "$RATE" "$SECS")"
  echo "$OUT" | awk -v r="$RATE" '{ for (i=1;i<=NF;i++) { split($i,kv,"="); v[kv[1]]=kv[2] } }
    END { printf "  %6d rps requested: achieved %.0f (%.3f), 2xx %d, dropped %d, errors %d, p50 %.2f ms, p99 %.2f ms, cpu %.2f us/req\n",
          r, v["rps"], v["rps"]/r, v["ok_2xx"], v["dropped"], v["errors"], v["p50_us"]/1000, v["p99_us"]/1000, v["cpu_us_per_req"] }'
done

echo
echo "peak RSS (open loop 5000 rps)"
for D in 10 60; do
  OUT="$("$BENCH" "$URL" open 5000 "$D")"
  echo "  ${D}s run: $(echo "$OUT" | field peak_rss_kb) kB (sent $(echo "$OUT" | field sent))"
done

# The built-in ML target (GET /predict runs the model), started here.
TPORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$SLOCHECK" target --listen "127.0.0.1:$TPORT" 2>"$TMP/target.log" &
TARGET_PID=$!
for _ in $(seq 1 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$TPORT") 2>/dev/null && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$TPORT/predict" >/dev/null || { echo "the built-in target does not answer" >&2; exit 1; }
closed_vs_wrk "built-in ML target" "http://127.0.0.1:$TPORT/predict"

# ---- HTTPS and HTTP/2 (issue 14) ------------------------------------------
# One nginx serving TLS (self-signed P-256 certificate made here) with HTTP/1.1
# and HTTP/2 on the same port: wrk and slocheck over HTTPS, then h2load and
# slocheck over HTTP/2, each pair in the same run. slocheck runs with
# insecure = true (the certificate is self-signed; verification happens once
# per connection and does not change the per-request cost).
bench_tls_h2() {
  local tport tout h2out cpu h2_rps h2_reqs h2_us s_out s_rps s_us
  need h2load || { echo "h2load not found (install: apt-get install nghttp2-client)" >&2; exit 1; }
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$TMP/tls.key" -out "$TMP/tls.crt" 2>/dev/null
  chmod 644 "$TMP/tls.key" "$TMP/tls.crt"
  tport="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  mkdir -p "$TMP/tls-logs"
  cat > "$TMP/nginx-tls.conf" <<CONF
worker_processes 1;
daemon off;
pid $TMP/nginx-tls.pid;
error_log $TMP/tls-logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  client_body_temp_path $TMP/tls-logs;
  proxy_temp_path $TMP/tls-logs;
  fastcgi_temp_path $TMP/tls-logs;
  uwsgi_temp_path $TMP/tls-logs;
  scgi_temp_path $TMP/tls-logs;
  server {
    listen 127.0.0.1:$tport ssl http2;
    ssl_certificate $TMP/tls.crt;
    ssl_certificate_key $TMP/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { root $TMP/www; index index.html; }
  }
}
CONF
  "$NGINX" -p "$TMP" -c "$TMP/nginx-tls.conf" &
  NGINX_TLS_PID=$!
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$tport") 2>/dev/null && break
    sleep 0.1
  done
  local turl="https://127.0.0.1:$tport/"
  curl -fsSk "$turl" >/dev/null || { echo "nginx does not serve $turl with a 2xx" >&2; exit 1; }
  echo
  echo "nginx (TLS, HTTP/1.1 + HTTP/2) pid $NGINX_TLS_PID on $turl"
  BENCH_TLS_INSECURE=1 closed_vs_wrk "nginx HTTPS static page" "$turl" 0.9 1.3

  # HTTP/2: 10 connections x 10 streams = 100 requests in flight for both.
  local TIMEFORMAT="%U %S"
  h2out="$TMP/h2load.txt"
  cpu="$( { time h2load -t"$(nproc)" -c10 -m10 -D "$SECS" "$turl" > "$h2out"; } 2>&1 )"
  h2_rps="$(awk '/^finished in/ {print $4}' "$h2out")"
  h2_reqs="$(awk '/^requests:/ {print $8}' "$h2out")"
  if ! grep -q "0 failed, 0 errored" "$h2out"; then echo "h2load saw failures:" >&2; cat "$h2out" >&2; exit 1; fi
  h2_us="$(echo "$cpu" | awk -v n="$h2_reqs" '{printf "%.2f", ($1+$2)*1e6/n}')"
  s_out="$(BENCH_TLS_INSECURE=1 BENCH_HTTP_VERSION=2 BENCH_CONNECTIONS=10 "$BENCH" "$turl" closed 100 "$SECS")"
  s_rps="$(echo "$s_out" | field rps)"
  s_us="$(echo "$s_out" | field cpu_us_per_req)"
  echo
  echo "HTTP/2 over TLS, closed loop, 10 connections x 10 streams, ${SECS}s, nginx static page ($turl)"
  printf '  %-9s %10s rps  %6s us CPU/request\n' h2load "$h2_rps" "$h2_us" slocheck "$s_rps" "$s_us"
  awk -v a="$s_rps" -v b="$h2_rps" -v c="$s_us" -v d="$h2_us" \
    'BEGIN { printf "  throughput slocheck/h2load = %.2f (goal >= 0.9); CPU/request slocheck/h2load = %.2f\n", a/b, c/d }'
  echo "  slocheck: $s_out"
}

bench_tls_h2
