#!/usr/bin/env bash
# Checks every Prometheus rule file under rules/ with `promtool check rules`
# and runs every `*_test.yml` beside them with `promtool test rules`.
# Usage: ci/check-rules.sh [rules-dir]   (default: rules/ next to this script)
set -euo pipefail

dir="${1:-$(cd "$(dirname "$0")/.." && pwd)/rules}"
if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool not found on PATH (hint: run ci/setup.sh)" >&2
  exit 3
fi

shopt -s nullglob
rule_files=()
test_files=()
for f in "$dir"/*.yml "$dir"/*.yaml; do
  case "$f" in
    *_test.yml | *_test.yaml) test_files+=("$f") ;;
    *) rule_files+=("$f") ;;
  esac
done

if [ ${#rule_files[@]} -eq 0 ]; then
  echo "no rule files found in $dir" >&2
  exit 2
fi
if [ ${#test_files[@]} -eq 0 ]; then
  echo "no *_test.yml rule unit tests found in $dir" >&2
  exit 2
fi

promtool check rules "${rule_files[@]}"
# promtool resolves rule_files in a test file relative to that file.
promtool test rules "${test_files[@]}"
