#!/usr/bin/env bash
# Set up the HTTP benchmarks (bench/proxy.py, bench/native.py) on a Debian machine:
# wrk (the load) and nginx (the neutral upstream) from Debian, the bench extra from PyPI.
# Usage: bash bench/setup.sh   (as root, or with sudo available; from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -c constraints.txt -e '.[dev,bench]'
echo "bench ready: wrk $(wrk --version 2>&1 | head -1 | cut -d' ' -f2), $(/usr/sbin/nginx -v 2>&1)"
