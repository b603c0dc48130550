#!/usr/bin/env bash
# Overhead of the target's metrics middleware: wrk against POST /predict with
# and without metrics, in the same run. Prints both rps and the ratio; the
# goal is a cost of at most 10 %. A benchmark program, not a test.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION="${BENCH_DURATION:-10s}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
THREADS="${BENCH_THREADS:-1}"

if ! command -v wrk >/dev/null 2>&1; then
    echo "wrk not found; installing it with apt-get" >&2
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get install -y wrk >&2
fi

cargo build --release --bin slocheck >&2
BIN="target/release/slocheck"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    # Only the targets this script started, by PID.
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

cat >"$WORK/predict.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"features":[6.3,3.3,6.0,2.5]}'
wrk.headers["Content-Type"] = "application/json"
LUA

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_target <port> [extra args...]: starts the target and waits for /healthz.
start_target() {
    local port="$1"; shift
    "$BIN" target --listen "127.0.0.1:$port" "$@" >"$WORK/target-$port.log" 2>&1 &
    PIDS+=("$!")
    for _ in $(seq 1 100); do
        if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "target on port $port did not become healthy; log:" >&2
    cat "$WORK/target-$port.log" >&2
    return 1
}

# rps <port>: requests/second wrk measured against POST /predict.
rps() {
    local out
    out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$WORK/predict.lua" "http://127.0.0.1:$1/predict")"
    echo "$out" >&2
    if echo "$out" | grep -q "Non-2xx"; then
        echo "non-2xx answers during the benchmark" >&2
        return 1
    fi
    echo "$out" | awk '/^Requests\/sec:/ { print $2 }'
}

PORT_ON="$(free_port)"
PORT_OFF="$(free_port)"
start_target "$PORT_ON"
start_target "$PORT_OFF" --no-metrics

echo "== with metrics (port $PORT_ON)" >&2
RPS_ON="$(rps "$PORT_ON")"
echo "== without metrics (port $PORT_OFF)" >&2
RPS_OFF="$(rps "$PORT_OFF")"

python3 - "$RPS_ON" "$RPS_OFF" <<'PY'
import sys
on, off = float(sys.argv[1]), float(sys.argv[2])
cost = (1 - on / off) * 100
print(f"with metrics:    {on:10.0f} req/s")
print(f"without metrics: {off:10.0f} req/s")
print(f"ratio (with/without): {on / off:.3f}  -> metrics cost {cost:.1f} % (goal <= 10 %)")
PY
