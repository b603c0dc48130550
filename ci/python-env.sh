#!/usr/bin/env bash
# Creates the Python virtualenv the tests use (real FastAPI/Flask apps,
# exporters, the slocheck_faults package) and installs ci/requirements.txt
# from PyPI into it. Idempotent. Prints the interpreter's path last, which
# ci/test.sh exports as SLOCHECK_PYTHON for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${SLOCHECK_VENV:-target/venv}
if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian's own python3 needs python3-venv for `-m venv`.
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
fi
pip() { "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"; }
# PyPI sometimes drops a connection: retry once.
pip -r ci/requirements.txt || { sleep 3; pip -r ci/requirements.txt; }
if [ -f integrations/python/pyproject.toml ]; then
  pip ./integrations/python || { sleep 3; pip ./integrations/python; }
fi
echo "$(cd "$venv" && pwd)/bin/python"
