#!/usr/bin/env bash
# Set up qloop on a fresh Debian machine with Python >= 3.11: system packages (Mosquitto, the Noto
# CJK font of the report's PDF, and for the tests PostgreSQL, VictoriaMetrics, Chromium and
# Node.js), a virtualenv in .venv, and qloop with its tools; for the tests also the Flux
# compiler's checker (npm, in .cache/flux).
# Idempotent: what is there already is kept. Usage: scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

pkgs=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || pkgs+=(mosquitto)
command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)  # deploy/mosquitto/make-certs.sh
# the Chinese labels of the monthly report's PDF (found at run time with fc-match)
[ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || pkgs+=(fonts-noto-cjk fontconfig)
if [ "$want_test" = 1 ]; then
  [ -x /usr/bin/victoria-metrics ] || pkgs+=(victoria-metrics)
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || pkgs+=(postgresql)
  [ -x /usr/bin/chromium ] || pkgs+=(chromium)  # the pages' real-browser test
  command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)  # runs the Flux checker
fi
if [ "${#pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${pkgs[*]} from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  else
    echo "setup: missing ${pkgs[*]}; install them (apt-get install ${pkgs[*]}) as root." >&2
    echo "setup: the demo falls back to the embedded amqtt broker without Mosquitto." >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -c 'import sys; assert sys.version_info >= (3, 11), "qloop needs Python >= 3.11"'
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
extras="dev"
[ "$want_test" = 1 ] && extras="dev,postgres"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${extras}]"

if [ "$want_test" = 1 ]; then
  # The Flux language's own parser and type checker (WebAssembly, from InfluxData's flux-lsp):
  # tests/cloud/store/test_queries.py checks every shipped query with it.
  flux_pkg="@influxdata/flux-lsp-node@0.8.40"
  if [ ! -f .cache/flux/node_modules/@influxdata/flux-lsp-node/package.json ]; then
    mkdir -p .cache/flux
    npm install --prefix .cache/flux --no-audit --no-fund --silent "$flux_pkg" >/dev/null
  fi
fi
