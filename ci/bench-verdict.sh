#!/usr/bin/env bash
# Time to verdict of the main job, Prometheus start included, and how well
# Prometheus agrees with the client's ground truth in the same run.
# Goals: <= 75 s wall clock; error ratio within 1 percentage point of the
# injected one; Prometheus P90 in the same histogram bucket as the client's.
# A benchmark program, not a test: it prints figures. Usage:
#   ci/bench-verdict.sh [SCENARIO] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIO="${1:-scenarios/error-spike.toml}"
RUNS="${2:-1}"

cargo build --release --bin slocheck >&2
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

for i in $(seq 1 "$RUNS"); do
  start=$(date +%s.%N)
  code=0
  target/release/slocheck run "$SCENARIO" --quiet --json "$TMP/report.json" > "$TMP/out.txt" 2>&1 || code=$?
  end=$(date +%s.%N)
  python3 - "$TMP/report.json" "$start" "$end" "$code" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"run: exit {sys.argv[4]}, status {r['status']}, time to verdict {wall:.1f} s (goal <= 75 s)")
for a in r["agreement"]:
    inj, prom = a["injected_error_ratio"], a["prometheus_error_ratio"]
    d = "-" if inj is None or prom is None else f"{(prom - inj) * 100:+.2f} pp"
    b = a["p90_bucket"]
    bucket = "-" if b is None else f"({b[0] * 1000:g}, {b[1] * 1000:g}] ms"
    ms = lambda v: "-" if v is None else f"{v * 1000:.2f} ms"
    print(f"  {a['phase']:<10} error ratio injected {inj if inj is None else round(inj, 4)} prometheus "
          f"{prom if prom is None else round(prom, 4)} ({d}); P90 client corrected {ms(a['client_p90_seconds'])}, "
          f"service {ms(a['client_service_p90_seconds'])}, prometheus {ms(a['prometheus_p90_seconds'])} "
          f"in {bucket}: same bucket {a['p90_same_bucket']}")
PY
done
