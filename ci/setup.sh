#!/usr/bin/env bash
# Installs what slocheck's tests and its managed mode need: Prometheus (with
# promtool), Alertmanager (with amtool) and the Pushgateway (where the model
# evaluation batch job pushes) from Debian packages. Idempotent:
# installs only what is missing, then prints the versions it found. Extra
# arguments name further commands, installed from the Debian package of the
# same name or, as `COMMAND:PACKAGE`, from another one, e.g.
# `ci/setup.sh chromium h2load:nghttp2-client`.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if ! command -v prometheus-alertmanager >/dev/null 2>&1 && ! command -v alertmanager >/dev/null 2>&1; then
  missing+=(prometheus-alertmanager)
fi
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
if ! command -v prometheus-pushgateway >/dev/null 2>&1 && ! command -v pushgateway >/dev/null 2>&1; then
  missing+=(prometheus-pushgateway)
fi
for extra in "$@"; do
  cmd=${extra%%:*}
  pkg=${extra#*:}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  # Deduplicate: prometheus provides both prometheus and promtool.
  mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "ci/setup.sh: installing ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # dpkg sometimes fails the first time on these machines: retry once.
  if ! $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; then
    echo "ci/setup.sh: install failed once, retrying" >&2
    sleep 3
    $SUDO dpkg --configure -a || true
    $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
  fi
  # The Debian packages may try to start their services; slocheck starts its
  # own instances on free ports, so stop any the package started.
  for svc in prometheus prometheus-alertmanager prometheus-node-exporter prometheus-pushgateway; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
      $SUDO systemctl stop "$svc" || true
    fi
  done
fi

echo "ci/setup.sh: $(prometheus --version 2>&1 | head -n1)"
echo "ci/setup.sh: $(promtool --version 2>&1 | head -n1)"
am=$(command -v alertmanager || command -v prometheus-alertmanager)
echo "ci/setup.sh: $("$am" --version 2>&1 | head -n1) ($am)"
pg=$(command -v pushgateway || command -v prometheus-pushgateway)
echo "ci/setup.sh: $("$pg" --version 2>&1 | head -n1) ($pg)"
